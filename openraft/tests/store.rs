//! The store across restarts: what openraft wrote comes back, what it truncated never does, and
//! the directory is an etcd WAL that raftwal's own checks read.

use std::io::Cursor;
use std::path::Path;

use openraft::entry::RaftEntry;
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftLogReader, Vote};
use raftwal::inspect::Payload;
use raftwal::{RecordType, WalOptions};
use raftwal_openraft::LogStore;

openraft::declare_raft_types!(
    TC: D = String, R = String, NodeId = u64, Node = openraft::BasicNode,
);

type Store = LogStore<TC>;

fn log_id(term: u64, leader: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, leader), index)
}

fn normal(term: u64, leader: u64, index: u64) -> Entry<TC> {
    Entry {
        log_id: log_id(term, leader, index),
        payload: EntryPayload::Normal(format!("put {index}@{term}")),
    }
}

fn options() -> WalOptions {
    // Small segments, so that a few entries cut several and purges delete files.
    WalOptions::new().segment_size(2048)
}

fn open(dir: &Path) -> Store {
    Store::open(dir, options()).expect("the store opens")
}

async fn entries(store: &mut Store) -> Vec<Entry<TC>> {
    store.try_get_log_entries(..).await.unwrap()
}

async fn indexes_and_terms(store: &mut Store) -> Vec<(u64, u64)> {
    entries(store)
        .await
        .iter()
        .map(|e| (e.log_id.index, e.log_id.leader_id.term))
        .collect()
}

/// Appends and waits for the callback (fired after the covering fdatasync).
async fn append(store: &mut Store, entries: impl IntoIterator<Item = Entry<TC>>) {
    store
        .blocking_append(entries.into_iter().collect::<Vec<_>>())
        .await
        .unwrap();
}

#[tokio::test]
async fn entries_of_every_payload_the_vote_and_the_committed_log_id_survive_a_restart() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    let membership = Membership::new(vec![[1, 2, 3].into()], None);
    let written = vec![
        Entry::<TC>::new_membership(log_id(0, 0, 0), membership.clone()),
        Entry::<TC>::new_blank(log_id(1, 2, 1)),
        normal(1, 2, 2),
        normal(1, 2, 3),
    ];
    let vote = Vote::new_committed(1, 2);
    {
        let mut store = open(&dir);
        store.save_vote(&vote).await.unwrap();
        append(&mut store, written.clone()).await;
        store.save_committed(Some(log_id(1, 2, 2))).await.unwrap();
        store.close().unwrap();
    }

    let mut store = open(&dir);
    assert_eq!(entries(&mut store).await, written);
    assert_eq!(store.read_vote().await.unwrap(), Some(vote));
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 2, 2)));
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, None);
    assert_eq!(state.last_log_id, Some(log_id(1, 2, 3)));
}

#[tokio::test]
async fn a_vote_is_durable_when_save_vote_returns_even_without_close() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    {
        let mut store = open(&dir);
        store.save_vote(&Vote::new(3, 0)).await.unwrap();
        store.save_vote(&Vote::new_committed(3, 0)).await.unwrap();
        drop(store); // no close: only what was synced counts
    }
    let mut store = open(&dir);
    assert_eq!(
        store.read_vote().await.unwrap(),
        Some(Vote::new_committed(3, 0)),
        "the committed flag of node 0's vote is carried in HardState.vote"
    );
}

#[tokio::test]
async fn a_truncated_suffix_never_reappears_after_a_restart() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    {
        let mut store = open(&dir);
        append(&mut store, (0..20).map(|i| normal(1, 1, i))).await;
        store.truncate(log_id(1, 1, 12)).await.unwrap();
        // A new leader's entries replace the truncated ones.
        append(&mut store, (12..15).map(|i| normal(2, 2, i))).await;
        store.truncate(log_id(2, 2, 14)).await.unwrap();
        drop(store);
    }
    let mut store = open(&dir);
    let want: Vec<(u64, u64)> = (0..12).map(|i| (i, 1)).chain([(12, 2), (13, 2)]).collect();
    assert_eq!(indexes_and_terms(&mut store).await, want);
    assert_eq!(
        store.get_log_state().await.unwrap().last_log_id,
        Some(log_id(2, 2, 13))
    );
}

#[tokio::test]
async fn truncating_everything_leaves_an_empty_log_after_a_restart() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    {
        let mut store = open(&dir);
        append(&mut store, (0..5).map(|i| normal(1, 1, i))).await;
        store.truncate(log_id(1, 1, 0)).await.unwrap();
        drop(store);
    }
    let mut store = open(&dir);
    assert!(entries(&mut store).await.is_empty());
    assert_eq!(store.get_log_state().await.unwrap().last_log_id, None);
    // And the log goes on from 0.
    append(&mut store, [normal(2, 3, 0)]).await;
    drop(store);
    let mut store = open(&dir);
    assert_eq!(indexes_and_terms(&mut store).await, vec![(0, 2)]);
}

#[tokio::test]
async fn purge_keeps_the_last_purged_log_id_and_deletes_whole_segments() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    let segments_before;
    {
        let mut store = open(&dir);
        for batch in 0..20 {
            append(
                &mut store,
                (batch * 10..batch * 10 + 10).map(|i| normal(1 + i / 100, 7, i)),
            )
            .await;
        }
        segments_before = options().segments(&dir).unwrap().len();
        store.purge(log_id(2, 7, 150)).await.unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(2, 7, 150)));
        assert!(entries(&mut store)
            .await
            .iter()
            .all(|e| e.log_id.index > 150));
        drop(store);
    }
    let segments_after = options().segments(&dir).unwrap().len();
    assert!(
        segments_after < segments_before,
        "purge deletes segments ({segments_before} before, {segments_after} after)"
    );

    let mut store = open(&dir);
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(2, 7, 150)));
    assert_eq!(state.last_log_id, Some(log_id(2, 7, 199)));
    let want: Vec<(u64, u64)> = (151..200).map(|i| (i, 2)).collect();
    assert_eq!(indexes_and_terms(&mut store).await, want);
}

#[tokio::test]
async fn truncating_back_to_the_purge_point_survives_a_restart() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    {
        let mut store = open(&dir);
        append(&mut store, (0..10).map(|i| normal(1, 1, i))).await;
        store.purge(log_id(1, 1, 4)).await.unwrap();
        store.truncate(log_id(1, 1, 5)).await.unwrap();
        drop(store);
    }
    let mut store = open(&dir);
    assert!(entries(&mut store).await.is_empty());
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 4)));
    assert_eq!(state.last_log_id, Some(log_id(1, 1, 4)));
    append(&mut store, [normal(2, 2, 5)]).await;
    drop(store);
    let mut store = open(&dir);
    assert_eq!(indexes_and_terms(&mut store).await, vec![(5, 2)]);
}

#[tokio::test]
async fn a_purge_past_the_end_of_the_log_like_a_snapshot_install_survives_a_restart() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    {
        let mut store = open(&dir);
        append(&mut store, (0..3).map(|i| normal(1, 1, i))).await;
        store.purge(log_id(4, 3, 1000)).await.unwrap();
        append(&mut store, [normal(4, 3, 1001)]).await;
        drop(store);
    }
    let mut store = open(&dir);
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(4, 3, 1000)));
    assert_eq!(state.last_log_id, Some(log_id(4, 3, 1001)));
    assert_eq!(indexes_and_terms(&mut store).await, vec![(1001, 4)]);
}

#[tokio::test]
async fn the_directory_is_a_sound_etcd_wal_whose_records_follow_the_mapping() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    {
        let mut store = Store::open(&dir, WalOptions::new()).unwrap();
        store.save_vote(&Vote::new_committed(2, 5)).await.unwrap();
        append(&mut store, (0..4).map(|i| normal(2, 5, i))).await;
        store.truncate(log_id(2, 5, 2)).await.unwrap();
        store.save_committed(Some(log_id(2, 5, 1))).await.unwrap();
        store.close().unwrap();
    }
    assert!(WalOptions::new().check(&dir).unwrap().is_sound());

    let mut entries = Vec::new();
    let mut hard_states = Vec::new();
    for record in WalOptions::new().raw_records(&dir).unwrap() {
        let record = record.unwrap();
        match record.payload().unwrap() {
            Payload::Entry(e) => entries.push((e.index, e.term)),
            Payload::HardState(hs) => hard_states.push((hs.term, hs.vote, hs.commit)),
            Payload::Metadata(m) => assert_eq!(m, b"raftwal-openraft/1"),
            _ => assert!(matches!(
                record.kind,
                RecordType::Crc | RecordType::Snapshot
            )),
        }
    }
    // openraft index i is etcd index i + 1; the truncate is the re-append of the entry before
    // the cut (openraft 1, etcd 2), which drops etcd 3 and 4 on replay.
    assert_eq!(entries, vec![(1, 2), (2, 2), (3, 2), (4, 2), (2, 2)]);
    // Vote (term 2, node 5, committed) is HardState term 2, vote (5 + 1) << 1 | 1 = 13; the
    // committed log id (index 1) is commit 2.
    assert_eq!(hard_states.last(), Some(&(2, 13, 2)));

    let mut store = Store::open(&dir, WalOptions::new()).unwrap();
    assert_eq!(indexes_and_terms(&mut store).await, vec![(0, 2), (1, 2)]);
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(2, 5, 1)));
}

#[tokio::test]
async fn a_store_refuses_a_hole_and_a_truncate_of_purged_entries() {
    let parent = tempfile::tempdir().unwrap();
    let mut store = open(&parent.path().join("log"));
    append(&mut store, (0..5).map(|i| normal(1, 1, i))).await;
    let hole = store.blocking_append([normal(1, 1, 7)]).await;
    assert!(hole.is_err(), "an append after a hole is refused");
    store.purge(log_id(1, 1, 2)).await.unwrap();
    assert!(store.truncate(log_id(1, 1, 2)).await.is_err());
    assert_eq!(
        store.get_log_state().await.unwrap().last_log_id,
        Some(log_id(1, 1, 4))
    );
}

#[tokio::test]
async fn a_second_store_on_the_same_directory_is_refused_while_the_first_is_open() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    let _first = open(&dir);
    let second = Store::open(&dir, options());
    assert!(matches!(
        second,
        Err(raftwal_openraft::Error::Wal(raftwal::Error::Locked { .. }))
    ));
}
