//! Raw access for tools: every record of every segment in file order, with its position, and
//! no log semantics applied beyond the frame and CRC checks.

use std::path::{Path, PathBuf};

use crate::decoder::{Decoder, End, SegmentSource, Step};
use crate::error::{Error, IoContext as _, Result};
use crate::record::RecordType;
use crate::segment::{self, SegmentName};
use crate::wal::Options;

/// One record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// The segment file name.
    pub file: String,
    /// Byte offset of the record's frame (its length word) in that file.
    pub offset: u64,
    /// The record type.
    pub kind: RecordType,
    /// The record's crc field.
    pub crc: u32,
    /// The record's data.
    pub data: Vec<u8>,
}

/// Iterator over every record of a log directory; see [`raw_records`].
#[derive(Debug)]
pub struct RawRecords {
    decoder: Decoder,
    done: bool,
}

/// The segments of the log in `dir`, in order.
pub fn segments(dir: impl AsRef<Path>) -> Result<Vec<SegmentName>> {
    segment::list_segments(Options::default().file_system.as_ref(), dir.as_ref())
}

/// Every record of every segment in `dir`, in file order. A torn tail ends the iteration with
/// [`Error::TornTail`]; corruption with [`Error::CrcMismatch`] or [`Error::Corrupt`].
pub fn raw_records(dir: impl AsRef<Path>) -> Result<RawRecords> {
    raw_records_with(dir, Options::default())
}

/// [`raw_records`] with explicit options.
pub fn raw_records_with(dir: impl AsRef<Path>, options: Options) -> Result<RawRecords> {
    let dir = dir.as_ref();
    let fs = options.file_system.as_ref();
    let names = segment::list_segments(fs, dir)?;
    segment::check_contiguous(&names)?;
    let mut sources = Vec::with_capacity(names.len());
    for name in names {
        let path: PathBuf = dir.join(&name.file_name);
        let file = fs
            .open_file(&path, false)
            .ctx(|| format!("opening {}", path.display()))?;
        sources.push(SegmentSource {
            name: name.file_name,
            path,
            file,
        });
    }
    Ok(RawRecords {
        decoder: Decoder::new(sources)?,
        done: false,
    })
}

impl Iterator for RawRecords {
    type Item = Result<RawRecord>;

    fn next(&mut self) -> Option<Result<RawRecord>> {
        if self.done {
            return None;
        }
        let step = self.decoder.next_record();
        match step {
            Ok(Step::Record(record)) => Some(Ok(RawRecord {
                file: self.decoder.segments()[record.segment].name.clone(),
                offset: record.offset,
                kind: record.kind,
                crc: record.crc,
                data: record.data,
            })),
            Ok(Step::End(End::Clean)) => {
                self.done = true;
                None
            }
            Ok(Step::End(End::Torn)) => {
                self.done = true;
                let segment = &self.decoder.segments()[self.decoder.current_segment()];
                Some(Err(Error::TornTail {
                    file: segment.path.clone(),
                    offset: self.decoder.last_valid_offset(),
                }))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
