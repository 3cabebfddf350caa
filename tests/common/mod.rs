//! Helpers shared by the WAL scenario tests (`wal_open`, `wal_write`, `wal_repair`): building
//! entries, opening logs with small test options, finding frames on disk, and a file system that
//! counts durable calls.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prost::Message as _;
use raftwal::eraftpb::{ConfState, Entry, HardState};
use raftwal::{walpb, RecordType, Wal, WalOptions, WalSnapshot};

#[path = "../support/hooked_fs.rs"]
mod hooked_fs;
use hooked_fs::{Call, HookedFs};

/// Big enough that the scenarios which must not cut never do, small enough to keep every
/// preallocated segment cheap.
pub const NO_CUT_SEGMENT_SIZE: u64 = 1 << 20;

/// Options with `segment_size` on the real file system.
pub fn options(segment_size: u64) -> WalOptions {
    WalOptions::new().segment_size(segment_size)
}

/// A fresh temporary parent; the log lives at `<parent>/wal`, which does not exist yet.
pub fn parent_and_dir() -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    (parent, dir)
}

/// Creates a log that does not cut (see [`NO_CUT_SEGMENT_SIZE`]).
pub fn create(dir: &Path, metadata: &[u8]) -> Wal {
    options(NO_CUT_SEGMENT_SIZE).create(dir, metadata).unwrap()
}

/// Opens a log for writing at `snap` with the no-cut options.
pub fn open(dir: &Path, snap: &WalSnapshot) -> raftwal::Result<Wal> {
    options(NO_CUT_SEGMENT_SIZE).open(dir, snap)
}

/// Opens a log for reading at `snap`.
pub fn open_for_read(dir: &Path, snap: &WalSnapshot) -> raftwal::Result<Wal> {
    options(NO_CUT_SEGMENT_SIZE).open_for_read(dir, snap)
}

/// The empty snapshot every log starts at.
pub fn start() -> WalSnapshot {
    WalSnapshot::default()
}

/// An entry with `index`, `term` and `data`.
pub fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        index,
        term,
        data: data.to_vec().into(),
        ..Default::default()
    }
}

/// An entry with only an index (term 0, no data), as etcd's scenarios write them.
pub fn bare(index: u64) -> Entry {
    entry(index, 0, b"")
}

/// A HardState.
pub fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..Default::default()
    }
}

/// A snapshot marker with the membership etcd's scenarios use.
pub fn snapshot(index: u64, term: u64) -> WalSnapshot {
    WalSnapshot {
        index,
        term,
        conf_state: Some(ConfState {
            voters: vec![0x00ff_ca74],
            ..Default::default()
        }),
    }
}

/// The indexes of `entries`, for readable assertions.
pub fn indexes(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.index).collect()
}

/// The segment file names in `dir`, in order (`.tmp` and `.broken` files left out).
pub fn segment_names(dir: &Path) -> Vec<String> {
    WalOptions::new()
        .segments(dir)
        .unwrap()
        .into_iter()
        .map(|s| s.file_name)
        .collect()
}

/// The path of the last segment in `dir`.
pub fn last_segment(dir: &Path) -> PathBuf {
    dir.join(segment_names(dir).last().unwrap())
}

/// `[start, end)` of every frame of a segment file, read from the raw length words: up to the
/// first zero word (preallocated space) or a frame that would run past the end of the file.
pub fn frames(path: &Path) -> Vec<(u64, u64)> {
    let bytes = fs::read(path).unwrap();
    let mut frames = Vec::new();
    let mut off = 0usize;
    while off + 8 <= bytes.len() {
        let word = u64::from_le_bytes(bytes[off..off + 8].try_into().unwrap());
        if word == 0 {
            break;
        }
        let Some(size) = raftwal::frame::frame_size(word) else {
            break;
        };
        let end = off + size as usize;
        if end > bytes.len() {
            break;
        }
        frames.push((off as u64, end as u64));
        off = end;
    }
    frames
}

/// The end of the last frame of a segment file: where the next record would go.
pub fn frames_end(path: &Path) -> u64 {
    frames(path).last().map_or(0, |&(_, end)| end)
}

/// Writes `bytes` at `offset` of the file at `path`.
pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt as _;
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
    file.sync_all().unwrap();
}

/// Sets the length of the file at `path` (cutting or extending with zeros).
pub fn set_len(path: &Path, len: u64) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len).unwrap();
    file.sync_all().unwrap();
}

/// Flips every bit of the byte at `offset` of the file at `path`.
pub fn flip_byte(path: &Path, offset: u64) {
    let byte = fs::read(path).unwrap()[offset as usize];
    write_at(path, offset, &[!byte]);
}

/// Appends a well-formed record (valid frame, correct running CRC) of `kind` after the last
/// frame of the segment at `path`, the way a foreign writer would; returns its frame's offset.
/// This is how scenarios craft records raftwal itself never writes.
pub fn append_raw_record(path: &Path, kind: RecordType, data: &[u8]) -> u64 {
    let dir = path.parent().unwrap();
    let file_name = path.file_name().unwrap().to_str().unwrap();
    let running = WalOptions::new()
        .raw_records(dir)
        .unwrap()
        .map(Result::unwrap)
        .filter(|r| r.file == file_name)
        .last()
        .unwrap()
        .crc;
    let record = walpb::Record {
        r#type: Some(kind as i64),
        crc: Some(crc32c::crc32c_append(running, data)),
        data: Some(data.to_vec()),
    };
    let body = record.encode_to_vec();
    let (word, pad) = raftwal::frame::length_word(body.len() as u64);
    let mut frame = word.to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame.resize(frame.len() + pad, 0);
    let offset = frames_end(path);
    write_at(path, offset, &frame);
    offset
}

/// `len` pseudo-random bytes (xorshift64*): incompressible, never a run of zero sectors, and
/// reproducible from `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Calls that reach the disk, per file name (not path: a segment is renamed from `<dir>.tmp`
/// or `N.tmp` to its final place but stays the same file).
#[derive(Debug, Default)]
pub struct Counters {
    syncs: Mutex<HashMap<String, usize>>,
    writes: Mutex<HashMap<String, usize>>,
}

impl Counters {
    /// `sync_data` and `sync_all` calls on files opened or created under `name`.
    pub fn syncs(&self, name: &str) -> usize {
        self.syncs.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    /// `write_all_at` calls on files opened or created under `name`.
    pub fn writes(&self, name: &str) -> usize {
        self.writes.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    fn bump(map: &Mutex<HashMap<String, usize>>, name: &str) {
        *map.lock().unwrap().entry(name.to_string()).or_default() += 1;
    }
}

/// The real file system, counting writes and syncs per file.
#[derive(Debug, Clone, Default)]
pub struct CountingFs {
    /// What was counted so far.
    pub counters: Arc<Counters>,
}

impl CountingFs {
    /// Options for a log on this file system, preparing segments inline so that every call
    /// happens in the test's thread and the counts are deterministic.
    pub fn options(&self, segment_size: u64) -> WalOptions {
        let counters = self.counters.clone();
        HookedFs::new(move |call| {
            match call {
                Call::Write(name) => Counters::bump(&counters.writes, name),
                Call::SyncData(name) | Call::SyncAll(name) => Counters::bump(&counters.syncs, name),
            }
            Ok(true)
        })
        .options(segment_size)
    }
}
