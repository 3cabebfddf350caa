//! Property: whatever sequence of saves, overwrites, snapshot markers, cuts and reopens a raft
//! node performs, `read_all` returns exactly what a simple in-memory model of the log holds.

use proptest::prelude::*;
use raftwal::eraftpb::{Entry, HardState};
use raftwal::{Wal, WalOptions, WalSnapshot};

#[derive(Debug, Clone)]
enum Op {
    /// Append `count` entries of `size` bytes at the end of the log.
    Append { count: u64, size: usize },
    /// Overwrite the last `back` uncommitted entries with `count` new ones at a higher term.
    Overwrite { back: u64, count: u64 },
    /// Commit everything appended (a commit-only HardState change: not synced by itself).
    Commit,
    /// A new term with a vote (must be synced).
    Vote,
    /// A snapshot marker at the commit index.
    Snapshot,
    /// Cut a new segment now.
    Cut,
    /// Close and reopen the log from the beginning.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..4, 0usize..400).prop_map(|(count, size)| Op::Append { count, size }),
        2 => (1u64..4, 1u64..3).prop_map(|(back, count)| Op::Overwrite { back, count }),
        3 => Just(Op::Commit),
        1 => Just(Op::Vote),
        2 => Just(Op::Snapshot),
        1 => Just(Op::Cut),
        2 => Just(Op::Reopen),
    ]
}

/// What the log should hold.
#[derive(Default)]
struct Model {
    entries: Vec<Entry>,
    hard_state: HardState,
    snapshots: Vec<WalSnapshot>,
}

impl Model {
    fn last_index(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.index)
    }

    fn entry(&self, index: u64, size: usize) -> Entry {
        let term = self.hard_state.term.max(1);
        Entry {
            index,
            term,
            data: (0..size)
                .map(|i| (index as usize * 31 + i) as u8)
                .collect::<Vec<_>>()
                .into(),
            ..Default::default()
        }
    }
}

fn options() -> WalOptions {
    WalOptions::new()
        .segment_size(2048)
        .prepare_segments_in_background(false)
}

fn reopen(dir: &std::path::Path, model: &Model) -> Wal {
    let mut wal = options().open(dir, &WalSnapshot::default()).unwrap();
    let recovered = wal.read_all().unwrap();
    assert_eq!(recovered.entries, model.entries, "entries after reopen");
    assert_eq!(
        recovered.hard_state, model.hard_state,
        "hard state after reopen"
    );
    wal
}

fn run(ops: Vec<Op>) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let mut wal = options().create(&dir, b"model").unwrap();
    let mut model = Model::default();
    model.hard_state.term = 1;
    wal.save(&model.hard_state, &[]).unwrap();

    for op in ops {
        match op {
            Op::Append { count, size } => {
                let first = model.last_index() + 1;
                let new: Vec<Entry> = (first..first + count)
                    .map(|i| model.entry(i, size))
                    .collect();
                wal.save(&model.hard_state, &new).unwrap();
                model.entries.extend(new);
            }
            Op::Overwrite { back, count } => {
                // raft only overwrites entries above the commit index.
                let uncommitted = model.last_index() - model.hard_state.commit;
                let back = back.min(uncommitted);
                if back == 0 {
                    continue;
                }
                model.hard_state.term += 1;
                let first = model.last_index() - back + 1;
                let new: Vec<Entry> = (first..first + count).map(|i| model.entry(i, 17)).collect();
                wal.save(&model.hard_state, &new).unwrap();
                model.entries.truncate((first - 1) as usize);
                model.entries.extend(new);
            }
            Op::Commit => {
                model.hard_state.commit = model.last_index();
                wal.save(&model.hard_state, &[]).unwrap();
            }
            Op::Vote => {
                model.hard_state.term += 1;
                model.hard_state.vote = model.hard_state.term % 3 + 1;
                wal.save(&model.hard_state, &[]).unwrap();
            }
            Op::Snapshot => {
                let index = model.hard_state.commit;
                let term = model
                    .entries
                    .get(index.wrapping_sub(1) as usize)
                    .map_or(0, |e| e.term);
                let snap = WalSnapshot::new(index, term);
                wal.save_snapshot_marker(&snap).unwrap();
                model.snapshots.push(snap);
            }
            Op::Cut => wal.cut().unwrap(),
            Op::Reopen => {
                wal.close().unwrap();
                wal = reopen(&dir, &model);
            }
        }
    }
    wal.close().unwrap();
    drop(reopen(&dir, &model));

    // Reading from any snapshot marker yields exactly the entries after it.
    for snap in &model.snapshots {
        let mut wal = options().open_for_read(&dir, snap).unwrap();
        let recovered = wal.read_all().unwrap();
        let after: Vec<Entry> = model
            .entries
            .iter()
            .filter(|e| e.index > snap.index)
            .cloned()
            .collect();
        assert_eq!(recovered.entries, after, "reading from {snap:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn read_all_equals_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops);
    }
}
