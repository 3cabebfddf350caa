//! The entry index: where every entry of a raft log lives on disk, so entries are read back from
//! the segments on demand instead of kept in memory.
//!
//! Memory per entry is three `u32`s (frame offset in its run, data length, and the CRC chain's
//! value before the record), grouped in runs per segment, plus one pair per term change. A
//! million 4 KiB entries (4 GiB of log) index in 12 MiB. Entries read back are checked against
//! their record's CRC (see `read.rs`): a sector that rots after the log was opened is an error
//! naming the file and offset, never wrong data.
//!
//! The log feeds the index as it replays ([`EntryIndex::push`]) and as it appends (the index is
//! the log's [`EntrySink`]).

mod read;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use raft_proto::eraftpb::Entry;

use crate::error::Result;
use crate::fs::WalFile;
use crate::wal::{EntryPosition, EntrySink, SegmentRef};

/// Consecutive entries in one segment, offsets relative to `base` so they fit a `u32`.
#[derive(Debug)]
struct Run {
    seq: u64,
    path: Arc<Path>,
    file: Arc<dyn WalFile>,
    base: u64,
    first_index: u64,
    offsets: Vec<u32>,
    data_lens: Vec<u32>,
    prev_crcs: Vec<u32>,
}

impl Run {
    fn len(&self) -> u64 {
        self.offsets.len() as u64
    }

    fn last_index(&self) -> u64 {
        self.first_index + self.len() - 1
    }

    fn position(&self, index: u64) -> EntryPosition {
        let i = (index - self.first_index) as usize;
        EntryPosition {
            index,
            term: 0,
            offset: self.base + u64::from(self.offsets[i]),
            data_len: u64::from(self.data_lens[i]),
            prev_crc: self.prev_crcs[i],
        }
    }

    fn truncate(&mut self, count: usize) {
        self.offsets.truncate(count);
        self.data_lens.truncate(count);
        self.prev_crcs.truncate(count);
    }

    fn drop_front(&mut self, count: usize) {
        self.offsets.drain(..count);
        self.data_lens.drain(..count);
        self.prev_crcs.drain(..count);
        self.first_index += count as u64;
    }

    fn shrink(&mut self) {
        self.offsets.shrink_to_fit();
        self.data_lens.shrink_to_fit();
        self.prev_crcs.shrink_to_fit();
    }

    /// Whether `segment` and `position` can extend this run.
    fn takes(&self, seq: u64, position: &EntryPosition) -> bool {
        self.seq == seq
            && position.index == self.first_index + self.len()
            && position.offset >= self.base
            && position.offset - self.base <= u64::from(u32::MAX)
            && position.data_len <= u64::from(u32::MAX)
    }
}

/// Where entries `(start, last]` are, by segment and frame.
#[derive(Debug, Default)]
pub(crate) struct EntryIndex {
    /// Index of the entry before the first one held (the compaction point).
    start: u64,
    runs: VecDeque<Run>,
    /// `(first index, term)` at every term change, ascending.
    terms: Vec<(u64, u64)>,
    /// Entries at or below this index are in the segment files (maybe not yet synced).
    flushed: u64,
}

/// Entries to read back from one file, in index order.
#[derive(Debug)]
pub(crate) struct FileSpan {
    path: Arc<Path>,
    file: Arc<dyn WalFile>,
    positions: Vec<EntryPosition>,
}

impl EntryIndex {
    /// An empty index whose first entry will be `start + 1`.
    pub(crate) fn new(start: u64) -> EntryIndex {
        EntryIndex {
            start,
            flushed: start,
            ..Default::default()
        }
    }

    /// The index of the last entry held (`start` when none).
    pub(crate) fn last(&self) -> u64 {
        self.runs.back().map_or(self.start, Run::last_index)
    }

    /// Entries at or below this index are readable from the files.
    pub(crate) fn flushed(&self) -> u64 {
        self.flushed.min(self.last())
    }

    /// How many bytes the index holds (capacity, not length), for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        let runs: usize = self
            .runs
            .iter()
            .map(|r| {
                std::mem::size_of::<Run>()
                    + 4 * (r.offsets.capacity() + r.data_lens.capacity() + r.prev_crcs.capacity())
            })
            .sum();
        runs + self.terms.capacity() * 16
    }

    /// Records `position` in `segment`, applying raft's overwrite rule: an entry at or below
    /// the last one held replaces it and everything after it; one at or below `start` (a
    /// snapshot's index, during replay) voids everything held.
    pub(crate) fn push(&mut self, segment: SegmentRef<'_>, position: EntryPosition) {
        if position.index <= self.start {
            self.truncate_from(self.start + 1);
            return;
        }
        if position.index <= self.last() {
            self.truncate_from(position.index);
        }
        if position.index != self.last() + 1 {
            // A gap: the log refuses these before writing; never index past one.
            return;
        }
        match self.runs.back_mut() {
            Some(run) if run.takes(segment.seq, &position) => {
                run.offsets.push((position.offset - run.base) as u32);
                run.data_lens.push(position.data_len as u32);
                run.prev_crcs.push(position.prev_crc);
            }
            _ => {
                if let Some(done) = self.runs.back_mut() {
                    done.shrink();
                }
                self.runs.push_back(Run {
                    seq: segment.seq,
                    path: Arc::from(segment.path),
                    file: segment.file.clone(),
                    base: position.offset,
                    first_index: position.index,
                    offsets: vec![0],
                    data_lens: vec![position.data_len.min(u64::from(u32::MAX)) as u32],
                    prev_crcs: vec![position.prev_crc],
                });
            }
        }
        if self.terms.last().is_none_or(|&(_, t)| t != position.term) {
            self.terms.push((position.index, position.term));
        }
    }

    /// Marks everything held as readable from the files.
    pub(crate) fn mark_flushed(&mut self) {
        self.flushed = self.last();
    }

    /// Drops the entries from `index` on.
    pub(crate) fn truncate_from(&mut self, index: u64) {
        while let Some(run) = self.runs.back_mut() {
            if run.first_index >= index {
                self.runs.pop_back();
            } else {
                if run.last_index() >= index {
                    run.truncate((index - run.first_index) as usize);
                }
                break;
            }
        }
        let keep = self.terms.partition_point(|&(first, _)| first < index);
        self.terms.truncate(keep);
        self.flushed = self.flushed.min(index.saturating_sub(1));
    }

    /// Drops the entries before `index` (which must be at most `last() + 1`): the log now starts
    /// at `index`.
    pub(crate) fn compact_to(&mut self, index: u64) {
        if index <= self.start + 1 {
            return;
        }
        while let Some(run) = self.runs.front_mut() {
            if run.last_index() < index {
                self.runs.pop_front();
            } else {
                if run.first_index < index {
                    run.drop_front((index - run.first_index) as usize);
                    run.shrink();
                }
                break;
            }
        }
        // Keep the term point covering `index` (and everything after it).
        let covering = self.terms.partition_point(|&(first, _)| first <= index);
        if covering > 1 {
            self.terms.drain(..covering - 1);
        }
        self.start = index - 1;
        self.flushed = self.flushed.max(self.start);
    }

    /// Empties the index: the log starts after `start` (an installed snapshot).
    pub(crate) fn reset(&mut self, start: u64) {
        *self = EntryIndex::new(start);
    }

    /// The term of the entry at `index`, if held.
    pub(crate) fn term(&self, index: u64) -> Option<u64> {
        if index <= self.start || index > self.last() {
            return None;
        }
        let at = self.terms.partition_point(|&(first, _)| first <= index);
        at.checked_sub(1).map(|i| self.terms[i].1)
    }

    /// The on-disk size of the entry at `index` (its encoding), which must be held.
    pub(crate) fn size(&self, index: u64) -> u64 {
        self.run_of(index)
            .map_or(0, |run| run.position(index).data_len)
    }

    fn run_of(&self, index: u64) -> Option<&Run> {
        let at = self.runs.partition_point(|r| r.first_index <= index);
        let run = self.runs.get(at.checked_sub(1)?)?;
        (index <= run.last_index()).then_some(run)
    }

    /// Where entries `[low, high)` (all held) are, grouped by file.
    pub(crate) fn locate(&self, low: u64, high: u64) -> Vec<FileSpan> {
        let mut spans: Vec<FileSpan> = Vec::new();
        let mut index = low;
        while index < high {
            let Some(run) = self.run_of(index) else {
                break;
            };
            let end = high.min(run.last_index() + 1);
            let positions = (index..end).map(|i| EntryPosition {
                term: self.term(i).unwrap_or(0),
                ..run.position(i)
            });
            match spans.last_mut() {
                Some(span) if Arc::ptr_eq(&span.file, &run.file) => {
                    span.positions.extend(positions)
                }
                _ => spans.push(FileSpan {
                    path: run.path.clone(),
                    file: run.file.clone(),
                    positions: positions.collect(),
                }),
            }
            index = end;
        }
        spans
    }
}

/// Reads the entries `spans` locate back from disk, each checked against its record's CRC.
pub(crate) fn read_spans(spans: &[FileSpan], out: &mut Vec<Entry>) -> Result<()> {
    for span in spans {
        read::read_entries(&span.file, &span.path, &span.positions, out)?;
    }
    Ok(())
}

/// An [`EntryIndex`] shared between its reader and the log that feeds it.
#[derive(Debug, Default)]
pub(crate) struct SharedIndex(Mutex<EntryIndex>);

impl SharedIndex {
    /// Shares `index`.
    pub(crate) fn new(index: EntryIndex) -> SharedIndex {
        SharedIndex(Mutex::new(index))
    }

    /// The index. A panic while it was held leaves it as consistent as any single push, so the
    /// poison is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, EntryIndex> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl EntrySink for SharedIndex {
    fn encoded(&self, segment: SegmentRef<'_>, entries: &[EntryPosition]) {
        let mut index = self.lock();
        for &position in entries {
            index.push(segment, position);
        }
    }

    fn flushed(&self) {
        self.lock().mark_flushed();
    }
}
