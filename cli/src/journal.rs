//! `raftwal journal`: a journal directory (the file store of `raftwal::Journal`) as the
//! journal sees it: each record with its kind (data, checkpoint start, checkpoint record,
//! checkpoint finalize), then where recovery would start. `--verify` checks the whole log and
//! the checkpoint protocol and prints only the summary. Reads only; takes no locks.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use raftwal::journal::{split_record, ProtocolCheck, RecordKind};
use raftwal::{LogRecord, Verdict, WalOptions, WalSnapshot};
use serde::Serialize;

use crate::failure::{self, Failure};
use crate::log_dir::LogDir;
use crate::output::{base64, preview};
use crate::Outcome;

/// Arguments of `raftwal journal`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A journal directory (written by raftwal's file store).
    pub dir: PathBuf,
    /// One JSON object per record (`index`, `kind`, `start` for a finalize, `data` in base64),
    /// then one summary object.
    #[arg(long)]
    pub json: bool,
    /// Check every segment and the checkpoint protocol; print only the summary.
    #[arg(long)]
    pub verify: bool,
}

/// One line of `journal --json`.
#[derive(Debug, Serialize)]
struct RecordLine<'a> {
    index: u64,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<u64>,
    #[serde(serialize_with = "base64")]
    data: &'a [u8],
}

/// The last line of `journal --json`.
#[derive(Debug, Serialize)]
struct Summary {
    kind: &'static str,
    first_index: u64,
    last_index: u64,
    records: u64,
    /// The start index of the checkpoint recovery replays, if any.
    checkpoint: Option<u64>,
    /// A checkpoint started and never finalized: recovery discards it.
    open_checkpoint: Option<u64>,
}

/// Runs `raftwal journal`.
pub fn run(args: &Args) -> Outcome {
    let log = LogDir::find(&args.dir)?;
    let options = WalOptions::new();
    if args.verify {
        // The reader below ends quietly at a torn tail; the shared verdict does not.
        match options.check(&log.path)? {
            Verdict::Sound => {}
            Verdict::Torn(tail) => return Err(failure::torn(&tail)),
            Verdict::Corrupt(e) => return Err(Failure::from(e)),
        }
    }
    // Where the journal's file store reads from: its newest checkpoint marker.
    let start = options
        .valid_snapshot_entries(&log.path)?
        .into_iter()
        .max_by_key(|s| s.index)
        .unwrap_or_else(WalSnapshot::default);
    let mut wal = options.open_for_read(&log.path, &start)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let mut check = ProtocolCheck::default();
    let mut summary = Summary {
        kind: "summary",
        first_index: start.index + 1,
        last_index: start.index,
        records: 0,
        checkpoint: None,
        open_checkpoint: None,
    };
    for record in wal.replay()? {
        let LogRecord::Entry(entry) = record? else {
            continue;
        };
        if entry.index <= start.index {
            continue;
        }
        let (kind, payload) = split_record(entry.index, &entry.data)?;
        check.step(entry.index, kind)?;
        summary.last_index = entry.index;
        summary.records += 1;
        if args.verify {
            continue;
        }
        let finalizes = match kind {
            RecordKind::CheckpointFinalize(start) => Some(start),
            _ => None,
        };
        if args.json {
            let line = RecordLine {
                index: entry.index,
                kind: kind.name(),
                start: finalizes,
                data: payload,
            };
            serde_json::to_writer(&mut out, &line).map_err(io::Error::from)?;
            writeln!(out)?;
        } else {
            let what = match finalizes {
                Some(start) => format!("of the checkpoint started at {start}"),
                None if payload.is_empty() => String::new(),
                None => preview(payload),
            };
            writeln!(out, "{:>10}  {:<19}  {what}", entry.index, kind.name())?;
        }
    }
    summary.checkpoint = check.finalized();
    summary.open_checkpoint = check.open();
    if args.json {
        serde_json::to_writer(&mut out, &summary).map_err(io::Error::from)?;
        writeln!(out)?;
    } else {
        let checkpoint = match summary.checkpoint {
            Some(start) => format!("recovery replays the checkpoint started at {start}"),
            None => "no finalized checkpoint: recovery replays every record".into(),
        };
        let open = match summary.open_checkpoint {
            Some(start) => {
                format!("; the checkpoint started at {start} is not finalized (discarded)")
            }
            None => String::new(),
        };
        writeln!(
            out,
            "{}{}: records {}..={} ({}), {checkpoint}{open}",
            if args.verify { "ok: " } else { "" },
            log.path.display(),
            summary.first_index,
            summary.last_index,
            summary.records,
        )?;
    }
    out.flush()?;
    Ok(())
}
