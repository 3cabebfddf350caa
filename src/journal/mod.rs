//! The journal: durable records with completions, group commit, checkpoints, typed records,
//! on any [`Store`] (the file store here, etcd behind the `etcd` feature).
//!
//! A journal is a log of *data* records and *checkpoints*. A checkpoint is a run of records
//! that stands for everything before it (typically the application's state, written out):
//! [`Journal::start_checkpoint`], [`Checkpoint::append`] for each of its records, then
//! [`Checkpoint::finalize`]. Once a checkpoint is finalized, the records before it are deleted
//! from the store, and a reopened journal replays the checkpoint's records, then the data
//! after it. A checkpoint that was started but not finalized (the process died, or its
//! [`Checkpoint`] was dropped) is discarded: recovery uses the one before it.
//!
//! **Data appended while a checkpoint is open** is allowed, and belongs *after* the checkpoint:
//! the checkpoint captures the state as of [`Journal::start_checkpoint`], and recovery replays
//! such data after the checkpoint's records, in log order, whether or not the checkpoint was
//! finalized. So take the state to checkpoint at the moment the checkpoint starts.
//!
//! ```
//! use raftwal::journal::{Bytes, Journal, Replayed};
//! use raftwal::store::FileStore;
//! use raftwal::WalOptions;
//!
//! # fn main() -> raftwal::Result<()> {
//! let parent = tempfile::tempdir().unwrap();
//! let dir = parent.path().join("journal");
//! let journal = Journal::open(FileStore::create(&dir, WalOptions::new())?, Bytes, |_| {})?;
//! journal.append(b"balance 10")?.wait()?; // durable once `wait` returns
//! let checkpoint = journal.start_checkpoint()?;
//! checkpoint.append(b"state: balance 10")?;
//! journal.append(b"balance 12")?; // data while the checkpoint is open comes after it
//! checkpoint.finalize()?.wait()?; // durable, and "balance 10" is deleted
//! journal.close()?;
//!
//! let mut replayed = Vec::new();
//! let journal = Journal::open(FileStore::open(&dir, WalOptions::new())?, Bytes, |r| replayed.push(r))?;
//! assert_eq!(replayed, vec![
//!     Replayed::Checkpoint(b"state: balance 10".to_vec()),
//!     Replayed::Data { index: 4, record: b"balance 12".to_vec() },
//! ]);
//! # journal.close()
//! # }
//! ```
//!
//! Group commit happens underneath: one committer thread hands the store, as one
//! [`Store::append`], every record that arrived while the previous append ran, so many
//! concurrent appenders share each fdatasync. Completions ([`Appended`]) fire in log order. If
//! the store fails, no record that was not yet durable is acknowledged (each waiter gets the
//! error) and every later call gets [`Error::Poisoned`]: reopen the journal, which recovers
//! every acknowledged record.

mod codec;
mod commit;
mod kind;
mod recover;

use std::sync::Arc;
use std::thread::JoinHandle;

#[cfg(feature = "postcard")]
pub use codec::Postcard;
pub use codec::{Bytes, Codec, CodecError};
pub use commit::Appended;
pub use kind::{split_record, RecordKind};
pub use recover::ProtocolCheck;

use crate::error::{Error, IoContext as _, Result};
use crate::store::Store;
use commit::Shared;
use kind::header;

/// A record handed back when a journal opens, in replay order: every record of the last
/// finalized checkpoint, then every data record after its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed<R> {
    /// A record of the last finalized checkpoint, in the order they were appended.
    Checkpoint(R),
    /// A data record appended after that checkpoint started (or since the journal was created,
    /// when there is no finalized checkpoint), with its index.
    Data {
        /// The record's index in the journal.
        index: u64,
        /// The record.
        record: R,
    },
}

/// A durable journal of records of the codec's type, shared by any number of threads.
///
/// See the [module documentation](self) for checkpoints and recovery.
pub struct Journal<C: Codec = Bytes> {
    shared: Arc<Shared>,
    codec: C,
    committer: Option<JoinHandle<Box<dyn Store>>>,
}

impl<C: Codec> std::fmt::Debug for Journal<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("last_index", &self.last_index())
            .field("checkpoint", &self.checkpoint_index())
            .finish_non_exhaustive()
    }
}

impl<C: Codec> Journal<C> {
    /// Opens the journal kept in `store`: hands `replay` the last finalized checkpoint's
    /// records, then the data after it (see [`Replayed`]), finishes a deletion a crash
    /// interrupted, and returns the journal ready for appends.
    ///
    /// A record that breaks the protocol or that `codec` cannot read is
    /// [`Error::BadRecord`]; damage in the store is the store's typed error. Nothing is skipped.
    pub fn open<S: Store + 'static>(
        store: S,
        codec: C,
        mut replay: impl FnMut(Replayed<C::Record>),
    ) -> Result<Journal<C>> {
        let mut store: Box<dyn Store> = Box::new(store);
        let found = recover::recover(store.as_mut(), &codec, &mut replay)?;
        if found.checkpoint > 0 {
            // Idempotent: after a crash between a finalize and its deletion, this finishes it.
            store.delete_before(found.checkpoint)?;
        }
        let shared = Arc::new(Shared::new(store.last_index(), found.checkpoint));
        let committer_shared = shared.clone();
        let committer = std::thread::Builder::new()
            .name("raftwal-journal".into())
            .spawn(move || committer_shared.run_committer(store))
            .ctx(|| "starting the journal's committer thread")?;
        Ok(Journal {
            shared,
            codec,
            committer: Some(committer),
        })
    }

    /// Appends a data record; the returned [`Appended`] fires when it is durable (`.wait()` it
    /// or `.await` it). An `Err` here means nothing was appended.
    pub fn append(&self, record: &C::Input) -> Result<Appended> {
        let bytes = self.encode(RecordKind::Data, record)?;
        let index = self
            .shared
            .accept(&mut self.shared.lock_with_room(), bytes)?;
        Ok(Appended::new(self.shared.clone(), index))
    }

    /// Starts a checkpoint: its records follow with [`Checkpoint::append`], and it counts once
    /// [`Checkpoint::finalize`] made it durable. Data appended meanwhile is replayed after it.
    /// One checkpoint at a time: a second one while this one is open is
    /// [`Error::InvalidState`].
    pub fn start_checkpoint(&self) -> Result<Checkpoint<'_, C>> {
        let mut st = self.shared.lock();
        if st.open_checkpoint.is_some() {
            return Err(Error::InvalidState {
                reason: "a checkpoint is already open: finalize or drop it first",
            });
        }
        let start = self
            .shared
            .accept(&mut st, header(RecordKind::CheckpointStart))?;
        st.open_checkpoint = Some(start);
        Ok(Checkpoint {
            journal: self,
            start,
            finalized: false,
        })
    }

    /// Blocks until every record appended so far (checkpoint records included) is durable.
    pub fn sync(&self) -> Result<()> {
        let last = self.shared.last_index();
        self.shared.wait(last).map(|_| ())
    }

    /// The index of the last record appended (durable or not).
    pub fn last_index(&self) -> u64 {
        self.shared.last_index()
    }

    /// The index of the last finalized checkpoint's start record, 0 without one: the store
    /// holds nothing before it.
    pub fn checkpoint_index(&self) -> u64 {
        self.shared.checkpoint()
    }

    /// Whether a store error stopped the journal: every call then fails; reopen it.
    pub fn is_poisoned(&self) -> bool {
        self.shared.is_failed()
    }

    /// Makes every record appended so far durable, then closes the store (releasing its lock
    /// or lease). Records still pending are acknowledged if their append succeeds.
    pub fn close(mut self) -> Result<()> {
        match self.stop() {
            Some(Ok(store)) => store.close(),
            Some(Err(e)) => Err(e),
            None => Ok(()),
        }
    }

    /// Stops the committer once it has drained the queue; returns the store.
    fn stop(&mut self) -> Option<Result<Box<dyn Store>>> {
        let committer = self.committer.take()?;
        self.shared.close();
        Some(committer.join().map_err(|_| Error::Poisoned {
            reason: "the journal's store panicked".into(),
        }))
    }

    fn encode(&self, kind: RecordKind, record: &C::Input) -> Result<Vec<u8>> {
        let mut bytes = header(kind);
        self.codec
            .encode(record, &mut bytes)
            .map_err(|e| Error::Encode {
                reason: e.to_string(),
            })?;
        Ok(bytes)
    }
}

impl<C: Codec> Drop for Journal<C> {
    /// Drains the queue like [`Journal::close`] but drops the store without closing it.
    fn drop(&mut self) {
        self.stop();
    }
}

/// A checkpoint being written; see [`Journal::start_checkpoint`]. Dropped without
/// [`Checkpoint::finalize`], it is abandoned: recovery ignores its records.
#[must_use = "a checkpoint counts only once finalized"]
pub struct Checkpoint<'j, C: Codec> {
    journal: &'j Journal<C>,
    start: u64,
    finalized: bool,
}

impl<C: Codec> std::fmt::Debug for Checkpoint<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

impl<C: Codec> Checkpoint<'_, C> {
    /// The index of the checkpoint's start record.
    pub fn start_index(&self) -> u64 {
        self.start
    }

    /// Appends a record of the checkpoint. It becomes durable with the finalize record (or
    /// earlier, with other appends), and counts only once the checkpoint is finalized.
    pub fn append(&self, record: &C::Input) -> Result<u64> {
        let bytes = self.journal.encode(RecordKind::CheckpointRecord, record)?;
        self.journal
            .shared
            .accept(&mut self.journal.shared.lock_with_room(), bytes)
    }

    /// Appends the finalize record; the returned [`Appended`] fires once it is durable and the
    /// records before the checkpoint's start are deleted from the store. From then on the
    /// journal recovers from this checkpoint.
    pub fn finalize(mut self) -> Result<Appended> {
        let shared = &self.journal.shared;
        let mut st = shared.lock();
        let index = shared.accept(&mut st, header(RecordKind::CheckpointFinalize(self.start)))?;
        Shared::delete_after(&mut st, index, self.start);
        st.open_checkpoint = None;
        self.finalized = true;
        drop(st);
        Ok(Appended::new(shared.clone(), index))
    }
}

impl<C: Codec> Drop for Checkpoint<'_, C> {
    fn drop(&mut self) {
        if !self.finalized {
            let mut st = self.journal.shared.lock();
            if st.open_checkpoint == Some(self.start) {
                st.open_checkpoint = None;
            }
        }
    }
}
