//! The pipeline of prepared segments: the next segment file is created under a temporary name,
//! locked and preallocated ahead of the cut that needs it, so a cut never waits on allocation
//! (etcd's `file_pipeline.go`).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::fs::{FileSystem, WalFile};
use crate::segment::create_locked;

/// A segment file prepared for a cut: created under a temporary name, locked and preallocated.
#[derive(Debug)]
pub(crate) struct PreparedFile {
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn WalFile>,
}

/// Creates `<dir>/<n % 2>.tmp`, locks it and preallocates `size` bytes.
fn prepare(fs: &dyn FileSystem, dir: &Path, count: u64, size: u64) -> Result<PreparedFile> {
    let path = dir.join(format!("{}.tmp", count % 2));
    let file = create_locked(fs, &path, size)?;
    Ok(PreparedFile { path, file })
}

/// Hands out prepared segment files, one at a time, for cuts.
#[derive(Debug)]
pub(crate) enum FilePipeline {
    /// A thread keeps one file ready ahead of the next cut.
    Background {
        files: Option<Receiver<Result<PreparedFile>>>,
        thread: Option<JoinHandle<()>>,
    },
    /// Files are prepared when a cut asks (deterministic order of I/O calls, for fault tests).
    Inline {
        fs: Arc<dyn FileSystem>,
        dir: PathBuf,
        size: u64,
        count: u64,
    },
}

impl FilePipeline {
    /// Starts preparing files of `size` bytes in `dir`, in a background thread when `background`.
    pub(crate) fn start(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        size: u64,
        background: bool,
    ) -> FilePipeline {
        let dir = dir.to_path_buf();
        if !background {
            return FilePipeline::Inline {
                fs,
                dir,
                size,
                count: 0,
            };
        }
        // A rendezvous channel: the thread prepares exactly one file ahead and waits for a cut
        // to take it.
        let (tx, rx) = mpsc::sync_channel::<Result<PreparedFile>>(0);
        let (thread_fs, thread_dir) = (fs.clone(), dir.clone());
        let thread = std::thread::Builder::new()
            .name("raftwal-pipeline".into())
            .spawn(move || {
                let (fs, dir) = (thread_fs, thread_dir);
                for count in 0.. {
                    let prepared = prepare(fs.as_ref(), &dir, count, size);
                    let failed = prepared.is_err();
                    if let Err(mpsc::SendError(unused)) = tx.send(prepared) {
                        // The log closed: remove the file nobody will take.
                        if let Ok(file) = unused {
                            let _ = file.file.unlock();
                            let _ = fs.remove_file(&file.path);
                        }
                        return;
                    }
                    if failed {
                        return;
                    }
                }
            });
        match thread {
            Ok(thread) => FilePipeline::Background {
                files: Some(rx),
                thread: Some(thread),
            },
            // No thread to be had: prepare files when cuts ask instead.
            Err(_) => FilePipeline::Inline {
                fs,
                dir,
                size,
                count: 0,
            },
        }
    }

    /// The next prepared file.
    pub(crate) fn take(&mut self) -> Result<PreparedFile> {
        match self {
            FilePipeline::Background { files, .. } => files
                .as_ref()
                .and_then(|rx| rx.recv().ok())
                .unwrap_or_else(|| {
                    Err(Error::Poisoned {
                        reason: "the segment pipeline stopped after an earlier failure".into(),
                    })
                }),
            FilePipeline::Inline {
                fs,
                dir,
                size,
                count,
            } => {
                let prepared = prepare(fs.as_ref(), dir, *count, *size);
                *count += 1;
                prepared
            }
        }
    }

    /// Stops preparing files and removes the one prepared but not taken.
    pub(crate) fn stop(&mut self) {
        if let FilePipeline::Background { files, thread } = self {
            drop(files.take());
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for FilePipeline {
    fn drop(&mut self) {
        self.stop();
    }
}
