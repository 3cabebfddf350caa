//! Progress bars on stderr for work that can take more than a second, drawn only when stderr is
//! a terminal so scripts and pipes see clean output.

use std::io::IsTerminal as _;
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` bytes labelled `what`, hidden unless stderr is a terminal.
pub fn bytes(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), draw_target());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// A bar of `len` steps labelled `what`, hidden unless stderr is a terminal.
pub fn steps(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), draw_target());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// A spinner counting records, for scans whose length is not known in advance, hidden unless
/// stderr is a terminal.
pub fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, draw_target());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {pos} records ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// Maps a record's (segment file, offset) to the bytes of the log read so far, so a record
/// scan can drive a byte bar.
#[derive(Debug)]
pub struct SegmentBytes {
    /// Each segment's file name and the total size of the segments before it.
    starts: Vec<(String, u64)>,
    total: u64,
}

impl SegmentBytes {
    /// The segments `names` of the log in `dir`, in order. A size that cannot be read counts
    /// as zero: progress is a display, never a reason to fail.
    pub fn new(dir: &Path, names: impl IntoIterator<Item = String>) -> SegmentBytes {
        let mut starts = Vec::new();
        let mut total = 0;
        for name in names {
            let len = std::fs::metadata(dir.join(&name)).map_or(0, |m| m.len());
            starts.push((name, total));
            total += len;
        }
        SegmentBytes { starts, total }
    }

    /// The bytes of every segment.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes read once the scan reached `offset` of segment `file`.
    pub fn position(&self, file: &str, offset: u64) -> u64 {
        self.starts
            .iter()
            .find(|(name, _)| name == file)
            .map_or(0, |(_, start)| start + offset)
    }
}
