//! `RaftStorage` keeps entries on disk, not in memory: `entries()` reads them back from the
//! segments through the entry index, each checked against its record's CRC, with a cache of
//! the newest ones. These pin what a read returns in every place an entry can be: cached,
//! evicted, in the tail being appended to, compacted, overwritten, and damaged after open.

#[path = "support/raft_entries.rs"]
mod raft_entries;

use raft::{Storage as _, StorageError};
use raftwal::eraftpb::{ConfState, Entry, HardState};
use raftwal::{RaftStorage, StorageOptions, SyncPolicy, WalOptions};

use raft_entries::{entries, find_in_segments, flip_byte, payload, raftwal_error, read};

/// Small segments, so a few hundred entries span several; `cache` bytes of cache.
fn options(cache: usize) -> StorageOptions {
    StorageOptions::new()
        .wal(WalOptions::new().segment_size(64 * 1024))
        .entry_cache_bytes(cache)
}

fn voters() -> ConfState {
    ConfState {
        voters: vec![1],
        ..Default::default()
    }
}

/// A bootstrapped storage (snapshot at index 1) whose log then holds `[2, high)`, term 2, with
/// `size`-byte payloads, saved ten at a time and all committed.
fn storage_with(dir: &std::path::Path, high: u64, size: usize, cache: usize) -> RaftStorage {
    let mut s = RaftStorage::create(dir, b"node", voters(), options(cache)).unwrap();
    for low in (2..high).step_by(10) {
        let hs = HardState {
            term: 2,
            commit: (low + 10).min(high) - 1,
            ..Default::default()
        };
        s.save(Some(&hs), &entries(low, (low + 10).min(high), 2, size))
            .unwrap();
    }
    s
}

#[test]
fn entries_past_the_cache_are_read_back_from_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage_with(dir.path(), 300, 500, 0);
    assert_eq!(
        s.cached_bytes(),
        0,
        "a zero budget caches nothing once written"
    );
    assert_eq!(read(&s, 2, 300, None).unwrap(), entries(2, 300, 2, 500));
    s.close().unwrap();

    let s = RaftStorage::open(dir.path(), options(0)).unwrap();
    assert_eq!(read(&s, 2, 300, None).unwrap(), entries(2, 300, 2, 500));
    assert_eq!(read(&s, 117, 118, None).unwrap(), entries(117, 118, 2, 500));
}

#[test]
fn the_newest_entries_are_served_from_the_cache_within_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage_with(dir.path(), 300, 500, 20_000);
    assert!(s.cached_bytes() <= 20_000, "{} cached", s.cached_bytes());
    assert!(s.cached_bytes() > 10_000, "{} cached", s.cached_bytes());
    // Damage the newest entry on disk: the cache still has it, so raft gets it intact.
    let (segment, at) = find_in_segments(&dir.path().join("wal"), &payload(299, 500)[..20]);
    flip_byte(&segment, at + 30);
    assert_eq!(read(&s, 290, 300, None).unwrap(), entries(290, 300, 2, 500));
}

#[test]
fn max_size_reads_no_more_entries_than_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage_with(dir.path(), 102, 1000, 0);
    let all = entries(2, 102, 2, 1000);
    // Entry 5 is damaged: a read that stops before it never looks at it.
    let (segment, at) = find_in_segments(&dir.path().join("wal"), &payload(5, 1000)[..20]);
    flip_byte(&segment, at + 500);
    for max in [0, 1500, 2100, 3000] {
        let mut expected = all.clone();
        raft::util::limit_size(&mut expected, Some(max));
        assert!(expected.len() < 4, "the limit must stop before entry 5");
        assert_eq!(
            read(&s, 2, 102, Some(max)).unwrap(),
            expected,
            "max_size {max}"
        );
    }
    let error = raftwal_error(read(&s, 2, 102, None).unwrap_err());
    assert!(error.is_corruption(), "{error}");
}

#[test]
fn a_byte_flipped_after_open_is_an_error_naming_the_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage_with(dir.path(), 200, 300, 0);
    let (segment, at) = find_in_segments(&dir.path().join("wal"), &payload(150, 300)[..20]);
    flip_byte(&segment, at + 100);

    let error = raftwal_error(read(&s, 140, 160, None).unwrap_err());
    assert!(error.is_corruption(), "{error}");
    let (file, offset) = error.position().expect("the error names where");
    assert_eq!(file, segment);
    // The frame's offset: its length word and record header come just before the payload.
    assert!(
        offset < at && offset + 40 > at,
        "frame at {offset}, payload at {at}"
    );
    // Entries around it still read.
    assert_eq!(read(&s, 140, 150, None).unwrap(), entries(140, 150, 2, 300));
    assert_eq!(read(&s, 151, 160, None).unwrap(), entries(151, 160, 2, 300));
}

#[test]
fn a_flipped_length_word_is_an_error_not_a_shorter_entry() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage_with(dir.path(), 100, 300, 0);
    let (segment, at) = find_in_segments(&dir.path().join("wal"), &payload(50, 300)[..20]);
    // Where the frame starts: damage the payload, and the error names the frame; then undo.
    flip_byte(&segment, at + 10);
    let (_, frame) = raftwal_error(read(&s, 50, 51, None).unwrap_err())
        .position()
        .map(|(file, offset)| (file.to_path_buf(), offset))
        .unwrap();
    flip_byte(&segment, at + 10);
    assert_eq!(read(&s, 50, 51, None).unwrap(), entries(50, 51, 2, 300));

    flip_byte(&segment, frame);
    let error = raftwal_error(read(&s, 50, 51, None).unwrap_err());
    assert!(error.is_corruption(), "{error}");
    assert_eq!(error.position(), Some((segment.as_path(), frame)));
}

#[test]
fn the_tail_is_readable_while_the_writer_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = RaftStorage::create(dir.path(), b"node", voters(), options(0)).unwrap();
    for low in (2..400).step_by(7) {
        s.append(&entries(low, low + 7, 2, 400)).unwrap();
        assert_eq!(
            read(&s, low, low + 7, None).unwrap(),
            entries(low, low + 7, 2, 400)
        );
        assert_eq!(s.last_index(), Ok(low + 6));
    }
    assert_eq!(read(&s, 2, 401, None).unwrap(), entries(2, 401, 2, 400));
}

#[test]
fn submitted_entries_are_readable_before_and_after_they_are_durable() {
    for policy in [SyncPolicy::Grouped, SyncPolicy::Never] {
        let dir = tempfile::tempdir().unwrap();
        let options = options(0).group_commit(policy);
        let mut s = RaftStorage::create(dir.path(), b"node", voters(), options.clone()).unwrap();
        let mut pending = Vec::new();
        for low in (2..300).step_by(5) {
            pending.push(s.submit(None, &entries(low, low + 5, 2, 700)).unwrap());
            assert_eq!(
                read(&s, low, low + 5, None).unwrap(),
                entries(low, low + 5, 2, 700)
            );
        }
        for done in pending {
            done.wait().unwrap();
        }
        assert_eq!(read(&s, 2, 302, None).unwrap(), entries(2, 302, 2, 700));
        s.close().unwrap();
        let s = RaftStorage::open(dir.path(), options).unwrap();
        assert_eq!(read(&s, 2, 302, None).unwrap(), entries(2, 302, 2, 700));
    }
}

#[test]
fn reads_below_the_first_index_after_compaction_and_purge_are_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = storage_with(dir.path(), 400, 500, 0);
    s.snapshot_and_compact(250, b"state".to_vec()).unwrap();
    s.snapshot_and_compact(300, b"state".to_vec()).unwrap();
    assert!(!s.purge(1).unwrap().is_empty(), "old segments are deleted");
    let check = |s: &RaftStorage| {
        assert_eq!(s.first_index(), Ok(301));
        assert_eq!(
            read(s, 100, 310, None),
            Err(raft::Error::Store(StorageError::Compacted))
        );
        assert_eq!(read(s, 301, 400, None).unwrap(), entries(301, 400, 2, 500));
        assert_eq!(s.term(300), Ok(2));
    };
    check(&s);
    s.close().unwrap();
    check(&RaftStorage::open(dir.path(), options(0)).unwrap());
}

#[test]
fn overwritten_entries_read_back_as_the_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = storage_with(dir.path(), 60, 200, 0);
    s.save(
        Some(&HardState {
            term: 3,
            commit: 20,
            ..Default::default()
        }),
        &entries(30, 40, 3, 250),
    )
    .unwrap();
    let expected: Vec<Entry> = entries(2, 30, 2, 200)
        .into_iter()
        .chain(entries(30, 40, 3, 250))
        .collect();
    let check = |s: &RaftStorage| {
        assert_eq!(s.last_index(), Ok(39));
        assert_eq!(read(s, 2, 40, None).unwrap(), expected);
        assert_eq!((s.term(29), s.term(30)), (Ok(2), Ok(3)));
        assert_eq!(
            read(s, 2, 41, None),
            Err(raft::Error::Store(StorageError::Unavailable))
        );
    };
    check(&s);
    s.close().unwrap();
    check(&RaftStorage::open(dir.path(), options(0)).unwrap());
}
