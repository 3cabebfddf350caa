//! Writes a small but complete raftwal log to the directory given on the command line, then
//! reads it back: several segments, a conf change, puts, HardStates, snapshot markers with
//! released locks, and a leader change that overwrites uncommitted entries.
//!
//! ```sh
//! cargo run --release -p raftwal-demo --bin write_wal -- /tmp/demo-wal
//! cargo run --release -p raftwal-cli -- dump /tmp/demo-wal
//! ```

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

use protobuf::Message as _;
use raftwal::eraftpb::{ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState};
use raftwal::{Wal, WalOptions, WalSnapshot};

/// Small segments, so a few hundred entries span several of them.
const SEGMENT_SIZE: u64 = 4 * 1024;
/// Entries per `save` (one raft Ready).
const BATCH: u64 = 5;
/// A snapshot marker every this many committed entries.
const SNAPSHOT_EVERY: u64 = 100;
/// Entries 1..=LAST_TERM_1_COMMIT are committed in term 1.
const LAST_TERM_1_COMMIT: u64 = 248;
/// Term 1's leader also wrote these, then crashed before they were committed.
const LAST_TERM_1_INDEX: u64 = 252;
const LAST_INDEX: u64 = 400;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: write_wal DIR   (DIR must not hold a WAL yet)");
        return ExitCode::from(2);
    };
    match run(Path::new(&dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("write_wal: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &Path) -> Result<(), Box<dyn Error>> {
    let options = WalOptions::new().segment_size(SEGMENT_SIZE);
    let metadata = b"raftwal demo: node 1 of cluster 7";
    let mut wal = options.create(dir, metadata)?;
    let mut snapshots = Vec::new();

    // Term 1: node 1 votes for itself (a vote must be durable before it is acted on), adds
    // itself to the cluster, and commits puts as they are appended.
    let mut hs = hard_state(1, 1, 0);
    wal.save(&hs, &[])?;
    hs.commit = 1;
    wal.save(&hs, &[conf_change_entry(1, 1)])?;
    let mut next = 2;
    while next <= LAST_TERM_1_INDEX {
        let last = (next + BATCH - 1).min(LAST_TERM_1_INDEX);
        let entries: Vec<Entry> = (next..=last).map(|i| put_entry(i, 1)).collect();
        hs.commit = last.min(LAST_TERM_1_COMMIT);
        wal.save(&hs, &entries)?;
        snapshot_if_due(&mut wal, &mut snapshots, next - 1, hs.commit, 1)?;
        next = last + 1;
    }

    // Term 2: node 2 won the election holding entries up to LAST_TERM_1_COMMIT only, so its
    // log replaces this node's uncommitted tail, starting with its empty entry.
    let first_term_2 = LAST_TERM_1_COMMIT + 1;
    hs = hard_state(2, 2, LAST_TERM_1_COMMIT);
    let mut next = first_term_2;
    while next <= LAST_INDEX {
        let last = (next + BATCH - 1).min(LAST_INDEX);
        let entries: Vec<Entry> = (next..=last)
            .map(|i| {
                if i == first_term_2 {
                    Entry {
                        index: i,
                        term: 2,
                        ..Default::default()
                    }
                } else {
                    put_entry(i, 2)
                }
            })
            .collect();
        hs.commit = last;
        wal.save(&hs, &entries)?;
        snapshot_if_due(&mut wal, &mut snapshots, next - 1, hs.commit, 2)?;
        next = last + 1;
    }
    let locked = wal.locked_segments();
    wal.close()?;

    // Read it back as a restarting node would, from the beginning.
    let mut reader = Wal::open_for_read(dir, &WalSnapshot::default())?;
    let recovered = reader.read_all()?;
    let segments = WalOptions::new().segments(dir)?;

    println!("wrote a raftwal log to {}:", dir.display());
    println!(
        "  metadata          {:?}",
        String::from_utf8_lossy(metadata)
    );
    println!(
        "  entries           1..={LAST_INDEX}: a conf change adding node 1, then puts \
         (\"put key-NNNN=value-NNNN\")"
    );
    println!(
        "  leader change     term 1 -> 2: entries {first_term_2}..={LAST_TERM_1_INDEX} of term 1 \
         were never committed and are overwritten by term 2 (index {first_term_2} is the new \
         leader's empty entry)"
    );
    let marks: Vec<String> = snapshots
        .iter()
        .map(|s: &WalSnapshot| format!("{{index {}, term {}}}", s.index, s.term))
        .collect();
    println!("  snapshot markers  {}", marks.join(", "));
    println!(
        "  HardState         term {}, vote {}, commit {}",
        hs.term, hs.vote, hs.commit
    );
    println!(
        "  segments          {}, cut at {SEGMENT_SIZE} bytes (the writer held {} locked at the \
         end: older ones were released after snapshots)",
        segments.len(),
        locked.len()
    );
    for segment in &segments {
        println!("                    {}", segment.file_name);
    }
    println!(
        "read back: {} entries ({}..={}), HardState commit {}",
        recovered.entries.len(),
        recovered.entries.first().map_or(0, |e| e.index),
        recovered.entries.last().map_or(0, |e| e.index),
        recovered.hard_state.commit
    );
    println!(
        "next: cargo run --release -p raftwal-cli -- dump {}",
        dir.display()
    );
    Ok(())
}

/// Every SNAPSHOT_EVERY committed entries: record a snapshot marker (raft would have saved the
/// snapshot file first), then release the segments it makes unnecessary.
fn snapshot_if_due(
    wal: &mut Wal,
    snapshots: &mut Vec<WalSnapshot>,
    before: u64,
    commit: u64,
    term: u64,
) -> Result<(), raftwal::Error> {
    let due = commit / SNAPSHOT_EVERY * SNAPSHOT_EVERY;
    if due == 0 || due <= before.min(commit) {
        return Ok(());
    }
    let snapshot = WalSnapshot {
        index: due,
        term,
        conf_state: Some(ConfState {
            voters: vec![1],
            ..Default::default()
        }),
    };
    wal.save_snapshot_marker(&snapshot)?;
    wal.release_lock_to(due)?;
    snapshots.push(snapshot);
    Ok(())
}

fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..Default::default()
    }
}

fn put_entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("put key-{index:04}=value-{index:04}").into(),
        ..Default::default()
    }
}

fn conf_change_entry(index: u64, node_id: u64) -> Entry {
    // Setters rather than fields: the enum fields are `i32`s with prost-codec.
    let mut change = ConfChange {
        node_id,
        ..Default::default()
    };
    change.set_change_type(ConfChangeType::AddNode);
    let mut entry = Entry {
        index,
        term: 1,
        data: change.write_to_bytes().unwrap_or_default().into(),
        ..Default::default()
    };
    entry.set_entry_type(EntryType::EntryConfChange);
    entry
}
