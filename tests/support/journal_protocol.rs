//! The journal's checkpoint protocol and the store contract, as scenarios generic over a store:
//! each takes an opener that opens the same (initially empty) store again every time it is
//! called, so the same suite runs on the file store and on the etcd store.
//!
//! Include with `#[path = "support/journal_protocol.rs"] mod journal_protocol;` and expand
//! `journal_protocol_tests!(fresh)` where `fresh()` returns `(guard, opener)`: the guard keeps
//! the store's place alive (a temp dir, an etcd server) for the test, the opener is an
//! `FnMut() -> raftwal::Result<Box<dyn Store>>`.
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use raftwal::journal::{Bytes, Journal, Replayed};
use raftwal::store::Store;
use raftwal::Error;

/// Opens the store under test again.
pub type Opener<'a> = &'a mut dyn FnMut() -> raftwal::Result<Box<dyn Store>>;

/// One `#[test]` per scenario, each on a fresh store from `$fresh()`.
#[macro_export]
macro_rules! journal_protocol_tests {
    ($fresh:path) => {
        $crate::journal_protocol_tests!($fresh, if |_: &str| true);
    };
    // `$available(test_name)` says whether the store can run here (and prints the test's
    // SKIPPED line when it cannot).
    ($fresh:path, if $available:expr) => {
        $crate::journal_protocol_tests!(@each $fresh, $available,
            store_numbers_records_from_one_and_reads_from_any_index,
            store_delete_before_keeps_every_later_record_across_a_reopen,
            store_delete_before_is_idempotent,
            store_refuses_to_delete_records_never_appended,
            an_empty_journal_replays_nothing_and_numbers_from_one,
            acknowledged_data_is_replayed_in_order_after_a_reopen,
            a_finalized_checkpoint_replays_its_records_then_the_data_after_it,
            finalizing_deletes_the_records_before_the_checkpoint,
            an_abandoned_checkpoint_is_discarded_on_recovery,
            a_checkpoint_open_when_the_journal_closed_is_discarded,
            data_appended_while_a_checkpoint_is_open_is_replayed_after_it,
            the_newest_finalized_checkpoint_wins,
            an_empty_checkpoint_replays_only_the_data_after_it,
            a_second_checkpoint_while_one_is_open_is_refused,
            recovery_survives_repeated_reopens_and_appends,
            concurrent_appenders_are_all_acknowledged_in_log_order,
            a_completion_can_be_awaited,
        );
    };
    (@each $fresh:path, $available:expr, $($scenario:ident),* $(,)?) => {
        $(
            #[test]
            fn $scenario() {
                if !($available)(stringify!($scenario)) {
                    return;
                }
                let (_guard, mut open) = $fresh();
                journal_protocol::$scenario(&mut open);
            }
        )*
    };
}

/// Opens a byte journal on the store and collects what it replays.
pub fn open_journal(open: Opener) -> (Journal, Vec<Replayed<Vec<u8>>>) {
    let store = open().expect("open the store");
    let mut replayed = Vec::new();
    let journal = Journal::open(store, Bytes, |r| replayed.push(r)).expect("open the journal");
    (journal, replayed)
}

/// Reopens and returns only what the journal replays.
pub fn replay(open: Opener) -> Vec<Replayed<Vec<u8>>> {
    let (journal, replayed) = open_journal(open);
    journal.close().expect("close");
    replayed
}

pub fn data(index: u64, record: &str) -> Replayed<Vec<u8>> {
    Replayed::Data {
        index,
        record: record.as_bytes().to_vec(),
    }
}

pub fn cp(record: &str) -> Replayed<Vec<u8>> {
    Replayed::Checkpoint(record.as_bytes().to_vec())
}

fn append(journal: &Journal, record: &str) -> u64 {
    journal
        .append(record.as_bytes())
        .expect("append")
        .wait()
        .expect("durable")
}

/// Every record the store holds, from `from` on.
pub fn stored(store: &mut dyn Store, from: u64) -> Vec<(u64, Vec<u8>)> {
    let mut records = Vec::new();
    store
        .read_from(from, &mut |index, bytes| {
            records.push((index, bytes.to_vec()));
            Ok(())
        })
        .expect("read_from");
    records
}

// ---- The store contract ----

pub fn store_numbers_records_from_one_and_reads_from_any_index(open: Opener) {
    let mut store = open().unwrap();
    assert_eq!((store.first_index(), store.last_index()), (1, 0));
    store.append(&[b"a", b"b"]).unwrap();
    store.append(&[b"c"]).unwrap();
    store.append(&[]).unwrap();
    assert_eq!((store.first_index(), store.last_index()), (1, 3));
    assert_eq!(
        stored(store.as_mut(), 2),
        vec![(2, b"b".to_vec()), (3, b"c".to_vec())]
    );
    assert_eq!(stored(store.as_mut(), 4), vec![]);
    store.close().unwrap();
    let mut store = open().unwrap();
    assert_eq!((store.first_index(), store.last_index()), (1, 3));
    assert_eq!(stored(store.as_mut(), 0).len(), 3);
    store.close().unwrap();
}

pub fn store_delete_before_keeps_every_later_record_across_a_reopen(open: Opener) {
    let mut store = open().unwrap();
    let records: Vec<Vec<u8>> = (1..=40).map(|i| vec![i as u8; 300]).collect();
    for chunk in records.chunks(4) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        store.append(&refs).unwrap();
    }
    store.delete_before(25).unwrap();
    assert_eq!((store.first_index(), store.last_index()), (25, 40));
    let expected: Vec<(u64, Vec<u8>)> = (25..=40)
        .map(|i| (i, records[i as usize - 1].clone()))
        .collect();
    assert_eq!(stored(store.as_mut(), 1), expected);
    store.append(&[b"41"]).unwrap();
    store.close().unwrap();
    let mut store = open().unwrap();
    assert_eq!((store.first_index(), store.last_index()), (25, 41));
    assert_eq!(stored(store.as_mut(), 0)[..16], expected[..]);
    store.close().unwrap();
}

pub fn store_delete_before_is_idempotent(open: Opener) {
    let mut store = open().unwrap();
    store.append(&[b"1", b"2", b"3"]).unwrap();
    store.delete_before(3).unwrap();
    store.delete_before(3).unwrap();
    store.delete_before(2).unwrap();
    assert_eq!(store.first_index(), 3);
    assert_eq!(stored(store.as_mut(), 0), vec![(3, b"3".to_vec())]);
    store.close().unwrap();
}

pub fn store_refuses_to_delete_records_never_appended(open: Opener) {
    let mut store = open().unwrap();
    store.append(&[b"1"]).unwrap();
    assert!(store.delete_before(5).is_err());
    assert_eq!((store.first_index(), store.last_index()), (1, 1));
    store.close().unwrap();
}

// ---- The journal's checkpoint protocol ----

pub fn an_empty_journal_replays_nothing_and_numbers_from_one(open: Opener) {
    let (journal, replayed) = open_journal(open);
    assert_eq!(replayed, vec![]);
    assert_eq!(append(&journal, "first"), 1);
    assert_eq!(journal.checkpoint_index(), 0);
    journal.close().unwrap();
}

pub fn acknowledged_data_is_replayed_in_order_after_a_reopen(open: Opener) {
    let (journal, _) = open_journal(open);
    for i in 1..=20 {
        assert_eq!(append(&journal, &format!("r{i}")), i);
    }
    journal.close().unwrap();
    let expected: Vec<_> = (1..=20).map(|i| data(i, &format!("r{i}"))).collect();
    assert_eq!(replay(open), expected);
}

pub fn a_finalized_checkpoint_replays_its_records_then_the_data_after_it(open: Opener) {
    let (journal, _) = open_journal(open);
    append(&journal, "before 1");
    append(&journal, "before 2");
    let checkpoint = journal.start_checkpoint().unwrap();
    assert_eq!(checkpoint.start_index(), 3);
    checkpoint.append(b"state a").unwrap();
    checkpoint.append(b"state b").unwrap();
    checkpoint.finalize().unwrap().wait().unwrap();
    assert_eq!(journal.checkpoint_index(), 3);
    let after = append(&journal, "after");
    journal.close().unwrap();
    assert_eq!(
        replay(open),
        vec![cp("state a"), cp("state b"), data(after, "after")]
    );
}

pub fn finalizing_deletes_the_records_before_the_checkpoint(open: Opener) {
    let (journal, _) = open_journal(open);
    for i in 1..=10 {
        append(&journal, &format!("old {i}"));
    }
    let checkpoint = journal.start_checkpoint().unwrap();
    let start = checkpoint.start_index();
    checkpoint.append(b"state").unwrap();
    checkpoint.finalize().unwrap().wait().unwrap();
    journal.close().unwrap();
    let mut store = open().unwrap();
    assert_eq!(store.first_index(), start);
    let records = stored(store.as_mut(), 1);
    assert_eq!(records.first().map(|r| r.0), Some(start));
    store.close().unwrap();
    assert_eq!(replay(open), vec![cp("state")]);
}

pub fn an_abandoned_checkpoint_is_discarded_on_recovery(open: Opener) {
    let (journal, _) = open_journal(open);
    append(&journal, "d1");
    let checkpoint = journal.start_checkpoint().unwrap();
    checkpoint.append(b"old state").unwrap();
    checkpoint.finalize().unwrap().wait().unwrap();
    let d2 = append(&journal, "d2");
    let abandoned = journal.start_checkpoint().unwrap();
    abandoned.append(b"new state, never finalized").unwrap();
    drop(abandoned);
    let d3 = append(&journal, "d3");
    journal.close().unwrap();
    assert_eq!(
        replay(open),
        vec![cp("old state"), data(d2, "d2"), data(d3, "d3")]
    );
}

pub fn a_checkpoint_open_when_the_journal_closed_is_discarded(open: Opener) {
    let (journal, _) = open_journal(open);
    let d1 = append(&journal, "d1");
    let checkpoint = journal.start_checkpoint().unwrap();
    checkpoint.append(b"half a state").unwrap();
    let d2 = append(&journal, "d2");
    // The process dies here: the checkpoint's records are durable, its finalize never came.
    std::mem::forget(checkpoint);
    journal.close().unwrap();
    assert_eq!(replay(open), vec![data(d1, "d1"), data(d2, "d2")]);
    // The journal goes on and a later checkpoint counts.
    let (journal, _) = open_journal(open);
    let checkpoint = journal.start_checkpoint().unwrap();
    checkpoint.append(b"whole state").unwrap();
    checkpoint.finalize().unwrap().wait().unwrap();
    journal.close().unwrap();
    assert_eq!(replay(open), vec![cp("whole state")]);
}

pub fn data_appended_while_a_checkpoint_is_open_is_replayed_after_it(open: Opener) {
    let (journal, _) = open_journal(open);
    append(&journal, "covered");
    let checkpoint = journal.start_checkpoint().unwrap();
    checkpoint.append(b"state 1").unwrap();
    let during = append(&journal, "during");
    checkpoint.append(b"state 2").unwrap();
    let finalized = checkpoint.finalize().unwrap().wait().unwrap();
    let after = append(&journal, "after");
    assert!(during < finalized && finalized < after);
    journal.close().unwrap();
    assert_eq!(
        replay(open),
        vec![
            cp("state 1"),
            cp("state 2"),
            data(during, "during"),
            data(after, "after")
        ]
    );
}

pub fn the_newest_finalized_checkpoint_wins(open: Opener) {
    let (journal, _) = open_journal(open);
    for round in 1..=3 {
        append(&journal, &format!("data {round}"));
        let checkpoint = journal.start_checkpoint().unwrap();
        checkpoint
            .append(format!("state {round}").as_bytes())
            .unwrap();
        checkpoint.finalize().unwrap().wait().unwrap();
    }
    let last = append(&journal, "data 4");
    let start = journal.checkpoint_index();
    journal.close().unwrap();
    assert_eq!(replay(open), vec![cp("state 3"), data(last, "data 4")]);
    let store = open().unwrap();
    assert_eq!(store.first_index(), start);
    store.close().unwrap();
}

pub fn an_empty_checkpoint_replays_only_the_data_after_it(open: Opener) {
    let (journal, _) = open_journal(open);
    append(&journal, "covered");
    journal
        .start_checkpoint()
        .unwrap()
        .finalize()
        .unwrap()
        .wait()
        .unwrap();
    let after = append(&journal, "after");
    journal.close().unwrap();
    assert_eq!(replay(open), vec![data(after, "after")]);
}

pub fn a_second_checkpoint_while_one_is_open_is_refused(open: Opener) {
    let (journal, _) = open_journal(open);
    let checkpoint = journal.start_checkpoint().unwrap();
    let err = journal.start_checkpoint().unwrap_err();
    assert!(matches!(err, Error::InvalidState { .. }), "{err}");
    checkpoint.append(b"state").unwrap();
    checkpoint.finalize().unwrap().wait().unwrap();
    // Once finalized (or dropped), the next one may start.
    drop(journal.start_checkpoint().unwrap());
    journal
        .start_checkpoint()
        .unwrap()
        .finalize()
        .unwrap()
        .wait()
        .unwrap();
    journal.close().unwrap();
}

pub fn recovery_survives_repeated_reopens_and_appends(open: Opener) {
    let mut expected_data = Vec::new();
    for round in 0..4u64 {
        let (journal, replayed) = open_journal(open);
        let mut expected = vec![];
        if round >= 2 {
            expected.push(cp("state at round 2"));
        }
        expected.extend(expected_data.iter().cloned());
        assert_eq!(replayed, expected, "round {round}");
        let index = append(&journal, &format!("round {round}"));
        expected_data.push(data(index, &format!("round {round}")));
        if round == 1 {
            let checkpoint = journal.start_checkpoint().unwrap();
            checkpoint.append(b"state at round 2").unwrap();
            checkpoint.finalize().unwrap().wait().unwrap();
            expected_data.clear();
        }
        journal.close().unwrap();
    }
}

pub fn concurrent_appenders_are_all_acknowledged_in_log_order(open: Opener) {
    const THREADS: usize = 8;
    const EACH: usize = 40;
    let (journal, _) = open_journal(open);
    thread::scope(|s| {
        for t in 0..THREADS {
            let journal = &journal;
            s.spawn(move || {
                let mut last = 0;
                for i in 0..EACH {
                    let done = journal.append(format!("t{t} {i}").as_bytes()).unwrap();
                    let index = done.index();
                    assert!(index > last, "indexes grow per appender");
                    last = index;
                    // Every other record is waited for later, in bulk: completions fire in
                    // log order, so waiting for the last covers the earlier ones.
                    if i % 2 == 1 {
                        assert_eq!(done.wait().unwrap(), index);
                    }
                }
            });
        }
    });
    assert_eq!(journal.last_index(), (THREADS * EACH) as u64);
    journal.close().unwrap();
    let replayed = replay(open);
    assert_eq!(replayed.len(), THREADS * EACH);
    for t in 0..THREADS {
        let mine: Vec<String> = replayed
            .iter()
            .filter_map(|r| match r {
                Replayed::Data { record, .. } => Some(String::from_utf8(record.clone()).unwrap()),
                Replayed::Checkpoint(_) => None,
            })
            .filter(|r| r.starts_with(&format!("t{t} ")))
            .collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("t{t} {i}")).collect();
        assert_eq!(mine, expected);
    }
}

pub fn a_completion_can_be_awaited(open: Opener) {
    let (journal, _) = open_journal(open);
    let first = journal.append(b"one").unwrap();
    let second = journal.append(b"two").unwrap();
    assert_eq!(block_on(second).unwrap(), 2);
    // Log order: the earlier record is durable once the later one is.
    assert_eq!(first.try_wait().map(|r| r.unwrap()), Some(1));
    journal.close().unwrap();
    assert_eq!(replay(open), vec![data(1, "one"), data(2, "two")]);
}

/// Polls `future` on this thread until it is ready, parking in between (no runtime needed).
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => thread::park(),
        }
    }
}
