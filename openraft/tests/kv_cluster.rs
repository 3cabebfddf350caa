//! The kv_cluster example at small scale: three nodes on raftwal stores, node 3 stopped and
//! restarted from its directory, every acknowledged write present on every node.

#[path = "../examples/kv_cluster.rs"]
#[allow(unused)]
mod kv_cluster;

use kv_cluster::{run, Params};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_is_on_every_node_after_one_is_stopped_and_restarted() {
    let parent = tempfile::tempdir().unwrap();
    let outcome = run(Params {
        dir: parent.path().to_path_buf(),
        writes_per_phase: 150,
        clients: 4,
        segment_size: 64 << 10,
        in_memory_logs: false,
    })
    .await
    .unwrap();
    assert_eq!(outcome.acked, 450);
    assert_eq!(
        outcome.missing,
        vec![],
        "acknowledged writes missing on some node"
    );
    // Snapshots every 100 logs purged the logs: the restart replayed a purged log.
    for node in 1..=3 {
        let snapshot = parent.path().join(format!("node-{node}/snapshot.bin"));
        assert!(snapshot.exists(), "node {node} took a snapshot");
    }
}
