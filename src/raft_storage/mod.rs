//! [`RaftStorage`]: a durable `raft::Storage` for raft-rs, on top of [`Storage`].
//!
//! The entries since the newest snapshot stay on disk: memory holds an entry index (where each
//! entry's frame is, a few bytes per entry, see `entry_index`) and a cache of the newest entries
//! bounded by [`StorageOptions::entry_cache_bytes`] (`cache.rs`). Every change goes to the WAL
//! (or the snap files) before memory, so reopening the directory rebuilds the same storage: the
//! newest snapshot, then the WAL after it.

mod cache;

use std::path::Path;
use std::sync::Arc;

use raft::{GetEntriesContext, RaftState, StorageError};
use raft_proto::eraftpb::{ConfState, Entry, HardState, Snapshot};

use crate::commit::Completion;
use crate::entry_index::{self, SharedIndex};
use crate::error::{Error, Result};
use crate::repair::Repaired;
use crate::storage::{Storage, StorageOptions};
use cache::EntryCache;

/// A raft-rs log storage that persists through raftwal.
///
/// Drive it from the Ready loop: [`RaftStorage::apply_snapshot`] for a received snapshot,
/// [`RaftStorage::save`] for the ready's entries and HardState (one sync),
/// [`RaftStorage::set_commit`] for a light ready's commit index, and
/// [`RaftStorage::snapshot_and_compact`] once the state machine has applied enough. On the
/// async Ready path ([`StorageOptions::group_commit`]), [`RaftStorage::submit`] replaces `save`:
/// call `advance_append_async` at once and `on_persist_ready` when its [`Completion`] fires.
///
/// Memory does not grow with the log: entries are read back from the WAL segments when raft
/// asks for them (checked against their record's CRC), except the newest ones, which a cache
/// of [`StorageOptions::entry_cache_bytes`] keeps.
///
/// Membership: [`raft::Storage::initial_state`] returns the membership of the newest snapshot
/// after a reopen; raft then hands back the committed entries after it, including conf
/// changes, for the application to apply again, as etcd does. [`RaftStorage::set_conf_state`]
/// records the membership to stamp on the next snapshot.
#[derive(Debug)]
pub struct RaftStorage {
    storage: Storage,
    hard_state: HardState,
    conf_state: ConfState,
    /// The newest snapshot, with its data: what raft sends to a peer that is too far behind.
    snapshot: Snapshot,
    /// Index and term of the entry just before the first one: the compaction point.
    prev: (u64, u64),
    /// The index of the last entry.
    last: u64,
    /// Where the entries `(prev.0, last]` are on disk; the log keeps it up to date as it appends.
    index: Arc<SharedIndex>,
    /// The newest entries.
    cache: EntryCache,
    /// The torn WAL tail that opening cut off, if any.
    repaired: Option<Repaired>,
}

impl RaftStorage {
    /// Creates a storage in `dir` (missing or empty) and opens it.
    ///
    /// With voters in `conf_state` the storage is bootstrapped with a committed snapshot at
    /// index 1, term 1 holding that membership and empty data: the membership has to be
    /// durable, and a snapshot is where it lives (raft-rs's `MemStorage` keeps it at index 0, in
    /// memory only). Every node of a new cluster must be created with the same membership.
    /// With an empty `conf_state` the node starts uninitialized and waits for a leader's
    /// snapshot.
    pub fn create(
        dir: impl AsRef<Path>,
        metadata: &[u8],
        conf_state: ConfState,
        options: StorageOptions,
    ) -> Result<RaftStorage> {
        let dir = dir.as_ref();
        if conf_state == ConfState::default() {
            Storage::create(dir, metadata, options.clone())?.close()?;
        } else {
            let mut snapshot = Snapshot::default();
            let meta = snapshot.mut_metadata();
            meta.index = 1;
            meta.term = 1;
            meta.set_conf_state(conf_state);
            let hard_state = HardState {
                term: 1,
                commit: 1,
                ..Default::default()
            };
            let storage = Storage::create_with_snapshot(
                dir,
                metadata,
                &snapshot,
                &hard_state,
                options.clone(),
            )?;
            storage.close()?;
        }
        RaftStorage::open(dir, options)
    }

    /// Opens the storage in `dir` and rebuilds it: the newest snapshot, then the WAL after it.
    pub fn open(dir: impl AsRef<Path>, options: StorageOptions) -> Result<RaftStorage> {
        let budget = options.entry_cache_bytes;
        let (storage, restored, index) = Storage::open_indexed(dir.as_ref(), options)?;
        let snapshot = restored.snapshot.unwrap_or_default();
        let meta = snapshot.get_metadata();
        let last = index.lock().last();
        Ok(RaftStorage {
            storage,
            hard_state: restored.hard_state,
            conf_state: meta.get_conf_state().clone(),
            prev: (meta.index, meta.term),
            last,
            index,
            cache: EntryCache::new(last + 1, budget),
            snapshot,
            repaired: restored.repaired,
        })
    }

    /// The durable storage underneath (WAL and snap files).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The torn WAL tail that opening cut off (the last run crashed mid-write), if any.
    pub fn repaired(&self) -> Option<&Repaired> {
        self.repaired.as_ref()
    }

    /// The last HardState saved.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The current membership.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// The newest snapshot (empty before the first).
    pub fn latest_snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    fn first(&self) -> u64 {
        self.prev.0 + 1
    }

    fn last(&self) -> u64 {
        self.last
    }

    /// The bytes the entry index takes (it grows with the number of entries since the last
    /// compaction, a few bytes each).
    pub fn index_bytes(&self) -> usize {
        self.index.lock().heap_bytes()
    }

    /// The bytes the cache of the newest entries takes (at most
    /// [`StorageOptions::entry_cache_bytes`], plus entries not yet written to the files).
    pub fn cached_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Checks that `entries` can be appended: contiguous, starting within the log or right
    /// after it, and not below the compaction point.
    fn check_append(&self, entries: &[Entry]) -> Result<()> {
        let Some(head) = entries.first() else {
            return Ok(());
        };
        if head.index < self.first() {
            return Err(Error::LogCompacted {
                index: head.index,
                first_index: self.first(),
            });
        }
        if head.index > self.last() + 1 {
            return Err(Error::SliceOutOfRange {
                index: head.index,
                next: self.last() + 1,
            });
        }
        for pair in entries.windows(2) {
            if pair[1].index != pair[0].index + 1 {
                return Err(Error::SliceOutOfRange {
                    index: pair[1].index,
                    next: pair[0].index + 1,
                });
            }
        }
        Ok(())
    }

    /// Persists a ready's `entries` and `hard_state` with a single sync, then takes them into
    /// the log: entries at indexes already held replace them and everything after them.
    ///
    /// Refuses, writing nothing, entries that would leave a gap ([`Error::SliceOutOfRange`])
    /// or overwrite compacted ones ([`Error::LogCompacted`]).
    pub fn save(&mut self, hard_state: Option<&HardState>, entries: &[Entry]) -> Result<()> {
        self.check_append(entries)?;
        let empty = HardState::default();
        self.storage.save(hard_state.unwrap_or(&empty), entries)?;
        self.took(hard_state, entries);
        Ok(())
    }

    /// Persists like [`RaftStorage::save`] but returns once the save is written, with a
    /// [`Completion`] that fires when it is durable: the async Ready path. The storage serves
    /// the entries at once (from memory until they are in the segment files).
    ///
    /// ```text
    /// let done = storage.submit(ready.hs(), ready.entries())?;
    /// let light = node.advance_append_async(ready);
    /// // ... later, when `done` has fired (in log order):
    /// node.on_persist_ready(ready_number);
    /// ```
    ///
    /// Needs [`StorageOptions::group_commit`] ([`Error::InvalidState`] otherwise); refuses what
    /// `save` refuses, writing nothing.
    pub fn submit(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<Completion> {
        self.check_append(entries)?;
        let empty = HardState::default();
        let done = self.storage.submit(hard_state.unwrap_or(&empty), entries)?;
        self.took(hard_state, entries);
        Ok(done)
    }

    /// Takes a written save into memory.
    fn took(&mut self, hard_state: Option<&HardState>, entries: &[Entry]) {
        if let Some(tail) = entries.last() {
            self.last = tail.index;
            self.cache.append(entries);
            let flushed = self.index.lock().flushed();
            self.cache.evict(flushed);
        }
        if let Some(hs) = hard_state {
            self.hard_state.clone_from(hs);
        }
    }

    /// Appends entries; see [`RaftStorage::save`].
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        self.save(None, entries)
    }

    /// Saves the HardState; synced when its term or vote changed.
    pub fn set_hard_state(&mut self, hard_state: HardState) -> Result<()> {
        self.save(Some(&hard_state), &[])
    }

    /// Saves a new commit index (a light ready's). Not synced on its own: raft recomputes a
    /// lost commit index.
    ///
    /// With group commit it is submitted and not waited for: under the `Grouped` policy a
    /// blocking save of it would wait for every save submitted before it to be durable.
    pub fn set_commit(&mut self, commit: u64) -> Result<()> {
        let mut hard_state = self.hard_state.clone();
        hard_state.commit = commit;
        if self.storage.shared_wal().is_some() {
            // Fires with the saves before it; nothing needs to know when.
            let _fires_later = self.submit(Some(&hard_state), &[])?;
            return Ok(());
        }
        self.set_hard_state(hard_state)
    }

    /// Records the membership the state machine has reached, for the next snapshot.
    pub fn set_conf_state(&mut self, conf_state: ConfState) {
        self.conf_state = conf_state;
    }

    /// Installs a snapshot received from the leader: its file and WAL marker, a HardState that
    /// commits it, then the log is emptied and starts after it; older WAL segments and snap
    /// files are released.
    ///
    /// A snapshot that does not reach past the compacted log is [`Error::SnapshotOutOfDate`]
    /// and changes nothing.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        let meta = snapshot.get_metadata();
        let (index, term) = (meta.index, meta.term);
        if index < self.first() {
            return Err(Error::SnapshotOutOfDate {
                index,
                current: self.prev.0,
            });
        }
        self.storage.save_snapshot(&snapshot)?;
        // Commit the snapshot in the WAL too, or the next open would not trust its marker. A
        // term it raises comes without a vote: any vote on disk was cast in an older term.
        let mut hard_state = self.hard_state.clone();
        if term > hard_state.term {
            hard_state.term = term;
            hard_state.vote = 0;
        }
        hard_state.commit = index;
        // Synced before anything is released: until this HardState is durable the marker is
        // above the commit index on disk, and the next open would need the older segments.
        self.storage.save(&hard_state, &[])?;
        self.storage.sync()?;
        self.hard_state = hard_state;
        self.conf_state = meta.get_conf_state().clone();
        self.prev = (index, term);
        self.last = index;
        self.index.lock().reset(index);
        self.cache.reset(index + 1);
        self.snapshot = snapshot;
        self.storage.release(&self.snapshot)
    }

    /// Saves a snapshot of the state machine at `index` (applied, hence committed) with
    /// `data` and the current membership. The log is not compacted; see
    /// [`RaftStorage::snapshot_and_compact`].
    pub fn create_snapshot(
        &mut self,
        index: u64,
        data: impl Into<bytes::Bytes>,
    ) -> Result<Snapshot> {
        if index <= self.snapshot.get_metadata().index {
            return Err(Error::SnapshotOutOfDate {
                index,
                current: self.snapshot.get_metadata().index,
            });
        }
        if index > self.hard_state.commit {
            return Err(Error::NotCommitted {
                index,
                commit: self.hard_state.commit,
            });
        }
        let term = self.term_of(index)?;
        let data: bytes::Bytes = data.into();
        let mut snapshot = Snapshot {
            // `Bytes` with protobuf-codec (no conversion), `Vec<u8>` with prost-codec.
            #[allow(clippy::useless_conversion)]
            data: data.into(),
            ..Default::default()
        };
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.conf_state.clone());
        self.storage.save_snapshot(&snapshot)?;
        self.snapshot = snapshot.clone();
        Ok(snapshot)
    }

    /// Drops the entries before `compact_index` (raft-rs's `MemStorage::compact`): reads below
    /// it are `Compacted`, and their segments can be released.
    /// At or below the first index it does nothing.
    ///
    /// The newest snapshot must cover everything dropped ([`Error::CompactBeyondSnapshot`]):
    /// otherwise a peer that needs those entries could be caught up by neither entries nor
    /// snapshot. Beyond the last entry it is [`Error::LogUnavailable`]. After a reopen the log
    /// starts right after the newest snapshot.
    pub fn compact(&mut self, compact_index: u64) -> Result<()> {
        if compact_index <= self.first() {
            return Ok(());
        }
        if compact_index > self.last() + 1 {
            return Err(Error::LogUnavailable {
                index: compact_index,
                last_index: self.last(),
            });
        }
        let snapshot_index = self.snapshot.get_metadata().index;
        if compact_index > snapshot_index + 1 {
            return Err(Error::CompactBeyondSnapshot {
                index: compact_index,
                snapshot_index,
            });
        }
        let term = self.term_of(compact_index - 1)?;
        self.index.lock().compact_to(compact_index);
        self.cache.compact_to(compact_index);
        self.prev = (compact_index - 1, term);
        Ok(())
    }

    /// Snapshot-then-release in one call: saves a snapshot at `index` with `data`, drops the
    /// entries it covers, and releases older snap files and WAL segments (delete them with
    /// [`RaftStorage::purge`]).
    pub fn snapshot_and_compact(
        &mut self,
        index: u64,
        data: impl Into<bytes::Bytes>,
    ) -> Result<Snapshot> {
        let snapshot = self.create_snapshot(index, data)?;
        self.compact(index + 1)?;
        self.storage.release(&snapshot)?;
        Ok(snapshot)
    }

    /// Deletes released WAL segments until `keep` are left; see [`Storage::purge`].
    pub fn purge(&mut self, keep: usize) -> Result<Vec<String>> {
        self.storage.purge(keep)
    }

    /// Makes everything saved so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.storage.sync()
    }

    /// Syncs and closes the storage.
    pub fn close(self) -> Result<()> {
        self.storage.close()
    }

    /// The term of the entry at `index`, which must be in `[first_index - 1, last_index]`.
    fn term_of(&self, index: u64) -> Result<u64> {
        if index < self.prev.0 {
            return Err(Error::LogCompacted {
                index,
                first_index: self.first(),
            });
        }
        if index > self.last() {
            return Err(Error::LogUnavailable {
                index,
                last_index: self.last(),
            });
        }
        if index == self.prev.0 {
            return Ok(self.prev.1);
        }
        self.index.lock().term(index).ok_or(Error::InvalidState {
            reason: "an entry within the log is missing from the entry index",
        })
    }

    /// Entries `[low, high)` (within the log), at most `max_size` bytes of their encodings but
    /// at least one: what the size limit lets through is read from disk, the newest from the
    /// cache.
    fn read_entries(&self, low: u64, high: u64, max_size: Option<u64>) -> Result<Vec<Entry>> {
        let cache_first = self.cache.first();
        let (end, spans) = {
            let index = self.index.lock();
            let max = max_size.unwrap_or(u64::MAX);
            let (mut end, mut size) = (low, 0u64);
            while end < high {
                size = size.saturating_add(index.size(end));
                if end > low && size > max {
                    break;
                }
                end += 1;
            }
            let disk_end = end.min(cache_first);
            let spans = if low < disk_end {
                index.locate(low, disk_end)
            } else {
                Vec::new()
            };
            (end, spans)
        };
        let mut entries = Vec::with_capacity((end - low) as usize);
        entry_index::read_spans(&spans, &mut entries)?;
        let disk_end = end.min(cache_first);
        if entries.len() as u64 != disk_end.saturating_sub(low) {
            return Err(Error::InvalidState {
                reason: "an entry within the log is missing from the entry index",
            });
        }
        if end > cache_first {
            self.cache
                .copy_range(low.max(cache_first), end, &mut entries);
        }
        Ok(entries)
    }
}

/// raftwal's errors in raft-rs's terms, so that `?` works inside `raft::Result` code: the
/// conditions raft-rs handles itself become its `StorageError` variants (`Compacted`,
/// `Unavailable`, `SnapshotOutOfDate`); everything else is `StorageError::Other`, which keeps
/// the raftwal error (and its classification) as the source.
impl From<Error> for raft::Error {
    fn from(e: Error) -> raft::Error {
        raft::Error::Store(match e {
            Error::LogCompacted { .. } => StorageError::Compacted,
            Error::LogUnavailable { .. } => StorageError::Unavailable,
            Error::SnapshotOutOfDate { .. } => StorageError::SnapshotOutOfDate,
            other => StorageError::Other(Box::new(other)),
        })
    }
}

impl raft::Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    /// Entries in `[low, high)`, at most `max_size` bytes (of their encodings on disk) but at
    /// least one. Below the first index it is `Compacted`, past the last `Unavailable` (where
    /// `MemStorage` panics). Entries outside the cache are read back from the segments, only as
    /// many as `max_size` lets through; one that fails its CRC check is `StorageError::Other`
    /// holding [`Error::CrcMismatch`] or [`Error::Corrupt`] (with the file and offset).
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.read_entries(low, high, max_size.into())?)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.term_of(idx).map_err(raft::Error::from)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    /// The newest snapshot; `SnapshotTemporarilyUnavailable` while there is none or it is
    /// older than `request_index` (take a newer one and raft asks again).
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let index = self.snapshot.get_metadata().index;
        if index == 0 || index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}
