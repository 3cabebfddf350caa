//! Durable saves on the disk under the temp directory: one writer through `Wal::save`, and
//! through the group commit writer. Each iteration is one fdatasync, so expect milliseconds.
//!
//! `cargo bench --bench save`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use raftwal::eraftpb::{Entry, HardState};
use raftwal::{SharedWal, SyncPolicy, Wal};

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![7u8; 256].into(),
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

fn save(c: &mut Criterion) {
    let mut group = c.benchmark_group("save");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    group.bench_function("wal_256B_entry_and_hard_state_synced", |b| {
        b.iter_custom(|iters| {
            let tmp = tempfile::tempdir().unwrap();
            let mut wal = Wal::create(tmp.path().join("wal"), b"bench").unwrap();
            let start = Instant::now();
            for i in 1..=iters {
                wal.save(&hard_state(i), &[entry(i)]).unwrap();
            }
            start.elapsed()
        })
    });
    group.bench_function("shared_wal_256B_entry_and_hard_state_synced", |b| {
        b.iter_custom(|iters| {
            let tmp = tempfile::tempdir().unwrap();
            let wal = Wal::create(tmp.path().join("wal"), b"bench").unwrap();
            let wal = SharedWal::new(wal, SyncPolicy::Grouped).unwrap();
            let start = Instant::now();
            for i in 1..=iters {
                wal.save(&hard_state(i), &[entry(i)]).unwrap();
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, save);
criterion_main!(benches);
