//! Which directory holds the log, and from which snapshot it can be read.

use std::path::{Path, PathBuf};

use raftwal::{SegmentName, WalOptions, WalSnapshot};

use crate::failure::{Failure, FAILED};

/// A WAL directory found from the command line.
#[derive(Debug)]
pub struct LogDir {
    /// The directory holding the `.wal` segments.
    pub path: PathBuf,
    /// Its segments, in order (never empty).
    pub segments: Vec<SegmentName>,
}

/// Where reading starts.
#[derive(Debug)]
pub struct Start {
    /// The snapshot marker the log is opened at.
    pub snapshot: WalSnapshot,
    /// Whether the first segment is gone (etcd purges old segments), so reading starts at a
    /// later snapshot marker rather than at the beginning.
    pub purged: bool,
}

impl LogDir {
    /// `dir` itself, or `dir/member/wal` when `dir` is an etcd data dir.
    pub fn find(dir: &Path) -> Result<LogDir, Failure> {
        let etcd_wal = dir.join("member").join("wal");
        let path = if etcd_wal.is_dir() {
            etcd_wal
        } else if dir.is_dir() {
            dir.to_path_buf()
        } else {
            return Err(Failure::new(
                FAILED,
                format!("{} is not a directory", dir.display()),
            ));
        };
        let segments = WalOptions::new().segments(&path)?;
        if segments.is_empty() {
            return Err(Failure::new(FAILED, no_segments(&path)));
        }
        Ok(LogDir { path, segments })
    }

    /// The snapshot to read from: the beginning when the first segment is there; otherwise the
    /// first snapshot marker that is valid (at or below the commit index) and that the remaining
    /// segments can be read from, which shows as much of the log as is left.
    pub fn start(&self) -> Result<Start, Failure> {
        let first = &self.segments[0];
        if first.index == 0 {
            return Ok(Start {
                snapshot: WalSnapshot::default(),
                purged: false,
            });
        }
        let snapshot = WalOptions::new()
            .valid_snapshot_entries(&self.path)?
            .into_iter()
            .find(|s| s.index >= first.index)
            .ok_or_else(|| {
                Failure::new(
                    FAILED,
                    format!(
                        "the log's first segment was purged and the remaining ones, from {}, \
                         hold no committed snapshot marker to start reading from",
                        first.file_name
                    ),
                )
            })?;
        Ok(Start {
            snapshot,
            purged: true,
        })
    }
}

/// Says that `path` holds no segments, and where they may be instead: an etcd member directory
/// (or a raftwal storage directory) keeps them in `wal/`.
fn no_segments(path: &Path) -> String {
    let mut text = format!(
        "{} holds no WAL segments (%016x-%016x.wal files)",
        path.display()
    );
    let wal = path.join("wal");
    if WalOptions::new()
        .segments(&wal)
        .is_ok_and(|s| !s.is_empty())
    {
        let data_dir = match path.file_name() {
            Some(name) if name == "member" => path.parent().map(Path::to_path_buf),
            _ => None,
        };
        text += &match data_dir {
            Some(data_dir) => format!(
                "; it looks like an etcd member directory: give the data dir ({}) or {}",
                data_dir.display(),
                wal.display()
            ),
            None => format!("; its segments are in {}", wal.display()),
        };
    }
    text
}

/// A segment path's file name, for output that names segments the way `ls` shows them.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
