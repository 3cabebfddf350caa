//! The one error type of raftwal. Variants are named for what the caller can do about them.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in raftwal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed. The context names the step (and file) that failed.
    #[error("{context}: {source}")]
    Io {
        /// What raftwal was doing, with the file it was doing it to.
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The disk (or file-system quota) is full. Free space, then reopen the log.
    #[error("no space left on device: {context}")]
    DiskFull {
        /// What raftwal was doing, with the file it was doing it to.
        context: String,
    },

    /// `create` found a WAL (or other files) in the target directory.
    #[error("{dir} already holds a WAL or other files")]
    AlreadyExists {
        /// The directory that was to be created.
        dir: PathBuf,
    },

    /// The directory holds no WAL segment whose first index is at or below the requested one.
    #[error("no WAL segment in {dir} covers index {index}")]
    SegmentNotFound {
        /// The WAL directory.
        dir: PathBuf,
        /// The snapshot index the log was opened at.
        index: u64,
    },

    /// The segments that must be read are not numbered consecutively: one is missing.
    #[error("WAL segments do not increase continuously: {before} is followed by {after}")]
    SegmentGap {
        /// The segment before the gap.
        before: String,
        /// The segment after the gap.
        after: String,
    },

    /// Another writer (this process or another) holds the lock of a segment.
    #[error("WAL segment {file} is locked by another writer")]
    Locked {
        /// The segment whose lock could not be taken.
        file: PathBuf,
    },

    /// A record's checksum does not match the running CRC-32C chain: the log is corrupt here.
    #[error("CRC mismatch in {file} at offset {offset}")]
    CrcMismatch {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the frame (its length word) in that file.
        offset: u64,
    },

    /// A frame cannot be decoded and is not a torn tail: the log is corrupt here.
    #[error("corrupt WAL record in {file} at offset {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the frame (its length word) in that file.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },

    /// The last segment ends as a crash mid-write leaves it: a partly written frame, or data
    /// after the end of its records. Opening for write refuses it; `repair` cuts it off (under
    /// the crash model nothing there was acknowledged, since acknowledged writes were synced).
    #[error("torn write at the end of {file} at offset {offset}: run repair")]
    TornTail {
        /// The last segment.
        file: PathBuf,
        /// Byte offset of the torn frame; everything before it is intact.
        offset: u64,
    },

    /// No snapshot record in the log matches the snapshot the log was opened at.
    #[error("snapshot {{index: {index}, term: {term}}} not found in the WAL")]
    SnapshotNotFound {
        /// The index asked for.
        index: u64,
        /// The term asked for.
        term: u64,
    },

    /// The log holds a snapshot record at the requested index with another term.
    #[error("snapshot at index {index} has term {found} in the WAL, expected {expected}")]
    SnapshotMismatch {
        /// The snapshot index.
        index: u64,
        /// The term asked for.
        expected: u64,
        /// The term recorded in the WAL.
        found: u64,
    },

    /// Two metadata records in the log differ.
    #[error("conflicting metadata record in {file} at offset {offset}")]
    MetadataConflict {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the conflicting frame.
        offset: u64,
    },

    /// An entry's index leaves a gap after the entries read so far (or after the snapshot).
    #[error("entry index {index} is out of range: the next index must be at most {next}")]
    SliceOutOfRange {
        /// The index found.
        index: u64,
        /// The highest index that would have been contiguous.
        next: u64,
    },

    /// The log refuses writes after a failed write, sync or cut: what that call covered may not
    /// be durable. Reopen the log (which recovers exactly what is on disk) to go on.
    #[error("WAL refuses writes after an earlier failure ({reason}); reopen it")]
    Poisoned {
        /// The error that poisoned it.
        reason: String,
    },

    /// The call does not fit the log's state: writing to a log opened for read or not yet
    /// read to its end, or reading a log twice. Fix the order of calls.
    #[error("invalid call: {reason}")]
    InvalidState {
        /// What was wrong.
        reason: &'static str,
    },

    /// A raft message or a journal record could not be encoded (raft-proto or the journal's
    /// codec refused it); nothing was written.
    #[error("cannot encode a record: {reason}")]
    Encode {
        /// raft-proto's error.
        reason: String,
    },

    /// [`crate::WalOptions::repair_at`] was given an offset where the last segment's damage does not
    /// start; nothing was changed.
    #[error("the damage in {file} is not at offset {offset} ({}); nothing was changed", match damage { Some(at) => format!("it starts at {at}"), None => "the segment reads cleanly".to_string() })]
    NoDamageThere {
        /// The last segment.
        file: PathBuf,
        /// The offset asked for.
        offset: u64,
        /// Where its first damaged frame starts, if it has one.
        damage: Option<u64>,
    },

    /// `repair` found damage that is not a torn tail of the last segment.
    #[error("not repairable: {source}")]
    NotRepairable {
        /// What was found.
        #[source]
        source: Box<Error>,
    },

    /// A snapshot is not newer than the one the storage already has (raft's
    /// `SnapshotOutOfDate`); nothing was written.
    #[error("snapshot at index {index} is out of date: the storage has one at {current}")]
    SnapshotOutOfDate {
        /// The index of the refused snapshot.
        index: u64,
        /// The index the storage's log is already compacted or snapshotted to.
        current: u64,
    },

    /// The WAL records a snapshot whose snap file is missing or damaged, and the WAL no longer
    /// holds the entries to start from an older snap file instead. Restore the file (or the
    /// node from a peer).
    #[error("the WAL's snapshot {{index: {index}, term: {term}}} has no valid snap file in {dir}")]
    SnapshotFileMissing {
        /// The snapshot's index.
        index: u64,
        /// The snapshot's term.
        term: u64,
        /// The snap directory.
        dir: PathBuf,
    },

    /// The raft log no longer holds `index`: it was compacted into a snapshot (raft's
    /// `Compacted`). Nothing was changed.
    #[error("raft log index {index} is compacted: the log starts at {first_index}")]
    LogCompacted {
        /// The index asked for or written.
        index: u64,
        /// The first index the log holds.
        first_index: u64,
    },

    /// The raft log does not reach `index` yet (raft's `Unavailable`). Nothing was changed.
    #[error("raft log index {index} is unavailable: the last index is {last_index}")]
    LogUnavailable {
        /// The index asked for.
        index: u64,
        /// The last index the log holds.
        last_index: u64,
    },

    /// A snapshot may cover only committed entries: `index` is above the commit index.
    #[error("cannot snapshot at index {index}: only entries up to {commit} are committed")]
    NotCommitted {
        /// The index asked for.
        index: u64,
        /// The commit index of the last HardState.
        commit: u64,
    },

    /// Compacting past the newest snapshot would leave a gap no peer could be caught up across:
    /// take a snapshot at `index - 1` or later first.
    #[error("cannot compact to {index}: the newest snapshot covers only up to {snapshot_index}")]
    CompactBeyondSnapshot {
        /// The compaction index asked for.
        index: u64,
        /// The index of the newest snapshot.
        snapshot_index: u64,
    },

    /// A journal record cannot be read back: a kind the journal does not know, a checkpoint
    /// record that breaks the checkpoint protocol, or bytes the journal's codec refuses (which
    /// also happens when a journal is opened with another codec than the one that wrote it).
    #[error("journal record {index}: {reason}")]
    BadRecord {
        /// The record's index in the store.
        index: u64,
        /// What is wrong with it.
        reason: String,
    },
    // The errors of a distributed store (the etcd store, `store::etcd`).
    /// Another writer owns the log in the store, or this writer lost its ownership (its lease
    /// expired or another writer took over): nothing this writer appends is accepted or
    /// visible. Reopen the store to claim the log once the owner is gone.
    #[error("fenced out of the log at {prefix:?}: {reason}")]
    Fenced {
        /// The store's key prefix.
        prefix: String,
        /// Who owns the log, or how ownership was lost.
        reason: String,
    },

    /// The store's servers could not be reached or did not answer in time (etcd down, no
    /// leader, a partition). An interrupted append may or may not be stored: reopen to see.
    #[error("store unavailable ({context}): {reason}")]
    StoreUnavailable {
        /// The step that failed.
        context: String,
        /// What the client reported.
        reason: String,
    },

    /// The store refused the credentials: a wrong password, an untrusted or rejected TLS
    /// certificate, or a user without permission on the store's keys.
    #[error("access to the store denied ({context}): {reason}")]
    AccessDenied {
        /// The step that failed.
        context: String,
        /// What the server (or the TLS handshake) reported.
        reason: String,
    },

    /// The store is out of space (etcd's quota alarm, `NOSPACE`); the failed call stored
    /// nothing. Free space (compact, defragment, disarm the alarm), then reopen.
    #[error("the store is full ({context}): {reason}")]
    StoreFull {
        /// The step that failed.
        context: String,
        /// What the server reported.
        reason: String,
    },

    /// The store's keys are not the store's layout (a foreign key under the prefix) or a
    /// record is damaged (a missing chunk, a checksum mismatch, a gap).
    #[error("damaged store at key {key:?}: {reason}")]
    StoreCorrupt {
        /// The key where the damage is.
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Any other error the store's servers or client reported (a request over the server's
    /// size limits, a bad endpoint).
    #[error("store error ({context}): {reason}")]
    Store {
        /// The step that failed.
        context: String,
        /// What the client reported.
        reason: String,
    },
}

/// `Result` with raftwal's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A copy of this error for another waiter of the same failed batch (an `io::Error` cannot
    /// be cloned): the same variant, context and OS error code wherever a caller can act on
    /// them (a full disk, a fenced writer, an unavailable or full store); any other error
    /// becomes [`Error::Poisoned`] carrying its message.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io { context, source } => Error::Io {
                context: context.clone(),
                source: match source.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(source.kind(), source.to_string()),
                },
            },
            Error::DiskFull { context } => Error::DiskFull {
                context: context.clone(),
            },
            Error::Poisoned { reason } => Error::Poisoned {
                reason: reason.clone(),
            },
            Error::InvalidState { reason } => Error::InvalidState { reason },
            Error::Fenced { prefix, reason } => Error::Fenced {
                prefix: prefix.clone(),
                reason: reason.clone(),
            },
            Error::StoreUnavailable { context, reason } => Error::StoreUnavailable {
                context: context.clone(),
                reason: reason.clone(),
            },
            Error::AccessDenied { context, reason } => Error::AccessDenied {
                context: context.clone(),
                reason: reason.clone(),
            },
            Error::StoreFull { context, reason } => Error::StoreFull {
                context: context.clone(),
                reason: reason.clone(),
            },
            Error::Store { context, reason } => Error::Store {
                context: context.clone(),
                reason: reason.clone(),
            },
            Error::Encode { reason } => Error::Encode {
                reason: reason.clone(),
            },
            other => Error::Poisoned {
                reason: other.to_string(),
            },
        }
    }

    /// Whether this is a torn tail: the end of the last segment as a crash mid-write leaves it,
    /// which [`crate::WalOptions::repair`] cuts off.
    pub fn is_torn(&self) -> bool {
        matches!(self, Error::TornTail { .. })
    }

    /// Whether the log (or the storage's snap files) is damaged or inconsistent in a way no
    /// crash explains and repair does not fix: a CRC mismatch, an undecodable or misplaced
    /// record, a gap, a missing snapshot. The data must come from elsewhere (a peer, a backup),
    /// or an operator must decide to cut it ([`crate::WalOptions::repair_at`]).
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::CrcMismatch { .. }
            | Error::Corrupt { .. }
            | Error::MetadataConflict { .. }
            | Error::SliceOutOfRange { .. }
            | Error::SnapshotMismatch { .. }
            | Error::SnapshotNotFound { .. }
            | Error::SegmentGap { .. }
            | Error::SnapshotFileMissing { .. }
            | Error::BadRecord { .. }
            | Error::StoreCorrupt { .. } => true,
            Error::NotRepairable { source } => source.is_corruption(),
            _ => false,
        }
    }

    /// Whether the log refuses writes after an earlier failure: reopen it.
    pub fn is_poisoned(&self) -> bool {
        matches!(self, Error::Poisoned { .. })
    }

    /// Whether another writer owns the log in a distributed store, or this writer lost its
    /// ownership: stop writing; reopen to claim the log once the owner is gone.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Error::Fenced { .. })
    }

    /// Whether the store's servers could not be reached or did not answer in time: retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::StoreUnavailable { .. })
    }

    /// Whether the store refused the credentials or the permissions: fix the configuration.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, Error::AccessDenied { .. })
    }

    /// Whether the disk or the store is full: free space, then reopen.
    pub fn is_full(&self) -> bool {
        matches!(self, Error::DiskFull { .. } | Error::StoreFull { .. })
    }

    /// The segment file (full path) and byte offset the error names, when it names one: where a
    /// torn tail starts or where the damage is.
    pub fn position(&self) -> Option<(&Path, u64)> {
        match self {
            Error::TornTail { file, offset }
            | Error::CrcMismatch { file, offset }
            | Error::Corrupt { file, offset, .. }
            | Error::MetadataConflict { file, offset } => Some((file, *offset)),
            Error::NotRepairable { source } => source.position(),
            _ => None,
        }
    }

    /// Wraps an I/O error with the step that failed; a full disk becomes [`Error::DiskFull`].
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        let context = context.into();
        if source.kind() == io::ErrorKind::StorageFull || source.raw_os_error() == Some(28) {
            Error::DiskFull { context }
        } else {
            Error::Io { context, source }
        }
    }
}

/// Adds the failing step to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Maps the error with [`Error::io`], computing the context only on failure.
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}
