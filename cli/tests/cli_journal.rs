//! `raftwal journal` on journal directories written with the library: record kinds shown,
//! where recovery starts, and protocol damage as exit code 4.

mod cli_common;

use cli_common::*;
use raftwal::journal::{Bytes, Journal};
use raftwal::store::FileStore;
use raftwal::{AppLog, WalOptions};

/// A journal with data, a finalized checkpoint with data during it, and an abandoned one.
fn journal_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("journal");
    let journal = Journal::open(
        FileStore::create(&dir, WalOptions::new()).unwrap(),
        Bytes,
        |_| {},
    )
    .unwrap();
    journal.append(b"covered").unwrap().wait().unwrap(); // 1
    let checkpoint = journal.start_checkpoint().unwrap(); // 2
    checkpoint.append(b"state").unwrap(); // 3
    journal.append(b"during").unwrap().wait().unwrap(); // 4
    checkpoint.finalize().unwrap().wait().unwrap(); // 5
    let abandoned = journal.start_checkpoint().unwrap(); // 6
    abandoned.append(b"half").unwrap(); // 7
    drop(abandoned);
    journal.append(b"after").unwrap().wait().unwrap(); // 8
    journal.close().unwrap();
    (parent, dir)
}

#[test]
fn journal_shows_each_record_with_its_kind_and_where_recovery_starts() {
    let (_parent, dir) = journal_dir();
    let run = raftwal(["journal".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    // Record 1 was deleted by the finalize; the log starts at the checkpoint.
    let kinds: Vec<&str> = lines[..7]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "checkpoint-start",
            "checkpoint-record",
            "data",
            "checkpoint-finalize",
            "checkpoint-start",
            "checkpoint-record",
            "data"
        ]
    );
    assert!(lines[3].contains("started at 2"), "{}", lines[3]);
    assert!(lines[2].contains("\"during\""), "{}", lines[2]);
    let summary = lines[7];
    assert!(summary.contains("records 2..=8"), "{summary}");
    assert!(summary.contains("checkpoint started at 2"), "{summary}");
    assert!(
        summary.contains("started at 6 is not finalized"),
        "{summary}"
    );
}

#[test]
fn journal_json_ends_with_a_summary_object() {
    let (_parent, dir) = journal_dir();
    let run = raftwal(["journal".as_ref(), "--json".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[3]["kind"], "checkpoint-finalize");
    assert_eq!(lines[3]["start"], 2);
    assert_eq!(lines[7]["kind"], "summary");
    assert_eq!(lines[7]["checkpoint"], 2);
    assert_eq!(lines[7]["open_checkpoint"], 6);
}

#[test]
fn journal_verify_refuses_a_record_no_journal_wrote_with_exit_4() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    let mut log = AppLog::create(&dir, WalOptions::new()).unwrap();
    log.append(b"\x01data").unwrap();
    log.append(b"\x03a checkpoint record outside a checkpoint")
        .unwrap();
    log.close().unwrap();
    let run = raftwal(["journal".as_ref(), "--verify".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("journal record 2"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn journal_verify_passes_a_sound_journal_with_one_line() {
    let (_parent, dir) = journal_dir();
    let run = raftwal(["journal".as_ref(), "--verify".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1);
    assert!(run.stdout.starts_with("ok: "), "{}", run.stdout);
}
