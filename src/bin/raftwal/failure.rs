//! How a subcommand fails: one line for stderr and an exit code that says what kind of
//! failure it was, so scripts can tell a torn tail (repairable) from corruption.

use std::fmt;
use std::io;
use std::path::Path;
use std::process::ExitCode;

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

/// The exit code for a library error.
pub fn code_of(error: &raftwal::Error) -> u8 {
    use raftwal::Error::*;
    match error {
        TornTail { .. } => TORN,
        CrcMismatch { .. }
        | Corrupt { .. }
        | MetadataConflict { .. }
        | SliceOutOfRange { .. }
        | SnapshotMismatch { .. }
        | SnapshotNotFound { .. }
        | SegmentGap { .. }
        | NotRepairable { .. } => CORRUPT,
        _ => FAILED,
    }
}

impl From<raftwal::Error> for Failure {
    fn from(error: raftwal::Error) -> Failure {
        Failure::new(code_of(&error), error.to_string())
    }
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

/// The segment file and frame offset an error names, if it names one.
pub fn position(error: &raftwal::Error) -> Option<(&Path, u64)> {
    use raftwal::Error::*;
    match error {
        TornTail { file, offset }
        | CrcMismatch { file, offset }
        | Corrupt { file, offset, .. }
        | MetadataConflict { file, offset } => Some((file, *offset)),
        _ => None,
    }
}
