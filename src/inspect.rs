//! Raw access for tools: every record of every segment in file order, with its position, and
//! no log semantics applied beyond the frame and CRC checks.

use std::path::{Path, PathBuf};

use raft_proto::eraftpb::{Entry, HardState};

use crate::decoder::{Decoder, End, Step};
use crate::error::{Error, IoContext as _, Result};
use crate::record::{decode_entry, decode_hard_state, RecordType, WalSnapshot};
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
    Ok(RawRecords {
        decoder: Decoder::open_dir(&options, dir)?,
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
                data: self.decoder.last_data().to_vec(),
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

/// A record's data decoded by its type; see [`RawRecord::payload`].
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A crc record: the running CRC is the record's `crc` field; it carries no data.
    Crc,
    /// The metadata given at create.
    Metadata(Vec<u8>),
    /// A raft entry.
    Entry(Entry),
    /// A raft HardState.
    HardState(HardState),
    /// A snapshot marker.
    Snapshot(WalSnapshot),
}

impl RawRecord {
    /// Decodes the record's data by its type. Data that passed its CRC but does not parse is
    /// [`Error::Corrupt`] at this record.
    pub fn payload(&self) -> Result<Payload> {
        let decoded = match self.kind {
            RecordType::Crc => Ok(Payload::Crc),
            RecordType::Metadata => Ok(Payload::Metadata(self.data.clone())),
            RecordType::Entry => decode_entry(&self.data).map(Payload::Entry),
            RecordType::State => decode_hard_state(&self.data).map(Payload::HardState),
            RecordType::Snapshot => WalSnapshot::decode(&self.data).map(Payload::Snapshot),
        };
        decoded.map_err(|reason| Error::Corrupt {
            file: PathBuf::from(&self.file),
            offset: self.offset,
            reason: format!("{} record: {reason}", self.kind.name()),
        })
    }
}

/// A torn tail that [`repair`](fn@crate::repair) would cut off; see [`find_torn_tail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment.
    pub file: PathBuf,
    /// Where the torn frame starts: the segment's length after a repair.
    pub offset: u64,
    /// The segment's current length; `len - offset` bytes would be cut.
    pub len: u64,
}

/// Reads every segment of `dir`, changing nothing, and says whether the log ends in a torn tail
/// (`Some`) or cleanly (`None`): what [`repair`](fn@crate::repair) would do, without doing it.
///
/// Damage anywhere that is not a torn tail of the last segment is [`Error::NotRepairable`],
/// since repairing the tail would not make such a log readable.
pub fn find_torn_tail(dir: impl AsRef<Path>) -> Result<Option<TornTail>> {
    find_torn_tail_with(dir, Options::default())
}

/// [`find_torn_tail`] with explicit options.
pub fn find_torn_tail_with(dir: impl AsRef<Path>, options: Options) -> Result<Option<TornTail>> {
    let fs = options.file_system.clone();
    for record in raw_records_with(dir, options)? {
        match record {
            Ok(_) => continue,
            Err(Error::TornTail { file, offset }) => {
                let len = fs
                    .open_file(&file, false)
                    .and_then(|f| f.len())
                    .ctx(|| format!("reading the size of {}", file.display()))?;
                return Ok(Some(TornTail { file, offset, len }));
            }
            Err(e @ (Error::Io { .. } | Error::DiskFull { .. })) => return Err(e),
            Err(e) => {
                return Err(Error::NotRepairable {
                    source: Box::new(e),
                })
            }
        }
    }
    Ok(None)
}

/// The segments of `dir` that a writer holds locked right now, in order.
///
/// Each segment's lock is tried without waiting and released at once; a writer opening the log
/// in that instant could see it as taken, so run this beside a live log, not in its startup.
pub fn locked_segments(dir: impl AsRef<Path>) -> Result<Vec<SegmentName>> {
    locked_segments_with(dir, Options::default())
}

/// [`locked_segments`] with explicit options.
pub fn locked_segments_with(dir: impl AsRef<Path>, options: Options) -> Result<Vec<SegmentName>> {
    let dir = dir.as_ref();
    let fs = options.file_system.as_ref();
    let mut locked = Vec::new();
    for name in segment::list_segments(fs, dir)? {
        let path = dir.join(&name.file_name);
        let file = fs
            .open_file(&path, false)
            .ctx(|| format!("opening {}", path.display()))?;
        if file
            .try_lock()
            .ctx(|| format!("locking {}", path.display()))?
        {
            file.unlock()
                .ctx(|| format!("unlocking {}", path.display()))?;
        } else {
            locked.push(name);
        }
    }
    Ok(locked)
}
