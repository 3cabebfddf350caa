//! A 3-node openraft key-value cluster in one process, every node's log on raftwal.
//!
//! The nodes talk over an in-process network. The example writes keys through the leader from
//! several concurrent clients, stops (drops) one node, writes more, restarts that node from its
//! directory, writes more, and then checks that every acknowledged write is present on every
//! node. It exits non-zero if one is missing.
//!
//! ```text
//! cargo run --release -p raftwal-openraft --example kv_cluster [writes-per-phase] [clients]
//! ```
//!
//! Each node's directory holds `wal/` (the raftwal log: entries, vote, committed log id) and
//! `snapshot.bin` (the state machine's last snapshot, written atomically). Snapshots are taken
//! every 100 logs and the log is purged behind them, so restarts replay a purged log.
// The tests use this file as a module.
#![allow(dead_code)]
// openraft's network and storage traits return their (large) error types by value.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::io::{Cursor, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Config, Entry, EntryPayload, LogId, Raft, RaftSnapshotBuilder,
    SnapshotMeta, SnapshotPolicy, StorageError, StorageIOError, StoredMembership,
};
use raftwal::WalOptions;
use raftwal_openraft::LogStore;
use serde::{Deserialize, Serialize};

/// A write: set `key` to `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// The answer to a write: the value the key had before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The previous value.
    pub previous: Option<String>,
}

openraft::declare_raft_types!(
    /// The cluster's types: string keys and values, u64 node ids, raftwal log stores.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = BasicNode,
        Entry = Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The raft handle of a node.
pub type KvRaft = Raft<TypeConfig>;
type NodeId = u64;
type StorageResult<T> = Result<T, StorageError<NodeId>>;

// ---------------------------------------------------------------------------------------------
// The state machine: a map in memory, its snapshots on disk.
// ---------------------------------------------------------------------------------------------

/// A snapshot as stored in `snapshot.bin` and sent to followers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// What the state machine holds.
#[derive(Debug, Default)]
pub struct KvData {
    /// The last log id applied.
    pub last_applied: Option<LogId<NodeId>>,
    /// The last membership applied.
    pub last_membership: StoredMembership<NodeId, BasicNode>,
    /// The keys and values.
    pub kv: BTreeMap<String, String>,
    snapshot: Option<StoredSnapshot>,
    snapshot_count: u64,
}

/// The key-value state machine. Clones share the data (openraft keeps one as the snapshot
/// builder; the cluster keeps one to read the map).
#[derive(Debug, Clone)]
pub struct KvStateMachine {
    data: Arc<Mutex<KvData>>,
    /// Where the snapshot is kept (`None`: in memory only).
    snapshot_path: Option<PathBuf>,
}

fn sm_error(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

impl KvStateMachine {
    /// A state machine that keeps its snapshots in memory only.
    pub fn in_memory() -> KvStateMachine {
        KvStateMachine {
            data: Arc::default(),
            snapshot_path: None,
        }
    }

    /// A state machine that keeps its snapshot in `dir/snapshot.bin`, restored from it.
    pub fn open(dir: &Path) -> std::io::Result<KvStateMachine> {
        let path = dir.join("snapshot.bin");
        let mut data = KvData::default();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let snapshot: StoredSnapshot =
                    postcard::from_bytes(&bytes).map_err(std::io::Error::other)?;
                data.kv = postcard::from_bytes(&snapshot.data).map_err(std::io::Error::other)?;
                data.last_applied = snapshot.meta.last_log_id;
                data.last_membership = snapshot.meta.last_membership.clone();
                data.snapshot = Some(snapshot);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(KvStateMachine {
            data: Arc::new(Mutex::new(data)),
            snapshot_path: Some(path),
        })
    }

    /// The data, locked.
    pub fn data(&self) -> std::sync::MutexGuard<'_, KvData> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `snapshot` as the current one: durably first (tmp file, fsync, rename, fsync dir).
    fn keep(&self, snapshot: StoredSnapshot) -> std::io::Result<()> {
        if let Some(path) = &self.snapshot_path {
            let bytes = postcard::to_allocvec(&snapshot).map_err(std::io::Error::other)?;
            let tmp = path.with_extension("tmp");
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
        }
        self.data().snapshot = Some(snapshot);
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for KvStateMachine {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let snapshot = {
            let mut d = self.data();
            d.snapshot_count += 1;
            let last = d.last_applied;
            StoredSnapshot {
                meta: SnapshotMeta {
                    last_log_id: last,
                    last_membership: d.last_membership.clone(),
                    snapshot_id: format!("{}-{}", last.map_or(0, |l| l.index), d.snapshot_count),
                },
                data: postcard::to_allocvec(&d.kv).map_err(sm_error)?,
            }
        };
        self.keep(snapshot.clone()).map_err(sm_error)?;
        Ok(Snapshot {
            meta: snapshot.meta,
            snapshot: Box::new(Cursor::new(snapshot.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for KvStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        let d = self.data();
        Ok((d.last_applied, d.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Response>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut d = self.data();
        let mut responses = Vec::new();
        for entry in entries {
            d.last_applied = Some(entry.log_id);
            let previous = match entry.payload {
                EntryPayload::Blank => None,
                EntryPayload::Normal(req) => d.kv.insert(req.key, req.value),
                EntryPayload::Membership(m) => {
                    d.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    None
                }
            };
            responses.push(Response { previous });
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let snapshot = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        let kv = postcard::from_bytes(&snapshot.data).map_err(sm_error)?;
        self.keep(snapshot).map_err(sm_error)?;
        let mut d = self.data();
        d.kv = kv;
        d.last_applied = meta.last_log_id;
        d.last_membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        Ok(self.data().snapshot.clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// The in-process network.
// ---------------------------------------------------------------------------------------------

/// The nodes that are up, by id.
#[derive(Clone, Default)]
pub struct Router {
    nodes: Arc<Mutex<HashMap<NodeId, KvRaft>>>,
}

impl Router {
    fn get(&self, id: NodeId) -> Option<KvRaft> {
        self.nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    fn set(&self, id: NodeId, raft: Option<KvRaft>) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        match raft {
            Some(raft) => nodes.insert(id, raft),
            None => nodes.remove(&id),
        };
    }
}

/// A node's connection to `target`.
pub struct Connection {
    router: Router,
    target: NodeId,
}

fn unreachable<E: std::error::Error>(target: NodeId) -> RPCError<NodeId, BasicNode, E> {
    let e = std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!("node {target} is down"),
    );
    RPCError::Unreachable(Unreachable::new(&e))
}

impl Connection {
    fn peer<E: std::error::Error>(&self) -> Result<KvRaft, RPCError<NodeId, BasicNode, E>> {
        self.router
            .get(self.target)
            .ok_or_else(|| unreachable(self.target))
    }

    fn remote<T, E: std::error::Error>(
        &self,
        result: Result<T, E>,
    ) -> Result<T, RPCError<NodeId, BasicNode, E>> {
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let peer = self.peer()?;
        self.remote(peer.append_entries(rpc).await)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let peer = self.peer()?;
        self.remote(peer.install_snapshot(rpc).await)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let peer = self.peer()?;
        self.remote(peer.vote(rpc).await)
    }
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            router: self.clone(),
            target,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster.
// ---------------------------------------------------------------------------------------------

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Params {
    /// Where the nodes' directories go.
    pub dir: PathBuf,
    /// Writes in each of the three phases (before the stop, while down, after the restart).
    pub writes_per_phase: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// The WAL segment size (small, so that purges delete segments).
    pub segment_size: u64,
    /// Keep logs in memory instead of raftwal (for comparison benchmarks).
    pub in_memory_logs: bool,
}

/// A running node: its raft handle and its state machine.
struct Node {
    raft: KvRaft,
    sm: KvStateMachine,
}

/// A 3-node cluster on raftwal stores.
pub struct Cluster {
    params: Params,
    config: Arc<Config>,
    router: Router,
    nodes: BTreeMap<NodeId, Node>,
}

/// Something that went wrong in a run.
pub type RunError = Box<dyn std::error::Error + Send + Sync>;

fn node_dir(params: &Params, id: NodeId) -> PathBuf {
    params.dir.join(format!("node-{id}"))
}

impl Cluster {
    /// Starts nodes 1, 2 and 3 from their directories (creating them) and initializes the
    /// cluster if it is new.
    pub async fn start(params: Params) -> Result<Cluster, RunError> {
        let config = Config {
            cluster_name: "raftwal-kv".into(),
            heartbeat_interval: 50,
            election_timeout_min: 200,
            election_timeout_max: 400,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(100),
            max_in_snapshot_log_to_keep: 20,
            purge_batch_size: 1,
            ..Default::default()
        };
        let mut cluster = Cluster {
            params,
            config: Arc::new(config.validate()?),
            router: Router::default(),
            nodes: BTreeMap::new(),
        };
        for id in 1..=3 {
            cluster.start_node(id).await?;
        }
        let members: BTreeMap<NodeId, BasicNode> =
            (1..=3).map(|id| (id, BasicNode::default())).collect();
        let raft = cluster.raft(1)?;
        if raft.is_initialized().await? {
            return Ok(cluster);
        }
        raft.initialize(members).await?;
        Ok(cluster)
    }

    fn raft(&self, id: NodeId) -> Result<KvRaft, RunError> {
        Ok(self
            .nodes
            .get(&id)
            .ok_or_else(|| format!("node {id} is not running"))?
            .raft
            .clone())
    }

    /// Starts node `id` from its directory. A just-stopped node's WAL may still be locked for
    /// a moment while its tasks wind down: retried for a few seconds.
    pub async fn start_node(&mut self, id: NodeId) -> Result<(), RunError> {
        let dir = node_dir(&self.params, id);
        std::fs::create_dir_all(&dir)?;
        let sm = KvStateMachine::open(&dir)?;
        let raft = if self.params.in_memory_logs {
            let logs = openraft_memstore_like::MemLogStore::default();
            Raft::new(
                id,
                self.config.clone(),
                self.router.clone(),
                logs,
                sm.clone(),
            )
            .await?
        } else {
            let options = WalOptions::new().segment_size(self.params.segment_size);
            let deadline = Instant::now() + Duration::from_secs(10);
            let store = loop {
                match LogStore::<TypeConfig>::open(dir.join("wal"), options.clone()) {
                    Err(raftwal_openraft::Error::Wal(raftwal::Error::Locked { .. }))
                        if Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    result => break result?,
                }
            };
            Raft::new(
                id,
                self.config.clone(),
                self.router.clone(),
                store,
                sm.clone(),
            )
            .await?
        };
        self.router.set(id, Some(raft.clone()));
        self.nodes.insert(id, Node { raft, sm });
        Ok(())
    }

    /// Stops node `id` and drops it (its log store closes with it).
    pub async fn stop_node(&mut self, id: NodeId) -> Result<(), RunError> {
        self.router.set(id, None);
        if let Some(node) = self.nodes.remove(&id) {
            node.raft.shutdown().await?;
        }
        Ok(())
    }

    /// The current leader, as some running node sees it, waiting up to 10 s for one.
    pub async fn leader(&self) -> Result<KvRaft, RunError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for node in self.nodes.values() {
                let leader = node.raft.metrics().borrow().current_leader;
                if let Some(raft) = leader.and_then(|l| self.nodes.get(&l)) {
                    return Ok(raft.raft.clone());
                }
            }
            if Instant::now() > deadline {
                return Err("no leader within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes `count` keys named `{prefix}-{i}` from `clients` concurrent clients; returns the
    /// writes acknowledged. A write that fails (a leader change) is retried with the same key and
    /// value, so it stays idempotent.
    pub async fn write(
        &self,
        prefix: &str,
        count: usize,
    ) -> Result<BTreeMap<String, String>, RunError> {
        let clients = self.params.clients.max(1);
        let mut tasks = Vec::new();
        for client in 0..clients {
            let nodes: Vec<KvRaft> = self.nodes.values().map(|n| n.raft.clone()).collect();
            let prefix = prefix.to_string();
            tasks.push(tokio::spawn(async move {
                let mut acked = BTreeMap::new();
                for i in (client..count).step_by(clients) {
                    let req = Request {
                        key: format!("{prefix}-{i}"),
                        value: format!("value-{prefix}-{i}"),
                    };
                    write_one(&nodes, req.clone()).await?;
                    acked.insert(req.key, req.value);
                }
                Ok::<_, RunError>(acked)
            }));
        }
        let mut acked = BTreeMap::new();
        for task in tasks {
            acked.append(&mut task.await??);
        }
        Ok(acked)
    }

    /// Waits until every running node has applied the leader's last log, then returns the
    /// acknowledged writes some node lacks, as `(node, key)`.
    pub async fn missing(
        &self,
        acked: &BTreeMap<String, String>,
    ) -> Result<Vec<(NodeId, String)>, RunError> {
        let leader = self.leader().await?;
        let last = leader.metrics().borrow().last_log_index;
        for node in self.nodes.values() {
            node.raft
                .wait(Some(Duration::from_secs(20)))
                .applied_index_at_least(last, "catch up")
                .await?;
        }
        let mut missing = Vec::new();
        for (id, node) in &self.nodes {
            let data = node.sm.data();
            for (key, value) in acked {
                if data.kv.get(key) != Some(value) {
                    missing.push((*id, key.clone()));
                }
            }
        }
        Ok(missing)
    }

    /// Shuts every node down.
    pub async fn shutdown(mut self) -> Result<(), RunError> {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop_node(id).await?;
        }
        Ok(())
    }
}

/// Sends one write to the leader, retrying on another node for up to 20 s.
async fn write_one(nodes: &[KvRaft], req: Request) -> Result<(), RunError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut target = 0;
    loop {
        let raft = &nodes[target % nodes.len()];
        let leader = raft.metrics().borrow().current_leader;
        match raft.client_write(req.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                // Go to the leader this node names, or the next node.
                let forward = e.forward_to_leader().and_then(|f| f.leader_id).or(leader);
                target = match forward {
                    Some(id) => nodes
                        .iter()
                        .position(|n| n.metrics().borrow().id == id)
                        .unwrap_or(target + 1),
                    None => target + 1,
                };
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Writes acknowledged.
    pub acked: usize,
    /// Acknowledged writes missing somewhere, as `(node, key)`.
    pub missing: Vec<(NodeId, String)>,
    /// Client writes per second, over the three phases.
    pub writes_per_sec: f64,
}

/// The whole scenario: write, stop node 3, write, restart node 3, write, check.
pub async fn run(params: Params) -> Result<Outcome, RunError> {
    let mut cluster = Cluster::start(params.clone()).await?;
    cluster.leader().await?;
    let started = Instant::now();
    let mut acked = cluster.write("before", params.writes_per_phase).await?;
    cluster.stop_node(3).await?;
    acked.append(&mut cluster.write("down", params.writes_per_phase).await?);
    cluster.start_node(3).await?;
    acked.append(&mut cluster.write("after", params.writes_per_phase).await?);
    let elapsed = started.elapsed().as_secs_f64();
    let missing = cluster.missing(&acked).await?;
    cluster.shutdown().await?;
    Ok(Outcome {
        acked: acked.len(),
        missing,
        writes_per_sec: acked.len() as f64 / elapsed,
    })
}

/// Client writes per second: `params.writes_per_phase` writes from `params.clients` clients
/// through a fresh 3-node cluster (no restart), all of them then checked on every node.
pub async fn throughput(params: Params) -> Result<f64, RunError> {
    let cluster = Cluster::start(params.clone()).await?;
    cluster.leader().await?;
    let started = Instant::now();
    let acked = cluster.write("bench", params.writes_per_phase).await?;
    let per_sec = acked.len() as f64 / started.elapsed().as_secs_f64();
    let missing = cluster.missing(&acked).await?;
    cluster.shutdown().await?;
    if !missing.is_empty() {
        return Err(format!("{} acknowledged writes missing", missing.len()).into());
    }
    Ok(per_sec)
}

/// A log store in memory, for comparing against raftwal (nothing durable).
pub mod openraft_memstore_like {
    use super::*;
    use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
    use openraft::{OptionalSend, RaftLogReader, Vote};
    use std::ops::RangeBounds;

    #[derive(Default)]
    struct Inner {
        vote: Option<Vote<NodeId>>,
        committed: Option<LogId<NodeId>>,
        last_purged: Option<LogId<NodeId>>,
        logs: BTreeMap<u64, Entry<TypeConfig>>,
    }

    /// Logs, vote and committed log id in memory.
    #[derive(Clone, Default)]
    pub struct MemLogStore {
        inner: Arc<Mutex<Inner>>,
    }

    impl MemLogStore {
        fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl RaftLogReader<TypeConfig> for MemLogStore {
        async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
            &mut self,
            range: RB,
        ) -> StorageResult<Vec<Entry<TypeConfig>>> {
            Ok(self
                .inner()
                .logs
                .range(range)
                .map(|(_, e)| e.clone())
                .collect())
        }
    }

    impl RaftLogStorage<TypeConfig> for MemLogStore {
        type LogReader = Self;

        async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
            let inner = self.inner();
            let last = inner.logs.values().next_back().map(|e| e.log_id);
            Ok(LogState {
                last_purged_log_id: inner.last_purged,
                last_log_id: last.or(inner.last_purged),
            })
        }

        async fn get_log_reader(&mut self) -> Self {
            self.clone()
        }

        async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
            self.inner().vote = Some(*vote);
            Ok(())
        }

        async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
            Ok(self.inner().vote)
        }

        async fn save_committed(&mut self, c: Option<LogId<NodeId>>) -> StorageResult<()> {
            self.inner().committed = c;
            Ok(())
        }

        async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
            Ok(self.inner().committed)
        }

        async fn append<I>(
            &mut self,
            entries: I,
            callback: LogFlushed<TypeConfig>,
        ) -> StorageResult<()>
        where
            I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
            I::IntoIter: OptionalSend,
        {
            let mut inner = self.inner();
            for entry in entries {
                inner.logs.insert(entry.log_id.index, entry);
            }
            callback.log_io_completed(Ok(()));
            Ok(())
        }

        async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
            self.inner().logs.split_off(&log_id.index);
            Ok(())
        }

        async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
            let mut inner = self.inner();
            inner.logs = inner.logs.split_off(&(log_id.index + 1));
            inner.last_purged = Some(log_id);
            Ok(())
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let writes_per_phase = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let clients = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let parent = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("kv_cluster: no temporary directory: {e}");
            std::process::exit(2);
        }
    };
    let params = Params {
        dir: parent.path().to_path_buf(),
        writes_per_phase,
        clients,
        segment_size: 256 << 10,
        in_memory_logs: false,
    };
    match run(params).await {
        Ok(outcome) if outcome.missing.is_empty() => {
            println!(
                "kv_cluster: {} acknowledged writes present on all 3 nodes ({:.0} writes/s, node 3 stopped and restarted)",
                outcome.acked, outcome.writes_per_sec
            );
        }
        Ok(outcome) => {
            eprintln!(
                "kv_cluster: {} of {} acknowledged writes missing: {:?}",
                outcome.missing.len(),
                outcome.acked,
                &outcome.missing[..outcome.missing.len().min(10)]
            );
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("kv_cluster: {e}");
            std::process::exit(1);
        }
    }
}
