//! Shared by the fuzz targets: a log directory on the simulated file system built from bytes.

use std::path::Path;
use std::sync::Arc;

use raftwal::fs::sim::SimFs;
use raftwal::fs::FileSystem as _;
use raftwal::{Options, WalSnapshot};

pub const DIR: &str = "/wal";

pub fn options(fs: &SimFs) -> Options {
    Options {
        segment_size: 4096,
        file_system: Arc::new(fs.clone()),
        prepare_segments_in_background: false,
    }
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

/// Every reader over the disk: none may panic, whatever the bytes; a repaired log must open.
pub fn read_everything(fs: &SimFs) {
    let snap = WalSnapshot::default();
    if let Ok(records) = raftwal::inspect::raw_records_with(DIR, options(fs)) {
        for record in records {
            if record.is_err() {
                break;
            }
        }
    }
    if let Ok(mut wal) = raftwal::Wal::open_for_read_with(DIR, &snap, options(fs)) {
        let _ = wal.read_all();
    }
    let _ = raftwal::verify_with(DIR, &snap, options(fs));
    let _ = raftwal::valid_snapshot_entries_with(DIR, options(fs));
    let written = raftwal::Wal::open_with(DIR, &snap, options(fs)).and_then(|mut w| w.read_all());
    if let Err(raftwal::Error::TornTail { .. }) = written {
        // Only a torn tail is repairable, and after the repair the log must read cleanly.
        if let Ok(Some(_)) = raftwal::repair_with(DIR, options(fs)) {
            let mut wal = raftwal::Wal::open_with(DIR, &snap, options(fs)).expect("reopen");
            if let Err(e) = wal.read_all() {
                assert!(
                    !matches!(e, raftwal::Error::TornTail { .. }),
                    "still torn after repair: {e}"
                );
            }
        }
    }
}
