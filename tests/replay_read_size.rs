//! `Options::replay_read_size` only changes how a segment is read, never what is read: every
//! size gives the same records from an intact log and the same error, file and offset from a
//! damaged one.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use raftwal::eraftpb::{Entry, HardState};
use raftwal::fs::sim::{SimFs, XorShift};
use raftwal::fs::FileSystem as _;
use raftwal::{WalOptions, WalSnapshot, DEFAULT_REPLAY_READ_SIZE};

const DIR: &str = "/wal";

/// Sizes below a frame, across sector and frame boundaries, and the default.
const READ_SIZES: [usize; 6] = [1, 7, 100, 513, 4096, DEFAULT_REPLAY_READ_SIZE];

fn options(fs: &SimFs, replay_read_size: usize) -> WalOptions {
    WalOptions::new()
        .segment_size(4096)
        .file_system(Arc::new(fs.clone()))
        .prepare_segments_in_background(false)
        .replay_read_size(replay_read_size)
}

/// A log over several segments with entries of up to `max_entry` bytes (some larger than the
/// smaller read sizes) and a snapshot marker.
fn log(seed: u64, max_entry: u64) -> SimFs {
    let fs = SimFs::new();
    let mut wal = options(&fs, DEFAULT_REPLAY_READ_SIZE)
        .create(DIR, b"read size")
        .unwrap();
    let mut rng = XorShift::new(seed);
    for index in 1..=30u64 {
        let mut data = vec![0u8; rng.below(max_entry) as usize];
        rng.fill(&mut data);
        let entry = Entry {
            index,
            term: 1,
            data: data.into(),
            ..Default::default()
        };
        let hs = HardState {
            term: 1,
            commit: index,
            ..Default::default()
        };
        wal.save(&hs, &[entry]).unwrap();
        if index == 15 {
            wal.save_snapshot_marker(&WalSnapshot::new(15, 1)).unwrap();
        }
    }
    wal.close().unwrap();
    fs
}

/// What reading the log with `read_size` gives, as text (records or the error with its offset).
fn read_with(fs: &SimFs, read_size: usize) -> String {
    let read = options(fs, read_size)
        .open_for_read(DIR, &WalSnapshot::default())
        .and_then(|mut wal| wal.read_all());
    let verified = options(fs, read_size).verify(DIR, &WalSnapshot::default());
    format!("{read:?}\n{verified:?}")
}

fn segment_paths(fs: &SimFs) -> Vec<std::path::PathBuf> {
    let mut names = fs.list_dir(Path::new(DIR)).unwrap();
    names.sort();
    names.iter().map(|n| Path::new(DIR).join(n)).collect()
}

#[test]
fn an_intact_log_reads_the_same_at_every_read_size() {
    let fs = log(1, 900);
    assert!(
        segment_paths(&fs).len() >= 3,
        "the log should span segments"
    );
    let expected = read_with(&fs, DEFAULT_REPLAY_READ_SIZE);
    assert!(expected.starts_with("Ok("), "{expected}");
    for size in READ_SIZES {
        assert_eq!(read_with(&fs, size), expected, "read size {size}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn damage_is_reported_the_same_at_every_read_size(
        seed in 0u64..1000,
        segment_pick in any::<prop::sample::Index>(),
        offset_pick in any::<prop::sample::Index>(),
        bit in 0u8..8,
        truncate in any::<bool>(),
    ) {
        let fs = log(seed, 900);
        let paths = segment_paths(&fs);
        let path = segment_pick.get(&paths);
        let mut bytes = fs.read_file(path).unwrap();
        let offset = offset_pick.index(bytes.len());
        if truncate {
            bytes.truncate(offset);
        } else {
            bytes[offset] ^= 1 << bit;
        }
        fs.write_file(path, &bytes).unwrap();
        let expected = read_with(&fs, DEFAULT_REPLAY_READ_SIZE);
        for size in READ_SIZES {
            prop_assert_eq!(read_with(&fs, size), expected.clone(), "read size {}", size);
        }
    }
}
