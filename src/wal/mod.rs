//! The log itself: create, open, append (`save`, `save_snapshot_marker`), cut, sync, release and
//! close.
//!
//! Reading back lives in `replay.rs`, repair in `repair.rs`. Which segments a log reads and
//! locks comes from the segment directory (`segment.rs`); what a log may do next is its
//! [`Mode`].

mod positions;
mod replay;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use protobuf::Message as _;
use raft_proto::eraftpb::{Entry, HardState};

use crate::decoder::Decoder;
use crate::encoder::Encoder;
use crate::error::{Error, IoContext as _, Result};
use crate::fs::WalFile;
use crate::observe;
use crate::options::WalOptions;
use crate::record::{encode_message_into, is_empty_hard_state, must_sync, RecordType, WalSnapshot};
use crate::segment::{self, Access, OpenSegment, SegmentDir, SegmentName};
use crate::segment_pipeline::FilePipeline;

pub(crate) use positions::{EntryPosition, EntrySink, SegmentRef};
pub(crate) use replay::{apply_entry, valid_snapshot_entries, verify};
pub use replay::{LogRecord, Recovered, Replay};

/// What a log can do next. One value instead of a combination of optional fields, so that every
/// method asks one question.
#[derive(Debug)]
enum Mode {
    /// Opened and not yet read to its end; `access` says what it becomes once it is.
    Replaying { decoder: Decoder, access: Access },
    /// Created, or opened for writing and read to its end: appends go to the tail segment.
    Appending(Encoder),
    /// Opened for reading and read to its end.
    ReadOnly,
    /// Refuses writes after a failed write, sync, cut or read (the reason).
    Failed(String),
}

/// An etcd-compatible write-ahead log of raft entries and hard states.
///
/// Opened for writing ([`Wal::create`], [`Wal::open`]) it holds an exclusive lock on every
/// segment it may still need; opened for reading ([`Wal::open_for_read`]) it takes no locks.
/// A log that was opened must be read to its end ([`Wal::read_all`] or [`Wal::replay`]) before
/// it accepts writes. After a failed write, sync or cut it refuses every write with
/// [`Error::Poisoned`] until reopened.
pub struct Wal {
    dir: SegmentDir,
    options: WalOptions,
    metadata: Option<Vec<u8>>,
    /// The snapshot the log was opened at; reading starts after it.
    start: WalSnapshot,
    /// The last HardState written or read.
    hard_state: HardState,
    /// The index of the last entry written or read (raised by snapshot records written).
    last_index: u64,
    /// Locked segments, oldest first; the last one is the tail being appended to.
    locks: Vec<OpenSegment>,
    mode: Mode,
    pipeline: Option<FilePipeline>,
    /// Reused buffer for encoding raft messages.
    scratch: Vec<u8>,
    /// Told where appended entries land (an entry index), if anyone listens.
    entry_sink: Option<Arc<dyn EntrySink>>,
    /// Reused buffer for the positions of one save's entries.
    positions: Vec<EntryPosition>,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir.path())
            .field("last_index", &self.last_index)
            .field("hard_state", &self.hard_state)
            .field("locked_segments", &self.locks.len())
            .field("mode", &self.mode_name())
            .finish()
    }
}

/// The tail segment's path, for error messages.
fn tail_path(locks: &[OpenSegment]) -> &Path {
    locks
        .last()
        .map(|l| l.path.as_path())
        .unwrap_or(Path::new(""))
}

impl Wal {
    /// Creates a new log in `dir` with etcd's defaults; see [`WalOptions::create`].
    pub fn create(dir: impl AsRef<Path>, metadata: &[u8]) -> Result<Wal> {
        WalOptions::default().create(dir, metadata)
    }

    /// [`WalOptions::create`].
    pub(crate) fn create_in(dir: &Path, metadata: &[u8], options: WalOptions) -> Result<Wal> {
        let fs = options.file_system.clone();
        let name = SegmentName::new(0, 0);
        let (file, encoder) = segment::create_atomically(fs.as_ref(), dir, |tmp| {
            let tmp_path = tmp.join(&name.file_name);
            let file = segment::create_locked(fs.as_ref(), &tmp_path, options.segment_size)?;
            // The header: the CRC chain's start, the metadata and the empty snapshot marker,
            // synced before the log appears (so no crash can damage it).
            let mut encoder = Encoder::new(file.clone(), 0, 0);
            let header = encoder
                .encode_crc()
                .and_then(|()| encoder.encode(RecordType::Metadata, metadata))
                .and_then(|()| {
                    encoder.encode(RecordType::Snapshot, &WalSnapshot::default().encode())
                })
                .and_then(|()| encoder.flush());
            header.ctx(|| format!("writing {}", tmp_path.display()))?;
            file.sync_data()
                .ctx(|| format!("syncing {}", tmp_path.display()))?;
            Ok((file, encoder))
        })?;
        let dir = SegmentDir::new(fs.clone(), dir);
        let pipeline = FilePipeline::start(
            fs,
            dir.path(),
            options.segment_size,
            options.prepare_segments_in_background,
        );
        Ok(Wal {
            locks: vec![OpenSegment {
                path: dir.path_of(&name),
                name,
                file,
            }],
            dir,
            options,
            metadata: Some(metadata.to_vec()),
            start: WalSnapshot::default(),
            hard_state: HardState::default(),
            last_index: 0,
            mode: Mode::Appending(encoder),
            pipeline: Some(pipeline),
            scratch: Vec::new(),
            entry_sink: None,
            positions: Vec::new(),
        })
    }

    /// Opens the log in `dir` for writing at `snapshot`, with etcd's defaults; see
    /// [`WalOptions::open`].
    pub fn open(dir: impl AsRef<Path>, snapshot: &WalSnapshot) -> Result<Wal> {
        WalOptions::default().open(dir, snapshot)
    }

    /// Opens the log in `dir` for reading from `snapshot` on, with etcd's defaults; see
    /// [`WalOptions::open_for_read`].
    pub fn open_for_read(dir: impl AsRef<Path>, snapshot: &WalSnapshot) -> Result<Wal> {
        WalOptions::default().open_for_read(dir, snapshot)
    }

    /// [`WalOptions::open`] (`write`) and [`WalOptions::open_for_read`].
    pub(crate) fn open_in(
        dir: &Path,
        snapshot: &WalSnapshot,
        options: WalOptions,
        write: bool,
    ) -> Result<Wal> {
        let access = if write { Access::Write } else { Access::Read };
        let dir = SegmentDir::new(options.file_system.clone(), dir);
        let names = dir.needed_from(snapshot.index)?;
        let segments = dir.open_all(&names, access)?;
        let decoder = Decoder::new(segments.clone(), options.replay_read_size)?;
        let pipeline = write.then(|| {
            FilePipeline::start(
                options.file_system.clone(),
                dir.path(),
                options.segment_size,
                options.prepare_segments_in_background,
            )
        });
        Ok(Wal {
            dir,
            options,
            metadata: None,
            start: snapshot.clone(),
            hard_state: HardState::default(),
            last_index: 0,
            locks: if write { segments } else { Vec::new() },
            mode: Mode::Replaying { decoder, access },
            pipeline,
            scratch: Vec::new(),
            entry_sink: None,
            positions: Vec::new(),
        })
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Deletes segments this log released, oldest first, until `keep` are left, in the segment
    /// directory's one crash-safe order; stops at the first segment some writer holds. Returns
    /// the names deleted.
    pub(crate) fn purge_released(&self, keep: usize) -> Result<Vec<String>> {
        let in_use_from = self.locks.first().map_or(u64::MAX, |l| l.name.seq);
        self.dir.purge(keep, in_use_from)
    }

    /// Tells `sink` where every entry appended from now on lands, and when the appended bytes
    /// are in the files.
    #[cfg_attr(not(feature = "raft"), allow(dead_code))]
    pub(crate) fn set_entry_sink(&mut self, sink: Arc<dyn EntrySink>) {
        self.entry_sink = Some(sink);
    }

    /// Whether the log refuses writes after a failed write, sync, cut or read. Every write then
    /// fails with [`Error::Poisoned`]; reopen the log, which recovers exactly what is on disk.
    pub fn is_poisoned(&self) -> bool {
        matches!(self.mode, Mode::Failed(_))
    }

    /// Whether the log was opened and is not yet read to its end.
    pub(crate) fn is_replaying(&self) -> bool {
        matches!(self.mode, Mode::Replaying { .. })
    }

    fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Replaying { .. } => "replaying",
            Mode::Appending(_) => "appending",
            Mode::ReadOnly => "read-only",
            Mode::Failed(_) => "failed",
        }
    }

    /// The path of the locked segment open as `file`, if it is one.
    pub(crate) fn path_of(&self, file: &Arc<dyn WalFile>) -> Option<&Path> {
        self.locks
            .iter()
            .find(|l| Arc::ptr_eq(&l.file, file))
            .map(|l| l.path.as_path())
    }

    /// The metadata given at create, once read (or written).
    pub fn metadata(&self) -> Option<&[u8]> {
        self.metadata.as_deref()
    }

    /// The last HardState written or read.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The index of the last entry written or read (raised by snapshot markers written).
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// The file names of the segments this writer holds locked, oldest first.
    pub fn locked_segments(&self) -> Vec<String> {
        self.locks
            .iter()
            .map(|l| l.name.file_name.clone())
            .collect()
    }

    /// Whether the log accepts writes now; `Err` says why not.
    pub(crate) fn check_writable(&self) -> Result<()> {
        match &self.mode {
            Mode::Appending(_) => Ok(()),
            Mode::Failed(reason) => Err(Error::Poisoned {
                reason: reason.clone(),
            }),
            Mode::ReadOnly
            | Mode::Replaying {
                access: Access::Read,
                ..
            } => Err(Error::InvalidState {
                reason: "the WAL was opened for reading",
            }),
            Mode::Replaying { .. } => Err(Error::InvalidState {
                reason: "read the WAL to its end (read_all) before writing",
            }),
        }
    }

    /// Records a failure: from now on the log refuses writes (the first reason is kept).
    pub(crate) fn poison<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if !self.is_poisoned() {
                self.mode = Mode::Failed(e.to_string());
            }
        }
        result
    }

    /// The encoder of a writable log; the error says why there is none.
    fn encoder(&mut self) -> Result<&mut Encoder> {
        self.check_writable()?;
        match &mut self.mode {
            Mode::Appending(encoder) => Ok(encoder),
            _ => Err(Error::InvalidState {
                reason: "the WAL is not appending",
            }),
        }
    }

    /// Why the log has no encoder.
    fn not_appending(&self) -> Error {
        self.check_writable().err().unwrap_or(Error::InvalidState {
            reason: "the WAL is not appending",
        })
    }

    fn tail_path(&self) -> PathBuf {
        tail_path(&self.locks).to_path_buf()
    }

    /// Encodes one record into the tail segment (buffered, not yet written). Allocates only to
    /// describe a failure: this is on the per-save path.
    fn encode_record(&mut self, kind: RecordType, data: &[u8]) -> Result<()> {
        let Mode::Appending(encoder) = &mut self.mode else {
            return Err(self.not_appending());
        };
        encoder
            .encode(kind, data)
            .ctx(|| format!("writing {}", tail_path(&self.locks).display()))
    }

    /// Appends `entries`, then `hard_state` (unless empty), and makes them durable when raft
    /// requires it: when there are entries or the term or vote changed (a commit-only change
    /// may stay unsynced). Cuts a new segment when the current one reaches the segment size.
    ///
    /// When this returns `Ok`, everything it was required to sync is on disk. Nothing is written
    /// for an empty HardState without entries.
    pub fn save(&mut self, hard_state: &HardState, entries: &[Entry]) -> Result<()> {
        if is_empty_hard_state(hard_state) && entries.is_empty() {
            return Ok(());
        }
        self.check_writable()?;
        let sync = must_sync(hard_state, &self.hard_state, entries.len());
        let result = self.append(hard_state, entries, sync);
        let result = result.inspect(|()| observe::saved(entries.len()));
        self.poison(result)
    }

    fn append(&mut self, hard_state: &HardState, entries: &[Entry], sync: bool) -> Result<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut positions = std::mem::take(&mut self.positions);
        positions.clear();
        for entry in entries {
            scratch.clear();
            encode_message_into(entry, &mut scratch).map_err(|reason| Error::Encode { reason })?;
            if self.entry_sink.is_some() {
                let encoder = self.encoder()?;
                positions.push(EntryPosition {
                    index: entry.index,
                    term: entry.term,
                    offset: encoder.offset(),
                    data_len: scratch.len() as u64,
                    prev_crc: encoder.crc(),
                });
            }
            self.encode_record(RecordType::Entry, &scratch)?;
            self.last_index = entry.index;
        }
        // Every entry of one save is in the tail segment: a cut happens only after the save.
        if let (Some(sink), Some(tail)) = (&self.entry_sink, self.locks.last()) {
            if !positions.is_empty() {
                sink.encoded(
                    SegmentRef {
                        seq: tail.name.seq,
                        path: &tail.path,
                        file: &tail.file,
                    },
                    &positions,
                );
            }
        }
        self.positions = positions;
        if !is_empty_hard_state(hard_state) {
            scratch.clear();
            encode_message_into(hard_state, &mut scratch)
                .map_err(|reason| Error::Encode { reason })?;
            self.encode_record(RecordType::State, &scratch)?;
            self.hard_state.clone_from(hard_state);
        }
        self.scratch = scratch;
        if self.encoder()?.offset() >= self.options.segment_size {
            self.cut_segment()
        } else if sync {
            self.sync_tail()
        } else {
            Ok(())
        }
    }

    /// Appends a snapshot marker and syncs. Raises the last index to the snapshot's index.
    ///
    /// Write the marker before applying the raft snapshot, then release older segments.
    pub fn save_snapshot_marker(&mut self, snapshot: &WalSnapshot) -> Result<()> {
        self.check_writable()?;
        let path = self.tail_path();
        let result = self
            .encoder()
            .and_then(|encoder| {
                encoder
                    .encode(RecordType::Snapshot, &snapshot.encode())
                    .ctx(|| format!("writing {}", path.display()))
            })
            .and_then(|()| {
                self.last_index = self.last_index.max(snapshot.index);
                self.sync_tail()
            });
        self.poison(result)
    }

    /// Makes everything written so far durable (flush, then fdatasync of the tail segment).
    pub fn sync(&mut self) -> Result<()> {
        self.check_writable()?;
        let result = self.sync_tail();
        self.poison(result)
    }

    fn sync_tail(&mut self) -> Result<()> {
        let file = self.flush_tail()?;
        observe::fsync(Some(tail_path(&self.locks)), || file.sync_data())
            .ctx(|| format!("syncing {}", tail_path(&self.locks).display()))
    }

    /// Writes the buffered frames to the tail segment and returns it, so that a caller can
    /// fdatasync it without holding the log: everything written before this call is in that
    /// file or in an earlier one, which the cut that closed it already synced.
    pub(crate) fn flush_tail(&mut self) -> Result<Arc<dyn WalFile>> {
        let Mode::Appending(encoder) = &mut self.mode else {
            return Err(self.not_appending());
        };
        encoder
            .flush()
            .ctx(|| format!("writing {}", tail_path(&self.locks).display()))?;
        let file = encoder.file().clone();
        if let Some(sink) = &self.entry_sink {
            sink.flushed();
        }
        Ok(file)
    }

    /// [`Wal::save`] without the sync: appends (cutting when the segment is full, which syncs)
    /// and returns whether raft requires the save to be made durable. The group commit layer
    /// syncs many such saves at once.
    pub(crate) fn save_unsynced(
        &mut self,
        hard_state: &HardState,
        entries: &[Entry],
    ) -> Result<bool> {
        if is_empty_hard_state(hard_state) && entries.is_empty() {
            return Ok(false);
        }
        self.check_writable()?;
        let sync = must_sync(hard_state, &self.hard_state, entries.len());
        let result = self.append(hard_state, entries, false);
        let result = result.inspect(|()| observe::saved(entries.len()));
        self.poison(result).map(|()| sync)
    }

    /// Closes the current segment and continues in a new one, named for the next sequence
    /// number and the index after the last entry. Durable when it returns.
    pub fn cut(&mut self) -> Result<()> {
        self.check_writable()?;
        let result = self.cut_segment();
        self.poison(result)
    }

    fn cut_segment(&mut self) -> Result<()> {
        let dir = self.dir.path().to_path_buf();
        let old_path = self.tail_path();
        let old = self.encoder()?;
        let end = old.offset();
        let prev_crc = old.crc();
        // 1. Finish the old segment: its size becomes its content, and it is durable before the
        //    next one can be found by a reader.
        old.flush()
            .ctx(|| format!("writing {}", old_path.display()))?;
        old.file()
            .set_len(end)
            .ctx(|| format!("truncating {}", old_path.display()))?;
        observe::fsync(Some(&old_path), || old.file().sync_data())
            .ctx(|| format!("syncing {}", old_path.display()))?;
        if let Some(sink) = &self.entry_sink {
            sink.flushed();
        }

        // 2. Fill the prepared file with the segment header: the crc chain, the metadata, and
        //    the last HardState, so a reader starting here knows all three.
        let prepared = self
            .pipeline
            .as_mut()
            .ok_or(Error::InvalidState {
                reason: "the WAL has no segment pipeline",
            })?
            .take()?;
        let name = SegmentName::new(self.seq() + 1, self.last_index + 1);
        let mut encoder = Encoder::new(prepared.file.clone(), 0, prev_crc);
        let metadata = self.metadata.clone().unwrap_or_default();
        let mut state = Vec::new();
        if !is_empty_hard_state(&self.hard_state) {
            state = self
                .hard_state
                .write_to_bytes()
                .map_err(|e| Error::Encode {
                    reason: e.to_string(),
                })?;
        }
        let header = encoder
            .encode_crc()
            .and_then(|()| encoder.encode(RecordType::Metadata, &metadata))
            .and_then(|()| {
                if state.is_empty() {
                    Ok(())
                } else {
                    encoder.encode(RecordType::State, &state)
                }
            })
            .and_then(|()| encoder.flush());
        header.ctx(|| format!("writing {}", prepared.path.display()))?;

        // 3. Durable in order: the new file's bytes, then its final name, then the directory
        //    entry. Until the rename the file is an ignored `.tmp`; nothing written after the
        //    cut is acknowledged before the directory sync.
        observe::fsync(Some(&prepared.path), || prepared.file.sync_data())
            .ctx(|| format!("syncing {}", prepared.path.display()))?;
        let path = dir.join(&name.file_name);
        self.options
            .file_system
            .rename(&prepared.path, &path)
            .ctx(|| format!("renaming {} to {}", prepared.path.display(), path.display()))?;
        self.options
            .file_system
            .sync_dir(&dir)
            .ctx(|| format!("syncing {}", dir.display()))?;

        self.locks.push(OpenSegment {
            name,
            path,
            file: prepared.file,
        });
        self.mode = Mode::Appending(encoder);
        observe::segment_cut(tail_path(&self.locks));
        Ok(())
    }

    /// The sequence number of the tail segment.
    fn seq(&self) -> u64 {
        self.locks.last().map(|l| l.name.seq).unwrap_or(0)
    }

    /// Unlocks segments no longer needed once a snapshot covers `index`: keeps the lock on the
    /// last segment whose first index is below `index` and on every later one, releases the
    /// rest (which a purge may then delete).
    pub fn release_lock_to(&mut self, index: u64) -> Result<()> {
        if self.locks.is_empty() {
            return Ok(());
        }
        let keep_from = match self.locks.iter().position(|l| l.name.index >= index) {
            Some(pos) => pos.saturating_sub(1),
            None => self.locks.len() - 1,
        };
        for released in self.locks.drain(..keep_from) {
            released
                .file
                .unlock()
                .ctx(|| format!("unlocking {}", released.path.display()))?;
        }
        Ok(())
    }

    /// Syncs what was written, stops preparing segments and releases every lock. Dropping the
    /// log releases the locks too (the files unlock as they close), without the sync.
    pub fn close(mut self) -> Result<()> {
        if let Some(mut pipeline) = self.pipeline.take() {
            pipeline.stop();
        }
        let result = if matches!(self.mode, Mode::Appending(_)) {
            self.sync_tail()
        } else {
            Ok(())
        };
        for lock in self.locks.drain(..) {
            let _ = lock.file.unlock();
        }
        result
    }
}
