//! raftwal through its group commit writer.

use std::path::Path;
use std::time::Instant;

use raft_proto::eraftpb::{Entry, HardState};
use raftwal::{LogRecord, SharedWal, SyncPolicy, Wal, WalSnapshot};

use super::{check_in_order, concurrent_writers, entry, hard_state, payload, Bulk, Res, System};
use crate::sample::Sample;

pub struct Raftwal;

fn writer(dir: &Path, policy: SyncPolicy) -> Res<SharedWal> {
    Ok(SharedWal::new(
        Wal::create(dir.join("wal"), b"bench")?,
        policy,
    )?)
}

impl System for Raftwal {
    fn name(&self) -> &'static str {
        "raftwal"
    }

    fn synced_saves(&self, dir: &Path, n: u64) -> Res<Sample> {
        let wal = writer(dir, SyncPolicy::Grouped)?;
        let data = payload(256, 1);
        let mut sample = Sample::default();
        let start = Instant::now();
        for index in 1..=n {
            let e = [entry(index, &data)];
            let t = Instant::now();
            wal.save(&hard_state(index), &e)?;
            sample.latencies.push(t.elapsed());
        }
        sample.elapsed = start.elapsed();
        sample.entries = n;
        sample.bytes = n * 256;
        wal.close()?;
        Ok(sample)
    }

    /// One raft log shared by every writer: `append` numbers each entry under the lock that
    /// orders the log, so the log is contiguous and in index order.
    fn concurrent_saves(&self, dir: &Path, threads: usize, per_thread: u64) -> Res<Sample> {
        let wal = writer(dir, SyncPolicy::Grouped)?;
        let data = payload(256, 1);
        let sample = concurrent_writers(
            threads,
            per_thread,
            256,
            |_| (),
            |(), _| {
                let mut e = [entry(0, &data)];
                let t = Instant::now();
                wal.append(&HardState::default(), &mut e)?;
                Ok(t.elapsed())
            },
        )?;
        wal.close()?;
        Ok(sample)
    }

    fn check_concurrent_saves(&self, dir: &Path, threads: usize, per_thread: u64) -> Res<()> {
        let mut wal = Wal::open_for_read(dir.join("wal"), &WalSnapshot::default())?;
        let mut indexes = Vec::new();
        for record in wal.replay()? {
            if let LogRecord::Entry(e) = record? {
                indexes.push(e.index);
            }
        }
        check_in_order("raftwal", &indexes, threads as u64 * per_thread)
    }

    fn bulk_write(&self, dir: &Path, bulk: Bulk) -> Res<Sample> {
        let wal = writer(dir, SyncPolicy::Never)?;
        let data = payload(bulk.entry_size, 1);
        let mut batch: Vec<Entry> = (0..bulk.batch).map(|_| entry(0, &data)).collect();
        let none = HardState::default();
        let mut sample = Sample::default();
        let start = Instant::now();
        let mut index = 0;
        while index < bulk.count {
            let n = (bulk.count - index).min(bulk.batch as u64) as usize;
            for e in &mut batch[..n] {
                index += 1;
                e.index = index;
            }
            let t = Instant::now();
            wal.save(&none, &batch[..n])?;
            sample.latencies.push(t.elapsed());
        }
        wal.sync()?;
        sample.elapsed = start.elapsed();
        sample.entries = bulk.count;
        sample.bytes = bulk.count * bulk.entry_size as u64;
        wal.close()?;
        Ok(sample)
    }

    /// A streaming replay, as a node would read its log at start (read mode: no locks).
    fn replay(&self, dir: &Path) -> Res<Sample> {
        let start = Instant::now();
        let mut wal = Wal::open_for_read(dir.join("wal"), &WalSnapshot::default())?;
        let mut sample = Sample::default();
        for record in wal.replay()? {
            if let LogRecord::Entry(e) = record? {
                sample.entries += 1;
                sample.bytes += e.data.len() as u64;
            }
        }
        sample.elapsed = start.elapsed();
        Ok(sample)
    }
}
