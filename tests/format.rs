//! The on-disk format, pinned to etcd's bytes.

use raftwal::Wal;

/// `Create(dir, "somedata")` in etcd writes exactly these bytes (ETCD-WAL-FORMAT.md).
const ETCD_CREATE_SOMEDATA: [u8; 72] = [
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x84, 0x08, 0x04, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x86, 0x08, 0x01, 0x10, 0x85, 0xd4, 0xfd, 0xa0, 0x07,
    0x1a, 0x08, 0x73, 0x6f, 0x6d, 0x65, 0x64, 0x61, 0x74, 0x61, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x0e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x82, 0x08, 0x05, 0x10, 0x80, 0xdb, 0x81, 0xc1, 0x01,
    0x1a, 0x04, 0x08, 0x00, 0x10, 0x00, 0x00, 0x00,
];

#[test]
fn create_writes_etcds_exact_bytes() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    Wal::create(&dir, b"somedata").unwrap().close().unwrap();
    let bytes = std::fs::read(dir.join("0000000000000000-0000000000000000.wal")).unwrap();
    assert_eq!(&bytes[..72], &ETCD_CREATE_SOMEDATA[..]);
    // The rest of the segment is preallocated zeros (a zero length word ends the records).
    assert_eq!(bytes.len() as u64, raftwal::DEFAULT_SEGMENT_SIZE);
    assert!(bytes[72..].iter().all(|&b| b == 0));
}

/// etcd's `Create(dir, nil)`: the metadata record carries no data field and crc 0.
#[test]
fn create_with_empty_metadata_omits_the_data_field() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    Wal::create(&dir, b"").unwrap().close().unwrap();
    let bytes = std::fs::read(dir.join("0000000000000000-0000000000000000.wal")).unwrap();
    assert_eq!(
        &bytes[16..32],
        &[0x04, 0, 0, 0, 0, 0, 0, 0x84, 0x08, 0x01, 0x10, 0x00, 0, 0, 0, 0]
    );
    // The snapshot record's crc is the CRC-32C of its data alone: a0 b3 9b 8f 08.
    assert_eq!(
        &bytes[32 + 8..32 + 8 + 9],
        &[0x08, 0x05, 0x10, 0xa0, 0xb3, 0x9b, 0x8f, 0x08, 0x1a]
    );
    assert_eq!(bytes[56..64], [0u8; 8]);
}
