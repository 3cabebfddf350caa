//! `raftwal bench`: raftwal's own workloads beside the raw limit of the same disk, so the ratio
//! says how much of the disk raftwal leaves on the table.
//!
//! 1. Synced saves: a raw loop of 256 B pwrite + fdatasync into a preallocated file, against
//!    `Wal::save` of one 256 B entry and a HardState (raft requires the sync).
//! 2. Sequential write: N MiB raw in 1 MiB pwrites then one fdatasync, against 4 KiB entries
//!    saved unsynced (`SharedWal` with `SyncPolicy::Never`) then one sync.
//! 3. Replay: `Wal::open_for_read` + `read_all` of that log, against reading its files raw.
//! 4. Group commit: several threads saving through one `SharedWal`, against the raw loop of 1.
//!
//! Reads in 3 come from the page cache (the log was just written): they measure raftwal's
//! decoding cost, not the disk.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use indicatif::ProgressBar;
use raftwal::eraftpb::{Entry, HardState};
use raftwal::fs::{FileSystem, RealFs};
use raftwal::{SharedWal, SyncPolicy, Wal, WalOptions, WalSnapshot};
use serde::Serialize;

use crate::failure::Failure;
use crate::progress;
use crate::Outcome;

/// Arguments of `raftwal bench`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Where to write (a fresh subdirectory is made and removed); the current directory by
    /// default. Put it on the disk you mean to measure: a tmpfs measures memory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Small sizes: done in seconds, numbers noisier.
    #[arg(long)]
    quick: bool,
}

/// How much each workload does.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    synced_saves: u64,
    sequential_mib: u64,
    writers: u64,
    saves_per_writer: u64,
}

const QUICK: Sizes = Sizes {
    synced_saves: 100,
    sequential_mib: 8,
    writers: 4,
    saves_per_writer: 50,
};

const FULL: Sizes = Sizes {
    synced_saves: 2000,
    sequential_mib: 256,
    writers: 8,
    saves_per_writer: 500,
};

const SMALL_RECORD: usize = 256;
/// Synced operations run before timing starts, so the first writes' journal work and cold
/// caches do not count.
const WARMUP: u64 = 10;
const LARGE_ENTRY: usize = 4096;
const MIB: u64 = 1 << 20;

/// Everything `bench` measured; also the `--json` object.
#[derive(Debug, Serialize)]
struct Report {
    dir: String,
    quick: bool,
    synced_saves: SyncedSaves,
    sequential_write: Throughput,
    replay: Throughput,
    group_commit: GroupCommit,
}

/// Workload 1.
#[derive(Debug, Serialize)]
struct SyncedSaves {
    saves: u64,
    record_bytes: usize,
    raw_per_sec: f64,
    raftwal_per_sec: f64,
    ratio: f64,
    raw_p50_us: f64,
    raw_p99_us: f64,
    raftwal_p50_us: f64,
    raftwal_p99_us: f64,
}

/// Workloads 2 and 3.
#[derive(Debug, Serialize)]
struct Throughput {
    mib: u64,
    raw_mb_per_sec: f64,
    raftwal_mb_per_sec: f64,
    ratio: f64,
}

/// Workload 4.
#[derive(Debug, Serialize)]
struct GroupCommit {
    writers: u64,
    saves: u64,
    raftwal_per_sec: f64,
    ratio_to_raw_synced: f64,
}

/// Runs `raftwal bench`.
pub fn run(args: &Args) -> Outcome {
    let sizes = if args.quick { QUICK } else { FULL };
    let parent = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let work = parent.join(format!("raftwal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| failed(&work, e))?;
    let result = measure(&work, sizes, args.quick);
    // Leave nothing behind, whatever happened.
    let _ = std::fs::remove_dir_all(&work);
    let report = result?;
    let mut out = io::stdout();
    if args.json {
        serde_json::to_writer(&mut out, &report).map_err(|e| Failure::from(io::Error::other(e)))?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &report)?;
    }
    Ok(())
}

fn measure(work: &Path, sizes: Sizes, quick: bool) -> Result<Report, Failure> {
    let steps =
        2 * sizes.synced_saves + 4 * sizes.sequential_mib + sizes.writers * sizes.saves_per_writer;
    let bar = progress::steps(steps, "bench");
    let synced_saves = synced_saves(work, sizes.synced_saves, &bar)?;
    let (sequential_write, log) = sequential_write(work, sizes.sequential_mib, &bar)?;
    let replay = replay(&log, sizes.sequential_mib, &bar)?;
    let group_commit = group_commit(work, sizes, synced_saves.raw_per_sec, &bar)?;
    bar.finish_and_clear();
    Ok(Report {
        dir: work.parent().unwrap_or(work).display().to_string(),
        quick,
        synced_saves,
        sequential_write,
        replay,
        group_commit,
    })
}

fn synced_saves(work: &Path, n: u64, bar: &ProgressBar) -> Result<SyncedSaves, Failure> {
    let path = work.join("raw-synced");
    let file = RealFs.create_file(&path).map_err(|e| failed(&path, e))?;
    file.allocate((n + WARMUP) * SMALL_RECORD as u64)
        .map_err(|e| failed(&path, e))?;
    let record = [0x5au8; SMALL_RECORD];
    let mut raw = Vec::with_capacity(n as usize);
    for i in 0..n + WARMUP {
        let start = Instant::now();
        file.write_all_at(&record, i * SMALL_RECORD as u64)
            .and_then(|()| file.sync_data())
            .map_err(|e| failed(&path, e))?;
        if i >= WARMUP {
            raw.push(start.elapsed());
            bar.inc(1);
        }
    }

    let mut wal = Wal::create(work.join("wal-synced"), b"bench")?;
    let mut ours = Vec::with_capacity(n as usize);
    for i in 1..=n + WARMUP {
        let entry = entry(i, SMALL_RECORD);
        let state = hard_state(i);
        let start = Instant::now();
        wal.save(&state, std::slice::from_ref(&entry))?;
        if i > WARMUP {
            ours.push(start.elapsed());
            bar.inc(1);
        }
    }
    wal.close()?;

    let raw_per_sec = per_sec(n, raw.iter().sum());
    let raftwal_per_sec = per_sec(n, ours.iter().sum());
    Ok(SyncedSaves {
        saves: n,
        record_bytes: SMALL_RECORD,
        raw_per_sec,
        raftwal_per_sec,
        ratio: ratio(raftwal_per_sec, raw_per_sec),
        raw_p50_us: percentile_us(&mut raw, 0.50),
        raw_p99_us: percentile_us(&mut raw, 0.99),
        raftwal_p50_us: percentile_us(&mut ours, 0.50),
        raftwal_p99_us: percentile_us(&mut ours, 0.99),
    })
}

/// Returns the measurement and the directory of the log it wrote.
fn sequential_write(
    work: &Path,
    mib: u64,
    bar: &ProgressBar,
) -> Result<(Throughput, PathBuf), Failure> {
    let path = work.join("raw-sequential");
    let file = RealFs.create_file(&path).map_err(|e| failed(&path, e))?;
    let chunk = vec![0x5au8; MIB as usize];
    let start = Instant::now();
    for i in 0..mib {
        file.write_all_at(&chunk, i * MIB)
            .map_err(|e| failed(&path, e))?;
        bar.inc(1);
    }
    file.sync_data().map_err(|e| failed(&path, e))?;
    let raw = start.elapsed();

    let log = work.join("wal-sequential");
    // One segment holds the whole run, so the ratio measures encoding, not cuts.
    let options = WalOptions::new().segment_size((mib + 1) * MIB);
    let entries = mib * MIB / LARGE_ENTRY as u64;
    let per_mib = MIB / LARGE_ENTRY as u64;
    let wal = SharedWal::new(options.create(&log, b"bench")?, SyncPolicy::Never)?;
    let start = Instant::now();
    for i in 1..=entries {
        wal.save(&hard_state(i), &[entry(i, LARGE_ENTRY)])?;
        if i % per_mib == 0 {
            bar.inc(1);
        }
    }
    wal.sync()?;
    let ours = start.elapsed();
    wal.close()?;

    let raw_mb_per_sec = mb_per_sec(mib, raw);
    let raftwal_mb_per_sec = mb_per_sec(mib, ours);
    Ok((
        Throughput {
            mib,
            raw_mb_per_sec,
            raftwal_mb_per_sec,
            ratio: ratio(raftwal_mb_per_sec, raw_mb_per_sec),
        },
        log,
    ))
}

fn replay(log: &Path, mib: u64, bar: &ProgressBar) -> Result<Throughput, Failure> {
    let start = Instant::now();
    let mut buf = vec![0u8; MIB as usize];
    let mut raw_bytes = 0u64;
    for name in WalOptions::new().segments(log)? {
        let path = log.join(&name.file_name);
        let file = RealFs
            .open_file(&path, false)
            .map_err(|e| failed(&path, e))?;
        let mut pos = 0;
        loop {
            let n = file.read_at(&mut buf, pos).map_err(|e| failed(&path, e))?;
            if n == 0 {
                break;
            }
            pos += n as u64;
            raw_bytes += n as u64;
        }
    }
    let raw = start.elapsed();
    bar.inc(mib);

    let start = Instant::now();
    let mut wal = Wal::open_for_read(log, &WalSnapshot::default())?;
    let recovered = wal.read_all()?;
    let ours = start.elapsed();
    bar.inc(mib);
    if recovered.entries.len() as u64 != mib * MIB / LARGE_ENTRY as u64 {
        return Err(Failure::new(
            1,
            format!(
                "bench: replay read {} entries, expected {}",
                recovered.entries.len(),
                mib * MIB / LARGE_ENTRY as u64
            ),
        ));
    }
    // The raw read covers preallocated space too: compare rates over what each read.
    let raw_mb_per_sec = raw_bytes as f64 / 1e6 / raw.as_secs_f64().max(1e-9);
    let raftwal_mb_per_sec = mb_per_sec(mib, ours);
    Ok(Throughput {
        mib,
        raw_mb_per_sec,
        raftwal_mb_per_sec,
        ratio: ratio(raftwal_mb_per_sec, raw_mb_per_sec),
    })
}

fn group_commit(
    work: &Path,
    sizes: Sizes,
    raw_per_sec: f64,
    bar: &ProgressBar,
) -> Result<GroupCommit, Failure> {
    let wal = Arc::new(SharedWal::new(
        Wal::create(work.join("wal-group"), b"bench")?,
        SyncPolicy::Grouped,
    )?);
    // Indexes are handed out under this lock, which is held only while a save is written (not
    // while it is synced), so the log stays in index order and syncs still group.
    let next = Arc::new(Mutex::new(1u64));
    let start = Instant::now();
    let results: Vec<raftwal::Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..sizes.writers)
            .map(|_| {
                let wal = wal.clone();
                let next = next.clone();
                scope.spawn(move || -> raftwal::Result<()> {
                    for _ in 0..sizes.saves_per_writer {
                        let done = {
                            let mut next = next.lock().unwrap_or_else(|p| p.into_inner());
                            let index = *next;
                            *next += 1;
                            wal.submit(&hard_state(index), &[entry(index, SMALL_RECORD)])?
                        };
                        done.wait()?;
                        bar.inc(1);
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or(Err(raftwal::Error::InvalidState {
                    reason: "a bench writer thread panicked",
                }))
            })
            .collect()
    });
    let took = start.elapsed();
    for result in results {
        result?;
    }
    if let Ok(wal) = Arc::try_unwrap(wal) {
        wal.close()?;
    }
    let saves = sizes.writers * sizes.saves_per_writer;
    let raftwal_per_sec = per_sec(saves, took);
    Ok(GroupCommit {
        writers: sizes.writers,
        saves,
        raftwal_per_sec,
        ratio_to_raw_synced: ratio(raftwal_per_sec, raw_per_sec),
    })
}

fn print_table(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let s = &r.synced_saves;
    writeln!(
        out,
        "raftwal bench in {}{}",
        r.dir,
        if r.quick { " (--quick)" } else { "" }
    )?;
    writeln!(
        out,
        "{:<52} {:>14} {:>14} {:>7}",
        "workload", "raw disk", "raftwal", "ratio"
    )?;
    writeln!(
        out,
        "{:<52} {:>14.0} {:>14.0} {:>7.2}",
        format!(
            "synced saves, {} B (per second, n={})",
            s.record_bytes, s.saves
        ),
        s.raw_per_sec,
        s.raftwal_per_sec,
        s.ratio
    )?;
    writeln!(
        out,
        "{:<52} {:>14} {:>14}",
        "  latency p50 / p99 (us)",
        format!("{:.0} / {:.0}", s.raw_p50_us, s.raw_p99_us),
        format!("{:.0} / {:.0}", s.raftwal_p50_us, s.raftwal_p99_us),
    )?;
    for (name, t) in [
        (
            "sequential write, 4 KiB entries, 1 sync (MB/s)",
            &r.sequential_write,
        ),
        ("replay (MB/s, page cache)", &r.replay),
    ] {
        writeln!(
            out,
            "{:<52} {:>14.1} {:>14.1} {:>7.2}",
            format!("{name} {} MiB", t.mib),
            t.raw_mb_per_sec,
            t.raftwal_mb_per_sec,
            t.ratio
        )?;
    }
    let g = &r.group_commit;
    writeln!(
        out,
        "{:<52} {:>14.0} {:>14.0} {:>7.2}",
        format!("group commit, {} writers (saves per second)", g.writers),
        s.raw_per_sec,
        g.raftwal_per_sec,
        g.ratio_to_raw_synced
    )?;
    writeln!(
        out,
        "ratio = raftwal / raw disk; the group commit row compares with one raw writer's pwrite+fdatasync loop"
    )
}

fn entry(index: u64, size: usize) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![0x5a; size].into(),
        ..Default::default()
    }
}

fn hard_state(commit: u64) -> HardState {
    HardState {
        term: 1,
        commit: commit.saturating_sub(1),
        ..Default::default()
    }
}

fn per_sec(n: u64, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64().max(1e-9)
}

fn mb_per_sec(mib: u64, took: Duration) -> f64 {
    (mib * MIB) as f64 / 1e6 / took.as_secs_f64().max(1e-9)
}

fn ratio(ours: f64, raw: f64) -> f64 {
    if raw > 0.0 {
        ours / raw
    } else {
        0.0
    }
}

fn percentile_us(samples: &mut [Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i].as_secs_f64() * 1e6
}

fn failed(path: &Path, e: io::Error) -> Failure {
    Failure::from(raftwal::Error::Io {
        context: format!("bench: {}", path.display()),
        source: e,
    })
}
