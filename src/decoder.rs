//! Frames back, and the one damage classifier every reader shares.
//!
//! Records come out in log order across segments with the CRC chain checked. Where the records
//! stop, the decoder gives one verdict, the same for every path that reads a log (open, replay,
//! verify, inspect, repair, the CLI):
//! - **sound**: the last segment's records end and nothing but zeros follows them;
//! - **torn** at (file, offset): the last segment ends in what a crash mid-write leaves (a frame
//!   with a sector that never reached the disk, a frame cut short by the end of the file, or
//!   non-zero bytes after the end of its records); repair may cut it;
//! - **corrupt** at (file, offset): anything else, as an error naming the segment and offset.
//!
//! Two rules keep damage from passing as a clean end:
//! - A segment's header (its crc and metadata records, plus the snapshot record of the first
//!   segment or the HardState record a cut writes) is synced before the segment is renamed into
//!   place, so no crash can damage it: any damage there, in any segment, is corruption.
//! - A zero length word ends the records only where a crash can leave one (the rest of its
//!   sector is zeros and no intact record follows it), and the log is sound only when every
//!   byte after the end of its records is zero.
//!
//! A segment is read in large sequential chunks into one reused window that slides forward with
//! the current frame, so replay memory is bounded by a chunk plus the largest record, not by a
//! segment or the log. Record data is lent from the window, not copied.

use std::ops::Range;
use std::path::PathBuf;

use crate::error::{Error, IoContext as _, Result};
use crate::frame::{self, LengthWord, Parsed};
use crate::record::{decode_entry, RecordType};
use crate::segment::OpenSegment;

/// A record whose frame and CRC checked out; its data is [`Decoder::last_data`].
#[derive(Debug)]
pub(crate) struct DecodedRecord {
    /// What it is.
    pub(crate) kind: RecordType,
    /// The record's crc field.
    pub(crate) crc: u32,
    /// Index of its segment in the decoder's list.
    pub(crate) segment: usize,
    /// Byte offset of its frame in that segment.
    pub(crate) offset: u64,
}

/// How reading the log ended, short of corruption (which is an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The last segment's records end and only zeros follow.
    Sound,
    /// The last segment ends in a torn write at [`Decoder::last_valid_offset`].
    Torn,
}

/// Outcome of one decode step.
#[derive(Debug)]
pub(crate) enum Step {
    /// A valid record.
    Record(DecodedRecord),
    /// No more records.
    End(End),
}

/// How a log reads, from the damage classifier every reader shares.
#[derive(Debug)]
pub enum Verdict {
    /// Every record checks out and only zeros follow the last one.
    Sound,
    /// The last segment ends in a torn write: what a crash mid-write leaves.
    Torn(TornTail),
    /// The log is damaged in a way no crash produces; the error names the file and offset
    /// ([`Error::position`]).
    Corrupt(Error),
}

impl Verdict {
    /// Whether every record checks out and only zeros follow the last one.
    pub fn is_sound(&self) -> bool {
        matches!(self, Verdict::Sound)
    }

    /// `"sound"`, `"torn"` or `"corrupt"`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Sound => "sound",
            Verdict::Torn(_) => "torn",
            Verdict::Corrupt(_) => "corrupt",
        }
    }

    /// The segment and offset the verdict names (none for a sound log).
    pub fn position(&self) -> Option<(&std::path::Path, u64)> {
        match self {
            Verdict::Sound => None,
            Verdict::Torn(torn) => Some((&torn.file, torn.offset)),
            Verdict::Corrupt(error) => error.position(),
        }
    }
}

/// A torn tail of the last segment: what a repair would cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment.
    pub file: PathBuf,
    /// Where its valid records end: the segment's length after a repair.
    pub offset: u64,
    /// The segment's current length; `len - offset` bytes would be cut.
    pub len: u64,
    /// Entries that still parse as frames after `offset` (their CRC chain unchecked): what a
    /// repair would cut. Under the crash model none of them was acknowledged, since an
    /// acknowledged write was synced whole; a disk that lost synced data breaks that model.
    pub entries_after: Option<EntryRun>,
}

/// A run of raft entries found in a torn tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRun {
    /// How many entry records parse.
    pub count: u64,
    /// The lowest index among them.
    pub first_index: u64,
    /// The highest index among them.
    pub last_index: u64,
}

/// What is wrong, without the file and offset an error's message adds.
fn reason_of(error: &Error) -> String {
    match error {
        Error::Corrupt { reason, .. } => reason.clone(),
        Error::CrcMismatch { .. } => "CRC mismatch".to_string(),
        other => other.to_string(),
    }
}

/// A frame parsed off the main path, to describe damage.
struct PeekedFrame {
    end: u64,
    kind: i64,
    crc: u32,
    data: Vec<u8>,
}

/// Where the last record's data is.
#[derive(Debug)]
enum LastData {
    /// In the window, at these indexes.
    Window(Range<usize>),
    /// In `owned_data` (the record was not in the layout every etcd writer uses).
    Owned,
}

/// Reads records from a list of segments, in order.
#[derive(Debug)]
pub(crate) struct Decoder {
    segments: Vec<OpenSegment>,
    current: usize,
    /// Holds bytes `[window_start, window_start + filled)` of the current segment in
    /// `window[..filled]`; the rest of `window` is spare space, initialized once and reused so
    /// that reading a chunk neither faults in fresh pages nor zero-fills again.
    window: Vec<u8>,
    window_start: u64,
    filled: usize,
    last_data: LastData,
    owned_data: Vec<u8>,
    read_size: usize,
    file_len: u64,
    /// Offset just past the last valid frame of the current segment.
    offset: u64,
    crc: u32,
    have_crc: bool,
    /// A frame of the current segment had the padding flag: the segment was written by a
    /// padding (etcd 3) writer, so every later frame stays 8-byte aligned.
    padded_seen: bool,
    /// Valid records read from the current segment.
    records_in_segment: usize,
    /// How many records the current segment's header holds.
    header_records: usize,
    /// Where the records of the previous segment of this read ended.
    previous_end: u64,
    ended: Option<End>,
}

impl Decoder {
    /// A decoder over `segments`, reading `read_size` bytes at a time (a few large reads rather
    /// than one per record); the CRC chain is adopted from the first crc record.
    pub(crate) fn new(segments: Vec<OpenSegment>, read_size: usize) -> Result<Decoder> {
        let mut decoder = Decoder {
            segments,
            read_size: read_size.max(1),
            current: 0,
            window: Vec::new(),
            window_start: 0,
            filled: 0,
            last_data: LastData::Window(0..0),
            owned_data: Vec::new(),
            file_len: 0,
            offset: 0,
            crc: 0,
            have_crc: false,
            padded_seen: false,
            records_in_segment: 0,
            header_records: 0,
            previous_end: 0,
            ended: None,
        };
        if decoder.segments.is_empty() {
            decoder.ended = Some(End::Sound);
        } else {
            decoder.start_segment(0)?;
        }
        Ok(decoder)
    }

    /// The segments being read.
    pub(crate) fn segments(&self) -> &[OpenSegment] {
        &self.segments
    }

    /// The segment being read.
    pub(crate) fn current_segment(&self) -> &OpenSegment {
        &self.segments[self.current]
    }

    /// Offset just past the last valid frame of the current segment: where appending resumes,
    /// and where a torn tail starts.
    pub(crate) fn last_valid_offset(&self) -> u64 {
        self.offset
    }

    /// The data of the record [`Decoder::next_record`] returned last (empty when absent).
    pub(crate) fn last_data(&self) -> &[u8] {
        match &self.last_data {
            LastData::Window(range) => &self.window[range.clone()],
            LastData::Owned => &self.owned_data,
        }
    }

    /// The running CRC after the last valid record.
    pub(crate) fn crc(&self) -> u32 {
        self.crc
    }

    /// Reads to the end and gives the verdict: sound, torn, or corrupt (an I/O failure is an
    /// error, since it says nothing about the log).
    pub(crate) fn verdict(&mut self) -> Result<Verdict> {
        loop {
            match self.next_record() {
                Ok(Step::Record(_)) => continue,
                Ok(Step::End(End::Sound)) => return Ok(Verdict::Sound),
                Ok(Step::End(End::Torn)) => return self.torn_tail().map(Verdict::Torn),
                Err(e) if e.is_corruption() => return Ok(Verdict::Corrupt(e)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Describes the torn tail the decoder ended at: where it starts, the segment's length, and
    /// the entries that still parse after it (found by stepping over whatever does not parse,
    /// 8 bytes at a time, as frames are 8-byte aligned).
    pub(crate) fn torn_tail(&mut self) -> Result<TornTail> {
        let offset = self.offset;
        let mut entries: Option<EntryRun> = None;
        let mut pos = offset;
        while let Some(at) = self.first_nonzero(pos)? {
            pos = at / 8 * 8;
            let Some((frame_end, entry_index)) = self.frame_at(pos)? else {
                pos += 8;
                continue;
            };
            if let Some(index) = entry_index {
                let run = entries.get_or_insert(EntryRun {
                    count: 0,
                    first_index: index,
                    last_index: index,
                });
                run.count += 1;
                run.first_index = run.first_index.min(index);
                run.last_index = run.last_index.max(index);
            }
            pos = frame_end;
        }
        Ok(TornTail {
            file: self.current_segment().path.clone(),
            offset,
            len: self.file_len,
            entries_after: entries,
        })
    }

    /// The frame at `pos`, parsed without checking its CRC: its end and, for an entry record,
    /// the entry's index. `None` when no frame parses there.
    fn frame_at(&mut self, pos: u64) -> Result<Option<(u64, Option<u64>)>> {
        Ok(self.peek_frame(pos)?.map(|frame| {
            let index = (RecordType::from_i64(frame.kind) == Some(RecordType::Entry))
                .then(|| decode_entry(&frame.data).ok().map(|entry| entry.index))
                .flatten();
            (frame.end, index)
        }))
    }

    /// The frame at `pos` of the current segment, parsed but not checked against the chain;
    /// `None` when no frame parses there. Moves the window to `pos`: only for paths that end
    /// the read (describing damage).
    fn peek_frame(&mut self, pos: u64) -> Result<Option<PeekedFrame>> {
        let Some(word) = self.word_from(pos, pos)?.and_then(LengthWord::parse) else {
            return Ok(None);
        };
        let Some(end) = word
            .frame_len()
            .and_then(|len| pos.checked_add(len))
            .filter(|&end| end <= self.file_len)
        else {
            return Ok(None);
        };
        self.load(pos, end)?;
        if self.loaded_end() < end {
            return Ok(None);
        }
        let body = self.loaded(pos + 8..pos + 8 + word.len);
        Ok(match frame::parse_record(body) {
            Ok(Parsed::Lent { kind, crc, data }) => Some(PeekedFrame {
                end,
                kind,
                crc,
                data: body[data].to_vec(),
            }),
            Ok(Parsed::Owned(record)) => Some(PeekedFrame {
                end,
                kind: record.r#type.unwrap_or(0),
                crc: record.crc.unwrap_or(0),
                data: record.data.unwrap_or_default(),
            }),
            Err(_) => None,
        })
    }

    fn start_segment(&mut self, index: usize) -> Result<()> {
        let source = &self.segments[index];
        self.file_len = source
            .file
            .len()
            .ctx(|| format!("reading the size of {}", source.path.display()))?;
        // The first segment's header ends with the snapshot record `create` writes. A cut's
        // header may end with a HardState record, but etcd omits it after a restart until the
        // next HardState is saved, so its presence cannot be known from the bytes: only the crc
        // and metadata records are sure to be there.
        self.header_records = if source.name.seq == 0 { 3 } else { 2 };
        self.previous_end = self.offset;
        self.current = index;
        self.window_start = 0;
        self.filled = 0;
        self.offset = 0;
        self.padded_seen = false;
        self.records_in_segment = 0;
        Ok(())
    }

    /// Whether the current frame is one of the segment's header records.
    pub(crate) fn in_header(&self) -> bool {
        self.records_in_segment < self.header_records
    }

    /// File offset just past the loaded bytes.
    fn loaded_end(&self) -> u64 {
        self.window_start + self.filled as u64
    }

    /// The loaded bytes of file offsets `range` (which must be loaded).
    fn loaded(&self, range: Range<u64>) -> &[u8] {
        &self.window[self.window_index(range.start)..self.window_index(range.end)]
    }

    fn window_index(&self, offset: u64) -> usize {
        (offset - self.window_start) as usize
    }

    /// Makes sure bytes up to `end` of the current segment are loaded (`end <= file_len`),
    /// keeping the current frame: nothing before it is read again.
    fn load_to(&mut self, end: u64) -> Result<()> {
        self.load(self.offset, end)
    }

    /// Makes sure bytes `[from, end)` of the current segment are loaded (as far as the file
    /// reaches), sliding the window so it starts at `from`.
    fn load(&mut self, from: u64, end: u64) -> Result<()> {
        let end = end.min(self.file_len);
        if end <= from || (from >= self.window_start && end <= self.loaded_end()) {
            return Ok(());
        }
        if from < self.window_start || from > self.loaded_end() {
            self.window_start = from;
            self.filled = 0;
        } else {
            let keep = self.window_index(from);
            if keep > 0 {
                self.window.copy_within(keep..self.filled, 0);
                self.filled -= keep;
                self.window_start = from;
            }
        }
        // Fill the window to a chunk, or to the end of a frame larger than that; grow it only
        // to what is needed (doubling would leave a window twice the largest frame).
        let target = ((end - self.window_start) as usize)
            .max(self.read_size)
            .min((self.file_len - self.window_start) as usize);
        if self.window.len() < target {
            self.window.reserve_exact(target - self.window.len());
            self.window.resize(target, 0);
        }
        let source = &self.segments[self.current];
        while self.filled < target {
            let n = source
                .file
                .read_at(
                    &mut self.window[self.filled..target],
                    self.window_start + self.filled as u64,
                )
                .ctx(|| format!("reading {}", source.path.display()))?;
            if n == 0 {
                // The file shrank under us (a concurrent repair or truncate): treat what is
                // missing as never written.
                self.file_len = self.loaded_end();
                return Ok(());
            }
            self.filled += n;
        }
        Ok(())
    }

    /// The first non-zero byte in `[from, file_len)` of the current segment, if any. Scans what
    /// is loaded first and then reads whole chunks (at least 64 KiB, so that a tiny read size
    /// does not turn the scan of a preallocated tail into a call per few bytes), never sliding
    /// the window by less than it scanned.
    fn first_nonzero(&mut self, from: u64) -> Result<Option<u64>> {
        const MIN_SCAN_CHUNK: u64 = 64 << 10;
        let chunk = (self.read_size as u64).max(MIN_SCAN_CHUNK);
        let mut pos = from;
        while pos < self.file_len {
            if pos < self.window_start || pos >= self.loaded_end() {
                self.load(pos, pos.saturating_add(chunk))?;
            }
            let end = self.loaded_end();
            if end <= pos {
                break;
            }
            if let Some(i) = self.loaded(pos..end).iter().position(|&b| b != 0) {
                return Ok(Some(pos + i as u64));
            }
            pos = end;
        }
        Ok(None)
    }

    fn is_last_segment(&self) -> bool {
        self.current + 1 == self.segments.len()
    }

    /// A damaged frame at the current offset: torn when it is at the end of the last segment,
    /// outside its header, and `torn` holds; otherwise corruption.
    fn damaged(&mut self, torn: bool, corrupt: Error) -> Result<Step> {
        if self.in_header() {
            return Err(self.corrupt_header(&reason_of(&corrupt)));
        }
        if !(torn && self.is_last_segment()) {
            return Err(corrupt);
        }
        if self.hidden_record_at(self.offset)? {
            return Err(self.corrupt("damaged length word in front of an intact record"));
        }
        self.ended = Some(End::Torn);
        Ok(Step::End(End::Torn))
    }

    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            file: self.current_segment().path.clone(),
            offset: self.offset,
            reason: reason.into(),
        }
    }

    /// Damage inside the segment header, which was synced before the segment appeared: no crash
    /// explains it.
    fn corrupt_header(&self, damage: &str) -> Error {
        self.corrupt(format!(
            "damaged segment header (record {} of {}; headers are synced before a segment \
             appears, so no crash leaves this): {damage}",
            self.records_in_segment + 1,
            self.header_records
        ))
    }

    /// Decodes the next record.
    pub(crate) fn next_record(&mut self) -> Result<Step> {
        loop {
            if let Some(end) = self.ended {
                return Ok(Step::End(end));
            }
            if !self.at_end_of_records()? {
                return self.decode_frame();
            }
            let off = self.offset;
            if self.in_header() {
                let what = if off == self.file_len {
                    "the file ends"
                } else {
                    "zeros"
                };
                return Err(self.corrupt_header(&format!("{what} where a record must be")));
            }
            match (self.first_nonzero(off)?, self.is_last_segment()) {
                (None, true) => {
                    self.ended = Some(End::Sound);
                    return Ok(Step::End(End::Sound));
                }
                (None, false) => self.start_segment(self.current + 1)?,
                // Data after the end of the records: the end is a lost sector of a torn write
                // (in the last segment) or damage (a cut truncates every other segment at its
                // last record).
                (Some(_), true) => {
                    self.ended = Some(End::Torn);
                    return Ok(Step::End(End::Torn));
                }
                (Some(at), false) => {
                    return Err(self.corrupt(format!(
                        "the records end here but data follows at offset {at}, in a segment \
                         that is not the last"
                    )))
                }
            }
        }
    }

    /// Whether the segment's records end at the current offset: the end of the file, a zero
    /// length word where a crash can leave one, or fewer than 8 bytes left, all zero.
    fn at_end_of_records(&mut self) -> Result<bool> {
        let off = self.offset;
        if off == self.file_len {
            return Ok(true);
        }
        match self.word_at(off)? {
            Some(0) if !self.in_header() => self.check_zero_word(off).map(|()| true),
            Some(0) => Ok(true),
            Some(_) => Ok(false),
            None => Ok(self.first_nonzero(off)?.is_none()),
        }
    }

    /// The length word at `off`, keeping the current frame loaded; `None` when fewer than 8
    /// bytes remain.
    fn word_at(&mut self, off: u64) -> Result<Option<u64>> {
        self.word_from(self.offset, off)
    }

    /// The length word at `off`, loading from `keep` on; `None` when fewer than 8 bytes remain.
    fn word_from(&mut self, keep: u64, off: u64) -> Result<Option<u64>> {
        if self.file_len.saturating_sub(off) < 8 {
            return Ok(None);
        }
        self.load(keep, off + 8)?;
        if self.loaded_end() < off + 8 {
            return Ok(None);
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(self.loaded(off..off + 8));
        Ok(Some(u64::from_le_bytes(word)))
    }

    /// A zero length word ends a segment's records (preallocated space), but only where a crash
    /// can leave one: in a sector that never reached the disk, so the rest of that sector is
    /// zeros too, and not right in front of an intact record. Anything else is a damaged word
    /// hiding data that may have been acknowledged: corruption, never a silent end of the log.
    fn check_zero_word(&mut self, off: u64) -> Result<()> {
        let sector_end = frame::sector_end(off);
        self.load_to(sector_end)?;
        let end = sector_end.min(self.loaded_end());
        let start = (off + 8).min(end);
        if self.loaded(start..end).iter().any(|&b| b != 0) {
            return Err(self.corrupt("zero length word followed by data in the same sector"));
        }
        if self.hidden_record_at(off)? {
            return Err(self.corrupt("zero length word in front of an intact record"));
        }
        Ok(())
    }

    /// Whether an intact record that continues the CRC chain starts right after the length word
    /// at `off`, read in the field order every etcd writer uses (type, crc, data). A torn write
    /// loses whole sectors and a length word shares its sector with the start of its record, so
    /// this finds data behind a damaged word, not the remains of a torn write (the one
    /// exception, a word alone at the end of its sector, is discussed in docs/DURABILITY.md).
    fn hidden_record_at(&mut self, off: u64) -> Result<bool> {
        let mut pos = off + 8;
        let Some(kind) = self.field(&mut pos, 0x08)? else {
            return Ok(false);
        };
        let Some(crc) = self.field(&mut pos, 0x10)? else {
            return Ok(false);
        };
        let Ok(crc) = u32::try_from(crc) else {
            return Ok(false);
        };
        let mut data = pos..pos;
        if let Some(len) = self.field(&mut pos, 0x1a)? {
            let Some(end) = pos.checked_add(len).filter(|&end| end <= self.file_len) else {
                return Ok(false);
            };
            self.load_to(end)?;
            if self.loaded_end() < end {
                return Ok(false);
            }
            data = pos..end;
        }
        Ok(
            match i64::try_from(kind).ok().and_then(RecordType::from_i64) {
                Some(RecordType::Crc) => self.have_crc && crc == self.crc && data.is_empty(),
                Some(_) => crc32c::crc32c_append(self.crc, self.loaded(data)) == crc,
                None => false,
            },
        )
    }

    /// Reads a protobuf field with one-byte key `key` and a varint value at `pos` (for a
    /// length-delimited field, its length), advancing `pos`; `None` when something else is there.
    fn field(&mut self, pos: &mut u64, key: u8) -> Result<Option<u64>> {
        self.load_to(pos.saturating_add(11))?;
        let at = (*pos).clamp(self.window_start, self.loaded_end());
        let bytes = self.loaded(at..self.loaded_end());
        if bytes.first() != Some(&key) {
            return Ok(None);
        }
        let mut value = 0u64;
        for (i, &b) in bytes[1..].iter().take(10).enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                *pos += i as u64 + 2;
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    /// Decodes the frame at the current offset: its length word, then its record, then the CRC
    /// chain.
    fn decode_frame(&mut self) -> Result<Step> {
        let off = self.offset;
        let Some(word) = self.word_at(off)? else {
            let err = self.corrupt("partial length word");
            return self.damaged(true, err);
        };
        let Some(length) = self.check_length_word(word) else {
            // A torn write never produces a bad length word (it is 8-byte aligned inside a
            // sector), but treat it as the end of the last file all the same when nothing
            // intact follows: `damaged` looks for a hidden record.
            let err = self.corrupt(format!("invalid length word {word:#018x}"));
            return self.damaged(true, err);
        };
        let Some(frame_end) = length
            .frame_len()
            .and_then(|len| off.checked_add(len))
            .filter(|&end| end <= self.file_len)
        else {
            return self.frame_past_end_of_file(off, length);
        };
        self.load_to(frame_end)?;
        if self.loaded_end() < frame_end {
            let err = self.corrupt("file shrank while reading");
            return self.damaged(true, err);
        }
        let (kind_number, crc) = match self.parse_body(off, length.len) {
            Ok(parsed) => parsed,
            Err(reason) => {
                let err = self.corrupt(format!("undecodable record: {reason}"));
                let torn = self.has_zero_sector(off + 8, frame_end);
                return self.damaged(torn, err);
            }
        };
        let kind = RecordType::from_i64(kind_number);
        let running = self.check_crc(kind, crc, off, frame_end)?;
        let Some(running) = running else {
            let err = Error::CrcMismatch {
                file: self.current_segment().path.clone(),
                offset: off,
            };
            let torn = self.has_zero_sector(off + 8, frame_end);
            return self.damaged(torn, err);
        };
        let Some(kind) = kind else {
            return Err(self.corrupt(format!("unknown record type {kind_number}")));
        };
        self.crc = running;
        self.have_crc = true;
        self.padded_seen |= length.padded;
        self.offset = frame_end;
        self.records_in_segment += 1;
        Ok(Step::Record(DecodedRecord {
            kind,
            crc,
            segment: self.current,
            offset: off,
        }))
    }

    /// The length word, unless it is one no writer produces here: flags that disagree with the
    /// length, or (after a padded frame of the same segment, since etcd 2 frames only precede
    /// etcd 3 ones) an unflagged length that would misalign the next frame.
    fn check_length_word(&self, word: u64) -> Option<LengthWord> {
        LengthWord::parse(word).filter(|w| w.padded || w.len % 8 == 0 || !self.padded_seen)
    }

    /// A frame whose length runs past the end of the file.
    fn frame_past_end_of_file(&mut self, off: u64, length: LengthWord) -> Result<Step> {
        // The file ends inside this frame's padding: the word agrees with a record that is all
        // there, so this is a file cut short (etcd's TestRepairTruncate), not a damaged word
        // hiding a record. Torn, without the hidden-record check that would call it corruption
        // and make a plain truncation unrepairable.
        let record_end = off.checked_add(8 + length.len);
        if record_end.is_some_and(|end| end <= self.file_len)
            && self.is_last_segment()
            && !self.in_header()
        {
            self.ended = Some(End::Torn);
            return Ok(Step::End(End::Torn));
        }
        let err = self.corrupt(format!(
            "record length {} runs past the end of the file ({} bytes)",
            length.len, self.file_len
        ));
        self.damaged(true, err)
    }

    /// Parses the record body of the frame at `off` (loaded), remembering where its data is;
    /// returns its type number and crc field.
    fn parse_body(&mut self, off: u64, len: u64) -> std::result::Result<(i64, u32), String> {
        let body = off + 8..off + 8 + len;
        match frame::parse_record(self.loaded(body.clone())) {
            Ok(Parsed::Lent { kind, crc, data }) => {
                let at = self.window_index(body.start);
                self.last_data = LastData::Window(at + data.start..at + data.end);
                Ok((kind, crc))
            }
            Ok(Parsed::Owned(record)) => {
                self.owned_data = record.data.unwrap_or_default();
                self.last_data = LastData::Owned;
                Ok((record.r#type.unwrap_or(0), record.crc.unwrap_or(0)))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Checks the record against the CRC chain: the running CRC after it, `None` on a mismatch
    /// a torn write may explain. A crc record that disagrees with the chain is corruption
    /// outright (it never shares a write with data that could tear).
    fn check_crc(
        &mut self,
        kind: Option<RecordType>,
        crc: u32,
        off: u64,
        frame_end: u64,
    ) -> Result<Option<u32>> {
        if kind != Some(RecordType::Crc) {
            let running = crc32c::crc32c_append(self.crc, self.last_data());
            return Ok((running == crc).then_some(running));
        }
        if !self.have_crc || crc == self.crc {
            return Ok(Some(crc));
        }
        if off == 0 && self.current > 0 && self.header_continues(frame_end, crc)? {
            return Err(self.previous_segment_ends_early());
        }
        Err(Error::CrcMismatch {
            file: self.current_segment().path.clone(),
            offset: off,
        })
    }

    /// Whether the record after a segment's crc record chains from that crc record's value: the
    /// header is then intact, and a chain that does not continue into it means the previous
    /// segment lost records at its end.
    fn header_continues(&mut self, crc_frame_end: u64, header_crc: u32) -> Result<bool> {
        Ok(self
            .peek_frame(crc_frame_end)?
            .is_some_and(|next| crc32c::crc32c_append(header_crc, &next.data) == next.crc))
    }

    /// The previous segment's records end early: the next segment's intact header continues the
    /// CRC chain from records that are not there (a cut truncates a segment only after its
    /// last record, so they were lost since).
    fn previous_segment_ends_early(&self) -> Error {
        Error::Corrupt {
            file: self.segments[self.current - 1].path.clone(),
            offset: self.previous_end,
            reason: format!(
                "the records end here, but the next segment's intact header continues the CRC \
                 chain from records that are missing (the segment lost its end since the cut \
                 that started {})",
                self.current_segment().name.file_name
            ),
        }
    }

    /// Whether `[from, to)` (loaded) holds an all-zero sector: only a damaged frame needs this
    /// scan, so it stays off the happy path.
    fn has_zero_sector(&self, from: u64, to: u64) -> bool {
        frame::has_zero_sector(self.loaded(from..to), from)
    }
}
