//! `raftwal repair`: cuts a torn tail off the last segment (keeping `<file>.broken`), and
//! refuses anything else. It first finds the tail with a read-only scan of every segment, so
//! `--dry-run` says exactly what a repair would cut, and damage before the tail is refused
//! before anything is touched.

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
    let Some(torn) = find_torn_tail(&log.path).map_err(refusal)? else {
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
    match repaired.map_err(refusal)? {
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

fn refusal(error: Error) -> Failure {
    match error {
        Error::NotRepairable { source } => Failure::new(
            CORRUPT,
            format!(
                "not repairable: {source}; repair only cuts a torn write (a partly written frame \
                 at the very end of the last segment), and this is damage of another kind \
                 (nothing was changed)"
            ),
        ),
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
