//! `raftwal verify`: the whole log checked without changing anything. Two reads: every record of
//! every segment, which gives the damage verdict every reader shares (sound, torn or corrupt),
//! then raftwal's own `verify` (CRC chain, metadata, snapshot marker, no index gaps) from where
//! the log can be read.

use std::io::{self, Write};
use std::path::Path;

use raftwal::inspect::Payload;
use raftwal::{Error, Verdict, WalOptions};

use crate::failure::{self, Failure};
use crate::log_dir::LogDir;
use crate::output::hard_state_text;
use crate::progress::{self, SegmentBytes};
use crate::Outcome;

/// What the record scan counted.
#[derive(Debug, Default)]
struct Counts {
    records: u64,
    entries: u64,
    hard_states: u64,
    snapshots: u64,
}

/// Runs `raftwal verify`.
pub fn run(dir: &Path) -> Outcome {
    let log = LogDir::find(dir)?;
    let start = log.start()?;
    let mut counts = Counts::default();
    let sizes = SegmentBytes::new(&log.path, log.segments.iter().map(|s| s.file_name.clone()));
    let bar = progress::bytes(sizes.total(), "verify");
    for record in WalOptions::new().raw_records(&log.path)? {
        let record = record.map_err(|e| damaged(&log.path, e))?;
        bar.set_position(sizes.position(&record.file, record.offset));
        counts.records += 1;
        match record.payload().map_err(|e| damaged(&log.path, e))? {
            Payload::Entry(_) => counts.entries += 1,
            Payload::HardState(_) => counts.hard_states += 1,
            Payload::Snapshot(_) => counts.snapshots += 1,
            Payload::Crc | Payload::Metadata(_) => {}
        }
    }
    bar.finish_and_clear();
    let hard_state = WalOptions::new().verify(&log.path, &start.snapshot)?;
    let from = if start.purged {
        format!(
            ", read from snapshot {{index {}, term {}}} (older segments were purged)",
            start.snapshot.index, start.snapshot.term
        )
    } else {
        String::new()
    };
    writeln!(
        io::stdout(),
        "ok: {} is sound: {} segments, {} records ({} entries, {} hard states, {} snapshot markers), \
         HardState {{{}}}{from}",
        log.path.display(),
        log.segments.len(),
        counts.records,
        counts.entries,
        counts.hard_states,
        counts.snapshots,
        hard_state_text(&hard_state),
    )?;
    Ok(())
}

/// The one line that says what is wrong and what to do about it; a torn tail is described in
/// full (what a repair would cut) by the shared damage verdict.
fn damaged(log: &Path, error: Error) -> Failure {
    if !error.is_torn() {
        return Failure::from(error);
    }
    match WalOptions::new().check(log) {
        Ok(Verdict::Torn(tail)) => failure::torn(&tail),
        _ => Failure::from(error),
    }
}
