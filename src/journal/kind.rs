//! The journal's own framing of a record: one tag byte for its kind in front of the codec's
//! bytes, so the store stays kind-agnostic.

use crate::error::{Error, Result};

const DATA: u8 = 1;
const CHECKPOINT_START: u8 = 2;
const CHECKPOINT_RECORD: u8 = 3;
/// Followed by the index of the start record it finalizes (8 bytes, little-endian), so a
/// finalize can never be matched with the wrong start.
const CHECKPOINT_FINALIZE: u8 = 4;

/// What a stored journal record is, read from its tag byte (see [`split_record`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKind {
    /// A user record appended with `Journal::append`.
    Data,
    /// Opens a checkpoint; the checkpoint is named by this record's index.
    CheckpointStart,
    /// A user record of the open checkpoint.
    CheckpointRecord,
    /// Completes the checkpoint whose start record has this index.
    CheckpointFinalize(u64),
}

impl RecordKind {
    /// The kind's name as the CLI and errors show it (`data`, `checkpoint-start`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Data => "data",
            RecordKind::CheckpointStart => "checkpoint-start",
            RecordKind::CheckpointRecord => "checkpoint-record",
            RecordKind::CheckpointFinalize(_) => "checkpoint-finalize",
        }
    }
}

/// A new record buffer holding the tag of `kind`, ready for the codec to append the payload.
pub(crate) fn header(kind: RecordKind) -> Vec<u8> {
    match kind {
        RecordKind::Data => vec![DATA],
        RecordKind::CheckpointStart => vec![CHECKPOINT_START],
        RecordKind::CheckpointRecord => vec![CHECKPOINT_RECORD],
        RecordKind::CheckpointFinalize(start) => {
            let mut bytes = Vec::with_capacity(9);
            bytes.push(CHECKPOINT_FINALIZE);
            bytes.extend_from_slice(&start.to_le_bytes());
            bytes
        }
    }
}

/// Splits the stored bytes of record `index` into its kind and its payload (the codec's bytes
/// for data and checkpoint records, empty otherwise): the journal's view of what a store holds,
/// for tools. A byte string no journal wrote is [`Error::BadRecord`].
pub fn split_record(index: u64, bytes: &[u8]) -> Result<(RecordKind, &[u8])> {
    let bad = |reason: String| Error::BadRecord { index, reason };
    let malformed =
        |kind: RecordKind| bad(format!("a {} record of {} bytes", kind.name(), bytes.len()));
    let (&tag, rest) = bytes
        .split_first()
        .ok_or_else(|| bad("an empty record has no kind".into()))?;
    let kind = match tag {
        DATA => RecordKind::Data,
        CHECKPOINT_RECORD => RecordKind::CheckpointRecord,
        CHECKPOINT_START if rest.is_empty() => RecordKind::CheckpointStart,
        CHECKPOINT_FINALIZE if rest.len() == 8 => {
            let mut start = [0; 8];
            start.copy_from_slice(rest);
            return Ok((
                RecordKind::CheckpointFinalize(u64::from_le_bytes(start)),
                &[],
            ));
        }
        CHECKPOINT_START => return Err(malformed(RecordKind::CheckpointStart)),
        CHECKPOINT_FINALIZE => return Err(malformed(RecordKind::CheckpointFinalize(0))),
        other => return Err(bad(format!("unknown record kind {other}"))),
    };
    Ok((kind, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_as_written() {
        for kind in [
            RecordKind::Data,
            RecordKind::CheckpointStart,
            RecordKind::CheckpointRecord,
            RecordKind::CheckpointFinalize(u64::MAX - 3),
        ] {
            let mut bytes = header(kind);
            if matches!(kind, RecordKind::Data | RecordKind::CheckpointRecord) {
                bytes.extend_from_slice(b"payload");
            }
            let (read, payload) = split_record(7, &bytes).unwrap();
            assert_eq!(read, kind);
            let expected: &[u8] = if matches!(kind, RecordKind::Data | RecordKind::CheckpointRecord)
            {
                b"payload"
            } else {
                b""
            };
            assert_eq!(payload, expected);
        }
    }

    #[test]
    fn unknown_empty_and_malformed_records_are_bad_records() {
        for bytes in [&b""[..], &[9, 1][..], &[2, 0][..], &[4, 1, 2][..]] {
            let err = split_record(5, bytes).unwrap_err();
            assert!(matches!(err, Error::BadRecord { index: 5, .. }), "{err}");
            assert!(err.is_corruption());
        }
    }
}
