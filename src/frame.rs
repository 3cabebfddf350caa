//! The frame format, in one place: every on-disk constant of a frame and the parsing of its two
//! parts, shared by the encoder, the decoder, the simulated disk and the tests.
//!
//! A frame is `u64 LE length word | walpb.Record | 0..7 zero bytes`, so every frame starts on an
//! 8-byte boundary and a length word never straddles a sector. The low 56 bits of the word are
//! the record's length; when padding follows, the top byte is `0x80 | pad` (etcd 3 writers). A
//! word without the flag and a length that is not a multiple of 8 comes from an etcd 2 writer.
//! See `ETCD-WAL-FORMAT.md`.

use std::ops::Range;

use prost::Message as _;

use crate::record::walpb;

/// The unit a disk writes atomically. A sector of a torn write that never reached the disk reads
/// back as zeros (in a preallocated or extended file), so a zero sector marks a torn write.
pub const SECTOR_SIZE: u64 = 512;

/// The low 56 bits of a length word hold the record length.
pub const LENGTH_MASK: u64 = (1 << 56) - 1;

/// The top-byte flag of a length word saying that padding follows the record.
pub const PADDED_FLAG: u8 = 0x80;

/// The top-byte bits of a padded length word that hold the padding size.
const PAD_MASK: u8 = 0x07;

/// The top-byte bits no writer sets: a word with any of them is damaged.
const RESERVED_BITS: u8 = 0x78;

/// The length word for a record of `len` bytes, and the padding that follows it.
pub fn length_word(len: u64) -> (u64, usize) {
    let pad = (8 - len % 8) % 8;
    if pad == 0 {
        (len, 0)
    } else {
        (len | (u64::from(PADDED_FLAG) | pad) << 56, pad as usize)
    }
}

/// The size of the frame a length word announces (the word, the record and its padding), or
/// `None` for a word no etcd writer produces.
pub fn frame_size(word: u64) -> Option<u64> {
    LengthWord::parse(word)?.frame_len()
}

/// A length word, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LengthWord {
    /// The record's length.
    pub(crate) len: u64,
    /// Zero bytes after the record.
    pub(crate) pad: u64,
    /// Whether the padding flag was set (an etcd 3 writer).
    pub(crate) padded: bool,
}

impl LengthWord {
    /// Reads `word`; `None` when its flags cannot have been written by any etcd writer: reserved
    /// bits set, a padding size without the flag, or a padding size that disagrees with the
    /// length (etcd derives one from the other, so a disagreement is a damaged word).
    pub(crate) fn parse(word: u64) -> Option<LengthWord> {
        let len = word & LENGTH_MASK;
        let flags = (word >> 56) as u8;
        if flags == 0 {
            return Some(LengthWord {
                len,
                pad: 0,
                padded: false,
            });
        }
        let pad = u64::from(flags & PAD_MASK);
        let consistent =
            flags & PADDED_FLAG != 0 && flags & RESERVED_BITS == 0 && pad == (8 - len % 8) % 8;
        consistent.then_some(LengthWord {
            len,
            pad,
            padded: true,
        })
    }

    /// The frame's size: the word, the record and its padding (`None` on overflow).
    pub(crate) fn frame_len(&self) -> Option<u64> {
        self.len.checked_add(8 + self.pad)
    }
}

/// A record body, parsed.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// In the layout every etcd writer produces; `data` indexes the body.
    Lent {
        kind: i64,
        crc: u32,
        data: Range<usize>,
    },
    /// Any other valid protobuf encoding, decoded in full.
    Owned(walpb::Record),
}

/// Parses a `walpb.Record` body. The layout every etcd writer (and raftwal) produces, fields
/// `type`, `crc`, then optionally `data`, each once, is read in place so the data is lent rather
/// than copied; any other encoding goes through prost, which accepts exactly what etcd's
/// generated code does (fields in any order, repeated, unknown).
pub(crate) fn parse_record(body: &[u8]) -> std::result::Result<Parsed, prost::DecodeError> {
    if let Some(parsed) = parse_canonical(body) {
        return Ok(parsed);
    }
    walpb::Record::decode(body).map(Parsed::Owned)
}

/// The fast path of [`parse_record`]: `None` unless `body` is exactly key 1 with a one-byte
/// varint, key 2 with a varint that fits 32 bits, and optionally key 3 with data running to the
/// end of the body. Within those limits prost would decode the same values.
fn parse_canonical(body: &[u8]) -> Option<Parsed> {
    let [0x08, kind, 0x10, rest @ ..] = body else {
        return None;
    };
    if *kind >= 0x80 {
        return None;
    }
    let (crc, used) = short_varint(rest)?;
    let crc = u32::try_from(crc).ok()?;
    let mut pos = 3 + used;
    let data = match body[pos..] {
        [] => pos..pos,
        [0x1a, ref tail @ ..] => {
            let (len, used) = short_varint(tail)?;
            pos += 1 + used;
            if body.len() - pos != usize::try_from(len).ok()? {
                return None;
            }
            pos..body.len()
        }
        _ => return None,
    };
    Some(Parsed::Lent {
        kind: i64::from(*kind),
        crc,
        data,
    })
}

/// A varint of at most five bytes at the start of `bytes`, and its length.
fn short_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().take(5).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Whether any sector-aligned chunk of `bytes` (which start at file offset `file_offset`) is all
/// zeros: the mark of a sector that a torn write never reached.
pub(crate) fn has_zero_sector(bytes: &[u8], file_offset: u64) -> bool {
    let mut rest = bytes;
    let mut pos = file_offset;
    while !rest.is_empty() {
        let chunk = ((SECTOR_SIZE - pos % SECTOR_SIZE) as usize).min(rest.len());
        if rest[..chunk].iter().all(|&b| b == 0) {
            return true;
        }
        rest = &rest[chunk..];
        pos += chunk as u64;
    }
    false
}

/// The end of the sector holding file offset `offset`.
pub(crate) fn sector_end(offset: u64) -> u64 {
    (offset / SECTOR_SIZE + 1) * SECTOR_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a parse yields, for comparison with prost: type, crc and data.
    fn values(body: &[u8]) -> Option<(i64, u32, Vec<u8>)> {
        match parse_record(body).ok()? {
            Parsed::Lent { kind, crc, data } => Some((kind, crc, body[data].to_vec())),
            Parsed::Owned(r) => Some((
                r.r#type.unwrap_or(0),
                r.crc.unwrap_or(0),
                r.data.unwrap_or_default(),
            )),
        }
    }

    fn prost_values(body: &[u8]) -> Option<(i64, u32, Vec<u8>)> {
        let r = walpb::Record::decode(body).ok()?;
        Some((
            r.r#type.unwrap_or(0),
            r.crc.unwrap_or(0),
            r.data.unwrap_or_default(),
        ))
    }

    #[test]
    fn length_word_sets_padding_in_the_top_byte() {
        assert_eq!(length_word(8), (8, 0));
        assert_eq!(length_word(4), (0x8400_0000_0000_0004, 4));
        assert_eq!(length_word(0x12), (0x8600_0000_0000_0012, 6));
        assert_eq!(length_word(0x0e), (0x8200_0000_0000_000e, 2));
    }

    #[test]
    fn every_written_length_word_parses_back() {
        for len in 0..64 {
            let (word, pad) = length_word(len);
            let parsed = LengthWord::parse(word).unwrap();
            assert_eq!((parsed.len, parsed.pad), (len, pad as u64));
            assert_eq!(parsed.frame_len(), Some(8 + len + pad as u64));
        }
    }

    #[test]
    fn length_words_no_writer_produces_are_refused() {
        // Reserved bits, padding without the flag, padding disagreeing with the length.
        assert_eq!(LengthWord::parse(0x8c00_0000_0000_0004), None);
        assert_eq!(LengthWord::parse(0x0400_0000_0000_0004), None);
        assert_eq!(LengthWord::parse(0x8300_0000_0000_0004), None);
        // An etcd 2 word: no flag, any length.
        assert_eq!(LengthWord::parse(5).map(|w| w.padded), Some(false));
    }

    #[test]
    fn records_as_etcd_writes_them_are_lent_not_copied() {
        for data in [None, Some(vec![]), Some(vec![7u8; 300])] {
            let body = walpb::Record {
                r#type: Some(2),
                crc: Some(u32::MAX),
                data: data.clone(),
            }
            .encode_to_vec();
            let Some(Parsed::Lent {
                kind,
                crc,
                data: range,
            }) = parse_canonical(&body)
            else {
                panic!("canonical record {body:02x?} not lent");
            };
            assert_eq!((kind, crc), (2, u32::MAX));
            assert_eq!(body[range].to_vec(), data.unwrap_or_default());
        }
    }

    #[test]
    fn other_encodings_decode_as_prost_does() {
        // Fields reversed, a repeated crc (the last wins) and an unknown field.
        let body = [
            0x1a, 0x01, 0xaa, 0x10, 0x05, 0x08, 0x02, 0x10, 0x06, 0x20, 0x01,
        ];
        assert!(parse_canonical(&body).is_none());
        assert_eq!(values(&body), Some((2, 6, vec![0xaa])));
    }

    proptest! {
        #[test]
        fn any_body_parses_exactly_as_prost_decodes_it(
            body in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            prop_assert_eq!(values(&body), prost_values(&body));
        }

        #[test]
        fn any_valid_record_parses_exactly_as_prost_decodes_it(
            kind in prop::option::of(any::<i64>()),
            crc in prop::option::of(any::<u32>()),
            data in prop::option::of(prop::collection::vec(any::<u8>(), 0..200)),
        ) {
            let body = walpb::Record { r#type: kind, crc, data }.encode_to_vec();
            prop_assert_eq!(values(&body), prost_values(&body));
        }
    }

    #[test]
    fn zero_sector_is_found_at_absolute_sector_boundaries() {
        let mut bytes = vec![1u8; 1024];
        assert!(!has_zero_sector(&bytes, 0));
        bytes[512..].fill(0);
        assert!(has_zero_sector(&bytes, 0));
        // Starting at file offset 100, the file's sector [512, 1024) is bytes [412, 924).
        let mut bytes = vec![1u8; 1024];
        bytes[412..924].fill(0);
        assert!(has_zero_sector(&bytes, 100));
        let mut bytes = vec![1u8; 1024];
        bytes[400..900].fill(0);
        assert!(!has_zero_sector(&bytes, 100));
    }
}
