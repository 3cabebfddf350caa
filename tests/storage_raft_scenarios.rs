//! raft-rs's `MemStorage` behaviours, as scenarios on `RaftStorage`: each is checked on the live
//! storage and again after closing it and reopening the directory.

use protobuf::Message as _;
use raft::{GetEntriesContext, Storage as _, StorageError};
use raftwal::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raftwal::{RaftStorage, StorageOptions, WalOptions};

fn options() -> StorageOptions {
    StorageOptions::new().wal(WalOptions::new().segment_size(16 * 1024))
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

fn voters() -> ConfState {
    ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    }
}

fn snapshot(index: u64, term: u64) -> Snapshot {
    let mut s = Snapshot::default();
    s.mut_metadata().index = index;
    s.mut_metadata().term = term;
    s.mut_metadata().set_conf_state(voters());
    s
}

fn hard_state(term: u64, commit: u64) -> HardState {
    HardState {
        term,
        commit,
        ..Default::default()
    }
}

/// A storage whose log was compacted into a snapshot at (2, 2) and then holds `entries`, with
/// `commit` committed: raft-rs's test fixture `entries = [3, 4, 5]`, reached through the API.
fn storage_with(dir: &std::path::Path, entries: &[Entry], commit: u64) -> RaftStorage {
    let mut s = RaftStorage::create(dir, b"node", ConfState::default(), options()).unwrap();
    s.apply_snapshot(snapshot(2, 2)).unwrap();
    s.save(Some(&hard_state(5, commit)), entries).unwrap();
    s
}

fn three_to_five() -> Vec<Entry> {
    vec![entry(3, 3), entry(4, 4), entry(5, 5)]
}

/// Runs `check` on `storage`, then on the storage reopened from its directory.
fn live_and_reopened(dir: &std::path::Path, storage: RaftStorage, check: impl Fn(&RaftStorage)) {
    check(&storage);
    storage.close().unwrap();
    let reopened = RaftStorage::open(dir, options()).unwrap();
    check(&reopened);
}

fn all_entries(s: &RaftStorage) -> Vec<Entry> {
    let (first, last) = (s.first_index().unwrap(), s.last_index().unwrap());
    s.entries(first, last + 1, None, GetEntriesContext::empty(false))
        .unwrap()
}

#[test]
fn term_is_known_from_the_compaction_point_to_the_last_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let s = storage_with(&dir, &three_to_five(), 5);
    live_and_reopened(&dir, s, |s| {
        assert_eq!(s.term(1), Err(raft::Error::Store(StorageError::Compacted)));
        // The entry before the first one: the snapshot's term, kept for matching.
        assert_eq!(s.term(2), Ok(2));
        assert_eq!(s.term(3), Ok(3));
        assert_eq!(s.term(4), Ok(4));
        assert_eq!(s.term(5), Ok(5));
        assert_eq!(
            s.term(6),
            Err(raft::Error::Store(StorageError::Unavailable))
        );
    });
}

#[test]
fn entries_honour_max_size_and_return_at_least_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let ents = vec![entry(3, 3), entry(4, 4), entry(5, 5), entry(6, 6)];
    let size = |i: usize| u64::from(ents[i].compute_size());
    let s = storage_with(&dir, &ents, 5);
    /// (low, high, max_size, expected)
    type Case = (u64, u64, Option<u64>, raft::Result<Vec<Entry>>);
    let cases: Vec<Case> = vec![
        (2, 6, None, Err(raft::Error::Store(StorageError::Compacted))),
        (3, 4, None, Ok(vec![entry(3, 3)])),
        (4, 5, None, Ok(vec![entry(4, 4)])),
        (4, 6, None, Ok(vec![entry(4, 4), entry(5, 5)])),
        (4, 7, None, Ok(vec![entry(4, 4), entry(5, 5), entry(6, 6)])),
        // Even a zero budget returns the first entry.
        (4, 7, Some(0), Ok(vec![entry(4, 4)])),
        (4, 7, Some(size(1) + size(2)), Ok(ents[1..3].to_vec())),
        (
            4,
            7,
            Some(size(1) + size(2) + size(3) / 2),
            Ok(ents[1..3].to_vec()),
        ),
        (
            4,
            7,
            Some(size(1) + size(2) + size(3) - 1),
            Ok(ents[1..3].to_vec()),
        ),
        (
            4,
            7,
            Some(size(1) + size(2) + size(3)),
            Ok(ents[1..4].to_vec()),
        ),
        // Past the last entry MemStorage panics; this storage answers Unavailable.
        (
            4,
            8,
            None,
            Err(raft::Error::Store(StorageError::Unavailable)),
        ),
    ];
    live_and_reopened(&dir, s, |s| {
        for (i, (low, high, max_size, want)) in cases.iter().enumerate() {
            let got = s.entries(*low, *high, *max_size, GetEntriesContext::empty(false));
            assert_eq!(&got, want, "case {i}: entries({low}, {high}, {max_size:?})");
        }
    });
}

#[test]
fn last_index_follows_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = storage_with(&dir, &three_to_five(), 5);
    assert_eq!(s.last_index(), Ok(5));
    s.append(&[entry(6, 5)]).unwrap();
    live_and_reopened(&dir, s, |s| assert_eq!(s.last_index(), Ok(6)));
}

#[test]
fn first_index_moves_with_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = storage_with(&dir, &three_to_five(), 5);
    assert_eq!(s.first_index(), Ok(3));
    s.snapshot_and_compact(3, "state at 3").unwrap();
    live_and_reopened(&dir, s, |s| assert_eq!(s.first_index(), Ok(4)));
}

#[test]
fn compact_drops_the_entries_before_the_index() {
    // (compact index, first index after, term of the first entry, entries left)
    for (idx, first, term, len) in [(2, 3, 3, 3), (3, 3, 3, 3), (4, 4, 4, 2), (5, 5, 5, 1)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("node");
        let mut s = storage_with(&dir, &three_to_five(), 5);
        if idx > 3 {
            // Compaction must stay behind a snapshot that covers what it drops.
            s.create_snapshot(idx - 1, format!("state at {}", idx - 1))
                .unwrap();
        }
        s.compact(idx).unwrap();
        live_and_reopened(&dir, s, |s| {
            assert_eq!(s.first_index(), Ok(first), "compact({idx})");
            let head = s
                .entries(first, first + 1, Some(1), GetEntriesContext::empty(false))
                .unwrap();
            assert_eq!(head[0].term, term, "compact({idx})");
            assert_eq!(all_entries(s).len(), len, "compact({idx})");
        });
    }
}

#[test]
fn snapshot_returns_the_newest_with_membership_and_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = storage_with(&dir, &three_to_five(), 5);
    s.set_conf_state(voters());
    s.create_snapshot(4, "state at 4").unwrap();
    live_and_reopened(&dir, s, |s| {
        let snap = s.snapshot(0, 2).unwrap();
        assert_eq!(snap.get_metadata().index, 4);
        assert_eq!(snap.get_metadata().term, 4);
        assert_eq!(snap.get_metadata().get_conf_state().voters, vec![1, 2, 3]);
        assert_eq!(&snap.data[..], b"state at 4");
        assert_eq!(s.snapshot(4, 2).unwrap(), snap);
        // A newer one must be taken before raft can have it.
        assert_eq!(
            s.snapshot(5, 2),
            Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable
            ))
        );
    });
}

#[test]
fn append_overlapping_conflicting_and_gapped() {
    /// (entries to append, the log afterwards or the refusal)
    type Case = (Vec<Entry>, Result<Vec<Entry>, &'static str>);
    let cases: Vec<Case> = vec![
        (three_to_five(), Ok(three_to_five())),
        (
            vec![entry(3, 3), entry(4, 6), entry(5, 6)],
            Ok(vec![entry(3, 3), entry(4, 6), entry(5, 6)]),
        ),
        (
            vec![entry(3, 3), entry(4, 4), entry(5, 5), entry(6, 5)],
            Ok(vec![entry(3, 3), entry(4, 4), entry(5, 5), entry(6, 5)]),
        ),
        // Overwriting compacted entries is refused.
        (
            vec![entry(2, 3), entry(3, 3), entry(4, 5)],
            Err("compacted"),
        ),
        // A conflicting entry truncates the log from its index.
        (vec![entry(4, 5)], Ok(vec![entry(3, 3), entry(4, 5)])),
        (
            vec![entry(6, 6)],
            Ok(vec![entry(3, 3), entry(4, 4), entry(5, 5), entry(6, 6)]),
        ),
        // A gap after the last entry, or inside the batch, is refused.
        (vec![entry(7, 6)], Err("gap")),
        (vec![entry(6, 6), entry(8, 6)], Err("gap")),
    ];
    for (i, (append, want)) in cases.into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("node");
        let mut s = storage_with(&dir, &three_to_five(), 2);
        let result = s.append(&append);
        let want = match (want, result) {
            (Ok(want), Ok(())) => want,
            (Err("compacted"), Err(raftwal::Error::LogCompacted { index: 2, .. }))
            | (Err("gap"), Err(raftwal::Error::SliceOutOfRange { .. })) => three_to_five(),
            (want, got) => panic!("case {i}: want {want:?}, got {got:?}"),
        };
        live_and_reopened(&dir, s, |s| assert_eq!(all_entries(s), want, "case {i}"));
    }
}

#[test]
fn apply_snapshot_refuses_an_out_of_date_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = RaftStorage::create(&dir, b"node", ConfState::default(), options()).unwrap();
    s.apply_snapshot(snapshot(4, 4)).unwrap();
    let out_of_date = |s: &mut RaftStorage, index, term| {
        assert!(matches!(
            s.apply_snapshot(snapshot(index, term)),
            Err(raftwal::Error::SnapshotOutOfDate { current: 4, .. })
        ));
    };
    out_of_date(&mut s, 3, 3);
    out_of_date(&mut s, 4, 4);
    s.close().unwrap();

    let mut s = RaftStorage::open(&dir, options()).unwrap();
    out_of_date(&mut s, 3, 3);
    let state = s.initial_state().unwrap();
    assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
    assert_eq!((state.hard_state.term, state.hard_state.commit), (4, 4));
    assert_eq!((s.first_index(), s.last_index()), (Ok(5), Ok(4)));
}

#[test]
fn apply_snapshot_replaces_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut s = storage_with(&dir, &three_to_five(), 2);
    let mut snap = snapshot(7, 6);
    snap.data = "leader state".into();
    s.apply_snapshot(snap.clone()).unwrap();
    live_and_reopened(&dir, s, |s| {
        assert_eq!((s.first_index(), s.last_index()), (Ok(8), Ok(7)));
        assert_eq!(s.term(7), Ok(6));
        assert_eq!(s.snapshot(0, 1), Ok(snap.clone()));
        assert_eq!(s.hard_state().commit, 7);
    });
}

#[test]
fn a_bootstrapped_storage_starts_initialized_at_index_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let s = RaftStorage::create(&dir, b"node", voters(), options()).unwrap();
    live_and_reopened(&dir, s, |s| {
        let state = s.initial_state().unwrap();
        assert!(state.initialized());
        assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
        assert_eq!((state.hard_state.term, state.hard_state.commit), (1, 1));
        assert_eq!((s.first_index(), s.last_index()), (Ok(2), Ok(1)));
        assert_eq!(s.term(1), Ok(1));
    });
}

#[test]
fn an_uninitialized_storage_has_no_membership_and_no_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let s = RaftStorage::create(&dir, b"node", ConfState::default(), options()).unwrap();
    live_and_reopened(&dir, s, |s| {
        assert!(!s.initial_state().unwrap().initialized());
        assert_eq!((s.first_index(), s.last_index()), (Ok(1), Ok(0)));
        assert_eq!(
            s.snapshot(0, 1),
            Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable
            ))
        );
    });
}
