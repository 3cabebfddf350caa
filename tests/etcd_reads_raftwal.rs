//! etcd's own WAL code (3.4.23, built from Debian's sources by tests/fixtures/etcd/oracle) reads
//! what raftwal writes: a multi-segment log with overwrites, HardStates and snapshot markers.
//!
//! Needs Go and Debian's `golang-etcd-server-dev` (`.ci/run` installs them); without them it
//! prints a `SKIPPED:` line and passes.

#[path = "support/skip.rs"]
mod skip;

use std::path::Path;
use std::process::Command;

use raftwal::eraftpb::{Entry, HardState};
use raftwal::{WalOptions, WalSnapshot};

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: vec![(index % 251) as u8; (index as usize * 7) % 600].into(),
        ..Default::default()
    }
}

#[test]
fn etcd_reads_a_multi_segment_raftwal_log() {
    if !skip::has_etcd_oracle_toolchain() {
        skip::skipped(
            "etcd_reads_a_multi_segment_raftwal_log",
            "golang-go and golang-etcd-server-dev",
        );
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let options = WalOptions::new().segment_size(32 * 1024);
    let mut wal = options.create(&dir, b"raftwal-metadata").unwrap();
    let mut hs = HardState {
        term: 1,
        vote: 1,
        ..Default::default()
    };
    let mut expected: Vec<Entry> = Vec::new();
    let mut snapshots = vec![(0, 0)];
    for index in 1..=400u64 {
        let e = entry(index, hs.term);
        hs.commit = index.saturating_sub(3);
        wal.save(&hs, std::slice::from_ref(&e)).unwrap();
        expected.push(e);
        if index % 100 == 0 {
            wal.save_snapshot_marker(&WalSnapshot::new(hs.commit, 1))
                .unwrap();
            snapshots.push((hs.commit, 1));
        }
    }
    // A new leader overwrites the two uncommitted entries at the tail.
    hs.term = 2;
    let overwrite = vec![entry(399, 2), entry(400, 2), entry(401, 2)];
    wal.save(&hs, &overwrite).unwrap();
    expected.truncate(398);
    expected.extend(overwrite);
    wal.close().unwrap();
    assert!(
        WalOptions::new().segments(&dir).unwrap().len() >= 3,
        "the log spans segments"
    );

    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/etcd/oracle/run.sh");
    // The oracle binary and Go's build cache stay in cargo's scratch space for tests.
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = Command::new("bash")
        .arg(oracle)
        .args(["-wal", dir.to_str().unwrap(), "-with-data", "-no-raw"])
        .env("ORACLE_BIN", scratch.join("raftwal-etcd-oracle"))
        .env("GOCACHE", scratch.join("raftwal-etcd-oracle-gocache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "etcd could not read raftwal's log: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["verify_ok"], serde_json::Value::Bool(true));
    assert_eq!(got["metadata_b64"], "cmFmdHdhbC1tZXRhZGF0YQ==");
    assert_eq!(got["hard_state"]["term"], 2);
    assert_eq!(got["hard_state"]["vote"], 1);
    assert_eq!(got["hard_state"]["commit"], 397);
    let entries = got["entries"].as_array().unwrap();
    assert_eq!(entries.len(), expected.len());
    use base64::Engine as _;
    for (g, e) in entries.iter().zip(&expected) {
        assert_eq!(g["index"], e.index);
        assert_eq!(g["term"], e.term);
        let data = base64::engine::general_purpose::STANDARD
            .decode(g["data_b64"].as_str().unwrap_or(""))
            .unwrap();
        assert_eq!(data, e.data.to_vec(), "data of entry {}", e.index);
    }
    let got_snaps: Vec<(u64, u64)> = got["snapshot_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["index"].as_u64().unwrap(), s["term"].as_u64().unwrap()))
        .collect();
    assert_eq!(got_snaps, snapshots);
}
