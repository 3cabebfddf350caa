//! Release and purge: which WAL segments and snap files may go, and that what stays is enough
//! to reopen.

use std::path::Path;
use std::sync::Arc;

use raft::Storage as _;
use raftwal::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raftwal::fs::{FileSystem, RealFs, WalFile};
use raftwal::{RaftStorage, Storage, StorageOptions, Wal, WalOptions};

fn options(keep_snapshots: usize) -> StorageOptions {
    StorageOptions::new()
        .wal(WalOptions::new().segment_size(4096))
        .keep_snapshots(keep_snapshots)
}

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![b'x'; 1024].into(),
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

fn snapshot(index: u64) -> Snapshot {
    let mut s = Snapshot::default();
    s.mut_metadata().index = index;
    s.mut_metadata().term = 1;
    s
}

fn segments(dir: &Path) -> Vec<String> {
    WalOptions::new()
        .segments(dir.join(raftwal::WAL_DIR))
        .unwrap()
        .into_iter()
        .map(|s| s.file_name)
        .collect()
}

/// A storage whose entries 1..=`last` (1 KiB each, saved one by one) fill several 4 KiB
/// segments.
fn storage_with_segments(dir: &Path, last: u64, keep_snapshots: usize) -> Storage {
    let mut s = Storage::create(dir, b"", options(keep_snapshots)).unwrap();
    for i in 1..=last {
        s.save(&hard_state(i), &[entry(i)]).unwrap();
    }
    s
}

fn open_and_lock(path: &Path) -> Arc<dyn WalFile> {
    let file = RealFs.open_file(path, false).unwrap();
    assert!(file.try_lock().unwrap(), "{} is free", path.display());
    file
}

#[test]
fn a_segment_our_own_wal_holds_fails_a_second_try_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let wal = Wal::create(&dir, b"").unwrap();
    let path = dir.join("0000000000000000-0000000000000000.wal");
    // flock locks belong to an open file description: a second open of the same file in the
    // same process conflicts with the log's lock.
    let other = RealFs.open_file(&path, false).unwrap();
    assert!(!other.try_lock().unwrap());
    wal.close().unwrap();
    assert!(other.try_lock().unwrap());
}

#[test]
fn purge_deletes_nothing_the_wal_still_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = storage_with_segments(&dir, 20, 2);
    let before = segments(&dir);
    assert!(before.len() >= 4, "{before:?}");
    assert!(s.purge(0).unwrap().is_empty());
    assert_eq!(segments(&dir), before);
}

#[test]
fn purge_deletes_released_segments_oldest_first_and_stops_at_a_locked_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = storage_with_segments(&dir, 20, 1);
    let before = segments(&dir);
    s.save_snapshot(&snapshot(20)).unwrap();
    s.release(&snapshot(20)).unwrap();
    let held = s.wal().unwrap().locked_segments();
    assert!(held.len() < before.len(), "release unlocked some segments");

    // Someone else (a reader, another process) holds the third segment.
    let third = open_and_lock(&dir.join(raftwal::WAL_DIR).join(&before[2]));
    assert_eq!(s.purge(0).unwrap(), before[..2].to_vec());
    drop(third);

    let deleted = s.purge(0).unwrap();
    assert_eq!(deleted, before[2..before.len() - held.len()].to_vec());
    assert_eq!(segments(&dir), held);
}

#[test]
fn purge_leaves_at_least_keep_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = storage_with_segments(&dir, 20, 1);
    let before = segments(&dir);
    s.save_snapshot(&snapshot(20)).unwrap();
    s.release(&snapshot(20)).unwrap();
    s.purge(3).unwrap();
    assert_eq!(segments(&dir), before[before.len() - 3..].to_vec());
}

#[test]
fn release_keeps_the_wal_from_the_oldest_kept_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = storage_with_segments(&dir, 30, 2);
    for index in [10, 20, 30] {
        s.save_snapshot(&snapshot(index)).unwrap();
        s.release(&snapshot(index)).unwrap();
    }
    let snaps: Vec<u64> = s
        .snapshotter()
        .snap_names()
        .unwrap()
        .iter()
        .map(|n| n.index)
        .collect();
    assert_eq!(snaps, vec![30, 20]);
    // The first segment held is the last one starting below 20, where a reopen at snapshot 20
    // starts reading.
    let held = s.wal().unwrap().locked_segments();
    let first_held = raftwal::SegmentName::parse(&held[0]).unwrap();
    let names = WalOptions::new()
        .segments(dir.join(raftwal::WAL_DIR))
        .unwrap();
    let next = names
        .iter()
        .position(|n| n.file_name == held[0])
        .and_then(|i| names.get(i + 1))
        .unwrap();
    assert!(first_held.index < 20 && next.index >= 20, "{held:?}");
}

#[test]
fn after_snapshots_releases_and_purges_the_disk_stays_bounded_and_the_node_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let voters = ConfState {
        voters: vec![1],
        ..Default::default()
    };
    let mut s = RaftStorage::create(&dir, b"", voters, options(2)).unwrap();
    let mut most = 0;
    for i in 2..=200 {
        s.save(Some(&hard_state(i)), &[entry(i)]).unwrap();
        if i % 25 == 0 {
            s.snapshot_and_compact(i, format!("state at {i}")).unwrap();
            s.purge(1).unwrap();
        }
        most = most.max(segments(&dir).len());
    }
    // Two snapshots of 25 KiB of entries each, in 4 KiB segments, and the one being written.
    assert!(most <= 16, "{most} segments at most");
    let snaps = std::fs::read_dir(dir.join(raftwal::SNAP_DIR))
        .unwrap()
        .count();
    assert_eq!(snaps, 2);
    s.close().unwrap();

    let s = RaftStorage::open(&dir, options(2)).unwrap();
    assert_eq!(s.latest_snapshot().get_metadata().index, 200);
    assert_eq!((s.first_index(), s.last_index()), (Ok(201), Ok(200)));
}
