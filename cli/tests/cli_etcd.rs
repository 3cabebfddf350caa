//! `raftwal etcd dump|verify` against a real etcd holding a journal's store (feature `etcd`):
//! what they print, and the exit codes for a sound store, a damaged one and a down cluster.
//! Run with `cargo test -p raftwal-cli --features etcd --test cli_etcd`.

mod cli_common;
#[path = "../../tests/support/etcd_server.rs"]
mod etcd_server;
#[path = "../../tests/support/skip.rs"]
mod skip;

use std::time::Duration;

use cli_common::raftwal;
use etcd_server::Etcd;
use raftwal::store::etcd::EtcdOptions;
use raftwal::store::Store;

fn write_journal(etcd: &Etcd, prefix: &str, records: &[&[u8]]) {
    let mut store = EtcdOptions::new(etcd.endpoints(), prefix)
        .lease_ttl(Duration::from_secs(2))
        .chunk_size(16)
        .open()
        .unwrap();
    store.append(records).unwrap();
    Box::new(store).close().unwrap();
}

fn args<'a>(etcd: &'a str, command: &'a str, prefix: &'a str) -> Vec<&'a str> {
    vec!["etcd", command, "--etcd", etcd, "--prefix", prefix]
}

#[test]
fn dump_prints_each_records_index_length_and_bytes() {
    if !etcd_server::available("dump_prints_each_records_index_length_and_bytes") {
        return;
    }
    let etcd = Etcd::single();
    let big: Vec<u8> = (0..40u8).collect();
    write_journal(&etcd, "jobs/", &[b"debit alice 10", &[0, 1, 0xff], &big]);
    let endpoints = etcd.endpoints().join(",");
    let run = raftwal(args(&endpoints, "dump", "jobs/"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert_eq!(lines[0], "1\t14\t\"debit alice 10\"");
    assert_eq!(lines[1], "2\t3\t0001ff");
    // A chunked record (40 bytes in 16-byte chunks) comes back whole.
    let hex: String = big.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(lines[2], format!("3\t40\t{hex}"));
}

#[test]
fn verify_reports_the_range_of_a_sound_store() {
    if !etcd_server::available("verify_reports_the_range_of_a_sound_store") {
        return;
    }
    let etcd = Etcd::single();
    write_journal(&etcd, "jobs/", &[b"a", b"bb", b"ccc"]);
    let endpoints = etcd.endpoints().join(",");
    let run = raftwal(args(&endpoints, "verify", "jobs/"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("ok: ") && run.stdout.contains("records 1..=3 (3 records, 6 B)"),
        "{}",
        run.stdout
    );
}

#[test]
fn verify_fails_as_corruption_on_foreign_keys_under_the_prefix() {
    if !etcd_server::available("verify_fails_as_corruption_on_foreign_keys_under_the_prefix") {
        return;
    }
    let etcd = Etcd::single();
    write_journal(&etcd, "jobs/", &[b"a"]);
    // Another store nested under the prefix: its keys are not this store's layout.
    write_journal(&etcd, "jobs/nested/", &[b"b"]);
    let endpoints = etcd.endpoints().join(",");
    let run = raftwal(args(&endpoints, "verify", "jobs/"));
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("jobs/nested/"), "{}", run.stderr);
}

#[test]
fn verify_fails_quickly_when_etcd_is_down() {
    if !etcd_server::available("verify_fails_quickly_when_etcd_is_down") {
        return;
    }
    let endpoint = format!("127.0.0.1:{}", etcd_server::free_port());
    let mut command = args(&endpoint, "verify", "jobs/");
    command.extend(["--timeout", "1"]);
    let run = raftwal(command);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("unavailable"), "{}", run.stderr);
}
