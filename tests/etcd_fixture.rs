//! raftwal reads a WAL written by a real etcd 3.4.23 server exactly as etcd's own code does.

#[path = "support/etcd_fixture.rs"]
mod etcd_fixture;

use base64::Engine as _;
use etcd_fixture::{crc_hex, u64_at};
use raftwal::{RecordType, Wal, WalOptions, WalSnapshot};

#[test]
fn read_all_matches_what_etcd_reads() {
    let fx = etcd_fixture::unpack();
    let mut wal = Wal::open_for_read(&fx.wal_dir, &WalSnapshot::default()).unwrap();
    let recovered = wal.read_all().unwrap();

    let metadata = base64::engine::general_purpose::STANDARD
        .decode(fx.expected["metadata_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(recovered.metadata, metadata);

    let hs = &fx.expected["hard_state"];
    assert_eq!(recovered.hard_state.term, u64_at(hs, "term"));
    assert_eq!(recovered.hard_state.vote, u64_at(hs, "vote"));
    assert_eq!(recovered.hard_state.commit, u64_at(hs, "commit"));

    let expected = fx.expected["entries"].as_array().unwrap();
    assert_eq!(recovered.entries.len(), expected.len());
    assert!(
        expected.len() >= 2000,
        "the fixture holds thousands of entries"
    );
    for (got, want) in recovered.entries.iter().zip(expected) {
        assert_eq!(got.index, u64_at(want, "index"));
        assert_eq!(got.term, u64_at(want, "term"));
        assert_eq!(
            got.entry_type as u64,
            u64_at(want, "type"),
            "type of {}",
            got.index
        );
        assert_eq!(
            got.data.len() as u64,
            u64_at(want, "len"),
            "len of {}",
            got.index
        );
        assert_eq!(
            crc_hex(&got.data),
            want["crc32c"].as_str().unwrap(),
            "data of {}",
            got.index
        );
    }
}

#[test]
fn the_fixture_spans_segments_like_etcds_listing() {
    let fx = etcd_fixture::unpack();
    let names: Vec<String> = WalOptions::new()
        .segments(&fx.wal_dir)
        .unwrap()
        .into_iter()
        .map(|s| s.file_name)
        .collect();
    let expected: Vec<String> = fx.expected["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(names.len() >= 2);
    assert_eq!(names, expected);
}

#[test]
fn every_snapshot_record_is_found_in_log_order() {
    let fx = etcd_fixture::unpack();
    let snapshots: Vec<(u64, u64)> = WalOptions::new()
        .raw_records(&fx.wal_dir)
        .unwrap()
        .map(|r| r.unwrap())
        .filter(|r| r.kind == RecordType::Snapshot)
        .map(|r| {
            let snap: raftwal::walpb::Snapshot = prost::Message::decode(&r.data[..]).unwrap();
            (snap.index.unwrap_or(0), snap.term.unwrap_or(0))
        })
        .collect();
    let expected: Vec<(u64, u64)> = fx.expected["snapshot_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (u64_at(s, "index"), u64_at(s, "term")))
        .collect();
    assert!(expected.len() >= 2);
    assert_eq!(snapshots, expected);
}

#[test]
fn valid_snapshot_entries_match_etcds() {
    let fx = etcd_fixture::unpack();
    let got: Vec<(u64, u64)> = WalOptions::new()
        .valid_snapshot_entries(&fx.wal_dir)
        .unwrap()
        .iter()
        .map(|s| (s.index, s.term))
        .collect();
    let expected: Vec<(u64, u64)> = fx.expected["valid_snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (u64_at(s, "index"), u64_at(s, "term")))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn opening_at_each_snapshot_reads_only_what_follows_it() {
    let fx = etcd_fixture::unpack();
    let last = u64_at(&fx.expected, "last_index");
    for snap in fx.expected["snapshot_records"].as_array().unwrap() {
        let at = WalSnapshot::new(u64_at(snap, "index"), u64_at(snap, "term"));
        let mut wal = Wal::open_for_read(&fx.wal_dir, &at).unwrap();
        let recovered = wal.read_all().unwrap();
        assert_eq!(
            recovered.entries.len() as u64,
            last - at.index,
            "from {at:?}"
        );
        assert_eq!(
            recovered.entries.first().map(|e| e.index),
            Some(at.index + 1)
        );
    }
}

#[test]
fn a_snapshot_etcd_never_took_is_not_found() {
    let fx = etcd_fixture::unpack();
    let mut wal = Wal::open_for_read(&fx.wal_dir, &WalSnapshot::new(300, 2)).unwrap();
    assert!(matches!(
        wal.read_all(),
        Err(raftwal::Error::SnapshotNotFound {
            index: 300,
            term: 2
        })
    ));
}

#[test]
fn verify_accepts_etcds_log_and_returns_its_hard_state() {
    let fx = etcd_fixture::unpack();
    let hs = WalOptions::new()
        .verify(&fx.wal_dir, &WalSnapshot::default())
        .unwrap();
    assert_eq!(hs.commit, u64_at(&fx.expected["hard_state"], "commit"));
}

#[test]
fn raftwal_continues_a_log_etcd_wrote() {
    let fx = etcd_fixture::unpack();
    let last = u64_at(&fx.expected, "last_index");
    let mut wal = Wal::open(&fx.wal_dir, &WalSnapshot::default()).unwrap();
    let before = wal.read_all().unwrap();
    let mut hs = before.hard_state.clone();
    let next = raftwal::eraftpb::Entry {
        index: last + 1,
        term: hs.term,
        data: b"written by raftwal".to_vec().into(),
        ..Default::default()
    };
    hs.commit = last + 1;
    wal.save(&hs, std::slice::from_ref(&next)).unwrap();
    wal.close().unwrap();

    let mut wal = Wal::open_for_read(&fx.wal_dir, &WalSnapshot::default()).unwrap();
    let after = wal.read_all().unwrap();
    assert_eq!(after.entries.len(), before.entries.len() + 1);
    assert_eq!(after.entries.last(), Some(&next));
    assert_eq!(after.hard_state.commit, last + 1);
}
