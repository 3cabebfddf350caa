//! Group commit: concurrent savers, completions in log order, futures, and the sync policies.

mod commit_fs;

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use commit_fs::ControlledFs;
use raftwal::eraftpb::{Entry, HardState};
use raftwal::{Completion, RecordType, SharedWal, SyncPolicy, Wal, WalOptions, WalSnapshot};

fn entry(index: u64, data: &str) -> Entry {
    Entry {
        index,
        term: 1,
        data: data.as_bytes().to_vec().into(),
        ..Default::default()
    }
}

fn hard_state(term: u64, commit: u64) -> HardState {
    HardState {
        term,
        commit,
        ..Default::default()
    }
}

fn shared_wal(dir: &std::path::Path, fs: &ControlledFs, policy: SyncPolicy) -> SharedWal {
    let wal = fs.options().create(dir, b"group").unwrap();
    SharedWal::new(wal, policy).unwrap()
}

/// Runs a future to its end on this thread, parking between polls.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}

#[test]
fn sixteen_blocking_savers_are_each_acknowledged_and_the_log_holds_exactly_their_saves() {
    const THREADS: u64 = 16;
    const SAVES: u64 = 25;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let wal = Arc::new(shared_wal(
        &dir,
        &ControlledFs::default(),
        SyncPolicy::Grouped,
    ));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = wal.clone();
            // Every save changes the term, so raft requires each one to be durable.
            thread::spawn(move || {
                for i in 0..SAVES {
                    wal.save(&hard_state(1 + t * 1000 + i, 0), &[]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    Arc::into_inner(wal).unwrap().close().unwrap();

    let mut seen: Vec<Vec<u64>> = vec![Vec::new(); THREADS as usize];
    for record in WalOptions::new().raw_records(&dir).unwrap() {
        let record = record.unwrap();
        if record.kind == RecordType::State {
            // merge_from_bytes, not parse_from_bytes: the one that works under both codecs.
            let mut hs = HardState::default();
            protobuf::Message::merge_from_bytes(&mut hs, &record.data).unwrap();
            let t = (hs.term - 1) / 1000;
            seen[t as usize].push((hs.term - 1) % 1000);
        }
    }
    // Each thread's saves are in the log exactly once, in the order it made them.
    for saves in seen {
        assert_eq!(saves, (0..SAVES).collect::<Vec<_>>());
    }
}

#[test]
fn sixteen_pipelined_savers_get_completions_that_fire_in_log_order() {
    const THREADS: u64 = 16;
    const SAVES: u64 = 20;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let wal = Arc::new(shared_wal(
        &dir,
        &ControlledFs::default(),
        SyncPolicy::Grouped,
    ));
    // Raft assigns indexes in one place: the next index and the submit happen together, so
    // `log` is in log order.
    let log: Arc<Mutex<Vec<(u64, String, Completion)>>> = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (wal, log) = (wal.clone(), log.clone());
            thread::spawn(move || {
                for i in 0..SAVES {
                    let mut log = log.lock().unwrap();
                    let index = log.len() as u64 + 1;
                    let data = format!("{t}:{i}");
                    let done = wal
                        .submit(&hard_state(1, index), &[entry(index, &data)])
                        .unwrap();
                    log.push((index, data, done));
                }
            })
        })
        .collect();

    // Scanning from the newest save down, a fired completion means every older one fired.
    loop {
        let log = log.lock().unwrap();
        let mut later_fired = None;
        let mut pending = 0;
        for (index, _, done) in log.iter().rev() {
            match done.try_wait() {
                Some(result) => {
                    result.unwrap();
                    later_fired.get_or_insert(*index);
                }
                None => {
                    assert_eq!(
                        later_fired, None,
                        "save {index} pending after a later one fired"
                    );
                    pending += 1;
                }
            }
        }
        if pending == 0 && log.len() as u64 == THREADS * SAVES {
            break;
        }
        drop(log);
        thread::yield_now();
    }
    for t in threads {
        t.join().unwrap();
    }
    let log = Arc::into_inner(log).unwrap().into_inner().unwrap();
    Arc::into_inner(wal).unwrap().close().unwrap();

    let mut reopened = Wal::open(&dir, &WalSnapshot::default()).unwrap();
    let recovered = reopened.read_all().unwrap();
    let expected: Vec<Entry> = log.iter().map(|(i, d, _)| entry(*i, d)).collect();
    assert_eq!(recovered.entries, expected);
}

#[test]
fn one_sync_covers_every_save_written_while_the_previous_sync_ran() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = ControlledFs::default();
    let wal = shared_wal(&tmp.path().join("wal"), &fs, SyncPolicy::Grouped);
    let before = fs.control.syncs();
    fs.control.close_gate();
    let first = wal.submit(&hard_state(1, 0), &[entry(1, "a")]).unwrap();
    fs.control.wait_until_held(1);
    let rest: Vec<Completion> = (2..=16)
        .map(|i| wal.submit(&hard_state(1, 0), &[entry(i, "b")]).unwrap())
        .collect();
    assert!(rest.iter().all(|c| c.try_wait().is_none()));
    fs.control.open_gate();
    first.wait().unwrap();
    for done in rest {
        done.wait().unwrap();
    }
    assert_eq!(fs.control.syncs() - before, 2);
}

#[test]
fn a_completion_is_a_future_that_resolves_once_its_sync_succeeded() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = ControlledFs::default();
    let wal = shared_wal(&tmp.path().join("wal"), &fs, SyncPolicy::Grouped);
    fs.control.close_gate();
    let mut done = pin!(wal.submit(&hard_state(1, 0), &[entry(1, "a")]).unwrap());
    fs.control.wait_until_held(1);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(done.as_mut().poll(&mut cx).is_pending());
    fs.control.open_gate();
    block_on(done).unwrap();
}

#[test]
fn awaited_completions_resolve_in_log_order() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = shared_wal(
        &tmp.path().join("wal"),
        &ControlledFs::default(),
        SyncPolicy::Grouped,
    );
    let completions: Vec<Completion> = (1..=50)
        .map(|i| wal.submit(&hard_state(1, i), &[entry(i, "x")]).unwrap())
        .collect();
    let order = block_on(async {
        let mut order = Vec::new();
        // Await the newest first: once it resolves, every older one must be done already.
        let mut completions = completions;
        let newest = completions.pop().unwrap();
        newest.await.unwrap();
        order.push(50);
        for (i, done) in completions.iter().enumerate() {
            assert!(
                matches!(done.try_wait(), Some(Ok(()))),
                "save {} pending",
                i + 1
            );
            order.push(i as u64 + 1);
        }
        order
    });
    assert_eq!(order.len(), 50);
}

#[test]
fn never_policy_acknowledges_saves_without_syncing() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = ControlledFs::default();
    let wal = shared_wal(&tmp.path().join("wal"), &fs, SyncPolicy::Never);
    let before = fs.control.syncs();
    for i in 1..=10 {
        wal.save(&hard_state(1, i), &[entry(i, "x")]).unwrap();
    }
    assert_eq!(fs.control.syncs(), before);
    wal.sync().unwrap();
    assert_eq!(fs.control.syncs(), before + 1);
}

#[test]
fn always_policy_syncs_every_save_including_commit_only_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = ControlledFs::default();
    let wal = shared_wal(&tmp.path().join("wal"), &fs, SyncPolicy::Always);
    let before = fs.control.syncs();
    wal.save(&hard_state(1, 0), &[entry(1, "x")]).unwrap();
    wal.save(&hard_state(1, 1), &[]).unwrap();
    let done = wal.submit(&hard_state(1, 1), &[entry(2, "y")]).unwrap();
    assert!(matches!(done.try_wait(), Some(Ok(()))));
    assert_eq!(fs.control.syncs(), before + 3);
}

#[test]
fn grouped_policy_acknowledges_a_commit_only_change_without_a_sync_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = ControlledFs::default();
    let wal = shared_wal(&tmp.path().join("wal"), &fs, SyncPolicy::Grouped);
    let before = fs.control.syncs();
    wal.save(&hard_state(1, 0), &[entry(1, "x")]).unwrap();
    wal.save(&hard_state(1, 1), &[]).unwrap();
    assert_eq!(fs.control.syncs(), before + 1);
}

#[test]
fn a_commit_only_change_is_not_acknowledged_before_an_earlier_save_is_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = ControlledFs::default();
    let wal = shared_wal(&tmp.path().join("wal"), &fs, SyncPolicy::Grouped);
    fs.control.close_gate();
    let entries = wal.submit(&hard_state(1, 0), &[entry(1, "x")]).unwrap();
    fs.control.wait_until_held(1);
    let commit = wal.submit(&hard_state(1, 1), &[]).unwrap();
    assert!(commit.try_wait().is_none());
    fs.control.open_gate();
    commit.wait().unwrap();
    assert!(matches!(entries.try_wait(), Some(Ok(()))));
}

#[test]
fn periodic_policy_makes_the_save_reaching_max_entries_wait_for_a_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = ControlledFs::default();
    let policy = SyncPolicy::Periodic {
        interval: Duration::MAX,
        max_entries: 10,
    };
    let wal = shared_wal(&tmp.path().join("wal"), &fs, policy);
    let before = fs.control.syncs();
    for i in 1..=25 {
        wal.save(&hard_state(1, i), &[entry(i, "x")]).unwrap();
    }
    assert_eq!(fs.control.syncs() - before, 2);
}

#[test]
fn periodic_policy_syncs_written_saves_in_the_background() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = ControlledFs::default();
    let policy = SyncPolicy::Periodic {
        interval: Duration::from_millis(5),
        max_entries: u64::MAX,
    };
    let wal = shared_wal(&tmp.path().join("wal"), &fs, policy);
    let before = fs.control.syncs();
    wal.save(&hard_state(1, 1), &[entry(1, "x")]).unwrap();
    // Liveness, not speed: the timer must fire at some point.
    let deadline = Instant::now() + Duration::from_secs(60);
    while fs.control.syncs() == before {
        assert!(Instant::now() < deadline, "the periodic sync never ran");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn closing_the_writer_acknowledges_pending_saves_and_the_log_reopens_with_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let wal = shared_wal(&dir, &ControlledFs::default(), SyncPolicy::Grouped);
    let done = wal.submit(&hard_state(1, 1), &[entry(1, "x")]).unwrap();
    wal.close().unwrap();
    done.wait().unwrap();
    let mut reopened = Wal::open(&dir, &WalSnapshot::default()).unwrap();
    assert_eq!(reopened.read_all().unwrap().entries, vec![entry(1, "x")]);
}
