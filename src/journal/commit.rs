//! Group commit for a journal: appenders queue encoded records under a lock; one committer
//! thread owns the store and hands it, in one `Store::append`, everything that queued up while
//! the previous append ran. Durability advances in log order, so completions fire in log order.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};
use crate::store::Store;

/// Bytes queued for the store beyond which appenders wait for the store to catch up, so a
/// journal fed faster than its store can write holds at most this much (plus one batch in
/// flight) in memory.
pub(super) const MAX_QUEUED_BYTES: usize = 16 << 20;

/// The state appenders, waiters and the committer share.
#[derive(Debug)]
pub(super) struct Shared {
    state: Mutex<State>,
    /// Wakes the committer: records queued, or closing.
    work: Condvar,
    /// Wakes blocked waiters: durability advanced, or the store failed.
    progress: Condvar,
}

#[derive(Debug)]
pub(super) struct State {
    /// Encoded records accepted but not yet handed to the store, in log order.
    queue: Vec<Vec<u8>>,
    /// The bytes in `queue`.
    queued_bytes: usize,
    /// The index the next accepted record gets.
    next: u64,
    /// Every record up to here is durable.
    durable: u64,
    /// Checkpoint deletions to run once the finalize record at the key is durable: the value
    /// is the checkpoint's start index.
    deletions: BTreeMap<u64, u64>,
    /// The start index of the last finalized checkpoint whose deletion ran (0: none).
    checkpoint: u64,
    /// The start index of the checkpoint being written, if one is.
    pub(super) open_checkpoint: Option<u64>,
    /// The store error that stopped the journal; nothing after `durable` is acknowledged.
    failed: Option<Error>,
    /// `close` was called: the committer drains the queue and stops.
    closing: bool,
    /// Wakers of pending futures, by the index they wait for.
    wakers: BTreeMap<u64, Waker>,
}

impl Shared {
    /// A journal whose store holds records up to `last` and whose last finalized checkpoint
    /// started at `checkpoint`.
    pub(super) fn new(last: u64, checkpoint: u64) -> Shared {
        Shared {
            state: Mutex::new(State {
                queue: Vec::new(),
                queued_bytes: 0,
                next: last + 1,
                durable: last,
                deletions: BTreeMap::new(),
                checkpoint,
                open_checkpoint: None,
                failed: None,
                closing: false,
                wakers: BTreeMap::new(),
            }),
            work: Condvar::new(),
            progress: Condvar::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent (every update is a
        // single assignment or push), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Locks the state once the queue has room for another record (or the journal failed or
    /// is closing, which `accept` reports): backpressure on appenders of a slow store.
    pub(super) fn lock_with_room(&self) -> MutexGuard<'_, State> {
        let mut st = self.lock();
        while st.queued_bytes >= MAX_QUEUED_BYTES && st.failed.is_none() && !st.closing {
            st = self.progress.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st
    }

    /// Queues `record` and returns its index, unless the journal failed or is closing.
    pub(super) fn accept(&self, st: &mut State, record: Vec<u8>) -> Result<u64> {
        if let Some(e) = &st.failed {
            return Err(Error::Poisoned {
                reason: format!("the journal's store failed: {e}"),
            });
        }
        if st.closing {
            return Err(Error::InvalidState {
                reason: "the journal is closed",
            });
        }
        let index = st.next;
        st.queued_bytes += record.len();
        st.queue.push(record);
        st.next += 1;
        if st.queue.len() == 1 {
            self.work.notify_one();
        }
        Ok(index)
    }

    /// Runs the deletion before `start` once the record at `finalize` is durable.
    pub(super) fn delete_after(st: &mut State, finalize: u64, start: u64) {
        st.deletions.insert(finalize, start);
    }

    /// The outcome for the record at `index`, if it has one yet.
    fn outcome(st: &State, index: u64) -> Option<Result<u64>> {
        if index <= st.durable {
            Some(Ok(index))
        } else {
            st.failed.as_ref().map(|e| Err(e.duplicate()))
        }
    }

    /// Blocks until the record at `index` is durable or the journal failed.
    pub(super) fn wait(&self, index: u64) -> Result<u64> {
        let mut st = self.lock();
        loop {
            if let Some(outcome) = Shared::outcome(&st, index) {
                return outcome;
            }
            st = self.progress.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The index of the last record accepted.
    pub(super) fn last_index(&self) -> u64 {
        self.lock().next - 1
    }

    /// The start index of the last finalized checkpoint (0: none).
    pub(super) fn checkpoint(&self) -> u64 {
        self.lock().checkpoint
    }

    /// Whether a store error stopped the journal.
    pub(super) fn is_failed(&self) -> bool {
        self.lock().failed.is_some()
    }

    /// Asks the committer to drain the queue and stop.
    pub(super) fn close(&self) {
        self.lock().closing = true;
        self.work.notify_one();
    }

    /// The committer thread: owns the store until the journal closes or the store fails, and
    /// gives it back for closing.
    pub(super) fn run_committer(&self, mut store: Box<dyn Store>) -> Box<dyn Store> {
        let _unwinding = FailOnPanic(self);
        let mut st = self.lock();
        loop {
            while st.queue.is_empty() && !st.closing {
                st = self.work.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.queue.is_empty() {
                return store;
            }
            let batch = std::mem::take(&mut st.queue);
            st.queued_bytes = 0;
            let last = st.next - 1;
            let rest = st.deletions.split_off(&(last + 1));
            let delete_before = std::mem::replace(&mut st.deletions, rest)
                .into_values()
                .max();
            drop(st);

            let records: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            // A finalize's deletion runs before its batch is acknowledged, so a finalize that
            // returned Ok has deleted what its checkpoint covers.
            let result = store.append(&records).and_then(|()| match delete_before {
                Some(start) => store.delete_before(start),
                None => Ok(()),
            });

            st = self.lock();
            let failed = result.is_err();
            match result {
                Ok(()) => {
                    st.durable = last;
                    if let Some(start) = delete_before {
                        st.checkpoint = start;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "journal store failed; the journal stops");
                    st.failed = Some(e);
                    st.queue.clear();
                    st.queued_bytes = 0;
                }
            }
            let woken = if failed {
                std::mem::take(&mut st.wakers)
            } else {
                let after = st.durable + 1;
                let pending = st.wakers.split_off(&after);
                std::mem::replace(&mut st.wakers, pending)
            };
            drop(st);
            self.progress.notify_all();
            for waker in woken.into_values() {
                waker.wake();
            }
            st = self.lock();
            if failed {
                return store;
            }
        }
    }
}

/// Fails the journal if the committer thread panics (a store that panics), so that waiters get
/// an error instead of waiting forever.
struct FailOnPanic<'a>(&'a Shared);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut st = self.0.lock();
        st.failed.get_or_insert(Error::Poisoned {
            reason: "the journal's store panicked".into(),
        });
        let woken = std::mem::take(&mut st.wakers);
        drop(st);
        self.0.progress.notify_all();
        for waker in woken.into_values() {
            waker.wake();
        }
    }
}

/// Fires when an appended record is durable (or the journal failed first). Block on it with
/// [`Appended::wait`] or `.await` it (any runtime); completions fire in log order.
#[derive(Debug)]
#[must_use = "a record is not known to be durable until its completion fires"]
pub struct Appended {
    shared: Arc<Shared>,
    index: u64,
}

impl Appended {
    pub(super) fn new(shared: Arc<Shared>, index: u64) -> Appended {
        Appended { shared, index }
    }

    /// The record's index in the journal.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Blocks until the record is durable and returns its index. An error means the journal's
    /// store failed before it was: it may or may not be on disk, and reopening the journal
    /// tells.
    pub fn wait(self) -> Result<u64> {
        self.shared.wait(self.index)
    }

    /// `None` while pending; the outcome once it fired. Does not block.
    pub fn try_wait(&self) -> Option<Result<u64>> {
        Shared::outcome(&self.shared.lock(), self.index)
    }
}

impl Future for Appended {
    type Output = Result<u64>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<u64>> {
        let mut st = self.shared.lock();
        match Shared::outcome(&st, self.index) {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                st.wakers.insert(self.index, cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
