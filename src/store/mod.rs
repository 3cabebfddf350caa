//! Where a journal's records live: the small trait between the journal and its storage.
//!
//! A [`Store`] keeps numbered byte records. It knows nothing of checkpoints or record types: the
//! journal encodes those into the bytes. Group commit happens above it (the journal hands a store
//! everything that arrived during the previous append as one batch), so a store only has to
//! make one batch durable at a time.
//!
//! Two stores implement it: the file store (etcd-format segments on the local disk) and, behind
//! the `etcd` feature, the etcd store (keys under a prefix in an etcd cluster, so the journal
//! survives the loss of the machine).
//!
//! A new store proves itself with the same scenarios as these two: the repository's
//! `tests/support/journal_protocol.rs` runs the store contract and the journal's checkpoint
//! protocol on any store, given a function that opens it again.

mod file;

pub use file::FileStore;

use crate::error::Result;

#[cfg(feature = "etcd")]
pub mod etcd;

/// Durable storage of byte records numbered 1, 2, 3, ... without gaps.
///
/// Only one thread calls a store at a time (the journal serializes its calls), hence `&mut
/// self`. Every method either succeeds or returns a typed error; after an error in `append` the
/// store refuses further appends (a failed fsync or a lost ownership cannot be retried in place)
/// and the caller reopens it, which recovers every acknowledged record.
pub trait Store: Send {
    /// The lowest index still stored, or `last_index() + 1` when the store holds no records.
    /// Records below it were deleted by [`Store::delete_before`].
    fn first_index(&self) -> u64;

    /// The highest index stored (0 for a new store).
    fn last_index(&self) -> u64;

    /// Appends `records` at indexes `last_index() + 1 ..` and returns once all of them are
    /// durable. A crash during the call may keep a prefix of the batch, never a part of one
    /// record and never a record without the ones before it.
    fn append(&mut self, records: &[&[u8]]) -> Result<()>;

    /// Calls `visit(index, bytes)` for every stored record from `from` (or from
    /// [`Store::first_index`] if that is higher) to the end, in index order. Damage is an error
    /// naming where it is, never an early end.
    fn read_from(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()>;

    /// Deletes every record below `index` (they are covered by a finalized checkpoint). Crash
    /// safe: after a crash the store holds either the old records or none of those below
    /// `index`, and always every record from `index` on. `index` may be at most
    /// `last_index() + 1` (deleting every record keeps the numbering); a higher one is
    /// [`Error::InvalidState`](crate::Error::InvalidState) and deletes nothing.
    fn delete_before(&mut self, index: u64) -> Result<()>;

    /// Makes everything durable and releases the store (its lock, lease or ownership).
    fn close(self: Box<Self>) -> Result<()>;
}

/// A boxed store is a store, so code that picks its store at run time (`Box<dyn Store>`) hands
/// it to the journal like a concrete one.
impl Store for Box<dyn Store> {
    fn first_index(&self) -> u64 {
        (**self).first_index()
    }

    fn last_index(&self) -> u64 {
        (**self).last_index()
    }

    fn append(&mut self, records: &[&[u8]]) -> Result<()> {
        (**self).append(records)
    }

    fn read_from(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        (**self).read_from(from, visit)
    }

    fn delete_before(&mut self, index: u64) -> Result<()> {
        (**self).delete_before(index)
    }

    fn close(self: Box<Self>) -> Result<()> {
        (*self).close()
    }
}
