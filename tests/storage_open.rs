//! Opening a storage directory: which snapshot it starts from, and how it copes with missing,
//! damaged or orphaned snap files and with a torn WAL tail.

#[path = "support/etcd_fixture.rs"]
mod etcd_fixture;

use std::path::Path;

use raft::Storage as _;
use raftwal::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raftwal::{RaftStorage, SnapName, Snapshotter, Storage, StorageOptions, WalOptions};

fn options(keep_snapshots: usize) -> StorageOptions {
    StorageOptions::new()
        .wal(WalOptions::new().segment_size(4096))
        .keep_snapshots(keep_snapshots)
}

fn entry(index: u64, term: u64, size: usize) -> Entry {
    Entry {
        index,
        term,
        data: vec![b'x'; size].into(),
        ..Default::default()
    }
}

fn hard_state(term: u64, commit: u64) -> HardState {
    HardState {
        term,
        commit,
        ..Default::default()
    }
}

fn voters() -> ConfState {
    ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    }
}

/// A bootstrapped node with entries 2..=30 of 1 KiB (several 4 KiB segments), all committed,
/// snapshotted and compacted at 10 and at 20, released and purged.
fn node_with_two_snapshots(dir: &Path, keep_snapshots: usize) -> RaftStorage {
    let mut s = RaftStorage::create(dir, b"node", voters(), options(keep_snapshots)).unwrap();
    for i in 2..=30 {
        s.save(Some(&hard_state(1, i)), &[entry(i, 1, 1024)])
            .unwrap();
    }
    s.snapshot_and_compact(10, "state at 10").unwrap();
    s.snapshot_and_compact(20, "state at 20").unwrap();
    s.purge(0).unwrap();
    s
}

fn snap_path(dir: &Path, term: u64, index: u64) -> std::path::PathBuf {
    dir.join(raftwal::SNAP_DIR)
        .join(SnapName::new(term, index).file_name)
}

#[test]
fn with_no_snapshot_the_node_starts_from_the_wal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = Storage::create(&dir, b"meta", options(2)).unwrap();
    let entries: Vec<Entry> = (1..=10).map(|i| entry(i, 1, 100)).collect();
    s.save(&hard_state(1, 10), &entries).unwrap();
    s.close().unwrap();

    let (_s, restored) = Storage::open(&dir, options(2)).unwrap();
    assert_eq!(restored.snapshot, None);
    assert_eq!(restored.metadata, b"meta");
    assert_eq!(restored.hard_state, hard_state(1, 10));
    assert_eq!(restored.entries, entries);
}

#[test]
fn a_node_reopens_at_its_newest_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    node_with_two_snapshots(&dir, 2).close().unwrap();

    let s = RaftStorage::open(&dir, options(2)).unwrap();
    assert_eq!(s.latest_snapshot().get_metadata().index, 20);
    assert_eq!(&s.latest_snapshot().data[..], b"state at 20");
    assert_eq!((s.first_index(), s.last_index()), (Ok(21), Ok(30)));
}

#[test]
fn a_corrupt_newest_snap_falls_back_to_the_previous_one_and_replays_more_wal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    node_with_two_snapshots(&dir, 2).close().unwrap();
    let newest = snap_path(&dir, 1, 20);
    let mut bytes = std::fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&newest, bytes).unwrap();

    let s = RaftStorage::open(&dir, options(2)).unwrap();
    assert_eq!(s.latest_snapshot().get_metadata().index, 10);
    assert_eq!(&s.latest_snapshot().data[..], b"state at 10");
    // Nothing is lost: the entries after 10 come from the WAL instead.
    assert_eq!((s.first_index(), s.last_index()), (Ok(11), Ok(30)));
    let entries = s
        .entries(11, 31, None, raft::GetEntriesContext::empty(false))
        .unwrap();
    assert_eq!(
        entries,
        (11..=30).map(|i| entry(i, 1, 1024)).collect::<Vec<_>>()
    );
    assert!(newest.with_extension("snap.broken").exists());
}

#[test]
fn a_wal_snapshot_record_without_its_snap_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    // Keeping one snap file, the WAL before snapshot 20 is released and purged.
    node_with_two_snapshots(&dir, 1).close().unwrap();
    std::fs::remove_file(snap_path(&dir, 1, 20)).unwrap();

    match RaftStorage::open(&dir, options(1)) {
        Err(raftwal::Error::SnapshotFileMissing { index, term, dir }) => {
            assert_eq!((index, term), (20, 1));
            assert!(dir.ends_with(raftwal::SNAP_DIR));
        }
        other => panic!("expected SnapshotFileMissing, got {other:?}"),
    }
}

#[test]
fn a_snap_file_without_its_wal_record_is_ignored_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    node_with_two_snapshots(&dir, 2).close().unwrap();
    // A crash between the snap file and its WAL record leaves an orphan file.
    let mut orphan = Snapshot::default();
    orphan.mut_metadata().index = 25;
    orphan.mut_metadata().term = 1;
    Snapshotter::new(dir.join(raftwal::SNAP_DIR))
        .save_snap(&orphan)
        .unwrap();

    let s = RaftStorage::open(&dir, options(2)).unwrap();
    assert_eq!(s.latest_snapshot().get_metadata().index, 20);
    assert_eq!(s.last_index(), Ok(30));
    // Not part of the node's state, it must not count among the snapshots a release keeps.
    assert!(!snap_path(&dir, 1, 25).exists());
}

#[test]
fn a_snapshot_record_above_the_commit_index_is_not_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = Storage::create(&dir, b"", options(2)).unwrap();
    let entries: Vec<Entry> = (1..=10).map(|i| entry(i, 1, 10)).collect();
    s.save(&hard_state(1, 5), &entries).unwrap();
    let mut at_eight = Snapshot::default();
    at_eight.mut_metadata().index = 8;
    at_eight.mut_metadata().term = 1;
    s.save_snapshot(&at_eight).unwrap();
    s.close().unwrap();

    let (_s, restored) = Storage::open(&dir, options(2)).unwrap();
    assert_eq!(restored.snapshot, None);
    assert_eq!(restored.entries, entries);
}

#[test]
fn a_torn_wal_tail_is_repaired_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let big = StorageOptions::new()
        .wal(WalOptions::new().segment_size(1 << 20))
        .keep_snapshots(2);
    let mut s = Storage::create(&dir, b"", big.clone()).unwrap();
    let entries: Vec<Entry> = (1..=5).map(|i| entry(i, 1, 10)).collect();
    s.save(&hard_state(1, 5), &entries).unwrap();
    s.save(&HardState::default(), &[entry(6, 1, 4000)]).unwrap();
    s.close().unwrap();

    // Zero a whole sector inside the last record, as a crash mid-write leaves it.
    let wal_dir = dir.join(raftwal::WAL_DIR);
    let last = WalOptions::new()
        .raw_records(&wal_dir)
        .unwrap()
        .map(Result::unwrap)
        .last()
        .unwrap();
    let segment = wal_dir.join(&last.file);
    let sector = (last.offset + 8).div_ceil(512) * 512;
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[sector as usize..sector as usize + 512].fill(0);
    std::fs::write(&segment, bytes).unwrap();

    let (_s, restored) = Storage::open(&dir, big).unwrap();
    let repaired = restored.repaired.expect("a repair");
    assert_eq!(repaired.offset, last.offset);
    assert_eq!(restored.entries, entries);
}

#[test]
fn an_etcd_member_directory_opens_at_its_newest_snapshot() {
    let fixture = etcd_fixture::unpack();
    let member = fixture.data_dir.join("member");
    let (storage, restored) = Storage::open(&member, StorageOptions::new()).unwrap();
    let snapshot = restored.snapshot.expect("etcd's newest snapshot");
    assert_eq!(
        (snapshot.get_metadata().index, snapshot.get_metadata().term),
        (2010, 2)
    );
    let hs = &fixture.expected["hard_state"];
    assert_eq!(
        restored.hard_state.commit,
        etcd_fixture::u64_at(hs, "commit")
    );
    assert_eq!(restored.hard_state.term, etcd_fixture::u64_at(hs, "term"));
    let last = etcd_fixture::u64_at(&fixture.expected, "last_index");
    assert_eq!(
        restored.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        (2011..=last).collect::<Vec<_>>()
    );
    storage.close().unwrap();
}
