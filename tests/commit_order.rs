//! Group commit keeps a raft log a raft log: entries numbered by many concurrent writers are
//! stored contiguously and in index order, read back in the order they were written.

mod commit_fs;

use std::sync::{Arc, Mutex};
use std::thread;

use commit_fs::ControlledFs;
use raftwal::eraftpb::{Entry, HardState};
use raftwal::{LogRecord, SharedWal, SyncPolicy, Wal, WalSnapshot};

const WRITERS: u64 = 16;
const SAVES_EACH: u64 = 40;

/// An entry tagged with its writer and that writer's sequence number, index left to the caller.
fn tagged(writer: u64, seq: u64) -> Entry {
    Entry {
        term: 1,
        data: format!("{writer}:{seq}").into_bytes().into(),
        ..Default::default()
    }
}

fn untag(entry: &Entry) -> (u64, u64) {
    let text = std::str::from_utf8(&entry.data).unwrap();
    let (writer, seq) = text.split_once(':').unwrap();
    (writer.parse().unwrap(), seq.parse().unwrap())
}

fn shared_wal(dir: &std::path::Path) -> Arc<SharedWal> {
    let wal = ControlledFs::default()
        .options()
        .create(dir, b"order")
        .unwrap();
    Arc::new(SharedWal::new(wal, SyncPolicy::Grouped).unwrap())
}

/// Every entry of the log at `dir`, in the order the log stores them (no raft overwriting).
fn entries_in_log_order(dir: &std::path::Path) -> Vec<Entry> {
    let mut wal = Wal::open_for_read(dir, &WalSnapshot::default()).unwrap();
    let mut entries = Vec::new();
    for record in wal.replay().unwrap() {
        if let LogRecord::Entry(entry) = record.unwrap() {
            entries.push(entry);
        }
    }
    entries
}

/// The log holds indexes 1..=n in order, and each writer's entries in the order it made them.
fn assert_contiguous_in_index_order(entries: &[Entry]) {
    let indexes: Vec<u64> = entries.iter().map(|e| e.index).collect();
    assert_eq!(indexes, (1..=WRITERS * SAVES_EACH).collect::<Vec<_>>());
    let mut next_seq = vec![0u64; WRITERS as usize];
    for entry in entries {
        let (writer, seq) = untag(entry);
        assert_eq!(
            seq, next_seq[writer as usize],
            "writer {writer} out of order"
        );
        next_seq[writer as usize] += 1;
    }
}

#[test]
fn writers_numbering_entries_under_one_lock_leave_a_log_in_index_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let wal = shared_wal(&dir);
    let next_index = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (wal, next_index) = (wal.clone(), next_index.clone());
            thread::spawn(move || {
                for seq in 0..SAVES_EACH {
                    // Number and submit under one lock; wait for durability outside it, so
                    // the writers still share fdatasyncs.
                    let completion = {
                        let mut index = next_index.lock().unwrap();
                        *index += 1;
                        let mut entry = tagged(writer, seq);
                        entry.index = *index;
                        wal.submit(&HardState::default(), &[entry]).unwrap()
                    };
                    completion.wait().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    Arc::into_inner(wal).unwrap().close().unwrap();

    assert_contiguous_in_index_order(&entries_in_log_order(&dir));
}

#[test]
fn append_from_concurrent_writers_numbers_entries_contiguously_in_log_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let wal = shared_wal(&dir);
    let threads: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let wal = wal.clone();
            thread::spawn(move || {
                let mut given = Vec::new();
                for seq in 0..SAVES_EACH {
                    let mut entries = [tagged(writer, seq)];
                    let index = wal.append(&HardState::default(), &mut entries).unwrap();
                    assert_eq!(entries[0].index, index);
                    given.push(index);
                }
                given
            })
        })
        .collect();
    let mut given: Vec<Vec<u64>> = Vec::new();
    for t in threads {
        given.push(t.join().unwrap());
    }
    Arc::into_inner(wal).unwrap().close().unwrap();

    let entries = entries_in_log_order(&dir);
    assert_contiguous_in_index_order(&entries);
    // The index `append` returned is where the log holds that writer's entry.
    for (writer, indexes) in given.iter().enumerate() {
        for (seq, index) in indexes.iter().enumerate() {
            let stored = &entries[(*index - 1) as usize];
            assert_eq!(untag(stored), (writer as u64, seq as u64));
        }
    }
}

#[test]
fn submit_append_numbers_a_batch_after_the_entries_already_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let wal = shared_wal(&dir);
    let mut first = [tagged(0, 0), tagged(0, 1)];
    let (last, done) = wal
        .submit_append(&HardState::default(), &mut first)
        .unwrap();
    assert_eq!((first[0].index, first[1].index, last), (1, 2, 2));
    done.wait().unwrap();
    let mut second = [tagged(0, 2)];
    assert_eq!(wal.append(&HardState::default(), &mut second).unwrap(), 3);
    assert_eq!(wal.last_index(), 3);
    Arc::into_inner(wal).unwrap().close().unwrap();

    let indexes: Vec<u64> = entries_in_log_order(&dir).iter().map(|e| e.index).collect();
    assert_eq!(indexes, vec![1, 2, 3]);
}
