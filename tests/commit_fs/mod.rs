//! A file system for group commit tests: the real one, with fdatasync of files counted, held
//! at a gate the test opens, or failed on demand.

#![allow(dead_code)]

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use raftwal::WalOptions;

#[path = "../support/hooked_fs.rs"]
mod hooked_fs;
use hooked_fs::{Call, HookedFs};

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
    pub fn options(&self) -> WalOptions {
        let control = self.control.clone();
        HookedFs::new(move |call| {
            if let Call::SyncData(_) = call {
                control.on_sync()?;
            }
            Ok(true)
        })
        .options(1 << 20)
    }
}
