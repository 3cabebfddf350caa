//! Sector sweeps: on a multi-segment log whose every save was synced, zero each 512-byte sector,
//! fill each with random bytes, empty each segment and truncate it at every sector boundary.
//! Every case must be an error naming the damaged segment and an offset in it, or a read that
//! returns every entry: never a sound, shorter log. The verdict of `WalOptions::check` and of
//! opening the log for write must agree.

use std::fs;
use std::path::{Path, PathBuf};

use raftwal::eraftpb::{Entry, HardState};
use raftwal::frame::SECTOR_SIZE;
use raftwal::fs::sim::XorShift;
use raftwal::{Verdict, WalOptions, WalSnapshot};

/// Small segments: a few dozen entries reach several cuts.
fn options() -> WalOptions {
    WalOptions::new().segment_size(4096)
}

/// A log of `count` entries of 60 to 300 bytes, each saved (and synced) with the HardState that
/// commits it, and a snapshot marker every 25 entries.
fn synced_log(dir: &Path, count: u64) -> Vec<Entry> {
    let mut wal = options().create(dir, b"sweep").unwrap();
    let mut rng = XorShift::new(11);
    let mut entries = Vec::new();
    for index in 1..=count {
        let mut data = vec![0u8; 60 + rng.below(240) as usize];
        rng.fill(&mut data);
        let entry = Entry {
            index,
            term: 1,
            data: data.into(),
            ..Default::default()
        };
        let hs = HardState {
            term: 1,
            vote: 1,
            commit: index,
            ..Default::default()
        };
        wal.save(&hs, std::slice::from_ref(&entry)).unwrap();
        if index % 25 == 0 {
            wal.save_snapshot_marker(&WalSnapshot::new(index, 1))
                .unwrap();
        }
        entries.push(entry);
    }
    wal.close().unwrap();
    entries
}

fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    WalOptions::new()
        .segments(dir)
        .unwrap()
        .iter()
        .map(|s| dir.join(&s.file_name))
        .collect()
}

/// What one damaged state read as.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Every entry came back.
    Whole,
    /// A torn tail or corruption named in the damaged segment.
    Named(&'static str),
}

/// Reads the damaged log two ways and checks the rule; `damaged` is the segment that was hit.
fn check_case(dir: &Path, damaged: &Path, expected: &[Entry], what: &str) -> Outcome {
    let verdict = options()
        .check(dir)
        .unwrap_or_else(|e| panic!("{what}: check could not read: {e}"));
    let opened = options()
        .open(dir, &WalSnapshot::default())
        .and_then(|mut wal| {
            let recovered = wal.read_all();
            wal.close().and(recovered)
        });
    match opened {
        Ok(recovered) => {
            assert!(
                recovered.entries == expected,
                "{what}: read {} entries of {} as a sound log",
                recovered.entries.len(),
                expected.len()
            );
            assert!(
                matches!(verdict, Verdict::Sound),
                "{what}: the log opened whole but check says {} at {:?}",
                verdict.name(),
                verdict.position()
            );
            Outcome::Whole
        }
        Err(err) => {
            let len = fs::metadata(damaged).unwrap().len();
            let (file, offset) = err
                .position()
                .unwrap_or_else(|| panic!("{what}: an error naming no position: {err}"));
            assert!(
                file == damaged && offset <= len,
                "{what}: the error names {}:{offset}, not the damaged segment: {err}",
                file.display()
            );
            assert_eq!(
                verdict.position(),
                err.position(),
                "{what}: check and open disagree ({} vs {err})",
                verdict.name()
            );
            let kind = if err.is_torn() { "torn" } else { "corrupt" };
            assert_eq!(verdict.name(), kind, "{what}: {err}");
            assert!(err.is_torn() || err.is_corruption(), "{what}: {err}");
            Outcome::Named(kind)
        }
    }
}

#[test]
fn no_sector_damage_reads_as_a_sound_shorter_log() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let expected = synced_log(&dir, 300);
    let segments = segment_paths(&dir);
    assert!(segments.len() >= 10, "{segments:?}");
    let mut rng = XorShift::new(7);
    let mut counts: std::collections::BTreeMap<(&str, Outcome), u64> = Default::default();
    for path in &segments {
        let original = fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let sectors = (original.len() as u64).div_ceil(SECTOR_SIZE);
        for sector in 0..sectors {
            let start = (sector * SECTOR_SIZE) as usize;
            let end = (start + SECTOR_SIZE as usize).min(original.len());
            for kind in ["zeroed sector", "random sector"] {
                let mut damaged = original.clone();
                if kind == "zeroed sector" {
                    damaged[start..end].fill(0);
                } else {
                    rng.fill(&mut damaged[start..end]);
                }
                fs::write(path, &damaged).unwrap();
                let what = format!("{name}: {kind} {sector} ({start}..{end})");
                *counts
                    .entry((kind, check_case(&dir, path, &expected, &what)))
                    .or_default() += 1;
            }
        }
        for len in (0..original.len()).step_by(SECTOR_SIZE as usize) {
            fs::write(path, &original[..len]).unwrap();
            let kind = if len == 0 { "emptied" } else { "truncated" };
            let what = format!("{name}: {kind} to {len} bytes");
            *counts
                .entry((kind, check_case(&dir, path, &expected, &what)))
                .or_default() += 1;
        }
        fs::write(path, &original).unwrap();
    }
    let total: u64 = counts.values().sum();
    println!(
        "sector sweep over {} segments: {total} damaged states; {counts:?}; 0 read as a sound \
         shorter log",
        segments.len()
    );
    // Every emptied segment lost its header: corruption, in every segment.
    assert_eq!(
        counts.get(&("emptied", Outcome::Named("corrupt"))),
        Some(&(segments.len() as u64))
    );
}
