//! etcd's WAL scenarios about creating, opening, locking and reading a log back, ported as
//! behaviours (etcd `server/storage/wal/wal_test.go`), with raftwal's stricter rules where it
//! deliberately differs.

mod common;

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use raftwal::eraftpb::HardState;
use raftwal::{Error, RecordType, Wal, WalOptions, WalSnapshot};

#[test]
fn create_refuses_a_directory_holding_a_wal_file() {
    let (_parent, dir) = parent_and_dir();
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("test.wal"), b"data").unwrap();

    let err = Wal::create(&dir, b"data").unwrap_err();

    assert!(
        matches!(err, Error::AlreadyExists { dir: ref d } if d == &dir),
        "{err:?}"
    );
    assert_eq!(fs::read(dir.join("test.wal")).unwrap(), b"data");
}

#[test]
fn create_refuses_a_directory_holding_a_first_segment() {
    let (_parent, dir) = parent_and_dir();
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("0000000000000000-0000000000000000.wal"), b"").unwrap();

    let err = Wal::create(&dir, b"").unwrap_err();

    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
}

/// Stricter than etcd, which only looks for `.wal` files: any other file means the directory
/// belongs to someone else.
#[test]
fn create_refuses_a_non_empty_directory() {
    let (parent, dir) = parent_and_dir();
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("notes.txt"), b"mine").unwrap();

    let err = Wal::create(&dir, b"").unwrap_err();

    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(fs::read(dir.join("notes.txt")).unwrap(), b"mine");
    assert!(!parent.path().join("wal.tmp").exists());
}

/// etcd's TestRestartCreateWal: a `<dir>.tmp` left by a create that crashed is thrown away and
/// the new log is built in its place.
#[test]
fn create_replaces_a_stale_tmp_directory() {
    let (parent, dir) = parent_and_dir();
    fs::create_dir(&dir).unwrap();
    let tmp = parent.path().join("wal.tmp");
    fs::create_dir(&tmp).unwrap();
    fs::write(tmp.join("test"), b"left by a crash").unwrap();

    create(&dir, b"abc").close().unwrap();

    assert!(!tmp.exists());
    let mut wal = open_for_read(&dir, &start()).unwrap();
    assert_eq!(wal.read_all().unwrap().metadata, b"abc");
}

/// etcd's TestOpenAtIndex, with the second segment numbered 1 rather than 2: raftwal requires
/// sequence numbers without gaps (etcd lets 0 → 2 through).
#[test]
fn open_locks_from_the_segment_covering_the_snapshot_index() {
    let (_parent, dir) = parent_and_dir();
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("0000000000000000-0000000000000000.wal"), b"").unwrap();

    let wal = open(&dir, &start()).unwrap();
    assert_eq!(
        wal.locked_segments(),
        ["0000000000000000-0000000000000000.wal"]
    );
    wal.close().unwrap();

    fs::write(dir.join("0000000000000001-000000000000000a.wal"), b"").unwrap();
    // Index 5 lives in the first segment, so both are needed; the tail is the second.
    let wal = open(&dir, &WalSnapshot::new(5, 0)).unwrap();
    assert_eq!(
        wal.locked_segments(),
        [
            "0000000000000000-0000000000000000.wal",
            "0000000000000001-000000000000000a.wal"
        ]
    );
    wal.close().unwrap();
    // From index 10 on, only the second segment is needed.
    let wal = open(&dir, &WalSnapshot::new(10, 0)).unwrap();
    assert_eq!(
        wal.locked_segments(),
        ["0000000000000001-000000000000000a.wal"]
    );
    wal.close().unwrap();
}

#[test]
fn open_of_a_directory_without_segments_is_segment_not_found() {
    let parent = tempfile::tempdir().unwrap();

    let err = open(parent.path(), &start()).unwrap_err();

    assert!(
        matches!(err, Error::SegmentNotFound { index: 0, .. }),
        "{err:?}"
    );
}

/// etcd's TestOpenAtUncommittedIndex: an entry at the snapshot index itself (index 0 here) is
/// covered by the snapshot and reading past it is fine.
#[test]
fn open_at_an_uncommitted_index_reads_cleanly() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    wal.save_snapshot_marker(&start()).unwrap();
    wal.save(&HardState::default(), &[bare(0)]).unwrap();
    wal.close().unwrap();

    let mut wal = open(&dir, &start()).unwrap();
    let recovered = wal.read_all().unwrap();

    assert!(recovered.entries.is_empty());
}

/// etcd's TestOpenForRead: a reader takes no locks, so it reads every segment beside a live
/// writer, including those whose locks the writer released.
#[test]
fn open_for_read_reads_everything_beside_a_live_writer() {
    let (_parent, dir) = parent_and_dir();
    let mut writer = create(&dir, b"");
    for i in 0..10 {
        writer.save(&HardState::default(), &[bare(i)]).unwrap();
        writer.cut().unwrap();
    }
    writer.release_lock_to(5).unwrap();

    let mut reader = open_for_read(&dir, &start()).unwrap();
    let recovered = reader.read_all().unwrap();

    assert_eq!(indexes(&recovered.entries), (1..=9).collect::<Vec<_>>());
    // The writer is unaffected and goes on appending.
    writer.save(&HardState::default(), &[bare(10)]).unwrap();
    writer.close().unwrap();
}

#[test]
fn a_second_writer_in_the_same_process_is_locked_out() {
    let (_parent, dir) = parent_and_dir();
    let writer = create(&dir, b"");

    let err = open(&dir, &start()).unwrap_err();

    assert!(
        matches!(err, Error::Locked { ref file } if file == &dir.join("0000000000000000-0000000000000000.wal")),
        "{err:?}"
    );
    writer.close().unwrap();
    assert!(open(&dir, &start()).is_ok());
}

/// Set in the child process of [`a_second_writer_in_another_process_is_locked_out`]: the WAL
/// directory it holds open.
const LOCK_HOLDER_DIR: &str = "RAFTWAL_TEST_LOCK_HOLDER_DIR";

/// The child half of [`a_second_writer_in_another_process_is_locked_out`]: opens the WAL for
/// writing, says "locked", and holds it until its stdin closes (the parent is done or died).
#[test]
#[ignore = "run as a child process by a_second_writer_in_another_process_is_locked_out"]
fn lock_holder_child() {
    let Some(dir) = std::env::var_os(LOCK_HOLDER_DIR) else {
        return;
    };
    let mut wal = open(dir.as_ref(), &start()).unwrap();
    wal.read_all().unwrap();
    println!("locked");
    std::io::stdout().flush().unwrap();
    let (done, closed) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = done.send(());
    });
    // Bounded, so a child can never outlive a test run by much.
    let _ = closed.recv_timeout(Duration::from_secs(120));
    wal.close().unwrap();
}

/// Must show 4: flock locks hold across processes. The test binary re-executes itself as the
/// child that holds the log open.
#[test]
fn a_second_writer_in_another_process_is_locked_out() {
    let (_parent, dir) = parent_and_dir();
    create(&dir, b"").close().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lock_holder_child", "--ignored", "--nocapture"])
        .env(LOCK_HOLDER_DIR, &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    // libtest may print "test lock_holder_child ... " on the same line.
    let said_locked = stdout
        .by_ref()
        .any(|line| line.unwrap().split_whitespace().last() == Some("locked"));
    assert!(said_locked, "the child exited before locking the WAL");

    let err = open(&dir, &start()).unwrap_err();

    drop(child.stdin.take());
    // Drain the child's report so that it never writes to a closed pipe.
    stdout.for_each(drop);
    let status = child.wait().unwrap();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    assert!(status.success());
    // The child's exit released its locks.
    let mut wal = open(&dir, &start()).unwrap();
    wal.read_all().unwrap();
}

/// A dropped writer leaves the log unlocked even while its files stay open elsewhere: here a
/// duplicated descriptor of the tail segment stands in for a child process that another thread
/// is spawning (it shares every open file until it execs, and a lock belongs to the open file).
#[test]
fn a_dropped_writer_unlocks_its_segments_even_if_the_files_stay_open() {
    let (_parent, dir) = parent_and_dir();
    create(&dir, b"").close().unwrap();
    let mut wal = open(&dir, &start()).unwrap();
    wal.read_all().unwrap();
    let tail = std::fs::canonicalize(dir.join(segment_names(&dir).last().unwrap())).unwrap();
    let shared: Vec<std::os::fd::OwnedFd> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| {
            let fd = fd.ok()?;
            (std::fs::read_link(fd.path()).ok()? == tail).then(|| {
                let raw: i32 = fd.file_name().to_str()?.parse().ok()?;
                // SAFETY: `raw` is a descriptor this process has open; dup gives a new one we own.
                let dup = unsafe { libc::dup(raw) };
                (dup >= 0).then(|| unsafe { std::os::fd::FromRawFd::from_raw_fd(dup) })
            })?
        })
        .collect();
    assert!(
        !shared.is_empty(),
        "the writer's tail segment should be open"
    );

    drop(wal);

    let mut reopened = open(&dir, &start()).expect("a dropped writer must not keep its locks");
    reopened.read_all().unwrap();
    drop(shared);
}

/// etcd's TestRecoverAfterCut: with segment 4 gone, any open that needs it fails on the gap in
/// sequence numbers; opens from snapshot 5 on do not need it and read the entries after it.
#[test]
fn a_missing_middle_segment_is_a_segment_gap() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"metadata");
    for i in 0..10 {
        wal.save_snapshot_marker(&snapshot(i, 1)).unwrap();
        wal.save(&HardState::default(), &[bare(i)]).unwrap();
        wal.cut().unwrap();
    }
    wal.close().unwrap();
    fs::remove_file(dir.join("0000000000000004-0000000000000004.wal")).unwrap();

    for i in 0..10 {
        let opened = open(&dir, &WalSnapshot::new(i, 1));
        if i <= 4 {
            let err = opened.unwrap_err();
            assert!(
                matches!(err, Error::SegmentGap { ref before, ref after }
                    if before == "0000000000000003-0000000000000003.wal"
                        && after == "0000000000000005-0000000000000005.wal"),
                "open at {i}: {err:?}"
            );
            continue;
        }
        let recovered = opened.unwrap().read_all().unwrap();
        assert_eq!(recovered.metadata, b"metadata");
        assert_eq!(
            indexes(&recovered.entries),
            (i + 1..10).collect::<Vec<_>>(),
            "open at {i}"
        );
    }
}

/// etcd's TestOpenWithMaxIndex: an entry that leaves a gap after the snapshot is refused.
#[test]
fn an_entry_leaving_a_gap_is_slice_out_of_range() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    wal.save(&HardState::default(), &[bare(u64::MAX / 2)])
        .unwrap();
    wal.close().unwrap();

    let mut wal = open(&dir, &start()).unwrap();
    let err = wal.read_all().unwrap_err();

    assert!(
        matches!(err, Error::SliceOutOfRange { index, next: 1 } if index == u64::MAX / 2),
        "{err:?}"
    );
}

/// etcd issue 22442: raft overwrote entries 3 and 4 with a new term and a snapshot at {4, 2}
/// followed. Reading from that snapshot must not return entry 5 of the old term: the
/// overwrite at or below the snapshot index voided everything after it (etcd returns it).
#[test]
fn an_overwrite_at_or_below_the_snapshot_voids_the_entries_after_it() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    let old: Vec<_> = (1..=5).map(|i| entry(i, 1, b"old")).collect();
    wal.save(&hard_state(1, 1, 0), &old).unwrap();
    wal.save(
        &hard_state(2, 2, 4),
        &[entry(3, 2, b"new"), entry(4, 2, b"new")],
    )
    .unwrap();
    wal.save_snapshot_marker(&snapshot(4, 2)).unwrap();
    wal.close().unwrap();

    let mut wal = open_for_read(&dir, &WalSnapshot::new(4, 2)).unwrap();
    let recovered = wal.read_all().unwrap();

    assert_eq!(recovered.entries, []);
    assert_eq!(recovered.hard_state, hard_state(2, 2, 4));
}

/// etcd drops this error in write mode and lets the node append to a log that does not hold
/// its snapshot; raftwal reports it and refuses writes.
#[test]
fn a_missing_snapshot_is_snapshot_not_found_in_write_mode() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    let entries: Vec<_> = (1..=3).map(|i| entry(i, 1, b"x")).collect();
    wal.save(&hard_state(1, 1, 3), &entries).unwrap();
    wal.close().unwrap();
    let tail = last_segment(&dir);
    let before = fs::read(&tail).unwrap();

    let mut wal = open(&dir, &WalSnapshot::new(2, 1)).unwrap();
    let err = wal.read_all().unwrap_err();

    assert!(
        matches!(err, Error::SnapshotNotFound { index: 2, term: 1 }),
        "{err:?}"
    );
    let refused = wal.save(&hard_state(1, 1, 3), &[entry(4, 1, b"y")]);
    assert!(
        matches!(refused, Err(Error::Poisoned { .. })),
        "{refused:?}"
    );
    drop(wal);
    assert!(fs::read(&tail).unwrap() == before, "the log changed");
}

#[test]
fn a_snapshot_record_with_another_term_is_snapshot_mismatch() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    let entries: Vec<_> = (1..=3).map(|i| entry(i, 1, b"x")).collect();
    wal.save(&hard_state(1, 1, 3), &entries).unwrap();
    wal.save_snapshot_marker(&snapshot(2, 1)).unwrap();
    wal.close().unwrap();

    let mut wal = open_for_read(&dir, &WalSnapshot::new(2, 3)).unwrap();
    let err = wal.read_all().unwrap_err();

    assert!(
        matches!(
            err,
            Error::SnapshotMismatch {
                index: 2,
                expected: 3,
                found: 1
            }
        ),
        "{err:?}"
    );
}

/// raftwal never writes two different metadata records; a foreign one is appended with a
/// valid frame and CRC so that only the metadata rule can catch it.
#[test]
fn a_metadata_record_with_other_bytes_is_metadata_conflict() {
    let (_parent, dir) = parent_and_dir();
    create(&dir, b"node-1").close().unwrap();
    let tail = last_segment(&dir);
    let offset = append_raw_record(&tail, RecordType::Metadata, b"node-2");

    let mut wal = open_for_read(&dir, &start()).unwrap();
    let err = wal.read_all().unwrap_err();

    assert!(
        matches!(err, Error::MetadataConflict { ref file, offset: o } if file == &tail && o == offset),
        "{err:?}"
    );
}

/// etcd's TestVerify: verify passes on a sound log and returns its HardState; a middle segment
/// truncated to nothing breaks the CRC chain at the start of the next one.
#[test]
fn verify_returns_the_hard_state_and_names_an_emptied_middle_segment() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    for i in 0..5 {
        let data = format!("waldata{}", i + 1);
        wal.save(&HardState::default(), &[entry(i, 0, data.as_bytes())])
            .unwrap();
        wal.cut().unwrap();
    }
    let hs = hard_state(1, 3, 5);
    wal.save(&hs, &[]).unwrap();

    assert_eq!(WalOptions::new().verify(&dir, &start()).unwrap(), hs);

    let names = segment_names(&dir);
    set_len(&dir.join(&names[2]), 0);
    let err = WalOptions::new().verify(&dir, &start()).unwrap_err();
    // The empty segment lost its header, which no crash does: corruption, named where it is.
    assert!(err.is_corruption(), "{err:?}");
    assert_eq!(err.position(), Some((dir.join(&names[2]).as_path(), 0)));
    wal.close().unwrap();
}

/// etcd's TestValidSnapshotEntries: snapshot markers above the last commit index are unusable.
#[test]
fn valid_snapshot_entries_drops_snapshots_above_commit() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    wal.save_snapshot_marker(&snapshot(1, 1)).unwrap();
    wal.save(&hard_state(1, 0, 1), &[]).unwrap();
    wal.save_snapshot_marker(&snapshot(2, 1)).unwrap();
    wal.save_snapshot_marker(&snapshot(3, 2)).unwrap();
    wal.save(&hard_state(2, 0, 3), &[]).unwrap();
    // Above commit 3: orphaned.
    wal.save_snapshot_marker(&snapshot(4, 2)).unwrap();
    wal.close().unwrap();

    let valid = WalOptions::new().valid_snapshot_entries(&dir).unwrap();

    assert_eq!(
        valid,
        [start(), snapshot(1, 1), snapshot(2, 1), snapshot(3, 2)]
    );
}

/// etcd's TestValidSnapshotEntriesAfterPurgeWal: with a 64-byte segment size every save cuts;
/// once the first segment is purged the scan starts from the next one and adopts its CRC.
#[test]
fn valid_snapshot_entries_works_after_the_first_segment_is_purged() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = options(64).create(&dir, b"").unwrap();
    wal.save_snapshot_marker(&snapshot(1, 1)).unwrap();
    wal.save(&hard_state(1, 0, 1), &[]).unwrap();
    wal.save_snapshot_marker(&snapshot(2, 1)).unwrap();
    wal.save_snapshot_marker(&snapshot(3, 2)).unwrap();
    for _ in 0..128 {
        wal.save(&hard_state(2, 0, 3), &[]).unwrap();
    }
    wal.close().unwrap();
    let names = segment_names(&dir);
    assert!(names.len() > 100, "{} segments", names.len());
    fs::remove_file(dir.join(&names[0])).unwrap();

    let valid = WalOptions::new().valid_snapshot_entries(&dir).unwrap();

    // Snapshots 0 and 1 went with the first segment.
    assert_eq!(valid, [snapshot(2, 1), snapshot(3, 2)]);
}

/// etcd does not reload its HardState when it reopens a log, so a cut after a restart (before
/// the next HardState is saved) writes a header of only the crc and metadata records. Such a
/// segment, with nothing appended yet, is sound: the header's HardState is optional.
#[test]
fn a_cut_segment_whose_header_has_no_hard_state_is_sound() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = options(4096).create(&dir, b"m").unwrap();
    wal.save(&hard_state(1, 1, 1), &[entry(1, 1, b"x")])
        .unwrap();
    wal.cut().unwrap();
    wal.close().unwrap();
    let tail = last_segment(&dir);
    let header = frames(&tail);
    assert_eq!(header.len(), 3, "crc, metadata, HardState");
    // Keep the crc and metadata records, then preallocated zeros: etcd's header after a restart.
    set_len(&tail, header[1].1);
    set_len(&tail, 4096);

    assert!(WalOptions::new().check(&dir).unwrap().is_sound());
    let mut wal = open(&dir, &start()).unwrap();
    let recovered = wal.read_all().unwrap();
    assert_eq!(indexes(&recovered.entries), vec![1]);
    wal.save(&hard_state(1, 1, 2), &[entry(2, 1, b"y")])
        .unwrap();
    wal.close().unwrap();
    assert_eq!(
        indexes(
            &open_for_read(&dir, &start())
                .unwrap()
                .read_all()
                .unwrap()
                .entries
        ),
        vec![1, 2]
    );
}
