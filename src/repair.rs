//! Repair: cutting a torn tail off the last segment after a crash mid-write. Nothing in a torn
//! frame was acknowledged (it was never synced whole), so removing it loses nothing; any other
//! damage is refused.

use std::path::{Path, PathBuf};

use crate::decoder::{Decoder, End, SegmentSource, Step};
use crate::error::{Error, IoContext as _, Result};
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
    let mut decoder = Decoder::new(
        vec![SegmentSource {
            name: last.file_name.clone(),
            path: path.clone(),
            file: file.clone(),
        }],
        options.replay_read_size,
    )?;
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
    let offset = decoder.last_valid_offset();
    let old_len = file
        .len()
        .ctx(|| format!("reading the size of {}", path.display()))?;

    // Keep the evidence first, durably, then cut: a crash in between leaves the segment as it
    // was (still torn, still repairable) plus a complete copy.
    let mut broken_name = last.file_name.clone();
    broken_name.push_str(".broken");
    let broken_copy = dir.join(broken_name);
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
    let _ = file.unlock();
    observe::repaired(&path, offset, old_len, &broken_copy);
    Ok(Some(Repaired {
        file: path,
        offset,
        old_len,
        broken_copy,
    }))
}
