//! okaywal 0.3: a general-purpose WAL with batched fsync. Every commit syncs (it has no
//! unsynced commit), so its bulk runs write one entry of many chunks and commit once.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use okaywal::{
    Configuration, Entry, EntryId, LogManager, ReadChunkResult, SegmentReader, WriteAheadLog,
};
use protobuf::Message as _;

use super::{check_in_order, concurrent_writers, entry, hard_state, payload, Bulk, Res, System};
use crate::sample::Sample;

pub struct OkayWal;

/// Counts what recovery reads; never checkpoints (the data must stay for the replay).
#[derive(Debug, Default, Clone)]
struct Counter {
    entries: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    /// Every entry's index, in the order recovery read them.
    indexes: Arc<Mutex<Vec<u64>>>,
}

impl LogManager for Counter {
    fn recover(&mut self, entry: &mut Entry<'_>) -> io::Result<()> {
        loop {
            match entry.read_chunk()? {
                ReadChunkResult::Chunk(mut chunk) => {
                    let data = chunk.read_all()?;
                    if !chunk.check_crc()? {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "crc"));
                    }
                    // Each chunk is one protobuf raft entry, as the writers store it.
                    let e = raft_proto::eraftpb::Entry::parse_from_bytes(&data)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    self.entries.fetch_add(1, Ordering::Relaxed);
                    self.indexes
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(e.index);
                    self.bytes.fetch_add(e.data.len() as u64, Ordering::Relaxed);
                }
                ReadChunkResult::EndOfEntry | ReadChunkResult::AbortedEntry => return Ok(()),
            }
        }
    }

    fn checkpoint_to(
        &mut self,
        _last_checkpointed_id: EntryId,
        _checkpointed_entries: &mut SegmentReader,
        _wal: &WriteAheadLog,
    ) -> io::Result<()> {
        Ok(())
    }
}

/// Large preallocation and no checkpoint during a run (checkpoints would recycle the data).
fn open(dir: &Path, counter: Counter) -> Res<WriteAheadLog> {
    Ok(Configuration::default_for(dir.join("okaywal"))
        .preallocate_bytes(64 << 20)
        .checkpoint_after_bytes(u64::MAX)
        .open(counter)?)
}

impl System for OkayWal {
    fn name(&self) -> &'static str {
        "okaywal 0.3"
    }

    fn synced_saves(&self, dir: &Path, n: u64) -> Res<Sample> {
        let wal = open(dir, Counter::default())?;
        let data = payload(256, 1);
        let mut sample = Sample::default();
        let start = Instant::now();
        for index in 1..=n {
            let t = Instant::now();
            let mut writer = wal.begin_entry()?;
            writer.write_chunk(&entry(index, &data).write_to_bytes()?)?;
            writer.write_chunk(&hard_state(index).write_to_bytes()?)?;
            writer.commit()?;
            sample.latencies.push(t.elapsed());
        }
        sample.elapsed = start.elapsed();
        sample.entries = n;
        sample.bytes = n * 256;
        wal.shutdown()?;
        Ok(sample)
    }

    fn concurrent_saves(&self, dir: &Path, threads: usize, per_thread: u64) -> Res<Sample> {
        let wal = open(dir, Counter::default())?;
        let data = payload(256, 1);
        let next = AtomicU64::new(1);
        let sample = concurrent_writers(
            threads,
            per_thread,
            256,
            |_| (),
            |(), _| {
                let t = Instant::now();
                let mut writer = wal.begin_entry()?;
                // The writer holds okaywal's active file until its commit, so numbering the
                // entry now makes index order the log's order.
                let e = entry(next.fetch_add(1, Ordering::Relaxed), &data);
                writer.write_chunk(&e.write_to_bytes()?)?;
                writer.commit()?;
                Ok(t.elapsed())
            },
        )?;
        wal.shutdown()?;
        Ok(sample)
    }

    /// One log for every writer: recovery reads entries 1..=n in order.
    fn check_concurrent_saves(&self, dir: &Path, threads: usize, per_thread: u64) -> Res<()> {
        let counter = Counter::default();
        let wal = open(dir, counter.clone())?;
        wal.shutdown()?;
        let indexes = counter
            .indexes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        check_in_order("okaywal", &indexes, threads as u64 * per_thread)
    }

    fn bulk_write(&self, dir: &Path, bulk: Bulk) -> Res<Sample> {
        let wal = open(dir, Counter::default())?;
        let data = payload(bulk.entry_size, 1);
        let mut sample = Sample::default();
        let mut buf = Vec::new();
        let start = Instant::now();
        let mut writer = wal.begin_entry()?;
        let mut index = 0;
        while index < bulk.count {
            let n = (bulk.count - index).min(bulk.batch as u64);
            let t = Instant::now();
            for _ in 0..n {
                index += 1;
                buf.clear();
                entry(index, &data).write_to_vec(&mut buf)?;
                writer.write_chunk(&buf)?;
            }
            sample.latencies.push(t.elapsed());
        }
        writer.commit()?;
        sample.elapsed = start.elapsed();
        sample.entries = bulk.count;
        sample.bytes = bulk.count * bulk.entry_size as u64;
        wal.shutdown()?;
        Ok(sample)
    }

    /// Recovery reads every chunk through the log manager.
    fn replay(&self, dir: &Path) -> Res<Sample> {
        let counter = Counter::default();
        let start = Instant::now();
        let wal = open(dir, counter.clone())?;
        let elapsed = start.elapsed();
        wal.shutdown()?;
        Ok(Sample {
            entries: counter.entries.load(Ordering::Relaxed),
            bytes: counter.bytes.load(Ordering::Relaxed),
            elapsed,
            latencies: Vec::new(),
            ..Default::default()
        })
    }
}
