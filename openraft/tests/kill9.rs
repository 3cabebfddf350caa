//! kill -9 mid-load: a child process runs the 3-node cluster and prints every write the cluster
//! acknowledged; the parent SIGKILLs it mid-load, then restarts the cluster from the same
//! directories. Every acknowledged write must be on every node, and each node's log must be
//! whole (no hole between the last purged log id and the last log id).

#[path = "../examples/kv_cluster.rs"]
#[allow(unused)]
mod kv_cluster;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kv_cluster::{Cluster, Params, TypeConfig};
use openraft::storage::RaftLogStorage;
use openraft::RaftLogReader;
use raftwal::WalOptions;
use raftwal_openraft::LogStore;

const CHILD_DIR: &str = "RAFTWAL_OPENRAFT_KILL9_DIR";
const ACKS_BEFORE_KILL: usize = 1000;

fn params(dir: &Path) -> Params {
    Params {
        dir: dir.to_path_buf(),
        writes_per_phase: 0,
        clients: 8,
        segment_size: 64 << 10,
        in_memory_logs: false,
    }
}

/// The child: writes rounds of keys forever, printing `ACK key value` for each acknowledged one.
/// Run only by the parent test (ignored otherwise).
#[test]
#[ignore = "the child process of the kill -9 test"]
fn child_process_for_the_kill_9_test() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let cluster = Cluster::start(params(&PathBuf::from(dir))).await.unwrap();
        cluster.leader().await.unwrap();
        for round in 0.. {
            let acked = cluster.write(&format!("r{round}"), 16).await.unwrap();
            for (key, value) in acked {
                println!("ACK {key} {value}");
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_a_kill_9_of_the_whole_cluster_mid_load() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("cluster");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_process_for_the_kill_9_test",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let mut acked = BTreeMap::new();
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (key, value) = rest.split_once(' ').unwrap();
            acked.insert(key.to_string(), value.to_string());
            if acked.len() >= ACKS_BEFORE_KILL {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        acked.len() >= ACKS_BEFORE_KILL,
        "the child acknowledged only {} writes before it ended",
        acked.len()
    );

    // Each node's log opens (a torn tail is cut) and is whole.
    for node in 1..=3 {
        let wal = dir.join(format!("node-{node}/wal"));
        let verdict = WalOptions::new().check(&wal).unwrap();
        assert!(
            verdict.is_sound() || matches!(verdict, raftwal::Verdict::Torn { .. }),
            "node {node}: {verdict:?}"
        );
        let mut store = LogStore::<TypeConfig>::open(&wal, WalOptions::new()).unwrap();
        let state = store.get_log_state().await.unwrap();
        let entries = store.try_get_log_entries(..).await.unwrap();
        let first = state.last_purged_log_id.map_or(0, |p| p.index + 1);
        let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
        match state.last_log_id {
            Some(last) if Some(last) != state.last_purged_log_id => {
                let want: Vec<u64> = (first..=last.index).collect();
                assert_eq!(indexes, want, "node {node}: entries without a hole");
                assert_eq!(entries.last().map(|e| e.log_id), Some(last));
            }
            _ => assert_eq!(indexes, Vec::<u64>::new(), "node {node}: no entries"),
        }
        assert!(
            store.read_vote().await.unwrap().is_some(),
            "node {node} voted"
        );
        store.close().unwrap();
    }

    // The restarted cluster holds every acknowledged write on every node.
    let cluster = Cluster::start(params(&dir)).await.unwrap();
    let missing = cluster.missing(&acked).await.unwrap();
    cluster.shutdown().await.unwrap();
    assert_eq!(missing, vec![], "acknowledged writes lost by kill -9");
}
