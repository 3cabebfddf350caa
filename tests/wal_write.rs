//! etcd's WAL scenarios about appending: cuts and their names, automatic cuts, large entries,
//! empty saves, lock release, and which saves are made durable (etcd
//! `server/storage/wal/wal_test.go`, ported as behaviours).

mod common;

use std::fs;

use common::*;
use raftwal::eraftpb::HardState;
use raftwal::fs::{FileSystem as _, RealFs};
use raftwal::{RecordType, Wal, WalOptions, WalSnapshot};

const FIRST: &str = "0000000000000000-0000000000000000.wal";

/// etcd's TestCut: a cut names the new segment after the next sequence number and the index
/// after the last entry (raised by a snapshot marker), and starts it with the last HardState,
/// so that a segment read alone from a snapshot inside it recovers that state.
#[test]
fn cut_names_segments_and_carries_the_hard_state() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    let state = hard_state(1, 0, 0);
    wal.save(&state, &[]).unwrap();
    wal.cut().unwrap();
    assert_eq!(
        wal.locked_segments().last().unwrap(),
        "0000000000000001-0000000000000001.wal"
    );

    wal.save(&HardState::default(), &[entry(1, 1, &[1])])
        .unwrap();
    wal.cut().unwrap();
    let snap = snapshot(2, 1);
    wal.save_snapshot_marker(&snap).unwrap();
    let tail = "0000000000000002-0000000000000002.wal";
    assert_eq!(wal.locked_segments().last().unwrap(), tail);

    // Before close: the cut itself made the new segment durable and visible.
    let alone = tempfile::tempdir().unwrap();
    fs::copy(dir.join(tail), alone.path().join(tail)).unwrap();
    let mut reader = open_for_read(alone.path(), &snap).unwrap();
    let recovered = reader.read_all().unwrap();
    assert_eq!(recovered.hard_state, state);
    assert_eq!(recovered.entries, []);
    wal.close().unwrap();
}

/// etcd's TestSaveWithCut with 500-byte entries in a 2048-byte segment.
///
/// raftwal cuts right after the save that takes the segment to the segment size. etcd checks
/// the file offset before flushing the save's own bytes, so it cuts one save later (after entry
/// 4, naming the new segment `1-5`). Here the first segment holds the 72-byte header, a 24-byte
/// HardState frame, then per save a 528-byte entry frame and a 24-byte HardState frame: 1752
/// bytes after 3 saves, 2304 ≥ 2048 after the 4th (entry 3). The cut follows it, so the new
/// segment starts at index 4 and entry 4 is its first.
#[test]
fn save_cuts_right_after_the_write_that_reaches_the_segment_size() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = options(2048).create(&dir, b"metadata").unwrap();
    let state = hard_state(1, 0, 0);
    wal.save(&state, &[]).unwrap();
    let mut big = vec![0u8; 500];
    big[..13].copy_from_slice(b"Hello World!!");
    for index in 0..5 {
        wal.save(&state, &[entry(index, 1, &big)]).unwrap();
    }
    wal.close().unwrap();

    assert_eq!(
        segment_names(&dir),
        [FIRST, "0000000000000001-0000000000000004.wal"]
    );
    assert_eq!(fs::metadata(dir.join(FIRST)).unwrap().len(), 2304);
    let entries_per_file: Vec<(String, u64)> = WalOptions::new()
        .raw_records(&dir)
        .unwrap()
        .map(Result::unwrap)
        .filter(|r| r.kind == RecordType::Entry)
        .map(|r| {
            // merge_from_bytes, not parse_from_bytes: the one that works under both codecs.
            let mut e = raftwal::eraftpb::Entry::default();
            protobuf::Message::merge_from_bytes(&mut e, &r.data).unwrap();
            (r.file, e.index)
        })
        .collect();
    assert_eq!(
        entries_per_file.last().unwrap(),
        &("0000000000000001-0000000000000004.wal".to_string(), 4)
    );
    assert_eq!(
        entries_per_file
            .iter()
            .filter(|(file, _)| file == FIRST)
            .count(),
        4
    );

    let mut wal = options(2048).open(&dir, &start()).unwrap();
    assert_eq!(
        wal.locked_segments().last().unwrap(),
        "0000000000000001-0000000000000004.wal"
    );
    let recovered = wal.read_all().unwrap();
    assert_eq!(recovered.hard_state, state);
    // Entry 0 is covered by the empty snapshot the log was opened at.
    assert_eq!(indexes(&recovered.entries), [1, 2, 3, 4]);
    assert!(recovered.entries.iter().all(|e| e.data == big));
}

/// etcd's TestRecover with 10, 20 and 40 MB entries in the default 64 MB segments: two such
/// entries at once take a segment past its size (the 40 MB case cuts), and everything comes
/// back, with only the last HardState.
#[test]
fn entries_of_10_20_and_40_mb_round_trip() {
    for (seed, mb) in [(1u64, 10usize), (2, 20), (3, 40)] {
        let (_parent, dir) = parent_and_dir();
        let mut wal = Wal::create(&dir, b"metadata").unwrap();
        wal.save_snapshot_marker(&start()).unwrap();
        let data = random_bytes(mb << 20, seed);
        let entries = [entry(1, 1, &data), entry(2, 2, &data)];
        wal.save(&HardState::default(), &entries).unwrap();
        for state in [hard_state(1, 1, 1), hard_state(2, 2, 2)] {
            wal.save(&state, &[]).unwrap();
        }
        wal.close().unwrap();
        drop(data);

        let mut wal = Wal::open(&dir, &start()).unwrap();
        let recovered = wal.read_all().unwrap();

        assert_eq!(recovered.metadata, b"metadata", "{mb} MB");
        assert!(recovered.entries == entries, "{mb} MB entries differ");
        assert_eq!(recovered.hard_state, hard_state(2, 2, 2), "{mb} MB");
        assert_eq!(segment_names(&dir).len(), if mb == 40 { 2 } else { 1 });
        wal.close().unwrap();
    }
}

/// etcd's TestSaveEmpty: an empty HardState without entries writes and syncs nothing.
#[test]
fn an_empty_save_writes_nothing() {
    let (_parent, dir) = parent_and_dir();
    let fs = CountingFs::default();
    let mut wal = fs.options(NO_CUT_SEGMENT_SIZE).create(&dir, b"").unwrap();
    let bytes = fs::read(dir.join(FIRST)).unwrap();
    let (writes, syncs) = (fs.counters.writes(FIRST), fs.counters.syncs(FIRST));

    wal.save(&HardState::default(), &[]).unwrap();

    assert_eq!(fs.counters.writes(FIRST), writes);
    assert_eq!(fs.counters.syncs(FIRST), syncs);
    wal.sync().unwrap();
    assert!(
        fs::read(dir.join(FIRST)).unwrap() == bytes,
        "the segment changed"
    );
    wal.close().unwrap();
}

/// Whether another handle can take the lock of the segment `name` in `dir` (and gives it back).
fn lockable(dir: &std::path::Path, name: &str) -> bool {
    let file = RealFs.open_file(&dir.join(name), true).unwrap();
    let taken = file.try_lock().unwrap();
    if taken {
        file.unlock().unwrap();
    }
    taken
}

/// etcd's TestReleaseLockTo: a release keeps the last segment starting below the index and
/// every later one, and really unlocks the rest.
#[test]
fn release_lock_to_keeps_exactly_the_segments_still_needed() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    // With one segment there is nothing to release.
    wal.release_lock_to(10).unwrap();
    assert_eq!(wal.locked_segments(), [FIRST]);
    for i in 0..10 {
        wal.save(&HardState::default(), &[bare(i)]).unwrap();
        wal.cut().unwrap();
    }
    // Segments 0-0 .. 10-10; segment k starts at index k.
    let start_index = |name: &String| raftwal::SegmentName::parse(name).unwrap().index;

    wal.release_lock_to(5).unwrap();
    let locked = wal.locked_segments();
    assert_eq!(
        locked.iter().map(start_index).collect::<Vec<_>>(),
        [4, 5, 6, 7, 8, 9, 10]
    );
    for name in segment_names(&dir) {
        assert_eq!(lockable(&dir, &name), !locked.contains(&name), "{name}");
    }

    wal.release_lock_to(15).unwrap();
    let locked = wal.locked_segments();
    assert_eq!(locked, ["000000000000000a-000000000000000a.wal"]);
    assert!(lockable(&dir, "0000000000000009-0000000000000009.wal"));
    assert!(!lockable(&dir, &locked[0]));
    wal.close().unwrap();
}

/// etcd's TestTailWriteNoSlackSpace: a tail segment without preallocated space after its last
/// frame is appended to by extending it.
#[test]
fn a_tail_without_slack_space_is_appended_to() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"metadata");
    for i in 1..=5u64 {
        wal.save(&hard_state(1, 0, 0), &[entry(i, 1, &[i as u8])])
            .unwrap();
    }
    wal.close().unwrap();
    let tail = dir.join(FIRST);
    let end = frames_end(&tail);
    set_len(&tail, end);

    let mut wal = open(&dir, &start()).unwrap();
    assert_eq!(wal.read_all().unwrap().entries.len(), 5);
    for i in 6..=10u64 {
        wal.save(&hard_state(1, 0, 0), &[entry(i, 1, &[i as u8])])
            .unwrap();
    }
    wal.close().unwrap();

    let mut wal = open(&dir, &start()).unwrap();
    let recovered = wal.read_all().unwrap();
    assert_eq!(indexes(&recovered.entries), (1..=10).collect::<Vec<_>>());
    assert!(recovered
        .entries
        .iter()
        .all(|e| e.data[..] == [e.index as u8]));
    wal.close().unwrap();
}

/// Must show 5: a change of term or of vote alone is a new promise raft must keep across a
/// crash, so the save syncs; a commit-only change may be recomputed and does not. Each state
/// is persisted: the synced ones are on disk at once (a reader sees them beside the writer),
/// the commit-only one once `close` syncs it.
#[test]
fn a_term_or_vote_change_alone_is_synced_and_persisted() {
    let (_parent, dir) = parent_and_dir();
    let fs = CountingFs::default();
    let mut wal = fs.options(NO_CUT_SEGMENT_SIZE).create(&dir, b"").unwrap();
    let syncs = || fs.counters.syncs(FIRST);
    let read_state = || {
        let mut reader = open_for_read(&dir, &start()).unwrap();
        reader.read_all().unwrap().hard_state
    };
    let base = syncs();

    let term_only = hard_state(1, 0, 0);
    wal.save(&term_only, &[]).unwrap();
    assert_eq!(syncs(), base + 1, "a term change must sync");
    assert_eq!(read_state(), term_only);

    let vote_only = hard_state(1, 2, 0);
    wal.save(&vote_only, &[]).unwrap();
    assert_eq!(syncs(), base + 2, "a vote change must sync");
    assert_eq!(read_state(), vote_only);

    let commit_only = hard_state(1, 2, 5);
    wal.save(&commit_only, &[]).unwrap();
    assert_eq!(syncs(), base + 2, "a commit-only change need not sync");

    wal.close().unwrap();
    assert_eq!(syncs(), base + 3, "close syncs what was written");
    let mut wal = options(NO_CUT_SEGMENT_SIZE)
        .open(&dir, &WalSnapshot::default())
        .unwrap();
    assert_eq!(wal.read_all().unwrap().hard_state, commit_only);
}
