//! Segment files: their names, which ones a read needs, and the pipeline that prepares the next
//! one (created, locked and preallocated ahead of time) so a cut never waits on allocation.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{Error, IoContext as _, Result};
use crate::fs::{FileSystem, WalFile};

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

/// The segments in `dir`, ordered by sequence number.
pub(crate) fn list_segments(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<SegmentName>> {
    let mut names: Vec<SegmentName> = fs
        .list_dir(dir)
        .ctx(|| format!("listing {}", dir.display()))?
        .iter()
        .filter_map(|name| SegmentName::parse(name))
        .collect();
    names.sort();
    Ok(names)
}

/// Position of the last segment whose first index is at or below `index`: the one holding the
/// entry right after a snapshot at `index`.
pub(crate) fn search_index(names: &[SegmentName], index: u64) -> Option<usize> {
    names.iter().rposition(|name| name.index <= index)
}

/// Checks that sequence numbers increase by exactly one.
pub(crate) fn check_contiguous(names: &[SegmentName]) -> Result<()> {
    for pair in names.windows(2) {
        if pair[1].seq != pair[0].seq + 1 {
            return Err(Error::SegmentGap {
                before: pair[0].file_name.clone(),
                after: pair[1].file_name.clone(),
            });
        }
    }
    Ok(())
}

/// A segment file prepared for a cut: created under a temporary name, locked and preallocated.
#[derive(Debug)]
pub(crate) struct PreparedFile {
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn WalFile>,
}

/// Creates `<dir>/<n % 2>.tmp`, locks it and preallocates `size` bytes.
fn prepare(fs: &dyn FileSystem, dir: &Path, count: u64, size: u64) -> Result<PreparedFile> {
    let path = dir.join(format!("{}.tmp", count % 2));
    let file = fs
        .create_file(&path)
        .ctx(|| format!("creating {}", path.display()))?;
    if !file
        .try_lock()
        .ctx(|| format!("locking {}", path.display()))?
    {
        return Err(Error::Locked { file: path });
    }
    file.allocate(size)
        .ctx(|| format!("preallocating {}", path.display()))?;
    Ok(PreparedFile { path, file })
}

/// Hands out prepared segment files, one at a time, for cuts.
#[derive(Debug)]
pub(crate) enum FilePipeline {
    /// A thread keeps one file ready ahead of the next cut.
    Background {
        files: Option<Receiver<Result<PreparedFile>>>,
        thread: Option<JoinHandle<()>>,
    },
    /// Files are prepared when a cut asks (deterministic order of I/O calls, for fault tests).
    Inline {
        fs: Arc<dyn FileSystem>,
        dir: PathBuf,
        size: u64,
        count: u64,
    },
}

impl FilePipeline {
    /// Starts preparing files of `size` bytes in `dir`, in a background thread when `background`.
    pub(crate) fn start(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        size: u64,
        background: bool,
    ) -> FilePipeline {
        let dir = dir.to_path_buf();
        if !background {
            return FilePipeline::Inline {
                fs,
                dir,
                size,
                count: 0,
            };
        }
        // A rendezvous channel: the thread prepares exactly one file ahead and waits for a cut
        // to take it.
        let (tx, rx) = mpsc::sync_channel::<Result<PreparedFile>>(0);
        let (thread_fs, thread_dir) = (fs.clone(), dir.clone());
        let thread = std::thread::Builder::new()
            .name("raftwal-pipeline".into())
            .spawn(move || {
                let (fs, dir) = (thread_fs, thread_dir);
                for count in 0.. {
                    let prepared = prepare(fs.as_ref(), &dir, count, size);
                    let failed = prepared.is_err();
                    if let Err(mpsc::SendError(unused)) = tx.send(prepared) {
                        // The log closed: remove the file nobody will take.
                        if let Ok(file) = unused {
                            let _ = file.file.unlock();
                            let _ = fs.remove_file(&file.path);
                        }
                        return;
                    }
                    if failed {
                        return;
                    }
                }
            });
        match thread {
            Ok(thread) => FilePipeline::Background {
                files: Some(rx),
                thread: Some(thread),
            },
            // No thread to be had: prepare files when cuts ask instead.
            Err(_) => FilePipeline::Inline {
                fs,
                dir,
                size,
                count: 0,
            },
        }
    }

    /// The next prepared file.
    pub(crate) fn take(&mut self) -> Result<PreparedFile> {
        match self {
            FilePipeline::Background { files, .. } => files
                .as_ref()
                .and_then(|rx| rx.recv().ok())
                .unwrap_or_else(|| {
                    Err(Error::Poisoned {
                        reason: "the segment pipeline stopped after an earlier failure".into(),
                    })
                }),
            FilePipeline::Inline {
                fs,
                dir,
                size,
                count,
            } => {
                let prepared = prepare(fs.as_ref(), dir, *count, *size);
                *count += 1;
                prepared
            }
        }
    }

    /// Stops preparing files and removes the one prepared but not taken.
    pub(crate) fn stop(&mut self) {
        if let FilePipeline::Background { files, thread } = self {
            drop(files.take());
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for FilePipeline {
    fn drop(&mut self) {
        self.stop();
    }
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
