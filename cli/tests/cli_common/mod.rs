//! Shared by the CLI tests: running the `raftwal` binary, writing small logs with the library,
//! damaging them, and the committed etcd fixture unpacked once.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use raftwal::eraftpb::{Entry, HardState};
use raftwal::{WalOptions, WalSnapshot};

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `raftwal ARGS...`.
pub fn raftwal<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new(env!("CARGO_BIN_EXE_raftwal"))
        .args(args)
        .output()
        .expect("run raftwal");
    Run {
        code: output.status.code().expect("raftwal exited, not killed"),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

/// Segments of 4 KiB reach cuts after a few dozen entries.
pub fn small_segments() -> WalOptions {
    WalOptions::new().segment_size(4096)
}

pub fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("entry {index} of term {term}: {}", "x".repeat(80)).into(),
        ..Default::default()
    }
}

pub fn hard_state(term: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote: 1,
        commit,
        ..Default::default()
    }
}

/// Creates a log in `dir` holding entries 1..=count (term 1, each saved with a HardState that
/// commits it) and a snapshot marker at every 20th index; returns the entries.
pub fn write_log(dir: &Path, count: u64) -> Vec<Entry> {
    let mut wal = small_segments().create(dir, b"cli-test").unwrap();
    let entries: Vec<Entry> = (1..=count).map(|i| entry(i, 1)).collect();
    for e in &entries {
        wal.save(&hard_state(1, e.index), std::slice::from_ref(e))
            .unwrap();
        if e.index % 20 == 0 {
            wal.save_snapshot_marker(&WalSnapshot::new(e.index, 1))
                .unwrap();
        }
    }
    wal.close().unwrap();
    entries
}

/// Appends one entry of `size` bytes (no HardState after it, no cut), so the log's last frame
/// spans several sectors; returns the entry.
pub fn append_big_entry(dir: &Path, size: usize) -> Entry {
    let options = WalOptions::new().segment_size(1 << 20);
    let mut wal = options.open(dir, &WalSnapshot::default()).unwrap();
    let last = wal
        .read_all()
        .unwrap()
        .entries
        .last()
        .map_or(0, |e| e.index);
    let big = Entry {
        index: last + 1,
        term: 1,
        data: vec![0xab; size].into(),
        ..Default::default()
    };
    wal.save(&HardState::default(), std::slice::from_ref(&big))
        .unwrap();
    wal.close().unwrap();
    big
}

/// The last segment's path and the offset of its last record's frame.
pub fn last_frame(dir: &Path) -> (PathBuf, u64) {
    let last = WalOptions::new()
        .raw_records(dir)
        .unwrap()
        .map(|r| r.unwrap())
        .last()
        .unwrap();
    (dir.join(&last.file), last.offset)
}

/// The fourth entry record of segment `file_index` (a frame in the middle of that segment), as
/// (segment path, frame offset).
pub fn entry_frame_in_segment(dir: &Path, file_index: usize) -> (PathBuf, u64) {
    let name = WalOptions::new().segments(dir).unwrap()[file_index]
        .file_name
        .clone();
    let record = WalOptions::new()
        .raw_records(dir)
        .unwrap()
        .map(|r| r.unwrap())
        .filter(|r| r.file == name && r.kind == raftwal::RecordType::Entry)
        .nth(3)
        .unwrap();
    (dir.join(name), record.offset)
}

/// Flips every bit of the byte at `offset`.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

/// Every file of `dir` with its bytes, to show that nothing changed.
pub fn snapshot_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// The committed etcd 3.4.23 data dir, unpacked once into cargo's test scratch directory
/// (keyed by the tarball's checksum, reused by later runs) and never modified by the tests.
pub fn etcd_data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/etcd");
        let tarball = std::fs::read(fixtures.join("etcd-3.4-datadir.tar.gz")).unwrap();
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = scratch.join(format!("etcd-fixture-{:08x}", crc32c::crc32c(&tarball)));
        if dir.join("complete").exists() {
            return dir;
        }
        let tmp = scratch.join(format!("etcd-fixture.{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        tar::Archive::new(flate2::read::GzDecoder::new(&tarball[..]))
            .unpack(&tmp)
            .unwrap();
        std::fs::write(tmp.join("complete"), b"").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        if std::fs::rename(&tmp, &dir).is_err() {
            // Another test process got there first with the same content.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        dir
    })
}

/// What etcd's own code read from the fixture.
pub fn etcd_expected() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/etcd/expected.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// CRC-32C of `data` as the oracle prints it.
pub fn crc_hex(data: &[u8]) -> String {
    format!("{:08x}", crc32c::crc32c(data))
}

/// Parses each line of `out` as JSON.
pub fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// `value[key]` as a u64.
pub fn u64_at(value: &serde_json::Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a u64 in {value}"))
}

/// Decodes standard base64.
pub fn unbase64(value: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().expect("a base64 string"))
        .unwrap()
}
