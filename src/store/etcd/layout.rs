//! The etcd store's keys and values, and how a batch of records is packed into transactions.
//!
//! Under the prefix `P` (which ends in `/`):
//!
//! - `P` `owner`: the current writer's name, attached to its lease. Every append compares this
//!   key's `mod_revision` with the one its claim produced (the fence).
//! - `P` `meta`: `raftwal etcd store v1 first=N`, the first index still stored; written once at
//!   the first claim and by every `delete_before`, in the same transaction as the deletion.
//! - `P` `r/` `%016x` (the index): a record's head. Either the record itself (inline), or its
//!   length, checksum and chunk count when it is larger than a chunk. A record is visible only
//!   through its head, which is written in the same transaction as its last chunk or a later
//!   one, so a crash leaves a prefix of a batch and never part of a record.
//! - `P` `c/` `%016x` `/` `%08x` (the index, the chunk's number): the chunks of a large record.
//!
//! Fixed-width lowercase hex makes etcd's byte order of keys the order of indexes, so ranges
//! of keys are ranges of records.

use crate::error::{Error, Result};

/// The first byte of every head value (a version: a later layout uses another byte).
const HEAD_MAGIC: u8 = b'R';
const KIND_INLINE: u8 = 0;
const KIND_CHUNKED: u8 = 1;
/// Magic, kind, CRC-32C of the record.
const HEAD_HEADER: usize = 6;
/// A chunked head: the header, the record's length (u64), its chunk count (u32).
const CHUNKED_HEAD_LEN: usize = HEAD_HEADER + 8 + 4;
const META_TAG: &str = "raftwal etcd store v1 first=";

/// Bytes a put costs in a transaction request beyond its key and value (protobuf tags and
/// lengths of the `RequestOp` and `PutRequest`), rounded up.
pub(crate) const PUT_OVERHEAD: usize = 32;
/// Bytes of a transaction request that are not its puts (the compare on the owner key, the
/// failure branch, the raft request's header with the user name), rounded up generously.
pub(crate) const TXN_OVERHEAD: usize = 4096;

/// The key names of one store.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

/// What a key under the prefix is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Owner,
    Meta,
    Head(u64),
    Chunk(u64, u32),
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn owner(&self) -> Vec<u8> {
        format!("{}owner", self.prefix).into_bytes()
    }

    pub(crate) fn meta(&self) -> Vec<u8> {
        format!("{}meta", self.prefix).into_bytes()
    }

    pub(crate) fn head(&self, index: u64) -> Vec<u8> {
        format!("{}r/{index:016x}", self.prefix).into_bytes()
    }

    /// One past the last head key: the end of the range of all heads.
    pub(crate) fn heads_end(&self) -> Vec<u8> {
        format!("{}r0", self.prefix).into_bytes()
    }

    pub(crate) fn chunk(&self, index: u64, chunk: u32) -> Vec<u8> {
        format!("{}c/{index:016x}/{chunk:08x}", self.prefix).into_bytes()
    }

    /// The first chunk key of record `index` (and of every record after it).
    pub(crate) fn chunks_from(&self, index: u64) -> Vec<u8> {
        format!("{}c/{index:016x}/", self.prefix).into_bytes()
    }

    /// One past the last chunk key of record `index`.
    pub(crate) fn chunks_of_end(&self, index: u64) -> Vec<u8> {
        format!("{}c/{index:016x}0", self.prefix).into_bytes()
    }

    /// One past the last chunk key of every record.
    pub(crate) fn chunks_end(&self) -> Vec<u8> {
        format!("{}c0", self.prefix).into_bytes()
    }

    /// One past the last key under the prefix (etcd's "prefix end": the last byte plus one;
    /// the prefix ends in `/`, so that never carries).
    pub(crate) fn prefix_end(&self) -> Vec<u8> {
        let mut end = self.prefix.clone().into_bytes();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        end
    }

    /// Names a key under the prefix, or `None` for a key that is not the store's.
    pub(crate) fn parse(&self, key: &[u8]) -> Option<KeyKind> {
        let rest = key.strip_prefix(self.prefix.as_bytes())?;
        match rest {
            b"owner" => return Some(KeyKind::Owner),
            b"meta" => return Some(KeyKind::Meta),
            _ => {}
        }
        if let Some(index) = rest.strip_prefix(b"r/") {
            return parse_hex(index, 16).map(KeyKind::Head);
        }
        let rest = rest.strip_prefix(b"c/")?;
        if rest.len() != 16 + 1 + 8 || rest[16] != b'/' {
            return None;
        }
        let index = parse_hex(&rest[..16], 16)?;
        let chunk = u32::try_from(parse_hex(&rest[17..], 8)?).ok()?;
        Some(KeyKind::Chunk(index, chunk))
    }
}

/// Lowercase hex of exactly `width` digits (the only spelling the store writes).
fn parse_hex(digits: &[u8], width: usize) -> Option<u64> {
    if digits.len() != width
        || !digits
            .iter()
            .all(|d| matches!(d, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// A key as text for error messages (keys the store writes are ASCII; foreign ones may not be).
pub(crate) fn show_key(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// The meta value recording the first stored index.
pub(crate) fn encode_meta(first: u64) -> Vec<u8> {
    format!("{META_TAG}{first}").into_bytes()
}

pub(crate) fn decode_meta(key: &[u8], value: &[u8]) -> Result<u64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.strip_prefix(META_TAG))
        .and_then(|first| first.parse::<u64>().ok())
        .filter(|first| *first >= 1)
        .ok_or_else(|| Error::StoreCorrupt {
            key: show_key(key),
            reason: format!(
                "not the store's meta value: {:?}",
                String::from_utf8_lossy(value)
            ),
        })
}

/// A decoded head: the record itself, or where its chunks are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Head<'a> {
    Inline(&'a [u8]),
    Chunked { len: u64, chunks: u32, crc: u32 },
}

fn encode_inline(record: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(HEAD_HEADER + record.len());
    value.extend_from_slice(&[HEAD_MAGIC, KIND_INLINE]);
    value.extend_from_slice(&crc32c::crc32c(record).to_le_bytes());
    value.extend_from_slice(record);
    value
}

fn encode_chunked(record: &[u8], chunks: u32) -> Vec<u8> {
    let mut value = Vec::with_capacity(CHUNKED_HEAD_LEN);
    value.extend_from_slice(&[HEAD_MAGIC, KIND_CHUNKED]);
    value.extend_from_slice(&crc32c::crc32c(record).to_le_bytes());
    value.extend_from_slice(&(record.len() as u64).to_le_bytes());
    value.extend_from_slice(&chunks.to_le_bytes());
    value
}

/// Decodes a head value; an inline record's checksum is checked here.
pub(crate) fn decode_head<'a>(key: &[u8], value: &'a [u8]) -> Result<Head<'a>> {
    let corrupt = |reason: String| Error::StoreCorrupt {
        key: show_key(key),
        reason,
    };
    if value.len() < HEAD_HEADER || value[0] != HEAD_MAGIC {
        return Err(corrupt("not a record head of the store".to_string()));
    }
    let crc = u32::from_le_bytes([value[2], value[3], value[4], value[5]]);
    match value[1] {
        KIND_INLINE => {
            let record = &value[HEAD_HEADER..];
            if crc32c::crc32c(record) != crc {
                return Err(corrupt("the record's checksum does not match".to_string()));
            }
            Ok(Head::Inline(record))
        }
        KIND_CHUNKED if value.len() == CHUNKED_HEAD_LEN => {
            let mut len = [0; 8];
            len.copy_from_slice(&value[HEAD_HEADER..HEAD_HEADER + 8]);
            let mut chunks = [0; 4];
            chunks.copy_from_slice(&value[HEAD_HEADER + 8..]);
            Ok(Head::Chunked {
                len: u64::from_le_bytes(len),
                chunks: u32::from_le_bytes(chunks),
                crc,
            })
        }
        kind => Err(corrupt(format!(
            "unknown head kind {kind} (length {})",
            value.len()
        ))),
    }
}

/// Checks a chunked record reassembled from its chunks against its head.
pub(crate) fn check_chunked(key: &[u8], record: &[u8], len: u64, crc: u32) -> Result<()> {
    let reason = if record.len() as u64 != len {
        format!(
            "the chunks hold {} bytes, the head says {len}",
            record.len()
        )
    } else if crc32c::crc32c(record) != crc {
        "the record's checksum does not match its chunks".to_string()
    } else {
        return Ok(());
    };
    Err(Error::StoreCorrupt {
        key: show_key(key),
        reason,
    })
}

/// The size limits of one transaction, from the server's `--max-txn-ops` and
/// `--max-request-bytes`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_ops: usize,
    /// Bytes of puts (keys, values, [`PUT_OVERHEAD`] each) one transaction may carry.
    pub(crate) max_bytes: usize,
    /// The largest chunk (and inline record).
    pub(crate) chunk_size: usize,
}

/// One put of a planned transaction.
#[derive(Debug)]
pub(crate) struct Put {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

impl Put {
    fn cost(&self) -> usize {
        self.key.len() + self.value.len() + PUT_OVERHEAD
    }
}

/// Splits a batch of records, numbered from `first`, into transactions within `limits`, in
/// order: every chunk of a record before its head, so that each transaction's commit leaves a
/// prefix of the batch visible (its heads) and at most the chunks of one more record.
pub(crate) fn plan(keys: &Keys, first: u64, records: &[&[u8]], limits: Limits) -> Vec<Vec<Put>> {
    let mut txns = Vec::new();
    let mut txn: Vec<Put> = Vec::new();
    let mut bytes = 0;
    let mut push = |put: Put, txns: &mut Vec<Vec<Put>>| {
        let cost = put.cost();
        if !txn.is_empty() && (txn.len() == limits.max_ops || bytes + cost > limits.max_bytes) {
            txns.push(std::mem::take(&mut txn));
            bytes = 0;
        }
        bytes += cost;
        txn.push(put);
    };
    for (index, record) in (first..).zip(records) {
        if record.len() <= limits.chunk_size {
            let put = Put {
                key: keys.head(index),
                value: encode_inline(record),
            };
            push(put, &mut txns);
            continue;
        }
        let mut count = 0u32;
        for (number, chunk) in (0u32..).zip(record.chunks(limits.chunk_size)) {
            let put = Put {
                key: keys.chunk(index, number),
                value: chunk.to_vec(),
            };
            push(put, &mut txns);
            count = number + 1;
        }
        let put = Put {
            key: keys.head(index),
            value: encode_chunked(record, count),
        };
        push(put, &mut txns);
    }
    if !txn.is_empty() {
        txns.push(txn);
    }
    txns
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_ops: usize, max_bytes: usize, chunk_size: usize) -> Limits {
        Limits {
            max_ops,
            max_bytes,
            chunk_size,
        }
    }

    #[test]
    fn keys_sort_as_their_indexes_and_parse_back() {
        let keys = Keys::new("jobs/");
        assert!(keys.head(9) < keys.head(10) && keys.head(0xff) < keys.head(0x100));
        assert!(keys.head(u64::MAX) < keys.heads_end());
        assert!(keys.chunk(3, 0xffff_ffff) < keys.chunks_of_end(3));
        assert!(keys.chunks_of_end(3) <= keys.chunks_from(4));
        assert_eq!(keys.parse(&keys.head(42)), Some(KeyKind::Head(42)));
        assert_eq!(keys.parse(&keys.chunk(42, 7)), Some(KeyKind::Chunk(42, 7)));
        assert_eq!(keys.parse(&keys.owner()), Some(KeyKind::Owner));
        assert_eq!(keys.parse(&keys.meta()), Some(KeyKind::Meta));
        assert_eq!(keys.prefix_end(), b"jobs0");
    }

    #[test]
    fn keys_of_another_layout_are_foreign() {
        let keys = Keys::new("jobs/");
        for key in [
            &b"jobs/r/2a"[..],
            b"jobs/r/000000000000002A",
            b"jobs/c/000000000000002a",
            b"jobs/c/000000000000002a/0",
            b"jobs/config",
            b"other/r/000000000000002a",
        ] {
            assert_eq!(keys.parse(key), None, "{}", show_key(key));
        }
    }

    #[test]
    fn heads_round_trip_and_damage_is_corruption() {
        let value = encode_inline(b"hello");
        assert_eq!(decode_head(b"k", &value).unwrap(), Head::Inline(b"hello"));
        let mut bad = value.clone();
        bad[7] ^= 1;
        assert!(decode_head(b"k", &bad).unwrap_err().is_corruption());
        assert!(decode_head(b"k", b"hello").unwrap_err().is_corruption());
        let record = vec![7u8; 100];
        let value = encode_chunked(&record, 4);
        let Head::Chunked { len, chunks, crc } = decode_head(b"k", &value).unwrap() else {
            panic!("not chunked");
        };
        assert_eq!((len, chunks), (100, 4));
        check_chunked(b"k", &record, len, crc).unwrap();
        assert!(check_chunked(b"k", &record[1..], len, crc)
            .unwrap_err()
            .is_corruption());
    }

    #[test]
    fn a_batch_fills_transactions_up_to_the_op_limit() {
        let keys = Keys::new("p/");
        let records: Vec<&[u8]> = vec![b"x"; 300];
        let txns = plan(&keys, 1, &records, limits(128, 1 << 20, 1024));
        let sizes: Vec<usize> = txns.iter().map(Vec::len).collect();
        assert_eq!(sizes, [128, 128, 44]);
        assert_eq!(txns[2].last().unwrap().key, keys.head(300));
    }

    #[test]
    fn a_batch_fills_transactions_up_to_the_byte_limit() {
        let keys = Keys::new("p/");
        let record = vec![0u8; 1000];
        let records: Vec<&[u8]> = vec![&record; 10];
        let txns = plan(&keys, 1, &records, limits(128, 3500, 1024));
        for txn in &txns {
            assert!(txn.iter().map(Put::cost).sum::<usize>() <= 3500);
        }
        assert_eq!(txns.iter().map(Vec::len).sum::<usize>(), 10);
    }

    #[test]
    fn a_large_record_is_chunked_with_its_head_last() {
        let keys = Keys::new("p/");
        let big: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let records: Vec<&[u8]> = vec![b"a", &big, b"b"];
        let txns = plan(&keys, 7, &records, limits(3, 1 << 20, 1024));
        let puts: Vec<&Put> = txns.iter().flatten().collect();
        let order: Vec<Option<KeyKind>> = puts.iter().map(|put| keys.parse(&put.key)).collect();
        let mut expected = vec![Some(KeyKind::Head(7))];
        expected.extend((0..5).map(|chunk| Some(KeyKind::Chunk(8, chunk))));
        expected.extend([Some(KeyKind::Head(8)), Some(KeyKind::Head(9))]);
        assert_eq!(order, expected);
        let joined: Vec<u8> = puts[1..6]
            .iter()
            .flat_map(|put| put.value.clone())
            .collect();
        assert_eq!(joined, big);
        assert!(txns.iter().all(|txn| txn.len() <= 3));
    }
}
