//! What the log's records carry: the record types, etcd's `walpb` messages, and the conversion
//! of raft types to and from their bytes (raft-proto's own codec, wire-compatible with etcd's
//! raftpb).

use protobuf::Message as _;
use raft_proto::eraftpb::{ConfState, Entry, HardState};

/// etcd's `walpb` messages, generated from `proto/walpb.proto`.
pub mod walpb {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/walpb.rs"));
}

/// The type of a WAL record (etcd's numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum RecordType {
    /// Opaque bytes given to `create`, repeated at the start of every segment.
    Metadata = 1,
    /// A raft `Entry`.
    Entry = 2,
    /// A raft `HardState`.
    State = 3,
    /// The running CRC at the start of a segment; carries no data.
    Crc = 4,
    /// A [`WalSnapshot`] marker.
    Snapshot = 5,
}

impl RecordType {
    /// The record type for etcd's numeric type, if it is one.
    pub fn from_i64(value: i64) -> Option<RecordType> {
        Some(match value {
            1 => RecordType::Metadata,
            2 => RecordType::Entry,
            3 => RecordType::State,
            4 => RecordType::Crc,
            5 => RecordType::Snapshot,
            _ => return None,
        })
    }

    /// The lower-case name used by the CLI's JSON output.
    pub fn name(self) -> &'static str {
        match self {
            RecordType::Metadata => "metadata",
            RecordType::Entry => "entry",
            RecordType::State => "hard_state",
            RecordType::Crc => "crc",
            RecordType::Snapshot => "snapshot",
        }
    }
}

/// A snapshot marker in the log (etcd's `walpb.Snapshot`): the raft index and term a snapshot
/// covers. Opening the log at a snapshot reads only what follows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WalSnapshot {
    /// Index of the last entry the snapshot covers.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
    /// The membership at that index, if recorded.
    pub conf_state: Option<ConfState>,
}

impl WalSnapshot {
    /// A marker for `index` and `term` without a membership.
    pub fn new(index: u64, term: u64) -> WalSnapshot {
        WalSnapshot {
            index,
            term,
            conf_state: None,
        }
    }

    /// The record data: `walpb.Snapshot` with index and term always present, as etcd writes it.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let conf_state = self
            .conf_state
            .as_ref()
            .map(|cs| cs.write_to_bytes().unwrap_or_default());
        prost::Message::encode_to_vec(&walpb::Snapshot {
            index: Some(self.index),
            term: Some(self.term),
            conf_state,
        })
    }

    /// Parses record data written by [`WalSnapshot::encode`] or by etcd.
    pub(crate) fn decode(data: &[u8]) -> Result<WalSnapshot, String> {
        let snap: walpb::Snapshot = prost::Message::decode(data).map_err(|e| e.to_string())?;
        let conf_state = match snap.conf_state {
            Some(bytes) => Some(decode_message::<ConfState>(&bytes)?),
            None => None,
        };
        Ok(WalSnapshot {
            index: snap.index.unwrap_or(0),
            term: snap.term.unwrap_or(0),
            conf_state,
        })
    }
}

/// Parses a raft message. Under either codec feature raft-proto's types implement
/// `protobuf::Message`, but with `prost-codec` only through wrappers that delegate
/// `merge_from_bytes` and `write_to_bytes` to prost (the stream-based methods, which
/// `parse_from_bytes` and `write_to_vec` use, panic there); these two work with both.
pub(crate) fn decode_message<M: protobuf::Message>(data: &[u8]) -> Result<M, String> {
    let mut message = M::new();
    message.merge_from_bytes(data).map_err(|e| e.to_string())?;
    Ok(message)
}

/// Appends the encoding of a raft message to `buf` (see [`decode_message`] on the codecs),
/// allocating nothing once `buf` is large enough.
#[cfg(not(feature = "prost-codec"))]
pub(crate) fn encode_message_into<M: protobuf::Message>(
    message: &M,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    message.write_to_vec(buf).map_err(|e| e.to_string())
}

/// Appends the encoding of a raft message to `buf` (see [`decode_message`] on the codecs),
/// allocating nothing once `buf` is large enough.
#[cfg(feature = "prost-codec")]
pub(crate) fn encode_message_into<M: raft_prost::Message>(
    message: &M,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    message.encode(buf).map_err(|e| e.to_string())
}

/// Parses an entry record's data.
pub(crate) fn decode_entry(data: &[u8]) -> Result<Entry, String> {
    decode_message(data)
}

/// Parses a state record's data.
pub(crate) fn decode_hard_state(data: &[u8]) -> Result<HardState, String> {
    decode_message(data)
}

/// Whether `hs` is raft's empty HardState (nothing to persist).
pub(crate) fn is_empty_hard_state(hs: &HardState) -> bool {
    hs.term == 0 && hs.vote == 0 && hs.commit == 0
}

/// raft's MustSync: new entries, or a changed term or vote, must be durable before the node
/// acts on them; a commit-only change may be lost and recomputed.
pub(crate) fn must_sync(new: &HardState, prev: &HardState, entry_count: usize) -> bool {
    entry_count != 0 || new.vote != prev.vote || new.term != prev.term
}
