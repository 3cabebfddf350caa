//! The log itself: create, open, append (`save`, `save_snapshot`), cut, sync, release and close.
//!
//! Reading back lives in `replay.rs`, repair in `repair.rs`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use protobuf::Message as _;
use raft_proto::eraftpb::{Entry, HardState};

use crate::decoder::{Decoder, SegmentSource};
use crate::encoder::Encoder;
use crate::error::{Error, IoContext as _, Result};
use crate::fs::{FileSystem, RealFs, WalFile};
use crate::observe;
use crate::record::{is_empty_hard_state, must_sync, RecordType, WalSnapshot};
use crate::segment::{self, FilePipeline, SegmentName, DEFAULT_SEGMENT_SIZE};

/// The default [`Options::replay_read_size`].
pub const DEFAULT_REPLAY_READ_SIZE: usize = 1 << 20;

/// How a log is stored. `Options::default()` is etcd's configuration on the real file system.
#[derive(Clone)]
pub struct Options {
    /// A segment is cut after the write that takes it to this many bytes.
    pub segment_size: u64,
    /// Where files live: the real file system, or a simulated one in tests.
    pub file_system: Arc<dyn FileSystem>,
    /// Prepare the next segment in a background thread (so a cut never waits on allocation).
    /// Off, segments are prepared when a cut needs one, which keeps the order of I/O calls
    /// deterministic for fault-injection tests.
    pub prepare_segments_in_background: bool,
    /// Bytes read from a segment per call when the log is read back. Replay holds this much
    /// plus the largest record in memory; the default of 1 MiB fits the CPU caches, so checking
    /// and decoding a record reads bytes the kernel has just copied (W4 in `benches/compare`:
    /// 0.6x `cat`, against 0.45x with 4 MiB). Any size reads the same records.
    pub replay_read_size: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            segment_size: DEFAULT_SEGMENT_SIZE,
            file_system: Arc::new(RealFs),
            prepare_segments_in_background: true,
            replay_read_size: DEFAULT_REPLAY_READ_SIZE,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("segment_size", &self.segment_size)
            .field("file_system", &self.file_system)
            .field(
                "prepare_segments_in_background",
                &self.prepare_segments_in_background,
            )
            .field("replay_read_size", &self.replay_read_size)
            .finish()
    }
}

/// A segment this writer holds locked.
#[derive(Debug)]
pub(crate) struct LockedSegment {
    pub(crate) name: SegmentName,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn WalFile>,
}

impl LockedSegment {
    fn source(&self) -> SegmentSource {
        SegmentSource {
            name: self.name.file_name.clone(),
            path: self.path.clone(),
            file: self.file.clone(),
        }
    }
}

/// An etcd-compatible write-ahead log of raft entries and hard states.
///
/// Opened for writing ([`Wal::create`], [`Wal::open`]) it holds an exclusive lock on every
/// segment it may still need; opened for reading ([`Wal::open_for_read`]) it takes no locks.
/// A log that was opened must be read to its end ([`Wal::read_all`] or [`Wal::replay`]) before
/// it accepts writes. After a failed write, sync or cut it refuses every write with
/// [`Error::Poisoned`] until reopened.
pub struct Wal {
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) metadata: Option<Vec<u8>>,
    /// The snapshot the log was opened at; reading starts after it.
    pub(crate) start: WalSnapshot,
    /// The last HardState written or read.
    pub(crate) hard_state: HardState,
    /// The index of the last entry written or read (raised by snapshot records written).
    pub(crate) last_index: u64,
    /// Locked segments, oldest first; the last one is the tail being appended to.
    pub(crate) locks: Vec<LockedSegment>,
    /// Present until the log has been read to its end.
    pub(crate) decoder: Option<Decoder>,
    /// Present once a log opened for writing has been read to its end.
    pub(crate) encoder: Option<Encoder>,
    pipeline: Option<FilePipeline>,
    /// Why the log refuses writes, after a failure.
    pub(crate) failure: Option<String>,
    /// Reused buffer for encoding raft messages.
    scratch: Vec<u8>,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("last_index", &self.last_index)
            .field("hard_state", &self.hard_state)
            .field("locked_segments", &self.locks.len())
            .field("writable", &self.encoder.is_some())
            .field("failure", &self.failure)
            .finish()
    }
}

/// Whether `dir` holds a WAL (any `.wal` file).
pub fn exists(dir: impl AsRef<Path>) -> bool {
    exists_in(&RealFs, dir.as_ref())
}

pub(crate) fn exists_in(fs: &dyn FileSystem, dir: &Path) -> bool {
    fs.list_dir(dir)
        .map(|names| names.iter().any(|n| n.ends_with(".wal")))
        .unwrap_or(false)
}

/// `<dir>.tmp`, where a new log is built before it appears under its name.
fn tmp_dir_of(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    dir.with_file_name(name)
}

/// The tail segment's path, for error messages.
fn tail_path(locks: &[LockedSegment]) -> &Path {
    locks
        .last()
        .map(|l| l.path.as_path())
        .unwrap_or(Path::new(""))
}

impl Wal {
    /// Creates a new log in `dir` with etcd's defaults; see [`Wal::create_with`].
    pub fn create(dir: impl AsRef<Path>, metadata: &[u8]) -> Result<Wal> {
        Wal::create_with(dir, metadata, Options::default())
    }

    /// Creates a new log in `dir`, atomically: either a whole log appears or none does.
    ///
    /// Refuses a directory that already holds a WAL or any other file. The first segment holds
    /// a crc record, the metadata and an empty snapshot marker, exactly as etcd writes them.
    /// The returned log is open for writing.
    pub fn create_with(dir: impl AsRef<Path>, metadata: &[u8], options: Options) -> Result<Wal> {
        let dir = dir.as_ref().to_path_buf();
        let fs = options.file_system.clone();
        let dir_exists = fs
            .exists(&dir)
            .ctx(|| format!("checking {}", dir.display()))?;
        if dir_exists
            && !fs
                .list_dir(&dir)
                .ctx(|| format!("listing {}", dir.display()))?
                .is_empty()
        {
            return Err(Error::AlreadyExists { dir });
        }

        // Build the whole log under <dir>.tmp, replacing what a crashed create left there.
        let tmp = tmp_dir_of(&dir);
        if fs
            .exists(&tmp)
            .ctx(|| format!("checking {}", tmp.display()))?
        {
            fs.remove_dir_all(&tmp)
                .ctx(|| format!("removing stale {}", tmp.display()))?;
        }
        fs.create_dir_all(&tmp)
            .ctx(|| format!("creating {}", tmp.display()))?;
        let name = SegmentName::new(0, 0);
        let tmp_path = tmp.join(&name.file_name);
        let file = fs
            .create_file(&tmp_path)
            .ctx(|| format!("creating {}", tmp_path.display()))?;
        if !file
            .try_lock()
            .ctx(|| format!("locking {}", tmp_path.display()))?
        {
            return Err(Error::Locked { file: tmp_path });
        }
        file.allocate(options.segment_size)
            .ctx(|| format!("preallocating {}", tmp_path.display()))?;
        let mut encoder = Encoder::new(file.clone(), 0, 0);
        let header = encoder
            .encode_crc()
            .and_then(|()| encoder.encode(RecordType::Metadata, metadata))
            .and_then(|()| encoder.encode(RecordType::Snapshot, &WalSnapshot::default().encode()))
            .and_then(|()| encoder.flush());
        header.ctx(|| format!("writing {}", tmp_path.display()))?;

        // Durable in order: the file's bytes, its entry in <dir>.tmp, then the rename in the
        // parent. A crash before the last step leaves no log at <dir>, never a partial one.
        file.sync_data()
            .ctx(|| format!("syncing {}", tmp_path.display()))?;
        fs.sync_dir(&tmp)
            .ctx(|| format!("syncing {}", tmp.display()))?;
        if dir_exists {
            fs.remove_dir(&dir)
                .ctx(|| format!("replacing empty {}", dir.display()))?;
        }
        fs.rename(&tmp, &dir)
            .ctx(|| format!("renaming {} to {}", tmp.display(), dir.display()))?;
        let parent = crate::fs::parent_dir(&dir);
        fs.sync_dir(&parent)
            .ctx(|| format!("syncing {}", parent.display()))?;

        let pipeline = FilePipeline::start(
            fs.clone(),
            &dir,
            options.segment_size,
            options.prepare_segments_in_background,
        );
        Ok(Wal {
            locks: vec![LockedSegment {
                path: dir.join(&name.file_name),
                name,
                file,
            }],
            dir,
            options,
            metadata: Some(metadata.to_vec()),
            start: WalSnapshot::default(),
            hard_state: HardState::default(),
            last_index: 0,
            decoder: None,
            encoder: Some(encoder),
            pipeline: Some(pipeline),
            failure: None,
            scratch: Vec::new(),
        })
    }

    /// Opens the log in `dir` for writing at `snapshot`, with etcd's defaults.
    pub fn open(dir: impl AsRef<Path>, snapshot: &WalSnapshot) -> Result<Wal> {
        Wal::open_with(dir, snapshot, Options::default())
    }

    /// Opens the log in `dir` for writing, to be read from `snapshot` on.
    ///
    /// Locks every segment from the one holding the entry after `snapshot.index` to the last;
    /// another writer gets [`Error::Locked`]. Call [`Wal::read_all`] (or drain
    /// [`Wal::replay`]) before writing.
    pub fn open_with(
        dir: impl AsRef<Path>,
        snapshot: &WalSnapshot,
        options: Options,
    ) -> Result<Wal> {
        Wal::open_at(dir.as_ref(), snapshot, options, true)
    }

    /// Opens the log in `dir` for reading from `snapshot` on, with etcd's defaults.
    pub fn open_for_read(dir: impl AsRef<Path>, snapshot: &WalSnapshot) -> Result<Wal> {
        Wal::open_for_read_with(dir, snapshot, Options::default())
    }

    /// Opens the log in `dir` for reading only: no locks, so it works beside a live writer, and
    /// a torn tail (the writer's unsynced end) ends the read instead of failing it.
    pub fn open_for_read_with(
        dir: impl AsRef<Path>,
        snapshot: &WalSnapshot,
        options: Options,
    ) -> Result<Wal> {
        Wal::open_at(dir.as_ref(), snapshot, options, false)
    }

    fn open_at(dir: &Path, snapshot: &WalSnapshot, options: Options, write: bool) -> Result<Wal> {
        let fs = options.file_system.clone();
        let names = segment::list_segments(fs.as_ref(), dir)?;
        let first = segment::search_index(&names, snapshot.index).ok_or_else(|| {
            Error::SegmentNotFound {
                dir: dir.to_path_buf(),
                index: snapshot.index,
            }
        })?;
        let names = &names[first..];
        segment::check_contiguous(names)?;

        let mut segments = Vec::with_capacity(names.len());
        for name in names {
            let path = dir.join(&name.file_name);
            let file = fs
                .open_file(&path, write)
                .ctx(|| format!("opening {}", path.display()))?;
            if write
                && !file
                    .try_lock()
                    .ctx(|| format!("locking {}", path.display()))?
            {
                return Err(Error::Locked { file: path });
            }
            segments.push(LockedSegment {
                name: name.clone(),
                path,
                file,
            });
        }
        let decoder = Decoder::new(
            segments.iter().map(LockedSegment::source).collect(),
            options.replay_read_size,
        )?;
        let pipeline = write.then(|| {
            FilePipeline::start(
                fs.clone(),
                dir,
                options.segment_size,
                options.prepare_segments_in_background,
            )
        });
        Ok(Wal {
            dir: dir.to_path_buf(),
            options,
            metadata: None,
            start: snapshot.clone(),
            hard_state: HardState::default(),
            last_index: 0,
            locks: if write { segments } else { Vec::new() },
            decoder: Some(decoder),
            encoder: None,
            pipeline,
            failure: None,
            scratch: Vec::new(),
        })
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
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

    /// The names of the segments this writer holds locked, oldest first.
    pub fn locked_segments(&self) -> Vec<String> {
        self.locks
            .iter()
            .map(|l| l.name.file_name.clone())
            .collect()
    }

    /// Whether the log accepts writes now; `Err` says why not.
    fn check_writable(&self) -> Result<()> {
        if let Some(reason) = &self.failure {
            return Err(Error::Poisoned {
                reason: reason.clone(),
            });
        }
        if self.encoder.is_none() {
            return Err(Error::InvalidState {
                reason: if self.locks.is_empty() {
                    "the WAL was opened for reading"
                } else {
                    "read the WAL to its end (read_all) before writing"
                },
            });
        }
        Ok(())
    }

    /// Records a failure of a write path: from now on the log refuses writes.
    pub(crate) fn poison<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if self.failure.is_none() {
                self.failure = Some(e.to_string());
            }
        }
        result
    }

    /// The encoder of a writable log (`check_writable` has been called on every path here, so
    /// the error only guards against a future caller that forgets it).
    fn encoder(&mut self) -> Result<&mut Encoder> {
        self.encoder.as_mut().ok_or(Error::InvalidState {
            reason: "read the WAL to its end (read_all) before writing",
        })
    }

    fn tail_path(&self) -> PathBuf {
        tail_path(&self.locks).to_path_buf()
    }

    /// Encodes one record into the tail segment (buffered, not yet written). Allocates only to
    /// describe a failure: this is on the per-save path.
    fn encode_record(&mut self, kind: RecordType, data: &[u8]) -> Result<()> {
        let locks = &self.locks;
        let encoder = self.encoder.as_mut().ok_or(Error::InvalidState {
            reason: "read the WAL to its end (read_all) before writing",
        })?;
        encoder
            .encode(kind, data)
            .ctx(|| format!("writing {}", tail_path(locks).display()))
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
        for entry in entries {
            scratch.clear();
            entry
                .write_to_vec(&mut scratch)
                .map_err(|e| Error::Encode {
                    reason: e.to_string(),
                })?;
            self.encode_record(RecordType::Entry, &scratch)?;
            self.last_index = entry.index;
        }
        if !is_empty_hard_state(hard_state) {
            scratch.clear();
            hard_state
                .write_to_vec(&mut scratch)
                .map_err(|e| Error::Encode {
                    reason: e.to_string(),
                })?;
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
    pub fn save_snapshot(&mut self, snapshot: &WalSnapshot) -> Result<()> {
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
        let locks = &self.locks;
        let encoder = self.encoder.as_mut().ok_or(Error::InvalidState {
            reason: "read the WAL to its end (read_all) before writing",
        })?;
        encoder
            .flush()
            .ctx(|| format!("writing {}", tail_path(locks).display()))?;
        Ok(encoder.file().clone())
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
        let dir = self.dir.clone();
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

        self.locks.push(LockedSegment {
            name,
            path,
            file: prepared.file,
        });
        self.encoder = Some(encoder);
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
        let result = if self.encoder.is_some() && self.failure.is_none() {
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
