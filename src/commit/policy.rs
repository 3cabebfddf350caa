//! When a [`SharedWal`](super::SharedWal) makes saves durable, and what a crash can take away
//! under each choice.

use std::time::Duration;

/// When saves are made durable (fdatasync of the tail segment).
///
/// "Acknowledged" below means: the save's [`Completion`](super::Completion) fired, or the
/// blocking [`SharedWal::save`](super::SharedWal::save) returned `Ok`. Whatever the policy, a
/// segment cut syncs everything before it, and [`SharedWal::sync`](super::SharedWal::sync) and
/// [`SharedWal::close`](super::SharedWal::close) sync everything accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Never sync on a save: a save is acknowledged once written to the page cache.
    ///
    /// A crash of the process loses nothing; a crash of the machine (or power loss) can lose
    /// every save since the last cut, sync or close, acknowledged or not. For tests and
    /// benchmarks only.
    Never,
    /// Sync every save, one fdatasync per save, while holding the log: the next save is not
    /// accepted before this one is durable (no batching). Commit-only HardState changes, which
    /// raft allows to stay unsynced, are synced too.
    ///
    /// A crash loses no acknowledged save.
    Always,
    /// Group commit (the default): a save that raft requires to be durable (new entries, or a
    /// changed term or vote) waits for an fdatasync that started after it was written; one
    /// fdatasync covers every save that arrived meanwhile. A save that raft allows to stay
    /// unsynced (a commit-only HardState change) is acknowledged once every save before it is.
    ///
    /// A crash loses no acknowledged save that raft requires to be durable, and nothing before
    /// such a save; only commit-only HardState changes after the last one can be lost, which
    /// raft recomputes.
    #[default]
    Grouped,
    /// Sync in the background: a save is acknowledged once written; a sync runs `interval` after
    /// the last one whenever something is unsynced, and the save that brings the entries written
    /// since the last forced sync to `max_entries` waits for a sync of its own.
    ///
    /// A crash can lose the saves acknowledged since the last completed sync: at most those of
    /// the last `interval` (plus the time one fdatasync takes) and, with one writer, fewer than
    /// `max_entries` entries. Nothing before an acknowledged save that waited is lost.
    Periodic {
        /// Longest time a written save stays unsynced (give `Duration::MAX` for no timer).
        interval: Duration,
        /// Number of entries after which a save waits for a sync (give `u64::MAX` for no limit).
        max_entries: u64,
    },
}
