//! The journal's group commit on an in-memory store a test controls: batching while the store
//! is busy, backpressure on a slow store, a store that panics; and the protocol suite on that
//! store (the suite is generic over stores).

#[path = "support/journal_protocol.rs"]
mod journal_protocol;
#[path = "support/mem_store.rs"]
mod mem_store;

use std::sync::Arc;
use std::time::Duration;

use mem_store::Memory;
use raftwal::journal::{Bytes, Journal};
use raftwal::store::Store;

fn fresh() -> (Arc<Memory>, impl FnMut() -> raftwal::Result<Box<dyn Store>>) {
    let memory = Memory::new();
    let handle = memory.clone();
    (memory, move || -> raftwal::Result<Box<dyn Store>> {
        Ok(Box::new(handle.open()))
    })
}

journal_protocol_tests!(fresh);

#[test]
fn records_arriving_during_a_store_append_go_in_one_batch() {
    let memory = Memory::new();
    let journal = Journal::open(memory.open(), Bytes, |_| {}).unwrap();
    memory.hold(true);
    let first = journal.append(b"first").unwrap();
    // The committer took "first" and waits at the gate; these queue up behind it.
    std::thread::sleep(Duration::from_millis(50));
    let rest: Vec<_> = (0..10).map(|_| journal.append(b"more").unwrap()).collect();
    assert!(
        rest.iter().all(|r| r.try_wait().is_none()),
        "acknowledged before durable"
    );
    memory.hold(false);
    assert_eq!(rest.into_iter().last().unwrap().wait().unwrap(), 11);
    assert_eq!(first.wait().unwrap(), 1);
    assert!(
        memory.appends() <= 2,
        "{} store appends for 11 records",
        memory.appends()
    );
    journal.close().unwrap();
}

#[test]
fn appenders_wait_when_the_store_falls_behind_instead_of_queueing_without_bound() {
    let memory = Memory::new();
    let journal = Arc::new(Journal::open(memory.open(), Bytes, |_| {}).unwrap());
    memory.hold(true);
    let appender = {
        let journal = journal.clone();
        std::thread::spawn(move || {
            let record = vec![7u8; 1 << 20];
            for _ in 0..64 {
                drop(journal.append(&record).unwrap());
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    // 16 MiB of queue, plus the batch the committer took to the gate (what had queued when
    // it woke): well short of the 64 records tried.
    let accepted = journal.last_index();
    assert!(
        accepted <= 32,
        "{accepted} MiB records accepted while the store was stuck"
    );
    memory.hold(false);
    appender.join().unwrap();
    assert_eq!(journal.last_index(), 64);
    Arc::into_inner(journal).unwrap().close().unwrap();
}

#[test]
fn a_store_that_panics_fails_the_waiters_instead_of_hanging_them() {
    let memory = Memory::new();
    let journal = Journal::open(memory.open(), Bytes, |_| {}).unwrap();
    journal.append(b"kept").unwrap().wait().unwrap();
    memory.panic_next();
    let err = journal.append(b"boom").unwrap().wait().unwrap_err();
    assert!(err.is_poisoned(), "{err}");
    assert!(journal.append(b"after").unwrap_err().is_poisoned());
    assert!(journal.close().unwrap_err().is_poisoned());
}

#[test]
fn waiters_of_a_failed_store_append_get_the_stores_typed_error() {
    let memory = Memory::new();
    let journal = Arc::new(Journal::open(memory.open(), Bytes, |_| {}).unwrap());
    journal.append(b"kept").unwrap().wait().unwrap();
    memory.hold(true);
    memory.fence_next();
    // Several records in the one failing batch: each waiter gets its own copy of the error.
    let pending: Vec<_> = (0..4).map(|_| journal.append(b"lost").unwrap()).collect();
    memory.hold(false);
    for appended in pending {
        let err = appended.wait().unwrap_err();
        assert!(
            err.is_fenced(),
            "a waiter got {err} instead of the store's Fenced"
        );
    }
    // Later calls are refused: the journal stopped.
    assert!(journal.append(b"after").unwrap_err().is_poisoned());
}
