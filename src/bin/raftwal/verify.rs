//! `raftwal verify`: the whole log checked without changing anything. Two reads: raftwal's own
//! `verify` (CRC chain, metadata, snapshot marker, no index gaps) from where the log can be
//! read, then every record of every segment, which tells a torn tail (a crash mid-write,
//! repairable) from corruption.

use std::io::{self, Write};
use std::path::Path;

use raftwal::inspect::{raw_records, Payload};
use raftwal::Error;

use crate::failure::{code_of, Failure, CORRUPT, TORN};
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
    let hard_state = raftwal::verify(&log.path, &start.snapshot).map_err(|e| damaged(dir, e))?;
    let mut counts = Counts::default();
    let sizes = SegmentBytes::new(&log.path, log.segments.iter().map(|s| s.file_name.clone()));
    let bar = progress::bytes(sizes.total(), "verify");
    for record in raw_records(&log.path)? {
        let record = record.map_err(|e| damaged(dir, e))?;
        bar.set_position(sizes.position(&record.file, record.offset));
        counts.records += 1;
        match record.payload().map_err(|e| damaged(dir, e))? {
            Payload::Entry(_) => counts.entries += 1,
            Payload::HardState(_) => counts.hard_states += 1,
            Payload::Snapshot(_) => counts.snapshots += 1,
            Payload::Crc | Payload::Metadata(_) => {}
        }
    }
    bar.finish_and_clear();
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

/// The one line that says what is wrong and what to do about it.
fn damaged(dir: &Path, error: Error) -> Failure {
    match &error {
        Error::TornTail { file, offset } => Failure::new(
            TORN,
            format!(
                "torn tail: {} ends in a partly written frame at offset {offset}, as a crash \
                 mid-write leaves it (nothing there was acknowledged); `raftwal repair {}` cuts it off",
                file.display(),
                dir.display()
            ),
        ),
        _ if code_of(&error) == CORRUPT => Failure::new(
            CORRUPT,
            format!("{error} (corruption, not a torn tail: `raftwal repair` does not fix it)"),
        ),
        _ => Failure::from(error),
    }
}
