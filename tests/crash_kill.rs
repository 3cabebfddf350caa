//! Real processes killed with SIGKILL at random moments while they save synced entries: every
//! index a child acknowledged (printed after `save` returned) is in the log with its data.
//!
//! The child is this test binary re-run with `RAFTWAL_KILL_CHILD` set. `RAFTWAL_KILL_ROUNDS`
//! sets the rounds per variant (200 by default).

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use raftwal::eraftpb::{Entry, HardState};
use raftwal::fs::sim::XorShift;
use raftwal::{Error, Wal, WalOptions, WalSnapshot};

const CHILD_ENV: &str = "RAFTWAL_KILL_CHILD";

/// The data of entry `index`: its own, so any mix-up shows.
fn data_for(index: u64) -> Vec<u8> {
    let mut rng = XorShift::new(index);
    let mut data = vec![0u8; 1 + (index * 7919 % 3000) as usize];
    rng.fill(&mut data);
    data
}

fn options(cuts: bool) -> WalOptions {
    // Small segments in the cutting variant reach a cut every few rounds.
    WalOptions::new().segment_size(if cuts { 16 * 1024 } else { 1 << 20 })
}

/// Opens the log for writing, repairing a torn tail, and returns it with its last index.
fn open_or_create(dir: &Path, cuts: bool) -> raftwal::Result<(Wal, u64)> {
    if !WalOptions::new().exists(dir) {
        return Ok((options(cuts).create(dir, b"kill")?, 0));
    }
    let mut wal = options(cuts).open(dir, &WalSnapshot::default())?;
    let recovered = match wal.read_all() {
        Err(Error::TornTail { .. }) => {
            drop(wal);
            WalOptions::new().repair(dir)?;
            wal = options(cuts).open(dir, &WalSnapshot::default())?;
            wal.read_all()?
        }
        other => other?,
    };
    Ok((wal, recovered.entries.last().map_or(0, |e| e.index)))
}

/// The child: appends synced entries forever, printing `ack <index>` after each save returns;
/// in the cutting variant also writes a snapshot marker and releases every 25 entries.
#[test]
fn kill_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // Not a child: nothing to do.
    };
    let (dir, cuts) = spec.split_once('|').expect("dir|variant");
    let cuts = cuts == "cuts";
    let (mut wal, last) = open_or_create(Path::new(dir), cuts).expect("open");
    let mut out = std::io::stdout().lock();
    for index in last + 1.. {
        let entry = Entry {
            index,
            term: 1,
            data: data_for(index).into(),
            ..Default::default()
        };
        let hs = HardState {
            term: 1,
            vote: 1,
            commit: index - 1,
            ..Default::default()
        };
        wal.save(&hs, &[entry]).expect("save");
        writeln!(out, "ack {index}")
            .and_then(|()| out.flush())
            .expect("stdout");
        if cuts && index % 25 == 0 {
            wal.save_snapshot_marker(&WalSnapshot::new(index - 1, 1))
                .expect("snapshot");
            wal.release_lock_to(index - 1).expect("release");
        }
    }
}

/// Runs `rounds` kill rounds on one log; returns (rounds, acknowledged entries, entries found).
fn kill_rounds(cuts: bool, rounds: u64, seed: u64) -> (u64, u64, u64) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let exe = std::env::current_exe().unwrap();
    let mut rng = XorShift::new(seed);
    let mut acked = 0u64;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
            .env(
                CHILD_ENV,
                format!("{}|{}", dir.display(), if cuts { "cuts" } else { "plain" }),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            // Only whole lines count: a line cut short by the kill was never acknowledged.
            while stdout.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if line.ends_with(b"\n") {
                    let text = String::from_utf8_lossy(&line);
                    if let Some(index) = text.trim().strip_prefix("ack ") {
                        let _ = tx.send(index.parse::<u64>().unwrap());
                    }
                }
                line.clear();
            }
        });
        // Kill at a random moment: during start-up and recovery, or among the saves.
        std::thread::sleep(Duration::from_micros(1000 + rng.below(40_000)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        reader.join().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child exited by itself"
        );
        acked = rx.try_iter().fold(acked, u64::max);

        let what = format!("round {round} (cuts: {cuts})");
        if !WalOptions::new().exists(&dir) {
            assert_eq!(acked, 0, "{what}: the log is gone");
            continue;
        }
        let mut reader = Wal::open_for_read(&dir, &WalSnapshot::default())
            .unwrap_or_else(|e| panic!("{what}: open for read: {e}"));
        let entries = reader
            .read_all()
            .unwrap_or_else(|e| panic!("{what}: read: {e}"))
            .entries;
        assert!(
            entries.len() as u64 >= acked,
            "{what}: acknowledged {acked} entries, found {}",
            entries.len()
        );
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.index, i as u64 + 1, "{what}");
            assert!(
                e.data[..] == data_for(e.index)[..],
                "{what}: entry {} differs",
                e.index
            );
        }
    }
    // Finally the log opens for writing (after repairing a torn tail) and takes appends.
    let (mut wal, last) = open_or_create(&dir, cuts).unwrap();
    assert!(last >= acked);
    let next = Entry {
        index: last + 1,
        term: 1,
        data: data_for(last + 1).into(),
        ..Default::default()
    };
    wal.save(&HardState::default(), &[next]).unwrap();
    wal.close().unwrap();
    (rounds, acked, last)
}

fn rounds() -> u64 {
    std::env::var("RAFTWAL_KILL_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200)
}

#[test]
fn sigkill_never_loses_an_acknowledged_save() {
    let (rounds, acked, found) = kill_rounds(false, rounds(), 1);
    println!(
        "kill -9: {rounds} rounds, {acked} entries acknowledged, {found} found, 0 lost, 0 wrong"
    );
}

#[test]
fn sigkill_during_cuts_snapshots_and_releases_never_loses_an_acknowledged_save() {
    let (rounds, acked, found) = kill_rounds(true, rounds(), 2);
    println!(
        "kill -9 with cuts, snapshot markers and releases: {rounds} rounds, {acked} entries \
         acknowledged, {found} found, 0 lost, 0 wrong"
    );
}
