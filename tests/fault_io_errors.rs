//! I/O errors injected into every call of a workload, once (a transient error) and from that
//! call on (a dead disk), as EIO and as ENOSPC: every API call returns a typed error or
//! succeeds, a failed write poisons the log, and the log reopened with the disk healed passes
//! verify and holds every acknowledged save, also after a later power loss.

mod crash_common;

use std::collections::BTreeMap;

use crash_common::*;
use raftwal::fs::sim::{Crash, Fault, FaultError, Op, SimFs};
use raftwal::{Error, Recovered, WalSnapshot};

/// Calls in the workload: enough for several cuts, snapshot markers and releases.
const OPS: usize = 90;

/// Recovers the log on `fs`, checks it, appends one entry and returns what a reader then
/// recovers (`None` when the log was never created).
fn recover_and_check(plan: &Plan, out: &Outcome, fs: &SimFs, what: &str) -> Option<Recovered> {
    match recover(fs).unwrap_or_else(|e| panic!("{what}: recovery failed: {e}")) {
        Recovery::NoLog => {
            assert!(!out.created, "{what}: created log missing");
            None
        }
        Recovery::Opened { wal, recovered, .. } => {
            check_recovered(plan, out, &recovered, what);
            options(fs)
                .verify(DIR, &WalSnapshot::default())
                .unwrap_or_else(|e| panic!("{what}: verify failed: {e}"));
            Some(check_appending_continues(fs, wal, &recovered, what))
        }
    }
}

/// One workload run with `fault` injected, then every check.
fn run_with_fault(plan: &Plan, fault: Fault, failed: &mut BTreeMap<String, u64>) {
    let what = format!("{fault:?}");
    let fs = SimFs::new();
    fs.inject(fault);
    let out = run(plan, &fs);
    let Some(err) = &out.error else {
        // `close` may ignore a failed unlock: closing the descriptor releases the lock.
        assert!(
            fs.failed_ops().iter().all(|&op| op == Op::Unlock),
            "{what}: a failed call went unreported: {:?}",
            fs.failed_ops()
        );
        return;
    };
    for op in fs.failed_ops().iter().take(1) {
        *failed.entry(format!("{op:?}")).or_insert(0) += 1;
    }
    assert!(
        matches!(
            err,
            Error::Io { .. } | Error::DiskFull { .. } | Error::Locked { .. }
        ),
        "{what}: unexpected error {err:?}"
    );
    if fault.error == FaultError::Enospc && !matches!(err, Error::Locked { .. }) {
        assert!(matches!(err, Error::DiskFull { .. }), "{what}: {err:?}");
    }
    if let Some(poisoned) = out.poisoned_after_failure {
        assert!(poisoned, "{what}: the log accepted a write after {err}");
    }
    fs.clear_faults();

    // A power loss right after the failure: only what was synced is there.
    let disk = fs.crash(Crash::DropUnsynced);
    recover_and_check(plan, &out, &disk, &format!("{what}, then power loss"));
    // The same boot, disk healed: reopen, append, then lose power. What the page cache showed
    // after the failed sync must not stand between the acknowledged appends and the log.
    let Some(appended) = recover_and_check(plan, &out, &fs, &format!("{what}, reopened")) else {
        return;
    };
    let what = format!("{what}, reopened, appended, power loss");
    let disk = fs.crash(Crash::DropUnsynced);
    match recover(&disk).unwrap_or_else(|e| panic!("{what}: recovery: {e}")) {
        Recovery::NoLog => panic!("{what}: the log is gone"),
        Recovery::Opened { recovered, .. } => {
            assert!(
                recovered == appended,
                "{what}: the acknowledged append is lost"
            );
        }
    }
}

#[test]
fn every_io_call_may_fail_without_losing_acknowledged_saves() {
    let plan = Plan::new(0xfa17, OPS);
    let clean = SimFs::new();
    let out = run(&plan, &clean);
    assert!(out.error.is_none(), "{:?}", out.error);
    let calls = clean.calls().total;

    let mut failed = BTreeMap::new();
    let mut runs = 0;
    for persistent in [false, true] {
        for nth in 1..=calls {
            let error = if nth % 3 == 0 {
                FaultError::Enospc
            } else {
                FaultError::Eio
            };
            let fault = Fault {
                op: None,
                nth,
                error,
                persistent,
            };
            run_with_fault(&plan, fault, &mut failed);
            runs += 1;
        }
    }
    println!(
        "I/O errors: {} steps, {calls} I/O calls; {runs} runs (each call failed once, and \
         from it on), faults by kind of call: {failed:?}; 0 panics, 0 acknowledged saves lost",
        plan.steps.len()
    );
}

/// Each kind of call fails in turn at each of its occurrences (ENOSPC for the calls that
/// allocate space): the kinds a workload makes rarely are not drowned by the common ones.
#[test]
fn every_kind_of_call_may_fail_at_each_occurrence() {
    let plan = Plan::new(0xfa18, 60);
    let clean = SimFs::new();
    run(&plan, &clean);
    let kinds = [
        Op::Write,
        Op::SyncData,
        Op::SyncAll,
        Op::SyncDir,
        Op::Rename,
        Op::Allocate,
        Op::SetLen,
        Op::Create,
        Op::Lock,
        Op::Unlock,
        Op::Remove,
        Op::CreateDir,
    ];
    let mut failed = BTreeMap::new();
    let mut runs = 0;
    for op in kinds {
        let error = match op {
            Op::Write | Op::Allocate | Op::Create | Op::CreateDir => FaultError::Enospc,
            _ => FaultError::Eio,
        };
        for nth in 1..=clean.calls_of(op) {
            for persistent in [false, true] {
                let fault = Fault {
                    op: Some(op),
                    nth,
                    error,
                    persistent,
                };
                run_with_fault(&plan, fault, &mut failed);
                runs += 1;
            }
        }
    }
    println!("I/O errors by kind: {runs} runs, faults: {failed:?}");
}
