//! [`WalOptions`]: how a log is stored, and the one door to everything done with a log
//! directory — create, open, open for reading, verify, check, repair, read raw records — in the
//! style of std's `OpenOptions` and redb's `Builder`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use raft_proto::eraftpb::HardState;

use crate::decoder::Verdict;
use crate::error::Result;
use crate::fs::{FileSystem, RealFs};
use crate::inspect::{self, RawRecords};
use crate::record::WalSnapshot;
use crate::repair::{self, ForcedCut, Repaired};
use crate::segment::{SegmentDir, SegmentName, DEFAULT_SEGMENT_SIZE};
use crate::wal::{self, Wal};

/// The default [`WalOptions::replay_read_size`]: 1 MiB.
pub const DEFAULT_REPLAY_READ_SIZE: usize = 1 << 20;

/// How a log is stored, and what to do with a log directory.
///
/// `WalOptions::new()` is etcd's configuration on the real file system: 64 MB segments,
/// prepared in the background. Set what differs, then call what you need:
///
/// ```
/// use raftwal::{WalOptions, WalSnapshot};
///
/// # fn main() -> raftwal::Result<()> {
/// # let parent = tempfile::tempdir().unwrap();
/// # let dir = parent.path().join("wal");
/// let options = WalOptions::new().segment_size(4 << 20);
/// let wal = options.create(&dir, b"node-1")?;
/// wal.close()?;
/// assert!(options.check(&dir)?.is_sound());
/// let mut wal = options.open(&dir, &WalSnapshot::default())?;
/// assert_eq!(wal.read_all()?.metadata, b"node-1");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct WalOptions {
    pub(crate) segment_size: u64,
    pub(crate) file_system: Arc<dyn FileSystem>,
    pub(crate) prepare_segments_in_background: bool,
    pub(crate) replay_read_size: usize,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            file_system: Arc::new(RealFs),
            prepare_segments_in_background: true,
            replay_read_size: DEFAULT_REPLAY_READ_SIZE,
        }
    }
}

impl fmt::Debug for WalOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalOptions")
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

impl WalOptions {
    /// etcd's configuration on the real file system (the same as `default()`).
    pub fn new() -> WalOptions {
        WalOptions::default()
    }

    /// A segment is cut after the write that takes it to this many bytes (etcd: 64 MB).
    #[must_use]
    pub fn segment_size(mut self, bytes: u64) -> WalOptions {
        self.segment_size = bytes;
        self
    }

    /// Where files live: the real file system, or another implementation (the simulated
    /// crashing disk `fs::sim::SimFs` under the `sim` feature, encryption, rate limiting).
    #[must_use]
    pub fn file_system(mut self, file_system: Arc<dyn FileSystem>) -> WalOptions {
        self.file_system = file_system;
        self
    }

    /// Prepare the next segment in a background thread (on by default), so a cut never waits on
    /// allocation. Off, segments are prepared when a cut needs one, which keeps the order of
    /// I/O calls deterministic for fault-injection tests.
    #[must_use]
    pub fn prepare_segments_in_background(mut self, background: bool) -> WalOptions {
        self.prepare_segments_in_background = background;
        self
    }

    /// Bytes read from a segment per call when the log is read back. Replay holds this much
    /// plus the largest record in memory; the default of 1 MiB fits the CPU caches, so checking
    /// and decoding a record reads bytes the kernel has just copied (W4 in `benches/compare`:
    /// 0.6x `cat`, against 0.45x with 4 MiB). Any size reads the same records.
    #[must_use]
    pub fn replay_read_size(mut self, bytes: usize) -> WalOptions {
        self.replay_read_size = bytes.max(1);
        self
    }

    /// Creates a new log in `dir`, atomically: either a whole log appears or none does.
    ///
    /// Refuses a directory that already holds a WAL or any other file
    /// ([`crate::Error::AlreadyExists`]). The first segment holds a crc record, the metadata and
    /// an empty snapshot marker, exactly as etcd writes them. The log is open for writing.
    pub fn create(&self, dir: impl AsRef<Path>, metadata: &[u8]) -> Result<Wal> {
        Wal::create_in(dir.as_ref(), metadata, self.clone())
    }

    /// Opens the log in `dir` for writing, to be read from `snapshot` on.
    ///
    /// Locks every segment from the one holding the entry after `snapshot.index` to the last;
    /// another writer gets [`crate::Error::Locked`]. Read it to its end ([`Wal::read_all`] or
    /// [`Wal::replay`]) before writing.
    pub fn open(&self, dir: impl AsRef<Path>, snapshot: &WalSnapshot) -> Result<Wal> {
        Wal::open_in(dir.as_ref(), snapshot, self.clone(), true)
    }

    /// Opens the log in `dir` for reading only: no locks, so it works beside a live writer, and
    /// a torn tail (the writer's unsynced end) ends the read instead of failing it.
    pub fn open_for_read(&self, dir: impl AsRef<Path>, snapshot: &WalSnapshot) -> Result<Wal> {
        Wal::open_in(dir.as_ref(), snapshot, self.clone(), false)
    }

    /// Whether `dir` holds a WAL (any segment file).
    pub fn exists(&self, dir: impl AsRef<Path>) -> bool {
        SegmentDir::new(self.file_system.clone(), dir.as_ref()).has_segments()
    }

    /// Checks the log in `dir` from `snapshot` on without locking or changing anything, as
    /// [`Wal::read_all`] in read mode would (a torn tail ends it); returns the last HardState.
    pub fn verify(&self, dir: impl AsRef<Path>, snapshot: &WalSnapshot) -> Result<HardState> {
        wal::verify(dir.as_ref(), snapshot, self.clone())
    }

    /// The snapshot markers in `dir` that a node can start from: those at or below the commit
    /// index of the last HardState (a snapshot above commit is unusable). Reads every segment.
    pub fn valid_snapshot_entries(&self, dir: impl AsRef<Path>) -> Result<Vec<WalSnapshot>> {
        wal::valid_snapshot_entries(dir.as_ref(), self)
    }

    /// Reads every segment of `dir`, changing nothing, and gives the damage verdict every reader
    /// of the log shares (open, replay, verify, repair, the CLI): sound, torn at (file, offset),
    /// or corrupt at (file, offset). An `Err` means the log could not be read at all (an I/O
    /// error, no segments).
    pub fn check(&self, dir: impl AsRef<Path>) -> Result<Verdict> {
        inspect::check(dir.as_ref(), self)
    }

    /// Repairs a torn tail of the last segment in `dir`: keeps a copy as `<file>.broken`,
    /// truncates the segment where its records end and syncs. `Ok(None)` when the log is sound.
    ///
    /// Corruption anywhere is [`crate::Error::NotRepairable`], and nothing is changed.
    pub fn repair(&self, dir: impl AsRef<Path>) -> Result<Option<Repaired>> {
        repair::repair(dir.as_ref(), self)
    }

    /// What [`WalOptions::repair_at`] would cut, changing nothing: `None` when the log is
    /// sound; damage before the last segment is [`crate::Error::NotRepairable`].
    pub fn plan_forced_cut(&self, dir: impl AsRef<Path>) -> Result<Option<ForcedCut>> {
        repair::plan_forced_cut(dir.as_ref(), self)
    }

    /// The operator's forced cut: cuts the last segment of `dir` at its first damaged frame,
    /// discarding everything after it, for damage [`WalOptions::repair`] refuses because it
    /// may hide acknowledged data (see `docs/DURABILITY.md`). `offset` confirms the decision:
    /// it must be where the damage starts ([`crate::Error::position`]), anything else is
    /// [`crate::Error::NoDamageThere`] and changes nothing. The segment is first kept as
    /// `<file>.broken`; damage inside its header removes it whole, unless it is the only
    /// segment left, which is [`crate::Error::NotRepairable`] (removing it would remove the log).
    pub fn repair_at(&self, dir: impl AsRef<Path>, offset: u64) -> Result<Repaired> {
        repair::repair_at(dir.as_ref(), offset, self)
    }

    /// Every record of every segment in `dir`, in file order, with its position, no log
    /// semantics applied. A torn tail ends the iteration with [`crate::Error::TornTail`];
    /// corruption with [`crate::Error::CrcMismatch`] or [`crate::Error::Corrupt`].
    pub fn raw_records(&self, dir: impl AsRef<Path>) -> Result<RawRecords> {
        inspect::raw_records(dir.as_ref(), self)
    }

    /// The segments of the log in `dir`, in order.
    pub fn segments(&self, dir: impl AsRef<Path>) -> Result<Vec<SegmentName>> {
        SegmentDir::new(self.file_system.clone(), dir.as_ref()).list()
    }

    /// The segments of `dir` that some writer holds locked right now, in order. Each lock is
    /// tried without waiting and released at once; a writer opening the log in that instant
    /// could see it as taken, so run this beside a live log, not in its startup.
    pub fn probe_locks(&self, dir: impl AsRef<Path>) -> Result<Vec<SegmentName>> {
        SegmentDir::new(self.file_system.clone(), dir.as_ref()).locked()
    }
}
