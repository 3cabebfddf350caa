//! `raftwal bench --quick`: the report's shape, never its speed (no timing assertions).

mod cli_common;

use cli_common::raftwal;
use serde_json::Value;

/// Runs `bench --quick --json` in a fresh directory and returns the report.
fn quick_report() -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().unwrap();
    let run = raftwal(
        ["bench", "--quick", "--json", "--dir"]
            .map(std::ffi::OsString::from)
            .into_iter()
            .chain([dir.path().as_os_str().to_owned()]),
    );
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let report: Value = serde_json::from_str(run.stdout.trim()).expect("one JSON object");
    (dir, report)
}

fn positive(report: &Value, section: &str, key: &str) -> f64 {
    let value = report[section][key]
        .as_f64()
        .unwrap_or_else(|| panic!("{section}.{key} is a number in {report}"));
    assert!(value > 0.0, "{section}.{key} = {value}");
    value
}

#[test]
fn bench_json_reports_every_workload_with_positive_rates_and_ratios() {
    let (_dir, report) = quick_report();
    assert_eq!(report["quick"], Value::Bool(true));
    for key in [
        "raw_per_sec",
        "raftwal_per_sec",
        "ratio",
        "raw_p50_us",
        "raw_p99_us",
        "raftwal_p50_us",
        "raftwal_p99_us",
    ] {
        positive(&report, "synced_saves", key);
    }
    for section in ["sequential_write", "replay"] {
        for key in ["raw_mb_per_sec", "raftwal_mb_per_sec", "ratio"] {
            positive(&report, section, key);
        }
        assert!(report[section]["mib"].as_u64().unwrap() > 0);
    }
    positive(&report, "group_commit", "raftwal_per_sec");
    positive(&report, "group_commit", "ratio_to_raw_synced");
    assert!(report["group_commit"]["writers"].as_u64().unwrap() > 1);
}

#[test]
fn bench_removes_what_it_wrote() {
    let (dir, _) = quick_report();
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "bench left {left:?}");
}

#[test]
fn bench_table_names_each_workload_and_the_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let run = raftwal(
        ["bench", "--quick", "--dir"]
            .map(std::ffi::OsString::from)
            .into_iter()
            .chain([dir.path().as_os_str().to_owned()]),
    );
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    for needle in [
        "synced saves",
        "sequential write",
        "replay",
        "group commit",
        "ratio",
    ] {
        assert!(
            run.stdout.contains(needle),
            "{needle} missing from:\n{}",
            run.stdout
        );
    }
}

#[test]
fn bench_in_a_missing_parent_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let run = raftwal(
        ["bench", "--quick", "--dir"]
            .map(std::ffi::OsString::from)
            .into_iter()
            .chain([file.as_os_str().to_owned()]),
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr.lines().count(), 1, "stderr: {}", run.stderr);
}
