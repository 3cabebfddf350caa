//! The file store: a journal's records as entries of an etcd-format log on the local disk
//! (an [`AppLog`] directory, so `raftwal verify` and `raftwal dump` work on it).

use std::path::{Path, PathBuf};

use super::Store;
use crate::applog::AppLog;
use crate::error::{Error, Result};
use crate::options::WalOptions;
use crate::repair::Repaired;
use crate::wal::LogRecord;

/// A [`Store`] on an etcd-format log directory: record `i` is the raft entry at index `i`, a
/// batch is one write and one fdatasync, and [`Store::delete_before`] writes a snapshot marker
/// and deletes the segment files it covers, in the segment directory's crash-safe order.
///
/// Opening repairs a torn tail (the unsynced end a power loss leaves, which held nothing
/// acknowledged; the cut bytes are kept as `<segment>.broken`), and refuses every other damage
/// with a typed error ([`Error::is_corruption`]): a corrupt record is never skipped.
///
/// ```
/// use raftwal::store::{FileStore, Store};
/// use raftwal::WalOptions;
///
/// # fn main() -> raftwal::Result<()> {
/// let parent = tempfile::tempdir().unwrap();
/// let dir = parent.path().join("journal");
/// let mut store = FileStore::create(&dir, WalOptions::new())?;
/// store.append(&[b"one", b"two"])?;
/// Box::new(store).close()?;
///
/// let mut store = FileStore::open(&dir, WalOptions::new())?;
/// assert_eq!((store.first_index(), store.last_index()), (1, 2));
/// let mut seen = Vec::new();
/// store.read_from(2, &mut |index, bytes| Ok(seen.push((index, bytes.to_vec()))))?;
/// assert_eq!(seen, vec![(2, b"two".to_vec())]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FileStore {
    log: AppLog,
    dir: PathBuf,
    options: WalOptions,
    repaired: Option<Repaired>,
}

impl FileStore {
    /// Creates an empty store in `dir` (see [`WalOptions::create`]: atomic, and refused when
    /// `dir` already holds files).
    pub fn create(dir: impl AsRef<Path>, options: WalOptions) -> Result<FileStore> {
        let dir = dir.as_ref();
        Ok(FileStore {
            log: AppLog::create(dir, options.clone())?,
            dir: dir.to_path_buf(),
            options,
            repaired: None,
        })
    }

    /// Opens the store in `dir`, reading it to its end (which checks every record), after
    /// cutting off a torn tail if the last segment has one. No log in `dir` is
    /// [`Error::SegmentNotFound`]; another writer is [`Error::Locked`].
    pub fn open(dir: impl AsRef<Path>, options: WalOptions) -> Result<FileStore> {
        let dir = dir.as_ref();
        let (log, repaired) = match open_to_end(dir, &options) {
            Err(e) if e.is_torn() => {
                let repaired = options.repair(dir)?;
                if let Some(r) = &repaired {
                    tracing::warn!(
                        file = %r.file.display(),
                        offset = r.offset,
                        "cut a torn tail off the journal's last segment"
                    );
                }
                (open_to_end(dir, &options)?, repaired)
            }
            other => (other?, None),
        };
        Ok(FileStore {
            log,
            dir: dir.to_path_buf(),
            options,
            repaired,
        })
    }

    /// Opens the store in `dir` if it holds a log, creates it otherwise. Only for a directory
    /// that is known to be new or this store's: a log whose every segment was lost is
    /// indistinguishable from none and would start again empty.
    pub fn open_or_create(dir: impl AsRef<Path>, options: WalOptions) -> Result<FileStore> {
        if options.exists(dir.as_ref()) {
            FileStore::open(dir, options)
        } else {
            FileStore::create(dir, options)
        }
    }

    /// The torn tail [`FileStore::open`] cut off, if it cut one.
    pub fn repaired(&self) -> Option<&Repaired> {
        self.repaired.as_ref()
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Opens the log and reads it to its end, so its last index is known.
fn open_to_end(dir: &Path, options: &WalOptions) -> Result<AppLog> {
    let mut log = AppLog::open(dir, options.clone())?;
    log.read_to_end()?;
    Ok(log)
}

impl Store for FileStore {
    fn first_index(&self) -> u64 {
        self.log.checkpoint() + 1
    }

    fn last_index(&self) -> u64 {
        self.log.last_index()
    }

    fn append(&mut self, records: &[&[u8]]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.log.append_batch(records.iter().copied()).map(|_| ())
    }

    fn read_from(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let from = from.max(self.first_index());
        let last = self.last_index();
        if from > last {
            return Ok(());
        }
        // The writer's log is past its replay; a reader beside it streams the records again.
        // It takes no locks and would end at a torn tail, so reaching the last index the
        // writer knows is checked below: damage never reads as an early end.
        let mut reader = self
            .options
            .open_for_read(&self.dir, &self.log.checkpoint_marker())?;
        let mut next = from;
        for record in reader.replay()? {
            let LogRecord::Entry(entry) = record? else {
                continue;
            };
            if entry.index < from {
                continue;
            }
            // Out of sequence (an overwrite, which a store never writes) or past the last
            // record the writer knows (written by nobody): damage.
            if entry.index != next || entry.index > last {
                return Err(unexpected(&self.dir, entry.index, next));
            }
            visit(entry.index, &entry.data)?;
            next += 1;
        }
        if next != last + 1 {
            return Err(Error::Corrupt {
                file: self.dir.clone(),
                offset: 0,
                reason: format!(
                    "the log ends at record {} but holds records up to {last}",
                    next - 1
                ),
            });
        }
        Ok(())
    }

    fn delete_before(&mut self, index: u64) -> Result<()> {
        if index > self.last_index() + 1 {
            return Err(Error::InvalidState {
                reason: "cannot delete records that were never appended",
            });
        }
        self.log.truncate_front(index.saturating_sub(1))
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.log.close()
    }
}

/// A record out of sequence in a log that only ever appends: damage, not a clean end.
fn unexpected(dir: &Path, found: u64, expected: u64) -> Error {
    Error::Corrupt {
        file: dir.to_path_buf(),
        offset: 0,
        reason: format!("record {found} where record {expected} was expected"),
    }
}
