//! The machine's cost of blocking, which bounds every group commit whose writers each wait for
//! their own save: between two fdatasyncs, all of them must be woken and must block again.
//! Shared by `benches/compare` and `examples/group_commit_profile.rs` (`#[path]`-included).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Bytes one parked thread appends per round, about one small save.
const SAVE_BYTES: usize = 304;

/// The mean time for one thread to wake `n` parked threads, each of which takes a lock, appends
/// to a shared buffer and parks again, until the last is parked. No I/O: this is what a group
/// commit spends between two fdatasyncs when every writer waits for its own save.
pub fn turnaround(n: usize, rounds: u32) -> Duration {
    struct Round {
        generation: AtomicU64,
        parked: AtomicUsize,
        buffer: Mutex<Vec<u8>>,
        waker: Thread,
    }
    let round = Arc::new(Round {
        generation: AtomicU64::new(0),
        parked: AtomicUsize::new(0),
        buffer: Mutex::new(Vec::new()),
        waker: std::thread::current(),
    });
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let round = round.clone();
            std::thread::spawn(move || {
                for seen in 0..=u64::from(rounds) {
                    if round.parked.fetch_add(1, Ordering::AcqRel) + 1 == n {
                        round.waker.unpark();
                    }
                    while round.generation.load(Ordering::Acquire) == seen {
                        std::thread::park();
                    }
                    if seen == u64::from(rounds) {
                        break;
                    }
                    round
                        .buffer
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&[7u8; SAVE_BYTES]);
                }
            })
        })
        .collect();
    let handles: Vec<Thread> = threads.iter().map(|t| t.thread().clone()).collect();
    while round.parked.load(Ordering::Acquire) < n {
        std::thread::park();
    }
    let mut total = Duration::ZERO;
    for _ in 0..rounds {
        round.parked.store(0, Ordering::Release);
        round
            .buffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let start = Instant::now();
        round.generation.fetch_add(1, Ordering::AcqRel);
        for handle in &handles {
            handle.unpark();
        }
        while round.parked.load(Ordering::Acquire) < n {
            std::thread::park();
        }
        total += start.elapsed();
    }
    // Release the threads from their last park.
    round.generation.fetch_add(1, Ordering::AcqRel);
    for handle in &handles {
        handle.unpark();
    }
    for thread in threads {
        let _ = thread.join();
    }
    total / rounds
}

/// The most entries per second `writers` blocking writers can save when one fdatasync round of
/// all their saves (the ideal row) runs at `ideal` entries/s and waking them all takes
/// `turnaround`.
pub fn blocking_bound(writers: usize, ideal: f64, turnaround: Duration) -> f64 {
    let round = writers as f64 / ideal;
    writers as f64 / (round + turnaround.as_secs_f64())
}
