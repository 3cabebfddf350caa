//! Recovery: find the last finalized checkpoint, then deliver its records and every data
//! record after its start, without holding the log in memory.

use super::codec::Codec;
use super::kind::{split_record, RecordKind};
use super::Replayed;
use crate::error::{Error, Result};
use crate::store::Store;

/// What recovery found.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Found {
    /// The index of the last finalized checkpoint's start record (0: none).
    pub(super) checkpoint: u64,
}

/// The checkpoint protocol as a journal's stored records tell it, followed record by record
/// in index order: recovery's first pass, and what tools (`raftwal journal`) use to check a
/// journal and find its checkpoints.
#[derive(Debug, Default, Clone)]
pub struct ProtocolCheck {
    /// The start of the newest checkpoint not (yet) finalized in the log.
    open: Option<u64>,
    /// Whether data records were appended since `open` started.
    data_since_open: bool,
    /// The last finalized checkpoint, and whether data records lie between its start and its
    /// finalize record.
    finalized: Option<(u64, bool)>,
}

impl ProtocolCheck {
    /// Follows record `index` of kind `kind`; a record that breaks the protocol (a checkpoint
    /// record outside a checkpoint, a finalize of another checkpoint than the open one) is
    /// [`Error::BadRecord`].
    pub fn step(&mut self, index: u64, kind: RecordKind) -> Result<()> {
        self.follow(index, kind)
    }

    /// The start index of the last finalized checkpoint so far.
    pub fn finalized(&self) -> Option<u64> {
        self.finalized.map(|(start, _)| start)
    }

    /// The start index of a checkpoint started and not finalized (yet, or ever: recovery
    /// discards it).
    pub fn open(&self) -> Option<u64> {
        self.open
    }

    fn follow(&mut self, index: u64, kind: RecordKind) -> Result<()> {
        let bad = |reason: String| Err(Error::BadRecord { index, reason });
        match kind {
            RecordKind::Data => self.data_since_open |= self.open.is_some(),
            RecordKind::CheckpointStart => {
                // A start while another is open: that one was abandoned.
                self.open = Some(index);
                self.data_since_open = false;
            }
            RecordKind::CheckpointRecord if self.open.is_none() => {
                return bad("a checkpoint record outside any checkpoint".into())
            }
            RecordKind::CheckpointRecord => {}
            RecordKind::CheckpointFinalize(start) if self.open != Some(start) => {
                return bad(format!(
                    "finalizes the checkpoint started at {start}, but the open one {}",
                    match self.open {
                        Some(open) => format!("started at {open}"),
                        None => "does not exist".into(),
                    }
                ))
            }
            RecordKind::CheckpointFinalize(start) => {
                self.finalized = Some((start, self.data_since_open));
                self.open = None;
            }
        }
        Ok(())
    }
}

/// Replays `store` into `visit`: the records of the last finalized checkpoint in the order
/// they were appended, then every data record after that checkpoint's start, in log order
/// (without a finalized checkpoint: every data record). Records of abandoned checkpoints are
/// skipped. Reads the log twice, or three times when data was appended while the checkpoint
/// was open (the checkpoint's records come first, so the data among them waits for a pass of
/// its own rather than for memory).
pub(super) fn recover<C: Codec>(
    store: &mut dyn Store,
    codec: &C,
    visit: &mut dyn FnMut(Replayed<C::Record>),
) -> Result<Found> {
    let first = store.first_index();
    let mut scan = ProtocolCheck::default();
    store.read_from(first, &mut |index, bytes| {
        let (kind, _) = split_record(index, bytes)?;
        scan.step(index, kind)
    })?;
    let Some((start, data_inside)) = scan.finalized else {
        if first > 1 {
            return Err(Error::BadRecord {
                index: first,
                reason: format!(
                    "the journal starts at record {first} but holds no finalized checkpoint"
                ),
            });
        }
        deliver(store, codec, first, Deliver::Data, visit)?;
        return Ok(Found::default());
    };
    if data_inside {
        deliver(store, codec, start, Deliver::Checkpoint, visit)?;
        deliver(store, codec, start, Deliver::Data, visit)?;
    } else {
        deliver(store, codec, start, Deliver::Both, visit)?;
    }
    Ok(Found { checkpoint: start })
}

/// Which records a delivery pass hands over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deliver {
    Checkpoint,
    Data,
    Both,
}

/// Reads from `from` (a checkpoint's start record, or the first record) and hands `visit` the
/// records `what` asks for: data records after `from`, and the records of the checkpoint
/// started at `from` up to its finalize record.
fn deliver<C: Codec>(
    store: &mut dyn Store,
    codec: &C,
    from: u64,
    what: Deliver,
    visit: &mut dyn FnMut(Replayed<C::Record>),
) -> Result<()> {
    let decode = |index: u64, payload: &[u8]| {
        codec.decode(payload).map_err(|e| Error::BadRecord {
            index,
            reason: format!("the codec cannot read it: {e}"),
        })
    };
    // Inside the checkpoint started at `from` until its finalize record.
    let mut inside = false;
    store.read_from(from, &mut |index, bytes| {
        let (kind, payload) = split_record(index, bytes)?;
        match kind {
            RecordKind::CheckpointStart if index == from => inside = true,
            RecordKind::CheckpointFinalize(start) if start == from => inside = false,
            RecordKind::CheckpointRecord if inside && what != Deliver::Data => {
                visit(Replayed::Checkpoint(decode(index, payload)?))
            }
            RecordKind::Data if what != Deliver::Checkpoint => visit(Replayed::Data {
                index,
                record: decode(index, payload)?,
            }),
            _ => {}
        }
        Ok(())
    })
}
