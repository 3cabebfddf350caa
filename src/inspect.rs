//! Raw access for tools: every record of every segment in file order, with its position, no log
//! semantics applied beyond the frame and CRC checks, and the damage verdict every reader
//! shares ([`check`]).

use std::path::{Path, PathBuf};

use raft_proto::eraftpb::{Entry, HardState};

use crate::decoder::{Decoder, End, Step, TornTail, Verdict};
use crate::error::{Error, Result};
use crate::record::{decode_entry, decode_hard_state, RecordType, WalSnapshot};
use crate::segment::{Access, SegmentDir, SegmentName};
use crate::wal::Options;

/// One record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// The segment file name.
    pub file: String,
    /// The segment file's full path.
    pub path: PathBuf,
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
    segment_dir(dir.as_ref(), &Options::default()).list()
}

fn segment_dir(dir: &Path, options: &Options) -> SegmentDir {
    SegmentDir::new(options.file_system.clone(), dir)
}

/// Reads every segment of `dir`, changing nothing, and gives the damage verdict that every
/// reader of the log shares (open, replay, verify, repair, the CLI): sound, torn at (file,
/// offset), or corrupt at (file, offset). An `Err` means the log could not be read at all (an
/// I/O error, no segments).
pub fn check(dir: impl AsRef<Path>) -> Result<Verdict> {
    check_with(dir, Options::default())
}

/// [`check`] with explicit options.
pub fn check_with(dir: impl AsRef<Path>, options: Options) -> Result<Verdict> {
    match whole_log(dir.as_ref(), &options) {
        Ok(mut decoder) => decoder.verdict(),
        Err(e) if e.is_corruption() => Ok(Verdict::Corrupt(e)),
        Err(e) => Err(e),
    }
}

/// A decoder over every segment of `dir`, read-only.
fn whole_log(dir: &Path, options: &Options) -> Result<Decoder> {
    let segments = segment_dir(dir, options).open_whole_log(Access::Read)?;
    Decoder::new(segments, options.replay_read_size)
}

/// Every record of every segment in `dir`, in file order. A torn tail ends the iteration with
/// [`Error::TornTail`]; corruption with [`Error::CrcMismatch`] or [`Error::Corrupt`].
pub fn raw_records(dir: impl AsRef<Path>) -> Result<RawRecords> {
    raw_records_with(dir, Options::default())
}

/// [`raw_records`] with explicit options.
pub fn raw_records_with(dir: impl AsRef<Path>, options: Options) -> Result<RawRecords> {
    Ok(RawRecords {
        decoder: whole_log(dir.as_ref(), &options)?,
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
                file: self.decoder.segments()[record.segment]
                    .name
                    .file_name
                    .clone(),
                path: self.decoder.segments()[record.segment].path.clone(),
                offset: record.offset,
                kind: record.kind,
                crc: record.crc,
                data: self.decoder.last_data().to_vec(),
            })),
            Ok(Step::End(End::Sound)) => {
                self.done = true;
                None
            }
            Ok(Step::End(End::Torn)) => {
                self.done = true;
                let segment = self.decoder.current_segment();
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
            file: self.path.clone(),
            offset: self.offset,
            reason: format!("{} record: {reason}", self.kind.name()),
        })
    }
}

/// Reads every segment of `dir`, changing nothing, and says whether the log ends in a torn tail
/// (`Some`) or cleanly (`None`): what [`repair`](fn@crate::repair) would do, without doing it.
///
/// Corruption anywhere is [`Error::NotRepairable`], since repairing the tail would not make
/// such a log readable.
pub fn find_torn_tail(dir: impl AsRef<Path>) -> Result<Option<TornTail>> {
    find_torn_tail_with(dir, Options::default())
}

/// [`find_torn_tail`] with explicit options.
pub fn find_torn_tail_with(dir: impl AsRef<Path>, options: Options) -> Result<Option<TornTail>> {
    match check_with(dir, options)? {
        Verdict::Sound => Ok(None),
        Verdict::Torn(torn) => Ok(Some(torn)),
        Verdict::Corrupt(e) => Err(Error::NotRepairable {
            source: Box::new(e),
        }),
    }
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
    segment_dir(dir.as_ref(), &options).locked()
}
