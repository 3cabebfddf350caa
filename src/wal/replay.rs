//! Reading a log back: the streaming [`Replay`], [`Wal::read_all`] on top of it, and the
//! read-only checks [`verify`] and [`valid_snapshot_entries`].
//!
//! etcd's rules apply: metadata records must all agree, the snapshot the log was opened at must
//! be found with the same term, an entry may overwrite the suffix from its index on but never
//! leave a gap, and the end of the log is clean (or, for readers, torn).

use std::path::Path;

use raft_proto::eraftpb::{Entry, HardState};

use super::{EntryPosition, Mode, SegmentRef, Wal};
use crate::decoder::{DecodedRecord, Decoder, End, Step};
use crate::encoder::Encoder;
use crate::error::{Error, IoContext as _, Result};
use crate::fs::WalFile;
use crate::observe;
use crate::options::WalOptions;
use crate::record::{decode_entry, decode_hard_state, RecordType, WalSnapshot};
use crate::segment::{Access, SegmentDir};

/// A record of the log, as [`Replay`] yields it.
#[derive(Debug, Clone, PartialEq)]
pub enum LogRecord {
    /// The metadata given at create (repeated at the start of every segment).
    Metadata(Vec<u8>),
    /// A raft entry. An entry whose index is at or below an earlier one replaces it and
    /// drops every entry after it (raft log overwrite); entries at or below the snapshot index
    /// are covered by the snapshot.
    Entry(Entry),
    /// A raft HardState; the last one is current.
    HardState(HardState),
    /// A snapshot marker.
    Snapshot(WalSnapshot),
}

/// What [`Wal::read_all`] recovers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovered {
    /// The metadata given at create.
    pub metadata: Vec<u8>,
    /// The last HardState in the log (empty if none).
    pub hard_state: HardState,
    /// The entries after the snapshot the log was opened at, overwrites applied.
    pub entries: Vec<Entry>,
}

/// Streams the records of a log in log order, checking them as [`Wal::read_all`] does, with
/// memory bounded by [`WalOptions::replay_read_size`] plus the largest record. Obtained from
/// [`Wal::replay`].
///
/// When it has yielded its last record without error, a log opened for writing is ready to
/// append.
#[derive(Debug)]
pub struct Replay<'a> {
    wal: &'a mut Wal,
    /// Highest index an entry may have without leaving a gap, minus one.
    last_index: u64,
    matched: bool,
    done: bool,
    /// Where the entry yielded last is: its segment (in the decoder's list) and frame.
    last_entry: Option<(usize, EntryPosition)>,
}

impl Wal {
    /// Streams the log's records from the snapshot it was opened at; see [`Replay`].
    pub fn replay(&mut self) -> Result<Replay<'_>> {
        if !self.is_replaying() {
            return Err(already_read());
        }
        let last_index = self.start.index;
        Ok(Replay {
            wal: self,
            last_index,
            matched: false,
            done: false,
            last_entry: None,
        })
    }

    /// Reads the whole log from the snapshot it was opened at: the metadata, the last HardState
    /// and every entry after the snapshot index, with raft overwrites applied.
    ///
    /// Opened for writing, the log must end cleanly ([`Error::TornTail`] otherwise: run
    /// [`WalOptions::repair`]); anything after the last valid frame is then zeroed so stale bytes
    /// never parse later, and the log accepts writes. Opened for reading, a torn tail simply
    /// ends the log.
    pub fn read_all(&mut self) -> Result<Recovered> {
        let start = self.start.index;
        let mut entries: Vec<Entry> = Vec::new();
        for record in self.replay()? {
            if let LogRecord::Entry(entry) = record? {
                apply_entry(&mut entries, start, entry);
            }
        }
        Ok(Recovered {
            metadata: self.metadata.clone().unwrap_or_default(),
            hard_state: self.hard_state.clone(),
            entries,
        })
    }
}

/// Applies raft's overwrite rule: `entry` replaces the entry at its index and everything after
/// it; entries at or below `start` (the snapshot index) void everything after the snapshot.
/// The caller has checked that `entry` leaves no gap.
pub(crate) fn apply_entry(entries: &mut Vec<Entry>, start: u64, entry: Entry) {
    if entry.index > start {
        entries.truncate((entry.index - start - 1) as usize);
        entries.push(entry);
    } else {
        entries.clear();
    }
}

impl Iterator for Replay<'_> {
    type Item = Result<LogRecord>;

    fn next(&mut self) -> Option<Result<LogRecord>> {
        if self.done {
            return None;
        }
        let result = self.step();
        match result {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                // A failed read leaves nothing safe to append to.
                Some(self.wal.poison(Err(e)))
            }
        }
    }
}

impl Replay<'_> {
    /// Where the entry [`Replay::next`] yielded last is on disk (`None` before the first).
    #[cfg_attr(not(feature = "raft"), allow(dead_code))]
    pub(crate) fn last_entry_position(&self) -> Option<(SegmentRef<'_>, EntryPosition)> {
        let (segment, position) = self.last_entry?;
        let Mode::Replaying { decoder, .. } = &self.wal.mode else {
            return None;
        };
        let segment = decoder.segments().get(segment)?;
        Some((
            SegmentRef {
                seq: segment.name.seq,
                path: &segment.path,
                file: &segment.file,
            },
            position,
        ))
    }

    fn step(&mut self) -> Result<Option<LogRecord>> {
        loop {
            let Mode::Replaying { decoder, .. } = &mut self.wal.mode else {
                return Err(already_read());
            };
            let prev_crc = decoder.crc();
            let record = match decoder.next_record()? {
                Step::Record(record) => {
                    observe::replayed(decoder.last_valid_offset() - record.offset);
                    record
                }
                Step::End(end) => {
                    self.finish(end)?;
                    return Ok(None);
                }
            };
            let path = || decoder.segments()[record.segment].path.clone();
            let data = decoder.last_data();
            match record.kind {
                RecordType::Crc => continue,
                RecordType::Metadata => {
                    if let Some(known) = &self.wal.metadata {
                        if known != data {
                            return Err(Error::MetadataConflict {
                                file: path(),
                                offset: record.offset,
                            });
                        }
                    }
                    self.wal.metadata = Some(data.to_vec());
                    return Ok(Some(LogRecord::Metadata(data.to_vec())));
                }
                RecordType::Entry => {
                    let entry =
                        decode_entry(data).map_err(|reason| corrupt(path(), &record, reason))?;
                    let start = self.wal.start.index;
                    if entry.index > start {
                        if entry.index > self.last_index + 1 {
                            return Err(Error::SliceOutOfRange {
                                index: entry.index,
                                next: self.last_index + 1,
                            });
                        }
                        self.last_index = entry.index;
                    } else {
                        self.last_index = start;
                    }
                    self.wal.last_index = entry.index;
                    self.last_entry = Some((
                        record.segment,
                        EntryPosition {
                            index: entry.index,
                            term: entry.term,
                            offset: record.offset,
                            data_len: data.len() as u64,
                            prev_crc,
                        },
                    ));
                    return Ok(Some(LogRecord::Entry(entry)));
                }
                RecordType::State => {
                    let state = decode_hard_state(data)
                        .map_err(|reason| corrupt(path(), &record, reason))?;
                    self.wal.hard_state = state.clone();
                    return Ok(Some(LogRecord::HardState(state)));
                }
                RecordType::Snapshot => {
                    let snap = WalSnapshot::decode(data)
                        .map_err(|reason| corrupt(path(), &record, reason))?;
                    let start = &self.wal.start;
                    if snap.index == start.index {
                        if snap.term != start.term {
                            return Err(Error::SnapshotMismatch {
                                index: snap.index,
                                expected: start.term,
                                found: snap.term,
                            });
                        }
                        self.matched = true;
                    }
                    return Ok(Some(LogRecord::Snapshot(snap)));
                }
            }
        }
    }

    /// The log has no more records: check how it ended and, in write mode, make it appendable.
    fn finish(&mut self, end: End) -> Result<()> {
        let wal = &mut *self.wal;
        let Mode::Replaying { decoder, access } = std::mem::replace(&mut wal.mode, Mode::ReadOnly)
        else {
            return Err(already_read());
        };
        let writing = access == Access::Write;
        if writing && end == End::Torn {
            let segment = decoder.current_segment();
            return Err(Error::TornTail {
                file: segment.path.clone(),
                offset: decoder.last_valid_offset(),
            });
        }
        if !self.matched {
            return Err(Error::SnapshotNotFound {
                index: wal.start.index,
                term: wal.start.term,
            });
        }
        if writing {
            wal.mode = Mode::Appending(prepare_tail(wal, &decoder)?);
        }
        Ok(())
    }
}

fn already_read() -> Error {
    Error::InvalidState {
        reason: "the WAL was already read to its end",
    }
}

fn corrupt(file: std::path::PathBuf, record: &DecodedRecord, reason: String) -> Error {
    Error::Corrupt {
        file,
        offset: record.offset,
        reason: format!("{} record: {reason}", record.kind.name()),
    }
}

/// Makes the tail segment appendable, and what was read durable before anything is appended:
/// 1. Rewrites the valid frames of the tail. After a failed fdatasync Linux drops the dirty
///    pages' error state, so frames a reader sees in the page cache may never reach the disk;
///    appends acknowledged after such a hole would be cut off by it after a power loss.
/// 2. Zeroes everything after the last valid frame (stale bytes of a torn write could
///    otherwise parse after new appends).
/// 3. fdatasyncs the tail, then fsyncs the log directory and its parent, so the segments and
///    the directory this writer read are on disk before it acknowledges anything (a create or
///    cut whose directory sync failed may have left them in the page cache only).
fn prepare_tail(wal: &Wal, decoder: &Decoder) -> Result<Encoder> {
    let tail = wal.locks.last().ok_or(Error::InvalidState {
        reason: "a WAL opened for writing holds its tail segment",
    })?;
    let offset = decoder.last_valid_offset();
    let file = tail.file.clone();
    let path = tail.path.clone();
    let len = file
        .len()
        .ctx(|| format!("reading the size of {}", path.display()))?;
    rewrite_prefix(file.as_ref(), offset).ctx(|| format!("rewriting {}", path.display()))?;
    observe::tail_zeroed(&path, offset, len);
    if len > offset {
        file.set_len(offset)
            .ctx(|| format!("zeroing the tail of {}", path.display()))?;
        file.allocate(len)
            .ctx(|| format!("zeroing the tail of {}", path.display()))?;
    }
    observe::fsync(Some(&path), || file.sync_data())
        .ctx(|| format!("syncing {}", path.display()))?;
    let fs = wal.dir.file_system();
    let parent = crate::fs::parent_dir(wal.dir.path());
    for dir in [wal.dir.path(), &parent] {
        fs.sync_dir(dir)
            .ctx(|| format!("syncing {}", dir.display()))?;
    }
    Ok(Encoder::new(file, offset, decoder.crc()))
}

/// Writes bytes `[0, len)` of `file` back in place, as read now: the frames the decoder just
/// validated, since the tail segment is locked and nothing else writes it.
fn rewrite_prefix(file: &dyn WalFile, len: u64) -> std::io::Result<()> {
    const CHUNK: u64 = 4 << 20;
    let mut buf = vec![0u8; CHUNK.min(len) as usize];
    let mut pos = 0u64;
    while pos < len {
        let want = (len - pos).min(CHUNK) as usize;
        let n = file.read_at(&mut buf[..want], pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the locked tail segment shrank while it was opened",
            ));
        }
        file.write_all_at(&buf[..n], pos)?;
        pos += n as u64;
    }
    Ok(())
}

/// [`WalOptions::verify`].
pub(crate) fn verify(dir: &Path, snapshot: &WalSnapshot, options: WalOptions) -> Result<HardState> {
    let mut wal = Wal::open_in(dir, snapshot, options, false)?;
    for record in wal.replay()? {
        record?;
    }
    Ok(wal.hard_state.clone())
}

/// [`WalOptions::valid_snapshot_entries`].
pub(crate) fn valid_snapshot_entries(dir: &Path, options: &WalOptions) -> Result<Vec<WalSnapshot>> {
    let dir = SegmentDir::new(options.file_system.clone(), dir);
    let segments = dir.open_whole_log(Access::Read)?;
    let mut decoder = Decoder::new(segments, options.replay_read_size)?;
    let mut snapshots = Vec::new();
    let mut state = HardState::default();
    while let Step::Record(record) = decoder.next_record()? {
        let path = || decoder.segments()[record.segment].path.clone();
        let data = decoder.last_data();
        match record.kind {
            RecordType::Snapshot => snapshots.push(
                WalSnapshot::decode(data).map_err(|reason| corrupt(path(), &record, reason))?,
            ),
            RecordType::State => {
                state =
                    decode_hard_state(data).map_err(|reason| corrupt(path(), &record, reason))?
            }
            _ => {}
        }
    }
    snapshots.retain(|s| s.index <= state.commit);
    Ok(snapshots)
}
