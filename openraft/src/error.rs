//! The store's errors, and their mapping into openraft's `StorageError` with the cause kept.

use std::fmt;

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageError, StorageIOError};

/// What can go wrong in the store.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The write-ahead log failed (I/O, damage, a poisoned log).
    Wal(raftwal::Error),
    /// An entry's payload could not be encoded or decoded (openraft index `index`).
    Codec {
        /// The openraft index of the entry.
        index: u64,
        /// What postcard said.
        source: postcard::Error,
    },
    /// A vote for a node id above [`crate::MAX_VOTE_NODE_ID`], which the HardState cannot hold.
    NodeIdTooLarge {
        /// The node id.
        node_id: u64,
    },
    /// The directory holds a WAL that this crate did not create (its metadata differs).
    ForeignLog {
        /// The metadata found.
        metadata: Vec<u8>,
    },
    /// A request that would break the log's invariants (a hole, a truncate of purged entries).
    Invalid(String),
    /// The thread that fires append callbacks could not be started.
    Thread(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Wal(e) => write!(f, "write-ahead log: {e}"),
            Error::Codec { index, source } => {
                write!(f, "encoding of the entry at index {index}: {source}")
            }
            Error::NodeIdTooLarge { node_id } => write!(
                f,
                "node id {node_id} is above {}, the largest a vote can store",
                crate::MAX_VOTE_NODE_ID
            ),
            Error::ForeignLog { metadata } => write!(
                f,
                "the WAL was not created by raftwal-openraft (metadata {:?})",
                String::from_utf8_lossy(metadata)
            ),
            Error::Invalid(reason) => write!(f, "invalid log operation: {reason}"),
            Error::Thread(e) => write!(f, "starting the callback thread: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Wal(e) => Some(e),
            Error::Codec { source, .. } => Some(source),
            Error::Thread(e) => Some(e),
            _ => None,
        }
    }
}

impl From<raftwal::Error> for Error {
    fn from(e: raftwal::Error) -> Error {
        Error::Wal(e)
    }
}

impl Error {
    /// This error as openraft's `StorageError` for `subject` and `verb`; the error and its
    /// chain of causes are kept in the `AnyError`.
    pub fn into_storage_error<NID: openraft::NodeId>(
        self,
        subject: ErrorSubject<NID>,
        verb: ErrorVerb,
    ) -> StorageError<NID> {
        StorageIOError::new(subject, verb, AnyError::new(&self)).into()
    }
}

/// Maps the store's results into openraft's.
// openraft's traits return `StorageError` by value; its size is theirs to choose.
#[allow(clippy::result_large_err)]
pub(crate) trait IntoStorage<T> {
    fn storage<NID: openraft::NodeId>(
        self,
        subject: ErrorSubject<NID>,
        verb: ErrorVerb,
    ) -> Result<T, StorageError<NID>>;
}

#[allow(clippy::result_large_err)]
impl<T, E: Into<Error>> IntoStorage<T> for Result<T, E> {
    fn storage<NID: openraft::NodeId>(
        self,
        subject: ErrorSubject<NID>,
        verb: ErrorVerb,
    ) -> Result<T, StorageError<NID>> {
        self.map_err(|e| e.into().into_storage_error(subject, verb))
    }
}
