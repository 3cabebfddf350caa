//! Repair: cutting a torn tail off the last segment after a crash mid-write. Nothing in a torn
//! frame was acknowledged (it was never synced whole), so removing it loses nothing; any other
//! damage is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::decoder::{Decoder, End, SegmentSource, Step};
use crate::error::{Error, IoContext as _, Result};
use crate::fs::WalFile;
use crate::observe;
use crate::segment;
use crate::wal::Options;

/// What [`repair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// The segment whose tail was cut off.
    pub file: PathBuf,
    /// Its new length: the end of its last valid frame.
    pub offset: u64,
    /// Its size before the repair.
    pub old_len: u64,
    /// The copy of the segment as it was, `<file>.broken`.
    pub broken_copy: PathBuf,
}

/// Repairs a torn tail of the last segment in `dir`: keeps a copy as `<file>.broken`, truncates
/// the segment at its last valid frame and syncs. Returns `Ok(None)` when the log ends cleanly.
///
/// Damage that is not a torn tail of the last segment is [`Error::NotRepairable`].
pub fn repair(dir: impl AsRef<Path>) -> Result<Option<Repaired>> {
    repair_with(dir, Options::default())
}

/// [`repair`] with explicit options.
pub fn repair_with(dir: impl AsRef<Path>, options: Options) -> Result<Option<Repaired>> {
    let dir = dir.as_ref();
    let last = LastSegment::lock(dir, &options)?;
    let mut decoder = last.decoder(&options)?;
    loop {
        match decoder.next_record() {
            Ok(Step::Record(_)) => continue,
            Ok(Step::End(End::Clean)) => return Ok(None),
            Ok(Step::End(End::Torn)) => break,
            Err(e @ (Error::Io { .. } | Error::DiskFull { .. })) => return Err(e),
            Err(e) => {
                observe::repair_refused(dir, &e);
                return Err(Error::NotRepairable {
                    source: Box::new(e),
                });
            }
        }
    }
    last.cut_at(dir, &options, decoder.last_valid_offset(), Cut::TornTail)
        .map(Some)
}

/// Cuts the last segment of `dir` at its first damaged frame, discarding everything after it,
/// for damage that [`repair`] refuses because it may hide acknowledged data (a zeroed length
/// word in front of an intact record, see `docs/DURABILITY.md`): the operator decides that what
/// follows is lost. `offset` confirms the decision: it must be where the damage starts, the
/// offset of the [`Error::Corrupt`] or [`Error::CrcMismatch`] in that segment (or of a torn
/// tail); anything else is [`Error::NoDamageThere`] and changes nothing. The segment is first
/// kept as `<file>.broken`.
pub fn repair_at(dir: impl AsRef<Path>, offset: u64) -> Result<Repaired> {
    repair_at_with(dir, offset, Options::default())
}

/// [`repair_at`] with explicit options.
pub fn repair_at_with(dir: impl AsRef<Path>, offset: u64, options: Options) -> Result<Repaired> {
    let dir = dir.as_ref();
    let last = LastSegment::lock(dir, &options)?;
    let mut decoder = last.decoder(&options)?;
    let damage = loop {
        match decoder.next_record() {
            Ok(Step::Record(_)) => continue,
            Ok(Step::End(End::Clean)) => break None,
            Ok(Step::End(End::Torn)) => break Some(decoder.last_valid_offset()),
            Err(e @ (Error::Io { .. } | Error::DiskFull { .. })) => return Err(e),
            Err(_) => break Some(decoder.last_valid_offset()),
        }
    };
    if damage != Some(offset) {
        return Err(Error::NoDamageThere {
            file: last.path,
            offset,
            damage,
        });
    }
    last.cut_at(dir, &options, offset, Cut::Forced)
}

/// Why a segment is cut.
enum Cut {
    /// A torn write: nothing cut was acknowledged.
    TornTail,
    /// The operator's decision ([`repair_at`]): what was cut may have been acknowledged.
    Forced,
}

/// The last segment of a log, open for writing and locked against writers.
struct LastSegment {
    name: String,
    path: PathBuf,
    file: Arc<dyn WalFile>,
}

impl LastSegment {
    fn lock(dir: &Path, options: &Options) -> Result<LastSegment> {
        let fs = options.file_system.as_ref();
        let names = segment::list_segments(fs, dir)?;
        let last = names.last().ok_or_else(|| Error::SegmentNotFound {
            dir: dir.to_path_buf(),
            index: 0,
        })?;
        let path = dir.join(&last.file_name);
        let file = fs
            .open_file(&path, true)
            .ctx(|| format!("opening {}", path.display()))?;
        // A writer holding the log would keep appending over what we cut: refuse instead.
        if !file
            .try_lock()
            .ctx(|| format!("locking {}", path.display()))?
        {
            return Err(Error::Locked { file: path });
        }
        Ok(LastSegment {
            name: last.file_name.clone(),
            path,
            file,
        })
    }

    fn decoder(&self, options: &Options) -> Result<Decoder> {
        Decoder::new(
            vec![SegmentSource {
                name: self.name.clone(),
                path: self.path.clone(),
                file: self.file.clone(),
            }],
            options.replay_read_size,
        )
    }

    /// Keeps the evidence first, durably, then cuts: a crash in between leaves the segment as
    /// it was (still damaged, still repairable) plus a complete copy.
    fn cut_at(self, dir: &Path, options: &Options, offset: u64, cut: Cut) -> Result<Repaired> {
        let fs = options.file_system.as_ref();
        let (path, file) = (&self.path, &self.file);
        let old_len = file
            .len()
            .ctx(|| format!("reading the size of {}", path.display()))?;
        let broken_copy = dir.join(format!("{}.broken", self.name));
        let copy = fs
            .create_file(&broken_copy)
            .ctx(|| format!("creating {}", broken_copy.display()))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0u64;
        while pos < old_len {
            let n = file
                .read_at(&mut buf, pos)
                .ctx(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            copy.write_all_at(&buf[..n], pos)
                .ctx(|| format!("writing {}", broken_copy.display()))?;
            pos += n as u64;
        }
        copy.sync_all()
            .ctx(|| format!("syncing {}", broken_copy.display()))?;
        fs.sync_dir(dir)
            .ctx(|| format!("syncing {}", dir.display()))?;

        file.set_len(offset)
            .ctx(|| format!("truncating {}", path.display()))?;
        file.sync_all()
            .ctx(|| format!("syncing {}", path.display()))?;
        let forced = matches!(cut, Cut::Forced);
        observe::repaired(path, offset, old_len, &broken_copy, forced);
        let _ = file.unlock();
        Ok(Repaired {
            file: self.path,
            offset,
            old_len,
            broken_copy,
        })
    }
}
