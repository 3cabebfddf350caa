//! Shared by the crash and fault tests: a deterministic workload over the simulated file system,
//! a record of what it acknowledged, and the checks a recovered log must pass.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use raftwal::eraftpb::{Entry, HardState};
use raftwal::fs::sim::{SimFs, XorShift};
use raftwal::fs::FileSystem as _;
use raftwal::{Error, Recovered, Wal, WalOptions, WalSnapshot};

#[path = "../support/raft_rules.rs"]
mod raft_rules;
use raft_rules::{apply_entry, is_empty_hard_state, must_sync};

/// Where the log lives on the simulated disk.
pub const DIR: &str = "/wal";
/// Small segments reach many cuts with little data.
pub const SEGMENT_SIZE: u64 = 8192;

/// Options over `fs`, with segments prepared inline so the order of I/O calls is deterministic.
pub fn options(fs: &SimFs) -> WalOptions {
    WalOptions::new()
        .segment_size(SEGMENT_SIZE)
        .file_system(Arc::new(fs.clone()))
        .prepare_segments_in_background(false)
}

/// One call of the workload.
#[derive(Debug, Clone)]
pub enum Step {
    /// `save(hard_state, entries)`.
    Save(HardState, Vec<Entry>),
    /// `save_snapshot(snapshot)` then `release_lock_to(snapshot.index)`.
    Snapshot(WalSnapshot),
}

/// A workload and what its calls issue.
#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<Step>,
}

/// The sequence number an entry's data starts with: its position among all entries issued.
pub fn seq_of(entry: &Entry) -> Option<usize> {
    let bytes: [u8; 8] = entry.data.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes) as usize)
}

fn entry(index: u64, term: u64, seq: usize, rng: &mut XorShift) -> Entry {
    // Mixed sizes: most small, some spanning sectors, a few spanning pages.
    let len = match rng.below(10) {
        0..=5 => 8 + rng.below(100),
        6..=8 => 100 + rng.below(1400),
        _ => 1500 + rng.below(4500),
    } as usize;
    let mut data = vec![0u8; len];
    rng.fill(&mut data);
    data[..8].copy_from_slice(&(seq as u64).to_le_bytes());
    Entry {
        index,
        term,
        data: data.into(),
        ..Default::default()
    }
}

impl Plan {
    /// `ops` calls of mixed kinds: appends of 1 to 4 entries, commit-only HardState changes
    /// (not synced), term changes that overwrite the uncommitted tail, snapshot markers with
    /// releases, and vote changes without entries.
    pub fn new(seed: u64, ops: usize) -> Plan {
        let mut rng = XorShift::new(seed);
        let mut log: Vec<Entry> = Vec::new();
        let (mut term, mut commit, mut seq, mut snap) = (1u64, 0u64, 0usize, 0u64);
        let mut steps = Vec::new();
        let hs = |term, commit| HardState {
            term,
            vote: 1,
            commit,
            ..Default::default()
        };
        for _ in 0..ops {
            let last = log.last().map_or(0, |e| e.index);
            let roll = rng.below(100);
            let step = if roll < 65 || last == 0 {
                let n = 1 + rng.below(4);
                let entries: Vec<Entry> = (0..n)
                    .map(|i| {
                        seq += 1;
                        entry(last + 1 + i, term, seq - 1, &mut rng)
                    })
                    .collect();
                Step::Save(hs(term, commit), entries)
            } else if roll < 75 && commit < last {
                commit = last;
                Step::Save(hs(term, commit), Vec::new())
            } else if roll < 83 {
                // A new leader overwrites the uncommitted tail.
                term += 1;
                let from = (last.saturating_sub(rng.below(3))).max(commit + 1);
                let entries: Vec<Entry> = (0..1 + rng.below(3))
                    .map(|i| {
                        seq += 1;
                        entry(from + i, term, seq - 1, &mut rng)
                    })
                    .collect();
                Step::Save(hs(term, commit), entries)
            } else if roll < 92 && commit > snap {
                snap = commit;
                let t = log[(snap - 1) as usize].term;
                Step::Snapshot(WalSnapshot::new(snap, t))
            } else {
                term += 1;
                Step::Save(hs(term, commit), Vec::new())
            };
            if let Step::Save(_, entries) = &step {
                for e in entries {
                    apply_entry(&mut log, 0, e.clone());
                }
            }
            steps.push(step);
        }
        Plan { steps }
    }

    /// Every entry in issue order.
    pub fn entries(&self) -> Vec<&Entry> {
        self.steps
            .iter()
            .flat_map(|s| match s {
                Step::Save(_, entries) => entries.iter().collect(),
                Step::Snapshot(_) => Vec::new(),
            })
            .collect()
    }

    /// Every non-empty HardState in issue order.
    pub fn hard_states(&self) -> Vec<&HardState> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Save(hs, _) if !is_empty_hard_state(hs) => Some(hs),
                _ => None,
            })
            .collect()
    }

    /// The log after the first `k` issued entries.
    pub fn log_after(&self, k: usize) -> Vec<Entry> {
        let mut log = Vec::new();
        for e in self.entries().into_iter().take(k) {
            apply_entry(&mut log, 0, e.clone());
        }
        log
    }
}

/// What a run of the workload got done.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `create` returned Ok.
    pub created: bool,
    /// Entries issued by calls that returned Ok and synced: all of them must survive.
    pub acked_entries: usize,
    /// HardStates written before the last synced call that returned Ok.
    pub acked_states: usize,
    /// Entries and HardStates handed to the log, acknowledged or not.
    pub issued_entries: usize,
    pub issued_states: usize,
    /// Calls that returned Ok.
    pub ok_calls: usize,
    /// The first error, if any.
    pub error: Option<Error>,
    /// After the first failed write, a further save returned `Error::Poisoned`.
    pub poisoned_after_failure: Option<bool>,
}

/// Runs `plan` on `fs` until a call fails.
pub fn run(plan: &Plan, fs: &SimFs) -> Outcome {
    let mut out = Outcome::default();
    let mut wal = match options(fs).create(DIR, b"crash-test") {
        Ok(wal) => wal,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    out.created = true;
    let mut prev = HardState::default();
    for step in &plan.steps {
        let (result, synced) = match step {
            Step::Save(hs, entries) => {
                out.issued_entries += entries.len();
                if !is_empty_hard_state(hs) {
                    out.issued_states += 1;
                }
                let synced = must_sync(hs, &prev, entries.len());
                prev = hs.clone();
                (wal.save(hs, entries), synced)
            }
            Step::Snapshot(snap) => (wal.save_snapshot_marker(snap), true),
        };
        if let Err(e) = result {
            out.error = Some(e);
            // A failed write poisons the log: nothing more may be acknowledged.
            let again = wal.save(&prev, &[Entry::default()]);
            out.poisoned_after_failure = Some(matches!(again, Err(Error::Poisoned { .. })));
            return out;
        }
        out.ok_calls += 1;
        if synced {
            out.acked_entries = out.issued_entries;
            out.acked_states = out.issued_states;
        }
        if let Step::Snapshot(snap) = step {
            // Releasing only unlocks: a failure there is reported and ends the run, but
            // does not poison the log.
            if let Err(e) = wal.release_lock_to(snap.index) {
                out.error = Some(e);
                return out;
            }
        }
    }
    if let Err(e) = wal.close() {
        out.error = Some(e);
    }
    out
}

/// Checks a recovered log against what was issued and acknowledged: the entries are the log
/// after some prefix of the issued entries that includes every acknowledged one (so each entry
/// is byte-identical to one written), and the HardState is one written no earlier than the last
/// acknowledged one.
pub fn check_recovered(plan: &Plan, out: &Outcome, rec: &Recovered, what: &str) {
    let k = match rec.entries.last() {
        None => 0,
        Some(last) => {
            seq_of(last).unwrap_or_else(|| panic!("{what}: entry without a sequence")) + 1
        }
    };
    assert!(
        k >= out.acked_entries,
        "{what}: lost acknowledged entries: recovered through issue #{k}, acknowledged {}",
        out.acked_entries
    );
    assert!(
        k <= out.issued_entries,
        "{what}: recovered entry #{k} that was never issued ({} issued)",
        out.issued_entries
    );
    assert!(
        rec.entries == plan.log_after(k),
        "{what}: recovered entries are not the log after the first {k} issued entries"
    );
    let states = plan.hard_states();
    let found = (out.acked_states..=out.issued_states).any(|j| {
        if j == 0 {
            is_empty_hard_state(&rec.hard_state)
        } else {
            *states[j - 1] == rec.hard_state
        }
    });
    assert!(
        found,
        "{what}: HardState {:?} is not one written between the last acknowledged (#{}) and the \
         last issued (#{})",
        rec.hard_state, out.acked_states, out.issued_states
    );
}

/// Whether the simulated disk holds a log at [`DIR`].
pub fn log_exists(fs: &SimFs) -> bool {
    fs.list_dir(Path::new(DIR))
        .map(|names| names.iter().any(|n| n.ends_with(".wal")))
        .unwrap_or(false)
}

/// How recovery went.
#[derive(Debug)]
pub enum Recovery {
    /// No log on disk: the crash came before `create` made it durable.
    NoLog,
    /// Opened for writing and read to the end, after a repair of a torn tail if `repaired`.
    Opened {
        wal: Box<Wal>,
        recovered: Recovered,
        repaired: bool,
    },
}

/// Opens the log for writing and reads it, repairing a torn tail (and nothing else) first.
pub fn recover(fs: &SimFs) -> Result<Recovery, Error> {
    if !log_exists(fs) {
        return Ok(Recovery::NoLog);
    }
    let mut wal = options(fs).open(DIR, &WalSnapshot::default())?;
    match wal.read_all() {
        Ok(recovered) => Ok(Recovery::Opened {
            wal: Box::new(wal),
            recovered,
            repaired: false,
        }),
        Err(Error::TornTail { .. }) => {
            drop(wal);
            let repaired = options(fs).repair(DIR)?;
            assert!(repaired.is_some(), "repair found no torn tail to cut");
            let mut wal = options(fs).open(DIR, &WalSnapshot::default())?;
            let recovered = wal.read_all()?;
            Ok(Recovery::Opened {
                wal: Box::new(wal),
                recovered,
                repaired: true,
            })
        }
        Err(e) => Err(e),
    }
}

/// Appends one entry (with a HardState) after `rec`, checks that a reader sees it, and returns
/// what a reader now recovers.
pub fn check_appending_continues(
    fs: &SimFs,
    mut wal: Box<Wal>,
    rec: &Recovered,
    what: &str,
) -> Recovered {
    let next = rec.entries.last().map_or(1, |e| e.index + 1);
    let term = rec
        .entries
        .last()
        .map_or(1, |e| e.term)
        .max(rec.hard_state.term);
    let appended = Entry {
        index: next,
        term,
        data: b"after the crash".to_vec().into(),
        ..Default::default()
    };
    let hs = HardState {
        term,
        vote: 1,
        commit: rec.hard_state.commit,
        ..Default::default()
    };
    wal.save(&hs, std::slice::from_ref(&appended))
        .unwrap_or_else(|e| panic!("{what}: append after recovery failed: {e}"));
    wal.close()
        .unwrap_or_else(|e| panic!("{what}: close failed: {e}"));
    let mut reader = options(fs)
        .open_for_read(DIR, &WalSnapshot::default())
        .unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
    let back = reader
        .read_all()
        .unwrap_or_else(|e| panic!("{what}: read after append failed: {e}"));
    assert_eq!(back.entries.last(), Some(&appended), "{what}: append lost");
    assert_eq!(back.entries.len(), rec.entries.len() + 1, "{what}");
    assert_eq!(back.hard_state, hs, "{what}");
    back
}
