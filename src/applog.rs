//! A general-purpose log of byte records on the same engine, for users who do not run raft.
//!
//! Each record is stored as a raft entry whose `data` carries the bytes; the log numbers
//! records 1, 2, 3, ... and keeps the raft bookkeeping (term, commit, snapshot markers) to
//! itself. The directory is an ordinary etcd WAL, so the CLI and `verify` work on it.
//!
//! ```
//! use raftwal::{AppLog, WalOptions};
//!
//! # fn main() -> raftwal::Result<()> {
//! let parent = tempfile::tempdir().unwrap();
//! let dir = parent.path().join("log");
//! let mut log = AppLog::create(&dir, WalOptions::new())?;
//! assert_eq!(log.append(b"first")?, 1);
//! assert_eq!(log.append_batch([&b"second"[..], b"third"])?, 2..4);
//! log.truncate_front(1)?; // a checkpoint covers record 1
//! log.close()?;
//!
//! let mut log = AppLog::open(&dir, WalOptions::new())?;
//! let records: Vec<(u64, Vec<u8>)> = log.replay_from(0)?.collect::<raftwal::Result<_>>()?;
//! assert_eq!(records, vec![(2, b"second".to_vec()), (3, b"third".to_vec())]);
//! assert_eq!(log.append(b"fourth")?, 4);
//! # Ok(())
//! # }
//! ```

use std::ops::Range;
use std::path::Path;

use raft_proto::eraftpb::{Entry, HardState};

use crate::error::{Error, Result};
use crate::options::WalOptions;
use crate::record::WalSnapshot;
use crate::wal::{LogRecord, Replay, Wal};

/// The raft term of every record: there is no leader to change it.
const TERM: u64 = 1;

/// A durable, append-only log of byte records numbered from 1, with replay from any index and
/// truncation of the front after a checkpoint. Single writer; wrap it in a `Mutex` to share it.
#[derive(Debug)]
pub struct AppLog {
    wal: Wal,
    /// Records at or below this index may be gone.
    checkpoint: u64,
    /// Reused for every append.
    entries: Vec<Entry>,
}

impl AppLog {
    /// Creates an empty log in `dir` stored as `options` says (see [`WalOptions::create`]).
    pub fn create(dir: impl AsRef<Path>, options: WalOptions) -> Result<AppLog> {
        Ok(AppLog {
            wal: options.create(dir, b"")?,
            checkpoint: 0,
            entries: Vec::new(),
        })
    }

    /// Opens the log in `dir` for appending, from its last checkpoint. Read it with
    /// [`AppLog::replay_from`]; an append without a replay skips over the old records first.
    pub fn open(dir: impl AsRef<Path>, options: WalOptions) -> Result<AppLog> {
        let dir = dir.as_ref();
        let checkpoint = options
            .valid_snapshot_entries(dir)?
            .into_iter()
            .max_by_key(|snap| snap.index)
            .unwrap_or_default();
        Ok(AppLog {
            checkpoint: checkpoint.index,
            wal: options.open(dir, &checkpoint)?,
            entries: Vec::new(),
        })
    }

    /// Records at or below this index may have been removed by [`AppLog::truncate_front`].
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// The index of the last record (once the log was replayed or appended to).
    pub fn last_index(&self) -> u64 {
        self.wal.last_index()
    }

    /// Streams the records with index `from` or above, oldest first (records at or below the
    /// checkpoint are skipped: they may be gone). Once drained, the log accepts appends.
    /// Only a freshly opened log can be replayed.
    pub fn replay_from(&mut self, from: u64) -> Result<AppReplay<'_>> {
        Ok(AppReplay {
            from: from.max(self.checkpoint + 1),
            records: self.wal.replay()?,
        })
    }

    /// Appends one record and makes it durable; returns its index.
    pub fn append(&mut self, data: &[u8]) -> Result<u64> {
        self.append_batch([data]).map(|range| range.start)
    }

    /// Appends records in order and makes them durable with one sync; returns their indexes.
    pub fn append_batch<'d>(
        &mut self,
        records: impl IntoIterator<Item = &'d [u8]>,
    ) -> Result<Range<u64>> {
        self.skip_replay()?;
        let first = self.wal.last_index() + 1;
        self.entries.clear();
        for (index, data) in (first..).zip(records) {
            self.entries.push(Entry {
                index,
                term: TERM,
                data: data.to_vec().into(),
                ..Default::default()
            });
        }
        self.wal.save(&HardState::default(), &self.entries)?;
        Ok(first..first + self.entries.len() as u64)
    }

    /// Declares that records up to `checkpoint` are no longer needed (the caller persisted
    /// what they built), durably, then deletes the segment files that hold only such records.
    /// Later opens start at the newest checkpoint.
    pub fn truncate_front(&mut self, checkpoint: u64) -> Result<()> {
        self.skip_replay()?;
        if checkpoint > self.wal.last_index() {
            return Err(Error::InvalidState {
                reason: "a checkpoint cannot be past the last record",
            });
        }
        if checkpoint < self.checkpoint {
            return Ok(());
        }
        if checkpoint > self.checkpoint {
            // A snapshot marker counts only up to the last commit: commit everything, then
            // mark. `save_snapshot_marker` syncs both.
            let commit = HardState {
                term: TERM,
                commit: self.wal.last_index(),
                ..Default::default()
            };
            self.wal.save(&commit, &[])?;
            self.wal
                .save_snapshot_marker(&WalSnapshot::new(checkpoint, TERM))?;
            self.checkpoint = checkpoint;
        }
        // At the current checkpoint the purge still runs: it finishes one a crash interrupted.
        // A reopen reads from the last segment starting at or below the checkpoint; every
        // segment before it goes, in the segment directory's one crash-safe purge order.
        self.wal.release_lock_to(checkpoint + 1)?;
        self.wal.purge_released(0)?;
        Ok(())
    }

    /// The snapshot marker a reader of the log starts from: the newest checkpoint.
    pub(crate) fn checkpoint_marker(&self) -> WalSnapshot {
        match self.checkpoint {
            0 => WalSnapshot::default(),
            index => WalSnapshot::new(index, TERM),
        }
    }

    /// Reads past the old records of an opened log that was not replayed, so that
    /// [`AppLog::last_index`] is the last record on disk.
    pub(crate) fn read_to_end(&mut self) -> Result<()> {
        self.skip_replay()
    }

    /// Whether the log refuses writes after a failure (see [`Wal::is_poisoned`]).
    pub fn is_poisoned(&self) -> bool {
        self.wal.is_poisoned()
    }

    /// Reads past the old records of an opened log that was not replayed.
    fn skip_replay(&mut self) -> Result<()> {
        if self.wal.is_replaying() {
            for record in self.wal.replay()? {
                record?;
            }
        }
        Ok(())
    }

    /// Syncs and releases the log.
    pub fn close(self) -> Result<()> {
        self.wal.close()
    }
}

/// The records of an [`AppLog`] from an index on, as `(index, bytes)`.
#[derive(Debug)]
pub struct AppReplay<'a> {
    from: u64,
    records: Replay<'a>,
}

impl Iterator for AppReplay<'_> {
    type Item = Result<(u64, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.records.next()? {
                Ok(LogRecord::Entry(entry)) if entry.index >= self.from => {
                    return Some(Ok((entry.index, entry.data.into())));
                }
                Ok(_) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
