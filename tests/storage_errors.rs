//! Bad calls get typed errors, never panics, and change nothing on disk.

use raft::{GetEntriesContext, Storage as _, StorageError};
use raftwal::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raftwal::{Error, RaftStorage, Storage, StorageOptions, WalOptions};

fn options() -> StorageOptions {
    StorageOptions::new().wal(WalOptions::new().segment_size(16 * 1024))
}

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        ..Default::default()
    }
}

fn snapshot(index: u64) -> Snapshot {
    let mut s = Snapshot::default();
    s.mut_metadata().index = index;
    s.mut_metadata().term = 1;
    s
}

/// A bootstrapped node (snapshot at 1) with entries 2..=10, committed up to `commit`, and a
/// snapshot at 5 with the log compacted to 6.
fn node(dir: &std::path::Path, commit: u64) -> RaftStorage {
    let voters = ConfState {
        voters: vec![1],
        ..Default::default()
    };
    let mut s = RaftStorage::create(dir, b"", voters, options()).unwrap();
    let hs = HardState {
        term: 1,
        commit,
        ..Default::default()
    };
    s.save(Some(&hs), &(2..=10).map(entry).collect::<Vec<_>>())
        .unwrap();
    s.snapshot_and_compact(5, "state at 5").unwrap();
    s
}

fn unavailable<T>() -> raft::Result<T> {
    Err(raft::Error::Store(StorageError::Unavailable))
}

fn compacted<T>() -> raft::Result<T> {
    Err(raft::Error::Store(StorageError::Compacted))
}

#[test]
fn append_with_a_gap_is_refused_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = node(&dir, 10);
    assert!(matches!(
        s.append(&[entry(12)]),
        Err(Error::SliceOutOfRange {
            index: 12,
            next: 11
        })
    ));
    s.close().unwrap();
    let s = RaftStorage::open(&dir, options()).unwrap();
    assert_eq!(s.last_index(), Ok(10));
}

#[test]
fn append_over_compacted_entries_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = node(&tmp.path().join("node"), 10);
    assert!(matches!(
        s.append(&[entry(5), entry(6)]),
        Err(Error::LogCompacted {
            index: 5,
            first_index: 6
        })
    ));
    assert_eq!(s.last_index(), Ok(10));
}

#[test]
fn save_snapshot_not_newer_than_the_current_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = Storage::create(&dir, b"", options()).unwrap();
    let hs = HardState {
        term: 1,
        commit: 10,
        ..Default::default()
    };
    s.save(&hs, &(1..=10).map(entry).collect::<Vec<_>>())
        .unwrap();
    s.save_snapshot(&snapshot(8)).unwrap();
    for index in [3, 8] {
        assert!(matches!(
            s.save_snapshot(&snapshot(index)),
            Err(Error::SnapshotOutOfDate { current: 8, .. })
        ));
    }
    // Nothing was written for the refused ones.
    assert_eq!(s.snapshotter().snap_names().unwrap().len(), 1);
}

#[test]
fn create_snapshot_not_newer_than_the_current_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = node(&tmp.path().join("node"), 10);
    assert!(matches!(
        s.create_snapshot(5, "again"),
        Err(Error::SnapshotOutOfDate {
            index: 5,
            current: 5
        })
    ));
}

#[test]
fn create_snapshot_above_the_commit_index_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = node(&tmp.path().join("node"), 7);
    assert!(matches!(
        s.create_snapshot(8, "too soon"),
        Err(Error::NotCommitted {
            index: 8,
            commit: 7
        })
    ));
}

#[test]
fn compact_beyond_the_newest_snapshot_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = node(&tmp.path().join("node"), 10);
    assert!(matches!(
        s.compact(8),
        Err(Error::CompactBeyondSnapshot {
            index: 8,
            snapshot_index: 5
        })
    ));
    assert!(matches!(
        s.compact(12),
        Err(Error::LogUnavailable {
            index: 12,
            last_index: 10
        })
    ));
    assert_eq!(s.first_index(), Ok(6));
}

#[test]
fn entries_outside_the_log_are_compacted_or_unavailable() {
    let tmp = tempfile::tempdir().unwrap();
    let s = node(&tmp.path().join("node"), 10);
    let ctx = || GetEntriesContext::empty(false);
    assert_eq!(s.entries(5, 7, None, ctx()), compacted());
    assert_eq!(s.entries(6, 12, None, ctx()), unavailable());
    assert_eq!(s.entries(9, 8, None, ctx()), unavailable());
    assert_eq!(s.entries(11, 11, None, ctx()), Ok(vec![]));
    assert_eq!(s.term(4), compacted());
    assert_eq!(s.term(5), Ok(1));
    assert_eq!(s.term(11), unavailable());
}

#[test]
fn create_refuses_a_directory_that_holds_files() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("something"), b"").unwrap();
    assert!(matches!(
        Storage::create(tmp.path(), b"", options()),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        RaftStorage::create(tmp.path(), b"", ConfState::default(), options()),
        Err(Error::AlreadyExists { .. })
    ));
}

#[test]
fn create_replaces_what_a_crashed_create_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    std::fs::create_dir_all(tmp.path().join("node.tmp/wal")).unwrap();
    std::fs::write(tmp.path().join("node.tmp/wal/junk"), b"half").unwrap();
    let s = Storage::create(&dir, b"", options()).unwrap();
    assert!(!tmp.path().join("node.tmp").exists());
    assert!(raftwal::Storage::exists(&dir, &options()));
    s.close().unwrap();
}

#[test]
fn opening_a_missing_directory_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(RaftStorage::open(tmp.path().join("nothing"), options()).is_err());
}

#[test]
fn a_second_open_of_a_storage_in_use_is_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let _s = node(&dir, 10);
    assert!(matches!(
        RaftStorage::open(&dir, options()),
        Err(Error::Locked { .. })
    ));
}

/// Which step of `Storage::save_snapshot` failed decides what the caller does next: a snap file that could
/// not be written leaves the log writable (try again), a failed sync of the WAL's marker
/// poisons it (reopen the storage).
#[test]
fn save_snapshot_says_whether_the_log_itself_failed() {
    use raftwal::fs::sim::{Fault, FaultError, Op, SimFs};
    for (op, log_failed) in [(Op::SyncAll, false), (Op::SyncData, true)] {
        let fs = SimFs::new();
        let options = StorageOptions::new()
            .wal(
                WalOptions::new()
                    .segment_size(4096)
                    .file_system(std::sync::Arc::new(fs.clone()))
                    .prepare_segments_in_background(false),
            )
            .keep_snapshots(2);
        let mut s = Storage::create("/node", b"", options).unwrap();
        for i in 1..=5 {
            let hs = HardState {
                term: 1,
                commit: i,
                ..Default::default()
            };
            s.save(&hs, &[entry(i)]).unwrap();
        }
        fs.inject(Fault {
            op: Some(op),
            nth: fs.calls_of(op) + 1,
            error: FaultError::Eio,
            persistent: false,
        });
        let err = s.save_snapshot(&snapshot(5)).unwrap_err();
        assert_eq!(s.is_poisoned(), log_failed, "{op:?} failed: {err}");
        assert_eq!(s.is_poisoned(), log_failed);
        if !log_failed {
            s.save_snapshot(&snapshot(5)).unwrap();
        }
    }
}

/// `?` turns a raftwal error into raft-rs's: the conditions raft handles itself keep their
/// raft meaning, anything else keeps the raftwal error as its source.
#[test]
fn raftwal_errors_convert_into_raft_errors_keeping_their_cause() {
    fn in_raft_code(e: Error) -> raft::Result<()> {
        Err(e)?
    }
    let compacted = Error::LogCompacted {
        index: 3,
        first_index: 5,
    };
    assert_eq!(
        in_raft_code(compacted),
        Err(raft::Error::Store(StorageError::Compacted))
    );
    let unavailable = Error::LogUnavailable {
        index: 9,
        last_index: 5,
    };
    assert_eq!(
        in_raft_code(unavailable),
        Err(raft::Error::Store(StorageError::Unavailable))
    );
    let corrupt = Error::Corrupt {
        file: "/wal/0000000000000000-0000000000000000.wal".into(),
        offset: 40,
        reason: "damaged".into(),
    };
    match in_raft_code(corrupt) {
        Err(raft::Error::Store(StorageError::Other(source))) => {
            let source = source
                .downcast_ref::<Error>()
                .expect("the raftwal error is kept");
            assert!(source.is_corruption());
            assert_eq!(source.position().map(|(_, offset)| offset), Some(40));
        }
        other => panic!("{other:?}"),
    }
}
