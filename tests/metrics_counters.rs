//! The metrics the log emits, read back through a recorder installed for one thread
//! (`metrics::with_local_recorder`), so tests never share a global recorder.

use std::collections::HashMap;
use std::path::Path;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use raftwal::eraftpb::{Entry, HardState};
use raftwal::observe::names;
use raftwal::{RecordType, Wal, WalOptions, WalSnapshot};

/// What one run recorded: counters by name, and the samples of each histogram.
#[derive(Debug, Default)]
struct Recorded {
    counters: HashMap<String, u64>,
    histograms: HashMap<String, Vec<f64>>,
}

impl Recorded {
    fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    fn samples(&self, name: &str) -> usize {
        self.histograms.get(name).map_or(0, Vec::len)
    }
}

/// Runs `f` with a fresh recorder for this thread and returns what it recorded.
fn record<T>(f: impl FnOnce() -> T) -> (T, Recorded) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let out = metrics::with_local_recorder(&recorder, f);
    let mut recorded = Recorded::default();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name().to_string();
        match value {
            DebugValue::Counter(n) => {
                recorded.counters.insert(name, n);
            }
            DebugValue::Histogram(samples) => {
                recorded
                    .histograms
                    .insert(name, samples.into_iter().map(|s| s.0).collect());
            }
            DebugValue::Gauge(_) => {}
        }
    }
    (out, recorded)
}

fn options(segment_size: u64) -> WalOptions {
    WalOptions::new().segment_size(segment_size)
}

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![7u8; 100].into(),
        ..Default::default()
    }
}

fn state(commit: u64) -> HardState {
    HardState {
        term: 1,
        commit,
        ..Default::default()
    }
}

/// Offsets of the frames of the entry records with `index`, in file order.
fn entry_frame_offset(dir: &Path, index: u64) -> u64 {
    WalOptions::new().raw_records(dir)
        .unwrap()
        .map(Result::unwrap)
        .find(|r| {
            r.kind == RecordType::Entry
                && matches!(r.payload().unwrap(), raftwal::inspect::Payload::Entry(e) if e.index == index)
        })
        .map(|r| r.offset)
        .unwrap()
}

#[test]
fn n_synced_saves_count_n_saves_n_entries_and_n_fsyncs() {
    const N: u64 = 25;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let mut wal = options(1 << 20).create(&dir, b"meta").unwrap();

    let ((), recorded) = record(|| {
        for i in 1..=N {
            wal.save(&state(i), &[entry(i)]).unwrap();
        }
    });

    assert_eq!(recorded.counter(names::SAVES_TOTAL), N);
    assert_eq!(recorded.counter(names::ENTRIES_TOTAL), N);
    assert_eq!(recorded.samples(names::FSYNC_DURATION_SECONDS), N as usize);
    assert_eq!(recorded.samples(names::WRITE_DURATION_SECONDS), N as usize);
    assert_eq!(recorded.counter(names::SEGMENTS_CUT_TOTAL), 0);
    assert!(recorded.histograms[names::FSYNC_DURATION_SECONDS]
        .iter()
        .all(|s| *s >= 0.0));
}

#[test]
fn bytes_written_equal_the_bytes_the_segment_grew_by() {
    const N: u64 = 25;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let mut wal = options(1 << 20).create(&dir, b"meta").unwrap();

    let ((), recorded) = record(|| {
        for i in 1..=N {
            wal.save(&state(i), &[entry(i)]).unwrap();
        }
    });
    // Outside the recorder: marks where the recorded saves ended.
    wal.save(&state(N + 1), &[entry(N + 1)]).unwrap();
    wal.close().unwrap();

    let grew_by = entry_frame_offset(&dir, N + 1) - entry_frame_offset(&dir, 1);
    assert!(grew_by > 0);
    assert_eq!(recorded.counter(names::WRITE_BYTES_TOTAL), grew_by);
}

#[test]
fn every_cut_is_counted_once() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let mut wal = options(4096).create(&dir, b"").unwrap();

    let ((), recorded) = record(|| {
        for i in 1..=200 {
            wal.save(&state(i), &[entry(i)]).unwrap();
        }
    });
    wal.close().unwrap();

    let segments = WalOptions::new().segments(&dir).unwrap().len() as u64;
    assert!(segments > 2, "the test must reach several cuts");
    assert_eq!(recorded.counter(names::SEGMENTS_CUT_TOTAL), segments - 1);
}

#[test]
fn replay_counts_every_record_and_the_bytes_that_were_written() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let (_, written) = record(|| {
        let mut wal = options(1 << 20).create(&dir, b"meta").unwrap();
        for i in 1..=40 {
            wal.save(&state(i), &[entry(i)]).unwrap();
        }
        wal.close().unwrap();
    });

    let (_, replayed) = record(|| {
        let mut wal = Wal::open_for_read(&dir, &WalSnapshot::default()).unwrap();
        wal.read_all().unwrap();
    });

    let records = WalOptions::new().raw_records(&dir).unwrap().count() as u64;
    assert_eq!(replayed.counter(names::RECORDS_REPLAYED_TOTAL), records);
    assert_eq!(
        replayed.counter(names::BYTES_REPLAYED_TOTAL),
        written.counter(names::WRITE_BYTES_TOTAL)
    );
}

#[test]
fn repairing_a_torn_tail_counts_one_repair() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let mut wal = options(1 << 20).create(&dir, b"").unwrap();
    for i in 1..=5 {
        wal.save(&state(i), &[entry(i)]).unwrap();
    }
    wal.close().unwrap();
    // Tear the last frame: keep its length word, drop the rest.
    let last = entry_frame_offset(&dir, 5);
    let segment = dir.join(&WalOptions::new().segments(&dir).unwrap()[0].file_name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(last + 12).unwrap();

    let (repaired, recorded) = record(|| WalOptions::new().repair(&dir).unwrap());

    assert!(repaired.is_some());
    assert_eq!(recorded.counter(names::REPAIRS_TOTAL), 1);
}

#[test]
fn a_clean_log_needs_no_repair_and_counts_none() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let mut wal = options(1 << 20).create(&dir, b"").unwrap();
    wal.save(&state(1), &[entry(1)]).unwrap();
    wal.close().unwrap();

    let (repaired, recorded) = record(|| WalOptions::new().repair(&dir).unwrap());

    assert!(repaired.is_none());
    assert_eq!(recorded.counter(names::REPAIRS_TOTAL), 0);
}
