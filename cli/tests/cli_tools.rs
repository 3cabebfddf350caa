//! `raftwal verify`, `repair` and `stat` on logs written here with the library, sound and
//! damaged: what they report, the exit codes, and that repair changes only what it must.

mod cli_common;

use std::path::{Path, PathBuf};

use cli_common::*;
use raftwal::{Wal, WalOptions, WalSnapshot};

fn new_log(count: u64) -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    write_log(&dir, count);
    (parent, dir)
}

/// A log whose last frame (a 4000-byte entry) was cut short by a crash: the file ends 100
/// bytes into it. Returns the segment and the torn frame's offset.
fn truncate_last_frame(dir: &Path) -> (PathBuf, u64) {
    append_big_entry(dir, 4000);
    let (path, offset) = last_frame(dir);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(offset + 100)
        .unwrap();
    (path, offset)
}

#[test]
fn verify_passes_on_a_sound_log() {
    let (_parent, dir) = new_log(60);
    let run = raftwal(["verify".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("ok: "), "{}", run.stdout);
    assert!(run.stdout.contains("commit 60"), "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 1);
}

#[test]
fn verify_names_the_file_and_offset_of_a_flipped_byte() {
    let (_parent, dir) = new_log(60);
    let (path, offset) = entry_frame_in_segment(&dir, 1);
    flip_byte(&path, offset + 40);

    let run = raftwal(["verify".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(run.stderr.contains(name), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("offset {offset}")),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_reports_a_torn_tail_with_its_own_exit_code() {
    let (_parent, dir) = new_log(30);
    append_big_entry(&dir, 4000);
    let (path, offset) = last_frame(&dir);
    // The second half of the frame never reached the disk: whole sectors of zeros.
    let mut bytes = std::fs::read(&path).unwrap();
    let body = offset as usize + 8;
    bytes[body + 2000..body + 3900].fill(0);
    std::fs::write(&path, bytes).unwrap();

    let run = raftwal(["verify".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("torn"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("offset {offset}")));
    assert!(run.stderr.contains("raftwal repair"), "{}", run.stderr);
}

#[test]
fn repair_cuts_a_torn_tail_keeps_a_broken_copy_and_appends_continue() {
    let (_parent, dir) = new_log(30);
    let (path, offset) = truncate_last_frame(&dir);
    let damaged = std::fs::read(&path).unwrap();

    let run = raftwal(["repair".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!("offset {offset}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("100 bytes"), "{}", run.stdout);
    let broken = PathBuf::from(format!("{}.broken", path.display()));
    assert_eq!(std::fs::read(&broken).unwrap(), damaged);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), offset);
    assert_eq!(raftwal(["verify".as_ref(), dir.as_os_str()]).code, 0);

    // The log takes writes again, and they read back after what survived.
    let mut wal = Wal::open(&dir, &WalSnapshot::default()).unwrap();
    let recovered = wal.read_all().unwrap();
    assert_eq!(recovered.entries.last().unwrap().index, 30);
    let more: Vec<_> = (31..=35).map(|i| entry(i, 1)).collect();
    wal.save(&hard_state(1, 35), &more).unwrap();
    wal.close().unwrap();
    let mut reader = Wal::open_for_read(&dir, &WalSnapshot::default()).unwrap();
    let entries = reader.read_all().unwrap().entries;
    assert_eq!(entries.len(), 35);
    assert_eq!(entries[30..], more[..]);
}

#[test]
fn repair_refuses_corruption_in_the_middle_of_the_log() {
    let (_parent, dir) = new_log(60);
    let (path, offset) = entry_frame_in_segment(&dir, 0);
    flip_byte(&path, offset + 40);
    let before = snapshot_files(&dir);

    let run = raftwal(["repair".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("not repairable"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("offset {offset}")));
    assert!(
        !run.stderr.contains("--truncate-at"),
        "the override only cuts the last segment: {}",
        run.stderr
    );
    assert_eq!(snapshot_files(&dir), before, "nothing may change");
}

#[test]
fn repair_dry_run_says_what_it_would_cut_and_changes_nothing() {
    let (_parent, dir) = new_log(30);
    let (_path, offset) = truncate_last_frame(&dir);
    let before = snapshot_files(&dir);

    let run = raftwal(["repair".as_ref(), "--dry-run".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!("from offset {offset}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("100 bytes to cut"), "{}", run.stdout);
    assert!(run.stdout.contains("nothing changed"), "{}", run.stdout);
    assert_eq!(snapshot_files(&dir), before);
}

#[test]
fn repair_of_a_sound_log_changes_nothing() {
    let (_parent, dir) = new_log(30);
    let before = snapshot_files(&dir);
    let run = raftwal(["repair".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("nothing to repair"), "{}", run.stdout);
    assert_eq!(snapshot_files(&dir), before);
}

#[test]
fn stat_json_reports_segments_snapshots_and_the_hard_state() {
    let (_parent, dir) = new_log(60);
    let run = raftwal(["stat".as_ref(), "--json".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stat: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();

    let names: Vec<String> = WalOptions::new()
        .segments(&dir)
        .unwrap()
        .into_iter()
        .map(|s| s.file_name)
        .collect();
    let segments = stat["segments"].as_array().unwrap();
    assert!(names.len() >= 3);
    assert_eq!(segments.len(), names.len());
    for (s, name) in segments.iter().zip(&names) {
        assert_eq!(s["file"], name.as_str());
        let size = std::fs::metadata(dir.join(name)).unwrap().len();
        assert_eq!(u64_at(s, "size"), size);
        assert_eq!(s["locked"], false);
    }
    // Together the segments hold entries 1..=60, each once, in order.
    let ranges: Vec<(u64, u64)> = segments
        .iter()
        .filter(|s| u64_at(s, "entries") > 0)
        .map(|s| {
            (
                u64_at(s, "first_entry_index"),
                u64_at(s, "last_entry_index"),
            )
        })
        .collect();
    assert_eq!(ranges.first().unwrap().0, 1);
    assert_eq!(ranges.last().unwrap().1, 60);
    assert!(
        ranges.windows(2).all(|w| w[1].0 == w[0].1 + 1),
        "{ranges:?}"
    );

    assert_eq!(u64_at(&stat["hard_state"], "term"), 1);
    assert_eq!(u64_at(&stat["hard_state"], "vote"), 1);
    assert_eq!(u64_at(&stat["hard_state"], "commit"), 60);
    let snapshots: Vec<u64> = stat["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| u64_at(s, "index"))
        .collect();
    assert_eq!(snapshots, vec![0, 20, 40, 60]);
    assert_eq!(u64_at(&stat, "metadata_size"), b"cli-test".len() as u64);
    assert!(u64_at(&stat, "available_space") > 0);
    assert!(stat["damage"].is_null());
}

#[test]
fn stat_shows_the_segments_a_writer_holds_locked() {
    let (_parent, dir) = new_log(60);
    let mut wal = small_segments()
        .open(&dir, &WalSnapshot::new(40, 1))
        .unwrap();
    wal.read_all().unwrap();
    let held = wal.locked_segments();
    assert!(!held.is_empty());

    let run = raftwal(["stat".as_ref(), "--json".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stat: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let locked: Vec<&str> = stat["locked_segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(locked, held);
    wal.close().unwrap();
}

#[test]
fn stat_reports_a_torn_tail_after_what_it_could_read() {
    let (_parent, dir) = new_log(30);
    let (path, offset) = truncate_last_frame(&dir);
    let run = raftwal(["stat".as_ref(), "--json".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let stat: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(stat["damage"]["kind"], "torn_tail");
    assert_eq!(
        stat["damage"]["file"],
        path.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(u64_at(&stat["damage"], "offset"), offset);
    assert_eq!(u64_at(&stat["hard_state"], "commit"), 30);
}

#[test]
fn dump_json_lines_parse_and_hold_the_log() {
    let (_parent, dir) = new_log(60);
    let run = raftwal(["dump".as_ref(), "--json".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json_lines(&run.stdout);
    assert_eq!(lines.len(), 62);
    assert_eq!(unbase64(&lines[0]["data"]), b"cli-test");
    for (line, index) in lines[1..61].iter().zip(1..) {
        assert_eq!(line["kind"], "entry");
        assert_eq!(unbase64(&line["data"]), entry(index, 1).data.to_vec());
    }
    assert_eq!(lines[61]["kind"], "hard_state");
}

#[test]
fn errors_are_one_line_on_stderr_with_a_nonzero_exit() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("missing");
    let empty = parent.path();
    for dir in [missing.as_path(), empty] {
        for command in ["dump", "verify", "repair", "stat"] {
            let run = raftwal([command.as_ref(), dir.as_os_str()]);
            assert_eq!(run.code, 1, "{command}: {}", run.stderr);
            assert_eq!(run.stderr.lines().count(), 1, "{command}: {}", run.stderr);
            assert!(run.stderr.starts_with("raftwal: "), "{}", run.stderr);
            assert!(run.stdout.is_empty(), "{command}: {}", run.stdout);
        }
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let run = raftwal(["verify", "--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("Exit codes:"), "{}", run.stdout);
    assert!(run.stdout.contains("3  the log ends in a torn write"));
    assert!(run.stdout.contains("4  the log is corrupt"));
}

#[test]
fn repair_truncate_at_cuts_corruption_at_the_offset_the_refusal_names() {
    let (_parent, dir) = new_log(60);
    let last = WalOptions::new().segments(&dir).unwrap().len() - 1;
    let (path, offset) = entry_frame_in_segment(&dir, last);
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let kept = WalOptions::new()
        .raw_records(&dir)
        .unwrap()
        .map(|r| r.unwrap())
        .filter(|r| r.kind == raftwal::RecordType::Entry && (r.file < name || r.offset < offset))
        .count();
    flip_byte(&path, offset + 40);
    let refused = raftwal(["repair".as_ref(), dir.as_os_str()]);
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!("--truncate-at {offset}")),
        "the refusal names the override: {}",
        refused.stderr
    );

    let wrong = raftwal([
        "repair".as_ref(),
        "--truncate-at".as_ref(),
        (offset + 8).to_string().as_ref(),
        dir.as_os_str(),
    ]);
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("nothing was changed"),
        "{}",
        wrong.stderr
    );

    let run = raftwal([
        "repair".as_ref(),
        "--truncate-at".as_ref(),
        offset.to_string().as_ref(),
        dir.as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("forced cut"), "{}", run.stdout);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), offset);
    let mut wal = Wal::open(&dir, &WalSnapshot::default()).unwrap();
    assert_eq!(wal.read_all().unwrap().entries.len(), kept);
    assert!(kept < 60);
}
