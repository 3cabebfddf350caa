//! Throughput of a journal on the file store, synced: appends per second with 1 and with 16
//! concurrent appenders (each waiting for its record to be durable), beside a raw
//! pwrite+fdatasync loop on the same disk in the same run, and how many records group commit
//! put in each store append. Prints the fdatasync latency and `/proc/loadavg`.
//!
//! ```sh
//! cargo run --release --example journal_throughput -- 2000   # appends per appender
//! ```

#[path = "../benches/support/disk.rs"]
mod disk;

use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raftwal::journal::{Bytes, Journal};
use raftwal::store::{FileStore, Store};
use raftwal::WalOptions;

/// The file store, counting the batches the journal hands it.
struct Counted {
    store: FileStore,
    appends: Arc<AtomicU64>,
}

impl Store for Counted {
    fn first_index(&self) -> u64 {
        self.store.first_index()
    }
    fn last_index(&self) -> u64 {
        self.store.last_index()
    }
    fn append(&mut self, records: &[&[u8]]) -> raftwal::Result<()> {
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.store.append(records)
    }
    fn read_from(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> raftwal::Result<()>,
    ) -> raftwal::Result<()> {
        self.store.read_from(from, visit)
    }
    fn delete_before(&mut self, index: u64) -> raftwal::Result<()> {
        self.store.delete_before(index)
    }
    fn close(self: Box<Self>) -> raftwal::Result<()> {
        Box::new(self.store).close()
    }
}

/// 256 B records appended by `appenders` threads, `each` per thread, each waited for.
fn journal_run(appenders: u64, each: u64) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let parent = tempfile::tempdir_in(".")?;
    let appends = Arc::new(AtomicU64::new(0));
    let store = Counted {
        store: FileStore::create(parent.path().join("journal"), WalOptions::new())?,
        appends: appends.clone(),
    };
    let journal = Journal::open(store, Bytes, |_| {})?;
    let record = [7u8; 256];
    let start = Instant::now();
    std::thread::scope(|s| -> raftwal::Result<()> {
        let threads: Vec<_> = (0..appenders)
            .map(|_| {
                s.spawn(|| -> raftwal::Result<()> {
                    for _ in 0..each {
                        journal.append(&record)?.wait()?;
                    }
                    Ok(())
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("appender panicked")?;
        }
        Ok(())
    })?;
    let elapsed = start.elapsed();
    journal.close()?;
    let total = (appenders * each) as f64;
    let per_batch = total / appends.load(Ordering::Relaxed).max(1) as f64;
    Ok((total / elapsed.as_secs_f64(), per_batch))
}

/// A raw loop of 256 B pwrite + fdatasync into a preallocated file: the disk's own rate.
fn raw_fdatasync(n: u64) -> std::io::Result<Duration> {
    let dir = tempfile::tempdir_in(".")?;
    let file = std::fs::File::create(dir.path().join("raw"))?;
    file.set_len(n * 256 + 4096)?;
    file.sync_all()?;
    let start = Instant::now();
    for i in 0..n {
        file.write_all_at(&[7u8; 256], i * 256)?;
        file.sync_data()?;
    }
    Ok(start.elapsed() / n as u32)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let each: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    println!("loadavg before: {}", disk::loadavg());
    let fsync = raw_fdatasync(each)?;
    let raw_rate = 1.0 / fsync.as_secs_f64();
    println!(
        "raw pwrite+fdatasync (256 B): {:.1} us each, {raw_rate:.0}/s",
        fsync.as_secs_f64() * 1e6
    );
    for appenders in [1, 16] {
        let (rate, per_batch) = journal_run(appenders, each)?;
        println!(
            "journal, {appenders:2} appender(s): {rate:.0} appends/s = {:.2}x raw fdatasync loop, \
             {per_batch:.1} records per store append",
            rate / raw_rate
        );
        std::io::stdout().flush()?;
    }
    let fsync = raw_fdatasync(each)?;
    println!(
        "raw pwrite+fdatasync again: {:.1} us each",
        fsync.as_secs_f64() * 1e6
    );
    println!("loadavg after: {}", disk::loadavg());
    Ok(())
}
