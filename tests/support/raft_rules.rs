//! raft's rules the test models restate on their own, so that a model never borrows the code it
//! checks: the overwrite rule, the empty HardState, and MustSync. Include with
//! `#[path = "../support/raft_rules.rs"] mod raft_rules;` (adjust the path).
#![allow(dead_code)]

use raftwal::eraftpb::{Entry, HardState};

/// raft's overwrite rule for a log that starts after a snapshot at `start`: `entry` replaces
/// the entry at its index and everything after it; an entry at or below `start` voids
/// everything after the snapshot.
pub fn apply_entry(entries: &mut Vec<Entry>, start: u64, entry: Entry) {
    if entry.index > start {
        entries.truncate((entry.index - start - 1) as usize);
        entries.push(entry);
    } else {
        entries.clear();
    }
}

/// raft's empty HardState: nothing to persist.
pub fn is_empty_hard_state(hs: &HardState) -> bool {
    hs.term == 0 && hs.vote == 0 && hs.commit == 0
}

/// raft's MustSync: new entries, or a changed term or vote, must be durable before the node
/// acts on them; a commit-only change may be lost.
pub fn must_sync(new: &HardState, prev: &HardState, entry_count: usize) -> bool {
    entry_count != 0 || new.vote != prev.vote || new.term != prev.term
}
