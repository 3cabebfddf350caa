//! Group commit when fdatasync fails: nobody waiting is acknowledged, nothing after is
//! accepted, and the reopened log holds every save acknowledged before the failure.

mod commit_fs;

use std::sync::Arc;
use std::thread;

use commit_fs::ControlledFs;
use raftwal::eraftpb::{Entry, HardState};
use raftwal::{Completion, Error, SharedWal, SyncPolicy, Wal, WalSnapshot};

const EIO: i32 = 5;

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: format!("entry {index}").into_bytes().into(),
        ..Default::default()
    }
}

fn hard_state(commit: u64) -> HardState {
    HardState {
        term: 1,
        commit,
        ..Default::default()
    }
}

fn is_eio(result: &raftwal::Result<()>) -> bool {
    matches!(result, Err(Error::Io { source, .. }) if source.raw_os_error() == Some(EIO))
}

/// A writer with saves 1..=`acknowledged` durable, then a batch of saves waiting on a sync that
/// fails: the pipelined `acknowledged + 1 ..= acknowledged + 8` and one blocking save per
/// thread in `blocked`.
struct FailedBatch {
    fs: ControlledFs,
    wal: Arc<SharedWal>,
    pending: Vec<Completion>,
    blocked: Vec<raftwal::Result<()>>,
}

fn fail_a_batch(dir: &std::path::Path, acknowledged: u64) -> FailedBatch {
    let fs = ControlledFs::default();
    let wal = fs.options().create(dir, b"").unwrap();
    let wal = Arc::new(SharedWal::new(wal, SyncPolicy::Grouped).unwrap());
    for i in 1..=acknowledged {
        wal.save(&hard_state(i - 1), &[entry(i)]).unwrap();
    }
    fs.control.close_gate();
    fs.control.fail_syncs(true);
    let mut next = acknowledged + 1;
    let mut pending = vec![wal.submit(&hard_state(0), &[entry(next)]).unwrap()];
    fs.control.wait_until_held(1);
    for _ in 0..7 {
        next += 1;
        pending.push(wal.submit(&hard_state(0), &[entry(next)]).unwrap());
    }
    // Blocking savers join the batch behind the held sync.
    next += 1;
    let blocker = {
        let wal = wal.clone();
        thread::spawn(move || wal.save(&hard_state(0), &[entry(next)]))
    };
    while wal.last_index() < next {
        thread::yield_now();
    }
    fs.control.open_gate();
    let blocked = vec![blocker.join().unwrap()];
    FailedBatch {
        fs,
        wal,
        pending,
        blocked,
    }
}

#[test]
fn every_save_waiting_on_a_failed_fsync_gets_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let batch = fail_a_batch(&tmp.path().join("wal"), 3);
    for done in batch.pending {
        let result = done.wait();
        assert!(is_eio(&result), "{result:?}");
    }
    for result in &batch.blocked {
        assert!(is_eio(result), "{result:?}");
    }
}

#[test]
fn saves_after_a_failed_fsync_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let batch = fail_a_batch(&tmp.path().join("wal"), 3);
    batch.fs.control.fail_syncs(false);
    let refused = batch.wal.save(&hard_state(0), &[entry(100)]);
    assert!(
        matches!(refused, Err(Error::Poisoned { .. })),
        "{refused:?}"
    );
    assert!(matches!(
        batch.wal.submit(&hard_state(0), &[entry(100)]),
        Err(Error::Poisoned { .. })
    ));
}

#[test]
fn a_later_successful_sync_acknowledges_nothing_the_failed_one_covered() {
    let tmp = tempfile::tempdir().unwrap();
    let batch = fail_a_batch(&tmp.path().join("wal"), 3);
    batch.fs.control.fail_syncs(false);
    let syncs = batch.fs.control.syncs();
    assert!(batch.wal.sync().is_err());
    for done in &batch.pending {
        assert!(matches!(done.try_wait(), Some(Err(_))));
    }
    // Nobody even tried: a successful fdatasync now could not vouch for the lost pages.
    assert_eq!(batch.fs.control.syncs(), syncs);
}

#[test]
fn the_reopened_log_holds_every_save_acknowledged_before_the_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let batch = fail_a_batch(&dir, 5);
    drop(batch);
    let mut wal = Wal::open(&dir, &WalSnapshot::default()).unwrap();
    let entries = wal.read_all().unwrap().entries;
    assert!(entries.len() >= 5);
    assert_eq!(entries[..5], (1..=5).map(entry).collect::<Vec<_>>());
}

#[test]
fn an_always_policy_save_returns_the_fsync_error_and_later_ones_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = ControlledFs::default();
    let wal = fs.options().create(tmp.path().join("wal"), b"").unwrap();
    let wal = SharedWal::new(wal, SyncPolicy::Always).unwrap();
    wal.save(&hard_state(0), &[entry(1)]).unwrap();
    fs.control.fail_syncs(true);
    let failed = wal.save(&hard_state(1), &[entry(2)]);
    assert!(is_eio(&failed), "{failed:?}");
    fs.control.fail_syncs(false);
    assert!(matches!(
        wal.save(&hard_state(1), &[entry(3)]),
        Err(Error::Poisoned { .. })
    ));
}
