//! etcd's WAL scenarios about damaged logs: torn writes, lengths past the end of file, repair,
//! and corruption that must be reported, never cut off (etcd `wal_test.go` and
//! `repair_test.go`, ported as behaviours).

mod common;

use std::fs;
use std::path::Path;

use common::*;
use raftwal::eraftpb::{Entry, HardState};
use raftwal::Error;
use raftwal::WalOptions;

const FIRST: &str = "0000000000000000-0000000000000000.wal";

/// etcd's TestOpenOnTornWrite, as a crash can produce it: entries 0..=20 are saved (and synced)
/// one by one, then entries 21..=39 in one save whose first sector never reached the disk while
/// later ones did. Opening for write ends the log at that zero sector (entries 1..=20: entry 0
/// is covered by the empty snapshot) and wipes the stale frames after it, so appending entries
/// 20..=24 and reading back gives etcd's (20 - 1) + 5 = 24 entries: the old 1..=19 and the new
/// 20..=24, with no trace of the old 21..=39. Entries carry 100 bytes so that the batch spans
/// several sectors. Unlike etcd, the later sectors that did persist make the tail torn, not
/// sound: opening for write refuses it until a repair cuts it.
#[test]
fn a_torn_write_in_the_middle_of_the_last_segment_is_torn_and_repair_ends_the_log_there() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    for i in 0..=20 {
        wal.save(&HardState::default(), &[entry(i, 0, &[0xab; 100])])
            .unwrap();
    }
    let batch: Vec<_> = (21..40).map(|i| entry(i, 0, &[0xab; 100])).collect();
    wal.save(&HardState::default(), &batch).unwrap();
    wal.close().unwrap();
    let tail = dir.join(FIRST);
    let frames = frames(&tail);
    // Three header frames (crc, metadata, snapshot), then one frame per entry.
    let torn_from = frames[3 + 21].0;
    let sector_end = (torn_from / 512 + 1) * 512;
    assert!(
        frames.last().unwrap().1 > sector_end + 512,
        "the batch must outlive the torn sector"
    );
    write_at(
        &tail,
        torn_from,
        &vec![0; (sector_end - torn_from) as usize],
    );

    let mut wal = open(&dir, &start()).unwrap();
    let err = wal.read_all().unwrap_err();
    assert!(err.is_torn(), "{err:?}");
    assert_eq!(err.position(), Some((tail.as_path(), torn_from)));
    drop(wal);
    let repaired = WalOptions::new()
        .repair(&dir)
        .unwrap()
        .expect("a torn tail to cut");
    assert_eq!(repaired.offset, torn_from);

    let mut wal = open(&dir, &start()).unwrap();
    let recovered = wal.read_all().unwrap();
    assert_eq!(indexes(&recovered.entries), (1..=20).collect::<Vec<_>>());
    for i in 20..25 {
        wal.save(&HardState::default(), &[entry(i, 0, b"new")])
            .unwrap();
    }
    wal.close().unwrap();

    let mut reader = open_for_read(&dir, &start()).unwrap();
    let entries = reader.read_all().unwrap().entries;
    assert_eq!(entries.len(), (20 - 1) + 5);
    assert_eq!(indexes(&entries), (1..=24).collect::<Vec<_>>());
    assert!(entries[..19].iter().all(|e| e.data[..] == [0xab; 100][..]));
    assert!(entries[19..].iter().all(|e| e.data[..] == b"new"[..]));
}

/// etcd's TestOpenOnTornWrite zeroes exactly one synced frame between intact, synced ones and
/// reads the log as ending there, silently dropping the acknowledged entries after it. No crash
/// loses part of a sector while keeping the rest, so raftwal reports corruption instead.
#[test]
fn a_zeroed_frame_between_intact_ones_is_corruption_not_a_torn_write() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    for i in 0..40 {
        wal.save(&HardState::default(), &[bare(i)]).unwrap();
    }
    wal.close().unwrap();
    let tail = dir.join(FIRST);
    let (start_21, end_21) = frames(&tail)[3 + 21];
    write_at(&tail, start_21, &vec![0; (end_21 - start_21) as usize]);

    for write in [false, true] {
        let mut wal = if write {
            open(&dir, &start())
        } else {
            open_for_read(&dir, &start())
        }
        .unwrap();
        let err = wal.read_all().unwrap_err();
        assert!(
            matches!(err, Error::Corrupt { ref file, offset, .. } if file == &tail && offset == start_21),
            "write mode {write}: {err:?}"
        );
    }
}

/// etcd's TestLastRecordLengthExceedFileEnd, as a crash can produce it: the file ends inside
/// the last record (appending to a tail without slack space, only part of the extension
/// reached the disk), so its length word claims bytes the file does not have. That is a torn
/// write: a reader stops before it, a writer refuses to append until repair.
#[test]
fn a_length_word_beyond_the_end_of_file_is_a_torn_tail() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    for i in 1..=3u64 {
        let data = format!("waldata{i}");
        wal.save(&HardState::default(), &[entry(i, 0, data.as_bytes())])
            .unwrap();
    }
    wal.close().unwrap();
    let tail = dir.join(FIRST);
    let last = *frames(&tail).last().unwrap();
    set_len(&tail, last.1 - 10);

    let mut reader = open_for_read(&dir, &start()).unwrap();
    assert_eq!(indexes(&reader.read_all().unwrap().entries), [1, 2]);

    let mut writer = open(&dir, &start()).unwrap();
    let err = writer.read_all().unwrap_err();
    assert!(
        matches!(err, Error::TornTail { ref file, offset } if file == &tail && offset == last.0),
        "{err:?}"
    );
}

/// etcd's exact TestLastRecordLengthExceedFileEnd bytes: the last length word was rewritten to
/// claim 1000 bytes while the record behind it is intact. etcd reads that as torn (and a repair
/// would cut an acknowledged record off); raftwal sees a damaged word in front of an intact
/// record and reports corruption at that frame, in both modes.
#[test]
fn a_length_word_overstating_an_intact_last_record_is_corruption() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    for i in 1..=3u64 {
        let data = format!("waldata{i}");
        wal.save(&HardState::default(), &[entry(i, 0, data.as_bytes())])
            .unwrap();
    }
    wal.close().unwrap();
    let tail = dir.join(FIRST);
    let last = *frames(&tail).last().unwrap();
    set_len(&tail, last.1);
    let word = u64::from_le_bytes(
        fs::read(&tail).unwrap()[last.0 as usize..][..8]
            .try_into()
            .unwrap(),
    );
    // Keep the padding flags in the top byte; claim 1000 bytes of record.
    write_at(&tail, last.0, &((word & (0xff << 56)) | 1000).to_le_bytes());

    for write in [false, true] {
        let mut wal = if write {
            open(&dir, &start())
        } else {
            open_for_read(&dir, &start())
        }
        .unwrap();
        let err = wal.read_all().unwrap_err();
        assert!(
            matches!(err, Error::Corrupt { ref file, offset, .. } if file == &tail && offset == last.0),
            "write mode {write}: {err:?}"
        );
    }
}

/// etcd's testRepair: saves `entries` one by one, damages the last segment with `corrupt`
/// (given its path and the end of its last frame), checks that a writer refuses the torn log,
/// repairs it, and checks that `expected` entries survive, that appends continue after them,
/// and that the damaged segment was kept as `<file>.broken`.
fn repair_scenario(entries: Vec<Entry>, corrupt: impl FnOnce(&Path, u64), expected: u64) {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    for e in entries {
        wal.save(&HardState::default(), &[e]).unwrap();
    }
    wal.close().unwrap();
    let tail = dir.join(FIRST);
    corrupt(&tail, frames_end(&tail));
    let damaged = fs::read(&tail).unwrap();

    let err = open(&dir, &start()).unwrap().read_all().unwrap_err();
    assert!(matches!(err, Error::TornTail { .. }), "{err:?}");

    let repaired = WalOptions::new()
        .repair(&dir)
        .unwrap()
        .expect("a torn tail to repair");
    assert_eq!(repaired.file, tail);
    assert_eq!(repaired.offset, fs::metadata(&tail).unwrap().len());
    assert_eq!(repaired.broken_copy, dir.join(format!("{FIRST}.broken")));
    assert!(fs::read(&repaired.broken_copy).unwrap() == damaged);

    let mut wal = open(&dir, &start()).unwrap();
    let recovered = wal.read_all().unwrap();
    assert_eq!(
        indexes(&recovered.entries),
        (1..=expected).collect::<Vec<_>>()
    );
    for i in 1..=10 {
        wal.save(&HardState::default(), &[bare(expected + i)])
            .unwrap();
    }
    wal.close().unwrap();

    let mut wal = open(&dir, &start()).unwrap();
    let recovered = wal.read_all().unwrap();
    assert_eq!(
        indexes(&recovered.entries),
        (1..=expected + 10).collect::<Vec<_>>()
    );
    wal.close().unwrap();
}

/// etcd's TestRepairTruncate: the file ends 4 bytes short of its last frame; 9 of 10 entries
/// survive, then 10 more are appended (19).
#[test]
fn repair_cuts_off_a_truncated_last_frame() {
    let entries = (1..=10).map(bare).collect();
    repair_scenario(entries, |tail, end| set_len(tail, end - 4), 9);
}

/// etcd's TestRepairWriteTearLast: 50 entries of 24-byte frames after a 56-byte header; the
/// sector from 1024 on never reached the disk. The 40 frames that end by 1024 survive (50 after
/// appending 10).
#[test]
fn repair_cuts_off_a_torn_last_sector() {
    let entries = (1..=50).map(bare).collect();
    repair_scenario(
        entries,
        |tail, end| {
            assert!(end > 1024, "the log ends at {end}");
            set_len(tail, 1024);
            set_len(tail, end);
        },
        40,
    );
}

/// etcd's TestRepairWriteTearMiddle: five 4 KiB entries; a sector in the middle of the second
/// one never reached the disk. Only the first entry survives (11 after appending 10).
#[test]
fn repair_cuts_off_a_torn_middle_sector() {
    let data: Vec<u8> = (0..4096).map(|i| i as u8).collect();
    let entries = (1..=5).map(|i| entry(i, 0, &data)).collect();
    repair_scenario(entries, |tail, _| write_at(tail, 4096 + 512, &[0; 512]), 1);
}

#[test]
fn repair_leaves_a_clean_log_alone() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    wal.save(&HardState::default(), &[bare(1)]).unwrap();
    wal.close().unwrap();

    assert_eq!(WalOptions::new().repair(&dir).unwrap(), None);
    assert!(!dir.join(format!("{FIRST}.broken")).exists());
}

/// Five 128-byte frames of entries 1..=5 carrying 100 bytes of 0xab: no frame has a zero
/// sector, so damage to one is corruption, not a torn write. Returns the dir's parent, the dir
/// and the frame of entry 2.
fn log_with_five_entries(cut_after: bool) -> (tempfile::TempDir, std::path::PathBuf, (u64, u64)) {
    let (parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    let entries: Vec<_> = (1..=5).map(|i| entry(i, 1, &[0xab; 100])).collect();
    wal.save(&hard_state(1, 1, 5), &entries).unwrap();
    if cut_after {
        wal.cut().unwrap();
        wal.save(&hard_state(1, 1, 5), &[entry(6, 1, &[0xab; 100])])
            .unwrap();
    }
    wal.close().unwrap();
    let frame = frames(&dir.join(FIRST))[3 + 1];
    (parent, dir, frame)
}

/// A flipped byte in the middle of the last segment is corruption: repair refuses it and
/// changes nothing.
#[test]
fn repair_refuses_corruption_in_the_middle_of_the_log() {
    let (_parent, dir, (frame, frame_end)) = log_with_five_entries(false);
    let tail = dir.join(FIRST);
    flip_byte(&tail, frame_end - 20);
    let before = fs::read(&tail).unwrap();

    let err = WalOptions::new().repair(&dir).unwrap_err();

    match err {
        Error::NotRepairable { source } => assert!(
            matches!(*source, Error::CrcMismatch { ref file, offset } if file == &tail && offset == frame),
            "{source:?}"
        ),
        other => panic!("expected NotRepairable, got {other:?}"),
    }
    assert!(fs::read(&tail).unwrap() == before, "repair changed the log");
    assert!(!dir.join(format!("{FIRST}.broken")).exists());
}

/// A flipped byte in a record's data fails its CRC; every way of reading names the segment and
/// the frame's offset.
#[test]
fn a_flipped_byte_is_a_crc_mismatch_naming_file_and_offset() {
    let (_parent, dir, (frame, frame_end)) = log_with_five_entries(false);
    let tail = dir.join(FIRST);
    flip_byte(&tail, frame_end - 20);
    let is_this_frame = |err: &Error| matches!(err, Error::CrcMismatch { file, offset } if file == &tail && *offset == frame);

    let err = open_for_read(&dir, &start())
        .unwrap()
        .read_all()
        .unwrap_err();
    assert!(is_this_frame(&err), "read mode: {err:?}");
    let err = open(&dir, &start()).unwrap().read_all().unwrap_err();
    assert!(is_this_frame(&err), "write mode: {err:?}");
    let err = WalOptions::new().verify(&dir, &start()).unwrap_err();
    assert!(is_this_frame(&err), "verify: {err:?}");
    assert!(err.to_string().contains(FIRST), "{err}");
    assert!(err.to_string().contains(&frame.to_string()), "{err}");
}

#[test]
fn a_flipped_byte_in_an_earlier_segment_is_a_crc_mismatch_naming_it() {
    let (_parent, dir, (frame, frame_end)) = log_with_five_entries(true);
    let first = dir.join(FIRST);
    flip_byte(&first, frame_end - 20);

    let err = open_for_read(&dir, &start())
        .unwrap()
        .read_all()
        .unwrap_err();

    assert!(
        matches!(err, Error::CrcMismatch { ref file, offset } if file == &first && offset == frame),
        "{err:?}"
    );
}

/// The operator's override: a zeroed length word in front of an intact record (the ambiguous
/// lost-sector state) is refused by `repair`, and `repair_at` at the offset the error names
/// cuts it, keeping a copy; the log then opens for writing with everything before the damage.
#[test]
fn repair_at_the_reported_offset_cuts_damage_repair_refuses() {
    let (_parent, dir, (frame, _)) = log_with_five_entries(false);
    let tail = dir.join(FIRST);
    let before = fs::read(&tail).unwrap();
    write_at(&tail, frame, &[0; 8]);
    let Error::NotRepairable { source } = WalOptions::new().repair(&dir).unwrap_err() else {
        panic!("repair must refuse a zero word in front of an intact record");
    };
    let Error::Corrupt { offset, .. } = *source else {
        panic!("expected Corrupt, got {source:?}");
    };
    assert_eq!(offset, frame);

    let repaired = WalOptions::new().repair_at(&dir, offset).unwrap();

    assert_eq!(
        (repaired.offset, repaired.old_len),
        (frame, before.len() as u64)
    );
    assert_eq!(fs::metadata(&tail).unwrap().len(), frame);
    let copy = fs::read(&repaired.broken_copy).unwrap();
    assert_eq!(&copy[..8], &before[..8]);
    assert_eq!(copy.len(), before.len());
    let mut wal = open(&dir, &start()).unwrap();
    assert_eq!(indexes(&wal.read_all().unwrap().entries), vec![1]);
    wal.save(&hard_state(1, 1, 2), &[entry(2, 1, b"again")])
        .unwrap();
}

/// `repair_at` only cuts where the last segment's damage starts: an offset inside the valid
/// frames, past the damage, or on a log that reads cleanly changes nothing.
#[test]
fn repair_at_refuses_an_offset_that_is_not_where_the_damage_starts() {
    let (_parent, dir, (frame, frame_end)) = log_with_five_entries(false);
    let tail = dir.join(FIRST);
    let clean = WalOptions::new().repair_at(&dir, frame).unwrap_err();
    assert!(
        matches!(clean, Error::NoDamageThere { damage: None, offset, .. } if offset == frame),
        "{clean:?}"
    );
    flip_byte(&tail, frame_end - 20);
    let before = fs::read(&tail).unwrap();
    for wrong in [0, frame - 8, frame_end] {
        let err = WalOptions::new().repair_at(&dir, wrong).unwrap_err();
        assert!(
            matches!(err, Error::NoDamageThere { damage: Some(at), .. } if at == frame),
            "offset {wrong}: {err:?}"
        );
    }
    assert!(
        fs::read(&tail).unwrap() == before,
        "a refused cut changed the log"
    );
    assert!(!dir.join(format!("{FIRST}.broken")).exists());
}

/// A log cut into several segments of which only the last is left (as after a purge).
fn purged_to_one_segment() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let (parent, dir) = parent_and_dir();
    let mut wal = options(4096).create(&dir, b"purged").unwrap();
    for i in 1..=40 {
        wal.save(&hard_state(1, 1, i), &[entry(i, 1, &[7; 300])])
            .unwrap();
    }
    wal.close().unwrap();
    let names = segment_names(&dir);
    assert!(names.len() >= 3, "{names:?}");
    for name in &names[..names.len() - 1] {
        fs::remove_file(dir.join(name)).unwrap();
    }
    let last = dir.join(names.last().unwrap());
    (parent, dir, last)
}

/// A forced cut of header damage removes a segment whole; when it is the only segment left,
/// that would remove the log (and an application creating a missing log would lose its term
/// and vote), so it is refused and nothing changes.
#[test]
fn a_forced_cut_never_removes_the_only_segment() {
    let (_parent, dir, last) = purged_to_one_segment();
    flip_byte(&last, 20);
    let options = WalOptions::new();
    let err = options.check(&dir).unwrap();
    let (file, offset) = err.position().unwrap();
    assert!(file == last && offset < 64, "{err:?}");
    assert!(matches!(
        options.plan_forced_cut(&dir),
        Err(Error::NotRepairable { .. })
    ));
    assert!(options.repair_at(&dir, offset).is_err());
    assert!(last.exists(), "the only segment was removed");
}

/// A repair keeps the segment as it was in `<file>.broken`; a later repair of a segment of the
/// same name (re-created since) keeps its copy beside the first, never over it.
#[test]
fn a_second_repair_of_the_same_segment_keeps_the_first_copy() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    wal.save(&HardState::default(), &[bare(1), bare(2)])
        .unwrap();
    wal.close().unwrap();
    let tail = dir.join(FIRST);
    let end = frames_end(&tail);
    write_at(&tail, end + 1024, b"stray bytes of a torn write");
    let first = WalOptions::new().repair(&dir).unwrap().unwrap();
    write_at(&tail, end + 2048, b"another torn write");
    let second = WalOptions::new().repair(&dir).unwrap().unwrap();
    assert_ne!(first.broken_copy, second.broken_copy);
    assert!(first.broken_copy.exists() && second.broken_copy.exists());
    assert!(fs::read(&second.broken_copy)
        .unwrap()
        .windows(18)
        .any(|w| w == b"another torn write"));
}
