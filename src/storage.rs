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

use raft_proto::eraftpb::{Entry, HardState, Snapshot};

use crate::error::{Error, IoContext as _, Result};
use crate::options::WalOptions;
use crate::record::WalSnapshot;
use crate::repair::Repaired;
use crate::segment;
use crate::snap::Snapshotter;
use crate::wal::Wal;

/// The WAL's directory inside a storage directory.
pub const WAL_DIR: &str = "wal";
/// The snapshot files' directory inside a storage directory.
pub const SNAP_DIR: &str = "snap";

/// How a [`Storage`] is kept: `StorageOptions::new()` is etcd's WAL configuration and two
/// snapshot files kept.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    pub(crate) wal: WalOptions,
    pub(crate) keep_snapshots: usize,
}

impl Default for StorageOptions {
    fn default() -> StorageOptions {
        StorageOptions {
            wal: WalOptions::default(),
            keep_snapshots: 2,
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
    wal: Wal,
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
        let dir = dir.as_ref().to_path_buf();
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
        let (wal, recovered) = loop {
            let mut wal = options.wal.open(&wal_dir, &start).map_err(missing)?;
            match wal.read_all() {
                Err(Error::TornTail { .. }) if repaired.is_none() => {
                    drop(wal);
                    repaired = options.wal.repair(&wal_dir)?;
                    if repaired.is_none() {
                        return Err(Error::InvalidState {
                            reason: "repair found no torn tail where read_all found one",
                        });
                    }
                }
                result => break (wal, result?),
            }
        };
        snapshotter.remove_newer_than(start.index)?;
        let storage = Storage {
            dir,
            wal,
            snapshotter,
            options,
            snapshot_index: start.index,
        };
        let restored = Restored {
            snapshot,
            metadata: recovered.metadata,
            hard_state: recovered.hard_state,
            entries: recovered.entries,
            repaired,
        };
        Ok((storage, restored))
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The WAL.
    pub fn wal(&self) -> &Wal {
        &self.wal
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
        self.wal.save(hard_state, entries)
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
        self.wal.save_snapshot_marker(&WalSnapshot {
            index: meta.index,
            term: meta.term,
            conf_state: Some(meta.get_conf_state().clone()),
        })?;
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
        self.wal
            .release_lock_to(oldest_kept.min(snapshot.get_metadata().index))
    }

    /// Makes everything saved so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.wal.sync()
    }

    /// Whether the WAL refuses writes after a failure (see [`Wal::is_poisoned`]). After an
    /// error from [`Storage::save_snapshot`], this says whether the log itself failed (reopen the
    /// storage) or only the snap file could not be written (the log is intact; retry).
    pub fn is_poisoned(&self) -> bool {
        self.wal.is_poisoned()
    }

    /// Deletes released WAL segments, oldest first, until `keep` segment files are left; stops
    /// at the first segment still locked (by this log or any other process). Returns the names
    /// deleted. Crash-safe: see the segment directory's purge order (lock, remove, sync the
    /// directory, one segment at a time), so a crash never leaves a gap.
    pub fn purge(&mut self, keep: usize) -> Result<Vec<String>> {
        self.wal.purge_released(keep)
    }

    /// Syncs and closes the WAL, releasing its locks.
    pub fn close(self) -> Result<()> {
        self.wal.close()
    }
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
