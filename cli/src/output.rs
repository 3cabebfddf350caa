//! Shared output pieces: JSON lines (keys in the documented order), entry type names and the
//! short data preview of the tables.

use base64::Engine as _;
use raftwal::eraftpb::{EntryType, HardState};
use serde::{Serialize, Serializer};

/// Bytes as standard, padded base64 in JSON.
pub fn base64<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// One line of `dump --json`.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogLine<'a> {
    /// The metadata given at create.
    Metadata {
        #[serde(serialize_with = "base64")]
        data: &'a [u8],
    },
    /// An entry of the log after overwrites.
    Entry {
        index: u64,
        term: u64,
        entry_type: i32,
        #[serde(serialize_with = "base64")]
        data: &'a [u8],
    },
    /// The last HardState.
    HardState { term: u64, vote: u64, commit: u64 },
}

impl<'a> LogLine<'a> {
    /// The line for a HardState.
    pub fn hard_state(hs: &HardState) -> LogLine<'a> {
        LogLine::HardState {
            term: hs.term,
            vote: hs.vote,
            commit: hs.commit,
        }
    }
}

/// The CLI's name of an entry type (also the value `--entry-type` takes).
pub fn entry_type_name(entry_type: EntryType) -> &'static str {
    match entry_type {
        EntryType::EntryNormal => "normal",
        EntryType::EntryConfChange => "conf-change",
        EntryType::EntryConfChangeV2 => "conf-change-v2",
    }
}

/// How many bytes of data a preview shows.
const PREVIEW_BYTES: usize = 24;

/// A short, one-line view of `data`: quoted text when it is printable ASCII, hex otherwise.
/// Text with a few binary bytes in it (a protobuf of strings, as etcd's requests are) is
/// shown as text with `\xNN` escapes, so the keys and values stay readable.
pub fn preview(data: &[u8]) -> String {
    let shown = &data[..data.len().min(PREVIEW_BYTES)];
    let more = if data.len() > shown.len() { "..." } else { "" };
    let printable = shown.iter().filter(|b| (0x20..0x7f).contains(*b)).count();
    if printable * 4 >= shown.len() * 3 {
        format!("\"{}\"{more}", shown.escape_ascii())
    } else {
        let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}{more}")
    }
}

/// A HardState the way tables print it.
pub fn hard_state_text(hs: &HardState) -> String {
    format!("term {}, vote {}, commit {}", hs.term, hs.vote, hs.commit)
}

/// A byte count for people: exact, with a binary-unit figure beside it when large.
pub fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{n} B ({value:.1} {unit})")
}
