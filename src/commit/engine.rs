//! The group commit engine behind [`SharedWal`](super::SharedWal).
//!
//! Saves are numbered in the order they are written (their order in the log). A save is
//! acknowledged once `durable` reaches its target. One thread at a time leads a sync: under the
//! lock it flushes the encoder (one write for the whole batch) and notes the last save number,
//! then fdatasyncs the tail file *without* the lock, so saves keep arriving and form the next
//! batch. Blocking callers lead their own syncs (no hand-off to another thread on the common
//! path); the sync thread leads for completions nobody blocks on and for the periodic timer.
//!
//! Callers that wait sleep on their own [`Slot`]: the leader wakes exactly the callers its sync
//! made durable, after dropping the lock, and they return without taking the lock again.
//!
//! A caller about to lead may first *gather*: when the last sync released callers that block (a
//! closed loop of writers, each saving again as soon as its save is durable), it waits, for at
//! most the last fdatasync's time, until those callers are back, so one fdatasync covers them
//! all instead of the batch splitting into two half-size cohorts that alternate. Waiting as long
//! as one fdatasync is the break-even point: two alternating half batches also take two
//! fdatasyncs per writer round. The last of them to arrive leads the sync itself (the gatherer
//! becomes an ordinary sleeper), which saves a wake-up. The cost falls on writers that do not
//! come back at once (they think between saves, or are finishing): each sync then starts up to
//! one fdatasync's time (never more than 1 ms) later. One writer alone never waits: it is the
//! only caller expected. The sync thread never gathers: it serves completions, whose owners
//! (a raft loop, a flusher thread) are waiting on the very sync it would delay; gathering there
//! cost a three-node openraft cluster about a tenth of its writes. (A completion submitted
//! while a caller gathers is covered by that caller's sync.)

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use raft_proto::eraftpb::{Entry, HardState};

use super::policy::SyncPolicy;
use super::slot::{self, Slot, Wake};
use crate::error::{Error, Result};
use crate::fs::WalFile;
use crate::wal::Wal;

/// Longest a leader gathers, whatever the disk: past this, waiting costs more latency than
/// it can save.
const MAX_GATHER: Duration = Duration::from_millis(1);

/// State shared by the writer handle, its completions and its sync thread.
#[derive(Debug)]
pub(super) struct Shared {
    state: Mutex<State>,
    /// Signalled when a sync ends, for the rare callers that must wait for the log to be idle
    /// (`Always`, snapshots, close).
    progress: Condvar,
    /// Signalled when the sync thread may have work (or must stop).
    work: Condvar,
    pub(super) policy: SyncPolicy,
}

/// Everything behind the lock.
#[derive(Debug)]
pub(super) struct State {
    /// `None` once closed.
    pub(super) wal: Option<Wal>,
    /// Number of the last save written.
    accepted: u64,
    /// Number of the last save that must be durable before it (and every later save) is
    /// acknowledged.
    required: u64,
    /// Every save up to this number is durable.
    durable: u64,
    /// Highest target of a completion handed out by `submit`: the sync thread works for these.
    async_target: u64,
    /// A leader is between its flush and the end of its fdatasync.
    syncing: bool,
    /// The caller gathering its batch before it leads, if one is: its save and its slot (it
    /// becomes one of the sleepers when another caller takes its sync over).
    gatherer: Option<Sleeper>,
    /// Callers blocked until `durable` reaches their target, in no particular order.
    sleepers: Vec<Sleeper>,
    /// Blocking callers expected in the next batch: those the last sync released (they save
    /// again in a closed loop) plus those already waiting for it.
    expected: usize,
    /// How long the last fdatasync took: the scale for how long gathering may take.
    last_sync_took: Duration,
    /// Threads waiting on `progress`.
    blocked: usize,
    /// The first failure. Terminal: nothing is acknowledged after it.
    failure: Option<Error>,
    /// Futures waiting for `durable` to reach their target.
    wakers: Vec<Waiter>,
    /// Entries written since the last save that waited (for `SyncPolicy::Periodic`).
    entries_since_required: u64,
    /// When the last successful sync ended (for `SyncPolicy::Periodic`).
    last_sync: Instant,
    /// The sync thread must exit.
    stopping: bool,
}

#[derive(Debug)]
struct Sleeper {
    target: u64,
    slot: Arc<Slot>,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    target: u64,
    waker: Waker,
}

/// What a poll of a completion found.
pub(super) enum Poll {
    Done(Result<()>),
    Pending,
}

/// Who leads a sync: a caller blocked on its own save (it will likely save again as soon as
/// it returns) or the sync thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leader {
    Caller,
    SyncThread,
}

impl Shared {
    /// Whether a write or sync failed: nothing is acknowledged any more.
    pub(super) fn is_failed(&self) -> bool {
        let st = self.lock();
        st.failure.is_some() || st.wal.as_ref().is_some_and(Wal::is_poisoned)
    }

    pub(super) fn new(wal: Wal, policy: SyncPolicy) -> Shared {
        Shared {
            state: Mutex::new(State {
                wal: Some(wal),
                accepted: 0,
                required: 0,
                durable: 0,
                async_target: 0,
                syncing: false,
                gatherer: None,
                sleepers: Vec::new(),
                expected: 0,
                last_sync_took: Duration::ZERO,
                blocked: 0,
                failure: None,
                wakers: Vec::new(),
                entries_since_required: 0,
                last_sync: Instant::now(),
                stopping: false,
            }),
            progress: Condvar::new(),
            work: Condvar::new(),
            policy,
        }
    }

    /// The lock. A panic elsewhere while holding it cannot leave the counters half-updated
    /// (each update is one assignment), so a poisoned mutex is still usable.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes a save (unsynced) and returns its target: the save number that must be durable
    /// before it is acknowledged. Under `SyncPolicy::Always` the save is synced before return.
    pub(super) fn accept<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        hard_state: &HardState,
        entries: &[Entry],
    ) -> (MutexGuard<'a, State>, Result<u64>) {
        let written = match st.wal.as_mut() {
            Some(wal) => wal.save_unsynced(hard_state, entries),
            None => return (st, Err(closed())),
        };
        let must_sync = match written {
            Ok(must_sync) => must_sync,
            Err(e) => {
                st.fail(&e);
                return (self.finish_holding_lock(st), Err(e));
            }
        };
        st.accepted += 1;
        let seq = st.accepted;
        let wait = match self.policy {
            SyncPolicy::Never => false,
            SyncPolicy::Always => true,
            SyncPolicy::Grouped => must_sync,
            SyncPolicy::Periodic { max_entries, .. } => {
                st.entries_since_required += entries.len() as u64;
                if st.entries_since_required >= max_entries {
                    st.entries_since_required = 0;
                    true
                } else {
                    // The first unsynced save starts the timer of the sync thread.
                    if st.durable + 1 == seq {
                        self.work.notify_one();
                    }
                    false
                }
            }
        };
        if wait {
            st.required = seq;
        }
        let target = st.required;
        if self.policy == SyncPolicy::Always {
            st = self.sync_holding_lock(st);
        }
        (st, Ok(target))
    }

    /// The number of the last save written (it identifies that save's completion).
    pub(super) fn last_accepted(st: &State) -> u64 {
        st.accepted
    }

    /// Gives `entries` the indexes after the last entry written; returns the last index.
    pub(super) fn number(st: &mut State, entries: &mut [Entry]) -> Result<u64> {
        let Some(wal) = st.wal.as_ref() else {
            return Err(closed());
        };
        let mut index = wal.last_index();
        for entry in entries {
            index += 1;
            entry.index = index;
        }
        Ok(index)
    }

    /// Marks everything written so far as required to be durable; returns the target.
    pub(super) fn require_all(st: &mut State) -> u64 {
        st.required = st.accepted;
        st.required
    }

    /// Notes that a completion nobody blocks on needs `target`: the sync thread takes it
    /// unless a sync is running or gathering (that one's end hands the work on).
    pub(super) fn want_async(&self, st: &mut State, target: u64) {
        if target > st.durable && st.failure.is_none() {
            st.async_target = st.async_target.max(target);
            if !st.syncing && !st.is_gathering() {
                self.work.notify_one();
            }
        }
    }

    /// Blocks until save `target` is durable (leading syncs as needed) or the log failed.
    pub(super) fn wait_durable<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        target: u64,
    ) -> Result<()> {
        loop {
            if st.durable >= target {
                return Ok(());
            }
            if let Some(e) = &st.failure {
                return Err(e.duplicate());
            }
            if !st.syncing && self.completes_gather(&st) {
                // The last caller the gatherer waits for: it leads itself rather than waking
                // the gatherer to do it (one wake-up and one context switch less per sync).
                self.take_over_gather(&mut st);
                self.lead(st, Leader::Caller);
                st = self.lock();
                continue;
            }
            if st.syncing || st.is_gathering() {
                let slot = Slot::armed();
                st.sleepers.push(Sleeper {
                    target,
                    slot: slot.clone(),
                });
                drop(st);
                if slot.sleep() == Wake::Done {
                    return Ok(());
                }
                st = self.lock();
                continue;
            }
            st = match self.gather(st, target) {
                Some(st) => st,
                None => return Ok(()),
            };
            // Woken for a failure, or another caller started a sync or a gather meanwhile:
            // look again rather than lead beside them.
            if st.syncing || st.is_gathering() {
                continue;
            }
            self.lead(st, Leader::Caller);
            st = self.lock();
        }
    }

    /// The state of a completion's save, registering `waker` when it is not done yet.
    pub(super) fn poll(&self, id: u64, target: u64, waker: &Waker) -> Poll {
        let mut st = self.lock();
        if st.durable >= target {
            return Poll::Done(Ok(()));
        }
        if let Some(e) = &st.failure {
            return Poll::Done(Err(e.duplicate()));
        }
        match st.wakers.iter_mut().find(|w| w.id == id) {
            Some(w) => w.waker.clone_from(waker),
            None => st.wakers.push(Waiter {
                id,
                target,
                waker: waker.clone(),
            }),
        }
        self.want_async(&mut st, target);
        Poll::Pending
    }

    /// The state of a completion's save, without blocking.
    pub(super) fn try_done(&self, target: u64) -> Option<Result<()>> {
        let st = self.lock();
        if st.durable >= target {
            Some(Ok(()))
        } else {
            st.failure.as_ref().map(|e| Err(e.duplicate()))
        }
    }

    /// Whether a caller about to lead should wait for more blocking callers first: the last
    /// sync released callers that have not saved again yet.
    fn should_gather(&self, st: &State) -> bool {
        self.policy == SyncPolicy::Grouped
            && st.failure.is_none()
            && st.expected > st.sleepers.len() + 1
            && st.last_sync_took > Duration::ZERO
    }

    /// Whether the calling caller is the last one a gathering caller waits for.
    fn completes_gather(&self, st: &State) -> bool {
        st.gatherer.is_some() && st.sleepers.len() + 2 >= st.expected
    }

    /// Ends a caller's gather by taking over its sync: the gatherer becomes a sleeper.
    fn take_over_gather(&self, st: &mut State) {
        if let Some(gatherer) = st.gatherer.take() {
            st.sleepers.push(gatherer);
        }
    }

    /// Ends a gather early because the log failed. Under the lock, so the gatherer cannot have
    /// moved on to another wait meanwhile.
    fn wake_gatherer(&self, st: &mut State) {
        if let Some(gatherer) = st.gatherer.take() {
            gatherer.slot.wake(Wake::Check);
        }
    }

    /// Before leading: waits (without the lock) for the callers the last sync released to
    /// save again, for at most the last fdatasync's time. Returns the lock; the caller
    /// leads unless a sync or another gather started meanwhile. `None` when its save
    /// (`target`) became durable meanwhile: another caller took its sync over, or a snapshot
    /// marker or close synced the log.
    fn gather<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        target: u64,
    ) -> Option<MutexGuard<'a, State>> {
        if !self.should_gather(&st) {
            return Some(st);
        }
        let deadline = Instant::now() + st.last_sync_took.min(MAX_GATHER);
        let slot = Slot::armed();
        st.gatherer = Some(Sleeper {
            target,
            slot: slot.clone(),
        });
        drop(st);
        match slot.sleep_until(deadline) {
            Some(Wake::Done) => return None,
            // The log failed.
            Some(Wake::Check) => st = self.lock(),
            None => {
                st = self.lock();
                let still_mine = st
                    .gatherer
                    .as_ref()
                    .is_some_and(|g| Arc::ptr_eq(&g.slot, &slot));
                if still_mine {
                    // Timed out: lead with whoever came.
                    st.gatherer = None;
                } else {
                    // Taken over (now a sleeper like any other), released or failed between
                    // the timeout and the lock: its wake-up is stored or on its way.
                    drop(st);
                    if slot.sleep() == Wake::Done {
                        return None;
                    }
                    st = self.lock();
                }
            }
        }
        Some(st)
    }

    /// One group sync: flush under the lock, fdatasync without it, then publish the result
    /// and wake the callers it made durable. The caller checked that no other sync is running.
    fn lead(&self, mut st: MutexGuard<'_, State>, leader: Leader) {
        let upto = st.accepted;
        if upto <= st.durable || st.failure.is_some() {
            // A snapshot marker or close made everything durable meanwhile.
            self.finish(st, leader);
            return;
        }
        st.syncing = true;
        let flushed = match st.wal.as_mut() {
            Some(wal) => wal.flush_tail(),
            None => Err(closed()),
        };
        let file = match flushed {
            Ok(file) => file,
            Err(e) => {
                st.syncing = false;
                st.fail(&e);
                self.finish(st, leader);
                return;
            }
        };
        drop(st);
        let began = Instant::now();
        let synced = crate::observe::fsync(None, || file.sync_data());
        let took = began.elapsed();
        let mut st = self.lock();
        st.syncing = false;
        st.last_sync_took = took;
        match synced {
            // A failure recorded while this sync ran (a cut's sync of the same file, say) may
            // have taken the error this fdatasync should have reported: acknowledge nothing.
            Ok(()) if st.failure.is_none() => {
                st.durable = st.durable.max(upto);
                st.last_sync = Instant::now();
            }
            Ok(()) => {}
            Err(e) => {
                let err = Error::io(format!("syncing {}", st.path_of(&file)), e);
                if let Some(wal) = st.wal.as_mut() {
                    let _ = wal.poison::<()>(Err(err.duplicate()));
                }
                st.fail(&err);
            }
        }
        self.finish(st, leader);
    }

    /// Syncs everything written, holding the lock throughout (no batching): `Always`,
    /// snapshots and close. Waits for a running group sync first, so that two fdatasyncs of
    /// one file never race (one of them could consume the error the other should report).
    pub(super) fn sync_holding_lock<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
    ) -> MutexGuard<'a, State> {
        while st.syncing {
            st = self.wait_progress(st);
        }
        if st.failure.is_some() {
            return st;
        }
        let upto = st.accepted;
        let synced = match st.wal.as_mut() {
            Some(wal) => wal.sync(),
            None => Err(closed()),
        };
        match synced {
            Ok(()) => {
                st.durable = st.durable.max(upto);
                st.last_sync = Instant::now();
            }
            Err(e) => st.fail(&e),
        }
        self.finish_holding_lock(st)
    }

    /// Runs `op` on the log, holding the lock, after any running group sync; a failure of
    /// `op` fails every unacknowledged save. `op` must leave everything written durable when it
    /// returns `Ok` (as `Wal::save_snapshot_marker` and `Wal::close` do).
    pub(super) fn durable_op<T>(&self, op: impl FnOnce(&mut Wal) -> Result<T>) -> Result<T> {
        let mut st = self.lock();
        while st.syncing {
            st = self.wait_progress(st);
        }
        if let Some(e) = &st.failure {
            return Err(e.duplicate());
        }
        let upto = st.accepted;
        let result = match st.wal.as_mut() {
            Some(wal) => op(wal),
            None => Err(closed()),
        };
        match &result {
            Ok(_) => st.durable = st.durable.max(upto),
            Err(e) => st.fail(e),
        }
        self.finish(st, Leader::SyncThread);
        result
    }

    /// Waits for `progress` (counted, so that `finish` makes no wake-up call for nobody).
    fn wait_progress<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        st.blocked += 1;
        let mut st = self
            .progress
            .wait(st)
            .unwrap_or_else(PoisonError::into_inner);
        st.blocked -= 1;
        st
    }

    /// Publishes progress and drops the lock, then wakes the callers it made durable.
    fn finish(&self, st: MutexGuard<'_, State>, leader: Leader) {
        let st = self.publish(st, leader);
        drop(st);
        slot::wake_queued();
    }

    /// Publishes progress where the caller keeps the lock; wakes under it (rare paths).
    fn finish_holding_lock<'a>(&'a self, st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let st = self.publish(st, Leader::SyncThread);
        slot::wake_queued();
        st
    }

    /// Publishes progress: queues the sleepers (and the gatherer) whose save is durable for
    /// waking, wakes every sleeper and the gatherer when the log failed, hands the next sync to a caller still
    /// waiting (or to the sync thread), and wakes futures whose save is done (or failed).
    fn publish<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        leader: Leader,
    ) -> MutexGuard<'a, State> {
        if st.blocked > 0 {
            self.progress.notify_all();
        }
        let durable = st.durable;
        if st.failure.is_some() {
            for sleeper in st.sleepers.drain(..) {
                sleeper.slot.wake(Wake::Check);
            }
            self.wake_gatherer(&mut st);
            self.work.notify_all();
        } else {
            let mut released = 0;
            // A snapshot marker or close made the gatherer's own save durable: it is done.
            if let Some(gatherer) = st.gatherer.take_if(|g| g.target <= durable) {
                slot::queue_done(gatherer.slot);
                released += 1;
            }
            let mut i = 0;
            while i < st.sleepers.len() {
                if st.sleepers[i].target <= durable {
                    slot::queue_done(st.sleepers.swap_remove(i).slot);
                    released += 1;
                } else {
                    i += 1;
                }
            }
            st.expected = released + usize::from(leader == Leader::Caller) + st.sleepers.len();
            if !st.syncing && !st.is_gathering() {
                if let Some(next) = st.sleepers.pop() {
                    // A caller still waits for a later save: it leads the next sync.
                    next.slot.wake(Wake::Check);
                } else if st.async_target > durable {
                    self.work.notify_one();
                }
            }
        }
        if st.wakers.is_empty() {
            return st;
        }
        let failed = st.failure.is_some();
        let mut i = 0;
        while i < st.wakers.len() {
            if failed || st.wakers[i].target <= durable {
                // Waking only schedules the task; its poll takes the lock after we drop it.
                st.wakers.swap_remove(i).waker.wake();
            } else {
                i += 1;
            }
        }
        st
    }

    /// The sync thread: leads syncs that completions need and the periodic timer asks for.
    pub(super) fn run_sync_thread(&self) {
        let mut st = self.lock();
        loop {
            if st.stopping {
                return;
            }
            let mut timeout = None;
            if st.failure.is_none() && !st.syncing && !st.is_gathering() && st.wal.is_some() {
                if st.async_target > st.durable {
                    self.lead(st, Leader::SyncThread);
                    st = self.lock();
                    continue;
                }
                if let SyncPolicy::Periodic { interval, .. } = self.policy {
                    if st.accepted > st.durable {
                        match st.last_sync.checked_add(interval) {
                            Some(deadline) if deadline <= Instant::now() => {
                                self.lead(st, Leader::SyncThread);
                                st = self.lock();
                                continue;
                            }
                            Some(deadline) => timeout = Some(deadline - Instant::now()),
                            None => {}
                        }
                    }
                }
            }
            st = match timeout {
                Some(t) => {
                    self.work
                        .wait_timeout(st, t)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.work.wait(st).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }

    /// Asks the sync thread to exit.
    pub(super) fn stop(&self) {
        self.lock().stopping = true;
        self.work.notify_all();
    }

    /// After the sync thread stopped: syncs what completions still wait for, so none hangs.
    pub(super) fn settle(&self) {
        let st = self.lock();
        if st.async_target > st.durable && st.failure.is_none() && st.wal.is_some() {
            let target = st.async_target;
            let _ = self.wait_durable(st, target);
        }
    }

    /// Closes the log: syncs what was written (after any running group sync) and releases the
    /// locks. Saves not yet acknowledged are acknowledged when that sync succeeds, failed
    /// otherwise; later saves get `Error::InvalidState`.
    pub(super) fn close(&self) -> Result<()> {
        let mut st = self.lock();
        while st.syncing {
            st = self.wait_progress(st);
        }
        let Some(wal) = st.wal.take() else {
            return Ok(());
        };
        let upto = st.accepted;
        // `Wal::close` syncs only a log that has not failed.
        let result = wal.close();
        match &result {
            Ok(()) if st.failure.is_none() => st.durable = st.durable.max(upto),
            Ok(()) => {}
            Err(e) => st.fail(e),
        }
        self.finish(st, Leader::SyncThread);
        result
    }
}

impl State {
    /// Whether a caller is gathering its batch before it leads.
    fn is_gathering(&self) -> bool {
        self.gatherer.is_some()
    }

    /// Records the first failure: from now on nothing is acknowledged.
    fn fail(&mut self, e: &Error) {
        if self.failure.is_none() {
            self.failure = Some(e.duplicate());
        }
    }

    /// The path of the segment `file` belongs to, for an error message (allocates).
    fn path_of(&self, file: &Arc<dyn WalFile>) -> String {
        self.wal
            .as_ref()
            .and_then(|wal| wal.path_of(file))
            .map(|path| path.display().to_string())
            .unwrap_or_else(|| "the WAL's tail segment".to_string())
    }
}

fn closed() -> Error {
    Error::InvalidState {
        reason: "the WAL was closed",
    }
}
