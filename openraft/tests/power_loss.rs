//! Power loss after every I/O call of an openraft-like workload, on raftwal's simulated disk:
//! the store must open, hold every acknowledged entry, vote and purge, hold no entry that an
//! acknowledged truncate removed, and keep its log whole. Also: many concurrent appends share
//! fdatasyncs (group commit).

use std::collections::BTreeMap;
use std::io;
use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};
use raftwal::fs::sim::{Crash, Fault, FaultError, Fill, Op, SectorLoss, SimFs};
use raftwal::fs::{FileSystem, WalFile};
use raftwal::WalOptions;
use raftwal_openraft::LogStore;

openraft::declare_raft_types!(
    TC: D = String, R = String, NodeId = u64, Node = openraft::BasicNode,
);

const DIR: &str = "/node/wal";

fn options(fs: &SimFs) -> WalOptions {
    WalOptions::new()
        .file_system(Arc::new(fs.clone()))
        .segment_size(1024)
        .prepare_segments_in_background(false)
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

/// What the workload did: the state after the last acknowledged call, and the state the call
/// in flight when the power went off would have made.
#[derive(Debug, Clone, Default)]
struct Model {
    entries: BTreeMap<u64, LogId<u64>>,
    purged: Option<LogId<u64>>,
    vote: Option<Vote<u64>>,
}

#[derive(Debug, Default)]
struct Outcome {
    acked: Model,
    attempted: Model,
    created: bool,
}

/// The workload: votes, batches of appends, truncates (each followed by a new term, so a
/// truncated entry's log id is never written again) and purges.
async fn workload(fs: &SimFs, out: &mut Outcome) -> Result<(), Box<dyn std::error::Error>> {
    let mut store = LogStore::<TC>::open(DIR, options(fs))?;
    out.created = true;
    let mut term = 1;
    let mut next = 0;
    out.attempted.vote = Some(Vote::new(term, 1));
    store.save_vote(&Vote::new(term, 1)).await?;
    out.acked = out.attempted.clone();
    for round in 0..24u64 {
        let batch: Vec<Entry<TC>> = (next..next + 3)
            .map(|i| Entry {
                log_id: log_id(term, i),
                payload: EntryPayload::Normal(format!("{round}:{i}")),
            })
            .collect();
        for e in &batch {
            out.attempted.entries.insert(e.log_id.index, e.log_id);
        }
        store.blocking_append(batch).await?;
        next += 3;
        out.acked = out.attempted.clone();

        if round % 5 == 4 {
            let t = next - 2;
            out.attempted.entries.split_off(&t);
            store.truncate(log_id(term, t)).await?;
            out.acked = out.attempted.clone();
            next = t;
            term += 1;
            out.attempted.vote = Some(Vote::new_committed(term, 1));
            store.save_vote(&Vote::new_committed(term, 1)).await?;
            out.acked = out.attempted.clone();
        }
        if round % 7 == 6 {
            let p = next - 4;
            let purged = out.attempted.entries[&p];
            store.save_committed(Some(purged)).await?;
            out.attempted.entries = out.attempted.entries.split_off(&(p + 1));
            out.attempted.purged = Some(purged);
            store.purge(purged).await?;
            out.acked = out.attempted.clone();
        }
    }
    store.close()?;
    Ok(())
}

/// A disk whose node directory exists durably (the store makes its own directory durable, not
/// the ones above it).
fn disk() -> SimFs {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/node")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs
}

fn run(fs: &SimFs) -> Outcome {
    let mut out = Outcome::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The workload stops at its first error (the power went off): `out` says how far it got.
    let _ = rt.block_on(workload(fs, &mut out));
    out
}

/// Opens the store on `disk` and checks it against what the workload was told.
fn check(disk: &SimFs, out: &Outcome, what: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut store = match LogStore::<TC>::open(DIR, options(disk)) {
            Ok(store) => store,
            Err(e) => panic!("{what}: the store does not open: {e}"),
        };
        let entries = store.try_get_log_entries(..).await.unwrap();
        let state = store.get_log_state().await.unwrap();
        let vote = store.read_vote().await.unwrap();
        if !out.created {
            return;
        }
        // The log is whole: contiguous from the purge point to the last log id.
        let first = state.last_purged_log_id.map_or(0, |p| p.index + 1);
        let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
        let want: Vec<u64> = (first..first + indexes.len() as u64).collect();
        assert_eq!(indexes, want, "{what}: a hole");
        assert_eq!(
            state.last_log_id,
            entries
                .last()
                .map(|e| e.log_id)
                .or(state.last_purged_log_id),
            "{what}"
        );
        // The purge and the vote are the acknowledged ones or the ones in flight.
        assert!(
            [out.acked.purged, out.attempted.purged].contains(&state.last_purged_log_id),
            "{what}: purged {:?}",
            state.last_purged_log_id
        );
        assert!(
            [out.acked.vote, out.attempted.vote].contains(&vote),
            "{what}: vote {vote:?}"
        );
        // Every acknowledged entry after the purge point is there, unless the call in flight
        // (a truncate that may or may not have taken effect) removed it.
        for (index, id) in out.acked.entries.range(first..) {
            let got = entries.get((index - first) as usize).map(|e| e.log_id);
            let in_flight = out.attempted.entries.get(index).copied();
            assert!(
                got == Some(*id) || (in_flight != Some(*id) && got == in_flight),
                "{what}: acknowledged entry {index} lost (got {got:?})"
            );
        }
        // No entry that an acknowledged truncate removed: each one is acknowledged or in flight.
        for e in &entries {
            let i = e.log_id.index;
            assert!(
                out.acked.entries.get(&i) == Some(&e.log_id)
                    || out.attempted.entries.get(&i) == Some(&e.log_id),
                "{what}: entry {} was truncated or never written",
                e.log_id
            );
        }
        // And the log goes on.
        let last = state.last_log_id.map_or(0, |l| l.index + 1);
        store
            .blocking_append([Entry {
                log_id: log_id(100, last),
                payload: EntryPayload::Blank,
            }])
            .await
            .unwrap_or_else(|e| panic!("{what}: append after recovery: {e}"));
    });
}

#[test]
fn every_acknowledged_write_survives_a_power_loss_after_any_io_call() {
    let full = disk();
    let out = run(&full);
    assert!(
        out.acked.purged.is_some() && out.created,
        "the workload ran"
    );
    let points = full.calls().mutations;
    let mut states = 0;
    for point in 1..=points {
        let fs = disk();
        fs.power_off_after(point);
        let out = run(&fs);
        let crashes = [
            Crash::DropUnsynced,
            Crash::KeepUnsynced,
            Crash::Random {
                seed: point,
                sectors: SectorLoss::Prefix,
                fill: Fill::Zeros,
            },
            Crash::Random {
                seed: point + 1_000_000,
                sectors: SectorLoss::Any,
                fill: Fill::Zeros,
            },
        ];
        for crash in crashes {
            let what = format!("power loss after I/O call {point} of {points}, {crash:?}");
            check(&fs.crash(crash), &out, &what);
            states += 1;
        }
    }
    println!("{points} crash points, {states} crash states: no acknowledged write lost");
}

/// The simulated disk with a real fdatasync latency (the simulated one takes no time, so no
/// save would ever find a sync running to join).
#[derive(Debug)]
struct SlowSync(SimFs);

#[derive(Debug)]
struct SlowFile(Arc<dyn WalFile>);

const SYNC_LATENCY: Duration = Duration::from_millis(2);

impl WalFile for SlowFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.0.allocate(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        std::thread::sleep(SYNC_LATENCY);
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        std::thread::sleep(SYNC_LATENCY);
        self.0.sync_all()
    }
    fn try_lock(&self) -> io::Result<bool> {
        self.0.try_lock()
    }
    fn unlock(&self) -> io::Result<()> {
        self.0.unlock()
    }
}

impl FileSystem for SlowSync {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.0.create_dir_all(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.0.remove_dir_all(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.0.remove_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.0.list_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.0.exists(path)
    }
    fn create_file(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        Ok(Arc::new(SlowFile(self.0.create_file(path)?)))
    }
    fn open_file(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn WalFile>> {
        Ok(Arc::new(SlowFile(self.0.open_file(path, writable)?)))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.sync_dir(path)
    }
}

#[test]
fn thirty_two_concurrent_appenders_share_fdatasyncs_and_lose_nothing_acknowledged() {
    let fs = disk();
    let slow = WalOptions::new()
        .file_system(Arc::new(SlowSync(fs.clone())))
        .segment_size(64 << 20)
        .prepare_segments_in_background(false);
    let store = LogStore::<TC>::open(DIR, slow).unwrap();
    let store = Arc::new(Mutex::new(store));
    let syncs_before = fs.calls_of(Op::SyncData);
    let appends = 32 * 20;
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let completion = {
                        let mut store = store.lock().unwrap();
                        let index = store.next_index();
                        let entry = Entry {
                            log_id: log_id(1, index),
                            payload: EntryPayload::Blank,
                        };
                        store.append_pipelined(vec![entry]).unwrap()
                    };
                    completion.wait().unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let syncs = fs.calls_of(Op::SyncData) - syncs_before;
    println!("{appends} appends from 32 threads: {syncs} fdatasyncs");
    assert!(
        syncs * 4 <= appends,
        "{appends} appends took {syncs} fdatasyncs: fewer than 4 appends per fdatasync"
    );
    // Every acknowledged append is durable: only what was synced survives this power loss.
    let disk = fs.crash(Crash::DropUnsynced);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut store = LogStore::<TC>::open(DIR, options(&disk)).unwrap();
    let entries = rt.block_on(store.try_get_log_entries(..)).unwrap();
    assert_eq!(entries.len() as u64, appends);
}

#[test]
fn a_failed_fdatasync_reaches_openraft_as_a_storage_error_with_its_cause() {
    let fs = disk();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut store = LogStore::<TC>::open(DIR, options(&fs)).unwrap();
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: fs.calls_of(Op::SyncData) + 1,
        error: FaultError::Eio,
        persistent: true,
    });
    let err = rt
        .block_on(store.save_vote(&Vote::new(1, 1)))
        .expect_err("the vote's fdatasync failed");
    let message = err.to_string();
    assert!(message.contains("Vote"), "{message}");
    assert!(message.contains("syncing"), "{message}");
    assert!(message.contains("Input/output error"), "{message}");
    // The log refuses writes from then on (reopen to go on); an append's callback gets the error.
    let append = rt.block_on(store.blocking_append([Entry {
        log_id: log_id(1, 0),
        payload: EntryPayload::Blank,
    }]));
    assert!(append.is_err());
}
