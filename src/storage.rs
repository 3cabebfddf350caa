//! A node's durable raft state: the WAL plus the snapshot files (etcd's server storage).
//!
//! A storage directory holds two directories, laid out as etcd's `member` directory:
//!
//! ```text
//! <dir>/wal/   the WAL segments (%016x-%016x.wal)
//! <dir>/snap/  the snapshot files (%016x-%016x.snap)
//! ```
//!
//! so [`Storage::open`] also opens an etcd member directory. Snapshots follow etcd's order: the
//! snap file is durable before the WAL records it, so the WAL never points at a file that was
//! never written; older WAL segments are released only after that, and deleted by
//! [`Storage::purge`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft_proto::eraftpb::{Entry, HardState, Snapshot};

use crate::commit::{Completion, SharedWal, SyncPolicy};
#[cfg(feature = "raft")]
use crate::entry_index::{EntryIndex, SharedIndex};
use crate::error::{Error, IoContext as _, Result};
use crate::options::WalOptions;
use crate::record::WalSnapshot;
use crate::repair::Repaired;
use crate::segment;
use crate::snap::Snapshotter;
use crate::wal::{apply_entry, EntrySink, LogRecord, Replay, Wal};

/// The WAL's directory inside a storage directory.
pub const WAL_DIR: &str = "wal";
/// The snapshot files' directory inside a storage directory.
pub const SNAP_DIR: &str = "snap";

/// The default [`StorageOptions::entry_cache_bytes`]: 8 MiB.
pub const DEFAULT_ENTRY_CACHE_BYTES: usize = 8 << 20;

/// How a [`Storage`] is kept: `StorageOptions::new()` is etcd's WAL configuration, two
/// snapshot files kept, saves synced by the caller's thread, and an 8 MiB entry cache.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    pub(crate) wal: WalOptions,
    pub(crate) keep_snapshots: usize,
    pub(crate) group_commit: Option<SyncPolicy>,
    pub(crate) entry_cache_bytes: usize,
}

impl Default for StorageOptions {
    fn default() -> StorageOptions {
        StorageOptions {
            wal: WalOptions::default(),
            keep_snapshots: 2,
            group_commit: None,
            entry_cache_bytes: DEFAULT_ENTRY_CACHE_BYTES,
        }
    }
}

impl StorageOptions {
    /// etcd's WAL configuration and two snapshot files kept (the same as `default()`).
    pub fn new() -> StorageOptions {
        StorageOptions::default()
    }

    /// The WAL's options (segment size, file system; the snap files use the same file system).
    #[must_use]
    pub fn wal(mut self, wal: WalOptions) -> StorageOptions {
        self.wal = wal;
        self
    }

    /// How many snapshot files [`Storage::release`] keeps (at least 1). The WAL is kept from the
    /// oldest of them on, so a damaged newest file can fall back to an older one.
    #[must_use]
    pub fn keep_snapshots(mut self, count: usize) -> StorageOptions {
        self.keep_snapshots = count.max(1);
        self
    }

    /// Shares the WAL for group commit ([`SharedWal`]) under `policy`, which enables
    /// [`Storage::submit`] (the async Ready path): saves are written by the caller and made
    /// durable by a background sync thread, one fdatasync for every save that arrived meanwhile.
    #[must_use]
    pub fn group_commit(mut self, policy: SyncPolicy) -> StorageOptions {
        self.group_commit = Some(policy);
        self
    }

    /// How many bytes of the newest entries a `RaftStorage` keeps in memory; older entries are
    /// read back from the segments when raft asks for them. Entries not yet written to the
    /// segment files stay in memory whatever the budget.
    #[must_use]
    pub fn entry_cache_bytes(mut self, bytes: usize) -> StorageOptions {
        self.entry_cache_bytes = bytes;
        self
    }
}

/// The WAL, written by the caller's thread or shared for group commit.
#[derive(Debug)]
enum Log {
    /// Boxed: a `Wal` is large and a `SharedWal` a pointer.
    Plain(Box<Wal>),
    Shared(SharedWal),
}

/// What [`Storage::open`] recovered from disk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Restored {
    /// The newest snapshot the WAL records and whose file loads; `None` before the first one.
    pub snapshot: Option<Snapshot>,
    /// The WAL's metadata.
    pub metadata: Vec<u8>,
    /// The last HardState.
    pub hard_state: HardState,
    /// Every entry after the snapshot, raft overwrites applied.
    pub entries: Vec<Entry>,
    /// The torn tail cut off the WAL before reading it, if the last run crashed mid-write.
    pub repaired: Option<Repaired>,
}

/// A node's WAL and snapshot files, written in the order raft's durability needs.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    wal: Log,
    snapshotter: Snapshotter,
    options: StorageOptions,
    /// Index of the newest snapshot saved or loaded (0 before the first).
    snapshot_index: u64,
}

impl Storage {
    /// Whether `dir` holds a storage (a WAL in `<dir>/wal`).
    pub fn exists(dir: impl AsRef<Path>, options: &StorageOptions) -> bool {
        options.wal.exists(dir.as_ref().join(WAL_DIR))
    }

    /// Creates an empty storage in `dir` (which must be missing or empty) and opens it.
    ///
    /// Atomic: everything is built in `<dir>.tmp` and renamed into place, so a crash leaves
    /// either no storage or a whole one.
    pub fn create(
        dir: impl AsRef<Path>,
        metadata: &[u8],
        options: StorageOptions,
    ) -> Result<Storage> {
        create_atomically(dir.as_ref(), metadata, None, &options)?;
        Ok(Storage::open(dir, options)?.0)
    }

    /// Creates a storage in `dir` that starts at `snapshot` with `hard_state` (a node's
    /// bootstrap state), atomically as [`Storage::create`], and opens it.
    pub fn create_with_snapshot(
        dir: impl AsRef<Path>,
        metadata: &[u8],
        snapshot: &Snapshot,
        hard_state: &HardState,
        options: StorageOptions,
    ) -> Result<Storage> {
        create_atomically(
            dir.as_ref(),
            metadata,
            Some((snapshot, hard_state)),
            &options,
        )?;
        Ok(Storage::open(dir, options)?.0)
    }

    /// Opens the storage in `dir` for writing and recovers its state: the newest snapshot that
    /// the WAL records (and whose committed index it reached) and that loads, then the WAL
    /// from that snapshot on. A torn tail of the WAL (a crash mid-write) is repaired first, and
    /// snap files newer than the snapshot used are removed: a crash kept them out of the
    /// node's state (their WAL record is missing or above the commit index).
    ///
    /// A damaged snap file is renamed to `.broken` and an older one is used, replaying more
    /// of the WAL. When the WAL no longer reaches back that far, the error is
    /// [`Error::SnapshotFileMissing`].
    pub fn open(dir: impl AsRef<Path>, options: StorageOptions) -> Result<(Storage, Restored)> {
        // The entries and the snapshot index they follow, reset when the log is read again.
        let read = std::cell::RefCell::new((Vec::new(), 0));
        let (storage, mut restored) = Storage::open_with(
            dir.as_ref(),
            options,
            None,
            &mut |snapshot_index| *read.borrow_mut() = (Vec::new(), snapshot_index),
            &mut |_, entry| {
                let (entries, start) = &mut *read.borrow_mut();
                apply_entry(entries, *start, entry);
            },
        )?;
        restored.entries = read.into_inner().0;
        Ok((storage, restored))
    }

    /// [`Storage::open`] without the entries in memory: their positions go into an entry index
    /// instead, which the log keeps up to date as it appends. `Restored::entries` is empty.
    #[cfg(feature = "raft")]
    pub(crate) fn open_indexed(
        dir: &Path,
        options: StorageOptions,
    ) -> Result<(Storage, Restored, Arc<SharedIndex>)> {
        let index = Arc::new(SharedIndex::new(EntryIndex::new(0)));
        let sink: Arc<dyn EntrySink> = index.clone();
        let (storage, restored) = Storage::open_with(
            dir,
            options,
            Some(sink),
            &mut |snapshot_index| index.lock().reset(snapshot_index),
            &mut |replay, _| {
                if let Some((segment, position)) = replay.last_entry_position() {
                    index.lock().push(segment, position);
                }
            },
        )?;
        index.lock().mark_flushed();
        Ok((storage, restored, index))
    }

    /// Opens and replays the log: `restart` is called with the snapshot index before each
    /// reading of the log (a torn tail is repaired and the log read again), `entry` with each
    /// entry in log order (raft overwrites not applied). `Restored::entries` is left empty.
    fn open_with(
        dir: &Path,
        options: StorageOptions,
        sink: Option<Arc<dyn EntrySink>>,
        restart: &mut dyn FnMut(u64),
        entry: &mut dyn FnMut(&Replay<'_>, Entry),
    ) -> Result<(Storage, Restored)> {
        let dir = dir.to_path_buf();
        let wal_dir = dir.join(WAL_DIR);
        let snap_dir = dir.join(SNAP_DIR);
        let snapshotter = Snapshotter::with_file_system(&snap_dir, options.wal.file_system.clone());

        let records = options.wal.valid_snapshot_entries(&wal_dir)?;
        let snapshot = snapshotter.load_newest_available(&records)?;
        let start = snapshot
            .as_ref()
            .map(|s| WalSnapshot::new(s.get_metadata().index, s.get_metadata().term))
            .unwrap_or_default();
        let newest_record = records.iter().max_by_key(|r| r.index);
        let missing = |e: Error| match (newest_record, &e) {
            (Some(r), Error::SegmentNotFound { .. }) if r.index > start.index => {
                Error::SnapshotFileMissing {
                    index: r.index,
                    term: r.term,
                    dir: snap_dir.clone(),
                }
            }
            _ => e,
        };
        // A torn tail is a write the crash interrupted, never acknowledged: cut it off once and
        // read again, as etcd's server does.
        let mut repaired = None;
        let mut wal = loop {
            let mut wal = options.wal.open(&wal_dir, &start).map_err(missing)?;
            restart(start.index);
            match replay_entries(&mut wal, entry) {
                Err(Error::TornTail { .. }) if repaired.is_none() => {
                    drop(wal);
                    repaired = options.wal.repair(&wal_dir)?;
                    if repaired.is_none() {
                        return Err(Error::InvalidState {
                            reason: "repair found no torn tail where read_all found one",
                        });
                    }
                }
                result => {
                    result?;
                    break wal;
                }
            }
        };
        snapshotter.remove_newer_than(start.index)?;
        let restored = Restored {
            snapshot,
            metadata: wal.metadata().unwrap_or_default().to_vec(),
            hard_state: wal.hard_state().clone(),
            entries: Vec::new(),
            repaired,
        };
        if let Some(sink) = sink {
            wal.set_entry_sink(sink);
        }
        let wal = match options.group_commit {
            Some(policy) => Log::Shared(SharedWal::new(wal, policy)?),
            None => Log::Plain(Box::new(wal)),
        };
        let storage = Storage {
            dir,
            wal,
            snapshotter,
            options,
            snapshot_index: start.index,
        };
        Ok((storage, restored))
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The WAL, when it is not shared for group commit (see [`Storage::shared_wal`]).
    pub fn wal(&self) -> Option<&Wal> {
        match &self.wal {
            Log::Plain(wal) => Some(wal.as_ref()),
            Log::Shared(_) => None,
        }
    }

    /// The WAL shared for group commit, with [`StorageOptions::group_commit`].
    pub fn shared_wal(&self) -> Option<&SharedWal> {
        match &self.wal {
            Log::Plain(_) => None,
            Log::Shared(shared) => Some(shared),
        }
    }

    /// The snapshot files.
    pub fn snapshotter(&self) -> &Snapshotter {
        &self.snapshotter
    }

    /// The index of the newest snapshot saved or loaded (0 before the first).
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    /// Appends `entries` and `hard_state` to the WAL; durable when raft requires it
    /// (see [`Wal::save`]).
    pub fn save(&mut self, hard_state: &HardState, entries: &[Entry]) -> Result<()> {
        match &mut self.wal {
            Log::Plain(wal) => wal.save(hard_state, entries),
            Log::Shared(shared) => shared.save(hard_state, entries),
        }
    }

    /// Appends like [`Storage::save`] but returns once the save is written, with a
    /// [`Completion`] that fires when it is durable (see [`SharedWal::submit`]): the async Ready
    /// path, where a raft-rs loop calls `advance_append_async` now and `on_persist_ready` when the
    /// completion fires. Completions fire in log order.
    ///
    /// Needs [`StorageOptions::group_commit`]; without it this is [`Error::InvalidState`] and
    /// writes nothing.
    pub fn submit(&mut self, hard_state: &HardState, entries: &[Entry]) -> Result<Completion> {
        match &mut self.wal {
            Log::Plain(_) => Err(Error::InvalidState {
                reason: "submit needs a storage opened with StorageOptions::group_commit",
            }),
            Log::Shared(shared) => shared.submit(hard_state, entries),
        }
    }

    /// Saves a raft snapshot: its file first, then its marker in the WAL, synced. A snapshot not
    /// newer than the current one is [`Error::SnapshotOutOfDate`] and writes nothing.
    ///
    /// The order matters: a crash between the two steps leaves an orphan file that the next
    /// open ignores, never a marker without its file.
    pub fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        let meta = snapshot.get_metadata();
        if meta.index <= self.snapshot_index {
            return Err(Error::SnapshotOutOfDate {
                index: meta.index,
                current: self.snapshot_index,
            });
        }
        self.snapshotter.save_snap(snapshot)?;
        let marker = WalSnapshot {
            index: meta.index,
            term: meta.term,
            conf_state: Some(meta.get_conf_state().clone()),
        };
        match &mut self.wal {
            Log::Plain(wal) => wal.save_snapshot_marker(&marker)?,
            Log::Shared(shared) => shared.save_snapshot_marker(&marker)?,
        }
        self.snapshot_index = meta.index;
        Ok(())
    }

    /// Lets go of what `snapshot` (already saved) makes unnecessary: snap files beyond the
    /// newest [`StorageOptions::keep_snapshots`], and the locks of WAL segments older than the
    /// oldest snap file kept, which [`Storage::purge`] may then delete.
    pub fn release(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.snapshotter.purge(self.options.keep_snapshots.max(1))?;
        let oldest_kept = self
            .snapshotter
            .snap_names()?
            .iter()
            .map(|name| name.index)
            .min()
            .unwrap_or(0);
        let index = oldest_kept.min(snapshot.get_metadata().index);
        match &mut self.wal {
            Log::Plain(wal) => wal.release_lock_to(index),
            Log::Shared(shared) => shared.release_lock_to(index),
        }
    }

    /// Makes everything saved so far durable.
    pub fn sync(&mut self) -> Result<()> {
        match &mut self.wal {
            Log::Plain(wal) => wal.sync(),
            Log::Shared(shared) => shared.sync(),
        }
    }

    /// Whether the WAL refuses writes after a failure (see [`Wal::is_poisoned`]). After an
    /// error from [`Storage::save_snapshot`], this says whether the log itself failed (reopen the
    /// storage) or only the snap file could not be written (the log is intact; retry).
    pub fn is_poisoned(&self) -> bool {
        match &self.wal {
            Log::Plain(wal) => wal.is_poisoned(),
            Log::Shared(shared) => shared.is_poisoned(),
        }
    }

    /// Deletes released WAL segments, oldest first, until `keep` segment files are left; stops
    /// at the first segment still locked (by this log or any other process). Returns the names
    /// deleted. Crash-safe: see the segment directory's purge order (lock, remove, sync the
    /// directory, one segment at a time), so a crash never leaves a gap.
    pub fn purge(&mut self, keep: usize) -> Result<Vec<String>> {
        match &self.wal {
            Log::Plain(wal) => wal.purge_released(keep),
            Log::Shared(shared) => shared.purge_released(keep),
        }
    }

    /// Syncs and closes the WAL, releasing its locks.
    pub fn close(self) -> Result<()> {
        match self.wal {
            Log::Plain(wal) => wal.close(),
            Log::Shared(shared) => shared.close(),
        }
    }
}

/// Streams `wal`'s records to their end, handing each entry to `entry`.
fn replay_entries(wal: &mut Wal, entry: &mut dyn FnMut(&Replay<'_>, Entry)) -> Result<()> {
    let mut replay = wal.replay()?;
    while let Some(record) = replay.next() {
        if let LogRecord::Entry(e) = record? {
            entry(&replay, e);
        }
    }
    Ok(())
}

/// Builds a storage in `<dir>.tmp` and renames it to `dir` (see
/// [`segment::create_atomically`]): the WAL, then (for a bootstrap) the snapshot file, its
/// marker and the HardState.
fn create_atomically(
    dir: &Path,
    metadata: &[u8],
    initial: Option<(&Snapshot, &HardState)>,
    options: &StorageOptions,
) -> Result<()> {
    let fs = options.wal.file_system.clone();
    segment::create_atomically(fs.as_ref(), dir, |tmp| {
        let snap_dir = tmp.join(SNAP_DIR);
        fs.create_dir_all(&snap_dir)
            .ctx(|| format!("creating {}", snap_dir.display()))?;
        let mut wal = options.wal.create(tmp.join(WAL_DIR), metadata)?;
        if let Some((snapshot, hard_state)) = initial {
            let meta = snapshot.get_metadata();
            Snapshotter::with_file_system(&snap_dir, fs.clone()).save_snap(snapshot)?;
            wal.save_snapshot_marker(&WalSnapshot {
                index: meta.index,
                term: meta.term,
                conf_state: Some(meta.get_conf_state().clone()),
            })?;
            wal.save(hard_state, &[])?;
        }
        wal.close()
    })
}
