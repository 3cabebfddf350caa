//! Micro-benchmarks of the per-record work: CRC-32C, encoding raft entries into frames (through
//! the public write path, unsynced), and decoding them back (a replay from the page cache).
//!
//! `cargo bench --bench codec`

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use raftwal::eraftpb::{Entry, HardState};
use raftwal::{LogRecord, SharedWal, SyncPolicy, Wal, WalSnapshot};

fn entries(count: usize, size: usize) -> Vec<Entry> {
    let data: bytes::Bytes = (0..size)
        .map(|i| (i * 31 % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    (1..=count as u64)
        .map(|index| Entry {
            index,
            term: 1,
            // Shared with protobuf-codec (`Bytes`), a copy with prost-codec (`Vec<u8>`).
            #[allow(clippy::useless_conversion)]
            data: data.clone().into(),
            ..Default::default()
        })
        .collect()
}

fn crc(c: &mut Criterion) {
    let mut group = c.benchmark_group("crc32c");
    for size in [64usize, 4096, 1 << 20] {
        let data = vec![0xa5u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
            b.iter(|| crc32c::crc32c_append(7, std::hint::black_box(data)))
        });
    }
    group.finish();
}

/// Writes `iters` saves of `batch` into a fresh log (unsynced: page cache only) and returns the
/// time the saves took.
fn timed_saves(dir: &Path, iters: u64, batch: &mut [Entry]) -> Duration {
    let wal = SharedWal::new(Wal::create(dir, b"bench").unwrap(), SyncPolicy::Never).unwrap();
    let none = HardState::default();
    let mut index = 0;
    let start = Instant::now();
    for _ in 0..iters {
        for e in batch.iter_mut() {
            index += 1;
            e.index = index;
        }
        wal.save(&none, batch).unwrap();
    }
    let elapsed = start.elapsed();
    wal.close().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    elapsed
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (count, size) in [(64usize, 64usize), (1, 4096)] {
        let mut batch = entries(count, size);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(format!("save_{count}x{size}B_unsynced"), |b| {
            let tmp = tempfile::tempdir().unwrap();
            b.iter_custom(|iters| timed_saves(&tmp.path().join("wal"), iters, &mut batch));
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    for (count, size) in [(100_000usize, 64usize), (10_000, 4096)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("wal");
        let wal = SharedWal::new(Wal::create(&dir, b"bench").unwrap(), SyncPolicy::Never).unwrap();
        for chunk in entries(count, size).chunks(64) {
            wal.save(&HardState::default(), chunk).unwrap();
        }
        wal.close().unwrap();
        group.throughput(Throughput::Bytes((count * size) as u64));
        group.bench_function(format!("replay_{count}x{size}B"), |b| {
            b.iter(|| {
                let mut wal = Wal::open_for_read(&dir, &WalSnapshot::default()).unwrap();
                let mut n = 0;
                for record in wal.replay().unwrap() {
                    if let LogRecord::Entry(_) = record.unwrap() {
                        n += 1;
                    }
                }
                assert_eq!(n, count);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, crc, encode, decode);
criterion_main!(benches);
