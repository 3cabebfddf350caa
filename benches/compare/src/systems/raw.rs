//! The disk's limits: what a plain program writing the same bytes gets.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::Instant;

use super::{payload, save_len, Bulk, Res, System};
use crate::sample::Sample;

/// A preallocated file written with `pwrite` + `fdatasync` (synced workloads), or with plain
/// sequential 1 MiB `write`s and one `fdatasync` (bulk). The file is preallocated in both.
pub struct Raw;

fn preallocated(path: &Path, len: u64) -> Res<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    // SAFETY: a plain syscall on a file descriptor we own.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(file)
}

impl System for Raw {
    fn name(&self) -> &'static str {
        "raw limit"
    }

    fn synced_saves(&self, dir: &Path, n: u64) -> Res<Sample> {
        let record = payload(save_len(256, true), 7);
        let file = preallocated(&dir.join("raw"), 64 << 20)?;
        let mut sample = Sample::default();
        let start = Instant::now();
        let mut offset = 0u64;
        for _ in 0..n {
            let t = Instant::now();
            file.write_all_at(&record, offset)?;
            file.sync_data()?;
            sample.latencies.push(t.elapsed());
            offset += record.len() as u64;
        }
        sample.elapsed = start.elapsed();
        sample.entries = n;
        sample.bytes = n * 256;
        Ok(sample)
    }

    /// The ideal group commit: every round writes one save per writer and syncs once.
    fn concurrent_saves(&self, dir: &Path, threads: usize, per_thread: u64) -> Res<Sample> {
        let round = payload(save_len(256, false) * threads, 7);
        let file = preallocated(&dir.join("raw"), 64 << 20)?;
        let mut sample = Sample::default();
        let start = Instant::now();
        let mut offset = 0u64;
        for _ in 0..per_thread {
            let t = Instant::now();
            file.write_all_at(&round, offset)?;
            file.sync_data()?;
            let latency = t.elapsed();
            sample
                .latencies
                .extend(std::iter::repeat_n(latency, threads));
            offset += round.len() as u64;
        }
        sample.elapsed = start.elapsed();
        sample.entries = per_thread * threads as u64;
        sample.bytes = sample.entries * 256;
        Ok(sample)
    }

    /// The raw limit writes opaque bytes: nothing to read back.
    fn check_concurrent_saves(&self, _dir: &Path, _threads: usize, _per_thread: u64) -> Res<()> {
        Ok(())
    }

    fn bulk_write(&self, dir: &Path, bulk: Bulk) -> Res<Sample> {
        // The same bytes raftwal writes for these entries, in 1 MiB writes.
        let total = bulk.count * save_len(bulk.entry_size, false) as u64;
        let chunk = payload(1 << 20, 7);
        // Preallocated like the WALs' segments, so the limit is not slowed by block allocation.
        let mut file = preallocated(&dir.join("raw"), total)?;
        let start = Instant::now();
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            file.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        file.sync_data()?;
        Ok(Sample {
            entries: bulk.count,
            bytes: bulk.count * bulk.entry_size as u64,
            elapsed: start.elapsed(),
            latencies: Vec::new(),
            ..Default::default()
        })
    }

    /// Sequential 4 MiB reads of the file (what a WAL replay must at least do).
    fn replay(&self, dir: &Path) -> Res<Sample> {
        let mut file = File::open(dir.join("raw"))?;
        let mut buf = vec![0u8; 4 << 20];
        let start = Instant::now();
        let mut bytes = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
        }
        Ok(Sample {
            entries: 0,
            bytes,
            elapsed: start.elapsed(),
            latencies: Vec::new(),
            ..Default::default()
        })
    }
}
