//! The README's main job: three raft-rs nodes on raftwal storage through proposals, snapshots,
//! crashes and restarts; see the crate docs of `raftwal_demo`.

use std::path::PathBuf;

use raftwal_demo::{run, ClusterConfig};

/// Command-line arguments.
#[derive(clap::Parser, Debug)]
#[command(about = "Three raft-rs nodes on raftwal storage, with crashes and restarts")]
struct Args {
    /// Commands to propose.
    #[arg(long, default_value_t = 5000)]
    commands: u64,
    /// Snapshot every this many applied entries.
    #[arg(long, default_value_t = 500)]
    snapshot_every: u64,
    /// WAL segment size in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    segment_size: u64,
    /// Where to put the nodes' directories (default: a temporary directory, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// raft-rs's async Ready path: submit each Ready's save (group commit) and call
    /// `on_persist_ready` once it is durable.
    #[arg(long = "async")]
    async_ready: bool,
}

fn main() {
    use clap::Parser as _;
    let args = Args::parse();
    let temp = match &args.dir {
        Some(_) => None,
        None => match tempfile::tempdir() {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("cannot create a temporary directory: {e}");
                std::process::exit(2);
            }
        },
    };
    let dir = args
        .dir
        .clone()
        .or_else(|| temp.as_ref().map(|t| t.path().to_path_buf()))
        .unwrap_or_default();
    let config = ClusterConfig {
        commands: args.commands,
        snapshot_every: args.snapshot_every,
        segment_size: args.segment_size,
        async_ready: args.async_ready,
        ..ClusterConfig::new(&dir)
    };
    println!(
        "raft_cluster: 3 nodes under {}, {} commands, snapshot every {} entries, {} byte segments{}",
        dir.display(),
        config.commands,
        config.snapshot_every,
        config.segment_size,
        if config.async_ready {
            ", async Ready path"
        } else {
            ""
        }
    );
    match run(&config) {
        Ok(report) => {
            println!("{report}");
            println!(
                "OK: all three state machines are identical and hold every acknowledged command"
            );
        }
        Err(e) => {
            eprintln!("FAILED: {e}");
            std::process::exit(1);
        }
    }
}
