//! What a speed figure must be printed beside: the disk's fdatasync latency and the machine's
//! load. Shared by the benches and the measuring examples (`#[path]`-included, so each stays a
//! single target without a support crate).
#![allow(dead_code)]

use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// The median time of `rounds` 4 KiB writes, each followed by an fdatasync, into a fresh file
/// in `dir` (removed afterwards).
pub fn fdatasync_p50(dir: &Path, rounds: u64) -> std::io::Result<Duration> {
    let path = dir.join("fdatasync-probe");
    let file = std::fs::File::create(&path)?;
    let mut times = Vec::with_capacity(rounds as usize);
    for round in 0..rounds.max(1) {
        file.write_all_at(&[1u8; 4096], round * 4096)?;
        let start = Instant::now();
        file.sync_data()?;
        times.push(start.elapsed());
    }
    let _ = std::fs::remove_file(&path);
    times.sort();
    Ok(times[times.len() / 2])
}

/// `/proc/loadavg`, trimmed, or "unknown".
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
