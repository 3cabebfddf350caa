//! `raftwal repair`: cuts a torn tail off the last segment (keeping `<file>.broken`), and
//! refuses anything else. It first finds the tail with a read-only scan of every segment, so
//! `--dry-run` says exactly what a repair would cut, and damage before the tail is refused
//! before anything is touched.
//!
//! `--truncate-at OFFSET` is the operator's override for damage repair refuses because it may
//! hide acknowledged data: it cuts there anyway, once the offset is shown to be a frame end.

use std::io::{self, Write};
use std::path::Path;

use raftwal::{EntryRun, Error, Verdict, WalOptions};

use crate::failure::{Failure, CORRUPT, FAILED};
use crate::log_dir::LogDir;
use crate::Outcome;

/// Runs `raftwal repair`.
pub fn run(dir: &Path, dry_run: bool) -> Outcome {
    let log = LogDir::find(dir)?;
    let mut out = io::stdout();
    let torn = match WalOptions::new().check(&log.path)? {
        Verdict::Sound => {
            writeln!(out, "nothing to repair: {} is sound", log.path.display())?;
            return Ok(());
        }
        Verdict::Torn(torn) => torn,
        Verdict::Corrupt(e) => return Err(refusal(e)),
    };
    writeln!(
        out,
        "torn tail: {} from offset {} to its end at {}: {} bytes to cut{}",
        torn.file.display(),
        torn.offset,
        torn.len,
        torn.len.saturating_sub(torn.offset),
        entries_text(torn.entries_after)
    )?;
    if dry_run {
        writeln!(
            out,
            "dry run: nothing changed; `raftwal repair {}` would truncate the file at offset {} \
             and keep a copy as {}.broken (or .broken.N if that name is taken)",
            dir.display(),
            torn.offset,
            torn.file.display()
        )?;
        return Ok(());
    }
    let bar = crate::progress::spinner("repair: reading the log");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let repaired = WalOptions::new().repair(&log.path);
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
        None => writeln!(out, "nothing to repair: {} is sound", log.path.display())?,
    }
    Ok(())
}

/// Runs `raftwal repair --truncate-at OFFSET` (with `--dry-run`, only says what it would cut).
pub fn truncate_at(dir: &Path, offset: u64, dry_run: bool) -> Outcome {
    let log = LogDir::find(dir)?;
    let mut out = io::stdout();
    let plan = WalOptions::new()
        .plan_forced_cut(&log.path)
        .map_err(refusal)?;
    let plan = match plan {
        Some(plan) if plan.offset == offset => plan,
        other => {
            let last = &log.segments[log.segments.len() - 1];
            return Err(Failure::from(Error::NoDamageThere {
                file: log.path.join(&last.file_name),
                offset,
                damage: other.map(|p| p.offset),
            }));
        }
    };
    let what = if plan.removes_segment {
        format!(
            "remove the whole segment {} ({} bytes), since the damage is inside its header, and \
             the log would end with the segment before it",
            plan.file.display(),
            plan.len
        )
    } else {
        format!(
            "truncate {} at offset {offset}, cutting {} bytes",
            plan.file.display(),
            plan.len.saturating_sub(offset)
        )
    };
    if dry_run {
        writeln!(
            out,
            "dry run: nothing changed; `raftwal repair --truncate-at {offset} {}` would {what}{}; \
             everything cut is lost, acknowledged or not, and a copy is kept as {}.broken (or \
             .broken.N if that name is taken)",
            dir.display(),
            entries_text(plan.entries_after),
            plan.file.display()
        )?;
        return Ok(());
    }
    let repaired = WalOptions::new()
        .repair_at(&log.path, offset)
        .map_err(refusal)?;
    let done = if repaired.removed {
        format!("removed {}", repaired.file.display())
    } else {
        format!(
            "truncated {} at offset {} (cut {} bytes, every record after the offset included)",
            repaired.file.display(),
            repaired.offset,
            repaired.old_len.saturating_sub(repaired.offset)
        )
    };
    writeln!(
        out,
        "forced cut: {done}; the original is kept as {}",
        repaired.broken_copy.display()
    )?;
    Ok(())
}

/// `"; N entries, index A..=B, would be cut"`, when entries parse in what is cut.
fn entries_text(entries: Option<EntryRun>) -> String {
    entries.map_or(String::new(), |run| {
        format!(
            "; {} entries, index {}..={}, parse there and would be cut",
            run.count, run.first_index, run.last_index
        )
    })
}

fn refusal(error: Error) -> Failure {
    match error {
        Error::NotRepairable { source } => refusal(*source),
        Error::Locked { file } => Failure::new(
            FAILED,
            format!(
                "{} is locked by a running writer: stop it before repairing (nothing was changed)",
                file.display()
            ),
        ),
        e if e.is_corruption() => Failure::new(
            CORRUPT,
            format!(
                "not repairable (nothing was changed): repair only cuts a torn write at the end \
                 of the last segment, and this is damage of another kind: {}",
                Failure::from(e)
            ),
        ),
        other => Failure::from(other),
    }
}
