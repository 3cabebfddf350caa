//! Recovery: find the last finalized checkpoint, then deliver its records and every data
//! record after its start, without holding the log in memory.

use super::codec::Codec;
use super::kind::{split, Kind};
use super::Replayed;
use crate::error::{Error, Result};
use crate::store::Store;

/// What recovery found.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Found {
    /// The index of the last finalized checkpoint's start record (0: none).
    pub(super) checkpoint: u64,
}

/// The first pass: the protocol as the log records it.
#[derive(Debug, Default)]
struct Scan {
    /// The start of the newest checkpoint not (yet) finalized in the log.
    open: Option<u64>,
    /// Whether data records were appended since `open` started.
    data_since_open: bool,
    /// The last finalized checkpoint, and whether data records lie between its start and its
    /// finalize record.
    finalized: Option<(u64, bool)>,
}

impl Scan {
    fn step(&mut self, index: u64, kind: Kind) -> Result<()> {
        let bad = |reason: String| Err(Error::BadRecord { index, reason });
        match kind {
            Kind::Data => self.data_since_open |= self.open.is_some(),
            Kind::CheckpointStart => {
                // A start while another is open: that one was abandoned.
                self.open = Some(index);
                self.data_since_open = false;
            }
            Kind::CheckpointRecord if self.open.is_none() => {
                return bad("a checkpoint record outside any checkpoint".into())
            }
            Kind::CheckpointRecord => {}
            Kind::CheckpointFinalize(start) if self.open != Some(start) => {
                return bad(format!(
                    "finalizes the checkpoint started at {start}, but the open one {}",
                    match self.open {
                        Some(open) => format!("started at {open}"),
                        None => "does not exist".into(),
                    }
                ))
            }
            Kind::CheckpointFinalize(start) => {
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
    let mut scan = Scan::default();
    store.read_from(first, &mut |index, bytes| {
        let (kind, _) = split(index, bytes)?;
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
        let (kind, payload) = split(index, bytes)?;
        match kind {
            Kind::CheckpointStart if index == from => inside = true,
            Kind::CheckpointFinalize(start) if start == from => inside = false,
            Kind::CheckpointRecord if inside && what != Deliver::Data => {
                visit(Replayed::Checkpoint(decode(index, payload)?))
            }
            Kind::Data if what != Deliver::Checkpoint => visit(Replayed::Data {
                index,
                record: decode(index, payload)?,
            }),
            _ => {}
        }
        Ok(())
    })
}
