//! The handle a pipelined save returns: block on it, poll it, or `.await` it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::engine::{self, Shared};
use crate::error::Result;

/// Fires when a save made by [`SharedWal::submit`](super::SharedWal::submit) is acknowledged
/// (durable, under the `Grouped` policy) or has failed.
///
/// Completions fire in log order: when one is done, every completion of an earlier save is done
/// too. A raft-rs node can persist a `Ready` with `submit`, go on with
/// `advance_append_async`, and call `on_persist_ready` when the completion fires.
///
/// As a [`Future`] it needs no particular runtime. Its waker is called while raftwal holds an
/// internal lock, so it must only schedule the task (as executors' wakers do), not poll it
/// inline.
#[derive(Debug)]
#[must_use = "a save is not known to be durable until its completion fires"]
pub struct Completion {
    shared: Arc<Shared>,
    id: u64,
    target: u64,
}

impl Completion {
    pub(super) fn new(shared: Arc<Shared>, id: u64, target: u64) -> Completion {
        Completion { shared, id, target }
    }

    /// Blocks until the save is acknowledged (`Ok`) or has failed. Leads a sync itself when
    /// none is running, so it does not wait for the sync thread to wake.
    pub fn wait(self) -> Result<()> {
        let st = self.shared.lock();
        self.shared.wait_durable(st, self.target)
    }

    /// `None` while the save is pending; its outcome once it fired. Does not block.
    pub fn try_wait(&self) -> Option<Result<()>> {
        self.shared.try_done(self.target)
    }
}

impl Future for Completion {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match self.shared.poll(self.id, self.target, cx.waker()) {
            engine::Poll::Done(result) => Poll::Ready(result),
            engine::Poll::Pending => Poll::Pending,
        }
    }
}
