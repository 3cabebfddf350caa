//! Raw access for tools: every record of every segment in file order, with its position, no log
//! semantics applied beyond the frame and CRC checks ([`WalOptions::raw_records`]), and the
//! damage verdict every reader shares ([`WalOptions::check`]).

use std::path::{Path, PathBuf};

use raft_proto::eraftpb::{Entry, HardState};

use crate::decoder::{Decoder, End, Step, Verdict};
use crate::error::{Error, Result};
use crate::options::WalOptions;
use crate::record::{decode_entry, decode_hard_state, RecordType, WalSnapshot};
use crate::segment::{Access, SegmentDir};

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

/// Iterator over every record of a log directory; see [`WalOptions::raw_records`].
#[derive(Debug)]
pub struct RawRecords {
    decoder: Decoder,
    done: bool,
}

/// [`WalOptions::check`].
pub(crate) fn check(dir: &Path, options: &WalOptions) -> Result<Verdict> {
    match whole_log(dir, options) {
        Ok(mut decoder) => decoder.verdict(),
        Err(e) if e.is_corruption() => Ok(Verdict::Corrupt(e)),
        Err(e) => Err(e),
    }
}

/// A decoder over every segment of `dir`, read-only.
fn whole_log(dir: &Path, options: &WalOptions) -> Result<Decoder> {
    let segments =
        SegmentDir::new(options.file_system.clone(), dir).open_whole_log(Access::Read)?;
    Decoder::new(segments, options.replay_read_size)
}

/// [`WalOptions::raw_records`].
pub(crate) fn raw_records(dir: &Path, options: &WalOptions) -> Result<RawRecords> {
    Ok(RawRecords {
        decoder: whole_log(dir, options)?,
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
