//! Shared by the fuzz targets: a log directory on the simulated file system built from bytes.

use std::path::Path;
use std::sync::Arc;

use raftwal::fs::sim::SimFs;
use raftwal::fs::FileSystem as _;
use raftwal::{WalOptions, WalSnapshot};

pub const DIR: &str = "/wal";

pub fn options(fs: &SimFs, replay_read_size: usize) -> WalOptions {
    WalOptions::new()
        .segment_size(4096)
        .file_system(Arc::new(fs.clone()))
        .prepare_segments_in_background(false)
        .replay_read_size(replay_read_size)
}

/// A read size for an input of `len` bytes: mostly smaller than a frame and out of step with
/// sectors, so the read window slides across whatever the input holds.
pub fn read_size_for(len: usize) -> usize {
    1 + len % 521
}

/// A simulated disk holding `segments` (file name, bytes) in [`DIR`].
pub fn disk(segments: &[(String, &[u8])]) -> SimFs {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new(DIR)).unwrap();
    for (name, bytes) in segments {
        let file = fs.create_file(&Path::new(DIR).join(name)).unwrap();
        file.write_all_at(bytes, 0).unwrap();
    }
    fs
}

/// Every reader over the disk, reading `read_size` bytes at a time: none may panic, whatever
/// the bytes; a repaired log must open; read_all must find exactly what it finds with the
/// default read size.
pub fn read_everything(fs: &SimFs, read_size: usize) {
    let snap = WalSnapshot::default();
    let opts = |fs: &SimFs| options(fs, read_size);
    if let Ok(records) = opts(fs).raw_records(DIR) {
        for record in records {
            if record.is_err() {
                break;
            }
        }
    }
    let read = |size| {
        options(fs, size)
            .open_for_read(DIR, &snap)
            .and_then(|mut wal| wal.read_all())
    };
    let windowed = format!("{:?}", read(read_size));
    let whole = format!("{:?}", read(raftwal::DEFAULT_REPLAY_READ_SIZE));
    assert_eq!(
        windowed, whole,
        "read size {read_size} changed what was read"
    );
    let _ = opts(fs).verify(DIR, &snap);
    let _ = opts(fs).valid_snapshot_entries(DIR);
    // The one verdict, and the forced cut's description of what it would cut (which scans
    // whatever follows the damage), must not panic either, and must not depend on the window.
    let verdict = |size| {
        let verdict = options(fs, size).check(DIR);
        let plan = options(fs, size).plan_forced_cut(DIR);
        format!("{verdict:?} {plan:?}")
    };
    assert_eq!(
        verdict(read_size),
        verdict(raftwal::DEFAULT_REPLAY_READ_SIZE),
        "read size {read_size} changed the verdict"
    );
    let written = opts(fs).open(DIR, &snap).and_then(|mut w| w.read_all());
    if let Err(raftwal::Error::TornTail { .. }) = written {
        // Only a torn tail is repairable, and after the repair the log must read cleanly.
        if let Ok(Some(_)) = opts(fs).repair(DIR) {
            let mut wal = opts(fs).open(DIR, &snap).expect("reopen");
            if let Err(e) = wal.read_all() {
                assert!(
                    !matches!(e, raftwal::Error::TornTail { .. }),
                    "still torn after repair: {e}"
                );
            }
        }
    }
}
