//! An [openraft](https://docs.rs/openraft/0.9) log store on raftwal, etcd's write-ahead log.
//!
//! [`LogStore`] implements openraft 0.9's `RaftLogStorage` and `RaftLogReader` (storage-v2)
//! for any `TypeConfig` whose entries are `openraft::Entry<C>` and whose node ids convert to and
//! from `u64`. Its directory is an ordinary etcd WAL: `raftwal verify`, `raftwal dump` and
//! etcd's own tools read it. How openraft's log, vote and committed log id map onto etcd's
//! records is in the crate README.
//!
//! ```
//! use std::io::Cursor;
//!
//! use openraft::storage::RaftLogStorage;
//! use openraft::{Vote, BasicNode};
//! use raftwal::WalOptions;
//! use raftwal_openraft::LogStore;
//!
//! openraft::declare_raft_types!(
//!     pub Config: D = String, R = String, NodeId = u64, Node = BasicNode,
//! );
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let mut store = LogStore::<Config>::open(dir.path().join("raft-log"), WalOptions::new())?;
//! store.save_vote(&Vote::new(1, 1)).await?; // durable when it returns
//! store.close()?;
//!
//! let mut store = LogStore::<Config>::open(dir.path().join("raft-log"), WalOptions::new())?;
//! assert_eq!(store.read_vote().await?, Some(Vote::new(1, 1)));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod codec;
mod error;
mod store;

pub use codec::MAX_VOTE_NODE_ID;
pub use error::Error;
pub use store::{LogReader, LogStore};
