//! The etcd store survives the loss of its writer and of an etcd member: a writer process
//! SIGKILLed mid-append is replaced by another that finds every record the first acknowledged,
//! and a 3-member cluster losing its leader mid-append loses nothing acknowledged. Run with
//! `cargo test -p raftwal --features etcd --test store_etcd_failover`.

#[path = "support/etcd_raw.rs"]
mod etcd_raw;
#[path = "support/etcd_server.rs"]
mod etcd_server;
#[path = "support/skip.rs"]
mod skip;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use etcd_raw::Raw;
use etcd_server::{Config, Etcd};
use raftwal::store::etcd::{EtcdOptions, EtcdStore};
use raftwal::store::Store;

/// Set (to `ENDPOINTS PREFIX`) in the environment of the writer process this test binary
/// starts as a child.
const WRITER_ENV: &str = "RAFTWAL_ETCD_FAILOVER_WRITER";
const LEASE_TTL: Duration = Duration::from_secs(2);

fn options(endpoints: Vec<String>, prefix: &str) -> EtcdOptions {
    EtcdOptions::new(endpoints, prefix)
        .lease_ttl(LEASE_TTL)
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(3))
}

fn content(writer: &str, index: u64) -> Vec<u8> {
    format!("{writer}{index}").into_bytes()
}

fn read_all(store: &mut EtcdStore) -> Vec<(u64, Vec<u8>)> {
    let mut records = Vec::new();
    store
        .read_from(1, &mut |index, bytes| {
            records.push((index, bytes.to_vec()));
            Ok(())
        })
        .expect("read the records");
    records
}

/// The body of writer A when this binary runs as the child process: appends batches of 1 to
/// 4 records `A<index>` and prints `ack <last index>` after each append returns, until killed
/// or an append fails (then it prints `failed fenced=<is_fenced> <error>` and stops).
#[test]
#[ignore = "the writer process of the failover test, started by it with RAFTWAL_ETCD_FAILOVER_WRITER"]
fn failover_writer_process() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        eprintln!("failover_writer_process runs only as the failover test's child");
        return;
    };
    let (endpoints, prefix) = spec.split_once(' ').expect("ENDPOINTS PREFIX");
    let endpoints: Vec<String> = endpoints.split(',').map(str::to_string).collect();
    let mut store = options(endpoints, prefix).open().expect("writer A opens");
    let mut stdout = std::io::stdout();
    for round in 0u64.. {
        let first = store.last_index() + 1;
        let records: Vec<Vec<u8>> = (first..first + round % 4 + 1)
            .map(|index| content("A", index))
            .collect();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        if let Err(err) = store.append(&refs) {
            writeln!(stdout, "failed fenced={} {err}", err.is_fenced()).expect("print");
            return;
        }
        writeln!(stdout, "ack {}", store.last_index()).expect("print the ack");
        stdout.flush().expect("flush the ack");
    }
}

/// Writer A: this test binary run as a child process (see `failover_writer_process`), and
/// what it printed so far.
struct Writer {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Writer {
    fn start(etcd: &Etcd) -> Writer {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "--exact",
                "failover_writer_process",
                "--ignored",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env(WRITER_ENV, format!("{} log/", etcd.endpoints().join(",")))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start writer A");
        let stdout = child.stdout.take().expect("A's stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Writer { child, lines }
    }

    /// Waits until A acknowledged index `target` or beyond; returns the last acked index.
    fn wait_for_ack(&mut self, target: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let timeout = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(timeout)
                .expect("writer A keeps acknowledging");
            if let Some(index) = line.strip_prefix("ack ") {
                let index = index.parse::<u64>().expect("an index");
                if index >= target {
                    return index;
                }
            } else if line.starts_with("failed ") {
                panic!("writer A failed: {line}");
            }
            // Anything else is the test harness talking.
        }
    }

    /// Reads what A prints until its output ends: the last acked index and the failure line.
    fn drain(&mut self) -> (u64, Option<String>) {
        let mut last = 0;
        let mut failure = None;
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(30)) {
            if let Some(index) = line.strip_prefix("ack ") {
                last = index.parse::<u64>().expect("an index");
            } else if line.starts_with("failed ") {
                failure = Some(line);
            }
        }
        (last, failure)
    }
}

#[test]
fn a_killed_writers_acknowledged_records_survive_and_the_next_writer_continues() {
    if !etcd_server::available(
        "a_killed_writers_acknowledged_records_survive_and_the_next_writer_continues",
    ) {
        return;
    }
    let etcd = Etcd::single();
    let mut a = Writer::start(&etcd);
    let mut last_acked = a.wait_for_ack(200);
    a.child.kill().expect("SIGKILL writer A");
    a.child.wait().expect("reap writer A");
    // Acks printed before the kill and still in the pipe count too.
    last_acked = a.drain().0.max(last_acked);

    // A's lease outlives A by up to its TTL: until then the log is A's.
    let err = options(etcd.endpoints(), "log/").open().unwrap_err();
    assert!(err.is_fenced(), "{err}");

    let mut b = options(etcd.endpoints(), "log/")
        .wait_for_owner(LEASE_TTL * 5)
        .open()
        .expect("writer B claims the log after A's lease expires");
    assert!(
        b.last_index() >= last_acked,
        "{} < {last_acked}",
        b.last_index()
    );
    let records = read_all(&mut b);
    assert_eq!(records.len() as u64, b.last_index());
    for (index, bytes) in &records {
        assert_eq!(*bytes, content("A", *index), "record {index}");
    }
    let next = b.last_index() + 1;
    b.append(&[&content("B", next), &content("B", next + 1)])
        .unwrap();
    let records = read_all(&mut b);
    assert_eq!(records.last().unwrap(), &(next + 1, content("B", next + 1)));
}

#[test]
fn a_paused_writer_whose_lease_expired_is_fenced_when_it_resumes() {
    if !etcd_server::available("a_paused_writer_whose_lease_expired_is_fenced_when_it_resumes") {
        return;
    }
    let etcd = Etcd::single();
    let mut a = Writer::start(&etcd);
    a.wait_for_ack(100);
    // A stops (a long GC pause, a frozen VM): its keep-alive stops with it, the lease expires.
    let pid = i32::try_from(a.child.id()).expect("a pid");
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let mut b = options(etcd.endpoints(), "log/")
        .wait_for_owner(LEASE_TTL * 5)
        .open()
        .expect("writer B claims the log after A's lease expires");
    let claimed_at = b.last_index();
    let records: Vec<Vec<u8>> = (claimed_at + 1..=claimed_at + 5)
        .map(|index| content("B", index))
        .collect();
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    b.append(&refs).unwrap();

    // A resumes believing it owns the log, and its next append is refused.
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let (_, failure) = a.drain();
    a.child.wait().expect("reap writer A");
    let failure = failure.expect("writer A reports its failed append");
    assert!(failure.starts_with("failed fenced=true"), "{failure}");

    // Nothing A tried after the claim is visible: B's records are B's.
    let read = read_all(&mut b);
    assert_eq!(read.len() as u64, claimed_at + 5);
    for (index, bytes) in &read {
        let writer = if *index > claimed_at { "B" } else { "A" };
        assert_eq!(*bytes, content(writer, *index), "record {index}");
    }
}

/// The member id of the cluster's leader, asked of any member that answers, and its name.
fn leader_name(etcd: &Etcd) -> Option<String> {
    for endpoint in etcd.endpoints() {
        let raw = Raw::connect(&[endpoint]);
        let mut client = raw.client.clone();
        let Ok(status) = raw.runtime.block_on(client.status()) else {
            continue;
        };
        let leader = status.leader();
        let Ok(members) = raw.runtime.block_on(client.member_list()) else {
            continue;
        };
        if let Some(member) = members.members().iter().find(|m| m.id() == leader) {
            return Some(member.name().to_string());
        }
    }
    None
}

#[test]
fn a_cluster_losing_its_leader_mid_append_loses_nothing_acknowledged() {
    if !etcd_server::available("a_cluster_losing_its_leader_mid_append_loses_nothing_acknowledged")
    {
        return;
    }
    let mut etcd = Etcd::start(Config {
        members: 3,
        ..Config::default()
    });
    let endpoints = etcd.endpoints();
    let (acks, acked) = mpsc::channel::<u64>();
    let writer_endpoints = endpoints.clone();
    // The writer appends batches until told to stop; on an error it does what a journal
    // does: closes the store and reopens it, which recovers what etcd holds.
    let (stop_tx, stop) = mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let open = || {
            options(writer_endpoints.clone(), "log/")
                .wait_for_owner(Duration::from_secs(30))
                .open()
        };
        let mut store = open().expect("the writer opens");
        let mut errors = Vec::new();
        while stop.try_recv().is_err() {
            let first = store.last_index() + 1;
            let records: Vec<Vec<u8>> = (first..first + 8).map(|i| content("W", i)).collect();
            let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            match store.append(&refs) {
                Ok(()) => {
                    let _ = acks.send(store.last_index());
                }
                Err(err) => {
                    assert!(
                        err.is_unavailable() || err.is_poisoned(),
                        "unexpected error: {err}"
                    );
                    errors.push(err.to_string());
                    let _ = Box::new(store).close();
                    store = loop {
                        match open() {
                            Ok(store) => break store,
                            Err(err) if err.is_unavailable() => {
                                errors.push(err.to_string());
                                std::thread::sleep(Duration::from_millis(200));
                            }
                            Err(err) => panic!("reopening failed: {err}"),
                        }
                    };
                }
            }
        }
        Box::new(store).close().ok();
        errors
    });

    let wait_for = |target: u64| {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = 0;
        while last < target {
            let timeout = deadline.saturating_duration_since(Instant::now());
            last = acked
                .recv_timeout(timeout)
                .expect("the writer keeps acknowledging");
        }
        last
    };
    let before_kill = wait_for(200);
    let leader = leader_name(&etcd).expect("the cluster has a leader");
    let member = etcd
        .members
        .iter_mut()
        .find(|member| member.name == leader)
        .expect("the leader is a member");
    member.kill();
    let last_acked = wait_for(before_kill + 400);
    stop_tx.send(()).unwrap();
    let errors = writer.join().expect("the writer thread");
    let last_acked = acked.try_iter().fold(last_acked, u64::max);
    eprintln!(
        "killed leader {leader} after {before_kill} records; {last_acked} acknowledged; {} errors on the way: {:?}",
        errors.len(),
        errors.iter().take(3).collect::<Vec<_>>()
    );

    let mut reader = options(etcd.endpoints(), "log/").open_read_only().unwrap();
    let records = read_all(&mut reader);
    assert!(records.len() as u64 >= last_acked);
    for (index, bytes) in &records {
        assert_eq!(*bytes, content("W", *index), "record {index}");
    }
}
