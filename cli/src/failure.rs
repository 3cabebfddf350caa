//! How a subcommand fails: one line for stderr and an exit code that says what kind of
//! failure it was, so scripts can tell a torn tail (repairable) from corruption.

use std::fmt;
use std::io;
use std::path::Path;
use std::process::ExitCode;

use raftwal::{EntryRun, TornTail, WalOptions};

/// The command could not run (I/O error, not a WAL, locked, ...).
pub const FAILED: u8 = 1;
/// The log ends in a torn write; `raftwal repair` fixes it.
pub const TORN: u8 = 3;
/// The log is corrupt or inconsistent beyond a torn tail.
pub const CORRUPT: u8 = 4;

/// A failed subcommand.
#[derive(Debug)]
pub struct Failure {
    message: String,
    code: u8,
    /// The reader went away (`raftwal dump | head`): stop quietly.
    closed_pipe: bool,
}

impl Failure {
    /// A failure with its own message.
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code,
            closed_pipe: false,
        }
    }

    /// Prints the message and gives the exit code.
    pub fn report(self) -> ExitCode {
        if self.closed_pipe {
            return ExitCode::SUCCESS;
        }
        eprintln!("raftwal: {}", self.message.replace('\n', " "));
        ExitCode::from(self.code)
    }
}

/// The exit code for a library error, from its classification: a new kind of error is exit 1
/// unless the library calls it torn or corruption.
pub fn code_of(error: &raftwal::Error) -> u8 {
    if error.is_torn() {
        TORN
    } else if error.is_corruption() {
        CORRUPT
    } else {
        FAILED
    }
}

impl From<raftwal::Error> for Failure {
    fn from(error: raftwal::Error) -> Failure {
        let message = if let Some((file, offset)) = error.position().filter(|_| error.is_torn()) {
            torn_text(file, offset, None)
        } else if error.is_corruption() {
            corrupt_text(&error)
        } else {
            error.to_string()
        };
        Failure::new(code_of(&error), message)
    }
}

/// The failure for a torn tail, with what a repair would cut.
pub fn torn(tail: &TornTail) -> Failure {
    Failure::new(
        TORN,
        torn_text(
            &tail.file,
            tail.offset,
            Some((tail.len, tail.entries_after)),
        ),
    )
}

/// What a torn tail is and what to do about it, in the words of the crash model.
fn torn_text(file: &Path, offset: u64, details: Option<(u64, Option<EntryRun>)>) -> String {
    let dir = log_dir_of(file);
    let mut text = format!(
        "torn tail: the records of {} end at offset {offset}, followed by a partly written frame \
         or by data where only zeros may be, as a crash mid-write leaves it",
        file.display()
    );
    if let Some((len, entries)) = details {
        text += &format!(" ({} bytes to its end at {len}", len.saturating_sub(offset));
        if let Some(run) = entries {
            text += &format!(
                "; {} entries, index {}..={}, still parse there and a repair would cut them",
                run.count, run.first_index, run.last_index
            );
        }
        text += ")";
    }
    text += &format!(
        ". Under the crash model (every acknowledged write was synced whole) nothing cut was \
         acknowledged; `raftwal repair {}` cuts it off, keeping a copy",
        dir.display()
    );
    text
}

/// What corruption is and the way out: repair does not fix it, but damage at the end of the last
/// segment can be cut by the operator.
fn corrupt_text(error: &raftwal::Error) -> String {
    let mut text =
        format!("{error} (corruption, not a torn tail: `raftwal repair` does not fix it");
    if let Some((file, offset)) = error.position().filter(|(file, _)| is_last_segment(file)) {
        text += &format!(
            "; if everything from offset {offset} of the last segment on may be given up \
             (acknowledged entries included), `raftwal repair --truncate-at {offset} {}` cuts it, \
             keeping a copy (try --dry-run first)",
            log_dir_of(file).display()
        );
    }
    text += ")";
    text
}

/// The log directory holding the segment `file`.
fn log_dir_of(file: &Path) -> &Path {
    file.parent().unwrap_or(Path::new("."))
}

/// Whether `file` is the last segment of its log (the only one `--truncate-at` cuts).
pub fn is_last_segment(file: &Path) -> bool {
    let dir = log_dir_of(file);
    WalOptions::new()
        .segments(dir)
        .ok()
        .and_then(|segments| segments.last().map(|s| dir.join(&s.file_name)))
        .is_some_and(|last| last == file)
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Failure {
        Failure {
            closed_pipe: error.kind() == io::ErrorKind::BrokenPipe,
            ..Failure::new(FAILED, format!("writing the output: {error}"))
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
