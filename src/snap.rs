//! Snapshot files: etcd's snapshotter.
//!
//! A raft [`Snapshot`] is stored as `%016x-%016x.snap` (term, index) in a directory of its own.
//! The file is etcd's `snappb.Snapshot { crc = 1, data = 2 }` protobuf, where `data` is the raft
//! snapshot's bytes and `crc` their CRC-32C, so etcd reads these files and raftwal reads etcd's.
//! The message is declared by hand below (two fields) rather than in `proto/walpb.proto`, which
//! holds the WAL's own records.
//!
//! Writes are atomic: a file appears under its name whole and durable, or not at all. Loading
//! takes the newest file that decodes and passes its CRC; a damaged one is renamed aside to
//! `<name>.broken` and the previous one is tried.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use protobuf::Message as _;
use raft_proto::eraftpb::Snapshot;

use crate::error::{Error, IoContext as _, Result};
use crate::fs::{FileSystem, RealFs};
use crate::record::WalSnapshot;

/// The file suffix of snapshot files.
const SNAP_SUFFIX: &str = ".snap";
/// Appended to a snapshot file's name while it is being written.
const TMP_SUFFIX: &str = ".tmp";
/// Appended to the name of a snapshot file that failed to load.
const BROKEN_SUFFIX: &str = ".broken";

/// etcd's `snappb.Snapshot`, the envelope of a snapshot file.
///
/// proto2 with explicit presence: `crc` is written even when 0, as etcd's gogoproto encoder does.
#[derive(Clone, PartialEq, prost::Message)]
struct SnapFile {
    #[prost(uint32, optional, tag = "1")]
    crc: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    data: Option<Vec<u8>>,
}

/// A parsed snapshot file name: `%016x-%016x.snap`, term then index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SnapName {
    /// The term of the last entry the snapshot covers.
    pub term: u64,
    /// The index of the last entry the snapshot covers.
    pub index: u64,
    /// The file name.
    pub file_name: String,
}

impl SnapName {
    /// The name of the snapshot of `term` and `index`.
    pub fn new(term: u64, index: u64) -> SnapName {
        SnapName {
            term,
            index,
            file_name: format!("{term:016x}-{index:016x}{SNAP_SUFFIX}"),
        }
    }

    /// Parses a snapshot file name; temporary, broken and other files are `None`.
    pub fn parse(file_name: &str) -> Option<SnapName> {
        let stem = file_name.strip_suffix(SNAP_SUFFIX)?;
        let (term, index) = stem.split_once('-')?;
        let hex = |s: &str| {
            (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(s, 16).ok())
                .flatten()
        };
        Some(SnapName {
            term: hex(term)?,
            index: hex(index)?,
            file_name: file_name.to_string(),
        })
    }
}

/// Encodes `snapshot` as the bytes of its snapshot file.
pub(crate) fn encode_snap_file(snapshot: &Snapshot) -> Result<Vec<u8>> {
    let data = snapshot.write_to_bytes().map_err(|e| Error::Encode {
        reason: e.to_string(),
    })?;
    Ok(prost::Message::encode_to_vec(&SnapFile {
        crc: Some(crc32c::crc32c(&data)),
        data: Some(data),
    }))
}

/// Decodes the bytes of the snapshot file `path`: [`Error::CrcMismatch`] or [`Error::Corrupt`]
/// when they are damaged.
pub(crate) fn decode_snap_file(path: &Path, bytes: &[u8]) -> Result<Snapshot> {
    let corrupt = |reason: String| Error::Corrupt {
        file: path.to_path_buf(),
        offset: 0,
        reason,
    };
    if bytes.is_empty() {
        return Err(corrupt("empty snapshot file".into()));
    }
    let envelope: SnapFile = prost::Message::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
    let data = envelope.data.unwrap_or_default();
    if crc32c::crc32c(&data) != envelope.crc.unwrap_or(0) {
        return Err(Error::CrcMismatch {
            file: path.to_path_buf(),
            offset: 0,
        });
    }
    crate::record::decode_message::<Snapshot>(&data)
        .map_err(|e| corrupt(format!("raft snapshot: {e}")))
}

/// Saves and loads raft snapshots in one directory (etcd's `snap.Snapshotter`).
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
}

impl Snapshotter {
    /// A snapshotter for `dir` on the real file system. The directory must exist.
    pub fn new(dir: impl AsRef<Path>) -> Snapshotter {
        Snapshotter::with_file_system(dir, Arc::new(RealFs))
    }

    /// A snapshotter for `dir` on `fs`.
    pub fn with_file_system(dir: impl AsRef<Path>, fs: Arc<dyn FileSystem>) -> Snapshotter {
        Snapshotter {
            dir: dir.as_ref().to_path_buf(),
            fs,
        }
    }

    /// The directory of the snapshot files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `snapshot` to `<term>-<index>.snap`, durable when it returns. An empty snapshot
    /// (index 0) is not written.
    pub fn save_snap(&self, snapshot: &Snapshot) -> Result<()> {
        let meta = snapshot.get_metadata();
        if meta.index == 0 {
            return Ok(());
        }
        let bytes = encode_snap_file(snapshot)?;
        let name = SnapName::new(meta.term, meta.index);
        let path = self.dir.join(&name.file_name);
        let tmp = self.dir.join(format!("{}{TMP_SUFFIX}", name.file_name));
        let result = self.write_atomically(&tmp, &path, &bytes);
        if result.is_err() {
            // Best effort: a stale temporary file is ignored by loads and removed by purges.
            let _ = self.fs.remove_file(&tmp);
        }
        result
    }

    /// Durable in order: the bytes under a temporary name, the rename, the directory entry.
    /// A crash leaves either the whole file under its name or none (a `.tmp` at most).
    fn write_atomically(&self, tmp: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
        let file = self
            .fs
            .create_file(tmp)
            .ctx(|| format!("creating {}", tmp.display()))?;
        file.write_all_at(bytes, 0)
            .ctx(|| format!("writing {}", tmp.display()))?;
        file.sync_all()
            .ctx(|| format!("syncing {}", tmp.display()))?;
        drop(file);
        self.fs
            .rename(tmp, path)
            .ctx(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        self.fs
            .sync_dir(&self.dir)
            .ctx(|| format!("syncing {}", self.dir.display()))
    }

    /// The snapshot files, newest (highest term, then index) first.
    pub fn snap_names(&self) -> Result<Vec<SnapName>> {
        let mut names: Vec<SnapName> = self
            .fs
            .list_dir(&self.dir)
            .ctx(|| format!("listing {}", self.dir.display()))?
            .iter()
            .filter_map(|name| SnapName::parse(name))
            .collect();
        names.sort_by(|a, b| b.cmp(a));
        Ok(names)
    }

    /// Reads and checks one snapshot file. Damage is [`Error::CrcMismatch`] or
    /// [`Error::Corrupt`], also when the snapshot inside is not the one the name says.
    pub fn read(&self, name: &SnapName) -> Result<Snapshot> {
        let path = self.dir.join(&name.file_name);
        let file = self
            .fs
            .open_file(&path, false)
            .ctx(|| format!("opening {}", path.display()))?;
        let len = file
            .len()
            .ctx(|| format!("reading the size of {}", path.display()))?;
        let mut bytes = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
        let mut read = 0;
        while read < bytes.len() {
            let n = file
                .read_at(&mut bytes[read..], read as u64)
                .ctx(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            read += n;
        }
        bytes.truncate(read);
        let snapshot = decode_snap_file(&path, &bytes)?;
        let meta = snapshot.get_metadata();
        if (meta.term, meta.index) != (name.term, name.index) {
            return Err(Error::Corrupt {
                file: path,
                offset: 0,
                reason: format!(
                    "holds the snapshot of term {} index {}",
                    meta.term, meta.index
                ),
            });
        }
        Ok(snapshot)
    }

    /// The newest snapshot that loads, or `None` when no file does. Damaged files met on the way
    /// are renamed to `<name>.broken`; an I/O error is returned, not taken for damage.
    pub fn load(&self) -> Result<Option<Snapshot>> {
        self.load_matching(|_| true)
    }

    /// The newest snapshot that loads and that the WAL has a marker for (same index and term),
    /// or `None`. A file without a marker is skipped, not renamed: it was written just before a
    /// crash that kept its marker out of the WAL, and is not part of the node's state.
    pub fn load_newest_available(&self, wal_snapshots: &[WalSnapshot]) -> Result<Option<Snapshot>> {
        self.load_matching(|name| {
            wal_snapshots
                .iter()
                .any(|s| s.index == name.index && s.term == name.term)
        })
    }

    fn load_matching(&self, wanted: impl Fn(&SnapName) -> bool) -> Result<Option<Snapshot>> {
        for name in self.snap_names()? {
            if !wanted(&name) {
                continue;
            }
            match self.read(&name) {
                Ok(snapshot) => return Ok(Some(snapshot)),
                Err(Error::CrcMismatch { .. } | Error::Corrupt { .. }) => {
                    self.set_aside(&name)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Renames a damaged file to `<name>.broken`, keeping it for inspection.
    fn set_aside(&self, name: &SnapName) -> Result<()> {
        let from = self.dir.join(&name.file_name);
        let to = self.dir.join(format!("{}{BROKEN_SUFFIX}", name.file_name));
        self.fs
            .rename(&from, &to)
            .ctx(|| format!("renaming {} to {}", from.display(), to.display()))?;
        self.fs
            .sync_dir(&self.dir)
            .ctx(|| format!("syncing {}", self.dir.display()))
    }

    /// Deletes the snapshot files of indexes above `index`; returns the names deleted.
    pub fn remove_newer_than(&self, index: u64) -> Result<Vec<String>> {
        let newer: Vec<String> = self
            .snap_names()?
            .into_iter()
            .filter(|name| name.index > index)
            .map(|name| name.file_name)
            .collect();
        self.remove(&newer)?;
        Ok(newer)
    }

    /// Removes `names` from the directory, then syncs it once.
    fn remove(&self, names: &[String]) -> Result<()> {
        for name in names {
            let path = self.dir.join(name);
            self.fs
                .remove_file(&path)
                .ctx(|| format!("removing {}", path.display()))?;
        }
        if !names.is_empty() {
            self.fs
                .sync_dir(&self.dir)
                .ctx(|| format!("syncing {}", self.dir.display()))?;
        }
        Ok(())
    }

    /// Deletes all snapshot files but the newest `keep`, and leftover temporary files. Returns
    /// the names deleted.
    pub fn purge(&self, keep: usize) -> Result<Vec<String>> {
        let mut deleted: Vec<String> = self
            .snap_names()?
            .into_iter()
            .skip(keep)
            .map(|name| name.file_name)
            .collect();
        let leftovers = self
            .fs
            .list_dir(&self.dir)
            .ctx(|| format!("listing {}", self.dir.display()))?
            .into_iter()
            .filter(|name| name.ends_with(&format!("{SNAP_SUFFIX}{TMP_SUFFIX}")));
        deleted.extend(leftovers);
        self.remove(&deleted)?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_other_files() {
        let name = SnapName::new(2, 0xc9);
        assert_eq!(name.file_name, "0000000000000002-00000000000000c9.snap");
        assert_eq!(SnapName::parse(&name.file_name), Some(name));
        assert_eq!(
            SnapName::parse("0000000000000002-00000000000000c9.snap.broken"),
            None
        );
        assert_eq!(
            SnapName::parse("0000000000000002-00000000000000c9.snap.tmp"),
            None
        );
        assert_eq!(
            SnapName::parse("0000000000000000-0000000000000000.wal"),
            None
        );
    }

    #[test]
    fn a_zero_crc_is_still_written() {
        // An empty raft snapshot encodes to no bytes, whose CRC-32C is 0; the field is there.
        let bytes = encode_snap_file(&Snapshot::default()).unwrap();
        assert_eq!(bytes, [0x08, 0x00, 0x12, 0x00]);
    }
}
