//! Frames out: length word, record, padding (the format is `frame.rs`'s), and the running
//! CRC-32C, buffered into page-aligned writes.

use std::sync::Arc;

use prost::encoding::{self, WireType};

use crate::frame::length_word;
use crate::fs::WalFile;
use crate::observe;
use crate::record::RecordType;

/// The unit of the page cache: buffered bytes are written in whole pages while a batch is large,
/// so the kernel never has to read a page back to modify part of it.
pub(crate) const PAGE_SIZE: u64 = 4096;

/// Above this many buffered bytes, whole pages are written out without waiting for a sync.
const FLUSH_WATERMARK: usize = 1 << 20;

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
