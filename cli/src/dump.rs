//! `raftwal dump`: the log as raft sees it (entries after overwrites, then the HardState), or
//! with `--raw` every record as stored.
//!
//! The log is read twice so that memory stays bounded however long the log is:
//! the first pass learns which entry records survive later overwrites (as runs of consecutive
//! records, a handful of numbers per overwrite), the second prints exactly those.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::ValueEnum;
use raftwal::eraftpb::{Entry, EntryType, HardState};
use raftwal::{LogRecord, Wal};

use crate::failure::{Failure, FAILED};
use crate::log_dir::{LogDir, Start};
use crate::output::{entry_type_name, hard_state_text, preview, LogLine};
use crate::{raw, Outcome};

/// Arguments of `raftwal dump`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A WAL directory, or an etcd data dir (its member/wal is used).
    pub dir: PathBuf,
    /// Show only entries at or above this index.
    #[arg(long, value_name = "N")]
    pub start_index: Option<u64>,
    /// Show only entries at or below this index.
    #[arg(long, value_name = "N")]
    pub end_index: Option<u64>,
    /// Show only entries of these types (repeat the flag or separate with commas).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "TYPE")]
    pub entry_type: Vec<EntryKind>,
    /// One JSON object per line: metadata, then each entry, then the HardState (data in base64;
    /// entry_type 0 normal, 1 conf change, 2 conf change v2).
    #[arg(long)]
    pub json: bool,
    /// Every record of every segment in file order with its file and byte offset, including
    /// overwritten entries; ends with an error record (and a non-zero exit) at a torn tail or
    /// corruption. Filters apply to entry records.
    #[arg(long)]
    pub raw: bool,
}

/// An entry type as `--entry-type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EntryKind {
    /// EntryNormal (0).
    Normal,
    /// EntryConfChange (1).
    ConfChange,
    /// EntryConfChangeV2 (2).
    ConfChangeV2,
}

impl EntryKind {
    fn entry_type(self) -> EntryType {
        match self {
            EntryKind::Normal => EntryType::EntryNormal,
            EntryKind::ConfChange => EntryType::EntryConfChange,
            EntryKind::ConfChangeV2 => EntryType::EntryConfChangeV2,
        }
    }
}

/// Which entries to show.
#[derive(Debug)]
pub struct Filter {
    start: u64,
    /// Inclusive.
    end: u64,
    types: Vec<EntryType>,
}

impl Filter {
    fn new(args: &Args) -> Filter {
        Filter {
            start: args.start_index.unwrap_or(0),
            end: args.end_index.unwrap_or(u64::MAX),
            types: args.entry_type.iter().map(|k| k.entry_type()).collect(),
        }
    }

    /// Whether `entry` is shown.
    pub fn admits(&self, entry: &Entry) -> bool {
        (self.start..=self.end).contains(&entry.index)
            && (self.types.is_empty() || self.types.contains(&entry.get_entry_type()))
    }
}

/// Runs `raftwal dump`.
pub fn run(args: &Args) -> Outcome {
    let log = LogDir::find(&args.dir)?;
    let filter = Filter::new(args);
    let mut out = BufWriter::new(io::stdout().lock());
    let result = if args.raw {
        raw::dump(&log, &filter, args.json, &mut out)
    } else {
        dump_log(&log, &filter, args.json, &mut out)
    };
    // Whatever was printed before a failure is part of the answer: flush it first.
    out.flush()?;
    result
}

/// Consecutive entry records that all survive: `len` records from the `ordinal`-th entry
/// record on, holding indexes `index..index + len`.
#[derive(Debug, Clone, Copy)]
struct Run {
    index: u64,
    ordinal: u64,
    len: u64,
}

/// What the first pass learns.
#[derive(Debug)]
struct Survey {
    metadata: Vec<u8>,
    hard_state: HardState,
    runs: Vec<Run>,
    entry_records: u64,
}

/// Pass one: which entry records survive, plus the metadata and last HardState.
fn survey(log: &LogDir, start: &Start) -> Result<Survey, Failure> {
    let mut wal = Wal::open_for_read(&log.path, &start.snapshot)?;
    let mut runs = Vec::new();
    let mut ordinal = 0;
    let bar = crate::progress::spinner("dump: surveying");
    for record in wal.replay()? {
        bar.inc(1);
        if let LogRecord::Entry(entry) = record? {
            survive(&mut runs, start.snapshot.index, entry.index, ordinal);
            ordinal += 1;
        }
    }
    bar.finish_and_clear();
    Ok(Survey {
        metadata: wal.metadata().unwrap_or_default().to_vec(),
        hard_state: wal.hard_state().clone(),
        runs,
        entry_records: ordinal,
    })
}

/// raft's overwrite rule on runs: the entry record `ordinal` at `index` replaces every entry
/// from `index` on (all of them when the snapshot covers `index`).
fn survive(runs: &mut Vec<Run>, snapshot_index: u64, index: u64, ordinal: u64) {
    if index <= snapshot_index {
        runs.clear();
        return;
    }
    while runs.last().is_some_and(|run| run.index >= index) {
        runs.pop();
    }
    if let Some(last) = runs.last_mut() {
        last.len = last.len.min(index - last.index);
        if last.index + last.len == index && last.ordinal + last.len == ordinal {
            last.len += 1;
            return;
        }
    }
    runs.push(Run {
        index,
        ordinal,
        len: 1,
    });
}

fn dump_log(log: &LogDir, filter: &Filter, json: bool, out: &mut impl Write) -> Outcome {
    let start = log.start()?;
    let survey = survey(log, &start)?;
    let surviving: u64 = survey.runs.iter().map(|r| r.len).sum();
    if json {
        write_json(
            out,
            &LogLine::Metadata {
                data: &survey.metadata,
            },
        )?;
    } else {
        writeln!(
            out,
            "log       {} ({} segments)",
            log.path.display(),
            log.segments.len()
        )?;
        if start.purged {
            writeln!(
                out,
                "from      snapshot {{index {}, term {}}}: older segments were purged",
                start.snapshot.index, start.snapshot.term
            )?;
        }
        writeln!(
            out,
            "metadata  {} bytes  {}",
            survey.metadata.len(),
            preview(&survey.metadata)
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "{:>10} {:>6}  {:<14} {:>9}  data",
            "index", "term", "type", "size"
        )?;
    }

    // Pass two: print the survivors, stopping as soon as nothing more can be shown.
    let mut wal = Wal::open_for_read(&log.path, &start.snapshot)?;
    let mut shown = 0u64;
    let mut ordinal = 0u64;
    let mut run = 0usize;
    for record in wal.replay()? {
        let LogRecord::Entry(entry) = record? else {
            continue;
        };
        let this = ordinal;
        ordinal += 1;
        while run < survey.runs.len() && survey.runs[run].ordinal + survey.runs[run].len <= this {
            run += 1;
        }
        let Some(current) = survey.runs.get(run) else {
            break;
        };
        if this < current.ordinal {
            continue;
        }
        if entry.index != current.index + (this - current.ordinal) {
            return Err(Failure::new(
                FAILED,
                "the log changed while it was being read (a writer or repair is at work); run the dump again",
            ));
        }
        // Survivors come in index order: past the end nothing more is shown.
        if entry.index > filter.end {
            break;
        }
        if !filter.admits(&entry) {
            continue;
        }
        shown += 1;
        if json {
            write_json(
                out,
                &LogLine::Entry {
                    index: entry.index,
                    term: entry.term,
                    entry_type: entry.get_entry_type() as i32,
                    data: &entry.data,
                },
            )?;
        } else {
            writeln!(
                out,
                "{:>10} {:>6}  {:<14} {:>9}  {}",
                entry.index,
                entry.term,
                entry_type_name(entry.get_entry_type()),
                entry.data.len(),
                preview(&entry.data)
            )?;
        }
    }

    if json {
        write_json(out, &LogLine::hard_state(&survey.hard_state))?;
    } else {
        writeln!(out)?;
        writeln!(out, "HardState {}", hard_state_text(&survey.hard_state))?;
        writeln!(
            out,
            "{shown} entries shown; the log holds {surviving} after overwrites ({} entry records read)",
            survey.entry_records
        )?;
    }
    Ok(())
}

/// Writes one JSON value and a newline.
pub fn write_json(out: &mut impl Write, value: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survivors(snapshot_index: u64, indexes: &[u64]) -> Vec<(u64, u64)> {
        let mut runs = Vec::new();
        for (ordinal, &index) in indexes.iter().enumerate() {
            survive(&mut runs, snapshot_index, index, ordinal as u64);
        }
        runs.iter()
            .flat_map(|r| (0..r.len).map(move |i| (r.index + i, r.ordinal + i)))
            .collect()
    }

    #[test]
    fn an_overwrite_keeps_the_later_record_and_drops_what_followed() {
        // Records 3..5 wrote indexes 3,4,5 then the record at ordinal 3 rewrote index 2.
        assert_eq!(
            survivors(0, &[1, 2, 3, 4, 2, 3]),
            vec![(1, 0), (2, 4), (3, 5)]
        );
    }

    #[test]
    fn entries_covered_by_the_snapshot_void_everything_before() {
        assert_eq!(survivors(5, &[6, 7, 5, 6]), vec![(6, 3)]);
    }
}
