//! Snapshot files: atomic saves, loading the newest valid one, setting damaged ones aside,
//! purging, and etcd's own snap files.

#[path = "support/etcd_fixture.rs"]
mod etcd_fixture;

use std::path::Path;

use raftwal::eraftpb::{ConfState, Snapshot};
use raftwal::{SnapName, Snapshotter, WalSnapshot};

fn snapshot(term: u64, index: u64) -> Snapshot {
    let mut s = Snapshot {
        data: format!("state at {index}").into(),
        ..Default::default()
    };
    let meta = s.mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.set_conf_state(ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    });
    s
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn snapshotter() -> (tempfile::TempDir, Snapshotter) {
    let tmp = tempfile::tempdir().unwrap();
    let snapshotter = Snapshotter::new(tmp.path());
    (tmp, snapshotter)
}

/// Flips one byte in the middle of a file.
fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_saved_snapshot_is_named_by_term_and_index_and_loads_back() {
    let (tmp, snap) = snapshotter();
    snap.save_snap(&snapshot(2, 0xc9)).unwrap();
    // Written under a temporary name and renamed: nothing else is left behind.
    assert_eq!(
        names(tmp.path()),
        vec!["0000000000000002-00000000000000c9.snap"]
    );
    assert_eq!(snap.load().unwrap(), Some(snapshot(2, 0xc9)));
}

#[test]
fn load_returns_the_newest_snapshot() {
    let (_tmp, snap) = snapshotter();
    for index in [10, 30, 20] {
        snap.save_snap(&snapshot(1, index)).unwrap();
    }
    snap.save_snap(&snapshot(2, 25)).unwrap();
    assert_eq!(snap.load().unwrap(), Some(snapshot(2, 25)));
}

#[test]
fn a_corrupt_newest_snapshot_falls_back_to_the_previous_one() {
    let (tmp, snap) = snapshotter();
    snap.save_snap(&snapshot(1, 10)).unwrap();
    snap.save_snap(&snapshot(1, 20)).unwrap();
    let newest = tmp.path().join(SnapName::new(1, 20).file_name);
    flip_byte(&newest);

    assert_eq!(snap.load().unwrap(), Some(snapshot(1, 10)));
    // The damaged file is kept for inspection, out of the way of later loads.
    assert_eq!(
        names(tmp.path()),
        vec![
            "0000000000000001-000000000000000a.snap",
            "0000000000000001-0000000000000014.snap.broken",
        ]
    );
}

#[test]
fn an_empty_or_truncated_snapshot_file_is_set_aside() {
    let (tmp, snap) = snapshotter();
    snap.save_snap(&snapshot(1, 10)).unwrap();
    snap.save_snap(&snapshot(1, 20)).unwrap();
    snap.save_snap(&snapshot(1, 30)).unwrap();
    let path = |i| tmp.path().join(SnapName::new(1, i).file_name);
    std::fs::write(path(30), b"").unwrap();
    let bytes = std::fs::read(path(20)).unwrap();
    std::fs::write(path(20), &bytes[..bytes.len() - 3]).unwrap();

    assert_eq!(snap.load().unwrap(), Some(snapshot(1, 10)));
    assert!(tmp
        .path()
        .join("0000000000000001-000000000000001e.snap.broken")
        .exists());
    assert!(tmp
        .path()
        .join("0000000000000001-0000000000000014.snap.broken")
        .exists());
}

#[test]
fn a_file_holding_another_snapshot_than_its_name_says_is_corrupt() {
    let (tmp, snap) = snapshotter();
    snap.save_snap(&snapshot(1, 10)).unwrap();
    std::fs::copy(
        tmp.path().join(SnapName::new(1, 10).file_name),
        tmp.path().join(SnapName::new(1, 40).file_name),
    )
    .unwrap();
    assert!(matches!(
        snap.read(&SnapName::new(1, 40)),
        Err(raftwal::Error::Corrupt { .. })
    ));
    assert_eq!(snap.load().unwrap(), Some(snapshot(1, 10)));
}

#[test]
fn a_crc_mismatch_is_reported_as_such() {
    let (tmp, snap) = snapshotter();
    snap.save_snap(&snapshot(1, 10)).unwrap();
    let path = tmp.path().join(SnapName::new(1, 10).file_name);
    // The last byte belongs to the raft snapshot's data: the envelope still parses.
    let mut bytes = std::fs::read(&path).unwrap();
    *bytes.last_mut().unwrap() ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(
        snap.read(&SnapName::new(1, 10)),
        Err(raftwal::Error::CrcMismatch { offset: 0, .. })
    ));
}

#[test]
fn no_valid_snapshot_loads_as_none() {
    let (tmp, snap) = snapshotter();
    assert_eq!(snap.load().unwrap(), None);
    snap.save_snap(&snapshot(1, 10)).unwrap();
    flip_byte(&tmp.path().join(SnapName::new(1, 10).file_name));
    assert_eq!(snap.load().unwrap(), None);
}

#[test]
fn load_newest_available_skips_files_the_wal_does_not_record() {
    let (tmp, snap) = snapshotter();
    snap.save_snap(&snapshot(1, 10)).unwrap();
    snap.save_snap(&snapshot(1, 20)).unwrap();
    let recorded = [WalSnapshot::new(0, 0), WalSnapshot::new(10, 1)];
    assert_eq!(
        snap.load_newest_available(&recorded).unwrap(),
        Some(snapshot(1, 10))
    );
    // The unrecorded file is an orphan of a crash, not damage: it stays as it is.
    assert!(tmp.path().join(SnapName::new(1, 20).file_name).exists());
    // A record with another term does not match.
    assert_eq!(
        snap.load_newest_available(&[WalSnapshot::new(10, 2)])
            .unwrap(),
        None
    );
}

#[test]
fn purge_keeps_the_newest_and_removes_leftover_temporary_files() {
    let (tmp, snap) = snapshotter();
    for index in 1..=5 {
        snap.save_snap(&snapshot(1, index * 10)).unwrap();
    }
    std::fs::write(
        tmp.path()
            .join("0000000000000001-0000000000000064.snap.tmp"),
        b"half",
    )
    .unwrap();
    let deleted = snap.purge(2).unwrap();
    assert_eq!(deleted.len(), 4);
    assert_eq!(
        names(tmp.path()),
        vec![
            "0000000000000001-0000000000000028.snap",
            "0000000000000001-0000000000000032.snap",
        ]
    );
}

#[test]
fn an_empty_snapshot_is_not_written() {
    let (tmp, snap) = snapshotter();
    snap.save_snap(&Snapshot::default()).unwrap();
    assert!(names(tmp.path()).is_empty());
}

#[test]
fn a_leftover_temporary_file_is_ignored_by_load() {
    let (tmp, snap) = snapshotter();
    snap.save_snap(&snapshot(1, 10)).unwrap();
    std::fs::write(
        tmp.path()
            .join("0000000000000001-0000000000000014.snap.tmp"),
        b"torn",
    )
    .unwrap();
    assert_eq!(snap.load().unwrap(), Some(snapshot(1, 10)));
}

/// The snap files a real etcd 3.4 server wrote load with the contents etcd's own code read.
#[test]
fn etcds_snap_files_load_with_the_contents_etcd_read() {
    let fixture = etcd_fixture::unpack();
    let snap_dir = fixture.data_dir.join("member/snap");
    let snap = Snapshotter::new(&snap_dir);
    let details = fixture.expected["snap_file_details"].as_array().unwrap();
    assert_eq!(snap.snap_names().unwrap().len(), details.len());
    for detail in details {
        let name = SnapName::parse(detail["file"].as_str().unwrap()).unwrap();
        let s = snap.read(&name).unwrap();
        let meta = s.get_metadata();
        assert_eq!(meta.index, etcd_fixture::u64_at(detail, "index"));
        assert_eq!(meta.term, etcd_fixture::u64_at(detail, "term"));
        assert_eq!(
            s.data.len() as u64,
            etcd_fixture::u64_at(detail, "data_len")
        );
        assert_eq!(
            etcd_fixture::crc_hex(&s.data),
            detail["data_crc32c"].as_str().unwrap()
        );
        let voters: Vec<u64> = detail["voters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(meta.get_conf_state().voters, voters);
    }
    // The newest is etcd's last snapshot (index 2010).
    let newest = snap.load().unwrap().unwrap();
    assert_eq!(newest.get_metadata().index, 2010);
}

/// Splits a snap file into etcd's envelope fields: `08 <crc varint> 12 <len varint> <data>`.
fn envelope(bytes: &[u8]) -> (u32, &[u8]) {
    fn varint(bytes: &[u8], at: &mut usize) -> u64 {
        let mut value = 0;
        for shift in (0..64).step_by(7) {
            let b = bytes[*at];
            *at += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        value
    }
    let mut at = 0;
    assert_eq!(bytes[at], 0x08, "field 1, varint: crc");
    at += 1;
    let crc = varint(bytes, &mut at) as u32;
    assert_eq!(bytes[at], 0x12, "field 2, bytes: data");
    at += 1;
    let len = varint(bytes, &mut at) as usize;
    assert_eq!(bytes.len(), at + len, "nothing after data");
    (crc, &bytes[at..])
}

/// etcd's snap file envelope (`snappb.Snapshot { crc = 1, data = 2 }`, crc the CRC-32C of data)
/// is the one raftwal writes, field for field.
#[test]
fn raftwal_writes_etcds_envelope() {
    let fixture = etcd_fixture::unpack();
    let path = fixture
        .data_dir
        .join("member/snap/0000000000000002-00000000000007da.snap");
    let etcd_bytes = std::fs::read(&path).unwrap();
    let (crc, data) = envelope(&etcd_bytes);
    assert_eq!(crc, crc32c::crc32c(data));

    let name = SnapName::parse("0000000000000002-00000000000007da.snap").unwrap();
    let decoded = Snapshotter::new(path.parent().unwrap())
        .read(&name)
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ours = Snapshotter::new(tmp.path());
    ours.save_snap(&decoded).unwrap();
    let our_bytes = std::fs::read(tmp.path().join(&name.file_name)).unwrap();
    let (crc, data) = envelope(&our_bytes);
    assert_eq!(crc, crc32c::crc32c(data));
    // raft-proto packs repeated fields where etcd's gogoproto does not, so the raft snapshot
    // inside may differ in bytes; it decodes to the same snapshot.
    assert_eq!(ours.read(&name).unwrap(), decoded);
}
