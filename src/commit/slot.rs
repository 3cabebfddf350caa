//! A blocked caller's own place to sleep: one per thread, so that a sync that ends wakes
//! exactly the callers it made durable (no thundering herd on one condition variable), and a
//! woken caller learns its outcome without taking the log's lock.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::Instant;

/// What a sleeper was woken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wake {
    /// Its save is durable: return `Ok` without looking at the shared state.
    Done,
    /// Look at the shared state again (the log failed, or this thread is to lead a sync).
    Check,
}

const WAITING: u8 = 0;
const DONE: u8 = 1;
const CHECK: u8 = 2;

/// One thread's wake-up word and handle.
#[derive(Debug)]
pub(super) struct Slot {
    state: AtomicU8,
    thread: Thread,
}

thread_local! {
    /// This thread's slot, made on its first wait and reused for every later one.
    static SLOT: Arc<Slot> = Arc::new(Slot {
        state: AtomicU8::new(WAITING),
        thread: thread::current(),
    });
    /// Slots a sync made durable, woken by the leader after it dropped the lock (so the woken
    /// callers do not queue on a lock the leader still holds). Reused: no allocation per sync.
    static TO_WAKE: RefCell<Vec<Arc<Slot>>> = const { RefCell::new(Vec::new()) };
}

impl Slot {
    /// The calling thread's slot, armed: it sleeps until someone wakes it. Call under the
    /// log's lock, before making the slot visible to wakers.
    pub(super) fn armed() -> Arc<Slot> {
        let slot = SLOT.with(Arc::clone);
        slot.state.store(WAITING, Ordering::Relaxed);
        slot
    }

    /// Sleeps until woken. A stale unpark token from an earlier wait only costs one more
    /// look at the state word.
    pub(super) fn sleep(&self) -> Wake {
        loop {
            match self.state.load(Ordering::Acquire) {
                WAITING => thread::park(),
                DONE => return Wake::Done,
                _ => return Wake::Check,
            }
        }
    }

    /// Sleeps until woken or until `deadline`; `None` when the deadline passed first.
    pub(super) fn sleep_until(&self, deadline: Instant) -> Option<Wake> {
        loop {
            match self.state.load(Ordering::Acquire) {
                WAITING => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    thread::park_timeout(deadline - now);
                }
                DONE => return Some(Wake::Done),
                _ => return Some(Wake::Check),
            }
        }
    }

    /// Wakes the slot's thread. Whoever calls it has taken the slot out of every shared list
    /// under the lock, so no one else wakes it for the same wait.
    pub(super) fn wake(&self, why: Wake) {
        let word = match why {
            Wake::Done => DONE,
            Wake::Check => CHECK,
        };
        self.state.store(word, Ordering::Release);
        self.thread.unpark();
    }
}

/// Queues `slot` to be woken as `Done` by [`wake_queued`], once the lock is dropped.
pub(super) fn queue_done(slot: Arc<Slot>) {
    TO_WAKE.with(|q| q.borrow_mut().push(slot));
}

/// Wakes every slot this thread queued. Call after dropping the lock.
pub(super) fn wake_queued() {
    TO_WAKE.with(|q| {
        let mut q = q.borrow_mut();
        for slot in q.drain(..) {
            slot.wake(Wake::Done);
        }
    });
}
