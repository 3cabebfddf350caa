//! The newest entries, kept in memory up to a byte budget: what raft reads most (the leader
//! replicating what it just appended) never touches the disk, and entries not yet written to the
//! segment files are always here.

use std::collections::VecDeque;

use raft_proto::eraftpb::Entry;

/// A contiguous run of the newest entries, `[first(), next)`.
#[derive(Debug)]
pub(super) struct EntryCache {
    entries: VecDeque<Entry>,
    /// The index after the last entry of the log.
    next: u64,
    bytes: usize,
    budget: usize,
}

/// What an entry costs in memory, roughly: the struct and its two byte buffers.
fn cost(entry: &Entry) -> usize {
    std::mem::size_of::<Entry>() + entry.data.len() + entry.context.len()
}

impl EntryCache {
    /// An empty cache for a log whose next entry is `next`.
    pub(super) fn new(next: u64, budget: usize) -> EntryCache {
        EntryCache {
            entries: VecDeque::new(),
            next,
            bytes: 0,
            budget,
        }
    }

    /// The index of the first entry cached (`next` when none is).
    pub(super) fn first(&self) -> u64 {
        self.next - self.entries.len() as u64
    }

    /// The bytes the cached entries take.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes a save's `entries` (contiguous, the first at most `next`): they replace the entries
    /// from their first index on and become the newest.
    pub(super) fn append(&mut self, entries: &[Entry]) {
        let Some(head) = entries.first() else {
            return;
        };
        if head.index < self.first() {
            self.entries.clear();
            self.bytes = 0;
        } else {
            let keep = (head.index - self.first()) as usize;
            for dropped in self.entries.drain(keep..) {
                self.bytes -= cost(&dropped);
            }
        }
        for entry in entries {
            self.bytes += cost(entry);
            self.entries.push_back(entry.clone());
        }
        self.next = head.index + entries.len() as u64;
    }

    /// Drops the oldest entries while over budget, but never one above `flushed`: an entry not
    /// yet in the segment files cannot be read back.
    pub(super) fn evict(&mut self, flushed: u64) {
        while self.bytes > self.budget {
            match self.entries.front() {
                Some(oldest) if oldest.index <= flushed => {
                    self.bytes -= cost(oldest);
                    self.entries.pop_front();
                }
                _ => break,
            }
        }
    }

    /// Drops the entries before `index`.
    pub(super) fn compact_to(&mut self, index: u64) {
        while self.entries.front().is_some_and(|e| e.index < index) {
            if let Some(dropped) = self.entries.pop_front() {
                self.bytes -= cost(&dropped);
            }
        }
    }

    /// Empties the cache: the log's next entry is `next`.
    pub(super) fn reset(&mut self, next: u64) {
        self.entries.clear();
        self.bytes = 0;
        self.next = next;
    }

    /// Appends clones of the cached entries in `[low, high)` (all cached) to `out`.
    pub(super) fn copy_range(&self, low: u64, high: u64, out: &mut Vec<Entry>) {
        let first = self.first();
        let (from, to) = ((low - first) as usize, (high - first) as usize);
        out.extend(self.entries.range(from..to).cloned());
    }
}
