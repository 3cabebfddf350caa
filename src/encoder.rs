//! Frames out: length word, record, padding, and the running CRC-32C, buffered into page-aligned
//! writes.
//!
//! A frame is `u64 LE length word | walpb.Record | 0..7 zero bytes`, so every frame starts on an
//! 8-byte boundary and a length word is never split by a torn sector. When padding is present
//! the top byte of the word is `0x80 | pad`.

use std::sync::Arc;

use prost::encoding::{self, WireType};

use crate::fs::WalFile;
use crate::observe;
use crate::record::RecordType;

/// The unit of the page cache: buffered bytes are written in whole pages while a batch is large,
/// so the kernel never has to read a page back to modify part of it.
pub(crate) const PAGE_SIZE: u64 = 4096;

/// Above this many buffered bytes, whole pages are written out without waiting for a sync.
const FLUSH_WATERMARK: usize = 1 << 20;

/// Length words with this bit set carry the padding size in the top byte.
const PADDED_FLAG: u64 = 0x80 << 56;

/// Builds the length word for a record of `len` bytes, and the padding that follows it.
pub(crate) fn length_word(len: u64) -> (u64, usize) {
    let pad = ((8 - len % 8) % 8) as usize;
    if pad == 0 {
        (len, 0)
    } else {
        (len | PADDED_FLAG | ((pad as u64) << 56), pad)
    }
}

/// Appends encoded frames to one segment file.
#[derive(Debug)]
pub(crate) struct Encoder {
    file: Arc<dyn WalFile>,
    /// Encoded frames not yet written to the file.
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    /// Running CRC-32C over the data of every non-crc record.
    crc: u32,
}

impl Encoder {
    /// Starts appending at `offset` of `file`, continuing the CRC chain from `prev_crc`.
    pub(crate) fn new(file: Arc<dyn WalFile>, offset: u64, prev_crc: u32) -> Encoder {
        Encoder {
            file,
            buf: Vec::with_capacity(FLUSH_WATERMARK + PAGE_SIZE as usize),
            buf_offset: offset,
            crc: prev_crc,
        }
    }

    /// The running CRC after the last encoded record.
    pub(crate) fn crc(&self) -> u32 {
        self.crc
    }

    /// The file offset just past the last encoded frame (including buffered bytes).
    pub(crate) fn offset(&self) -> u64 {
        self.buf_offset + self.buf.len() as u64
    }

    /// The file being appended to.
    pub(crate) fn file(&self) -> &Arc<dyn WalFile> {
        &self.file
    }

    /// Encodes a crc record carrying the running CRC (segment headers use it to chain files).
    pub(crate) fn encode_crc(&mut self) -> std::io::Result<()> {
        let crc = self.crc;
        self.encode_frame(RecordType::Crc, crc, None)
    }

    /// Encodes a record of `kind` with `data`, advancing the CRC chain over `data`.
    ///
    /// Empty data is omitted from the record, as etcd's encoder does for a nil slice.
    pub(crate) fn encode(&mut self, kind: RecordType, data: &[u8]) -> std::io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, data);
        let crc = self.crc;
        self.encode_frame(kind, crc, (!data.is_empty()).then_some(data))
    }

    fn encode_frame(
        &mut self,
        kind: RecordType,
        crc: u32,
        data: Option<&[u8]>,
    ) -> std::io::Result<()> {
        let kind = kind as i64;
        let mut len =
            encoding::int64::encoded_len(1, &kind) + encoding::uint32::encoded_len(2, &crc);
        if let Some(data) = data {
            len +=
                encoding::key_len(3) + encoding::encoded_len_varint(data.len() as u64) + data.len();
        }
        let (word, pad) = length_word(len as u64);
        self.buf.extend_from_slice(&word.to_le_bytes());
        encoding::int64::encode(1, &kind, &mut self.buf);
        encoding::uint32::encode(2, &crc, &mut self.buf);
        if let Some(data) = data {
            encoding::encode_key(3, WireType::LengthDelimited, &mut self.buf);
            encoding::encode_varint(data.len() as u64, &mut self.buf);
            self.buf.extend_from_slice(data);
        }
        self.buf.extend_from_slice(&[0u8; 8][..pad]);
        if self.buf.len() >= FLUSH_WATERMARK {
            self.write_whole_pages()?;
        }
        Ok(())
    }

    /// Writes the buffered bytes that fill whole pages, keeping the partial last page buffered.
    fn write_whole_pages(&mut self) -> std::io::Result<()> {
        let end = self.offset() / PAGE_SIZE * PAGE_SIZE;
        if end <= self.buf_offset {
            return Ok(());
        }
        let n = (end - self.buf_offset) as usize;
        observe::write(&*self.file, &self.buf[..n], self.buf_offset)?;
        self.buf.drain(..n);
        self.buf_offset = end;
        Ok(())
    }

    /// Writes every buffered byte to the file (not durable until the file is synced).
    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            observe::write(&*self.file, &self.buf, self.buf_offset)?;
            self.buf_offset += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_word_sets_padding_in_the_top_byte() {
        assert_eq!(length_word(8), (8, 0));
        assert_eq!(length_word(4), (0x8400_0000_0000_0004, 4));
        assert_eq!(length_word(0x12), (0x8600_0000_0000_0012, 6));
        assert_eq!(length_word(0x0e), (0x8200_0000_0000_000e, 2));
    }
}
