//! The committed etcd 3.4.23 data dir (tests/fixtures/etcd) and what etcd's own code read from
//! it (`expected.json`, produced by tests/fixtures/etcd/oracle). Include with
//! `#[path = "support/etcd_fixture.rs"] mod etcd_fixture;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// An unpacked copy of the fixture data dir; removed on drop.
pub struct EtcdFixture {
    _root: tempfile::TempDir,
    /// The etcd data dir (holds `member/wal` and `member/snap`).
    pub data_dir: PathBuf,
    /// `data_dir/member/wal`.
    pub wal_dir: PathBuf,
    /// The oracle's JSON.
    pub expected: serde_json::Value,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/etcd")
}

/// Unpacks the fixture into a fresh temporary directory.
pub fn unpack() -> EtcdFixture {
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("etcd-data");
    std::fs::create_dir_all(&data_dir).expect("mkdir");
    let tarball = std::fs::File::open(fixture_dir().join("etcd-3.4-datadir.tar.gz"))
        .expect("fixture tarball");
    tar::Archive::new(flate2::read::GzDecoder::new(tarball))
        .unpack(&data_dir)
        .expect("unpack fixture");
    let expected = serde_json::from_slice(
        &std::fs::read(fixture_dir().join("expected.json")).expect("expected.json"),
    )
    .expect("parse expected.json");
    EtcdFixture {
        wal_dir: data_dir.join("member/wal"),
        data_dir,
        _root: root,
        expected,
    }
}

/// CRC-32C of `data` as the oracle prints it.
pub fn crc_hex(data: &[u8]) -> String {
    format!("{:08x}", crc32c::crc32c(data))
}

/// `expected[key]` as a u64.
pub fn u64_at(value: &serde_json::Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a u64 in {value}"))
}
