//! The etcd store against a real single-member etcd: records, batches, chunks, ownership,
//! deletion, a full etcd, bad input. Run with `cargo test -p raftwal --features etcd --test
//! store_etcd` (`cargo xtask test` does); without the etcd binary each test prints `SKIPPED`.

#[path = "support/etcd_raw.rs"]
mod etcd_raw;
#[path = "support/etcd_server.rs"]
mod etcd_server;
#[path = "support/skip.rs"]
mod skip;

use std::time::{Duration, Instant};

use etcd_raw::Raw;
use etcd_server::{Config, Etcd};
use raftwal::store::etcd::EtcdOptions;
use raftwal::store::Store;

fn options(etcd: &Etcd, prefix: &str) -> EtcdOptions {
    EtcdOptions::new(etcd.endpoints(), prefix)
        .lease_ttl(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(5))
}

fn read_all(store: &mut dyn Store, from: u64) -> Vec<(u64, Vec<u8>)> {
    let mut records = Vec::new();
    store
        .read_from(from, &mut |index, bytes| {
            records.push((index, bytes.to_vec()));
            Ok(())
        })
        .expect("read the records");
    records
}

fn record(index: u64) -> Vec<u8> {
    format!("record {index}").into_bytes()
}

#[test]
fn appended_records_are_read_back_after_reopen() {
    if !etcd_server::available("appended_records_are_read_back_after_reopen") {
        return;
    }
    let etcd = Etcd::single();
    let mut store = options(&etcd, "log/").open().unwrap();
    assert_eq!((store.first_index(), store.last_index()), (1, 0));
    store.append(&[b"one", b"two"]).unwrap();
    store.append(&[b"three"]).unwrap();
    assert_eq!(store.last_index(), 3);
    Box::new(store).close().unwrap();

    // close released the log: the next writer claims it at once and finds every record. The
    // journal holds its store as a `Box<dyn Store>`.
    let mut store: Box<dyn Store> = Box::new(options(&etcd, "log/").open().unwrap());
    assert_eq!((store.first_index(), store.last_index()), (1, 3));
    let records = read_all(store.as_mut(), 2);
    assert_eq!(records, vec![(2, b"two".to_vec()), (3, b"three".to_vec())]);
    store.append(&[b"four"]).unwrap();
    assert_eq!(read_all(store.as_mut(), 4), vec![(4, b"four".to_vec())]);
}

#[test]
fn the_store_touches_only_keys_under_its_prefix() {
    if !etcd_server::available("the_store_touches_only_keys_under_its_prefix") {
        return;
    }
    let etcd = Etcd::single();
    let raw = Raw::connect(&etcd.endpoints());
    raw.put("log", b"a neighbour");
    raw.put("log0", b"another neighbour");
    let mut store = options(&etcd, "log/").open().unwrap();
    store.append(&[b"one"]).unwrap();
    store.delete_before(2).unwrap();
    store.append(&[b"two"]).unwrap();
    let all = raw.keys("");
    let outside: Vec<&String> = all.iter().filter(|key| !key.starts_with("log/")).collect();
    assert_eq!(outside, ["log", "log0"]);
    assert_eq!(raw.get("log").unwrap().value(), b"a neighbour");
}

#[test]
fn a_batch_takes_as_few_transactions_as_the_op_limit_allows() {
    if !etcd_server::available("a_batch_takes_as_few_transactions_as_the_op_limit_allows") {
        return;
    }
    let etcd = Etcd::single();
    let raw = Raw::connect(&etcd.endpoints());
    let mut store = options(&etcd, "log/").open().unwrap();
    let records: Vec<Vec<u8>> = (1..=300).map(record).collect();
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    let before = raw.revision();
    store.append(&refs).unwrap();
    // Each etcd transaction is one revision: 300 puts at 128 per transaction are 3.
    assert_eq!(raw.revision() - before, 3);
    let read = read_all(&mut store, 1);
    assert_eq!(read.len(), 300);
    assert!(read.iter().all(|(index, bytes)| *bytes == record(*index)));
}

#[test]
fn a_record_larger_than_a_request_is_chunked_and_read_back_whole() {
    if !etcd_server::available("a_record_larger_than_a_request_is_chunked_and_read_back_whole") {
        return;
    }
    let etcd = Etcd::single();
    let raw = Raw::connect(&etcd.endpoints());
    let mut store = options(&etcd, "log/").open().unwrap();
    // 4 MiB: more than etcd's 1.5 MiB request limit, so several transactions of chunks.
    let big: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    store.append(&[b"small", &big, b"after"]).unwrap();
    assert_eq!(store.last_index(), 3);
    let chunks = raw
        .keys("log/c/")
        .iter()
        .filter(|key| key.starts_with("log/c/0000000000000002/"))
        .count();
    assert_eq!(chunks, 16, "4 MiB in 256 KiB chunks");
    Box::new(store).close().unwrap();

    let mut store = options(&etcd, "log/").open().unwrap();
    let read = read_all(&mut store, 1);
    assert_eq!(read.len(), 3);
    assert_eq!(read[1], (2, big));
    assert_eq!(read[2], (3, b"after".to_vec()));
}

#[test]
fn chunks_as_large_as_the_request_limit_allows_still_fit_a_transaction() {
    if !etcd_server::available(
        "chunks_as_large_as_the_request_limit_allows_still_fit_a_transaction",
    ) {
        return;
    }
    let etcd = Etcd::single();
    // The chunk size is capped to what one transaction of etcd's default 1.5 MiB carries,
    // with the compare, keys and protobuf framing around it.
    let mut store = options(&etcd, "log/")
        .chunk_size(usize::MAX)
        .open()
        .unwrap();
    let big: Vec<u8> = (0..3u32 << 20).map(|i| (i % 253) as u8).collect();
    let full = vec![7u8; 1536 * 1024 - 4096 - 100];
    store.append(&[&big, &full]).unwrap();
    let read = read_all(&mut store, 1);
    assert_eq!(read, vec![(1, big), (2, full)]);
}

#[test]
fn chunks_without_their_head_are_not_a_record_and_are_cleared() {
    if !etcd_server::available("chunks_without_their_head_are_not_a_record_and_are_cleared") {
        return;
    }
    let etcd = Etcd::single();
    let raw = Raw::connect(&etcd.endpoints());
    let mut store = options(&etcd, "log/").chunk_size(4).open().unwrap();
    store.append(&[b"ab", b"cdefghij"]).unwrap();
    Box::new(store).close().unwrap();
    // What a crash between a large record's chunk transaction and its head leaves.
    for chunk in 0..5 {
        raw.put(&format!("log/c/0000000000000003/{chunk:08x}"), b"zzzz");
    }

    let mut store = options(&etcd, "log/").chunk_size(4).open().unwrap();
    assert_eq!(store.last_index(), 2);
    assert!(raw
        .keys("log/c/")
        .iter()
        .all(|key| !key.starts_with("log/c/0000000000000003/")));
    store.append(&[b"klmnop"]).unwrap();
    let read = read_all(&mut store, 1);
    assert_eq!(
        read,
        vec![
            (1, b"ab".to_vec()),
            (2, b"cdefghij".to_vec()),
            (3, b"klmnop".to_vec())
        ]
    );
}

#[test]
fn a_missing_chunk_is_corruption_not_an_end() {
    if !etcd_server::available("a_missing_chunk_is_corruption_not_an_end") {
        return;
    }
    let etcd = Etcd::single();
    let mut store = options(&etcd, "log/").chunk_size(4).open().unwrap();
    store.append(&[b"abcdefghij", b"k"]).unwrap();
    Raw::connect(&etcd.endpoints()).delete("log/c/0000000000000001/00000001");
    let err = store.read_from(1, &mut |_, _| Ok(())).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn a_prefix_holding_foreign_keys_is_refused_and_left_untouched() {
    if !etcd_server::available("a_prefix_holding_foreign_keys_is_refused_and_left_untouched") {
        return;
    }
    let etcd = Etcd::single();
    let raw = Raw::connect(&etcd.endpoints());
    raw.put("app/config", b"{}");
    let err = options(&etcd, "app/").open().unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("app/config"), "{err}");
    assert_eq!(raw.keys("app/"), ["app/config"]);
}

#[test]
fn an_etcd_that_is_down_at_open_is_unavailable_within_the_timeouts() {
    if !etcd_server::available("an_etcd_that_is_down_at_open_is_unavailable_within_the_timeouts") {
        return;
    }
    let endpoint = format!("http://127.0.0.1:{}", etcd_server::free_port());
    let started = Instant::now();
    let err = EtcdOptions::new([endpoint], "log/")
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(2))
        .open()
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_second_writer_is_fenced_while_the_first_holds_the_log() {
    if !etcd_server::available("a_second_writer_is_fenced_while_the_first_holds_the_log") {
        return;
    }
    let etcd = Etcd::single();
    let mut first = options(&etcd, "log/").open().unwrap();
    first.append(&[b"one"]).unwrap();
    let err = options(&etcd, "log/").open().unwrap_err();
    assert!(err.is_fenced(), "{err}");
    assert!(err.to_string().contains("owned by"), "{err}");
    // The refused writer changed nothing; the owner goes on.
    first.append(&[b"two"]).unwrap();
    assert_eq!(read_all(&mut first, 1).len(), 2);
}

#[test]
fn a_writer_waiting_for_the_owner_takes_over_when_its_lease_expires() {
    if !etcd_server::available("a_writer_waiting_for_the_owner_takes_over_when_its_lease_expires") {
        return;
    }
    let etcd = Etcd::single();
    let mut first = options(&etcd, "log/").open().unwrap();
    first.append(&[b"one", b"two"]).unwrap();
    // A writer that dies without closing: its keep-alive stops with it.
    drop(first);
    let started = Instant::now();
    let mut second = options(&etcd, "log/")
        .wait_for_owner(Duration::from_secs(10))
        .open()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(second.last_index(), 2);
    second.append(&[b"three"]).unwrap();
    assert_eq!(read_all(&mut second, 1).len(), 3);
}

#[test]
fn a_writer_whose_lease_was_revoked_is_fenced_and_its_writes_are_invisible() {
    if !etcd_server::available(
        "a_writer_whose_lease_was_revoked_is_fenced_and_its_writes_are_invisible",
    ) {
        return;
    }
    let etcd = Etcd::single();
    let raw = Raw::connect(&etcd.endpoints());
    let mut stale = options(&etcd, "log/").open().unwrap();
    stale.append(&[b"a1", b"a2"]).unwrap();
    // The lease ends as an expiry ends it (etcd deletes the owner key); a new writer claims.
    raw.revoke(stale.lease().unwrap());
    let mut next = options(&etcd, "log/").open().unwrap();
    next.append(&[b"b3"]).unwrap();

    let err = stale.append(&[b"stale"]).unwrap_err();
    assert!(err.is_fenced(), "{err}");
    let err = stale.append(&[b"stale again"]).unwrap_err();
    assert!(err.is_fenced(), "{err}");
    assert!(stale.delete_before(2).unwrap_err().is_fenced());

    let read = read_all(&mut next, 1);
    let values: Vec<&[u8]> = read.iter().map(|(_, bytes)| bytes.as_slice()).collect();
    assert_eq!(values, [&b"a1"[..], b"a2", b"b3"]);
}

#[test]
fn a_writer_whose_live_lease_lost_the_owner_key_is_refused_by_etcd() {
    if !etcd_server::available("a_writer_whose_live_lease_lost_the_owner_key_is_refused_by_etcd") {
        return;
    }
    let etcd = Etcd::single();
    let raw = Raw::connect(&etcd.endpoints());
    let mut stale = options(&etcd, "log/").open().unwrap();
    stale.append(&[b"a1"]).unwrap();
    // The stale writer's lease stays alive (its keep-alive sees nothing wrong), so only the
    // compare on the owner key's revision inside etcd can refuse its writes.
    raw.delete("log/owner");
    let mut next = options(&etcd, "log/").open().unwrap();
    assert_ne!(next.lease(), stale.lease());
    next.append(&[b"b2"]).unwrap();
    let err = stale.append(&[b"stale"]).unwrap_err();
    assert!(err.is_fenced(), "{err}");
    assert!(err.to_string().contains("owned by"), "{err}");
    let read = read_all(&mut next, 1);
    assert_eq!(read, vec![(1, b"a1".to_vec()), (2, b"b2".to_vec())]);
}

#[test]
fn delete_before_removes_old_keys_and_compacts_history() {
    if !etcd_server::available("delete_before_removes_old_keys_and_compacts_history") {
        return;
    }
    let etcd = Etcd::single();
    let raw = Raw::connect(&etcd.endpoints());
    let mut store = options(&etcd, "log/").chunk_size(8).open().unwrap();
    let records: Vec<Vec<u8>> = (1..=10).map(|i| vec![i as u8; 20]).collect();
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    store.append(&refs).unwrap();
    let old_revision = raw.revision();
    store.delete_before(6).unwrap();
    assert_eq!((store.first_index(), store.last_index()), (6, 10));
    let heads = raw.keys("log/r/");
    assert_eq!(heads.len(), 5);
    assert!(raw
        .keys("log/c/")
        .iter()
        .all(|key| key.as_str() >= "log/c/0000000000000006/"));
    // History before the deletion is gone.
    let mut client = raw.client.clone();
    let at_old = raw.runtime.block_on(client.get(
        "log/r/0000000000000001",
        Some(etcd_client::GetOptions::new().with_revision(old_revision - 1)),
    ));
    assert!(at_old.is_err(), "{at_old:?}");

    Box::new(store).close().unwrap();
    let mut store = options(&etcd, "log/").open().unwrap();
    assert_eq!((store.first_index(), store.last_index()), (6, 10));
    let read = read_all(&mut store, 1);
    assert_eq!(read.first().map(|(index, _)| *index), Some(6));
    assert_eq!(read.len(), 5);
}

#[test]
fn deleting_every_record_keeps_the_numbering() {
    if !etcd_server::available("deleting_every_record_keeps_the_numbering") {
        return;
    }
    let etcd = Etcd::single();
    let mut store = options(&etcd, "log/").open().unwrap();
    store.append(&[b"1", b"2", b"3"]).unwrap();
    store.delete_before(4).unwrap();
    assert_eq!((store.first_index(), store.last_index()), (4, 3));
    Box::new(store).close().unwrap();
    let mut store = options(&etcd, "log/").open().unwrap();
    assert_eq!((store.first_index(), store.last_index()), (4, 3));
    store.append(&[b"4"]).unwrap();
    assert_eq!(read_all(&mut store, 1), vec![(4, b"4".to_vec())]);
}

#[test]
fn a_read_only_store_reads_beside_the_writer_and_refuses_writes() {
    if !etcd_server::available("a_read_only_store_reads_beside_the_writer_and_refuses_writes") {
        return;
    }
    let etcd = Etcd::single();
    let mut writer = options(&etcd, "log/").open().unwrap();
    writer.append(&[b"one", b"two"]).unwrap();
    let mut reader = options(&etcd, "log/").open_read_only().unwrap();
    assert_eq!(reader.last_index(), 2);
    writer.append(&[b"three"]).unwrap();
    assert_eq!(read_all(&mut reader, 1).len(), 3);
    assert_eq!(reader.last_index(), 3);
    assert!(reader.append(&[b"no"]).is_err());
    writer.append(&[b"four"]).unwrap();
}

#[test]
fn a_full_etcd_is_a_typed_error_and_loses_nothing_acknowledged() {
    if !etcd_server::available("a_full_etcd_is_a_typed_error_and_loses_nothing_acknowledged") {
        return;
    }
    let etcd = Etcd::start(Config {
        members: 1,
        args: vec!["--quota-backend-bytes".into(), (4u64 << 20).to_string()],
        ..Config::default()
    });
    let mut store = options(&etcd, "log/").open().unwrap();
    let mut acknowledged = Vec::new();
    let err = loop {
        let index = store.last_index() + 1;
        let bytes = vec![(index % 256) as u8; 100 << 10];
        match store.append(&[&bytes]) {
            Ok(()) => acknowledged.push(bytes),
            Err(err) => break err,
        }
        assert!(acknowledged.len() < 1000, "etcd never filled up");
    };
    assert!(err.is_full(), "{err}");
    assert!(!acknowledged.is_empty());
    // The store refuses writes after the failure; a reader finds every acknowledged record.
    assert!(store.append(&[b"x"]).is_err());
    let mut reader = options(&etcd, "log/").open_read_only().unwrap();
    let read = read_all(&mut reader, 1);
    assert!(read.len() >= acknowledged.len());
    for ((index, bytes), expected) in read.iter().zip(&acknowledged) {
        assert_eq!(bytes, expected, "record {index}");
    }
}

#[test]
fn a_prefix_without_a_trailing_slash_is_refused() {
    // No server needed: the prefix is checked before connecting.
    let err = EtcdOptions::new(["http://127.0.0.1:1"], "log")
        .open()
        .unwrap_err();
    assert!(matches!(err, raftwal::Error::InvalidState { .. }), "{err}");
}
