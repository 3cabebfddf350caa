//! The systems under test, each driving the same workloads through its own API.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use protobuf::Message as _;
use raft_proto::eraftpb::{Entry, HardState};

use crate::sample::Sample;

pub mod okaywal_sys;
pub mod raft_engine_sys;
pub mod raftwal_sys;
pub mod raw;

/// Errors of any system.
pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs `threads` writers at once: writer `t` builds its state with `setup(t)`, then makes
/// `per_thread` calls `call(&mut state, i)` (i from 1), each returning its own latency (what
/// it times is the system's business). The sample holds every latency and the wall time from
/// the moment every writer is running and set up (a barrier: creating 32 threads takes a few
/// milliseconds here, which is not the log's work) until the last writer finished, each call
/// counting one entry of `entry_size` bytes.
pub fn concurrent_writers<S>(
    threads: usize,
    per_thread: u64,
    entry_size: u64,
    setup: impl Fn(u64) -> S + Sync,
    call: impl Fn(&mut S, u64) -> Res<Duration> + Sync,
) -> Res<Sample> {
    let ready = std::sync::Barrier::new(threads + 1);
    let (latencies, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let (setup, call, ready) = (&setup, &call, &ready);
                s.spawn(move || -> Res<Vec<Duration>> {
                    let mut state = setup(t);
                    ready.wait();
                    (1..=per_thread).map(|i| call(&mut state, i)).collect()
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().expect("writer thread")?);
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((all, start.elapsed()))
    })?;
    let entries = per_thread * threads as u64;
    Ok(Sample {
        entries,
        bytes: entries * entry_size,
        elapsed,
        latencies,
        ..Default::default()
    })
}

/// A bulk write: `count` entries of `entry_size` bytes, `batch` per call, unsynced, then one
/// sync.
#[derive(Debug, Clone, Copy)]
pub struct Bulk {
    pub entry_size: usize,
    pub count: u64,
    pub batch: usize,
}

/// One system, driven through the workloads. Each call gets a fresh, empty directory.
pub trait System: Sync {
    /// The row label.
    fn name(&self) -> &'static str;
    /// W1: `n` synced saves of one 256 B entry and a HardState, from one writer.
    fn synced_saves(&self, dir: &Path, n: u64) -> Res<Sample>;
    /// W2: `threads` writers, each making `per_thread` synced saves of one 256 B entry.
    fn concurrent_saves(&self, dir: &Path, threads: usize, per_thread: u64) -> Res<Sample>;
    /// After W2: reads the log `concurrent_saves` left in `dir` back and fails unless it holds
    /// every entry, in index order (per raft group where the system keeps one per writer).
    fn check_concurrent_saves(&self, dir: &Path, threads: usize, per_thread: u64) -> Res<()>;
    /// W3 / W5: `bulk.count` entries written unsynced in batches, then one sync. Leaves the log
    /// in `dir` for `replay`.
    fn bulk_write(&self, dir: &Path, bulk: Bulk) -> Res<Sample>;
    /// W4: reads back every entry `bulk_write` left in `dir`.
    fn replay(&self, dir: &Path) -> Res<Sample>;
}

/// Fails unless `indexes` is exactly `1..=n`, in that order.
pub fn check_in_order(what: &str, indexes: &[u64], n: u64) -> Res<()> {
    if indexes.len() as u64 != n {
        return Err(format!("{what}: read back {} entries, wrote {n}", indexes.len()).into());
    }
    match indexes.iter().zip(1..).find(|(got, want)| **got != *want) {
        Some((got, want)) => Err(format!(
            "{what}: entry {want} of the log has index {got}: not in index order"
        )
        .into()),
        None => Ok(()),
    }
}

/// Incompressible bytes (so no system gains from compression), the same for every system.
pub fn payload(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// A raft entry at `index` carrying `data`.
pub fn entry(index: u64, data: &Bytes) -> Entry {
    Entry {
        index,
        term: 1,
        data: data.clone(),
        ..Default::default()
    }
}

/// The HardState of term 1 committing `commit`.
pub fn hard_state(commit: u64) -> HardState {
    HardState {
        term: 1,
        vote: 1,
        commit,
        ..Default::default()
    }
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Bytes of one etcd WAL frame carrying `data_len` bytes of record data: length word, the
/// record (type, crc, data) and padding to 8 bytes. The raw limits write exactly this much.
pub fn frame_len(data_len: usize) -> usize {
    let record = 2 + 5 + 1 + varint_len(data_len as u64) + data_len;
    8 + record.div_ceil(8) * 8
}

/// Bytes raftwal writes for one save of an entry of `entry_size` payload bytes, plus a
/// HardState when `with_state`.
pub fn save_len(entry_size: usize, with_state: bool) -> usize {
    let e = entry(1_000_000, &payload(entry_size, 1));
    let mut len = frame_len(e.compute_size() as usize);
    if with_state {
        len += frame_len(hard_state(1_000_000).compute_size() as usize);
    }
    len
}
