//! `raftwal repair`: cuts a torn tail off the last segment (keeping `<file>.broken`), and
//! refuses anything else. It first finds the tail with a read-only scan of every segment, so
//! `--dry-run` says exactly what a repair would cut, and damage before the tail is refused
//! before anything is touched.
//!
//! `--truncate-at OFFSET` is the operator's override for damage repair refuses because it may
//! hide acknowledged data: it cuts there anyway, once the offset is shown to be a frame end.

use std::io::{self, Write};
use std::path::Path;

use raftwal::inspect::find_torn_tail;
use raftwal::Error;

use crate::failure::{Failure, CORRUPT, FAILED};
use crate::log_dir::LogDir;
use crate::Outcome;

/// Runs `raftwal repair`.
pub fn run(dir: &Path, dry_run: bool) -> Outcome {
    let log = LogDir::find(dir)?;
    let mut out = io::stdout();
    let Some(torn) = find_torn_tail(&log.path).map_err(|e| refusal(e, &log.path))? else {
        writeln!(
            out,
            "nothing to repair: {} ends cleanly",
            log.path.display()
        )?;
        return Ok(());
    };
    writeln!(
        out,
        "torn tail: {} from offset {} to its end at {}: {} bytes to cut",
        torn.file.display(),
        torn.offset,
        torn.len,
        torn.len.saturating_sub(torn.offset)
    )?;
    if dry_run {
        writeln!(
            out,
            "dry run: nothing changed; `raftwal repair {}` would truncate the file at offset {} \
             and keep a copy as {}.broken",
            dir.display(),
            torn.offset,
            torn.file.display()
        )?;
        return Ok(());
    }
    let bar = crate::progress::spinner("repair: scanning the last segment");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let repaired = raftwal::repair(&log.path);
    bar.finish_and_clear();
    match repaired.map_err(|e| refusal(e, &log.path))? {
        Some(repaired) => writeln!(
            out,
            "repaired: truncated {} at offset {} (cut {} bytes); the original is kept as {}",
            repaired.file.display(),
            repaired.offset,
            repaired.old_len.saturating_sub(repaired.offset),
            repaired.broken_copy.display()
        )?,
        // Someone else repaired it in between.
        None => writeln!(
            out,
            "nothing to repair: {} ends cleanly",
            log.path.display()
        )?,
    }
    Ok(())
}

/// Runs `raftwal repair --truncate-at OFFSET`.
pub fn truncate_at(dir: &Path, offset: u64) -> Outcome {
    let log = LogDir::find(dir)?;
    let repaired = raftwal::repair_at(&log.path, offset).map_err(|e| refusal(e, &log.path))?;
    writeln!(
        io::stdout(),
        "forced cut: truncated {} at offset {} (cut {} bytes, every record after the offset \
         included); the original is kept as {}",
        repaired.file.display(),
        repaired.offset,
        repaired.old_len.saturating_sub(repaired.offset),
        repaired.broken_copy.display()
    )?;
    Ok(())
}

/// Whether `file` is the last segment of the log in `dir` (the only one `--truncate-at` cuts).
fn is_last_segment(dir: &Path, file: &Path) -> bool {
    raftwal::inspect::segments(dir)
        .ok()
        .and_then(|segments| segments.last().map(|s| dir.join(&s.file_name)))
        .is_some_and(|last| last == file)
}

fn refusal(error: Error, dir: &Path) -> Failure {
    match error {
        Error::NotRepairable { source } => {
            let escape = match *source {
                Error::Corrupt {
                    ref file, offset, ..
                }
                | Error::CrcMismatch { ref file, offset }
                    if is_last_segment(dir, file) =>
                {
                    format!(
                        ". If everything from there on may be given up (acknowledged entries \
                         included), `raftwal repair --truncate-at {offset}` cuts it, keeping a \
                         copy"
                    )
                }
                _ => String::new(),
            };
            Failure::new(
                CORRUPT,
                format!(
                    "not repairable: {source}; repair only cuts a torn write (a partly written \
                     frame at the very end of the last segment), and this is damage of another \
                     kind (nothing was changed){escape}"
                ),
            )
        }
        Error::Locked { file } => Failure::new(
            FAILED,
            format!(
                "{} is locked by a running writer: stop it before repairing (nothing was changed)",
                file.display()
            ),
        ),
        other => Failure::from(other),
    }
}
