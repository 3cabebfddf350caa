//! A journal that survives the loss of its machine: its records live in an etcd cluster, so
//! another machine takes the log over, recovers every acknowledged record and goes on.
//!
//! ```text
//! cargo run --features etcd --example journal_etcd -- [ENDPOINTS]
//! ```
//!
//! Without `ENDPOINTS` (comma-separated) it starts a throwaway single-member etcd on loopback
//! (`/usr/bin/etcd`, Debian's `etcd-server`). Writer A, a process of its own, appends,
//! checkpoints, appends more, and then exits without closing (its machine is gone: no goodbye,
//! its lease no longer kept alive). Writer B, which shares no local state with A, waits for A's
//! lease to expire, claims the log, replays A's checkpoint and the data after it, and appends.

#[path = "../tests/support/etcd_server.rs"]
mod etcd_server;
#[path = "../tests/support/skip.rs"]
mod skip;

use std::time::Duration;

use raftwal::journal::{Bytes, Journal, Replayed};
use raftwal::store::etcd::EtcdOptions;

/// Writer A runs as a child process (`--writer-a ENDPOINTS`), so that its end is a real end.
const WRITER_A: &str = "--writer-a";

fn options(endpoints: Vec<String>) -> EtcdOptions {
    // A short lease so the takeover below is quick; production keeps the default (10 s).
    EtcdOptions::new(endpoints, "example/ledger/")
        .lease_ttl(Duration::from_secs(2))
        .wait_for_owner(Duration::from_secs(10))
}

fn writer_a(endpoints: Vec<String>) -> raftwal::Result<()> {
    let a = Journal::open(options(endpoints).open()?, Bytes, |_| {})?;
    a.append(b"deposit alice 100")?.wait()?;
    a.append(b"deposit bob 50")?.wait()?;
    let checkpoint = a.start_checkpoint()?;
    checkpoint.append(b"balances: alice 100, bob 50")?;
    checkpoint.finalize()?.wait()?; // the two deposits are deleted from etcd
    a.append(b"transfer alice->bob 30")?.wait()?; // acknowledged: it must survive
    println!("writer A: acknowledged up to record {}", a.last_index());
    // The machine is lost: the process ends without closing the journal or its lease.
    std::process::exit(0)
}

fn main() -> raftwal::Result<()> {
    let mut args = std::env::args().skip(1);
    let given = args.next();
    if given.as_deref() == Some(WRITER_A) {
        let endpoints = args.next().unwrap_or_default();
        return writer_a(endpoints.split(',').map(str::to_string).collect());
    }
    let local = match given {
        Some(_) => None,
        None if etcd_server::available("journal_etcd") => Some(etcd_server::Etcd::single()),
        None => return Ok(()),
    };
    let endpoints: Vec<String> = match (&given, &local) {
        (Some(list), _) => list.split(',').map(str::to_string).collect(),
        (None, Some(etcd)) => etcd.endpoints(),
        (None, None) => unreachable!("either given or started"),
    };
    let status = std::process::Command::new(std::env::current_exe().expect("this example"))
        .args([WRITER_A, &endpoints.join(",")])
        .status()
        .expect("run writer A");
    assert!(status.success(), "writer A failed: {status}");

    // Writer B, anywhere else: it claims the log once A's lease has expired.
    let mut replayed = Vec::new();
    let b = Journal::open(options(endpoints).open()?, Bytes, |record| {
        replayed.push(record)
    })?;
    for record in &replayed {
        match record {
            Replayed::Checkpoint(bytes) => {
                println!("writer B: checkpoint  {}", String::from_utf8_lossy(bytes))
            }
            Replayed::Data { index, record } => {
                println!(
                    "writer B: record {index:>3}  {}",
                    String::from_utf8_lossy(record)
                )
            }
        }
    }
    let expected = [
        Replayed::Checkpoint(b"balances: alice 100, bob 50".to_vec()),
        Replayed::Data {
            index: 6,
            record: b"transfer alice->bob 30".to_vec(),
        },
    ];
    assert_eq!(
        replayed, expected,
        "writer B must see everything A acknowledged"
    );
    b.append(b"deposit carol 10")?.wait()?;
    println!("writer B: took over and appended record {}", b.last_index());
    b.close()
}
