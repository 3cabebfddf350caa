//! The mapping of openraft's log onto etcd's records: what goes into an etcd `Entry` and into
//! the `HardState`. See the crate README for the whole table.

use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftTypeConfig, Vote};
use raftwal::eraftpb::{self, EntryType, HardState};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The WAL metadata of a log this crate created (format and version of the mapping).
pub(crate) const METADATA: &[u8] = b"raftwal-openraft/1";

/// The etcd index of the openraft index `index`: etcd's log starts at 1 (index 0 is the empty
/// snapshot every log is created with), openraft's at 0.
pub(crate) fn etcd_index(index: u64) -> u64 {
    index + 1
}

/// What an etcd entry's `data` holds, in postcard. The variant order is the wire format: never
/// reorder, only append.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) enum Stored<C: RaftTypeConfig> {
    /// A live openraft entry: the leader's node id (its term is the etcd entry's term) and the
    /// payload (blank, normal, membership).
    Entry {
        /// The node id of the leader that proposed it.
        leader: C::NodeId,
        /// The payload.
        payload: EntryPayload<C>,
    },
    /// The log id of the last purged entry where the entry itself is not in the log (a purge
    /// past the end of the log, or the re-append that truncates back to the purge point).
    Purged {
        /// The node id of the leader of the purged log id.
        leader: C::NodeId,
    },
    /// Voids everything after the snapshot marker at its index (a truncate of every entry when
    /// no purged log id is known); carries nothing.
    Void,
}

/// [`Stored`] by reference, for encoding without cloning the payload (the same wire format:
/// serde serializes `&T` as `T`).
#[derive(Serialize)]
#[serde(bound = "")]
enum StoredRef<'a, C: RaftTypeConfig> {
    Entry {
        leader: &'a C::NodeId,
        payload: &'a EntryPayload<C>,
    },
    Purged {
        leader: &'a C::NodeId,
    },
    #[allow(dead_code)] // Built as `Stored::Void`'s encoding, see `void_entry`.
    Void,
}

fn encode<C: RaftTypeConfig>(stored: &StoredRef<'_, C>, index: u64) -> Result<Vec<u8>, Error> {
    postcard::to_allocvec(stored).map_err(|source| Error::Codec { index, source })
}

/// The etcd entry for an openraft entry.
pub(crate) fn to_etcd<C>(entry: &Entry<C>) -> Result<eraftpb::Entry, Error>
where
    C: RaftTypeConfig,
{
    let data = encode::<C>(
        &StoredRef::Entry {
            leader: &entry.log_id.leader_id.node_id,
            payload: &entry.payload,
        },
        entry.log_id.index,
    )?;
    Ok(etcd_entry(&entry.log_id, data))
}

/// The etcd entry that records `log_id` as purged, at its index.
pub(crate) fn purged_entry<C: RaftTypeConfig>(
    log_id: &LogId<C::NodeId>,
) -> Result<eraftpb::Entry, Error> {
    let data = encode::<C>(
        &StoredRef::Purged {
            leader: &log_id.leader_id.node_id,
        },
        log_id.index,
    )?;
    Ok(etcd_entry(log_id, data))
}

/// The etcd entry at etcd index `etcd_index` that voids everything after the marker there.
pub(crate) fn void_entry<C: RaftTypeConfig>(etcd_index: u64) -> Result<eraftpb::Entry, Error> {
    let data = encode::<C>(&StoredRef::Void, etcd_index)?;
    Ok(eraftpb::Entry {
        index: etcd_index,
        term: 0,
        data: data.into(),
        ..Default::default()
    })
}

fn etcd_entry<NID: openraft::NodeId>(log_id: &LogId<NID>, data: Vec<u8>) -> eraftpb::Entry {
    let mut entry = eraftpb::Entry {
        index: etcd_index(log_id.index),
        term: log_id.leader_id.term,
        data: data.into(),
        ..Default::default()
    };
    entry.set_entry_type(EntryType::EntryNormal);
    entry
}

/// Decodes an etcd entry's data.
pub(crate) fn decode<C: RaftTypeConfig>(entry: &eraftpb::Entry) -> Result<Stored<C>, Error> {
    postcard::from_bytes(&entry.data).map_err(|source| Error::Codec {
        index: entry.index.saturating_sub(1),
        source,
    })
}

/// The log id of the openraft entry stored as `entry` (whose leader is `leader`).
pub(crate) fn log_id_of<NID: openraft::NodeId>(entry: &eraftpb::Entry, leader: NID) -> LogId<NID> {
    LogId::new(
        CommittedLeaderId::new(entry.term, leader),
        entry.index.saturating_sub(1),
    )
}

/// The openraft entry stored as `entry`, or `None` if it is a `Purged` or `Void` record.
pub(crate) fn from_etcd<C>(entry: &eraftpb::Entry) -> Result<Option<Entry<C>>, Error>
where
    C: RaftTypeConfig,
{
    Ok(match decode::<C>(entry)? {
        Stored::Entry { leader, payload } => Some(Entry {
            log_id: log_id_of(entry, leader),
            payload,
        }),
        Stored::Purged { .. } | Stored::Void => None,
    })
}

/// The largest node id a vote can carry: the HardState's `vote` holds `(node_id + 1) << 1`.
pub const MAX_VOTE_NODE_ID: u64 = (u64::MAX >> 1) - 1;

/// `HardState.vote` for an openraft vote: `0` for none, else `((node_id + 1) << 1) | committed`,
/// so a vote for node 0 is not etcd's "no vote", and a change of the committed flag is a change
/// of `vote`, which raft's MustSync (and raftwal's group commit) make durable.
pub(crate) fn pack_vote(node_id: u64, committed: bool) -> Result<u64, Error> {
    if node_id > MAX_VOTE_NODE_ID {
        return Err(Error::NodeIdTooLarge { node_id });
    }
    Ok(((node_id + 1) << 1) | u64::from(committed))
}

/// The vote a HardState holds, if any (see [`pack_vote`]).
pub(crate) fn unpack_vote<NID>(hard_state: &HardState) -> Option<Vote<NID>>
where
    NID: openraft::NodeId + From<u64>,
{
    if hard_state.vote == 0 {
        return None;
    }
    let node_id = (hard_state.vote >> 1) - 1;
    let mut vote = Vote::new(hard_state.term, NID::from(node_id));
    vote.committed = hard_state.vote & 1 == 1;
    Some(vote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vote_packs_its_node_id_and_committed_flag_into_hard_state_vote() {
        assert_eq!(pack_vote(0, false).unwrap(), 2);
        assert_eq!(pack_vote(0, true).unwrap(), 3);
        assert_eq!(pack_vote(7, true).unwrap(), 17);
        for (node, committed) in [(0, false), (0, true), (5, false), (MAX_VOTE_NODE_ID, true)] {
            let hs = HardState {
                term: 9,
                vote: pack_vote(node, committed).unwrap(),
                commit: 0,
                ..Default::default()
            };
            let vote = unpack_vote::<u64>(&hs).unwrap();
            assert_eq!(vote.leader_id.term, 9);
            assert_eq!(vote.leader_id.node_id, node);
            assert_eq!(vote.committed, committed);
        }
    }

    #[test]
    fn no_vote_is_etcds_zero_and_too_large_a_node_id_is_refused() {
        assert_eq!(unpack_vote::<u64>(&HardState::default()), None);
        assert!(matches!(
            pack_vote(MAX_VOTE_NODE_ID + 1, false),
            Err(Error::NodeIdTooLarge { .. })
        ));
    }
}
