//! Entries with recognizable payloads, and finding an entry's bytes in a segment file, for the
//! tests of reading entries back from disk. Include with
//! `#[path = "support/raft_entries.rs"] mod raft_entries;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use raft::{GetEntriesContext, Storage as _, StorageError};
use raftwal::eraftpb::Entry;
use raftwal::RaftStorage;

/// The payload of the entry at `index`: its index in text, padded to `size` bytes, so every
/// entry's bytes are unique and can be found in a segment.
pub fn payload(index: u64, size: usize) -> Vec<u8> {
    let mut data = format!("entry-{index:012}-").into_bytes();
    data.resize(size.max(data.len()), b'a' + (index % 26) as u8);
    data
}

/// The entries `[low, high)` of term `term` with [`payload`]s of `size` bytes.
pub fn entries(low: u64, high: u64, term: u64, size: usize) -> Vec<Entry> {
    (low..high)
        .map(|index| Entry {
            index,
            term,
            data: payload(index, size).into(),
            ..Default::default()
        })
        .collect()
}

/// `storage.entries(low, high, max_size)` with a context raft would use.
pub fn read(
    storage: &RaftStorage,
    low: u64,
    high: u64,
    max_size: Option<u64>,
) -> raft::Result<Vec<Entry>> {
    storage.entries(low, high, max_size, GetEntriesContext::empty(false))
}

/// The raftwal error inside a `raft::Error` from `entries`.
pub fn raftwal_error(error: raft::Error) -> raftwal::Error {
    match error {
        raft::Error::Store(StorageError::Other(inner)) => *inner
            .downcast::<raftwal::Error>()
            .unwrap_or_else(|other| panic!("not a raftwal error: {other}")),
        other => panic!("not a storage error holding a raftwal error: {other:?}"),
    }
}

/// The segment file and offset where `needle` occurs in the WAL directory `wal_dir`.
pub fn find_in_segments(wal_dir: &Path, needle: &[u8]) -> (PathBuf, u64) {
    let mut names: Vec<PathBuf> = std::fs::read_dir(wal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    names.sort();
    for path in names {
        let bytes = std::fs::read(&path).unwrap();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            return (path, at as u64);
        }
    }
    panic!("{:?} is in no segment", String::from_utf8_lossy(needle));
}

/// Flips one byte of `path` at `offset` in place (the page cache sees it at once).
pub fn flip_byte(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    byte[0] ^= 0x5a;
    file.write_all_at(&byte, offset).unwrap();
}
