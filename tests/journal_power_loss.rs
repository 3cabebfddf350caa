//! Power loss after every I/O call of a journal's whole checkpoint protocol on the file store
//! (create, appends, checkpoint start, checkpoint records, finalize, the purge it runs, an
//! abandoned checkpoint, a second finalize), in several crash states each: the journal must
//! open and replay exactly what its log prefix says — the old finalized checkpoint and the
//! data after it, or the new one — with every acknowledged record kept.

use std::path::Path;
use std::sync::Arc;

use raftwal::fs::sim::{Crash, Fill, SectorLoss, SimFs};
use raftwal::fs::FileSystem as _;
use raftwal::journal::{Bytes, Journal, Replayed};
use raftwal::store::FileStore;
use raftwal::{Error, WalOptions};

const DIR: &str = "/journal";

fn options(fs: &SimFs) -> WalOptions {
    WalOptions::new()
        .segment_size(2048)
        .file_system(Arc::new(fs.clone()))
        .prepare_segments_in_background(false)
}

/// One step of the workload.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Append a data record and wait for it.
    Data,
    /// Start a checkpoint.
    Start,
    /// Append a record of the open checkpoint, and sync.
    Record,
    /// Finalize the open checkpoint and wait for it (its deletion included).
    Finalize,
    /// Drop the open checkpoint unfinalized.
    Abandon,
}

fn workload() -> Vec<Step> {
    use Step::*;
    let mut steps = vec![Data; 20];
    steps.extend([Start, Record, Data, Record, Record, Finalize]);
    steps.extend([Data; 8]);
    steps.extend([Start, Record, Data, Record, Abandon]);
    steps.extend([Data; 4]);
    steps.extend([Start, Record, Record, Data, Record, Record, Finalize]);
    steps.extend([Data; 3]);
    steps
}

/// A record as the journal stores it, what the model replays.
#[derive(Debug, Clone, PartialEq)]
enum Issued {
    Data(Vec<u8>),
    Start,
    Record(Vec<u8>),
    Finalize(u64),
}

fn payload(what: &str, n: usize) -> Vec<u8> {
    format!("{what} {n}: {}", "x".repeat(300)).into_bytes()
}

/// What one run of the workload did before it stopped.
#[derive(Debug, Default)]
struct Outcome {
    /// Every record the journal accepted, in index order (index = position + 1).
    issued: Vec<Issued>,
    /// Every record up to here was acknowledged durable.
    acked: u64,
    /// The error that stopped the run, if one did.
    error: Option<String>,
    /// Segment files each finalize deleted.
    purged: Vec<usize>,
}

fn run(fs: &SimFs) -> Outcome {
    let mut out = Outcome::default();
    if let Err(e) = run_steps(fs, &mut out) {
        out.error = Some(e.to_string());
    }
    out
}

fn run_steps(fs: &SimFs, out: &mut Outcome) -> raftwal::Result<()> {
    let journal = Journal::open(FileStore::create(DIR, options(fs))?, Bytes, |_| {})?;
    let mut checkpoint = None;
    for (n, step) in workload().into_iter().enumerate() {
        match step {
            Step::Data => {
                let record = payload("data", n);
                let done = journal.append(&record)?;
                out.issued.push(Issued::Data(record));
                out.acked = done.wait()?;
            }
            Step::Start => {
                let started = journal.start_checkpoint()?;
                out.issued.push(Issued::Start);
                // Durable before the next step, so that every run makes the same I/O calls:
                // left queued, the start record shares a store append with the next record in
                // some runs and not in others, and the sweep's crash points would drift.
                // Batching is the concurrent sweep's business.
                journal.sync()?;
                out.acked = out.issued.len() as u64;
                checkpoint = Some(started);
            }
            Step::Record => {
                let record = payload("state", n);
                checkpoint.as_ref().expect("open").append(&record)?;
                out.issued.push(Issued::Record(record));
                journal.sync()?;
                out.acked = out.issued.len() as u64;
            }
            Step::Finalize => {
                let started = checkpoint.take().expect("open");
                let start = started.start_index();
                let before = segments(fs);
                let done = started.finalize()?;
                out.issued.push(Issued::Finalize(start));
                out.acked = done.wait()?;
                out.purged.push(before.saturating_sub(segments(fs)));
            }
            Step::Abandon => drop(checkpoint.take()),
        }
    }
    drop(checkpoint);
    journal.close()
}

/// What a journal whose store holds the first `len` issued records replays (the spec).
fn model(issued: &[Issued], len: u64) -> Vec<Replayed<Vec<u8>>> {
    let prefix = &issued[..len as usize];
    let finalized = prefix.iter().rev().find_map(|r| match r {
        Issued::Finalize(start) => Some(*start),
        _ => None,
    });
    let mut replay = Vec::new();
    let from = finalized.unwrap_or(0);
    if let Some(start) = finalized {
        for r in &prefix[start as usize..] {
            match r {
                Issued::Record(bytes) => replay.push(Replayed::Checkpoint(bytes.clone())),
                Issued::Finalize(s) if *s == start => break,
                _ => {}
            }
        }
    }
    for (i, r) in prefix.iter().enumerate() {
        let index = i as u64 + 1;
        if let Issued::Data(bytes) = r {
            if index > from {
                replay.push(Replayed::Data {
                    index,
                    record: bytes.clone(),
                });
            }
        }
    }
    replay
}

/// The states a power loss after one call may leave, each reproducible from `point`.
fn crash_states(point: u64) -> [Crash; 4] {
    [
        Crash::DropUnsynced,
        Crash::KeepUnsynced,
        Crash::Random {
            seed: point,
            sectors: SectorLoss::Prefix,
            fill: Fill::Zeros,
        },
        Crash::Random {
            seed: (point << 20) + 1,
            sectors: SectorLoss::Any,
            fill: Fill::Zeros,
        },
    ]
}

/// Whether `err` is the one refusal the crash model allows (see `tests/crash_power_loss.rs`):
/// with a write's sectors reaching the disk out of order, a lost sector holding nothing but a
/// length word in front of a record that did reach the disk is indistinguishable from a bit
/// flip, so it is reported as corruption rather than cut (cutting could lose acknowledged data
/// in the case it cannot be told from). It can only be in the unacknowledged tail.
fn allowed_refusal(crash: Crash, err: &Error) -> bool {
    matches!(
        (crash, err),
        (
            Crash::Random { sectors: SectorLoss::Any, .. },
            Error::Corrupt { offset, reason, .. },
        ) if offset % 512 == 504 && reason.contains("in front of an intact record")
    )
}

fn segments(fs: &SimFs) -> usize {
    fs.list_dir(Path::new(DIR))
        .map(|names| names.iter().filter(|n| n.ends_with(".wal")).count())
        .unwrap_or(0)
}

#[derive(Debug, Default)]
struct Tally {
    states: u64,
    no_journal: u64,
    repaired: u64,
    refused: u64,
    on_new_checkpoint: u64,
}

fn check_state(out: &Outcome, disk: &SimFs, crash: Crash, what: &str, t: &mut Tally) {
    t.states += 1;
    if !options(disk).exists(DIR) {
        assert_eq!(
            out.acked, 0,
            "{what}: no journal on disk, yet records were acknowledged"
        );
        t.no_journal += 1;
        return;
    }
    let store = match FileStore::open(DIR, options(disk)) {
        Ok(store) => store,
        Err(e) if allowed_refusal(crash, &e) => {
            t.refused += 1;
            return;
        }
        Err(e) => panic!("{what}: opening the store: {e}"),
    };
    t.repaired += u64::from(store.repaired().is_some());
    let mut replayed = Vec::new();
    let journal = Journal::open(store, Bytes, |r| replayed.push(r))
        .unwrap_or_else(|e| panic!("{what}: opening the journal: {e}"));
    let len = journal.last_index();
    assert!(
        len >= out.acked,
        "{what}: the journal ends at {len}, but {} was acknowledged",
        out.acked
    );
    assert!(
        len <= out.issued.len() as u64,
        "{what}: the journal holds {len} records, only {} were appended",
        out.issued.len()
    );
    assert_eq!(replayed, model(&out.issued, len), "{what}: replay");
    let acked_checkpoint = model_checkpoint(&out.issued, out.acked);
    let checkpoint = journal.checkpoint_index();
    assert!(
        checkpoint >= acked_checkpoint,
        "{what}: recovered checkpoint {checkpoint}, {acked_checkpoint} was acknowledged"
    );
    t.on_new_checkpoint += u64::from(checkpoint > acked_checkpoint);
    // The journal goes on.
    let next = journal
        .append(b"after the crash")
        .unwrap()
        .wait()
        .unwrap_or_else(|e| panic!("{what}: appending after recovery: {e}"));
    assert_eq!(next, len + 1, "{what}");
    journal.close().unwrap();
    if checkpoint > 0 {
        // Opening finished a purge the crash interrupted: of the segments starting before the
        // checkpoint, only the one holding its start is left.
        let before = options(disk)
            .segments(DIR)
            .unwrap()
            .iter()
            .filter(|s| s.index < checkpoint)
            .count();
        assert!(
            before <= 1,
            "{what}: {before} segments start before the checkpoint"
        );
    }
}

/// The start of the last checkpoint finalized within the first `len` records (0: none).
fn model_checkpoint(issued: &[Issued], len: u64) -> u64 {
    issued[..len as usize]
        .iter()
        .rev()
        .find_map(|r| match r {
            Issued::Finalize(start) => Some(*start),
            _ => None,
        })
        .unwrap_or(0)
}

#[test]
fn every_acknowledged_record_and_checkpoint_survives_a_power_loss_after_any_io_call() {
    let full = SimFs::new();
    let out = run(&full);
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.acked, out.issued.len() as u64);
    let points = full.calls().mutations;
    // Both finalizes really deleted segments, so crashes hit the purge too.
    assert_eq!(out.purged.len(), 2);
    assert!(
        out.purged.iter().all(|&n| n >= 2),
        "purged {:?}",
        out.purged
    );

    let mut tally = Tally::default();
    for point in 1..=points {
        let fs = SimFs::new();
        fs.power_off_after(point);
        let out = run(&fs);
        assert!(
            point == points || out.error.is_some(),
            "power loss after call {point} went unnoticed"
        );
        for crash in crash_states(point) {
            let what = format!("power loss after I/O call {point} of {points}, {crash:?}");
            check_state(&out, &fs.crash(crash), crash, &what, &mut tally);
        }
    }
    println!(
        "journal power loss: {} steps, {} records, finalizes purging {:?} segments; {points} crash points x {} states = {} \
         states: {} before the journal existed, {} after cutting a torn tail, {} recovered a \
         checkpoint newer than the last acknowledged one, {} refused as corrupt in an \
         unacknowledged tail; 0 acknowledged records lost",
        workload().len(),
        out.issued.len(),
        out.purged,
        crash_states(0).len(),
        tally.states,
        tally.no_journal,
        tally.repaired,
        tally.on_new_checkpoint,
        tally.refused,
    );
}

/// A process crash (the page cache survives) anywhere in the protocol loses nothing the
/// journal handed to the store, acknowledged or not, and leaves no torn tail.
#[test]
fn a_process_crash_loses_nothing_handed_to_the_store() {
    let full = SimFs::new();
    run(&full);
    let points = full.calls().mutations;
    for point in (1..=points).step_by(3) {
        let fs = SimFs::new();
        fs.power_off_after(point);
        let out = run(&fs);
        let disk = fs.crash(Crash::KeepUnsynced);
        if !options(&disk).exists(DIR) {
            continue;
        }
        let store = FileStore::open(DIR, options(&disk)).unwrap();
        assert!(store.repaired().is_none(), "after I/O call {point}");
        let journal = Journal::open(store, Bytes, |_| {}).unwrap();
        assert!(journal.last_index() >= out.acked, "after I/O call {point}");
        journal.close().unwrap();
    }
}

/// What a concurrent run accepted, by index, and the highest index acknowledged.
#[derive(Debug, Default)]
struct Concurrent {
    issued: std::collections::BTreeMap<u64, Issued>,
    acked: u64,
}

/// Four appenders (each waiting for each record) beside a thread that takes two checkpoints:
/// the store gets batches of several records, so power losses hit multi-record writes.
fn run_concurrent(fs: &SimFs) -> Concurrent {
    use std::sync::Mutex;
    let shared = Mutex::new(Concurrent::default());
    let Ok(store) = FileStore::create(DIR, options(fs)) else {
        return Concurrent::default();
    };
    let Ok(journal) = Journal::open(store, Bytes, |_| {}) else {
        return Concurrent::default();
    };
    let note = |index: u64, issued: Issued| {
        shared.lock().unwrap().issued.insert(index, issued);
    };
    let ack = |index: u64| {
        let mut st = shared.lock().unwrap();
        st.acked = st.acked.max(index);
    };
    std::thread::scope(|s| {
        for t in 0..4 {
            let (journal, note, ack) = (&journal, &note, &ack);
            s.spawn(move || {
                for n in 0..12 {
                    let record = payload(&format!("t{t}"), n);
                    let Ok(done) = journal.append(&record) else {
                        return;
                    };
                    note(done.index(), Issued::Data(record));
                    match done.wait() {
                        Ok(index) => ack(index),
                        Err(_) => return,
                    }
                }
            });
        }
        let (journal, note, ack) = (&journal, &note, &ack);
        s.spawn(move || {
            for round in 0..2 {
                std::thread::sleep(std::time::Duration::from_millis(1));
                let Ok(checkpoint) = journal.start_checkpoint() else {
                    return;
                };
                note(checkpoint.start_index(), Issued::Start);
                for n in 0..3 {
                    let record = payload(&format!("state {round}"), n);
                    let Ok(index) = checkpoint.append(&record) else {
                        return;
                    };
                    note(index, Issued::Record(record));
                }
                let start = checkpoint.start_index();
                let Ok(done) = checkpoint.finalize() else {
                    return;
                };
                note(done.index(), Issued::Finalize(start));
                match done.wait() {
                    Ok(index) => ack(index),
                    Err(_) => return,
                }
            }
        });
    });
    let _ = journal.close();
    shared.into_inner().unwrap()
}

#[test]
fn concurrent_appenders_and_checkpoints_survive_a_power_loss_after_any_io_call() {
    let full = SimFs::new();
    let out = run_concurrent(&full);
    assert_eq!(out.issued.len(), 4 * 12 + 2 * 5);
    let points = full.calls().mutations;
    let (mut states, mut batched) = (0, 0);
    for point in 1..=points + 20 {
        let fs = SimFs::new();
        fs.power_off_after(point);
        let run = run_concurrent(&fs);
        // Indexes are dense: every accepted record is known.
        let issued: Vec<Issued> = run.issued.values().cloned().collect();
        assert!(
            run.issued.keys().copied().eq(1..=issued.len() as u64),
            "power loss after call {point}: accepted indexes have gaps"
        );
        let out = Outcome {
            issued,
            acked: run.acked,
            ..Outcome::default()
        };
        batched += u64::from(fs.calls_of(raftwal::fs::sim::Op::SyncData) < out.issued.len() as u64);
        for crash in crash_states(point) {
            let what = format!("concurrent run, power loss after I/O call {point}, {crash:?}");
            check_state(&out, &fs.crash(crash), crash, &what, &mut Tally::default());
            states += 1;
        }
    }
    assert!(
        batched > 0,
        "group commit never put two records in one sync"
    );
    println!(
        "journal power loss, 4 appenders + checkpoints: {points} crash points (+20) x {} states = \
         {states} states, {batched} runs with batched syncs; 0 acknowledged records lost",
        crash_states(0).len()
    );
}
