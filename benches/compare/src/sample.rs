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
}

impl Sample {
    /// Adds another run of the same workload.
    pub fn merge(&mut self, other: Sample) {
        self.entries += other.entries;
        self.bytes += other.bytes;
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
        self.latencies.extend(other.latencies);
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
        self.latencies.sort_unstable();
        let at = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        Some(self.latencies[at])
    }
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
