//! Real system calls failing under the log: ENOSPC from a small tmpfs, and EIO from fdatasync
//! injected into a child process with strace. Each prints a `SKIPPED:` line where the machine
//! does not allow it (not root, so no tmpfs mount; no strace; no ptrace); `.ci/run` runs as root
//! with strace installed.

#[path = "support/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use raftwal::eraftpb::{Entry, HardState};
use raftwal::{Error, Wal, WalOptions, WalSnapshot};

const STRACE_CHILD: &str = "RAFTWAL_STRACE_CHILD";

fn entry(index: u64, len: usize) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![(index % 251) as u8 + 1; len].into(),
        ..Default::default()
    }
}

fn hs(commit: u64) -> HardState {
    HardState {
        term: 1,
        vote: 1,
        commit,
        ..Default::default()
    }
}

/// Reads the log in `dir` (repairing a torn tail), checks entries 1..=acked, appends one more.
fn check_reopens(dir: &Path, acked: u64, len: usize, what: &str) {
    let mut wal = Wal::open(dir, &WalSnapshot::default()).unwrap();
    let entries = match wal.read_all() {
        Err(Error::TornTail { .. }) => {
            drop(wal);
            WalOptions::new().repair(dir).unwrap();
            wal = Wal::open(dir, &WalSnapshot::default()).unwrap();
            wal.read_all().unwrap().entries
        }
        other => {
            other
                .unwrap_or_else(|e| panic!("{what}: reopen: {e}"))
                .entries
        }
    };
    assert!(
        entries.len() as u64 >= acked,
        "{what}: lost acknowledged entries"
    );
    for e in &entries {
        assert!(
            *e == entry(e.index, len),
            "{what}: entry {} differs",
            e.index
        );
    }
    let next = entries.len() as u64 + 1;
    wal.save(&hs(next - 1), &[entry(next, len)])
        .unwrap_or_else(|e| panic!("{what}: append after reopening: {e}"));
    wal.close().unwrap();
}

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            eprintln!("could not unmount the test tmpfs at {}", self.0.display());
        }
    }
}

#[test]
fn a_full_disk_is_disk_full_poisons_the_log_and_loses_nothing_acknowledged() {
    const TEST: &str = "a_full_disk_is_disk_full_poisons_the_log_and_loses_nothing_acknowledged";
    if !skip::is_root() {
        skip::skipped(TEST, "root, to mount a 2 MiB tmpfs (mount from util-linux)");
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let mnt = parent.path().join("tmpfs");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::piped())
        .output();
    match mounted {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            let why = String::from_utf8_lossy(&out.stderr);
            skip::skipped(TEST, &format!("a 2 MiB tmpfs mount ({})", why.trim()));
            return;
        }
        Err(e) => {
            skip::skipped(TEST, &format!("mount from util-linux ({e})"));
            return;
        }
    }
    let mount = Mount(mnt.clone());
    let dir = mnt.join("wal");
    let options = WalOptions::new().segment_size(256 * 1024);
    let mut wal = options.create(&dir, b"enospc").unwrap();
    let mut acked = 0;
    let err = loop {
        let index = acked + 1;
        assert!(index < 10_000, "a 2 MiB file system never filled up");
        match wal.save(&hs(acked), &[entry(index, 4000)]) {
            Ok(()) => acked = index,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::DiskFull { .. }), "{err:?}");
    let again = wal.save(&hs(acked), &[entry(acked + 1, 10)]);
    assert!(matches!(again, Err(Error::Poisoned { .. })), "{again:?}");
    drop(wal);

    // Read-only, on the full disk: everything acknowledged is there.
    let mut reader = Wal::open_for_read(&dir, &WalSnapshot::default()).unwrap();
    let entries = reader.read_all().unwrap().entries;
    assert!(entries.len() as u64 >= acked);
    // With room again the log reopens for writing and takes appends.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=16m"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(grown.success());
    check_reopens(&dir, acked, 4000, "after ENOSPC");
    println!("ENOSPC on a 2 MiB tmpfs after {acked} acknowledged saves: DiskFull, then Poisoned; reopened with all of them");
    drop(mount);
}

/// The strace child: saves synced entries and reports each, then the first error and whether
/// the log refused the next write.
#[test]
fn strace_child() {
    let Ok(dir) = std::env::var(STRACE_CHILD) else {
        return; // Not a child.
    };
    let mut wal = match Wal::create(&dir, b"strace") {
        Ok(wal) => wal,
        Err(e) => {
            println!("\n@@ error {e}");
            return;
        }
    };
    for index in 1..=30 {
        if let Err(e) = wal.save(&hs(index - 1), &[entry(index, 300)]) {
            println!("\n@@ error {e}");
            let again = wal.save(&hs(index - 1), &[entry(index, 300)]);
            println!(
                "\n@@ poisoned {}",
                matches!(again, Err(Error::Poisoned { .. }))
            );
            return;
        }
        println!("\n@@ ack {index}");
    }
    println!("\n@@ done");
}

#[test]
fn an_fdatasync_failure_is_reported_and_nothing_after_it_is_acknowledged() {
    const TEST: &str = "an_fdatasync_failure_is_reported_and_nothing_after_it_is_acknowledged";
    if !skip::runs("strace", &["-V"]) {
        skip::skipped(TEST, "strace");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut injected = 0;
    // fdatasync #1 is create's; #2 the first save's, and so on.
    for when in [1, 2, 5, 12] {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("wal");
        let out = Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=fdatasync"])
            .args(["-e", &format!("inject=fdatasync:error=EIO:when={when}")])
            .arg(&exe)
            .args(["--exact", "strace_child", "--nocapture", "--test-threads=1"])
            .env(STRACE_CHILD, &dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stdout.contains("@@ ") {
            skip::skipped(
                TEST,
                &format!("strace allowed to trace ({})", stderr.trim()),
            );
            return;
        }
        let what = format!("EIO from fdatasync #{when}");
        // Only the child's own lines (libtest may print on the same line before them).
        let lines: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.split_once("@@ ").map(|(_, rest)| rest))
            .collect();
        let error_at = lines
            .iter()
            .position(|l| l.starts_with("error "))
            .unwrap_or_else(|| panic!("{what}: the child reported no error:\n{stdout}"));
        assert!(
            lines[error_at].contains("Input/output error"),
            "{what}: {}",
            lines[error_at]
        );
        assert!(
            !lines[error_at..].iter().any(|l| l.starts_with("ack ")),
            "{what}: acknowledged after the error:\n{stdout}"
        );
        let acked = lines[..error_at]
            .iter()
            .filter_map(|l| l.strip_prefix("ack ")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        if when > 1 {
            assert!(
                lines.contains(&"poisoned true"),
                "{what}: the log took a write after the error:\n{stdout}"
            );
            check_reopens(&dir, acked, 300, &what);
        } else {
            // create failed: no log may be half there.
            assert!(
                !WalOptions::new().exists(&dir) || Wal::open(&dir, &WalSnapshot::default()).is_ok()
            );
        }
        injected += 1;
    }
    println!("fdatasync EIO injected with strace into {injected} child processes: each reported it, acknowledged nothing after it, and the log reopened");
}
