//! A file system for group commit tests: the real one, with fdatasync of files counted, held
//! at a gate the test opens, or failed on demand.

#![allow(dead_code)]

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use raftwal::fs::{FileSystem, RealFs, WalFile};
use raftwal::Options;

/// What the test controls and observes.
#[derive(Debug, Default)]
pub struct Control {
    syncs: AtomicU64,
    failed_syncs: AtomicU64,
    fail_syncs: AtomicBool,
    gate: Mutex<Gate>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Gate {
    closed: bool,
    held: u64,
}

impl Control {
    /// fdatasync calls on files so far (including failed ones).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// fdatasync calls that were made to fail.
    pub fn failed_syncs(&self) -> u64 {
        self.failed_syncs.load(Ordering::SeqCst)
    }

    /// From now on every fdatasync fails with EIO (or succeeds again, with `false`).
    pub fn fail_syncs(&self, fail: bool) {
        self.fail_syncs.store(fail, Ordering::SeqCst);
    }

    /// Holds every later fdatasync until `open_gate`.
    pub fn close_gate(&self) {
        self.gate.lock().unwrap().closed = true;
    }

    /// Releases the held fdatasyncs.
    pub fn open_gate(&self) {
        self.gate.lock().unwrap().closed = false;
        self.changed.notify_all();
    }

    /// Waits until `n` fdatasyncs are held at the gate.
    pub fn wait_until_held(&self, n: u64) {
        let mut gate = self.gate.lock().unwrap();
        while gate.held < n {
            gate = self.changed.wait(gate).unwrap();
        }
    }

    fn on_sync(&self) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        let mut gate = self.gate.lock().unwrap();
        if gate.closed {
            gate.held += 1;
            self.changed.notify_all();
            while gate.closed {
                gate = self.changed.wait(gate).unwrap();
            }
            gate.held -= 1;
        }
        drop(gate);
        if self.fail_syncs.load(Ordering::SeqCst) {
            self.failed_syncs.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(5)); // EIO
        }
        Ok(())
    }
}

/// The real file system with fdatasync of files under the test's [`Control`].
#[derive(Debug, Clone, Default)]
pub struct ControlledFs {
    pub control: Arc<Control>,
}

impl ControlledFs {
    /// Options on this file system, with 1 MiB segments and inline segment preparation.
    pub fn options(&self) -> Options {
        Options {
            segment_size: 1 << 20,
            file_system: Arc::new(self.clone()),
            prepare_segments_in_background: false,
        }
    }
}

#[derive(Debug)]
struct ControlledFile {
    inner: Arc<dyn WalFile>,
    control: Arc<Control>,
}

impl WalFile for ControlledFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.control.on_sync()?;
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.inner.sync_all()
    }
    fn try_lock(&self) -> io::Result<bool> {
        self.inner.try_lock()
    }
    fn unlock(&self) -> io::Result<()> {
        self.inner.unlock()
    }
}

impl FileSystem for ControlledFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        RealFs.create_dir_all(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        RealFs.remove_dir_all(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        RealFs.remove_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        RealFs.list_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        RealFs.exists(path)
    }
    fn create_file(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        Ok(Arc::new(ControlledFile {
            inner: RealFs.create_file(path)?,
            control: self.control.clone(),
        }))
    }
    fn open_file(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn WalFile>> {
        Ok(Arc::new(ControlledFile {
            inner: RealFs.open_file(path, writable)?,
            control: self.control.clone(),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealFs.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        RealFs.sync_dir(path)
    }
}
