//! The README's main job, as a test: three raft-rs nodes on raftwal storage through proposals,
//! snapshots, crashes and restarts (the code the `raft_cluster` binary runs).

use raftwal_demo::{run, ClusterConfig};

#[test]
fn three_nodes_survive_crashes_with_every_command_and_bounded_wal() {
    let tmp = tempfile::tempdir().unwrap();
    let config = ClusterConfig {
        commands: 1500,
        snapshot_every: 100,
        segment_size: 4096,
        keep_segments: 1,
        ..ClusterConfig::new(tmp.path())
    };
    // `run` checks that the maps agree, hold every acknowledged command, and rebuild from disk.
    let report = run(&config).unwrap_or_else(|e| panic!("cluster failed: {e}"));
    println!("{report}");

    assert_eq!(report.acknowledged, 1500);
    assert!(report.restarts >= 3, "{} restarts", report.restarts);
    assert!(report.snapshots >= 20, "{} snapshots", report.snapshots);
    // Unpurged, each node would write about 20 segments of 4 KiB. A node keeps the WAL from
    // its second-newest snapshot on (2 x 100 entries, ~3 segments) and the segment being
    // written.
    assert!(
        report.segments_purged >= 20,
        "{} segments purged",
        report.segments_purged
    );
    for (node, files) in &report.max_wal_files {
        assert!(*files <= 6, "node {node} had {files} WAL files");
    }
}

#[test]
fn three_nodes_on_the_async_ready_path_survive_crashes_with_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let config = ClusterConfig {
        commands: 1500,
        snapshot_every: 100,
        segment_size: 4096,
        keep_segments: 1,
        async_ready: true,
        ..ClusterConfig::new(tmp.path())
    };
    // Every Ready is submitted and `on_persist_ready` follows its completion; `run` checks
    // that the maps agree, hold every acknowledged command, and rebuild from disk.
    let report = run(&config).unwrap_or_else(|e| panic!("async cluster failed: {e}"));
    println!("{report}");

    assert_eq!(report.acknowledged, 1500);
    assert!(report.crashes >= 5, "{} crashes", report.crashes);
    assert!(report.restarts >= 3, "{} restarts", report.restarts);
    assert!(report.snapshots >= 20, "{} snapshots", report.snapshots);
    assert!(
        report.segments_purged >= 20,
        "{} segments purged",
        report.segments_purged
    );
}
