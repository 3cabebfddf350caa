//! Reading indexed entries back from a segment: a few large reads per call, every frame checked
//! against what the index recorded when it was written or replayed.
//!
//! The checks, in order: the length word is one an etcd writer produces, the record is an entry
//! record with the data length recorded, its CRC is the chain's value before it (recorded)
//! advanced over its data, and the entry decodes to the index and term recorded. Any failure is
//! [`Error::CrcMismatch`] or [`Error::Corrupt`] naming the file and the frame's offset.

use std::path::Path;
use std::sync::Arc;

use raft_proto::eraftpb::Entry;

use crate::error::{Error, IoContext as _, Result};
use crate::frame::{self, LengthWord, Parsed};
use crate::fs::WalFile;
use crate::record::{decode_entry, RecordType};
use crate::wal::EntryPosition;

/// Reads of consecutive frames are merged up to this size (one frame may be larger).
const READ_CHUNK: u64 = 1 << 20;

/// The most a frame adds around its data: the length word, the type and crc fields, the data's
/// key and length varint, and padding.
const FRAME_OVERHEAD: u64 = 8 + 2 + 6 + 1 + 10 + 7;

/// Reads `positions` (in index order, all in `file`) and appends the entries to `out`.
pub(super) fn read_entries(
    file: &Arc<dyn WalFile>,
    path: &Path,
    positions: &[EntryPosition],
    out: &mut Vec<Entry>,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut rest = positions;
    while let Some(first) = rest.first() {
        // Merge frames that follow each other closely into one read.
        let mut end = first.offset + first.data_len + FRAME_OVERHEAD;
        let mut count = 1;
        for p in &rest[1..] {
            let next_end = p.offset + p.data_len + FRAME_OVERHEAD;
            if p.offset < first.offset || next_end - first.offset > READ_CHUNK {
                break;
            }
            end = next_end;
            count += 1;
        }
        buf.resize((end - first.offset) as usize, 0);
        let filled = read_fully(file.as_ref(), &mut buf, first.offset)
            .ctx(|| format!("reading back entries from {}", path.display()))?;
        for p in &rest[..count] {
            let at = (p.offset - first.offset) as usize;
            out.push(check_frame(&buf[at..filled.max(at)], path, p)?);
        }
        rest = &rest[count..];
    }
    Ok(())
}

/// Fills `buf` from `offset` on, short only at the end of the file; returns the bytes read.
fn read_fully(file: &dyn WalFile, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The entry in the frame at the start of `bytes`, checked against `expected`.
fn check_frame(bytes: &[u8], path: &Path, expected: &EntryPosition) -> Result<Entry> {
    let corrupt = |reason: String| Error::Corrupt {
        file: path.to_path_buf(),
        offset: expected.offset,
        reason: format!("entry {} read back: {reason}", expected.index),
    };
    let word = bytes
        .get(..8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
        .ok_or_else(|| corrupt("the frame is cut short".into()))?;
    let len = LengthWord::parse(word)
        .ok_or_else(|| corrupt(format!("length word {word:#018x} no writer produces")))?
        .len;
    let body = usize::try_from(len)
        .ok()
        .and_then(|len| bytes.get(8..8usize.checked_add(len)?))
        .ok_or_else(|| corrupt(format!("a {len}-byte record runs past the bytes read")))?;
    let parsed = frame::parse_record(body).map_err(|e| corrupt(e.to_string()))?;
    let owned;
    let (kind, crc, data) = match parsed {
        Parsed::Lent { kind, crc, data } => (kind, crc, &body[data]),
        Parsed::Owned(record) => {
            owned = record;
            (
                owned.r#type.unwrap_or(0),
                owned.crc.unwrap_or(0),
                owned.data.as_deref().unwrap_or_default(),
            )
        }
    };
    if RecordType::from_i64(kind) != Some(RecordType::Entry) {
        return Err(corrupt(format!("record type {kind} is not an entry")));
    }
    if data.len() as u64 != expected.data_len {
        return Err(corrupt(format!(
            "{} bytes of data where {} were written",
            data.len(),
            expected.data_len
        )));
    }
    if crc32c::crc32c_append(expected.prev_crc, data) != crc {
        return Err(Error::CrcMismatch {
            file: path.to_path_buf(),
            offset: expected.offset,
        });
    }
    let entry = decode_entry(data).map_err(corrupt)?;
    if entry.index != expected.index || entry.term != expected.term {
        return Err(corrupt(format!(
            "holds entry {} of term {}, expected term {}",
            entry.index, entry.term, expected.term
        )));
    }
    Ok(entry)
}
