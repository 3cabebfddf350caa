//! raftwal: etcd's write-ahead log, byte for byte, for raft-rs.
//!
//! A log is a directory of segment files named `%016x-%016x.wal` (sequence number, first raft
//! index). Each segment is a run of frames — a little-endian `u64` length word, a protobuf
//! `walpb.Record`, zero padding to 8 bytes — whose records carry the metadata given at create,
//! raft entries, HardStates, snapshot markers and a CRC-32C chained across segments. etcd reads
//! what raftwal writes and raftwal reads what etcd writes.
//!
//! ```
//! use raft_proto::eraftpb::{Entry, HardState};
//! use raftwal::{Wal, WalSnapshot};
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
//! let mut hard_state = HardState::default();
//! hard_state.term = 1;
//! hard_state.commit = 2;
//! wal.save(&hard_state, &entries)?; // durable when it returns
//! wal.close()?;
//!
//! // Reopen from the beginning (the empty snapshot) and read everything back.
//! let mut wal = Wal::open(&dir, &WalSnapshot::default())?;
//! let recovered = wal.read_all()?;
//! assert_eq!(recovered.metadata, b"node-1");
//! assert_eq!(recovered.hard_state.commit, 2);
//! assert_eq!(recovered.entries, entries);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod applog;
mod commit;
mod decoder;
mod encoder;
mod error;
pub mod frame;
pub mod fs;
pub mod inspect;
pub mod observe;
#[cfg(feature = "raft")]
mod raft_storage;
mod record;
mod repair;
mod segment;
mod segment_pipeline;
mod snap;
mod storage;
mod wal;

pub use applog::{AppLog, AppReplay};
pub use commit::{Completion, SharedWal, SyncPolicy};
pub use decoder::{EntryRun, TornTail, Verdict};
pub use error::{Error, Result};
#[cfg(feature = "raft")]
pub use raft_storage::RaftStorage;
pub use record::{is_empty_hard_state, must_sync, walpb, RecordType, WalSnapshot};
pub use repair::{
    plan_forced_cut, repair, repair_at, repair_at_with, repair_with, ForcedCut, Repaired,
};
pub use segment::{SegmentName, DEFAULT_SEGMENT_SIZE};
pub use snap::{decode_snap_file, encode_snap_file, SnapName, Snapshotter};
pub use storage::{storage_exists, Restored, Storage, StorageOptions, SNAP_DIR, WAL_DIR};
pub use wal::{
    apply_entry, exists, valid_snapshot_entries, valid_snapshot_entries_with, verify, verify_with,
    LogRecord, Options, Recovered, Replay, Wal, DEFAULT_REPLAY_READ_SIZE,
};

/// The raft types the log stores, re-exported from raft-proto.
pub use raft_proto::eraftpb;

/// The README's examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
