//! The segment directory, the one door every reader and writer goes through (etcd's
//! `openWALFiles`): segment names, listing, choosing the segments a read from a snapshot needs,
//! checking their sequence, opening and locking them, creating a log atomically through
//! `<dir>.tmp`, and purging old segments in one crash-safe order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, IoContext as _, Result};
use crate::fs::{FileSystem, WalFile};
use crate::observe;

/// etcd's segment size: a segment is cut once a write takes it to this many bytes.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64_000_000;

/// A parsed segment file name: `%016x-%016x.wal`, sequence number then first raft index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentName {
    /// Position of the segment in the log, increasing by one per cut.
    pub seq: u64,
    /// The raft index of the first entry the segment may hold.
    pub index: u64,
    /// The file name as found on disk.
    pub file_name: String,
}

impl SegmentName {
    /// The name for sequence `seq` starting at `index`.
    pub fn new(seq: u64, index: u64) -> SegmentName {
        SegmentName {
            seq,
            index,
            file_name: format!("{seq:016x}-{index:016x}.wal"),
        }
    }

    /// Parses a segment file name; anything else (`.tmp`, `.broken`, other files) is `None`.
    pub fn parse(file_name: &str) -> Option<SegmentName> {
        let stem = file_name.strip_suffix(".wal")?;
        let (seq, index) = stem.split_once('-')?;
        let hex = |s: &str| {
            (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(s, 16).ok())
                .flatten()
        };
        Some(SegmentName {
            seq: hex(seq)?,
            index: hex(index)?,
            file_name: file_name.to_string(),
        })
    }
}

/// How a segment is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read-only and unlocked: works beside a live writer.
    Read,
    /// Writable and locked exclusively: another writer gets [`Error::Locked`].
    Write,
}

/// An open segment file.
#[derive(Debug, Clone)]
pub(crate) struct OpenSegment {
    /// Its parsed name.
    pub(crate) name: SegmentName,
    /// Its full path, for error messages.
    pub(crate) path: PathBuf,
    /// The open file (locked when opened with [`Access::Write`]).
    pub(crate) file: Arc<dyn WalFile>,
}

/// A log directory of segment files on a file system.
#[derive(Debug, Clone)]
pub(crate) struct SegmentDir {
    fs: Arc<dyn FileSystem>,
    path: PathBuf,
}

impl SegmentDir {
    /// The segment directory at `path`.
    pub(crate) fn new(fs: Arc<dyn FileSystem>, path: &Path) -> SegmentDir {
        SegmentDir {
            fs,
            path: path.to_path_buf(),
        }
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file system it lives on.
    pub(crate) fn file_system(&self) -> &Arc<dyn FileSystem> {
        &self.fs
    }

    /// Whether the directory holds any segment (a missing directory holds none).
    pub(crate) fn has_segments(&self) -> bool {
        self.fs
            .list_dir(&self.path)
            .map(|names| names.iter().any(|n| SegmentName::parse(n).is_some()))
            .unwrap_or(false)
    }

    /// Every segment in the directory, ordered by sequence number, unchecked.
    pub(crate) fn list(&self) -> Result<Vec<SegmentName>> {
        let mut names: Vec<SegmentName> = self
            .fs
            .list_dir(&self.path)
            .ctx(|| format!("listing {}", self.path.display()))?
            .iter()
            .filter_map(|name| SegmentName::parse(name))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every segment, checked to be numbered consecutively: what a read of the whole directory
    /// (verify, inspect, repair) goes through. An empty directory is [`Error::SegmentNotFound`].
    pub(crate) fn all(&self) -> Result<Vec<SegmentName>> {
        let names = self.list()?;
        if names.is_empty() {
            return Err(Error::SegmentNotFound {
                dir: self.path.clone(),
                index: 0,
            });
        }
        check_contiguous(&names)?;
        Ok(names)
    }

    /// The segments a read from a snapshot at `index` needs: from the last one whose first index
    /// is at or below `index` to the end, checked to be numbered consecutively.
    pub(crate) fn needed_from(&self, index: u64) -> Result<Vec<SegmentName>> {
        let mut names = self.list()?;
        let first = search_index(&names, index).ok_or_else(|| Error::SegmentNotFound {
            dir: self.path.clone(),
            index,
        })?;
        names.drain(..first);
        check_contiguous(&names)?;
        Ok(names)
    }

    /// The path of the segment `name`.
    pub(crate) fn path_of(&self, name: &SegmentName) -> PathBuf {
        self.path.join(&name.file_name)
    }

    /// Opens the segment `name`, taking its lock for [`Access::Write`].
    pub(crate) fn open(&self, name: &SegmentName, access: Access) -> Result<OpenSegment> {
        let path = self.path_of(name);
        let file = self
            .fs
            .open_file(&path, access == Access::Write)
            .ctx(|| format!("opening {}", path.display()))?;
        if access == Access::Write && !try_lock(file.as_ref(), &path)? {
            return Err(Error::Locked { file: path });
        }
        Ok(OpenSegment {
            name: name.clone(),
            path,
            file,
        })
    }

    /// Opens every segment of `names` with `access`, in order.
    pub(crate) fn open_all(
        &self,
        names: &[SegmentName],
        access: Access,
    ) -> Result<Vec<OpenSegment>> {
        names.iter().map(|name| self.open(name, access)).collect()
    }

    /// Opens every segment for a read of the whole log: all read-only, except the last one,
    /// opened with `last` (a repair locks it so no writer appends while it cuts).
    pub(crate) fn open_whole_log(&self, last: Access) -> Result<Vec<OpenSegment>> {
        let names = self.all()?;
        let (tail, older) = names.split_last().ok_or_else(|| Error::SegmentNotFound {
            dir: self.path.clone(),
            index: 0,
        })?;
        let mut segments = self.open_all(older, Access::Read)?;
        segments.push(self.open(tail, last)?);
        Ok(segments)
    }

    /// The segments some writer holds locked right now, in order. Each lock is tried without
    /// waiting and released at once.
    pub(crate) fn locked(&self) -> Result<Vec<SegmentName>> {
        let mut locked = Vec::new();
        for name in self.list()? {
            let path = self.path_of(&name);
            let file = self
                .fs
                .open_file(&path, false)
                .ctx(|| format!("opening {}", path.display()))?;
            if try_lock(file.as_ref(), &path)? {
                file.unlock()
                    .ctx(|| format!("unlocking {}", path.display()))?;
            } else {
                locked.push(name);
            }
        }
        Ok(locked)
    }

    /// Deletes segments oldest first until `keep` are left, stopping at the first one some
    /// writer (this process included) still holds locked; returns the names deleted.
    ///
    /// The one crash-safe order, for every caller: take the segment's lock, remove it, fsync the
    /// directory, and only then go on to the next. A crash therefore leaves a suffix of the
    /// sequence, never an older segment without the newer ones deleted before it (a gap that
    /// would fail the next open), and never deletes a segment a writer still needs.
    ///
    /// `in_use_from` is the sequence number of the first segment the caller's own writer still
    /// holds: it and everything after it are never deleted, whatever the locks say (on a file
    /// system that emulates flock with per-process locks, the writer's own lock would not
    /// conflict with this one).
    pub(crate) fn purge(&self, keep: usize, in_use_from: u64) -> Result<Vec<String>> {
        let names = self.list()?;
        let excess = names.len().saturating_sub(keep);
        let mut deleted = Vec::new();
        for name in names.into_iter().take(excess) {
            if name.seq >= in_use_from {
                break;
            }
            let path = self.path_of(&name);
            let file = self
                .fs
                .open_file(&path, false)
                .ctx(|| format!("opening {}", path.display()))?;
            // flock locks belong to an open file description: this fresh one conflicts with a
            // writer's lock on the same file, even in this process.
            if !try_lock(file.as_ref(), &path)? {
                break;
            }
            self.fs
                .remove_file(&path)
                .ctx(|| format!("removing {}", path.display()))?;
            self.fs
                .sync_dir(&self.path)
                .ctx(|| format!("syncing {}", self.path.display()))?;
            let _ = file.unlock();
            observe::purged(&path);
            deleted.push(name.file_name);
        }
        Ok(deleted)
    }
}

fn try_lock(file: &dyn WalFile, path: &Path) -> Result<bool> {
    file.try_lock()
        .ctx(|| format!("locking {}", path.display()))
}

/// Creates the segment file `path` (under a name no reader takes for a segment yet), locks it
/// and preallocates `size` bytes, so appends never extend it until it is full.
pub(crate) fn create_locked(
    fs: &dyn FileSystem,
    path: &Path,
    size: u64,
) -> Result<Arc<dyn WalFile>> {
    let file = fs
        .create_file(path)
        .ctx(|| format!("creating {}", path.display()))?;
    if !try_lock(file.as_ref(), path)? {
        return Err(Error::Locked {
            file: path.to_path_buf(),
        });
    }
    file.allocate(size)
        .ctx(|| format!("preallocating {}", path.display()))?;
    Ok(file)
}

/// Creates the directory `dir` atomically: refuses a `dir` that holds anything, builds the
/// contents in `<dir>.tmp` (replacing what a crashed create left there) with `build`, then makes
/// it appear whole. Either a complete directory appears at `dir` or none does.
///
/// Durable in order: what `build` wrote (it syncs its own files), the entries of `<dir>.tmp`,
/// the rename in the parent, and the parent's entry.
pub(crate) fn create_atomically<T>(
    fs: &dyn FileSystem,
    dir: &Path,
    build: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let dir_exists = fs
        .exists(dir)
        .ctx(|| format!("checking {}", dir.display()))?;
    if dir_exists
        && !fs
            .list_dir(dir)
            .ctx(|| format!("listing {}", dir.display()))?
            .is_empty()
    {
        return Err(Error::AlreadyExists {
            dir: dir.to_path_buf(),
        });
    }
    let tmp = tmp_dir_of(dir);
    if fs
        .exists(&tmp)
        .ctx(|| format!("checking {}", tmp.display()))?
    {
        fs.remove_dir_all(&tmp)
            .ctx(|| format!("removing stale {}", tmp.display()))?;
    }
    fs.create_dir_all(&tmp)
        .ctx(|| format!("creating {}", tmp.display()))?;
    let built = build(&tmp)?;
    fs.sync_dir(&tmp)
        .ctx(|| format!("syncing {}", tmp.display()))?;
    if dir_exists {
        fs.remove_dir(dir)
            .ctx(|| format!("replacing empty {}", dir.display()))?;
    }
    fs.rename(&tmp, dir)
        .ctx(|| format!("renaming {} to {}", tmp.display(), dir.display()))?;
    let parent = crate::fs::parent_dir(dir);
    fs.sync_dir(&parent)
        .ctx(|| format!("syncing {}", parent.display()))?;
    Ok(built)
}

/// `<dir>.tmp`, where a new directory is built before it appears under its name.
fn tmp_dir_of(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    dir.with_file_name(name)
}

/// Position of the last segment whose first index is at or below `index`: the one holding the
/// entry right after a snapshot at `index`.
fn search_index(names: &[SegmentName], index: u64) -> Option<usize> {
    names.iter().rposition(|name| name.index <= index)
}

/// Checks that sequence numbers increase by exactly one.
fn check_contiguous(names: &[SegmentName]) -> Result<()> {
    for pair in names.windows(2) {
        if pair[0].seq.checked_add(1) != Some(pair[1].seq) {
            return Err(Error::SegmentGap {
                before: pair[0].file_name.clone(),
                after: pair[1].file_name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_other_files() {
        let name = SegmentName::new(2, 10);
        assert_eq!(name.file_name, "0000000000000002-000000000000000a.wal");
        assert_eq!(SegmentName::parse(&name.file_name), Some(name));
        assert_eq!(SegmentName::parse("0000000000000000.wal"), None);
        assert_eq!(
            SegmentName::parse("0000000000000000-0000000000000000.snap"),
            None
        );
        assert_eq!(SegmentName::parse("0.tmp"), None);
        assert_eq!(
            SegmentName::parse("0000000000000000-0000000000000000.wal.broken"),
            None
        );
    }

    #[test]
    fn search_index_finds_the_last_segment_at_or_below() {
        let names = |pairs: &[(u64, u64)]| -> Vec<SegmentName> {
            pairs.iter().map(|&(s, i)| SegmentName::new(s, i)).collect()
        };
        let n = names(&[(0, 0), (1, 0x1000), (2, 0x2000)]);
        assert_eq!(search_index(&n, 0x1000), Some(1));
        assert_eq!(search_index(&n, 0x1fff), Some(1));
        let n = names(&[(1, 0x4000), (2, 0x3000), (3, 0x5000)]);
        assert_eq!(search_index(&n, 0x4000), Some(1));
        let n = names(&[(1, 0x2000), (2, 0x3000), (3, 0x5000)]);
        assert_eq!(search_index(&n, 0x1000), None);
    }

    #[test]
    fn sequence_numbers_must_increase_by_one() {
        let ok = [SegmentName::new(3, 0), SegmentName::new(4, 9)];
        assert!(check_contiguous(&ok).is_ok());
        let gap = [SegmentName::new(0, 0), SegmentName::new(2, 9)];
        assert!(matches!(
            check_contiguous(&gap),
            Err(Error::SegmentGap { .. })
        ));
    }
}
