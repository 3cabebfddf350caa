//! raft-engine 0.4 (TiKV's log store), with rust-protobuf raft types.

use std::path::Path;
use std::time::Instant;

use raft_engine::{Config, Engine, LogBatch, MessageExt, ReadableSize};
use raft_proto::eraftpb::Entry;

use super::{check_in_order, concurrent_writers, entry, hard_state, payload, Bulk, Res, System};
use crate::sample::Sample;

pub struct RaftEngine;

#[derive(Clone)]
struct Raft;

impl MessageExt for Raft {
    type Entry = Entry;
    fn index(e: &Entry) -> u64 {
        e.index
    }
}

/// Its defaults, except compression off: the payload is incompressible, and the other
/// systems do not compress either.
fn config(dir: &Path) -> Config {
    Config {
        dir: dir.join("engine").to_string_lossy().into_owned(),
        batch_compression_threshold: ReadableSize(0),
        ..Default::default()
    }
}

const REGION: u64 = 1;

impl System for RaftEngine {
    fn name(&self) -> &'static str {
        "raft-engine 0.4"
    }

    fn synced_saves(&self, dir: &Path, n: u64) -> Res<Sample> {
        let engine = Engine::open(config(dir))?;
        let data = payload(256, 1);
        let mut batch = LogBatch::default();
        let mut sample = Sample::default();
        let start = Instant::now();
        for index in 1..=n {
            let t = Instant::now();
            batch.add_entries::<Raft>(REGION, &[entry(index, &data)])?;
            batch.put_message(REGION, b"hard_state".to_vec(), &hard_state(index))?;
            engine.write(&mut batch, true)?;
            sample.latencies.push(t.elapsed());
        }
        sample.elapsed = start.elapsed();
        sample.entries = n;
        sample.bytes = n * 256;
        Ok(sample)
    }

    /// One raft group (region) per writer, as TiKV uses it.
    fn concurrent_saves(&self, dir: &Path, threads: usize, per_thread: u64) -> Res<Sample> {
        let engine = Engine::open(config(dir))?;
        let data = payload(256, 1);
        concurrent_writers(
            threads,
            per_thread,
            256,
            |region| (region + 1, LogBatch::default()),
            |(region, batch), index| {
                let t = Instant::now();
                batch.add_entries::<Raft>(*region, &[entry(index, &data)])?;
                engine.write(batch, true)?;
                Ok(t.elapsed())
            },
        )
    }

    /// Each writer's region holds its entries 1..=per_thread, in order.
    fn check_concurrent_saves(&self, dir: &Path, threads: usize, per_thread: u64) -> Res<()> {
        let engine = Engine::open(config(dir))?;
        for region in 1..=threads as u64 {
            let mut entries = Vec::new();
            if let (Some(first), Some(last)) =
                (engine.first_index(region), engine.last_index(region))
            {
                engine.fetch_entries_to::<Raft>(region, first, last + 1, None, &mut entries)?;
            }
            let indexes: Vec<u64> = entries.iter().map(|e| e.index).collect();
            check_in_order(
                &format!("raft-engine region {region}"),
                &indexes,
                per_thread,
            )?;
        }
        Ok(())
    }

    fn bulk_write(&self, dir: &Path, bulk: Bulk) -> Res<Sample> {
        let engine = Engine::open(config(dir))?;
        let data = payload(bulk.entry_size, 1);
        let mut entries: Vec<Entry> = (0..bulk.batch).map(|_| entry(0, &data)).collect();
        let mut batch = LogBatch::default();
        let mut sample = Sample::default();
        let start = Instant::now();
        let mut index = 0;
        while index < bulk.count {
            let n = (bulk.count - index).min(bulk.batch as u64) as usize;
            for e in &mut entries[..n] {
                index += 1;
                e.index = index;
            }
            let t = Instant::now();
            batch.add_entries::<Raft>(REGION, &entries[..n])?;
            engine.write(&mut batch, false)?;
            sample.latencies.push(t.elapsed());
        }
        engine.sync()?;
        sample.elapsed = start.elapsed();
        sample.entries = bulk.count;
        sample.bytes = bulk.count * bulk.entry_size as u64;
        Ok(sample)
    }

    /// Recovery (open) plus reading every entry back.
    fn replay(&self, dir: &Path) -> Res<Sample> {
        let start = Instant::now();
        let engine = Engine::open(config(dir))?;
        let mut sample = Sample::default();
        let (Some(first), Some(last)) = (engine.first_index(REGION), engine.last_index(REGION))
        else {
            return Err("raft-engine recovered no entries".into());
        };
        let mut entries = Vec::with_capacity(4096);
        let mut from = first;
        while from <= last {
            let to = (from + 4096).min(last + 1);
            entries.clear();
            engine.fetch_entries_to::<Raft>(REGION, from, to, None, &mut entries)?;
            for e in &entries {
                sample.entries += 1;
                sample.bytes += e.data.len() as u64;
            }
            from = to;
        }
        sample.elapsed = start.elapsed();
        Ok(sample)
    }
}
