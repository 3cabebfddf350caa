//! Appends per second of the etcd store, beside etcd's own put rate in the same run.
//!
//! ```text
//! cargo run --release --features etcd --example etcd_throughput -- [ENDPOINTS] [SECONDS]
//! ```
//!
//! Without `ENDPOINTS` (comma-separated) it starts a throwaway single-member etcd
//! (`/usr/bin/etcd`, Debian's `etcd-server`) on loopback with its data in a temporary directory,
//! and also measures that directory's fdatasync latency, which bounds every durable write
//! etcd makes. Each row runs for `SECONDS` (default 3):
//!
//! - etcd put, sequential: one 100-byte put at a time (etcd-client), etcd's floor for one
//!   writer waiting on each write;
//! - etcd put, 16 concurrent: 16 puts in flight, which etcd batches into shared fsyncs;
//! - store append, batch 1: one record per append (a transaction compared on the owner key);
//! - store append, batch 16: 16 records per append, as the journal's group commit hands them
//!   over when 16 appenders wait together (one transaction);
//! - journal, 1 and 16 appenders: a [`Journal`] on the store, each appender thread waiting for
//!   each of its records to be durable, so the batches are whatever group commit gathers.

#[path = "../benches/support/disk.rs"]
mod disk;
#[path = "../tests/support/etcd_server.rs"]
mod etcd_server;
#[path = "../tests/support/skip.rs"]
mod skip;

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use raftwal::journal::{Bytes, Journal};
use raftwal::store::etcd::EtcdOptions;
use raftwal::store::Store;

const VALUE: usize = 100;

fn main() {
    let mut args = std::env::args().skip(1);
    let given = args.next().filter(|arg| !arg.is_empty() && arg != "-");
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let run_for = Duration::from_secs(seconds);

    let local = match given {
        Some(_) => None,
        None => {
            if !etcd_server::available("etcd_throughput") {
                return;
            }
            Some(etcd_server::Etcd::single())
        }
    };
    let endpoints: Vec<String> = match (&given, &local) {
        (Some(list), _) => list.split(',').map(str::to_string).collect(),
        (None, Some(etcd)) => etcd.endpoints(),
        (None, None) => unreachable!("either given or started"),
    };
    println!("etcd endpoints: {}", endpoints.join(","));
    if let Some(etcd) = &local {
        let latency =
            disk::fdatasync_p50(etcd.data_dir().parent().expect("the fixture's dir"), 200)
                .expect("probe fdatasync");
        println!(
            "fdatasync latency of etcd's data dir: {:.3} ms (median of 200 4-KiB writes)",
            latency.as_secs_f64() * 1e3
        );
    }
    println!("load before: {}", disk::loadavg());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = runtime
        .block_on(etcd_client::Client::connect(&endpoints, None))
        .expect("connect etcd-client");
    let value = vec![b'v'; VALUE];

    let sequential = runtime.block_on(async {
        let mut client = client.clone();
        let started = Instant::now();
        let mut puts = 0u64;
        while started.elapsed() < run_for {
            client
                .put(format!("bench/seq/{puts}"), value.clone(), None)
                .await
                .expect("put");
            puts += 1;
        }
        puts as f64 / started.elapsed().as_secs_f64()
    });
    let concurrent = runtime.block_on(async {
        let started = Instant::now();
        let tasks: Vec<_> = (0..16)
            .map(|task| {
                let mut client = client.clone();
                let value = value.clone();
                tokio::spawn(async move {
                    let mut puts = 0u64;
                    while started.elapsed() < run_for {
                        client
                            .put(format!("bench/conc/{task}/{puts}"), value.clone(), None)
                            .await
                            .expect("put");
                        puts += 1;
                    }
                    puts
                })
            })
            .collect();
        let mut puts = 0;
        for task in tasks {
            puts += task.await.expect("put task");
        }
        puts as f64 / started.elapsed().as_secs_f64()
    });
    drop(runtime);

    let store_rate = |batch: usize| {
        let prefix = format!("bench/store-{batch}/");
        let mut store = EtcdOptions::new(endpoints.clone(), prefix)
            .open()
            .expect("open the store");
        let records: Vec<Vec<u8>> = (0..batch).map(|_| value.clone()).collect();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let started = Instant::now();
        let mut appends = 0u64;
        while started.elapsed() < run_for {
            store.append(&refs).expect("append");
            appends += 1;
        }
        let rate = appends as f64 / started.elapsed().as_secs_f64();
        Box::new(store).close().expect("close the store");
        rate
    };
    let batch1 = store_rate(1);
    let batch16 = store_rate(16);

    let journal_rate = |appenders: usize| {
        let store = EtcdOptions::new(endpoints.clone(), format!("bench/journal-{appenders}/"))
            .open()
            .expect("open the store");
        let journal = Arc::new(Journal::open(store, Bytes, |_| {}).expect("open the journal"));
        let started = Instant::now();
        let threads: Vec<_> = (0..appenders)
            .map(|_| {
                let journal = journal.clone();
                let value = value.clone();
                std::thread::spawn(move || {
                    let mut appended = 0u64;
                    while started.elapsed() < run_for {
                        journal
                            .append(&value)
                            .and_then(|done| done.wait())
                            .expect("append");
                        appended += 1;
                    }
                    appended
                })
            })
            .collect();
        let records: u64 = threads
            .into_iter()
            .map(|thread| thread.join().expect("appender"))
            .sum();
        let rate = records as f64 / started.elapsed().as_secs_f64();
        Arc::into_inner(journal)
            .expect("appenders are done")
            .close()
            .expect("close the journal");
        rate
    };
    let journal1 = journal_rate(1);
    let journal16 = journal_rate(16);

    let mut out = std::io::stdout();
    let _ = writeln!(out, "{VALUE}-byte values, {seconds} s per row:");
    let _ = writeln!(
        out,
        "  etcd put, sequential         {sequential:>9.0} puts/s"
    );
    let _ = writeln!(
        out,
        "  etcd put, 16 concurrent      {concurrent:>9.0} puts/s"
    );
    let _ = writeln!(
        out,
        "  store append, batch 1        {batch1:>9.0} appends/s = {batch1:>9.0} records/s ({:.2} x sequential put)",
        batch1 / sequential
    );
    let _ = writeln!(
        out,
        "  store append, batch 16       {batch16:>9.0} appends/s = {:>9.0} records/s ({:.2} x 16-way put)",
        batch16 * 16.0,
        batch16 * 16.0 / concurrent
    );
    let _ = writeln!(
        out,
        "  journal, 1 appender          {journal1:>9.0} records/s ({:.2} x sequential put)",
        journal1 / sequential
    );
    let _ = writeln!(
        out,
        "  journal, 16 appenders        {journal16:>9.0} records/s ({:.2} x 16-way put)",
        journal16 / concurrent
    );
    let _ = writeln!(out, "load after: {}", disk::loadavg());
}
