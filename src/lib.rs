//! raftwal: etcd's write-ahead log, byte for byte, as a Rust crate: a durable log for raft-rs
//! nodes, for etcd's own data directories, and for plain journals.
//!
//! # Three ways in
//!
//! **[`RaftStorage`] for raft-rs nodes** (feature `raft`): raft-rs's `Storage` trait on a
//! durable directory laid out like etcd's `member` directory (the WAL in `wal/`, snapshot
//! files in `snap/`). Persist each Ready with [`RaftStorage::save`]; snapshot and compact with
//! [`RaftStorage::snapshot_and_compact`]; reopening the directory after a crash rebuilds the
//! same storage.
//!
//! ```
//! # #[cfg(feature = "raft")]
//! # fn main() -> raftwal::Result<()> {
//! use raft::Storage as _;
//! use raftwal::eraftpb::{ConfState, Entry, HardState};
//! use raftwal::{RaftStorage, StorageOptions};
//!
//! let parent = tempfile::tempdir().unwrap();
//! let dir = parent.path().join("node-1");
//! let voters = ConfState { voters: vec![1, 2, 3], ..Default::default() };
//! let mut storage = RaftStorage::create(&dir, b"node-1", voters, StorageOptions::new())?;
//!
//! // A Ready's entries and HardState, made durable with one fdatasync.
//! let entry = Entry { index: 2, term: 2, data: b"put x=1".to_vec().into(), ..Default::default() };
//! let hard_state = HardState { term: 2, vote: 1, commit: 2, ..Default::default() };
//! storage.save(Some(&hard_state), &[entry])?;
//! storage.close()?;
//!
//! let storage = RaftStorage::open(&dir, StorageOptions::new())?;
//! assert_eq!(storage.last_index(), Ok(2));
//! assert_eq!(storage.initial_state().unwrap().hard_state.commit, 2);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "raft"))]
//! # fn main() {}
//! ```
//!
//! **[`Wal`] for etcd's log itself**: create, append ([`Wal::save`]), cut, release, and read
//! back from a snapshot ([`Wal::read_all`], or streaming with [`Wal::replay`]). A log is a
//! directory of segment files named `%016x-%016x.wal`; each is a run of frames — a
//! little-endian `u64` length word, a protobuf `walpb.Record`, zero padding to 8 bytes —
//! carrying the metadata given at create, raft entries, HardStates, snapshot markers and a
//! CRC-32C chained across segments. etcd reads what raftwal writes and raftwal reads what etcd
//! writes. [`WalOptions`] sets how a log is stored and is the door to everything done with a
//! log directory: create, open, verify, [`check`](WalOptions::check) (the damage verdict every
//! reader shares), repair, read raw records.
//!
//! ```
//! use raftwal::eraftpb::{Entry, HardState};
//! use raftwal::{Wal, WalOptions, WalSnapshot};
//!
//! # fn main() -> raftwal::Result<()> {
//! let parent = tempfile::tempdir().unwrap();
//! let dir = parent.path().join("wal");
//!
//! // Create a log and append two entries with the HardState that commits them.
//! let mut wal = Wal::create(&dir, b"node-1")?;
//! let entries: Vec<Entry> = (1..=2)
//!     .map(|index| Entry { index, term: 1, data: format!("put x={index}").into(), ..Default::default() })
//!     .collect();
//! let hard_state = HardState { term: 1, commit: 2, ..Default::default() };
//! wal.save(&hard_state, &entries)?; // durable when it returns
//! wal.close()?;
//!
//! // Check it as `raftwal verify` would, then reopen from the beginning and read it back.
//! assert!(WalOptions::new().check(&dir)?.is_sound());
//! let mut wal = Wal::open(&dir, &WalSnapshot::default())?;
//! let recovered = wal.read_all()?;
//! assert_eq!(recovered.metadata, b"node-1");
//! assert_eq!(recovered.hard_state.commit, 2);
//! assert_eq!(recovered.entries, entries);
//! # Ok(())
//! # }
//! ```
//!
//! **[`AppLog`] for plain journals**: durable byte records numbered from 1, replay from any
//! index, and truncation of the front after a checkpoint, on the same engine (the directory is
//! an ordinary etcd WAL, so the CLI works on it). [`SharedWal`] adds group commit: many
//! threads' saves made durable by one fdatasync. A [`Journal`] adds checkpoints, typed records
//! and completions on top, on any [`store::Store`] (see [`journal`]).
//!
//! ```
//! use raftwal::{AppLog, WalOptions};
//!
//! # fn main() -> raftwal::Result<()> {
//! let parent = tempfile::tempdir().unwrap();
//! let dir = parent.path().join("journal");
//! let mut log = AppLog::create(&dir, WalOptions::new())?;
//! log.append(b"debit alice 10")?;
//! log.append(b"credit bob 10")?;
//! log.close()?;
//!
//! let mut log = AppLog::open(&dir, WalOptions::new())?;
//! let records: Vec<(u64, Vec<u8>)> = log.replay_from(1)?.collect::<raftwal::Result<_>>()?;
//! assert_eq!(records[1], (2, b"credit bob 10".to_vec()));
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `raft`: [`RaftStorage`], raft-rs's `Storage` on a raftwal storage (pulls the `raft`
//!   crate, which raft-rs users have already).
//! - `sim`: [`fs::sim`], the simulated crashing disk, for tests of code built on raftwal.
//! - `protobuf-codec` (default) or `prost-codec`: raft-rs's codec for its types, the one your
//!   `raft` dependency uses (exactly one; `prost-codec` needs `protoc` to build raft-proto).
//! - `postcard`: `journal::Postcard`, journal records of any serde type.
//! - `etcd`: `store::etcd`, a journal's store in an etcd cluster with one fenced writer
//!   (building it needs `protoc`, Debian's `protobuf-compiler`).
//!
//! Damage is never read as a clean end of the log: see [`Verdict`], [`Error::is_torn`],
//! [`Error::is_corruption`] and `docs/DURABILITY.md`.
#![warn(missing_docs)]

#[cfg(all(feature = "protobuf-codec", feature = "prost-codec"))]
compile_error!(
    "features `protobuf-codec` and `prost-codec` are exclusive: with prost-codec, turn off \
     raftwal's default features"
);
#[cfg(not(any(feature = "protobuf-codec", feature = "prost-codec")))]
compile_error!("raftwal needs one codec feature: `protobuf-codec` (the default) or `prost-codec`");

mod applog;
mod commit;
mod decoder;
mod encoder;
#[cfg(feature = "raft")]
mod entry_index;
mod error;
pub mod frame;
pub mod fs;
pub mod inspect;
pub mod journal;
pub mod observe;
mod options;
#[cfg(feature = "raft")]
mod raft_storage;
mod record;
mod repair;
mod segment;
mod segment_pipeline;
mod snap;
mod storage;
pub mod store;
mod wal;

pub use applog::{AppLog, AppReplay};
pub use commit::{Completion, SharedWal, SyncPolicy};
pub use decoder::{EntryRun, TornTail, Verdict};
pub use error::{Error, Result};
pub use journal::Journal;
pub use options::{WalOptions, DEFAULT_REPLAY_READ_SIZE};
#[cfg(feature = "raft")]
pub use raft_storage::RaftStorage;
pub use record::{walpb, RecordType, WalSnapshot};
pub use repair::{ForcedCut, Repaired};
pub use segment::{SegmentName, DEFAULT_SEGMENT_SIZE};
pub use snap::{SnapName, Snapshotter};
pub use storage::{
    Restored, Storage, StorageOptions, DEFAULT_ENTRY_CACHE_BYTES, SNAP_DIR, WAL_DIR,
};
pub use wal::{LogRecord, Recovered, Replay, Wal};

/// The raft types the log stores, re-exported from raft-proto.
pub use raft_proto::eraftpb;

/// The README's examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
