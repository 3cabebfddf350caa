//! `RaftStorage::entries` over ranges the cache holds and ranges read back from the segments
//! (through the page cache: the log was just written), next to the raw cost of reading the
//! same bytes with `pread`, in the same run. Prints the disk's fdatasync latency and the load.
//!
//! `cargo bench --bench entries`

#[path = "support/disk.rs"]
mod disk;

use std::hint::black_box;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use raft::{GetEntriesContext, Storage as _};
use raftwal::eraftpb::{ConfState, Entry, HardState};
use raftwal::{RaftStorage, StorageOptions};

const ENTRIES: u64 = 20_000;
const ENTRY_SIZE: usize = 1024;
const RANGE: u64 = 100;

fn build(dir: &Path, cache: usize) -> RaftStorage {
    let options = StorageOptions::new().entry_cache_bytes(cache);
    let voters = ConfState {
        voters: vec![1],
        ..Default::default()
    };
    let mut storage = RaftStorage::create(dir, b"bench", voters, options).unwrap();
    for low in (2..ENTRIES + 2).step_by(1000) {
        let batch: Vec<Entry> = (low..low + 1000)
            .map(|index| Entry {
                index,
                term: 2,
                data: vec![(index % 251) as u8; ENTRY_SIZE].into(),
                ..Default::default()
            })
            .collect();
        let hs = HardState {
            term: 2,
            commit: low + 999,
            ..Default::default()
        };
        storage.save(Some(&hs), &batch).unwrap();
    }
    storage
}

fn entries(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    eprintln!(
        "fdatasync (4 KiB, median of 50): {:?}; loadavg: {}",
        disk::fdatasync_p50(tmp.path(), 50).unwrap(),
        disk::loadavg()
    );
    let cached = build(&tmp.path().join("cached"), 64 << 20);
    let uncached = build(&tmp.path().join("uncached"), 0);
    assert!(cached.cached_bytes() > (ENTRIES as usize * ENTRY_SIZE));
    assert_eq!(uncached.cached_bytes(), 0);

    let mut group = c.benchmark_group("entries");
    group.throughput(Throughput::Bytes(RANGE * ENTRY_SIZE as u64));
    // Ranges spread over the log, as a leader catching up followers reads them.
    let low = |i: u64| 2 + (i * 7919) % (ENTRIES - RANGE);
    for (name, storage) in [("cached", &cached), ("from_segments", &uncached)] {
        let mut i = 0;
        group.bench_function(format!("{name}_100x1KiB"), |b| {
            b.iter(|| {
                i += 1;
                let got = storage
                    .entries(
                        low(i),
                        low(i) + RANGE,
                        None,
                        GetEntriesContext::empty(false),
                    )
                    .unwrap();
                black_box(got)
            })
        });
    }
    // The floor for the uncached path: pread of the same number of bytes from a segment.
    let segment = std::fs::read_dir(tmp.path().join("uncached/wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .unwrap();
    let file = std::fs::File::open(segment).unwrap();
    let mut buf = vec![0u8; (RANGE as usize) * (ENTRY_SIZE + 32)];
    let mut i = 0;
    group.bench_function("raw_pread_same_bytes", |b| {
        b.iter(|| {
            i += 1;
            let offset = (low(i) * 1024) % (32 << 20);
            file.read_exact_at(&mut buf, offset).unwrap();
            black_box(&buf);
        })
    });
    group.finish();
}

criterion_group!(benches, entries);
criterion_main!(benches);
