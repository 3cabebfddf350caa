//! The journal on the file store: typed records, damage and failures. Each is a clear typed
//! error, nothing acknowledged is lost, and a corrupt record is never skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raftwal::fs::sim::{Fault, FaultError, Op, SimFs};
use raftwal::journal::{Bytes, Codec, CodecError, Journal, Postcard, Replayed};
use raftwal::store::{FileStore, Store};
use raftwal::{AppLog, Error, WalOptions};
use serde::{Deserialize, Serialize};

fn options() -> WalOptions {
    WalOptions::new().segment_size(4096)
}

fn sim_options(fs: &SimFs) -> WalOptions {
    options()
        .file_system(Arc::new(fs.clone()))
        .prepare_segments_in_background(false)
}

/// A journal of `codec` records on a file store in a fresh directory: the directory's guard
/// (keep it alive), the store's path and the journal.
fn fresh_journal<C: Codec>(codec: C) -> (tempfile::TempDir, PathBuf, Journal<C>) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("j");
    let journal =
        Journal::open(FileStore::create(&dir, options()).unwrap(), codec, |_| {}).unwrap();
    (parent, dir, journal)
}

fn wal_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Event {
    Opened { account: String },
    Deposited { account: String, cents: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Balance {
    account: String,
    cents: u64,
}

/// The state checkpoints hold and events move, in one record type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Record {
    Event(Event),
    Balance(Balance),
}

#[test]
fn typed_records_round_trip_through_checkpoints_with_postcard() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("bank");
    let journal = Journal::open(
        FileStore::create(&dir, options()).unwrap(),
        Postcard::<Record>::new(),
        |_| {},
    )
    .unwrap();
    let opened = Record::Event(Event::Opened {
        account: "alice".into(),
    });
    journal.append(&opened).unwrap().wait().unwrap();
    let checkpoint = journal.start_checkpoint().unwrap();
    let balance = Record::Balance(Balance {
        account: "alice".into(),
        cents: 0,
    });
    checkpoint.append(&balance).unwrap();
    checkpoint.finalize().unwrap().wait().unwrap();
    let deposit = Record::Event(Event::Deposited {
        account: "alice".into(),
        cents: 1250,
    });
    let index = journal.append(&deposit).unwrap().wait().unwrap();
    journal.close().unwrap();

    let mut replayed = Vec::new();
    let journal = Journal::open(
        FileStore::open(&dir, options()).unwrap(),
        Postcard::<Record>::new(),
        |r| replayed.push(r),
    )
    .unwrap();
    assert_eq!(
        replayed,
        vec![
            Replayed::Checkpoint(balance),
            Replayed::Data {
                index,
                record: deposit
            }
        ]
    );
    journal.close().unwrap();
}

#[test]
fn a_journal_read_with_another_codec_is_a_bad_record() {
    let (_parent, dir, journal) = fresh_journal(Bytes);
    journal.append(b"hello").unwrap().wait().unwrap();
    journal.close().unwrap();
    let err = Journal::open(
        FileStore::open(&dir, options()).unwrap(),
        Postcard::<u64>::new(),
        |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadRecord { index: 1, .. }), "{err}");
    assert!(err.is_corruption());
}

/// Refuses to encode empty records.
struct NoEmpty;

impl Codec for NoEmpty {
    type Input = [u8];
    type Record = Vec<u8>;

    fn encode(&self, record: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if record.is_empty() {
            return Err("empty record".into());
        }
        out.extend_from_slice(record);
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(bytes.to_vec())
    }
}

#[test]
fn a_record_the_codec_refuses_is_an_encode_error_and_appends_nothing() {
    let (_parent, _dir, journal) = fresh_journal(NoEmpty);
    let err = journal.append(b"").unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err}");
    assert_eq!(journal.last_index(), 0);
    assert_eq!(journal.append(b"x").unwrap().wait().unwrap(), 1);
    journal.close().unwrap();
}

#[test]
fn records_the_journal_did_not_write_are_bad_records() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("j");
    let mut log = AppLog::create(&dir, options()).unwrap();
    log.append(b"\x01a data record").unwrap();
    log.append(b"\x09no such kind").unwrap();
    log.close().unwrap();
    let err = Journal::open(FileStore::open(&dir, options()).unwrap(), Bytes, |_| {}).unwrap_err();
    assert!(matches!(err, Error::BadRecord { index: 2, .. }), "{err}");
}

#[test]
fn a_corrupt_record_is_a_typed_error_never_skipped() {
    let (_parent, dir, journal) = fresh_journal(Bytes);
    for i in 0..40 {
        let record = format!("record {i:02} {}", "r".repeat(200));
        journal.append(record.as_bytes()).unwrap().wait().unwrap();
    }
    journal.close().unwrap();
    let files = wal_files(&dir);
    assert!(files.len() >= 3);
    // Flip one byte of a record in the middle of the log.
    let victim = &files[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let at = bytes.windows(6).position(|w| w == b"record").unwrap() + 7;
    bytes[at] ^= 0x20;
    std::fs::write(victim, bytes).unwrap();

    let err = FileStore::open(&dir, options()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(matches!(err, Error::CrcMismatch { .. }), "{err}");
    assert!(err.position().is_some());
}

#[test]
fn finalizing_deletes_the_segment_files_the_checkpoint_covers() {
    let (_parent, dir, journal) = fresh_journal(Bytes);
    for _ in 0..60 {
        journal.append(&[7; 300]).unwrap().wait().unwrap();
    }
    let before = wal_files(&dir);
    let checkpoint = journal.start_checkpoint().unwrap();
    checkpoint.append(b"state").unwrap();
    checkpoint.finalize().unwrap().wait().unwrap();
    let after = wal_files(&dir);
    assert!(before.len() >= 5, "{} segments", before.len());
    assert!(after.len() <= 2, "{} segments after the purge", after.len());
    assert_eq!(after.last(), before.last());
    journal.close().unwrap();
}

#[test]
fn a_second_writer_is_refused_while_the_journal_is_open() {
    let (_parent, dir, journal) = fresh_journal(Bytes);
    journal.append(b"mine").unwrap().wait().unwrap();
    let err = FileStore::open(&dir, options()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    journal.close().unwrap();
    assert!(FileStore::open(&dir, options()).is_ok());
}

#[test]
fn open_refuses_a_directory_without_a_journal() {
    let parent = tempfile::tempdir().unwrap();
    let err = FileStore::open(parent.path().join("none"), options()).unwrap_err();
    assert!(!err.is_corruption(), "{err}");
    let created = FileStore::create(parent.path(), options());
    assert!(created.is_ok(), "an empty directory may be created in");
}

/// A failed fdatasync: each waiter not yet acknowledged gets the error, the journal refuses
/// everything after, and a reopen holds every acknowledged record.
#[test]
fn a_failed_sync_fails_the_pending_waiters_and_poisons_the_journal() {
    let fs = SimFs::new();
    let journal = Journal::open(
        FileStore::create("/j", sim_options(&fs)).unwrap(),
        Bytes,
        |_| {},
    )
    .unwrap();
    for i in 0..5u8 {
        journal.append(&[i]).unwrap().wait().unwrap();
    }
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: fs.calls_of(Op::SyncData) + 1,
        error: FaultError::Eio,
        persistent: false,
    });
    let err = journal.append(b"lost?").unwrap().wait().unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(journal.is_poisoned());
    let err = journal.append(b"refused").unwrap_err();
    assert!(err.is_poisoned(), "{err}");
    let err = journal.start_checkpoint().unwrap_err();
    assert!(err.is_poisoned(), "{err}");
    drop(journal);

    let mut replayed = Vec::new();
    let journal = Journal::open(
        FileStore::open("/j", sim_options(&fs)).unwrap(),
        Bytes,
        |r| replayed.push(r),
    )
    .unwrap();
    let data: Vec<u64> = replayed
        .iter()
        .map(|r| match r {
            Replayed::Data { index, .. } => *index,
            Replayed::Checkpoint(_) => 0,
        })
        .collect();
    assert_eq!(data[..5], [1, 2, 3, 4, 5]);
    journal.close().unwrap();
}

#[test]
fn a_full_disk_is_a_disk_full_error_for_the_waiter() {
    let fs = SimFs::new();
    let journal = Journal::open(
        FileStore::create("/j", sim_options(&fs)).unwrap(),
        Bytes,
        |_| {},
    )
    .unwrap();
    journal.append(b"kept").unwrap().wait().unwrap();
    fs.inject(Fault {
        op: Some(Op::Write),
        nth: fs.calls_of(Op::Write) + 1,
        error: FaultError::Enospc,
        persistent: true,
    });
    let err = journal.append(b"no room").unwrap().wait().unwrap_err();
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    drop(journal);
    fs.clear_faults();
    let mut store = FileStore::open("/j", sim_options(&fs)).unwrap();
    assert!(store.last_index() >= 1);
    let mut first = None;
    store
        .read_from(1, &mut |i, b| {
            first.get_or_insert((i, b.to_vec()));
            Ok(())
        })
        .unwrap();
    assert_eq!(first, Some((1, b"\x01kept".to_vec())));
}
