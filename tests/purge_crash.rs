//! Purging old segments is crash-safe for every caller: a power loss after any I/O call of
//! `AppLog::truncate_front` or `Storage::purge`, between two deletions included, leaves a log
//! that opens and holds everything the checkpoint or snapshot did not cover.

use std::path::Path;
use std::sync::Arc;

use raftwal::eraftpb::{Entry, HardState, Snapshot};
use raftwal::fs::sim::{Crash, Fill, SectorLoss, SimFs};
use raftwal::fs::FileSystem as _;
use raftwal::{AppLog, Storage, StorageOptions, WalOptions};

const DIR: &str = "/log";
const RECORDS: u64 = 60;
const CHECKPOINT: u64 = 45;

fn options(fs: &SimFs) -> WalOptions {
    WalOptions::new()
        .segment_size(2048)
        .file_system(Arc::new(fs.clone()))
        .prepare_segments_in_background(false)
}

fn record(index: u64) -> Vec<u8> {
    format!("record {index}: {}", "r".repeat(200)).into_bytes()
}

fn crash_states(point: u64) -> [Crash; 4] {
    [
        Crash::DropUnsynced,
        Crash::KeepUnsynced,
        Crash::Random {
            seed: point,
            sectors: SectorLoss::Prefix,
            fill: Fill::Zeros,
        },
        Crash::Random {
            seed: (point << 20) + 1,
            sectors: SectorLoss::Any,
            fill: Fill::Zeros,
        },
    ]
}

fn segment_count(fs: &SimFs, dir: &Path) -> usize {
    fs.list_dir(dir)
        .unwrap()
        .iter()
        .filter(|n| n.ends_with(".wal"))
        .count()
}

/// An app log of `RECORDS` records over many segments, each append synced.
fn app_log(fs: &SimFs) -> AppLog {
    let mut log = AppLog::create(DIR, options(fs)).unwrap();
    for index in 1..=RECORDS {
        assert_eq!(log.append(&record(index)).unwrap(), index);
    }
    log
}

#[test]
fn a_crash_anywhere_in_truncate_front_leaves_a_log_that_opens() {
    let full = SimFs::new();
    let mut log = app_log(&full);
    let before = full.calls().mutations;
    let segments = segment_count(&full, Path::new(DIR));
    log.truncate_front(CHECKPOINT).unwrap();
    let after = full.calls().mutations;
    let purged = segments - segment_count(&full, Path::new(DIR));
    assert!(
        purged >= 2,
        "the truncation must delete at least two segments"
    );

    let mut states = 0;
    for point in before + 1..=after {
        let fs = SimFs::new();
        let mut log = app_log(&fs);
        fs.power_off_after(point);
        let truncated = log.truncate_front(CHECKPOINT).is_ok();
        drop(log);
        for crash in crash_states(point) {
            let what = format!("power loss after call {point} ({before}..={after}), {crash:?}");
            let disk = fs.crash(crash);
            let mut log =
                AppLog::open(DIR, options(&disk)).unwrap_or_else(|e| panic!("{what}: open: {e}"));
            let checkpoint = log.checkpoint();
            assert!(
                checkpoint == 0 || checkpoint == CHECKPOINT,
                "{what}: checkpoint {checkpoint}"
            );
            assert!(
                !truncated || checkpoint == CHECKPOINT,
                "{what}: an acknowledged checkpoint was lost"
            );
            let records: Vec<(u64, Vec<u8>)> = log
                .replay_from(0)
                .unwrap()
                .collect::<raftwal::Result<_>>()
                .unwrap_or_else(|e| panic!("{what}: replay: {e}"));
            let expected: Vec<(u64, Vec<u8>)> =
                (checkpoint + 1..=RECORDS).map(|i| (i, record(i))).collect();
            assert_eq!(records, expected, "{what}");
            assert_eq!(log.append(b"next").unwrap(), RECORDS + 1, "{what}");
            states += 1;
        }
    }
    println!(
        "truncate_front: {} crash points x {} states = {states} states (purging {purged} \
         segments), every one opened with all records after its checkpoint",
        after - before,
        crash_states(0).len()
    );
}

fn storage_options(fs: &SimFs) -> StorageOptions {
    StorageOptions::new().wal(options(fs)).keep_snapshots(1)
}

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: record(index).into(),
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

/// A storage with `RECORDS` entries, a snapshot at `CHECKPOINT`, and its segments released.
fn released_storage(fs: &SimFs) -> Storage {
    let mut s = Storage::create(DIR, b"", storage_options(fs)).unwrap();
    for index in 1..=RECORDS {
        s.save(&hard_state(index), &[entry(index)]).unwrap();
    }
    s.save_snapshot(&snapshot(CHECKPOINT)).unwrap();
    s.release(&snapshot(CHECKPOINT)).unwrap();
    s
}

#[test]
fn a_crash_anywhere_in_storage_purge_leaves_a_storage_that_opens() {
    let wal_dir = Path::new(DIR).join(raftwal::WAL_DIR);
    let full = SimFs::new();
    let mut s = released_storage(&full);
    let before = full.calls().mutations;
    let purged = s.purge(0).unwrap().len();
    let after = full.calls().mutations;
    assert!(purged >= 2, "the purge must delete at least two segments");
    assert!(segment_count(&full, &wal_dir) >= 1);

    let mut states = 0;
    for point in before + 1..=after {
        let fs = SimFs::new();
        let mut s = released_storage(&fs);
        fs.power_off_after(point);
        let _ = s.purge(0);
        drop(s);
        for crash in crash_states(point) {
            let what = format!("power loss after call {point} ({before}..={after}), {crash:?}");
            let disk = fs.crash(crash);
            let (_, restored) = Storage::open(DIR, storage_options(&disk))
                .unwrap_or_else(|e| panic!("{what}: open: {e}"));
            let snapshot_index = restored.snapshot.map_or(0, |s| s.get_metadata().index);
            assert_eq!(snapshot_index, CHECKPOINT, "{what}");
            let indexes: Vec<u64> = restored.entries.iter().map(|e| e.index).collect();
            assert_eq!(
                indexes,
                (CHECKPOINT + 1..=RECORDS).collect::<Vec<_>>(),
                "{what}"
            );
            states += 1;
        }
    }
    println!(
        "Storage::purge: {} crash points x {} states = {states} states (purging {purged} \
         segments), every one opened with the snapshot and every entry after it",
        after - before,
        crash_states(0).len()
    );
}
