//! Throughput of raftwal under openraft, against the floor and the ceiling:
//!
//! - the raw device: a pwrite + fdatasync loop (its latency bounds every durable write);
//! - the log store: appends of one 256-byte entry, 1 and 32 at a time, each waited for its
//!   fdatasync (32 appenders share syncs through raftwal's group commit);
//! - client writes per second through the 3-node kv cluster, logs on raftwal vs in memory.
//!
//! ```text
//! cargo run --release -p raftwal-openraft --example bench [dir]
//! ```
//!
//! `dir` (default: a temporary directory) decides the device measured.

// The cluster of the kv_cluster example.
#[path = "kv_cluster.rs"]
mod kv_cluster;

use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kv_cluster::{throughput, Params, TypeConfig};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use raftwal::WalOptions;
use raftwal_openraft::LogStore;

type Failure = Box<dyn std::error::Error + Send + Sync>;

const PAYLOAD: usize = 256;

/// pwrite of 256 bytes + fdatasync, `count` times, in `files` files at once (one thread
/// each, as the three nodes of the cluster do); returns the mean time of one.
fn raw_fdatasync(dir: &Path, files: usize, count: usize) -> Result<Duration, Failure> {
    let threads: Vec<_> = (0..files)
        .map(|i| {
            let path = dir.join(format!("raw-{i}.dat"));
            std::thread::spawn(move || raw_fdatasync_one(&path, count).map_err(|e| e.to_string()))
        })
        .collect();
    let mut total = Duration::ZERO;
    for thread in threads {
        total += thread.join().map_err(|_| "a writer panicked")??;
    }
    Ok(total / files as u32)
}

fn raw_fdatasync_one(path: &Path, count: usize) -> Result<Duration, Failure> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)?;
    // Written once and synced, as raftwal preallocates segments: the loop below then measures
    // overwrites, not block allocation.
    file.write_all_at(&vec![0u8; count * PAYLOAD], 0)?;
    file.sync_all()?;
    let buf = [7u8; PAYLOAD];
    let started = Instant::now();
    for i in 0..count {
        file.write_at(&buf, (i * PAYLOAD) as u64)?;
        file.sync_data()?;
    }
    let mean = started.elapsed() / count as u32;
    std::fs::remove_file(path)?;
    Ok(mean)
}

/// Appends `count` one-entry batches from `appenders` threads, each waiting for its
/// completion; returns appends per second.
fn store_appends(dir: &Path, appenders: usize, count: usize) -> Result<f64, Failure> {
    let store = LogStore::<TypeConfig>::open(dir, WalOptions::new())?;
    let store = Arc::new(Mutex::new(store));
    let started = Instant::now();
    let threads: Vec<_> = (0..appenders)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || -> Result<(), raftwal_openraft::Error> {
                for _ in 0..count / appenders {
                    let completion = {
                        let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
                        let index = store.next_index();
                        let entry = Entry {
                            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
                            payload: EntryPayload::Normal(kv_cluster::Request {
                                key: format!("k{index}"),
                                value: "v".repeat(PAYLOAD - 16),
                            }),
                        };
                        store.append_pipelined(vec![entry])?
                    };
                    completion.wait()?;
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "an appender panicked")??;
    }
    let per_sec = (count / appenders * appenders) as f64 / started.elapsed().as_secs_f64();
    let store = Arc::try_unwrap(store).map_err(|_| "store still shared")?;
    store
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .close()?;
    Ok(per_sec)
}

async fn cluster_writes(dir: PathBuf, in_memory_logs: bool) -> Result<f64, Failure> {
    throughput(Params {
        dir,
        writes_per_phase: 3000,
        clients: 32,
        segment_size: 4 << 20,
        in_memory_logs,
    })
    .await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Failure> {
    let temp = tempfile::tempdir()?;
    let base = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    let dir = tempfile::tempdir_in(&base)?;

    for files in [1, 3] {
        let latency = raw_fdatasync(dir.path(), files, 500)?;
        println!(
            "raw pwrite+fdatasync, {files} file(s): {:>6.0} ops/s per file ({:.0} us per fdatasync)",
            1.0 / latency.as_secs_f64(),
            latency.as_secs_f64() * 1e6
        );
    }
    for appenders in [1, 32] {
        let per_sec = store_appends(
            &dir.path().join(format!("store-{appenders}")),
            appenders,
            4000,
        )?;
        println!("store append, {appenders:>2} appender(s): {per_sec:>8.0} appends/s");
    }
    let on_raftwal = cluster_writes(dir.path().join("cluster-raftwal"), false).await?;
    let in_memory = cluster_writes(dir.path().join("cluster-memory"), true).await?;
    println!("3-node cluster, 32 clients:  {on_raftwal:>8.0} writes/s on raftwal");
    println!("3-node cluster, 32 clients:  {in_memory:>8.0} writes/s with logs in memory");
    Ok(())
}
