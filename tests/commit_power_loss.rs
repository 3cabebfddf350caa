//! Power loss under concurrent group-commit writers, on raftwal's simulated disk: after the
//! power goes off at any I/O call, the log opens, holds every save that was acknowledged, and
//! holds its entries contiguously and in index order.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;

use raftwal::eraftpb::{Entry, HardState};
use raftwal::fs::sim::{Crash, Fill, SectorLoss, SimFs};
use raftwal::fs::FileSystem;
use raftwal::{LogRecord, SharedWal, SyncPolicy, WalOptions, WalSnapshot};

const DIR: &str = "/node/wal";
const WRITERS: u64 = 6;
const SAVES_EACH: u64 = 8;

fn options(fs: &SimFs) -> WalOptions {
    // Small segments, so the run cuts (and syncs the directory) several times.
    WalOptions::new()
        .file_system(Arc::new(fs.clone()))
        .segment_size(2048)
        .prepare_segments_in_background(false)
}

/// A disk whose parent directory exists durably.
fn disk() -> SimFs {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/node")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs
}

/// Concurrent writers append until the first error (the power went off); returns the indexes
/// whose saves were acknowledged.
fn run(fs: &SimFs) -> Vec<u64> {
    let Ok(wal) = options(fs).create(DIR, b"power") else {
        return Vec::new();
    };
    let wal = Arc::new(SharedWal::new(wal, SyncPolicy::Grouped).unwrap());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (wal, acked) = (wal.clone(), acked.clone());
            thread::spawn(move || {
                for seq in 0..SAVES_EACH {
                    let mut entries = [Entry {
                        term: 1,
                        data: format!("{writer}:{seq}").into_bytes().into(),
                        ..Default::default()
                    }];
                    match wal.append(&HardState::default(), &mut entries) {
                        Ok(index) => acked.lock().unwrap().push(index),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(wal);
    let acked = acked.lock().unwrap().clone();
    acked
}

/// The entry indexes of the log on `disk`, in the order it stores them.
fn read_indexes(disk: &SimFs) -> raftwal::Result<Vec<u64>> {
    let mut wal = options(disk).open(DIR, &WalSnapshot::default())?;
    let mut indexes = Vec::new();
    for record in wal.replay()? {
        if let LogRecord::Entry(e) = record? {
            indexes.push(e.index);
        }
    }
    Ok(indexes)
}

/// Opens the log on `disk` (repairing a torn tail, and nothing else) and checks it against
/// the acknowledged indexes.
fn check(disk: &SimFs, acked: &[u64], what: &str) {
    let indexes = match read_indexes(disk) {
        Ok(indexes) => indexes,
        Err(e) if e.is_torn() => {
            options(disk)
                .repair(DIR)
                .unwrap_or_else(|e| panic!("{what}: repair failed: {e}"));
            read_indexes(disk).unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"))
        }
        // A log whose creation never became durable may be missing, if nothing was acknowledged.
        Err(e) if acked.is_empty() && !e.is_corruption() => return,
        Err(e) => panic!("{what}: the log does not open: {e}"),
    };
    let want: Vec<u64> = (1..=indexes.len() as u64).collect();
    assert_eq!(indexes, want, "{what}: not contiguous in index order");
    let last = indexes.len() as u64;
    for index in acked {
        assert!(
            *index <= last,
            "{what}: acknowledged entry {index} lost (log ends at {last})"
        );
    }
}

#[test]
fn every_acknowledged_concurrent_save_survives_a_power_loss_after_any_io_call() {
    let full = disk();
    let acked = run(&full);
    assert_eq!(acked.len() as u64, WRITERS * SAVES_EACH, "the workload ran");
    // Threads interleave differently from run to run, so the number of I/O calls varies a
    // little; every point up to the full run's count is a crash point of some run.
    let points = full.calls().mutations;
    let mut states = 0;
    for point in 1..=points {
        let fs = disk();
        fs.power_off_after(point);
        let acked = run(&fs);
        let crashes = [
            Crash::DropUnsynced,
            Crash::KeepUnsynced,
            Crash::Random {
                seed: point,
                sectors: SectorLoss::Any,
                fill: Fill::Zeros,
            },
        ];
        for crash in crashes {
            let what = format!("power loss after I/O call {point} of {points}, {crash:?}");
            check(&fs.crash(crash), &acked, &what);
            states += 1;
        }
    }
    println!("{points} crash points, {states} crash states: no acknowledged save lost");
}
