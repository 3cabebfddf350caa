//! Tests that need a system tool run when it is there and otherwise say so in one line that CI
//! looks for (`.ci/run` installs every such tool first and fails on any `SKIPPED:` line). A test
//! never installs anything itself. Include with `#[path = "support/skip.rs"] mod skip;`.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

/// Prints `SKIPPED: <test> needs <what>` straight to the process's stderr, past the test
/// harness's output capture, so that a skip is never silent.
pub fn skipped(test: &str, what: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test} needs {what}");
}

/// Whether `program args...` runs and exits successfully.
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Whether this process runs as root (needed to mount a tmpfs).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// Whether Go and Debian's etcd 3.4 sources (packages `golang-go`, `golang-etcd-server-dev`),
/// which the etcd WAL oracle is built from, are installed.
pub fn has_etcd_oracle_toolchain() -> bool {
    runs("go", &["version"]) && Path::new("/usr/share/gocode/src/go.etcd.io/etcd/wal").is_dir()
}
