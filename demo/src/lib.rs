//! Three raft-rs nodes in one process, each on its own raftwal directory, replicating a
//! key-value map through crashes.
//!
//! ```text
//! cargo run --release -p raftwal-demo -- [--commands N] [--snapshot-every K] [--dir DIR]
//! ```
//!
//! Channels are the network and one loop drives every node in turn (tick, deliver, Ready).
//! Along the way followers and leaders are crashed five times — dropped without `close`, most
//! in the middle of a Ready (before sending, between sending and persisting, after persisting)
//! — and restarted from their directories. Each node snapshots its map every K applied entries (snapshot, compact,
//! release, purge). At the end the three maps must be identical and hold every acknowledged
//! command, and each node reopened from disk must rebuild the same map; any mismatch exits
//! non-zero. The binary `raft_cluster` and the test `tests/raft_cluster.rs` run this code.
//!
//! With `--async` the nodes take raft-rs's async Ready path: each Ready is submitted
//! ([`RaftStorage::submit`], group commit underneath), the loop goes on with
//! `advance_append_async`, and `on_persist_ready` runs when the save's completion has fired;
//! the messages that need the save durable wait for it too.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use raft::eraftpb::{ConfState, Entry, EntryType, Message, MessageType};
use raft::{Config, RawNode, SnapshotStatus, StateRole, Storage as _};
use raftwal::{Completion, RaftStorage, StorageOptions, SyncPolicy, WalOptions};

/// The members of the cluster.
pub const NODES: [u64; 3] = [1, 2, 3];

/// Iterations a command may stay unacknowledged before it is proposed again.
const RETRY_AFTER: u64 = 60;
/// Iterations a crashed node stays down.
const DOWN_FOR: u64 = 30;
/// New commands proposed per iteration at most, so that crashes strike mid-stream.
const PROPOSALS_PER_ITERATION: usize = 8;

/// What to run.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Parent of the nodes' directories (`node-1`, `node-2`, `node-3`); must not hold them yet.
    pub dir: PathBuf,
    /// Commands to propose and see acknowledged.
    pub commands: u64,
    /// A node snapshots its state machine every this many applied entries.
    pub snapshot_every: u64,
    /// WAL segment size: small, so segments are cut (and purged) often.
    pub segment_size: u64,
    /// WAL segment files a purge leaves at least.
    pub keep_segments: usize,
    /// Commands in flight (proposed, not acknowledged) at most.
    pub window: usize,
    /// raft-rs's async Ready path: submit each Ready's save and go on, `on_persist_ready` once
    /// it is durable (group commit underneath).
    pub async_ready: bool,
}

impl ClusterConfig {
    /// The defaults of the example, under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> ClusterConfig {
        ClusterConfig {
            dir: dir.into(),
            commands: 5000,
            snapshot_every: 500,
            segment_size: 64 * 1024,
            keep_segments: 2,
            window: 128,
            async_ready: false,
        }
    }
}

/// What happened.
#[derive(Debug, Default)]
pub struct Report {
    /// Commands proposed (each once at least).
    pub commands: u64,
    /// Commands acknowledged: applied by a state machine, hence committed.
    pub acknowledged: u64,
    /// Proposals repeated after a leader was lost.
    pub retries: u64,
    /// Snapshots the nodes took of their own state machines.
    pub snapshots: u64,
    /// Snapshots the leader sent that a follower installed.
    pub snapshots_installed: u64,
    /// Nodes crashed (dropped without close).
    pub crashes: u64,
    /// Node restarts from disk after a crash.
    pub restarts: u64,
    /// Torn WAL tails repaired on restart.
    pub repairs: u64,
    /// WAL segments the nodes' purges deleted.
    pub segments_purged: u64,
    /// WAL segment files on disk per node at the end.
    pub wal_files: BTreeMap<u64, usize>,
    /// The most WAL segment files seen on disk per node during the run.
    pub max_wal_files: BTreeMap<u64, usize>,
    /// Crashes and restarts, in order.
    pub events: Vec<String>,
    /// Loop iterations (one tick each).
    pub iterations: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "commands: {} proposed, {} acknowledged, {} re-proposed",
            self.commands, self.acknowledged, self.retries
        )?;
        writeln!(
            f,
            "snapshots: {} taken, {} installed from the leader",
            self.snapshots, self.snapshots_installed
        )?;
        writeln!(f, "WAL segments purged: {}", self.segments_purged)?;
        for event in &self.events {
            writeln!(f, "  {event}")?;
        }
        writeln!(
            f,
            "crashes: {}, restarts from disk: {} (torn WAL tails repaired: {})",
            self.crashes, self.restarts, self.repairs
        )?;
        for (id, files) in &self.wal_files {
            writeln!(
                f,
                "node {id}: {files} WAL files on disk (at most {} during the run)",
                self.max_wal_files.get(id).copied().unwrap_or(0)
            )?;
        }
        write!(
            f,
            "iterations: {}, wall time: {:.2?}",
            self.iterations, self.elapsed
        )
    }
}

/// Where a scheduled crash strikes a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Between two iterations.
    Idle,
    /// In a Ready with entries, before sending anything: a leader's new proposals die with it.
    BeforeSend,
    /// In a Ready with entries: after sending its messages, before persisting anything.
    BeforePersist,
    /// In a Ready with entries: after persisting, before sending the persisted messages. On the
    /// async path: after submitting the save, before it is known to be durable.
    AfterPersist,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    Follower,
    Leader,
}

/// When (fraction of commands proposed), whom and where to crash. Each crash waits until every
/// node is up again, so a majority is always alive.
const CRASHES: [(f64, Victim, Stage); 5] = [
    (0.1, Victim::Follower, Stage::BeforePersist),
    (0.3, Victim::Leader, Stage::AfterPersist),
    (0.5, Victim::Follower, Stage::Idle),
    (0.65, Victim::Leader, Stage::BeforeSend),
    (0.8, Victim::Leader, Stage::BeforePersist),
];

/// A running node: raft, its storage (inside raft) and the state machine.
struct Live {
    raft: RawNode<RaftStorage>,
    kv: BTreeMap<String, String>,
    /// Index of the newest snapshot taken or installed.
    snapshot_index: u64,
    /// On the async path: Readies submitted and not yet known durable, in order, with the
    /// messages that must wait for that.
    pending: VecDeque<Pending>,
}

/// A Ready's save in flight on the async path.
struct Pending {
    number: u64,
    done: Completion,
    persisted_messages: Vec<Message>,
}

struct Node {
    id: u64,
    dir: PathBuf,
    inbox: Receiver<Message>,
    live: Option<Live>,
    /// A crash waiting for its stage, and the iteration after which it strikes anyway.
    crash_at: Option<(Stage, u64)>,
    down_until: u64,
}

/// A message that could not be delivered, reported back to its sender as a transport would.
struct Undelivered {
    from: u64,
    to: u64,
    snapshot: bool,
}

/// Counters the nodes add to.
#[derive(Default)]
struct Stats {
    acked: BTreeMap<u64, u64>,
    snapshots: u64,
    installed: u64,
    purged: u64,
}

fn storage_options(config: &ClusterConfig) -> StorageOptions {
    let options = StorageOptions::new().wal(WalOptions::new().segment_size(config.segment_size));
    if config.async_ready {
        options.group_commit(SyncPolicy::Grouped)
    } else {
        options
    }
}

fn raft_config(id: u64, applied: u64) -> Result<Config, String> {
    let config = Config {
        id,
        election_tick: 10,
        heartbeat_tick: 3,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        applied,
        pre_vote: true,
        check_quorum: true,
        ..Default::default()
    };
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn command(id: u64) -> (String, String) {
    (format!("key-{id:06}"), format!("value-{id}"))
}

/// The state machine's snapshot: `key=value` lines.
fn encode_kv(kv: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = String::new();
    for (k, v) in kv {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('\n');
    }
    out.into_bytes()
}

fn decode_kv(data: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let text = std::str::from_utf8(data).map_err(|e| format!("snapshot data: {e}"))?;
    text.lines()
        .map(|line| {
            line.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("snapshot data: bad line {line:?}"))
        })
        .collect()
}

/// Applies committed entries to the state machine; returns the command ids they carry.
fn apply(kv: &mut BTreeMap<String, String>, entries: &[Entry]) -> Result<Vec<u64>, String> {
    let mut ids = Vec::new();
    for entry in entries {
        // Empty entries come from newly elected leaders; there are no conf changes here.
        if entry.data.is_empty() || entry.get_entry_type() != EntryType::EntryNormal {
            continue;
        }
        let text = std::str::from_utf8(&entry.data).map_err(|e| format!("entry data: {e}"))?;
        let (k, v) = text
            .split_once('=')
            .ok_or_else(|| format!("entry {}: bad command {text:?}", entry.index))?;
        let id = k
            .strip_prefix("key-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("entry {}: bad key {k:?}", entry.index))?;
        kv.insert(k.to_string(), v.to_string());
        ids.push(id);
    }
    Ok(ids)
}

fn wal_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(raftwal::WAL_DIR))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".wal"))
                .count()
        })
        .unwrap_or(0)
}

fn start(id: u64, storage: RaftStorage) -> Result<Live, String> {
    let snapshot = storage.latest_snapshot();
    let kv = decode_kv(&snapshot.data)?;
    let snapshot_index = snapshot.get_metadata().index;
    let raft = RawNode::new(&raft_config(id, snapshot_index)?, storage, &logger())
        .map_err(|e| format!("node {id}: {e}"))?;
    Ok(Live {
        raft,
        kv,
        snapshot_index,
        pending: VecDeque::new(),
    })
}

fn send(net: &HashMap<u64, Sender<Message>>, messages: Vec<Message>) {
    for message in messages {
        if let Some(inbox) = net.get(&message.to) {
            // The receivers live as long as the cluster.
            let _ = inbox.send(message);
        }
    }
}

impl Node {
    /// Handles one Ready. Returns `Ok(true)` when the scheduled crash struck.
    fn on_ready(
        &mut self,
        net: &HashMap<u64, Sender<Message>>,
        config: &ClusterConfig,
        stats: &mut Stats,
        iteration: u64,
    ) -> Result<bool, String> {
        let id = self.id;
        let crash_at = self.crash_at.map(|(stage, _)| stage);
        let Some(live) = self.live.as_mut() else {
            return Ok(false);
        };
        if !live.raft.has_ready() {
            return Ok(false);
        }
        let err = |e: raftwal::Error| format!("node {id}: {e}");
        let mut ready = live.raft.ready();
        let mid_stream = !ready.entries().is_empty();
        if mid_stream && crash_at == Some(Stage::BeforeSend) {
            return Ok(true);
        }

        // A leader may send before it persists: it counts itself only once persisted.
        send(net, ready.take_messages());
        if mid_stream && crash_at == Some(Stage::BeforePersist) {
            return Ok(true);
        }
        // A snapshot goes the blocking way even on the async path: raft may apply it only once
        // it is persisted, and every save submitted before it must be durable first.
        let installs_snapshot = !ready.snapshot().is_empty();
        if installs_snapshot {
            while let Some(persisted) = live.pending.pop_front() {
                persisted
                    .done
                    .wait()
                    .map_err(|e| format!("node {id}: persisting a Ready: {e}"))?;
                send(net, persisted.persisted_messages);
                live.raft.on_persist_ready(persisted.number);
            }
        }
        if installs_snapshot {
            let snapshot = ready.snapshot().clone();
            live.kv = decode_kv(&snapshot.data)?;
            live.snapshot_index = snapshot.get_metadata().index;
            live.raft
                .mut_store()
                .apply_snapshot(snapshot)
                .map_err(err)?;
            stats.installed += 1;
        }
        for cmd in apply(&mut live.kv, &ready.take_committed_entries())? {
            stats.acked.entry(cmd).or_insert(iteration);
        }
        let light = if config.async_ready && !installs_snapshot {
            // Written now, durable later: the loop goes on, and the messages that need the save
            // durable wait for its completion (see `on_persisted`).
            let done = live
                .raft
                .mut_store()
                .submit(ready.hs(), ready.entries())
                .map_err(err)?;
            if mid_stream && crash_at == Some(Stage::AfterPersist) {
                return Ok(true);
            }
            live.pending.push_back(Pending {
                number: ready.number(),
                done,
                persisted_messages: ready.take_persisted_messages(),
            });
            live.raft.advance_append_async(ready);
            None
        } else {
            // Entries and HardState in one write and one sync, before the messages that need
            // them.
            live.raft
                .mut_store()
                .save(ready.hs(), ready.entries())
                .map_err(err)?;
            if mid_stream && crash_at == Some(Stage::AfterPersist) {
                return Ok(true);
            }
            send(net, ready.take_persisted_messages());
            Some(live.raft.advance(ready))
        };
        if let Some(mut light) = light {
            if let Some(commit) = light.commit_index() {
                live.raft.mut_store().set_commit(commit).map_err(err)?;
            }
            send(net, light.take_messages());
            for cmd in apply(&mut live.kv, &light.take_committed_entries())? {
                stats.acked.entry(cmd).or_insert(iteration);
            }
        }
        live.raft.advance_apply();

        let applied = live.raft.raft.raft_log.applied;
        if applied >= live.snapshot_index + config.snapshot_every {
            let store = live.raft.mut_store();
            store
                .snapshot_and_compact(applied, encode_kv(&live.kv))
                .map_err(err)?;
            stats.purged += store.purge(config.keep_segments).map_err(err)?.len() as u64;
            live.snapshot_index = applied;
            stats.snapshots += 1;
        }
        Ok(false)
    }

    /// On the async path: for every submitted Ready whose save is durable, in order, sends the
    /// messages that waited for it and tells raft (`on_persist_ready`).
    fn on_persisted(&mut self, net: &HashMap<u64, Sender<Message>>) -> Result<(), String> {
        let id = self.id;
        let Some(live) = self.live.as_mut() else {
            return Ok(());
        };
        while let Some(outcome) = live.pending.front().and_then(|p| p.done.try_wait()) {
            outcome.map_err(|e| format!("node {id}: persisting a Ready: {e}"))?;
            let Some(persisted) = live.pending.pop_front() else {
                break;
            };
            send(net, persisted.persisted_messages);
            live.raft.on_persist_ready(persisted.number);
        }
        Ok(())
    }

    /// Drops the node as a crash would: no close, no sync of what is buffered.
    fn crash(&mut self, iteration: u64) {
        self.live = None;
        self.crash_at = None;
        self.down_until = iteration + DOWN_FOR;
    }

    fn is_leader(&self) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| l.raft.raft.state == StateRole::Leader)
    }
}

/// Runs the cluster; `Err` describes the first failure or mismatch.
pub fn run(config: &ClusterConfig) -> Result<Report, String> {
    let started = Instant::now();
    let options = storage_options(config);
    let conf_state = ConfState {
        voters: NODES.to_vec(),
        ..Default::default()
    };

    let mut net = HashMap::new();
    let mut nodes = Vec::new();
    for id in NODES {
        let (tx, rx) = channel();
        net.insert(id, tx);
        let dir = config.dir.join(format!("node-{id}"));
        let storage =
            RaftStorage::create(&dir, &id.to_le_bytes(), conf_state.clone(), options.clone())
                .map_err(|e| format!("node {id}: create: {e}"))?;
        nodes.push(Node {
            id,
            dir,
            inbox: rx,
            live: Some(start(id, storage)?),
            crash_at: None,
            down_until: 0,
        });
    }

    let mut report = Report {
        commands: config.commands,
        ..Report::default()
    };
    let mut stats = Stats::default();
    // Commands proposed and not yet acknowledged, with the iteration they were proposed at.
    let mut in_flight: BTreeMap<u64, u64> = BTreeMap::new();
    let mut next_command = 0;
    let mut crashes = CRASHES.iter().peekable();
    let mut undelivered: Vec<Undelivered> = Vec::new();
    let max_iterations = 20_000 + config.commands * 20;

    for iteration in 1.. {
        report.iterations = iteration;
        if iteration > max_iterations {
            return Err(format!(
                "no convergence after {max_iterations} iterations: {} of {} commands acknowledged",
                stats.acked.len(),
                config.commands
            ));
        }

        // Restart nodes whose downtime is over, from their directories alone.
        for node in nodes.iter_mut() {
            if node.live.is_none() && iteration >= node.down_until {
                let storage = RaftStorage::open(&node.dir, options.clone())
                    .map_err(|e| format!("node {}: reopen: {e}", node.id))?;
                report.repairs += u64::from(storage.repaired().is_some());
                node.live = Some(start(node.id, storage)?);
                report.restarts += 1;
                report.events.push(format!(
                    "iteration {iteration}: node {} restarted from disk",
                    node.id
                ));
            }
        }

        // Tell senders about messages lost to a crashed node, as a transport would.
        for lost in undelivered.drain(..) {
            if let Some(live) = nodes
                .iter_mut()
                .find(|n| n.id == lost.from)
                .and_then(|n| n.live.as_mut())
            {
                if lost.snapshot {
                    live.raft.report_snapshot(lost.to, SnapshotStatus::Failure);
                } else {
                    live.raft.report_unreachable(lost.to);
                }
            }
        }

        // Schedule the next crash once enough is proposed, every node is up and no other crash
        // is pending: a majority stays alive.
        let all_up = nodes
            .iter()
            .all(|n| n.live.is_some() && n.crash_at.is_none());
        let leader = nodes.iter().position(Node::is_leader);
        if let (Some(&&(fraction, victim, stage)), true, Some(leader)) =
            (crashes.peek(), all_up, leader)
        {
            if next_command as f64 >= fraction * config.commands as f64 {
                let target = match victim {
                    Victim::Leader => leader,
                    Victim::Follower => (leader + 1) % nodes.len(),
                };
                report.events.push(format!(
                    "iteration {iteration}: crash node {} ({victim:?}) {stage:?}",
                    nodes[target].id
                ));
                if stage == Stage::Idle {
                    nodes[target].crash(iteration);
                    report.crashes += 1;
                } else {
                    nodes[target].crash_at = Some((stage, iteration + DOWN_FOR));
                }
                crashes.next();
            }
        }

        // Propose to the leader: retries first, then new commands up to the window.
        if let Some(leader) = nodes.iter_mut().find(|n| n.is_leader()) {
            let live = leader.live.as_mut().ok_or("leader is live")?;
            for (&cmd, proposed_at) in in_flight.iter_mut() {
                if iteration - *proposed_at > RETRY_AFTER {
                    let (k, v) = command(cmd);
                    if live
                        .raft
                        .propose(vec![], format!("{k}={v}").into_bytes())
                        .is_ok()
                    {
                        *proposed_at = iteration;
                        report.retries += 1;
                    }
                }
            }
            let mut proposed = 0;
            while proposed < PROPOSALS_PER_ITERATION
                && in_flight.len() < config.window
                && next_command < config.commands
            {
                let (k, v) = command(next_command);
                if live
                    .raft
                    .propose(vec![], format!("{k}={v}").into_bytes())
                    .is_err()
                {
                    break;
                }
                in_flight.insert(next_command, iteration);
                next_command += 1;
                proposed += 1;
            }
        }

        // Tick, deliver and handle the Ready of every node.
        for node in nodes.iter_mut() {
            let Some(live) = node.live.as_mut() else {
                for message in node.inbox.try_iter() {
                    undelivered.push(Undelivered {
                        from: message.from,
                        to: message.to,
                        snapshot: message.get_msg_type() == MessageType::MsgSnapshot,
                    });
                }
                continue;
            };
            if node
                .crash_at
                .is_some_and(|(_, deadline)| iteration > deadline)
            {
                // No Ready with entries came: nothing is in flight, crash between iterations.
                node.crash(iteration);
                report.crashes += 1;
                report.events.push(format!(
                    "iteration {iteration}: node {} crashed between iterations",
                    node.id
                ));
                continue;
            }
            live.raft.tick();
            for message in node.inbox.try_iter() {
                // A stale message from before a restart may be refused; raft copes.
                let _ = live.raft.step(message);
            }
            node.on_persisted(&net)?;
            if node.on_ready(&net, config, &mut stats, iteration)? {
                node.crash(iteration);
                report.crashes += 1;
                report.events.push(format!(
                    "iteration {iteration}: node {} crashed in a Ready",
                    node.id
                ));
            }
        }
        in_flight.retain(|cmd, _| !stats.acked.contains_key(cmd));
        for node in &nodes {
            let files = wal_files(&node.dir);
            let max = report.max_wal_files.entry(node.id).or_default();
            *max = (*max).max(files);
        }

        let crashes_done = crashes.peek().is_none() && nodes.iter().all(|n| n.crash_at.is_none());
        if crashes_done && stats.acked.len() as u64 == config.commands && converged(&nodes) {
            break;
        }
    }

    report.acknowledged = stats.acked.len() as u64;
    report.snapshots = stats.snapshots;
    report.snapshots_installed = stats.installed;
    report.segments_purged = stats.purged;
    check_state_machines(&nodes, &stats, config.commands)?;
    let maps: Vec<BTreeMap<String, String>> = nodes
        .iter()
        .filter_map(|n| n.live.as_ref().map(|l| l.kv.clone()))
        .collect();

    // Stop every node cleanly, reopen it from disk alone, and rebuild its map: the snapshot,
    // then the committed entries after it.
    for (node, expected) in nodes.iter_mut().zip(&maps) {
        let mut live = node.live.take().ok_or("node is live")?;
        // raft owns the storage: sync it, then dropping the node releases its locks.
        live.raft
            .mut_store()
            .sync()
            .map_err(|e| format!("node {}: sync: {e}", node.id))?;
        drop(live);
        let rebuilt = rebuild(&node.dir, &options)?;
        if &rebuilt != expected {
            return Err(format!(
                "node {}: the map rebuilt from disk ({} keys) differs from the live one ({} keys)",
                node.id,
                rebuilt.len(),
                expected.len()
            ));
        }
        report.wal_files.insert(node.id, wal_files(&node.dir));
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Every node is up and has applied the same index, equal to the leader's commit.
fn converged(nodes: &[Node]) -> bool {
    let mut applied = nodes.iter().map(|n| {
        n.live.as_ref().map(|l| {
            let log = &l.raft.raft.raft_log;
            (log.applied, log.committed)
        })
    });
    let Some(Some(first)) = applied.next() else {
        return false;
    };
    first.0 == first.1 && applied.all(|a| a == Some(first))
}

/// The maps are identical and hold exactly the commands, each with its value.
fn check_state_machines(nodes: &[Node], stats: &Stats, commands: u64) -> Result<(), String> {
    let maps: Vec<&BTreeMap<String, String>> = nodes
        .iter()
        .map(|n| n.live.as_ref().map(|l| &l.kv).ok_or("node is live"))
        .collect::<Result<_, _>>()?;
    for (node, map) in nodes.iter().zip(&maps).skip(1) {
        if *map != maps[0] {
            return Err(format!(
                "node {} and node {} disagree ({} and {} keys)",
                nodes[0].id,
                node.id,
                maps[0].len(),
                map.len()
            ));
        }
    }
    for cmd in stats.acked.keys() {
        let (k, v) = command(*cmd);
        if maps[0].get(&k) != Some(&v) {
            return Err(format!("acknowledged command {k}={v} is missing"));
        }
    }
    if maps[0].len() as u64 != commands {
        return Err(format!(
            "the map holds {} keys for {commands} commands",
            maps[0].len()
        ));
    }
    Ok(())
}

/// The map a node's directory holds: its newest snapshot plus the committed entries after it.
fn rebuild(dir: &Path, options: &StorageOptions) -> Result<BTreeMap<String, String>, String> {
    let storage = RaftStorage::open(dir, options.clone())
        .map_err(|e| format!("{}: reopen: {e}", dir.display()))?;
    let mut kv = decode_kv(&storage.latest_snapshot().data)?;
    let first = storage.first_index().map_err(|e| e.to_string())?;
    let commit = storage.hard_state().commit;
    if commit >= first {
        let entries = storage
            .entries(
                first,
                commit + 1,
                None,
                raft::GetEntriesContext::empty(false),
            )
            .map_err(|e| format!("{}: entries: {e}", dir.display()))?;
        apply(&mut kv, &entries)?;
    }
    storage
        .close()
        .map_err(|e| format!("{}: close: {e}", dir.display()))?;
    Ok(kv)
}
