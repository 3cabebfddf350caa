//! What one run of one workload measured, and the numbers the table shows.

use std::time::Duration;

/// One system's run of one workload.
#[derive(Debug, Default, Clone)]
pub struct Sample {
    /// Entries written or read.
    pub entries: u64,
    /// Payload bytes written or read (entry data only, no framing).
    pub bytes: u64,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// CPU time (user + system, all threads of the process) the run used.
    pub cpu: Duration,
    /// Latency of each call (a save, a write batch), when the workload has calls.
    pub latencies: Vec<Duration>,
    /// fdatasync latencies of the disk, probed right before the run (synced workloads).
    pub fsync: Vec<Duration>,
    /// The 1-minute load average when the run started.
    pub load: Vec<f64>,
}

impl Sample {
    /// Adds another run of the same workload.
    pub fn merge(&mut self, other: Sample) {
        self.entries += other.entries;
        self.bytes += other.bytes;
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
        self.latencies.extend(other.latencies);
        self.fsync.extend(other.fsync);
        self.load.extend(other.load);
    }

    /// Entries per second.
    pub fn entries_per_sec(&self) -> f64 {
        self.entries as f64 / self.elapsed.as_secs_f64()
    }

    /// Payload megabytes (10^6 bytes) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }

    /// The `q`-quantile of the call latencies (0 < q < 1), if any were recorded.
    pub fn quantile(&mut self, q: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        Some(quantile(&mut self.latencies, q))
    }

    /// The probed fdatasync latency of the disk during the runs, as `p50 / p99`.
    pub fn fsync_summary(&mut self) -> String {
        if self.fsync.is_empty() {
            return "-".into();
        }
        let p50 = quantile(&mut self.fsync, 0.5);
        let p99 = quantile(&mut self.fsync, 0.99);
        format!(
            "{} / {}",
            format_latency(Some(p50)),
            format_latency(Some(p99))
        )
    }

    /// The load averages seen when the runs started, as `min-max`.
    pub fn load_summary(&self) -> String {
        let min = self.load.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.load.iter().copied().fold(0.0, f64::max);
        match self.load.len() {
            0 => "-".into(),
            _ if max - min < 0.05 => format!("{min:.1}"),
            _ => format!("{min:.1}-{max:.1}"),
        }
    }
}

/// The `q`-quantile of a non-empty list (sorts it).
fn quantile(values: &mut [Duration], q: f64) -> Duration {
    values.sort_unstable();
    let at = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[at]
}

/// CPU time used by this process so far (user + system, every thread).
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Runs `f`, recording the CPU time it used in its sample.
pub fn with_cpu<E>(f: impl FnOnce() -> Result<Sample, E>) -> Result<Sample, E> {
    let before = process_cpu();
    let mut sample = f()?;
    sample.cpu = process_cpu() - before;
    Ok(sample)
}

/// Formats a latency for the table.
pub fn format_latency(d: Option<Duration>) -> String {
    match d {
        None => "-".into(),
        Some(d) if d < Duration::from_millis(1) => format!("{:.1} us", d.as_secs_f64() * 1e6),
        Some(d) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
    }
}

/// Formats a rate with thousands grouped.
pub fn format_rate(v: f64) -> String {
    if v >= 100.0 {
        let s = format!("{:.0}", v);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        format!("{:.1}", v)
    }
}
