//! raftwal against raft-engine, okaywal and the disk's raw limits, side by side, on one
//! directory's disk, in one invocation. Prints one table.
//!
//! Run from the repository root:
//!
//! ```text
//! cargo run --release --manifest-path benches/compare/Cargo.toml -- [--quick | --scale F] [--dir PATH] [--only w1,w2,...]
//! ```

mod disk;
mod machine;
mod sample;
mod systems;
#[path = "../../support/turnaround.rs"]
mod turnaround;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sample::{format_latency, format_rate, with_cpu, Sample};
use systems::{Bulk, Res, System};

/// Sizes of the full run; `--scale` multiplies them, `--quick` is `--scale 0.0625`.
struct Sizes {
    w1_saves: u64,
    /// W2 runs once per writer count.
    w2_writers: Vec<usize>,
    /// Saves each W2 writer makes per round.
    w2_saves_per_writer: u64,
    /// Fewest saves of a W2 round (all writers together), so that few writers still make a
    /// long enough run.
    w2_min_round: u64,
    w3_bytes: u64,
    w5_entries: u64,
}

impl Sizes {
    /// Saves each of `writers` W2 writers makes per round.
    fn w2_per_thread(&self, writers: usize) -> u64 {
        self.w2_saves_per_writer
            .max(self.w2_min_round.div_ceil(writers as u64))
    }

    fn scaled(scale: f64) -> Sizes {
        let s = |v: f64| (v * scale).max(1.0) as u64;
        Sizes {
            w1_saves: s(2000.0),
            w2_writers: vec![1, 4, 8, 32],
            w2_saves_per_writer: s(100.0),
            w2_min_round: s(400.0),
            w3_bytes: s((1u64 << 30) as f64),
            w5_entries: s(4_000_000.0),
        }
    }
}

struct Args {
    scale: f64,
    dir: PathBuf,
    only: Option<Vec<String>>,
    systems: Option<Vec<String>>,
    writers: Option<Vec<usize>>,
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        scale: 1.0,
        dir: std::env::temp_dir().join("raftwal-compare"),
        only: None,
        systems: None,
        writers: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => args.scale = 1.0 / 16.0,
            "--scale" => args.scale = it.next().ok_or("--scale needs a number")?.parse()?,
            "--dir" => args.dir = it.next().ok_or("--dir needs a path")?.into(),
            "--only" => {
                let list = it.next().ok_or("--only needs a list like w1,w3")?;
                args.only = Some(list.split(',').map(|s| s.to_lowercase()).collect());
            }
            "--writers" => {
                let list = it.next().ok_or("--writers needs a list like 1,4,8,32")?;
                let parsed: Result<Vec<usize>, _> = list.split(',').map(str::parse).collect();
                args.writers = Some(parsed?);
            }
            "--systems" => {
                let list = it.next().ok_or("--systems needs a list like raw,raftwal")?;
                args.systems = Some(list.split(',').map(|s| s.to_lowercase()).collect());
            }
            "-h" | "--help" => {
                println!(
                    "usage: raftwal-compare [--quick | --scale F] [--dir PATH] [--only w1,w2,w3,w5]\n\
                     \x20      [--systems raw,raftwal,raft-engine,okaywal] [--writers 1,4,8,32]\n\
                     W4 (replay) runs with W3."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(args)
}

/// One row of the table.
struct Row {
    workload: String,
    system: &'static str,
    sample: Sample,
    /// For W4: the time `cat` takes to read the same files, as a rate of the same payload.
    cat_mb_per_sec: Option<f64>,
}

impl Row {
    /// The workload's headline number: entries/s for the save workloads, MB/s for bulk ones.
    fn primary(&self) -> f64 {
        match self.workload.as_str() {
            "W3" | "W4" => self.sample.mb_per_sec(),
            _ => self.sample.entries_per_sec(),
        }
    }
}

fn fresh_dir(base: &Path, name: &str) -> Res<PathBuf> {
    let dir = base.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> Res<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files_under(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Seconds `cat` takes to read every file under `dir` to /dev/null (after one warming run).
fn cat_seconds(dir: &Path) -> Res<f64> {
    let mut files = Vec::new();
    files_under(dir, &mut files)?;
    files.sort();
    let run = || -> Res<f64> {
        let start = Instant::now();
        let status = Command::new("cat")
            .args(&files)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            return Err("cat failed".into());
        }
        Ok(start.elapsed().as_secs_f64())
    };
    run()?;
    run()
}

/// The system's short name, for directories and `--systems`.
fn tag_of(system: &dyn System) -> &'static str {
    match system.name() {
        "raw limit" => "raw",
        name => name.split(' ').next().unwrap_or(name),
    }
}

/// Adds a row and shows it at once (the table comes at the end).
fn push(
    rows: &mut Vec<Row>,
    workload: &str,
    system: &dyn System,
    sample: Sample,
    cat_mb_per_sec: Option<f64>,
) {
    let row = Row {
        workload: workload.to_string(),
        system: system.name(),
        sample,
        cat_mb_per_sec,
    };
    eprintln!(
        "  {} {:<16} {:>12} entries/s {:>10} MB/s {:>8.2} CPU us/entry",
        row.workload,
        row.system,
        format_rate(row.sample.entries_per_sec()),
        format_rate(row.sample.mb_per_sec()),
        row.sample.cpu.as_secs_f64() * 1e6 / row.sample.entries.max(1) as f64
    );
    rows.push(row);
}

/// Keeps the faster of two runs in `slot`; whether `sample` was kept.
fn keep_best(slot: &mut Option<Sample>, sample: Sample) -> bool {
    let better = slot.as_ref().is_none_or(|b| sample.elapsed < b.elapsed);
    if better {
        *slot = Some(sample);
    }
    better
}

/// The W2 workload's label for `writers` writers; sorts in writer order.
fn w2_label(writers: usize) -> String {
    format!("W2 {writers:>2}w")
}

/// The disk's fdatasync latencies and the load average, right before a synced run in `dir`.
fn conditions(dir: &Path) -> Res<(Vec<std::time::Duration>, Vec<f64>)> {
    let load = disk::load_average().into_iter().collect();
    Ok((disk::probe_fdatasync(dir, disk::PROBE_SYNCS)?, load))
}

/// Writes back every dirty page of the machine, so one run's leftovers do not slow the next.
fn sync_all() {
    let _ = Command::new("sync").status();
}

fn main() -> Res<()> {
    let args = parse_args()?;
    let mut sizes = Sizes::scaled(args.scale);
    if let Some(writers) = &args.writers {
        sizes.w2_writers = writers.clone();
    }
    std::fs::create_dir_all(&args.dir)?;
    let wants = |w: &str| args.only.as_ref().is_none_or(|o| o.iter().any(|x| x == w));

    println!("{}", machine::describe(&args.dir));
    println!(
        "scale {} (W1 {} saves; W2 {:?} writers, {} saves per writer and round, at least {} per round; W3 {} MiB of 4 KiB entries; W5 {} entries of 64 B)\n\
         fdatasync: {} rounds of 4 KiB pwrite + fdatasync into a preallocated file, right before every synced run; load: 1-minute load average at the start of each run\n",
        args.scale,
        sizes.w1_saves,
        sizes.w2_writers,
        sizes.w2_saves_per_writer,
        sizes.w2_min_round,
        sizes.w3_bytes >> 20,
        sizes.w5_entries,
        disk::PROBE_SYNCS,
    );

    let all: [&dyn System; 4] = [
        &systems::raw::Raw,
        &systems::raftwal_sys::Raftwal,
        &systems::raft_engine_sys::RaftEngine,
        &systems::okaywal_sys::OkayWal,
    ];
    let systems: Vec<&dyn System> = all
        .into_iter()
        .filter(|s| {
            let tag = tag_of(*s);
            args.systems
                .as_ref()
                .is_none_or(|l| l.iter().any(|x| x == tag))
        })
        .collect();
    let mut rows: Vec<Row> = Vec::new();
    // W2's writer counts and what waking that many blocked threads costs on this machine.
    let mut turnarounds: Vec<(usize, Duration)> = Vec::new();

    // Synced workloads run in interleaved rounds, so that a slow minute of a shared disk
    // weighs on every system alike.
    const ROUNDS: u64 = 4;
    if wants("w1") {
        let mut samples = vec![Sample::default(); systems.len()];
        for _ in 0..ROUNDS {
            for (system, total) in systems.iter().zip(&mut samples) {
                let dir = fresh_dir(&args.dir, &format!("w1-{}", tag_of(*system)))?;
                let (fsync, load) = conditions(&dir)?;
                let mut sample =
                    with_cpu(|| system.synced_saves(&dir, sizes.w1_saves.div_ceil(ROUNDS)))?;
                sample.fsync = fsync;
                sample.load = load;
                total.merge(sample);
                std::fs::remove_dir_all(&dir)?;
            }
        }
        for (system, sample) in systems.iter().zip(samples) {
            push(&mut rows, "W1", *system, sample, None);
        }
    }
    if wants("w2") {
        for &writers in &sizes.w2_writers {
            let per_thread = sizes.w2_per_thread(writers);
            let mut samples = vec![Sample::default(); systems.len()];
            for _ in 0..ROUNDS {
                for (system, total) in systems.iter().zip(&mut samples) {
                    let dir = fresh_dir(&args.dir, &format!("w2-{}", tag_of(*system)))?;
                    let (fsync, load) = conditions(&dir)?;
                    let mut sample =
                        with_cpu(|| system.concurrent_saves(&dir, writers, per_thread))?;
                    sample.fsync = fsync;
                    sample.load = load;
                    total.merge(sample);
                    // A rate only counts for a usable log: every entry, in index order.
                    system.check_concurrent_saves(&dir, writers, per_thread)?;
                    std::fs::remove_dir_all(&dir)?;
                }
            }
            for (system, sample) in systems.iter().zip(samples) {
                push(&mut rows, &w2_label(writers), *system, sample, None);
            }
            turnarounds.push((writers, turnaround::turnaround(writers, 1000)));
        }
    }
    // Bulk workloads: interleaved rounds as well; each system keeps its best round (the page
    // cache of a shared machine is noisy, and the best round is what the code can do).
    const BULK_ROUNDS: usize = 3;
    if wants("w3") || wants("w4") {
        let bulk = Bulk {
            entry_size: 4096,
            count: sizes.w3_bytes / 4096,
            batch: 1,
        };
        let mut writes: Vec<Option<Sample>> = vec![None; systems.len()];
        let mut replays: Vec<Option<Sample>> = vec![None; systems.len()];
        let mut cats: Vec<Option<f64>> = vec![None; systems.len()];
        for _ in 0..BULK_ROUNDS {
            for (i, system) in systems.iter().enumerate() {
                let dir = fresh_dir(&args.dir, &format!("w3-{}", tag_of(*system)))?;
                // Nothing dirty from before slows this run's final sync.
                sync_all();
                let sample = with_cpu(|| system.bulk_write(&dir, bulk))?;
                keep_best(&mut writes[i], sample);
                // W4: the page cache is warm (the log was just written; cat reads it once more).
                let cat = cat_seconds(&dir)?;
                let mut replay = with_cpu(|| system.replay(&dir))?;
                if system.name() != "raw limit" && replay.entries != bulk.count {
                    return Err(format!(
                        "{} replayed {} entries, wrote {}",
                        system.name(),
                        replay.entries,
                        bulk.count
                    )
                    .into());
                }
                let payload = bulk.count * bulk.entry_size as u64;
                replay.bytes = payload;
                replay.entries = bulk.count;
                // The best `cat` of all rounds: the bar only rises.
                let cat_rate = payload as f64 / 1e6 / cat;
                cats[i] = Some(cats[i].map_or(cat_rate, |c: f64| c.max(cat_rate)));
                keep_best(&mut replays[i], replay);
                std::fs::remove_dir_all(&dir)?;
            }
        }
        for (i, system) in systems.iter().enumerate() {
            if let Some(sample) = writes[i].take() {
                push(&mut rows, "W3", *system, sample, None);
            }
            if let Some(sample) = replays[i].take() {
                push(&mut rows, "W4", *system, sample, cats[i]);
            }
        }
    }
    if wants("w5") {
        let bulk = Bulk {
            entry_size: 64,
            count: sizes.w5_entries,
            batch: 64,
        };
        let mut writes: Vec<Option<Sample>> = vec![None; systems.len()];
        for _ in 0..BULK_ROUNDS {
            for (i, system) in systems.iter().enumerate() {
                let dir = fresh_dir(&args.dir, &format!("w5-{}", tag_of(*system)))?;
                sync_all();
                let sample = with_cpu(|| system.bulk_write(&dir, bulk))?;
                keep_best(&mut writes[i], sample);
                std::fs::remove_dir_all(&dir)?;
            }
        }
        for (i, system) in systems.iter().enumerate() {
            if let Some(sample) = writes[i].take() {
                push(&mut rows, "W5", *system, sample, None);
            }
        }
    }
    rows.sort_by(|a, b| a.workload.cmp(&b.workload));
    print_table(&mut rows);
    print_blocking_bound(&rows, &turnarounds);
    print_targets(&mut rows);
    Ok(())
}

/// The row label of a system in a workload: W2's raw limit is the ideal group commit.
fn display_name(row: &Row) -> String {
    match row.workload.strip_prefix("W2 ") {
        Some(w) if row.system == "raw limit" => {
            format!(
                "ideal: 1 writer, {} per fdatasync",
                w.trim().trim_end_matches('w')
            )
        }
        _ => row.system.to_string(),
    }
}

fn print_table(rows: &mut [Row]) {
    println!(
        "| workload | system | entries/s | MB/s | p50 | p99 | CPU us/entry | x raw limit | x best peer | x cat | fdatasync p50 / p99 | load |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let snapshot: Vec<(String, &'static str, f64)> = rows
        .iter()
        .map(|r| (r.workload.clone(), r.system, r.primary()))
        .collect();
    for row in rows.iter_mut() {
        let find = |system: &str| {
            snapshot
                .iter()
                .find(|(w, s, _)| *w == row.workload && *s == system)
                .map(|x| x.2)
        };
        let raw = find("raw limit");
        let best_peer = [find("raft-engine 0.4"), find("okaywal 0.3")]
            .into_iter()
            .flatten()
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let primary = row.primary();
        let ratio = |base: Option<f64>| match base {
            Some(b) if row.system != "raw limit" && b > 0.0 => format!("{:.2}", primary / b),
            _ => "-".into(),
        };
        let cat = match row.cat_mb_per_sec {
            Some(c) => format!("{:.2}", row.sample.mb_per_sec() / c),
            None => "-".into(),
        };
        let p50 = format_latency(row.sample.quantile(0.5));
        let p99 = format_latency(row.sample.quantile(0.99));
        let cpu = row.sample.cpu.as_secs_f64() * 1e6 / row.sample.entries.max(1) as f64;
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} |",
            row.workload,
            display_name(row),
            format_rate(row.sample.entries_per_sec()),
            format_rate(row.sample.mb_per_sec()),
            p50,
            p99,
            cpu,
            ratio(raw),
            ratio(best_peer),
            cat,
            row.sample.fsync_summary(),
            row.sample.load_summary(),
        );
    }
}

/// Where each W2 system stands against what blocking writers can reach on this machine: the
/// ideal round plus the time to wake every writer and have it block again.
fn print_blocking_bound(rows: &[Row], turnarounds: &[(usize, Duration)]) {
    if turnarounds.is_empty() {
        return;
    }
    println!("\nW2 against the blocking bound (writers / (ideal round + turnaround); turnaround: waking that many parked threads until each has parked again, no I/O):");
    for &(writers, turn) in turnarounds {
        let label = w2_label(writers);
        let rate = |system: &str| {
            rows.iter()
                .find(|r| r.workload == label && r.system == system)
                .map(Row::primary)
        };
        let Some(ideal) = rate("raw limit") else {
            continue;
        };
        let bound = turnaround::blocking_bound(writers, ideal, turn);
        let of = |system: &str| {
            rate(system)
                .map(|r| format!("{system} {:.2}x", r / bound))
                .unwrap_or_default()
        };
        println!(
            "  {label}: turnaround {}, bound {}/s; {}  {}  {}",
            format_latency(Some(turn)),
            format_rate(bound),
            of("raftwal"),
            of("raft-engine 0.4"),
            of("okaywal 0.3"),
        );
    }
}

/// The issue's targets, each as met or missed.
fn print_targets(rows: &mut [Row]) {
    let get = |rows: &[Row], w: &str, s: &str| {
        rows.iter()
            .find(|r| r.workload == w && r.system == s)
            .map(Row::primary)
    };
    let best_peer = |rows: &[Row], w: &str| {
        [get(rows, w, "raft-engine 0.4"), get(rows, w, "okaywal 0.3")]
            .into_iter()
            .flatten()
            .reduce(f64::max)
    };
    let mut checks: Vec<(String, Option<bool>)> = Vec::new();
    let ratio_check = |name: &str, a: Option<f64>, b: Option<f64>, min: f64| {
        let ok = a.zip(b).map(|(a, b)| a >= min * b);
        let shown = a
            .zip(b)
            .map(|(a, b)| format!("{:.2}x", a / b))
            .unwrap_or("-".into());
        (format!("{name}: {shown} (need >= {min}x)"), ok)
    };
    checks.push(ratio_check(
        "W1 raftwal vs raw fdatasync loop",
        get(rows, "W1", "raftwal"),
        get(rows, "W1", "raw limit"),
        0.9,
    ));
    let w2: Vec<String> = {
        let mut labels: Vec<String> = rows
            .iter()
            .filter(|r| r.workload.starts_with("W2 "))
            .map(|r| r.workload.clone())
            .collect();
        labels.dedup();
        labels
    };
    for label in &w2 {
        let writers: usize = label[3..].trim().trim_end_matches('w').parse().unwrap_or(0);
        if writers < 4 {
            continue;
        }
        let ours = get(rows, label, "raftwal");
        let peer = best_peer(rows, label);
        let need = if writers >= 32 { 1.5 } else { 1.0 };
        checks.push(ratio_check(
            &format!("{label} raftwal vs best peer"),
            ours,
            peer,
            need,
        ));
        if writers >= 32 {
            checks.push(ratio_check(
                &format!("{label} raftwal vs ideal"),
                ours,
                get(rows, label, "raw limit"),
                0.7,
            ));
        }
        // p99 no worse than the best peer's p99 (lower is better: compare inverses).
        let p99 = |rows: &mut [Row], s: &str| {
            rows.iter_mut()
                .find(|r| r.workload == *label && r.system == s)
                .and_then(|r| r.sample.quantile(0.99))
                .map(|d| d.as_secs_f64())
        };
        let ours_p99 = p99(rows, "raftwal");
        let peer_p99 = [p99(rows, "raft-engine 0.4"), p99(rows, "okaywal 0.3")]
            .into_iter()
            .flatten()
            .reduce(f64::min);
        checks.push(ratio_check(
            &format!("{label} p99, best peer's / raftwal's"),
            ours_p99.map(|v| 1.0 / v),
            peer_p99.map(|v| 1.0 / v),
            1.0,
        ));
    }
    checks.push(ratio_check(
        "W3 raftwal vs raw sequential write",
        get(rows, "W3", "raftwal"),
        get(rows, "W3", "raw limit"),
        0.85,
    ));
    let w4 = rows
        .iter()
        .find(|r| r.workload == "W4" && r.system == "raftwal");
    checks.push(ratio_check(
        "W4 raftwal replay vs cat",
        w4.map(|r| r.sample.mb_per_sec()),
        w4.and_then(|r| r.cat_mb_per_sec),
        0.5,
    ));
    checks.push(ratio_check(
        "W5 raftwal vs raft-engine",
        get(rows, "W5", "raftwal"),
        get(rows, "W5", "raft-engine 0.4"),
        1.0,
    ));
    checks.push(ratio_check(
        "W5 raftwal vs okaywal",
        get(rows, "W5", "raftwal"),
        get(rows, "W5", "okaywal 0.3"),
        1.0,
    ));
    println!("\nTargets:");
    // Targets of workloads that did not run are left out.
    for (line, ok) in checks {
        match ok {
            Some(true) => println!("  [met   ] {line}"),
            Some(false) => println!("  [MISSED] {line}"),
            None => {}
        }
    }
}
