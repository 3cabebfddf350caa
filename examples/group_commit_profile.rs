//! Group commit under N concurrent writers (issue 15's W2 shape), for profiling: each writer
//! appends one 256 B entry to a `SharedWal` (`SyncPolicy::Grouped`), which numbers it and
//! returns once the fdatasync that covers it succeeded. Prints the
//! disk's fdatasync p50 and the load, the ideal (one thread writing N saves' bytes per
//! fdatasync into a preallocated file), then entries per second and latency percentiles for
//! each writer count. Run it under `strace -f -c` to count fdatasyncs, writes and futex calls
//! per save.
//!
//! ```sh
//! cargo run --release --example group_commit_profile -- 4,8,32 900   # writer counts, saves each
//! strace -f -c target/release/examples/group_commit_profile 32 900 shared  # SharedWal rows only
//! ```

#[path = "../benches/support/disk.rs"]
mod disk;
#[path = "../benches/support/turnaround.rs"]
mod turnaround;

use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use fs2::FileExt as _;
use raftwal::eraftpb::{Entry, HardState};
use raftwal::{SharedWal, SyncPolicy, WalOptions};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Bytes one save of a 256 B entry takes in the log.
const SAVE_BYTES: usize = 304;

fn main() -> Res<()> {
    let writers: Vec<usize> = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "32".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let saves_each: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(900);
    let parent = tempfile::tempdir()?;
    println!(
        "fdatasync p50 {:?}, load {}",
        disk::fdatasync_p50(parent.path(), 200)?,
        disk::loadavg()
    );
    // `shared` as the third argument runs only the SharedWal rows (for strace and perf).
    let shared_only = std::env::args().nth(3).as_deref() == Some("shared");
    for &n in &writers {
        let (rate, p50, p99) = shared(parent.path(), n, saves_each)?;
        if shared_only {
            println!(
                "{n:>2} writers x {saves_each}: {rate:>7.0} entries/s, p50 {p50} us, p99 {p99} us"
            );
            continue;
        }
        let ideal = ideal(parent.path(), n, saves_each)?;
        let turnaround = turnaround::turnaround(n, 2000);
        // The best any design can do when each writer blocks until its save is durable: one
        // ideal round plus waking every writer and having each block again.
        let bound = turnaround::blocking_bound(n, ideal, turnaround);
        println!(
            "{n:>2} writers x {saves_each}: {rate:>7.0} entries/s ({:.2}x ideal {ideal:.0}, {:.2}x blocking bound {bound:.0}: turnaround {turnaround:?}), p50 {p50} us, p99 {p99} us",
            rate / ideal,
            rate / bound
        );
    }
    println!("load {}", disk::loadavg());
    Ok(())
}

/// One thread, `n` saves' bytes per pwrite + fdatasync into a preallocated file: entries/s.
fn ideal(dir: &Path, n: usize, rounds: u64) -> Res<f64> {
    let path = dir.join("ideal");
    let file = std::fs::File::create(&path)?;
    file.allocate(64 << 20)?;
    let round = vec![7u8; SAVE_BYTES * n];
    let start = Instant::now();
    for i in 0..rounds {
        file.write_all_at(&round, i * round.len() as u64)?;
        file.sync_data()?;
    }
    let rate = (rounds * n as u64) as f64 / start.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// `writers` threads saving through one `SharedWal`: entries/s, p50 and p99 in µs.
fn shared(dir: &Path, writers: usize, saves_each: u64) -> Res<(f64, u128, u128)> {
    let wal_dir = dir.join(format!("wal-{writers}"));
    let wal = WalOptions::new().create(&wal_dir, b"profile")?;
    let wal = Arc::new(SharedWal::new(wal, SyncPolicy::Grouped)?);
    // The clock starts once every writer runs: creating the threads is not the log's work.
    let ready = Arc::new(Barrier::new(writers + 1));
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let (wal, ready) = (wal.clone(), ready.clone());
            std::thread::spawn(move || -> raftwal::Result<Vec<u128>> {
                let mut latencies = Vec::with_capacity(saves_each as usize);
                let data = vec![7u8; 256];
                ready.wait();
                for _ in 0..saves_each {
                    let began = Instant::now();
                    // `append` numbers the entry under the lock that orders the log.
                    let mut entry = [Entry {
                        term: 1,
                        data: data.clone().into(),
                        ..Default::default()
                    }];
                    wal.append(&HardState::default(), &mut entry)?;
                    latencies.push(began.elapsed().as_micros());
                }
                Ok(latencies)
            })
        })
        .collect();
    ready.wait();
    let start = Instant::now();
    let mut latencies = Vec::new();
    for thread in threads {
        match thread.join() {
            Ok(result) => latencies.extend(result?),
            Err(_) => return Err("a writer thread panicked".into()),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    if let Ok(wal) = Arc::try_unwrap(wal) {
        wal.close()?;
    }
    std::fs::remove_dir_all(&wal_dir)?;
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Ok((latencies.len() as f64 / seconds, at(0.5), at(0.99)))
}
