//! Memory flat in the log's length: a `RaftStorage` over a log of more than 2 GiB (500k entries
//! of 4 KiB) holds only its entry index and its cache budget, after opening and after every
//! entry was read back once. Asserts on memory (RSS), prints the times.
//!
//! Runs as its own binary (no test harness): the parent writes the log, then runs itself as a
//! child that opens and reads it, so the writer's allocations and other tests' never count.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use raft::{GetEntriesContext, Storage as _};
use raftwal::eraftpb::{ConfState, Entry, HardState};
use raftwal::{RaftStorage, StorageOptions, SyncPolicy};

const ENTRIES: u64 = 530_000;
const ENTRY_SIZE: usize = 4096;
const CACHE_BUDGET: usize = 8 << 20;
/// What the index and the rest of the process may add over the cache budget.
const ALLOWANCE: u64 = 64 << 20;
const CHILD_ENV: &str = "RAFTWAL_MEMORY_CHILD_DIR";

fn main() {
    // `cargo test` passes harness flags (`--list`, filters); only a plain run or a filter
    // naming this test runs it.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("reopening_a_2_gib_log_keeps_memory_to_the_index_and_cache: test");
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty()
        && !filters.iter().any(|f| {
            "reopening_a_2_gib_log_keeps_memory_to_the_index_and_cache".contains(f.as_str())
        })
    {
        return;
    }
    match std::env::var_os(CHILD_ENV) {
        Some(dir) => measure(Path::new(&dir)),
        None => write_then_measure_in_a_child(),
    }
}

fn options() -> StorageOptions {
    StorageOptions::new().entry_cache_bytes(CACHE_BUDGET)
}

fn entry(index: u64) -> Entry {
    let mut data = vec![(index % 251) as u8; ENTRY_SIZE];
    data[..8].copy_from_slice(&index.to_le_bytes());
    Entry {
        index,
        term: 2,
        data: data.into(),
        ..Default::default()
    }
}

fn write_then_measure_in_a_child() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("node");
    let started = Instant::now();
    let voters = ConfState {
        voters: vec![1],
        ..Default::default()
    };
    let write_options = options().group_commit(SyncPolicy::Never);
    let mut storage = RaftStorage::create(&dir, b"node", voters, write_options).unwrap();
    let last = ENTRIES + 1;
    for low in (2..=last).step_by(100) {
        let batch: Vec<Entry> = (low..(low + 100).min(last + 1)).map(entry).collect();
        let hs = HardState {
            term: 2,
            commit: batch.last().unwrap().index,
            ..Default::default()
        };
        storage.save(Some(&hs), &batch).unwrap();
    }
    storage.sync().unwrap();
    storage.close().unwrap();
    let bytes: u64 = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "wrote {ENTRIES} entries of {ENTRY_SIZE} B: {:.2} GiB of segments in {:.1?}",
        bytes as f64 / (1u64 << 30) as f64,
        started.elapsed()
    );
    assert!(
        bytes >= 2 << 30,
        "the log must be at least 2 GiB, is {bytes} B"
    );

    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, &dir)
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the measuring child failed");
    println!("test reopening_a_2_gib_log_keeps_memory_to_the_index_and_cache ... ok");
}

/// `VmRSS` and `VmHWM` of this process, in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn measure(dir: &Path) {
    let (baseline, _) = rss();
    let bound = baseline + CACHE_BUDGET as u64 + ALLOWANCE;
    let started = Instant::now();
    let mut storage = RaftStorage::open(dir, options()).unwrap();
    let opened = started.elapsed();
    let (after_open, peak_open) = rss();
    println!(
        "open: {opened:.1?}; RSS {} (baseline {}, peak {}), index {}",
        mib(after_open),
        mib(baseline),
        mib(peak_open),
        mib(storage.index_bytes() as u64)
    );
    assert_eq!(storage.last_index(), Ok(ENTRIES + 1));
    assert!(
        after_open <= bound,
        "RSS after open {} exceeds baseline + cache budget + 64 MiB = {}",
        mib(after_open),
        mib(bound)
    );

    let started = Instant::now();
    let mut next = 2;
    while next <= ENTRIES + 1 {
        let got = storage
            .entries(next, ENTRIES + 2, 1 << 20, GetEntriesContext::empty(false))
            .unwrap();
        assert!(!got.is_empty());
        for e in &got {
            assert_eq!(e.index, next);
            assert_eq!(e.data[..8], next.to_le_bytes());
            next += 1;
        }
    }
    let read = started.elapsed();
    let (after_read, peak) = rss();
    println!(
        "read every entry once (1 MiB per call): {read:.1?}; RSS {} (peak {}), cache {}",
        mib(after_read),
        mib(peak),
        mib(storage.cached_bytes() as u64)
    );
    assert!(
        after_read <= bound,
        "RSS after reading every entry {} exceeds baseline + cache budget + 64 MiB = {}",
        mib(after_read),
        mib(bound)
    );
    assert!(
        peak <= bound,
        "peak RSS {} exceeds baseline + cache budget + 64 MiB = {}",
        mib(peak),
        mib(bound)
    );

    // Appending more than the budget fills the cache to it, no further.
    let started = Instant::now();
    let first_new = ENTRIES + 2;
    for low in (first_new..first_new + 5000).step_by(100) {
        let batch: Vec<Entry> = (low..low + 100).map(entry).collect();
        storage.append(&batch).unwrap();
    }
    let (after_append, peak) = rss();
    println!(
        "appended 5000 more entries (20 MiB) in {:.1?}: RSS {} (peak {}), cache {}",
        started.elapsed(),
        mib(after_append),
        mib(peak),
        mib(storage.cached_bytes() as u64)
    );
    assert!(storage.cached_bytes() <= CACHE_BUDGET);
    assert!(storage.cached_bytes() >= CACHE_BUDGET / 2);
    assert!(
        after_append <= bound,
        "RSS after appending {} exceeds baseline + cache budget + 64 MiB = {}",
        mib(after_append),
        mib(bound)
    );
}
