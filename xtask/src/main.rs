//! `cargo xtask test`: the README's test command.
//!
//! Most of raftwal builds with nothing but Rust, so the first pass is plain
//! `cargo test --workspace`. Some passes build code that needs a system tool at *build* time
//! (a `protoc` binary for raft-rs's prost codec or for the etcd client). A test binary cannot
//! print `SKIPPED` if it cannot be built, so those passes live here: each runs when its tools are
//! installed and otherwise prints one `SKIPPED: <pass> needs <debian package>` line, the same
//! line the tests themselves print and `.ci/run` fails on.
//!
//! `cargo xtask test -- ARGS` passes `ARGS` to every `cargo test` after its own `--` (for example
//! `--nocapture`).

use std::io::Write as _;
use std::process::{exit, Command};

/// A system tool a pass needs, and the Debian package that provides it.
struct Tool {
    program: &'static str,
    version_arg: &'static str,
    package: &'static str,
}

const PROTOC: Tool = Tool {
    program: "protoc",
    version_arg: "--version",
    package: "protobuf-compiler",
};

/// One `cargo test` invocation.
struct Pass {
    name: &'static str,
    cargo_args: &'static [&'static str],
    needs: &'static [Tool],
}

/// Every pass, in the order they run. Passes that need a tool at build time say so in `needs`.
const PASSES: &[Pass] = &[
    Pass {
        name: "workspace",
        cargo_args: &["test", "--workspace"],
        needs: &[],
    },
    // The etcd store and its tests against real etcd servers (which print SKIPPED themselves
    // when the etcd binary is missing); etcd-client's build needs protoc.
    Pass {
        name: "etcd-store",
        cargo_args: &[
            "test",
            "-p",
            "raftwal",
            "--features",
            "etcd",
            "--lib",
            "--test",
            "store_etcd",
            "--test",
            "store_etcd_failover",
            "--test",
            "store_etcd_tls",
            "--test",
            "journal_protocol_etcd",
        ],
        needs: &[PROTOC],
    },
    Pass {
        name: "etcd-cli",
        cargo_args: &[
            "test",
            "-p",
            "raftwal-cli",
            "--features",
            "etcd",
            "--test",
            "cli_etcd",
        ],
        needs: &[PROTOC],
    },
    // raft-rs's other codec: raft-proto's prost-codec generates its types with prost-build,
    // which runs protoc.
    Pass {
        name: "prost-codec",
        cargo_args: &[
            "test",
            "--workspace",
            "--no-default-features",
            "--features",
            "prost-codec",
        ],
        needs: &[PROTOC],
    },
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => ("", &[][..]),
    };
    if command != "test" {
        eprintln!("usage: cargo xtask test [-- ARGS for every cargo test]");
        exit(2);
    }
    let test_args: Vec<&str> = match rest.split_first() {
        Some((dashes, after)) if dashes == "--" => after.iter().map(String::as_str).collect(),
        Some(_) => {
            eprintln!("usage: cargo xtask test [-- ARGS for every cargo test]");
            exit(2);
        }
        None => Vec::new(),
    };

    let mut failed = Vec::new();
    for pass in PASSES {
        if let Some(tool) = pass.needs.iter().find(|tool| !installed(tool)) {
            // Straight to stderr, one line, the form CI greps for.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: test pass {} needs {}",
                pass.name,
                tool.package
            );
            continue;
        }
        eprintln!(
            "== test pass {}: cargo {}",
            pass.name,
            pass.cargo_args.join(" ")
        );
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo.args(pass.cargo_args);
        if !test_args.is_empty() {
            cargo.arg("--").args(&test_args);
        }
        match cargo.status() {
            Ok(status) if status.success() => {}
            Ok(status) => failed.push(format!("{} ({status})", pass.name)),
            Err(err) => failed.push(format!("{} (cargo did not start: {err})", pass.name)),
        }
    }
    if !failed.is_empty() {
        eprintln!("FAILED test passes: {}", failed.join(", "));
        exit(1);
    }
}

fn installed(tool: &Tool) -> bool {
    Command::new(tool.program)
        .arg(tool.version_arg)
        .output()
        .is_ok_and(|out| out.status.success())
}
