//! Group commit: a [`Wal`] shared by many threads (or one pipelined raft loop), where one
//! fdatasync makes every save that arrived meanwhile durable.
//!
//! ```
//! use std::sync::Arc;
//! use raft_proto::eraftpb::{Entry, HardState};
//! use raftwal::{SharedWal, SyncPolicy, Wal};
//!
//! # fn main() -> raftwal::Result<()> {
//! let parent = tempfile::tempdir().unwrap();
//! let wal = Arc::new(SharedWal::new(Wal::create(parent.path().join("wal"), b"")?, SyncPolicy::Grouped)?);
//! let mut hard_state = HardState::default();
//! hard_state.term = 1;
//!
//! // Blocking: returns once an fdatasync that covers this save has succeeded.
//! wal.save(&hard_state, &[Entry { index: 1, term: 1, ..Default::default() }])?;
//!
//! // Pipelined: written now, durable later; completions fire in log order.
//! let done = wal.submit(&hard_state, &[Entry { index: 2, term: 1, ..Default::default() }])?;
//! done.wait()?; // or `.await` it
//! # Ok(())
//! # }
//! ```

mod completion;
mod engine;
mod policy;
mod slot;

use std::sync::Arc;
use std::thread::JoinHandle;

use raft_proto::eraftpb::{Entry, HardState};

pub use completion::Completion;
pub use policy::SyncPolicy;

use crate::error::{Error, IoContext as _, Result};
use crate::record::WalSnapshot;
use crate::wal::Wal;
use engine::Shared;

/// A thread-safe writer over a [`Wal`] with group commit.
///
/// Saves from any number of threads are written in the order they are accepted (their order in
/// the log) and made durable per [`SyncPolicy`]. With the default `Grouped` policy each caller
/// returns only after an fdatasync that started after its save was written has succeeded, and
/// one fdatasync serves every save that arrived while the previous one ran.
///
/// If a write or sync fails, every save not yet acknowledged gets that error (a copy of it) and
/// every later call gets [`Error::Poisoned`]; no later sync acknowledges anything. Reopen the log
/// to go on: it holds every acknowledged save.
#[derive(Debug)]
pub struct SharedWal {
    shared: Arc<Shared>,
    sync_thread: Option<JoinHandle<()>>,
}

impl SharedWal {
    /// Shares `wal`, which must be open for writing and read to its end, under `policy`.
    /// Starts the sync thread that serves [`Completion`]s and the periodic timer.
    pub fn new(wal: Wal, policy: SyncPolicy) -> Result<SharedWal> {
        match wal.check_writable() {
            Err(e) if e.is_poisoned() => return Err(e),
            Err(_) => {
                return Err(Error::InvalidState {
                    reason: "share a WAL opened for writing and read to its end",
                })
            }
            Ok(()) => {}
        }
        let shared = Arc::new(Shared::new(wal, policy));
        let thread_shared = shared.clone();
        let sync_thread = std::thread::Builder::new()
            .name("raftwal-sync".into())
            .spawn(move || thread_shared.run_sync_thread())
            .ctx(|| "starting the WAL sync thread")?;
        Ok(SharedWal {
            shared,
            sync_thread: Some(sync_thread),
        })
    }

    /// The sync policy.
    pub fn policy(&self) -> SyncPolicy {
        self.shared.policy
    }

    /// Appends `entries`, then `hard_state` (unless empty), and returns once the save is
    /// acknowledged under the policy (with `Grouped`: durable, unless raft lets it stay
    /// unsynced). Blocks; see [`SharedWal::submit`] for the pipelined form.
    pub fn save(&self, hard_state: &HardState, entries: &[Entry]) -> Result<()> {
        let st = self.shared.lock();
        let (st, target) = self.shared.accept(st, hard_state, entries);
        self.shared.wait_durable(st, target?)
    }

    /// Appends like [`SharedWal::save`] but returns as soon as the save is written, with a
    /// [`Completion`] that fires when it is acknowledged. Completions fire in log order; a
    /// background thread runs the syncs, so nobody has to wait for them to make progress.
    ///
    /// An `Err` means nothing was written (the log has failed or is closed).
    pub fn submit(&self, hard_state: &HardState, entries: &[Entry]) -> Result<Completion> {
        let st = self.shared.lock();
        let (mut st, target) = self.shared.accept(st, hard_state, entries);
        let target = target?;
        self.shared.want_async(&mut st, target);
        let id = Shared::last_accepted(&st);
        drop(st);
        Ok(Completion::new(self.shared.clone(), id, target))
    }

    /// Numbers `entries` to follow the last entry written (their `index` fields are
    /// overwritten: `last_index() + 1`, `+ 2`, ...), appends them like [`SharedWal::save`] and
    /// returns the index of the last one once the save is acknowledged.
    ///
    /// Numbering and writing happen under the same lock, so entries appended by any number of
    /// threads at once are contiguous and stored in index order. For a log whose callers do
    /// not number entries themselves (a journal shared by many threads).
    pub fn append(&self, hard_state: &HardState, entries: &mut [Entry]) -> Result<u64> {
        let mut st = self.shared.lock();
        let last = Shared::number(&mut st, entries)?;
        let (st, target) = self.shared.accept(st, hard_state, entries);
        self.shared.wait_durable(st, target?)?;
        Ok(last)
    }

    /// [`SharedWal::append`] in the pipelined form of [`SharedWal::submit`]: returns the index
    /// of the last entry and a [`Completion`] as soon as the save is written.
    pub fn submit_append(
        &self,
        hard_state: &HardState,
        entries: &mut [Entry],
    ) -> Result<(u64, Completion)> {
        let mut st = self.shared.lock();
        let last = Shared::number(&mut st, entries)?;
        let (mut st, target) = self.shared.accept(st, hard_state, entries);
        let target = target?;
        self.shared.want_async(&mut st, target);
        let id = Shared::last_accepted(&st);
        drop(st);
        Ok((last, Completion::new(self.shared.clone(), id, target)))
    }

    /// Makes every save accepted so far durable, whatever the policy.
    pub fn sync(&self) -> Result<()> {
        let mut st = self.shared.lock();
        let target = Shared::require_all(&mut st);
        self.shared.wait_durable(st, target)
    }

    /// Appends a snapshot marker and syncs it with everything before it; see
    /// [`Wal::save_snapshot_marker`].
    pub fn save_snapshot_marker(&self, snapshot: &WalSnapshot) -> Result<()> {
        self.shared
            .durable_op(|wal| wal.save_snapshot_marker(snapshot))
    }

    /// Unlocks segments a snapshot at `index` covers; see [`Wal::release_lock_to`].
    pub fn release_lock_to(&self, index: u64) -> Result<()> {
        match self.shared.lock().wal.as_mut() {
            Some(wal) => wal.release_lock_to(index),
            None => Ok(()),
        }
    }

    /// Deletes segments released by [`SharedWal::release_lock_to`], oldest first, until `keep`
    /// segment files are left; stops at the first segment still locked (by this log or any other
    /// process). Returns the names deleted. The same crash-safe order as
    /// [`Storage::purge`](crate::Storage::purge): lock, remove, sync the directory, one segment at
    /// a time, so a crash never leaves a gap. Holds the log while it deletes.
    pub fn purge_released(&self, keep: usize) -> Result<Vec<String>> {
        match self.shared.lock().wal.as_ref() {
            Some(wal) => wal.purge_released(keep),
            None => Ok(Vec::new()),
        }
    }

    /// Whether the log refuses writes after a failed write or sync: every later call then
    /// fails. Reopen the log to go on; it holds every acknowledged save.
    pub fn is_poisoned(&self) -> bool {
        self.shared.is_failed()
    }

    /// The index of the last entry written.
    pub fn last_index(&self) -> u64 {
        self.shared
            .lock()
            .wal
            .as_ref()
            .map_or(0, |wal| wal.last_index())
    }

    /// Stops the sync thread, syncs what was written and releases the log's locks. Saves not
    /// yet acknowledged are acknowledged if that sync succeeds.
    pub fn close(mut self) -> Result<()> {
        self.stop_sync_thread();
        self.shared.close()
    }

    fn stop_sync_thread(&mut self) {
        if let Some(thread) = self.sync_thread.take() {
            self.shared.stop();
            let _ = thread.join();
        }
    }
}

impl Drop for SharedWal {
    fn drop(&mut self) {
        if self.sync_thread.is_some() {
            self.stop_sync_thread();
            // No thread serves completions any more: settle the ones still pending.
            self.shared.settle();
        }
    }
}
