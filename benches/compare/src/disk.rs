//! What the disk and the machine were doing during a run: the fdatasync latency of the
//! benchmark directory's disk, measured right before each run, and the load average. A synced
//! rate means little without them: the same code runs 20x faster when fdatasync takes 0.15 ms
//! than when it takes 4 ms.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::systems::Res;

/// fdatasyncs per probe: enough for a median, few enough to cost little on a slow disk.
pub const PROBE_SYNCS: usize = 20;

/// Latencies of `n` rounds of a 4 KiB `pwrite` + `fdatasync` into a fresh preallocated file in
/// `dir`, the same kind of file the logs append to (so a sync pays the same extent
/// conversion they pay).
pub fn probe_fdatasync(dir: &Path, n: usize) -> Res<Vec<Duration>> {
    let path = dir.join("fdatasync-probe");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    let len = (n as u64 + 1) * 4096;
    // SAFETY: a plain syscall on a file descriptor we own.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let block = [0x5au8; 4096];
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let t = Instant::now();
        file.write_all_at(&block, i * 4096)?;
        file.sync_data()?;
        latencies.push(t.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(latencies)
}

/// The 1-minute load average (`/proc/loadavg`), if readable.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
