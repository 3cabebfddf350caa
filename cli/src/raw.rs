//! `raftwal dump --raw`: every record of every segment in file order, as stored, with its
//! position; no log semantics beyond the frame and CRC checks.

use std::io::Write;

use raftwal::eraftpb::EntryType;
use raftwal::inspect::{Payload, RawRecord};
use raftwal::WalOptions;
use serde::Serialize;

use crate::dump::{write_json, Filter};
use crate::failure::Failure;
use crate::log_dir::{file_name, LogDir};
use crate::output::{base64, entry_type_name, preview};
use crate::Outcome;

/// One line of `dump --raw --json`.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum RawLine<'a> {
    Crc {
        file: &'a str,
        offset: u64,
        crc: u32,
    },
    Metadata {
        file: &'a str,
        offset: u64,
        #[serde(serialize_with = "base64")]
        data: &'a [u8],
    },
    Entry {
        file: &'a str,
        offset: u64,
        index: u64,
        term: u64,
        entry_type: i32,
        #[serde(serialize_with = "base64")]
        data: &'a [u8],
    },
    HardState {
        file: &'a str,
        offset: u64,
        term: u64,
        vote: u64,
        commit: u64,
    },
    Snapshot {
        file: &'a str,
        offset: u64,
        index: u64,
        term: u64,
    },
    Error {
        file: Option<String>,
        offset: Option<u64>,
        error: String,
    },
}

/// Prints the records of `log`; a torn tail or corruption ends the output with an error record
/// and fails the command.
pub fn dump(log: &LogDir, filter: &Filter, json: bool, out: &mut impl Write) -> Outcome {
    if !json {
        writeln!(
            out,
            "{:<37} {:>10}  {:<10}  details",
            "file", "offset", "record"
        )?;
    }
    let mut last_file = None;
    // A log that cannot even be opened (a missing middle segment) ends the listing the same way.
    let records: Box<dyn Iterator<Item = raftwal::Result<RawRecord>>> =
        match WalOptions::new().raw_records(&log.path) {
            Ok(records) => Box::new(records),
            Err(error) => Box::new(std::iter::once(Err(error))),
        };
    for record in records {
        let decoded = record.and_then(|r| r.payload().map(|p| (r, p)));
        let (record, payload) = match decoded {
            Ok(decoded) => decoded,
            Err(error) => {
                let (file, offset) = match error.position() {
                    Some((file, offset)) => (Some(file_name(file)), Some(offset)),
                    None => (last_file, None),
                };
                let line = RawLine::Error {
                    file,
                    offset,
                    error: error.to_string(),
                };
                write_line(out, json, &line)?;
                return Err(Failure::from(error));
            }
        };
        if let Payload::Entry(entry) = &payload {
            if !filter.admits(entry) {
                continue;
            }
        }
        write_line(out, json, &line_of(&record, &payload))?;
        last_file = Some(record.file);
    }
    Ok(())
}

fn line_of<'a>(record: &'a RawRecord, payload: &'a Payload) -> RawLine<'a> {
    let (file, offset) = (record.file.as_str(), record.offset);
    match payload {
        Payload::Crc => RawLine::Crc {
            file,
            offset,
            crc: record.crc,
        },
        Payload::Metadata(data) => RawLine::Metadata { file, offset, data },
        Payload::Entry(entry) => RawLine::Entry {
            file,
            offset,
            index: entry.index,
            term: entry.term,
            entry_type: entry.get_entry_type() as i32,
            data: &entry.data,
        },
        Payload::HardState(hs) => RawLine::HardState {
            file,
            offset,
            term: hs.term,
            vote: hs.vote,
            commit: hs.commit,
        },
        Payload::Snapshot(snap) => RawLine::Snapshot {
            file,
            offset,
            index: snap.index,
            term: snap.term,
        },
    }
}

fn write_line(out: &mut impl Write, json: bool, line: &RawLine<'_>) -> std::io::Result<()> {
    if json {
        return write_json(out, line);
    }
    let (file, offset, kind, details) = match line {
        RawLine::Crc { file, offset, crc } => (*file, *offset, "crc", format!("crc {crc:#010x}")),
        RawLine::Metadata { file, offset, data } => (
            *file,
            *offset,
            "metadata",
            format!("{} bytes  {}", data.len(), preview(data)),
        ),
        RawLine::Entry {
            file,
            offset,
            index,
            term,
            entry_type,
            data,
        } => {
            let kind = match entry_type {
                0 => entry_type_name(EntryType::EntryNormal),
                1 => entry_type_name(EntryType::EntryConfChange),
                _ => entry_type_name(EntryType::EntryConfChangeV2),
            };
            let details = format!(
                "index {index}  term {term}  {kind}  {} bytes  {}",
                data.len(),
                preview(data)
            );
            (*file, *offset, "entry", details)
        }
        RawLine::HardState {
            file,
            offset,
            term,
            vote,
            commit,
        } => (
            *file,
            *offset,
            "hard_state",
            format!("term {term}, vote {vote}, commit {commit}"),
        ),
        RawLine::Snapshot {
            file,
            offset,
            index,
            term,
        } => (
            *file,
            *offset,
            "snapshot",
            format!("index {index}, term {term}"),
        ),
        RawLine::Error {
            file,
            offset,
            error,
        } => {
            let file = file.as_deref().unwrap_or("-");
            let offset = offset.map(|o| o.to_string()).unwrap_or_else(|| "-".into());
            return writeln!(out, "{file:<37} {offset:>10}  {:<10}  {error}", "error");
        }
    };
    writeln!(out, "{file:<37} {offset:>10}  {kind:<10}  {details}")
}
