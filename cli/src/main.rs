//! `raftwal`: look inside, check and repair etcd-compatible write-ahead logs.
//!
//! Every subcommand takes a WAL directory or an etcd data dir (then `member/wal` is used), only
//! reads through raftwal's public API, and reports a failure as one line on stderr with an exit
//! code that says what kind of failure it was (see [`failure`]).

mod bench;
mod dump;
#[cfg(feature = "etcd")]
mod etcd;
mod failure;
mod journal;
mod log_dir;
mod output;
mod progress;
mod raw;
mod repair;
mod stat;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::failure::Failure;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (verify: the log is sound)
  1  the command could not run: I/O error, not a WAL, locked by a writer, ...
  2  bad command line
  3  the log ends in a torn write, as a crash mid-write leaves it: `raftwal repair DIR` cuts it off
  4  the log is corrupt or inconsistent in a way repair does not fix (the message names the file
     and offset; damage at the end of the last segment can be cut with `repair --truncate-at`)";

/// Inspect, check and repair etcd-compatible write-ahead logs.
#[derive(Debug, Parser)]
#[command(name = "raftwal", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the log's entries (after raft overwrites) and its HardState, like etcd-dump-logs.
    #[command(after_help = EXIT_CODES)]
    Dump(dump::Args),
    /// Check the whole log without changing anything.
    #[command(after_help = EXIT_CODES)]
    Verify {
        /// A WAL directory, or an etcd data dir (its member/wal is used).
        dir: PathBuf,
    },
    /// Cut a torn write off the end of the last segment, keeping a `<file>.broken` copy.
    #[command(after_help = EXIT_CODES)]
    Repair {
        /// A WAL directory, or an etcd data dir (its member/wal is used).
        dir: PathBuf,
        /// Say what would be cut (with --truncate-at too), and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Cut the last segment at OFFSET even though the damage there is not a torn write:
        /// the offset a `corrupt` or `CRC mismatch` error names. Everything after it is lost,
        /// acknowledged or not; the segment is kept as <file>.broken first.
        #[arg(long, value_name = "OFFSET")]
        truncate_at: Option<u64>,
    },
    /// Segments, index ranges, snapshot markers, HardState, locks and free space.
    #[command(after_help = EXIT_CODES)]
    Stat {
        /// A WAL directory, or an etcd data dir (its member/wal is used).
        dir: PathBuf,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A journal's records with their kinds, and the checkpoint recovery starts from.
    #[command(after_help = EXIT_CODES)]
    Journal(journal::Args),
    /// Measure raftwal's workloads beside the raw limit of the same disk.
    #[command(after_help = EXIT_CODES)]
    Bench(bench::Args),
    /// Dump or verify a journal's store in etcd (`--etcd ENDPOINTS --prefix P`).
    #[cfg(feature = "etcd")]
    #[command(subcommand, after_help = EXIT_CODES)]
    Etcd(etcd::Command),
}

fn main() -> ExitCode {
    // A bug must still end as one line, never a backtrace an operator has to wade through.
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "raftwal: internal error: {}",
            info.to_string().replace('\n', " ")
        );
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dump(args) => dump::run(&args),
        Command::Verify { dir } => verify::run(&dir),
        Command::Repair {
            dir,
            dry_run,
            truncate_at: None,
        } => repair::run(&dir, dry_run),
        Command::Repair {
            dir,
            dry_run,
            truncate_at: Some(offset),
        } => repair::truncate_at(&dir, offset, dry_run),
        Command::Stat { dir, json } => stat::run(&dir, json),
        Command::Journal(args) => journal::run(&args),
        Command::Bench(args) => bench::run(&args),
        #[cfg(feature = "etcd")]
        Command::Etcd(command) => etcd::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// The result of a subcommand.
type Outcome = Result<(), Failure>;
