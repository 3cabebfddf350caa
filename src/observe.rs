//! Metrics and logs: every metric and log line the log emits goes through here, so names stay
//! in one place and the core calls one line per event.
//!
//! Metrics go through the [`metrics`] facade: the application installs a recorder (Prometheus,
//! StatsD, ...) and picks histogram buckets; without one each call is a no-op that neither
//! allocates nor locks. Names follow etcd's `etcd_disk_wal_*` / `etcd_wal_*` metrics without the
//! `etcd_disk_` prefix, and mean the same thing. Logs go through [`tracing`]; the library
//! installs no subscriber.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::fs::WalFile;

/// Metric names, for exporters and dashboards.
pub mod names {
    /// Histogram, seconds: latency of each fdatasync of a segment
    /// (etcd: `etcd_disk_wal_fsync_duration_seconds`).
    pub const FSYNC_DURATION_SECONDS: &str = "wal_fsync_duration_seconds";
    /// Histogram, seconds: latency of each write of buffered frames to a segment, without the
    /// sync.
    pub const WRITE_DURATION_SECONDS: &str = "wal_write_duration_seconds";
    /// Counter: bytes written to segment files, headers and padding included
    /// (etcd: `etcd_disk_wal_write_bytes_total`).
    pub const WRITE_BYTES_TOTAL: &str = "wal_write_bytes_total";
    /// Counter: calls to `Wal::save` that wrote something.
    pub const SAVES_TOTAL: &str = "wal_saves_total";
    /// Counter: raft entries appended.
    pub const ENTRIES_TOTAL: &str = "wal_entries_total";
    /// Counter: segments cut (a new segment file started after a full or explicit cut).
    pub const SEGMENTS_CUT_TOTAL: &str = "wal_segments_cut_total";
    /// Counter: records decoded while replaying a log (open, read_all, verify).
    pub const RECORDS_REPLAYED_TOTAL: &str = "wal_records_replayed_total";
    /// Counter: frame bytes decoded while replaying a log.
    pub const BYTES_REPLAYED_TOTAL: &str = "wal_bytes_replayed_total";
    /// Counter: torn tails cut off by `repair`.
    pub const REPAIRS_TOTAL: &str = "wal_repairs_total";
    /// Counter: segment files deleted by `Storage::purge`.
    pub const SEGMENTS_PURGED_TOTAL: &str = "wal_segments_purged_total";
}

/// An fdatasync slower than this is logged as a warning, as etcd does above one second.
pub const SLOW_FSYNC: Duration = Duration::from_secs(1);

/// Runs `sync` (an fdatasync of `path`, when known), recording its latency and warning when it
/// is slow.
pub(crate) fn fsync<T>(path: Option<&Path>, sync: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let start = Instant::now();
    let result = sync();
    let took = start.elapsed();
    metrics::histogram!(names::FSYNC_DURATION_SECONDS).record(took.as_secs_f64());
    if took > SLOW_FSYNC {
        tracing::warn!(
            file = %path.map_or(std::borrow::Cow::Borrowed("the WAL tail"), |p| p.to_string_lossy()),
            took_ms = took.as_millis() as u64,
            threshold_ms = SLOW_FSYNC.as_millis() as u64,
            "slow fdatasync of a WAL segment: the disk is slow or overloaded"
        );
    }
    result
}

/// Writes `buf` at `offset` of a segment, recording the write's latency and, when it succeeds,
/// the bytes.
pub(crate) fn write(file: &dyn WalFile, buf: &[u8], offset: u64) -> io::Result<()> {
    let start = Instant::now();
    let result = file.write_all_at(buf, offset);
    metrics::histogram!(names::WRITE_DURATION_SECONDS).record(start.elapsed().as_secs_f64());
    if result.is_ok() {
        metrics::counter!(names::WRITE_BYTES_TOTAL).increment(buf.len() as u64);
    }
    result
}

/// One save of `entries` entries was appended.
pub(crate) fn saved(entries: usize) {
    metrics::counter!(names::SAVES_TOTAL).increment(1);
    metrics::counter!(names::ENTRIES_TOTAL).increment(entries as u64);
}

/// A new segment was cut and is now the tail.
pub(crate) fn segment_cut(path: &Path) {
    metrics::counter!(names::SEGMENTS_CUT_TOTAL).increment(1);
    tracing::debug!(file = %path.display(), "cut a new WAL segment");
}

/// A frame of `frame_bytes` bytes was decoded during replay.
pub(crate) fn replayed(frame_bytes: u64) {
    metrics::counter!(names::RECORDS_REPLAYED_TOTAL).increment(1);
    metrics::counter!(names::BYTES_REPLAYED_TOTAL).increment(frame_bytes);
}

/// Opening for write zeroed `len - offset` bytes after the last valid frame of `path`.
pub(crate) fn tail_zeroed(path: &Path, offset: u64, len: u64) {
    if len > offset {
        tracing::info!(
            file = %path.display(),
            offset,
            zeroed_bytes = len - offset,
            "zeroed the WAL tail after the last valid frame"
        );
    }
}

/// `repair` cut `path` from `old_len` bytes to `offset`, keeping `broken_copy`: a torn tail, or
/// (`forced`, `repair_at`) damage an operator chose to give up.
pub(crate) fn repaired(path: &Path, offset: u64, old_len: u64, broken_copy: &Path, forced: bool) {
    metrics::counter!(names::REPAIRS_TOTAL).increment(1);
    let message = if forced {
        "forced cut of the WAL's last segment at damage the operator gave up: \
         acknowledged entries after it may be lost"
    } else {
        "repaired a torn WAL tail: truncated the last segment at its last valid frame"
    };
    tracing::warn!(
        file = %path.display(),
        offset,
        cut_bytes = old_len.saturating_sub(offset),
        broken_copy = %broken_copy.display(),
        "{message}"
    );
}

/// `repair` refused damage that is not a torn tail.
pub(crate) fn repair_refused(dir: &Path, error: &dyn std::fmt::Display) {
    tracing::warn!(dir = %dir.display(), %error, "refused to repair a WAL: not a torn tail");
}

/// `purge` deleted the segment `path`.
pub(crate) fn purged(path: &Path) {
    metrics::counter!(names::SEGMENTS_PURGED_TOTAL).increment(1);
    tracing::info!(file = %path.display(), "purged a released WAL segment");
}
