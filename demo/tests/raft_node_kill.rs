//! A raft-rs node process on the async Ready path, killed with SIGKILL at random moments: every
//! command it acknowledged (applied, hence committed, hence persisted by `submit`'s completion
//! before `on_persist_ready`) is in its storage when reopened.
//!
//! The node is a single voter, so raft commits an entry once its own save is durable: an
//! acknowledgment lost to the kill would mean a completion fired before the fdatasync. The
//! child is this test binary re-run with `RAFTWAL_NODE_KILL_CHILD` set; it snapshots, compacts
//! and purges as it goes, so kills also strike those.

use std::collections::{BTreeSet, VecDeque};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use raft::eraftpb::ConfState;
use raft::{Config, GetEntriesContext, RawNode, StateRole, Storage as _};
use raftwal::{RaftStorage, StorageOptions, SyncPolicy, WalOptions};

const CHILD_ENV: &str = "RAFTWAL_NODE_KILL_CHILD";
const ROUNDS: u64 = 12;

fn options() -> StorageOptions {
    StorageOptions::new()
        .wal(WalOptions::new().segment_size(16 * 1024))
        .group_commit(SyncPolicy::Grouped)
        .entry_cache_bytes(4096)
}

/// The commands a storage holds: those in its newest snapshot, then every entry after it.
fn commands_in(storage: &RaftStorage) -> BTreeSet<String> {
    let mut commands: BTreeSet<String> = std::str::from_utf8(&storage.latest_snapshot().data)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let (first, last) = (
        storage.first_index().unwrap(),
        storage.last_index().unwrap(),
    );
    for entry in storage
        .entries(first, last + 1, None, GetEntriesContext::empty(false))
        .unwrap()
    {
        if !entry.data.is_empty() {
            commands.insert(String::from_utf8(entry.data.to_vec()).unwrap());
        }
    }
    commands
}

/// The child: a one-node raft-rs loop on the async path, proposing `<round>-<n>` forever and
/// printing `ack <command>` as each is applied.
#[test]
fn node_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // Not a child: nothing to do.
    };
    let (dir, round) = spec.split_once('|').expect("dir|round");
    let dir = Path::new(dir);
    let storage = if raftwal::Storage::exists(dir, &options()) {
        RaftStorage::open(dir, options()).expect("open")
    } else {
        let voters = ConfState {
            voters: vec![1],
            ..Default::default()
        };
        RaftStorage::create(dir, b"node", voters, options()).expect("create")
    };
    let mut state = commands_in(&storage);
    let mut snapshot_index = storage.latest_snapshot().get_metadata().index;
    let config = Config {
        id: 1,
        applied: snapshot_index,
        ..Default::default()
    };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let mut node = RawNode::new(&config, storage, &logger).expect("raft");
    node.campaign().expect("campaign");
    let mut out = std::io::stdout().lock();
    let mut pending = VecDeque::new();
    for n in 0u64.. {
        if node.raft.state == StateRole::Leader && pending.len() < 8 {
            node.propose(vec![], format!("{round}-{n}").into_bytes())
                .expect("propose");
        }
        while let Some(outcome) = pending
            .front()
            .and_then(|(_, done): &(u64, raftwal::Completion)| done.try_wait())
        {
            outcome.expect("persist");
            let (number, _) = pending.pop_front().unwrap();
            node.on_persist_ready(number);
        }
        if !node.has_ready() {
            std::thread::sleep(Duration::from_micros(50));
            continue;
        }
        let mut ready = node.ready();
        for entry in ready.take_committed_entries() {
            if !entry.data.is_empty() {
                let command = String::from_utf8(entry.data.to_vec()).unwrap();
                writeln!(out, "ack {command}")
                    .and_then(|()| out.flush())
                    .expect("stdout");
                state.insert(command);
            }
        }
        let done = node
            .mut_store()
            .submit(ready.hs(), ready.entries())
            .expect("submit");
        pending.push_back((ready.number(), done));
        node.advance_append_async(ready);
        node.advance_apply();
        let applied = node.raft.raft_log.applied;
        if applied >= snapshot_index + 200 {
            let data = state.iter().map(|c| format!("{c}\n")).collect::<String>();
            let store = node.mut_store();
            store
                .snapshot_and_compact(applied, data.into_bytes())
                .expect("snapshot");
            store.purge(1).expect("purge");
            snapshot_index = applied;
        }
    }
}

#[test]
fn sigkill_of_an_async_raft_node_loses_no_acknowledged_command() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("node");
    let exe = std::env::current_exe().unwrap();
    let mut acked = BTreeSet::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", "node_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{}|{round}", dir.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            // Only whole lines count: a line cut short by the kill was never acknowledged.
            while stdout.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if line.ends_with(b"\n") {
                    let text = String::from_utf8_lossy(&line);
                    if let Some(command) = text.trim().strip_prefix("ack ") {
                        let _ = tx.send(command.to_string());
                    }
                }
                line.clear();
            }
        });
        // Kill at a varying moment: during start-up and recovery, or among the saves.
        std::thread::sleep(Duration::from_millis(30 + (round * 37) % 200));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        reader.join().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child exited by itself"
        );
        let before = acked.len();
        acked.extend(rx.try_iter());

        if !raftwal::Storage::exists(&dir, &options()) {
            assert!(acked.is_empty(), "round {round}: the storage is gone");
            continue;
        }
        let storage = RaftStorage::open(&dir, options())
            .unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
        let held = commands_in(&storage);
        let lost: Vec<&String> = acked.difference(&held).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged commands lost, e.g. {:?}",
            lost.len(),
            lost.first()
        );
        println!(
            "round {round}: {} acknowledged this round, {} in all, all present ({} held)",
            acked.len() - before,
            acked.len(),
            held.len()
        );
        storage.close().unwrap();
    }
    assert!(
        acked.len() > 100,
        "only {} commands acknowledged",
        acked.len()
    );
}
