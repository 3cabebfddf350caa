//! Power loss after every I/O call of a workload, in several crash states each: the log must
//! open (repair allowed only for a torn tail), hold every acknowledged save intact, hold nothing
//! but a prefix of what was issued, and accept appends.

mod crash_common;

use std::path::Path;

use crash_common::*;
use raftwal::fs::sim::{Crash, Fill, SectorLoss, SimFs};
use raftwal::fs::FileSystem as _;
use raftwal::{Error, WalSnapshot};

/// Calls in the workload (saves of mixed sizes, overwrites, snapshot markers with releases).
const OPS: usize = 220;

/// The states a power loss after one call may leave, each reproducible from `point`.
fn crash_states(point: u64) -> Vec<Crash> {
    let random = |i: u64, sectors, fill| Crash::Random {
        seed: point * 16 + i,
        sectors,
        fill,
    };
    vec![
        Crash::DropUnsynced,
        Crash::KeepUnsynced,
        random(1, SectorLoss::Prefix, Fill::Zeros),
        random(2, SectorLoss::Prefix, Fill::Zeros),
        random(3, SectorLoss::Any, Fill::Zeros),
        random(4, SectorLoss::Any, Fill::Zeros),
        // The twin of the first random state: the same choices, garbage past the old end.
        random(1, SectorLoss::Prefix, Fill::Garbage),
    ]
}

/// Counts of what the sweep saw.
#[derive(Debug, Default)]
struct Tally {
    states: u64,
    opened: u64,
    repaired: u64,
    no_log: u64,
    refused: std::collections::BTreeMap<&'static str, u64>,
}

/// Whether `err` is a refusal the crash model allows, in the last segment of `disk`, and which:
/// - with garbage past the old end of the file (a file system without ordered data), a torn
///   write that extended the last segment is indistinguishable from corruption;
/// - with sectors of one write reaching the disk out of order, a lost sector holding nothing of
///   the write but a length word (the word at byte 504 of the sector), in front of a record
///   that did reach the disk, is indistinguishable from a bit flip zeroing that word.
///
/// Both are reported as corruption rather than cut off, because cutting would silently lose
/// acknowledged data in the case they cannot be told from (docs/DURABILITY.md).
fn allowed_refusal(disk: &SimFs, crash: Crash, err: &Error) -> Option<&'static str> {
    let (file, offset, reason) = match err {
        Error::CrcMismatch { file, offset } => (file, *offset, ""),
        Error::Corrupt {
            file,
            offset,
            reason,
        } => (file, *offset, reason.as_str()),
        _ => return None,
    };
    let mut names = disk.list_dir(Path::new(DIR)).ok()?;
    names.retain(|n| n.ends_with(".wal"));
    names.sort();
    if file.file_name()?.to_str()? != names.last()?.as_str() {
        return None;
    }
    match crash {
        Crash::Random {
            fill: Fill::Garbage,
            ..
        } if offset + 6200 >= SEGMENT_SIZE => Some("garbage past the old end of file"),
        Crash::Random {
            sectors: SectorLoss::Any,
            ..
        } if offset % 512 == 504 && reason.contains("in front of an intact record") => {
            Some("a lost sector holding only a length word")
        }
        _ => None,
    }
}

fn check_state(
    plan: &Plan,
    out: &crash_common::Outcome,
    disk: &SimFs,
    crash: Crash,
    what: &str,
    t: &mut Tally,
) {
    t.states += 1;
    // A reader beside the (dead) writer: a torn tail just ends the log.
    if log_exists(disk) {
        let mut reader = options(disk)
            .open_for_read(DIR, &WalSnapshot::default())
            .unwrap_or_else(|e| panic!("{what}: open for read: {e}"));
        match reader.read_all() {
            Ok(rec) => check_recovered(plan, out, &rec, &format!("{what} (read only)")),
            Err(e) if allowed_refusal(disk, crash, &e).is_some() => {}
            Err(e) => panic!("{what}: read-only read_all: {e}"),
        }
    }
    let recovery = match recover(disk) {
        Ok(recovery) => recovery,
        Err(e) => match allowed_refusal(disk, crash, &e) {
            Some(why) => {
                *t.refused.entry(why).or_insert(0) += 1;
                return;
            }
            None => panic!("{what}: recovery failed: {e}"),
        },
    };
    match recovery {
        Recovery::NoLog => {
            assert!(
                !out.created,
                "{what}: create returned Ok but no log is on disk"
            );
            t.no_log += 1;
            // What a crashed create left behind must not stand in the way of a new one.
            let wal = options(disk)
                .create(DIR, b"crash-test")
                .unwrap_or_else(|e| panic!("{what}: create after a crashed create: {e}"));
            wal.close().unwrap();
        }
        Recovery::Opened {
            wal,
            recovered,
            repaired,
        } => {
            t.opened += 1;
            t.repaired += u64::from(repaired);
            check_recovered(plan, out, &recovered, what);
            check_appending_continues(disk, wal, &recovered, what);
        }
    }
}

#[test]
fn every_acknowledged_save_survives_a_power_loss_after_any_io_call() {
    let plan = Plan::new(0x5eed, OPS);
    let full = SimFs::new();
    let out = run(&plan, &full);
    assert!(out.error.is_none(), "{:?}", out.error);
    let segments = full
        .list_dir(Path::new(DIR))
        .unwrap()
        .iter()
        .filter(|n| n.ends_with(".wal"))
        .count();
    assert!(segments >= 4, "the workload made only {segments} segments");
    let points = full.calls().mutations;

    let mut tally = Tally::default();
    for point in 1..=points {
        let fs = SimFs::new();
        fs.power_off_after(point);
        let out = run(&plan, &fs);
        for crash in crash_states(point) {
            let what = format!("power loss after I/O call {point} of {points}, {crash:?}");
            check_state(&plan, &out, &fs.crash(crash), crash, &what, &mut tally);
        }
    }
    println!(
        "power loss: {} steps, {} entries, {segments} segments; {points} crash points x {} states \
         = {} states: {} opened ({} after repairing a torn tail), {} before the log existed, \
         refused as corrupt in an unacknowledged tail: {:?}; 0 acknowledged saves lost",
        plan.steps.len(),
        plan.entries().len(),
        crash_states(0).len(),
        tally.states,
        tally.opened,
        tally.repaired,
        tally.no_log,
        tally.refused,
    );
}

/// A process crash (the page cache survives) in the middle of the workload loses nothing that
/// was written, acknowledged or not, and needs no repair.
#[test]
fn a_process_crash_loses_nothing_written() {
    let plan = Plan::new(7, 80);
    let full = SimFs::new();
    run(&plan, &full);
    let points = full.calls().mutations;
    for point in (1..=points).step_by(7) {
        let fs = SimFs::new();
        fs.power_off_after(point);
        let out = run(&plan, &fs);
        let disk = fs.crash(Crash::KeepUnsynced);
        match recover(&disk).unwrap() {
            Recovery::NoLog => assert!(!out.created),
            Recovery::Opened {
                recovered,
                repaired,
                ..
            } => {
                assert!(!repaired, "after I/O call {point}");
                check_recovered(&plan, &out, &recovered, &format!("after I/O call {point}"));
            }
        }
    }
}

/// The simulated disk really loses what was not synced: without a sync, a power loss leaves
/// no log at all.
#[test]
fn the_simulated_disk_drops_unsynced_writes() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let file = fs.create_file(Path::new("/d/f")).unwrap();
    file.write_all_at(b"hello", 0).unwrap();
    assert!(fs
        .crash(Crash::DropUnsynced)
        .list_dir(Path::new("/d"))
        .unwrap()
        .is_empty());
    fs.sync_dir(Path::new("/d")).unwrap();
    let disk = fs.crash(Crash::DropUnsynced);
    assert_eq!(disk.read_file(Path::new("/d/f")).unwrap(), b"");
    file.sync_data().unwrap();
    let disk = fs.crash(Crash::DropUnsynced);
    assert_eq!(disk.read_file(Path::new("/d/f")).unwrap(), b"hello");
    let err = options(&disk).open("/d", &WalSnapshot::default());
    assert!(matches!(err, Err(Error::SegmentNotFound { .. })));
}
