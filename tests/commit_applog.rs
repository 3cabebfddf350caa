//! The byte log for non-raft users: append bytes, replay from an index, truncate the front.

use std::sync::Arc;

use raftwal::fs::RealFs;
use raftwal::{AppLog, Error, WalOptions};

fn small_segments() -> WalOptions {
    WalOptions::new()
        .segment_size(4096)
        .file_system(Arc::new(RealFs))
        .prepare_segments_in_background(false)
}

fn record(i: u64) -> Vec<u8> {
    format!("record {i:04} {}", "x".repeat(200)).into_bytes()
}

fn replay_all(log: &mut AppLog, from: u64) -> Vec<(u64, Vec<u8>)> {
    log.replay_from(from)
        .unwrap()
        .collect::<raftwal::Result<_>>()
        .unwrap()
}

fn segment_count(dir: &std::path::Path) -> usize {
    WalOptions::new().segments(dir).unwrap().len()
}

#[test]
fn appends_are_numbered_from_one_and_replay_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut log = AppLog::create(&dir, WalOptions::new()).unwrap();
    assert_eq!(log.append(b"a").unwrap(), 1);
    assert_eq!(log.append_batch([&b"b"[..], b"c"]).unwrap(), 2..4);
    log.close().unwrap();

    let mut log = AppLog::open(&dir, WalOptions::new()).unwrap();
    assert_eq!(
        replay_all(&mut log, 0),
        vec![(1, b"a".to_vec()), (2, b"b".to_vec()), (3, b"c".to_vec())]
    );
    assert_eq!(log.append(b"d").unwrap(), 4);
}

#[test]
fn replay_starts_at_the_requested_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut log = AppLog::create(&dir, small_segments()).unwrap();
    for i in 1..=50 {
        log.append(&record(i)).unwrap();
    }
    log.close().unwrap();

    let mut log = AppLog::open(&dir, small_segments()).unwrap();
    let replayed = replay_all(&mut log, 40);
    let expected: Vec<_> = (40..=50).map(|i| (i, record(i))).collect();
    assert_eq!(replayed, expected);
}

#[test]
fn an_append_without_a_replay_continues_after_the_last_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut log = AppLog::create(&dir, WalOptions::new()).unwrap();
    log.append_batch([&b"a"[..], b"b"]).unwrap();
    log.close().unwrap();
    let mut log = AppLog::open(&dir, WalOptions::new()).unwrap();
    assert_eq!(log.append(b"c").unwrap(), 3);
}

#[test]
fn truncating_the_front_removes_whole_segments_below_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut log = AppLog::create(&dir, small_segments()).unwrap();
    for i in 1..=100 {
        log.append(&record(i)).unwrap();
    }
    let before = segment_count(&dir);
    log.truncate_front(80).unwrap();
    assert!(segment_count(&dir) < before);
    assert_eq!(log.checkpoint(), 80);
    log.close().unwrap();

    // The next open starts at the checkpoint; every record after it is there.
    let mut log = AppLog::open(&dir, small_segments()).unwrap();
    assert_eq!(log.checkpoint(), 80);
    let replayed = replay_all(&mut log, 0);
    let expected: Vec<_> = (81..=100).map(|i| (i, record(i))).collect();
    assert_eq!(replayed, expected);
    assert_eq!(log.append(b"next").unwrap(), 101);
}

#[test]
fn a_checkpoint_past_the_last_record_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = AppLog::create(tmp.path().join("log"), WalOptions::new()).unwrap();
    log.append(b"a").unwrap();
    assert!(matches!(
        log.truncate_front(2),
        Err(Error::InvalidState { .. })
    ));
}

#[test]
fn the_log_is_an_etcd_wal_that_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut log = AppLog::create(&dir, small_segments()).unwrap();
    for i in 1..=30 {
        log.append(&record(i)).unwrap();
    }
    log.truncate_front(10).unwrap();
    log.close().unwrap();
    let snapshots = WalOptions::new().valid_snapshot_entries(&dir).unwrap();
    let last = snapshots.iter().max_by_key(|s| s.index).unwrap();
    assert_eq!(last.index, 10);
    WalOptions::new().verify(&dir, last).unwrap();
}
