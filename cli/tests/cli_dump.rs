//! `raftwal dump` prints the shape scripts depend on, on a log written by a real etcd server
//! (the committed fixture) and on logs written and damaged here.

mod cli_common;

use cli_common::*;
use raftwal::{Wal, WalOptions, WalSnapshot};

#[test]
fn json_dump_of_the_etcd_fixture_matches_what_etcd_reads() {
    let wal_dir = etcd_data_dir().join("member/wal");
    let expected = etcd_expected();
    let run = raftwal(["dump".as_ref(), "--json".as_ref(), wal_dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let want = expected["entries"].as_array().unwrap();
    assert_eq!(want.len(), 2114);
    assert_eq!(lines.len(), 1 + want.len() + 1);

    // Keys in the documented order, exactly.
    assert_eq!(
        lines[0],
        format!(
            r#"{{"kind":"metadata","data":"{}"}}"#,
            expected["metadata_b64"].as_str().unwrap()
        )
    );
    for (line, want) in lines[1..=want.len()].iter().zip(want) {
        assert!(line.starts_with(r#"{"kind":"entry","index":"#), "{line}");
        let got: serde_json::Value = serde_json::from_str(line).unwrap();
        let index = u64_at(&got, "index");
        assert_eq!(index, u64_at(want, "index"));
        assert_eq!(
            u64_at(&got, "term"),
            u64_at(want, "term"),
            "term of {index}"
        );
        assert_eq!(
            u64_at(&got, "entry_type"),
            u64_at(want, "type"),
            "type of {index}"
        );
        let data = unbase64(&got["data"]);
        assert_eq!(data.len() as u64, u64_at(want, "len"), "size of {index}");
        assert_eq!(crc_hex(&data), want["crc32c"], "data of {index}");
    }
    let hs = &expected["hard_state"];
    assert_eq!(
        lines[lines.len() - 1],
        format!(
            r#"{{"kind":"hard_state","term":{},"vote":{},"commit":{}}}"#,
            u64_at(hs, "term"),
            u64_at(hs, "vote"),
            u64_at(hs, "commit")
        )
    );
}

#[test]
fn an_etcd_data_dir_is_read_through_member_wal() {
    let run = raftwal([
        "dump".as_ref(),
        "--json".as_ref(),
        "--start-index=2105".as_ref(),
        etcd_data_dir().as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json_lines(&run.stdout);
    let indexes: Vec<u64> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| u64_at(l, "index"))
        .collect();
    assert_eq!(indexes, (2105..=2114).collect::<Vec<u64>>());
    assert_eq!(lines[0]["kind"], "metadata");
    assert_eq!(u64_at(&lines[lines.len() - 1], "commit"), 2114);
}

#[test]
fn entry_type_filter_keeps_only_that_type() {
    let run = raftwal([
        "dump".as_ref(),
        "--json".as_ref(),
        "--entry-type".as_ref(),
        "conf-change".as_ref(),
        etcd_data_dir().as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json_lines(&run.stdout);
    let entries: Vec<(u64, u64)> = lines
        .iter()
        .filter(|l| l["kind"] == "entry")
        .map(|l| (u64_at(l, "index"), u64_at(l, "entry_type")))
        .collect();
    // Only the first entry of the fixture, which adds the member, is a conf change.
    assert_eq!(entries, vec![(1, 1)]);
}

#[test]
fn table_dump_shows_each_entry_and_the_hard_state() {
    let run = raftwal([
        "dump".as_ref(),
        "--end-index".as_ref(),
        "3".as_ref(),
        etcd_data_dir().as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|cols: &Vec<&str>| {
            cols.len() >= 4 && cols[..2].iter().all(|c| c.parse::<u64>().is_ok())
        })
        .collect();
    assert_eq!(rows.len(), 3, "{}", run.stdout);
    assert_eq!(rows[0][..4], ["1", "1", "conf-change", "97"]);
    assert_eq!(rows[1][..4], ["2", "2", "normal", "0"]);
    assert!(run
        .stdout
        .contains("HardState term 2, vote 1702147544308264738, commit 2114"));
}

#[test]
fn raw_json_dump_lists_every_record_with_its_file_and_offset() {
    let wal_dir = etcd_data_dir().join("member/wal");
    let expected = etcd_expected();
    let run = raftwal([
        "dump".as_ref(),
        "--raw".as_ref(),
        "--json".as_ref(),
        wal_dir.as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let records = json_lines(&run.stdout);

    for segment in expected["raw"].as_array().unwrap() {
        let name = segment["name"].as_str().unwrap();
        let in_file: Vec<&serde_json::Value> =
            records.iter().filter(|r| r["file"] == name).collect();
        assert_eq!(in_file.len() as u64, u64_at(segment, "records"), "{name}");
        // etcd calls the hard_state record "state".
        for (kind, want) in segment["records_by_type"].as_object().unwrap() {
            let kind = if kind == "state" { "hard_state" } else { kind };
            let count = in_file.iter().filter(|r| r["kind"] == kind).count();
            assert_eq!(count as u64, want.as_u64().unwrap(), "{kind} in {name}");
        }
        let first = &in_file[..4];
        for (got, want) in first
            .iter()
            .zip(segment["first_records"].as_array().unwrap())
        {
            assert_eq!(u64_at(got, "offset"), u64_at(want, "offset"), "{name}");
        }
        let tail = &in_file[in_file.len() - 4..];
        for (got, want) in tail.iter().zip(segment["last_records"].as_array().unwrap()) {
            assert_eq!(u64_at(got, "offset"), u64_at(want, "offset"), "{name}");
        }
        assert_eq!(in_file[0]["kind"], "crc");
        assert_eq!(u64_at(in_file[0], "crc"), u64_at(segment, "crc_at_start"));
        assert_eq!(in_file[1]["kind"], "metadata");
        assert_eq!(in_file[1]["data"], expected["metadata_b64"]);
    }

    let snapshots: Vec<(u64, u64)> = records
        .iter()
        .filter(|r| r["kind"] == "snapshot")
        .map(|r| (u64_at(r, "index"), u64_at(r, "term")))
        .collect();
    let want: Vec<(u64, u64)> = expected["snapshot_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (u64_at(s, "index"), u64_at(s, "term")))
        .collect();
    assert_eq!(snapshots, want);
}

#[test]
fn raw_json_dump_ends_with_an_error_record_at_a_flipped_byte() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    write_log(&dir, 60);
    let (path, offset) = entry_frame_in_segment(&dir, 0);
    flip_byte(&path, offset + 40);

    let run = raftwal([
        "dump".as_ref(),
        "--raw".as_ref(),
        "--json".as_ref(),
        dir.as_os_str(),
    ]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let records = json_lines(&run.stdout);
    let last = records.last().unwrap();
    assert_eq!(last["kind"], "error");
    let name = path.file_name().unwrap().to_str().unwrap();
    assert_eq!(last["file"], name);
    assert_eq!(u64_at(last, "offset"), offset);
    assert!(last["error"].as_str().unwrap().contains("CRC mismatch"));
    // Everything before the damaged frame was listed, up to the frame just before it.
    let before = &records[records.len() - 2];
    assert_eq!(before["file"], name);
    assert!(u64_at(before, "offset") < offset);
    assert_eq!(records[0]["kind"], "crc");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn raw_json_dump_of_a_torn_tail_ends_with_an_error_record_and_exit_code_3() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    write_log(&dir, 30);
    append_big_entry(&dir, 4000);
    let (path, offset) = last_frame(&dir);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(offset + 100)
        .unwrap();

    let run = raftwal([
        "dump".as_ref(),
        "--raw".as_ref(),
        "--json".as_ref(),
        dir.as_os_str(),
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let last = json_lines(&run.stdout).pop().unwrap();
    assert_eq!(last["kind"], "error");
    assert_eq!(u64_at(&last, "offset"), offset);
}

#[test]
fn json_dump_shows_the_log_after_raft_overwrites() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let mut wal = small_segments().create(&dir, b"m").unwrap();
    let first: Vec<_> = (1..=40).map(|i| entry(i, 1)).collect();
    wal.save(&hard_state(1, 30), &first).unwrap();
    // A new leader replaces the uncommitted tail from index 31 on.
    let second: Vec<_> = (31..=35).map(|i| entry(i, 2)).collect();
    wal.save(&hard_state(2, 35), &second).unwrap();
    wal.close().unwrap();

    let run = raftwal(["dump".as_ref(), "--json".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json_lines(&run.stdout);
    let got: Vec<(u64, u64, Vec<u8>)> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| (u64_at(l, "index"), u64_at(l, "term"), unbase64(&l["data"])))
        .collect();
    let want: Vec<(u64, u64, Vec<u8>)> = Wal::open_for_read(&dir, &WalSnapshot::default())
        .unwrap()
        .read_all()
        .unwrap()
        .entries
        .iter()
        .map(|e| (e.index, e.term, e.data.to_vec()))
        .collect();
    assert_eq!(want.len(), 35);
    assert_eq!(got, want);
}

#[test]
fn dump_of_a_purged_log_starts_at_the_first_snapshot_it_can_read_from() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    write_log(&dir, 120);
    let segments = WalOptions::new().segments(&dir).unwrap();
    assert!(segments.len() >= 4);
    // Purge the first two segments, as etcd does once snapshots cover them.
    for s in &segments[..2] {
        std::fs::remove_file(dir.join(&s.file_name)).unwrap();
    }
    let first_left = segments[2].index;
    let snapshot = (first_left..).find(|i| i % 20 == 0).unwrap();

    let run = raftwal(["dump".as_ref(), "--json".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json_lines(&run.stdout);
    let indexes: Vec<u64> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| u64_at(l, "index"))
        .collect();
    assert_eq!(indexes, (snapshot + 1..=120).collect::<Vec<u64>>());

    let table = raftwal(["dump".as_ref(), dir.as_os_str()]);
    assert!(
        table
            .stdout
            .contains(&format!("from      snapshot {{index {snapshot}, term 1}}")),
        "{}",
        table.stdout
    );
}
