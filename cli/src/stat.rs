//! `raftwal stat`: what an operator wants at a glance: segments with sizes and the entry
//! indexes they hold, snapshot markers, the last HardState, which segments a writer holds
//! locked right now, and the free space left. Damage is reported after what could be read.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use raftwal::eraftpb::HardState;
use raftwal::inspect::{Payload, RawRecord};
use raftwal::WalOptions;
use serde::Serialize;

use crate::dump::write_json;
use crate::failure::{code_of, Failure, FAILED, TORN};
use crate::log_dir::{file_name, LogDir};
use crate::output::bytes_text;
use crate::Outcome;

/// Everything `stat` reports; also its JSON shape.
#[derive(Debug, Serialize)]
struct Stat {
    dir: String,
    segments: Vec<SegmentStat>,
    snapshots: Vec<SnapshotStat>,
    hard_state: Option<HardStateStat>,
    metadata_size: Option<usize>,
    locked_segments: Vec<String>,
    available_space: u64,
    /// `None` when every record reads back and the log ends cleanly.
    damage: Option<Damage>,
}

#[derive(Debug, Serialize)]
struct SegmentStat {
    file: String,
    seq: u64,
    start_index: u64,
    size: u64,
    records: u64,
    entries: u64,
    first_entry_index: Option<u64>,
    last_entry_index: Option<u64>,
    locked: bool,
}

#[derive(Debug, Serialize)]
struct SnapshotStat {
    file: String,
    offset: u64,
    index: u64,
    term: u64,
    /// At or below the last HardState's commit: a node can start from it.
    valid: bool,
}

#[derive(Debug, Serialize)]
struct HardStateStat {
    term: u64,
    vote: u64,
    commit: u64,
}

#[derive(Debug, Serialize)]
struct Damage {
    /// `torn_tail` (repairable) or `corrupt`.
    kind: &'static str,
    file: Option<String>,
    offset: Option<u64>,
    error: String,
}

/// Runs `raftwal stat`.
pub fn run(dir: &Path, json: bool) -> Outcome {
    let log = LogDir::find(dir)?;
    let (stat, failure) = gather(&log)?;
    let mut out = BufWriter::new(io::stdout().lock());
    if json {
        write_json(&mut out, &stat)?;
    } else {
        print_table(&mut out, &stat)?;
    }
    out.flush()?;
    failure.map_or(Ok(()), Err)
}

fn gather(log: &LogDir) -> Result<(Stat, Option<Failure>), Failure> {
    let locked: Vec<String> = WalOptions::new()
        .probe_locks(&log.path)?
        .into_iter()
        .map(|name| name.file_name)
        .collect();
    let mut segments = Vec::with_capacity(log.segments.len());
    for name in &log.segments {
        let path = log.path.join(&name.file_name);
        let size = std::fs::metadata(&path)
            .map_err(|e| Failure::new(FAILED, format!("reading {}: {e}", path.display())))?
            .len();
        segments.push(SegmentStat {
            file: name.file_name.clone(),
            seq: name.seq,
            start_index: name.index,
            size,
            records: 0,
            entries: 0,
            first_entry_index: None,
            last_entry_index: None,
            locked: locked.contains(&name.file_name),
        });
    }
    let available_space = fs2::available_space(&log.path).map_err(|e| {
        Failure::new(
            FAILED,
            format!("reading the free space of {}: {e}", log.path.display()),
        )
    })?;
    let mut stat = Stat {
        dir: log.path.display().to_string(),
        segments,
        snapshots: Vec::new(),
        hard_state: None,
        metadata_size: None,
        locked_segments: locked,
        available_space,
        damage: None,
    };

    // Records come segment after segment: follow them with a cursor.
    let mut segment = 0;
    let scan = WalOptions::new()
        .raw_records(&log.path)
        .and_then(|records| {
            records
                .map(|record| record.and_then(|r| r.payload().map(|p| (r, p))))
                .try_for_each(|decoded| {
                    decoded.map(|(record, payload)| count(&mut stat, &mut segment, record, payload))
                })
        });
    let failure = scan.err().map(|error| {
        let (file, offset) = match error.position() {
            Some((file, offset)) => (Some(file_name(file)), Some(offset)),
            None => (None, None),
        };
        let code = code_of(&error);
        stat.damage = Some(Damage {
            kind: if code == TORN { "torn_tail" } else { "corrupt" },
            file,
            offset,
            error: error.to_string(),
        });
        Failure::new(code, error.to_string())
    });
    let commit = stat.hard_state.as_ref().map_or(0, |hs| hs.commit);
    for snapshot in &mut stat.snapshots {
        snapshot.valid = snapshot.index <= commit;
    }
    Ok((stat, failure))
}

fn count(stat: &mut Stat, cursor: &mut usize, record: RawRecord, payload: Payload) {
    while stat
        .segments
        .get(*cursor)
        .is_some_and(|s| s.file != record.file)
    {
        *cursor += 1;
    }
    let Some(segment) = stat.segments.get_mut(*cursor) else {
        return;
    };
    segment.records += 1;
    match payload {
        Payload::Entry(entry) => {
            segment.entries += 1;
            segment.first_entry_index.get_or_insert(entry.index);
            segment.last_entry_index = Some(entry.index);
        }
        Payload::HardState(hs) => stat.hard_state = Some(hard_state_stat(&hs)),
        Payload::Snapshot(snap) => stat.snapshots.push(SnapshotStat {
            file: record.file,
            offset: record.offset,
            index: snap.index,
            term: snap.term,
            valid: false,
        }),
        Payload::Metadata(data) => {
            stat.metadata_size.get_or_insert(data.len());
        }
        Payload::Crc => {}
    }
}

fn hard_state_stat(hs: &HardState) -> HardStateStat {
    HardStateStat {
        term: hs.term,
        vote: hs.vote,
        commit: hs.commit,
    }
}

fn print_table(out: &mut impl Write, stat: &Stat) -> io::Result<()> {
    writeln!(
        out,
        "log          {} ({} segments)",
        stat.dir,
        stat.segments.len()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<37} {:>10} {:>8} {:>8}  {:<20} locked",
        "segment", "size", "records", "entries", "entry indexes"
    )?;
    for s in &stat.segments {
        let range = match (s.first_entry_index, s.last_entry_index) {
            (Some(first), Some(last)) => format!("{first}..={last}"),
            _ => "-".to_string(),
        };
        let locked = if s.locked { "yes" } else { "no" };
        writeln!(
            out,
            "{:<37} {:>10} {:>8} {:>8}  {range:<20} {locked}",
            s.file, s.size, s.records, s.entries
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "snapshot markers ({}; valid = at or below the commit index)",
        stat.snapshots.len()
    )?;
    for s in &stat.snapshots {
        let valid = if s.valid { "valid" } else { "above commit" };
        writeln!(
            out,
            "  index {:<10} term {:<6} {} at offset {:<10} {valid}",
            s.index, s.term, s.file, s.offset
        )?;
    }
    writeln!(out)?;
    let hard_state = match &stat.hard_state {
        Some(hs) => format!("term {}, vote {}, commit {}", hs.term, hs.vote, hs.commit),
        None => "none".to_string(),
    };
    writeln!(out, "HardState    {hard_state}")?;
    match stat.metadata_size {
        Some(size) => writeln!(out, "metadata     {size} bytes")?,
        None => writeln!(out, "metadata     none")?,
    }
    if stat.locked_segments.is_empty() {
        writeln!(out, "locked       none (no writer has the log open)")?;
    } else {
        writeln!(out, "locked       {}", stat.locked_segments.join(", "))?;
    }
    writeln!(out, "free space   {}", bytes_text(stat.available_space))?;
    match &stat.damage {
        None => writeln!(
            out,
            "tail         sound (only zeros follow the last record)"
        ),
        Some(d) if d.kind == "torn_tail" => writeln!(
            out,
            "tail         torn at offset {} of {}: `raftwal repair` cuts it off",
            d.offset.unwrap_or(0),
            d.file.as_deref().unwrap_or("-")
        ),
        Some(d) => writeln!(out, "damage       {}", d.error),
    }
}
