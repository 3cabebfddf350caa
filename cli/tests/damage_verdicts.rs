//! One verdict for every reader: for each kind of damage, `raftwal verify`, `stat --json`,
//! `dump --raw --json`, `repair --dry-run`, `Wal::open` and `Storage::open` all say the same
//! thing — sound, torn or corrupt — and name the same file and offset.

mod cli_common;

use std::fs;
use std::path::{Path, PathBuf};

use cli_common::{json_lines, raftwal};
use raftwal::eraftpb::{Entry, HardState};
use raftwal::fs::sim::XorShift;
use raftwal::{Storage, StorageOptions, WalOptions, WalSnapshot};

/// What one path said: the verdict and where.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    verdict: &'static str,
    /// Segment file name and offset, for torn and corrupt.
    at: Option<(String, u64)>,
}

impl Seen {
    fn sound() -> Seen {
        Seen {
            verdict: "sound",
            at: None,
        }
    }

    fn at(verdict: &'static str, file: &Path, offset: u64) -> Seen {
        Seen {
            verdict,
            at: Some((name_of(file), offset)),
        }
    }
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn wal_options() -> WalOptions {
    WalOptions::new().segment_size(4096)
}

fn storage_options() -> StorageOptions {
    StorageOptions::new().wal(wal_options()).keep_snapshots(2)
}

/// A storage whose every save was synced: 90 entries over several segments.
fn synced_storage(dir: &Path) {
    let mut storage = Storage::create(dir, b"verdicts", storage_options()).unwrap();
    for index in 1..=90u64 {
        let entry = Entry {
            index,
            term: 1,
            data: format!("put key{index} {}", "v".repeat(90)).into(),
            ..Default::default()
        };
        let hs = HardState {
            term: 1,
            vote: 1,
            commit: index,
            ..Default::default()
        };
        storage.save(&hs, &[entry]).unwrap();
    }
    storage.close().unwrap();
}

/// The log's segment paths and, per segment, its records' frame offsets and the end of the
/// last one.
struct Layout {
    segments: Vec<PathBuf>,
    last_frame: u64,
    records_end: u64,
    middle_entry: u64,
}

fn layout(wal_dir: &Path) -> Layout {
    let segments: Vec<PathBuf> = WalOptions::new()
        .segments(wal_dir)
        .unwrap()
        .iter()
        .map(|s| wal_dir.join(&s.file_name))
        .collect();
    let records: Vec<_> = WalOptions::new()
        .raw_records(wal_dir)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let last_name = name_of(segments.last().unwrap());
    let last = records.iter().rfind(|r| r.file == last_name).unwrap();
    let bytes = fs::read(segments.last().unwrap()).unwrap();
    let word = u64::from_le_bytes(bytes[last.offset as usize..][..8].try_into().unwrap());
    let middle_name = name_of(&segments[1]);
    let middle_entry = records
        .iter()
        .filter(|r| r.file == middle_name && r.kind == raftwal::RecordType::Entry)
        .nth(2)
        .unwrap()
        .offset;
    Layout {
        last_frame: last.offset,
        records_end: last.offset + raftwal::frame::frame_size(word).unwrap(),
        segments,
        middle_entry,
    }
}

/// A kind of damage: its name, what it does to the log, and the verdict it must get.
struct Case {
    name: &'static str,
    damage: fn(&Layout),
    expected: fn(&Layout) -> Seen,
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let mut content = fs::read(path).unwrap();
    let end = offset as usize + bytes.len();
    if content.len() < end {
        content.resize(end, 0);
    }
    content[offset as usize..end].copy_from_slice(bytes);
    fs::write(path, content).unwrap();
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    XorShift::new(seed).fill(&mut bytes);
    bytes
}

fn last(l: &Layout) -> &Path {
    l.segments.last().unwrap()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "no damage",
            damage: |_| {},
            expected: |_| Seen::sound(),
        },
        Case {
            name: "the last segment's first sector zeroed",
            damage: |l| write_at(last(l), 0, &[0; 512]),
            expected: |l| Seen::at("corrupt", last(l), 0),
        },
        Case {
            name: "random bytes over the last segment's first sector",
            damage: |l| write_at(last(l), 0, &random(512, 1)),
            expected: |l| Seen::at("corrupt", last(l), 0),
        },
        Case {
            name: "the last segment emptied",
            damage: |l| fs::write(last(l), b"").unwrap(),
            expected: |l| Seen::at("corrupt", last(l), 0),
        },
        Case {
            name: "a middle segment of random bytes",
            damage: |l| {
                let len = fs::metadata(&l.segments[1]).unwrap().len() as usize;
                fs::write(&l.segments[1], random(len, 2)).unwrap();
            },
            expected: |l| Seen::at("corrupt", &l.segments[1], 0),
        },
        Case {
            name: "a middle segment's header zeroed",
            damage: |l| write_at(&l.segments[1], 0, &[0; 64]),
            expected: |l| Seen::at("corrupt", &l.segments[1], 0),
        },
        Case {
            name: "a bit flipped in a middle segment's entry",
            damage: |l| {
                let at = l.middle_entry + 40;
                let byte = fs::read(&l.segments[1]).unwrap()[at as usize];
                write_at(&l.segments[1], at, &[byte ^ 0x10]);
            },
            expected: |l| Seen::at("corrupt", &l.segments[1], l.middle_entry),
        },
        Case {
            name: "a huge length word at the last frame",
            damage: |l| write_at(last(l), l.last_frame, &(1u64 << 40).to_le_bytes()),
            expected: |l| Seen::at("corrupt", last(l), l.last_frame),
        },
        Case {
            // A lost sector of a write whose next sector persisted.
            name: "data in a sector after the end of the records",
            damage: |l| write_at(last(l), (l.records_end / 512 + 1) * 512, &random(100, 3)),
            expected: |l| Seen::at("torn", last(l), l.records_end),
        },
        Case {
            // No crash writes part of a sector: the zero word there is damage.
            name: "data after a zero word in the same sector",
            damage: |l| {
                let sector_end = (l.records_end / 512 + 1) * 512;
                write_at(last(l), sector_end - 16, &random(16, 4));
            },
            expected: |l| Seen::at("corrupt", last(l), l.records_end),
        },
        Case {
            name: "the last frame cut short",
            damage: |l| {
                let file = fs::OpenOptions::new().write(true).open(last(l)).unwrap();
                file.set_len(l.last_frame + 12).unwrap();
            },
            expected: |l| Seen::at("torn", last(l), l.last_frame),
        },
    ]
}

/// `raftwal verify`: its exit code, and the file and offset its message names.
fn via_verify(wal_dir: &Path, expected: &Seen) -> Seen {
    let run = raftwal(["verify".as_ref(), wal_dir.as_os_str()]);
    via_exit_code(run.code, &run.stderr, expected, "verify")
}

/// `raftwal repair --dry-run`: a torn tail is reported on stdout with exit 0 (nothing to do but
/// say it), corruption is refused with exit 4.
fn via_repair_dry_run(wal_dir: &Path, expected: &Seen) -> Seen {
    let run = raftwal(["repair".as_ref(), "--dry-run".as_ref(), wal_dir.as_os_str()]);
    match run.code {
        0 if run.stdout.starts_with("nothing to repair") => Seen::sound(),
        0 if run.stdout.starts_with("torn tail") => named("torn", &run.stdout, expected),
        4 => named("corrupt", &run.stderr, expected),
        code => panic!(
            "repair --dry-run: exit {code}: {} {}",
            run.stdout, run.stderr
        ),
    }
}

fn via_exit_code(code: i32, message: &str, expected: &Seen, what: &str) -> Seen {
    match code {
        0 => Seen::sound(),
        3 => named("torn", message, expected),
        4 => named("corrupt", message, expected),
        code => panic!("{what}: exit {code}: {message}"),
    }
}

/// The verdict with the position the message names, when it names the expected one (a text
/// message is checked for the file and `offset N`, not parsed).
fn named(verdict: &'static str, message: &str, expected: &Seen) -> Seen {
    let at = expected.at.clone().filter(|(file, offset)| {
        message.contains(file.as_str()) && message.contains(&format!("offset {offset}"))
    });
    Seen { verdict, at }
}

/// `raftwal stat --json`: its `damage` object.
fn via_stat(wal_dir: &Path) -> Seen {
    let run = raftwal(["stat".as_ref(), "--json".as_ref(), wal_dir.as_os_str()]);
    let stat: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stat --json: {e}: {} {}", run.stdout, run.stderr));
    let damage = &stat["damage"];
    if damage.is_null() {
        assert_eq!(run.code, 0, "{}", run.stderr);
        return Seen::sound();
    }
    let verdict = match damage["kind"].as_str() {
        Some("torn_tail") => "torn",
        Some("corrupt") => "corrupt",
        other => panic!("stat: damage kind {other:?}"),
    };
    Seen {
        verdict,
        at: Some((
            damage["file"].as_str().unwrap().to_string(),
            damage["offset"].as_u64().unwrap(),
        )),
    }
}

/// `raftwal dump --raw --json`: the error record that ends it.
fn via_dump_raw(wal_dir: &Path) -> Seen {
    let run = raftwal([
        "dump".as_ref(),
        "--raw".as_ref(),
        "--json".as_ref(),
        wal_dir.as_os_str(),
    ]);
    let lines = json_lines(&run.stdout);
    let last = lines.last().expect("dump printed records");
    if last["kind"] != "error" {
        assert_eq!(run.code, 0, "{}", run.stderr);
        return Seen::sound();
    }
    let verdict = match run.code {
        3 => "torn",
        4 => "corrupt",
        code => panic!("dump --raw: exit {code}: {}", run.stderr),
    };
    Seen {
        verdict,
        at: Some((
            last["file"].as_str().unwrap().to_string(),
            last["offset"].as_u64().unwrap(),
        )),
    }
}

fn of_error(err: &raftwal::Error) -> Seen {
    let verdict = if err.is_torn() {
        "torn"
    } else if err.is_corruption() {
        "corrupt"
    } else {
        panic!("neither torn nor corrupt: {err}")
    };
    let (file, offset) = err
        .position()
        .unwrap_or_else(|| panic!("no position: {err}"));
    Seen::at(verdict, file, offset)
}

fn via_wal_open(wal_dir: &Path) -> Seen {
    let opened = wal_options()
        .open(wal_dir, &WalSnapshot::default())
        .and_then(|mut wal| wal.read_all());
    match opened {
        Ok(_) => Seen::sound(),
        Err(e) => of_error(&e),
    }
}

/// `Storage::open`, which repairs a torn tail (so it runs last).
fn via_storage_open(dir: &Path) -> Seen {
    match Storage::open(dir, storage_options()) {
        Ok((_, restored)) => match restored.repaired {
            None => Seen::sound(),
            Some(repaired) => Seen::at("torn", &repaired.file, repaired.offset),
        },
        Err(e) => of_error(&e),
    }
}

#[test]
fn every_reader_gives_the_same_verdict_at_the_same_place() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("node");
    synced_storage(&dir);
    let wal_dir = dir.join(raftwal::WAL_DIR);
    let layout = layout(&wal_dir);
    assert!(layout.segments.len() >= 3, "{:?}", layout.segments);
    let originals: Vec<Vec<u8>> = layout
        .segments
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();

    for case in cases() {
        (case.damage)(&layout);
        let expected = (case.expected)(&layout);
        let seen = [
            ("verify", via_verify(&wal_dir, &expected)),
            ("stat --json", via_stat(&wal_dir)),
            ("dump --raw --json", via_dump_raw(&wal_dir)),
            ("repair --dry-run", via_repair_dry_run(&wal_dir, &expected)),
            ("Wal::open", via_wal_open(&wal_dir)),
            ("Storage::open", via_storage_open(&dir)),
        ];
        for (path, seen) in &seen {
            assert_eq!(seen, &expected, "{}: {path}", case.name);
        }
        println!(
            "{:<52} {:<8} {:?}: the same from all {} readers",
            case.name,
            expected.verdict,
            expected.at,
            seen.len()
        );
        for (path, original) in layout.segments.iter().zip(&originals) {
            fs::write(path, original).unwrap();
        }
        for entry in fs::read_dir(&wal_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "broken") {
                fs::remove_file(path).unwrap();
            }
        }
    }
}
