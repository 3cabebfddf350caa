//! Group commit under N concurrent writers (issue 15's W2 shape), for profiling: each writer
//! takes the next index under a lock, submits one 256 B entry with its HardState to a
//! `SharedWal` (`SyncPolicy::Grouped`) and waits for the fdatasync that covers it. Prints
//! entries per second and latency percentiles; run it under `strace -f -c` to count
//! fdatasyncs, writes and futex calls per save.
//!
//! ```sh
//! cargo run --release --example group_commit_profile -- 32 900   # writers, saves each
//! ```

use std::sync::{Arc, Mutex};
use std::time::Instant;

use raftwal::eraftpb::{Entry, HardState};
use raftwal::{SharedWal, SyncPolicy, WalOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |n: usize, default: u64| {
        std::env::args()
            .nth(n)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (writers, saves_each) = (arg(1, 32), arg(2, 900));
    let parent = tempfile::tempdir()?;
    let wal = WalOptions::new().create(parent.path().join("wal"), b"profile")?;
    let wal = Arc::new(SharedWal::new(wal, SyncPolicy::Grouped)?);
    // The index is taken under the same lock as the submit, so the log is in index order.
    let next = Arc::new(Mutex::new(0u64));
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let (wal, next) = (wal.clone(), next.clone());
            std::thread::spawn(move || -> raftwal::Result<Vec<u128>> {
                let mut latencies = Vec::with_capacity(saves_each as usize);
                for _ in 0..saves_each {
                    let began = Instant::now();
                    let completion = {
                        let mut index = next.lock().unwrap_or_else(|e| e.into_inner());
                        *index += 1;
                        let entry = Entry {
                            index: *index,
                            term: 1,
                            data: vec![7u8; 256].into(),
                            ..Default::default()
                        };
                        let hard_state = HardState {
                            term: 1,
                            vote: 1,
                            commit: *index,
                            ..Default::default()
                        };
                        wal.submit(&hard_state, &[entry])?
                    };
                    completion.wait()?;
                    latencies.push(began.elapsed().as_micros());
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for thread in threads {
        match thread.join() {
            Ok(result) => latencies.extend(result?),
            Err(_) => eprintln!("a writer thread panicked"),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    if let Ok(wal) = Arc::try_unwrap(wal) {
        wal.close()?;
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{writers} writers x {saves_each} saves: {:.0} entries/s, p50 {} us, p99 {} us",
        latencies.len() as f64 / seconds,
        at(0.5),
        at(0.99)
    );
    Ok(())
}
