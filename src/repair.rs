//! Repair: cutting a torn tail off the last segment after a crash mid-write, and the operator's
//! forced cut. Both read the log through the same segment directory and damage classifier as
//! every other reader, so repair cuts exactly what `verify` calls torn and refuses everything
//! it calls corrupt.

use std::path::{Path, PathBuf};

use crate::decoder::{Decoder, EntryRun, Verdict};
use crate::error::{Error, IoContext as _, Result};
use crate::observe;
use crate::options::WalOptions;
use crate::segment::{Access, OpenSegment, SegmentDir};

/// What [`WalOptions::repair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// The segment whose tail was cut off.
    pub file: PathBuf,
    /// Its new length: the end of its last valid frame (0 when it was removed).
    pub offset: u64,
    /// Its size before the repair.
    pub old_len: u64,
    /// The copy of the segment as it was, `<file>.broken` (`<file>.broken.N` when an earlier
    /// repair's copy has that name).
    pub broken_copy: PathBuf,
    /// Whether the segment was removed whole (a forced cut inside its header) rather than
    /// truncated.
    pub removed: bool,
}

/// [`WalOptions::repair`].
pub(crate) fn repair(dir: &Path, options: &WalOptions) -> Result<Option<Repaired>> {
    let (last, verdict) = read_locked(dir, options)?;
    match verdict {
        Verdict::Sound => Ok(None),
        Verdict::Torn(torn) => cut(dir, options, last, torn.offset, Cut::TornTail).map(Some),
        Verdict::Corrupt(e) => {
            observe::repair_refused(dir, &e);
            Err(Error::NotRepairable {
                source: Box::new(e),
            })
        }
    }
}

/// What [`WalOptions::repair_at`] would cut: the last segment's damage (torn or corrupt), found by reading
/// every segment and changing nothing. Its dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForcedCut {
    /// The last segment.
    pub file: PathBuf,
    /// Where its damage starts: the offset [`WalOptions::repair_at`] must be given.
    pub offset: u64,
    /// The segment's current length.
    pub len: u64,
    /// Entries that still parse after `offset` (CRC unchecked): what the cut would lose.
    pub entries_after: Option<EntryRun>,
    /// Whether the damage is inside the segment's header, so the cut removes the whole
    /// segment (kept as `<file>.broken`) and the log ends with the segment before it.
    pub removes_segment: bool,
}

/// [`WalOptions::plan_forced_cut`].
pub(crate) fn plan_forced_cut(dir: &Path, options: &WalOptions) -> Result<Option<ForcedCut>> {
    let segments =
        SegmentDir::new(options.file_system.clone(), dir).open_whole_log(Access::Read)?;
    forced_cut_of(segments, options)
}

/// [`WalOptions::repair_at`].
pub(crate) fn repair_at(dir: &Path, offset: u64, options: &WalOptions) -> Result<Repaired> {
    let (segments, last) = open_locked(dir, options)?;
    let plan = forced_cut_of(segments, options)?;
    match plan {
        Some(plan) if plan.offset == offset => {
            let how = if plan.removes_segment {
                Cut::RemoveSegment
            } else {
                Cut::Forced
            };
            cut(dir, options, last, offset, how)
        }
        _ => Err(Error::NoDamageThere {
            file: last.path,
            offset,
            damage: plan.map(|p| p.offset),
        }),
    }
}

/// The damage the last of `segments` ends in, torn or corrupt, with where it starts; `None`
/// when the log is sound. Damage before the last segment is [`Error::NotRepairable`]: no cut of
/// the tail would make such a log readable, and neither is damage in the header of the only
/// segment left (the first, or the one a purge left): removing it would remove the log, and an
/// application that creates a missing log would start over without its term and vote.
fn forced_cut_of(segments: Vec<OpenSegment>, options: &WalOptions) -> Result<Option<ForcedCut>> {
    let last = segments.last().map(|s| s.path.clone());
    let only_segment = segments.len() == 1;
    let mut decoder = Decoder::new(segments, options.replay_read_size)?;
    // A torn verdict already describes its tail; corruption in the last segment is described
    // from where the decoder stopped, which is where the error points.
    let (tail, removes_segment) = match decoder.verdict()? {
        Verdict::Sound => return Ok(None),
        Verdict::Torn(torn) => (torn, false),
        Verdict::Corrupt(e) => match (e.position(), &last) {
            (Some((file, _)), Some(last)) if file == last => {
                if decoder.in_header() && only_segment {
                    return Err(Error::NotRepairable {
                        source: Box::new(e),
                    });
                }
                (decoder.torn_tail()?, decoder.in_header())
            }
            _ => {
                return Err(Error::NotRepairable {
                    source: Box::new(e),
                })
            }
        },
    };
    Ok(Some(ForcedCut {
        file: tail.file,
        offset: tail.offset,
        len: tail.len,
        entries_after: tail.entries_after,
        removes_segment,
    }))
}

/// Every segment of the log in `dir`, the last one locked against writers (a writer would keep
/// appending over what is cut), and that last one.
fn open_locked(dir: &Path, options: &WalOptions) -> Result<(Vec<OpenSegment>, OpenSegment)> {
    let segments =
        SegmentDir::new(options.file_system.clone(), dir).open_whole_log(Access::Write)?;
    let last = segments
        .last()
        .cloned()
        .ok_or_else(|| Error::SegmentNotFound {
            dir: dir.to_path_buf(),
            index: 0,
        })?;
    Ok((segments, last))
}

/// Reads the whole log in `dir` with its last segment locked, and classifies it.
fn read_locked(dir: &Path, options: &WalOptions) -> Result<(OpenSegment, Verdict)> {
    let (segments, last) = open_locked(dir, options)?;
    let verdict = Decoder::new(segments, options.replay_read_size)?.verdict()?;
    Ok((last, verdict))
}

/// Why a segment is cut.
enum Cut {
    /// A torn write: under the crash model nothing cut was acknowledged.
    TornTail,
    /// The operator's decision ([`WalOptions::repair_at`]): what was cut may have been acknowledged.
    Forced,
    /// The operator's decision on damage inside the last segment's header: the segment goes.
    RemoveSegment,
}

/// Keeps the evidence first, durably, then cuts: a crash in between leaves the segment as it was
/// (still damaged, still repairable) plus a complete copy. An offset inside the segment's header
/// (a forced cut of header damage) removes the segment instead: a segment without its header
/// cannot be read, and the segment before it ends cleanly, as every cut leaves it.
fn cut(
    dir: &Path,
    options: &WalOptions,
    last: OpenSegment,
    offset: u64,
    cut: Cut,
) -> Result<Repaired> {
    let fs = options.file_system.as_ref();
    let (path, file) = (&last.path, &last.file);
    let old_len = file
        .len()
        .ctx(|| format!("reading the size of {}", path.display()))?;
    let broken_copy = unused_broken_name(fs, dir, &last.name.file_name)?;
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

    let whole_segment = matches!(cut, Cut::RemoveSegment);
    if whole_segment {
        fs.remove_file(path)
            .ctx(|| format!("removing {}", path.display()))?;
        fs.sync_dir(dir)
            .ctx(|| format!("syncing {}", dir.display()))?;
    } else {
        file.set_len(offset)
            .ctx(|| format!("truncating {}", path.display()))?;
        file.sync_all()
            .ctx(|| format!("syncing {}", path.display()))?;
    }
    let forced = !matches!(cut, Cut::TornTail);
    let new_len = if whole_segment { 0 } else { offset };
    observe::repaired(path, new_len, old_len, &broken_copy, forced);
    let _ = file.unlock();
    Ok(Repaired {
        file: last.path,
        offset: new_len,
        old_len,
        broken_copy,
        removed: whole_segment,
    })
}

/// `<file>.broken`, or `<file>.broken.N` for the first N not taken: an earlier repair's evidence
/// (of a segment a writer has since re-created under the same name) is never overwritten.
fn unused_broken_name(
    fs: &dyn crate::fs::FileSystem,
    dir: &Path,
    file_name: &str,
) -> Result<PathBuf> {
    let mut candidate = dir.join(format!("{file_name}.broken"));
    for n in 1.. {
        if !fs
            .exists(&candidate)
            .ctx(|| format!("checking {}", candidate.display()))?
        {
            break;
        }
        candidate = dir.join(format!("{file_name}.broken.{n}"));
    }
    Ok(candidate)
}
