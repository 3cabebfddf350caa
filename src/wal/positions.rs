//! Where entries land on disk: what the log tells an entry index (the raft storage's) as it
//! replays and appends, so entries can be read back from the segments instead of kept in memory.

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use crate::fs::WalFile;

/// One entry record's frame in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryPosition {
    /// The entry's raft index.
    pub(crate) index: u64,
    /// The entry's raft term.
    pub(crate) term: u64,
    /// Byte offset of the frame (its length word) in the segment.
    pub(crate) offset: u64,
    /// Length of the record's data: the entry's encoding.
    pub(crate) data_len: u64,
    /// The CRC chain's value before this record: with the data it gives the record's CRC, so a
    /// read-back can check one record without the ones before it.
    pub(crate) prev_crc: u32,
}

/// A segment, as an index refers to it.
#[cfg_attr(not(feature = "raft"), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentRef<'a> {
    /// The segment's sequence number.
    pub(crate) seq: u64,
    /// Its path, for errors.
    pub(crate) path: &'a Path,
    /// The open file entries are read back from.
    pub(crate) file: &'a Arc<dyn WalFile>,
}

/// Receives the positions of entries a log writes (set with
/// [`Wal::set_entry_sink`](super::Wal::set_entry_sink)).
pub(crate) trait EntrySink: Debug + Send + Sync {
    /// `entries` were encoded, in this order, into `segment`; their bytes may still be buffered.
    /// An entry at or below an index already held replaces it and everything after it.
    fn encoded(&self, segment: SegmentRef<'_>, entries: &[EntryPosition]);
    /// Every entry encoded so far is in the segment files (written, not necessarily synced), so
    /// it can be read back.
    fn flushed(&self);
}
