//! The real file system with a test's hook on writes and syncs: count them, hold them at a
//! gate, fail them, or skip the sync. Include with
//! `#[path = "support/hooked_fs.rs"] mod hooked_fs;` (adjust the path from a subdirectory).
#![allow(dead_code)]

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use raftwal::fs::{FileSystem, RealFs, WalFile};
use raftwal::WalOptions;

/// A call the hook is asked about, with the name of the file it goes to (a segment keeps its
/// file across its rename from `N.tmp`, so this is the name it was opened or created under).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    /// `write_all_at`.
    Write(&'a str),
    /// `sync_data` (fdatasync).
    SyncData(&'a str),
    /// `sync_all` (fsync).
    SyncAll(&'a str),
}

/// Decides a call: `Ok(true)` lets it reach the disk, `Ok(false)` skips it and reports success,
/// `Err` fails it. Must not allocate on the happy path (the allocation test uses it).
pub type Hook = Arc<dyn Fn(Call<'_>) -> io::Result<bool> + Send + Sync>;

/// The real file system, asking `hook` before every write and sync.
#[derive(Clone)]
pub struct HookedFs {
    hook: Hook,
}

impl fmt::Debug for HookedFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HookedFs")
    }
}

impl HookedFs {
    /// A file system that asks `hook` about every write and sync.
    pub fn new(hook: impl Fn(Call<'_>) -> io::Result<bool> + Send + Sync + 'static) -> HookedFs {
        HookedFs {
            hook: Arc::new(hook),
        }
    }

    /// Options for a log on this file system, preparing segments inline so that every call
    /// happens in the caller's thread and counts are deterministic.
    pub fn options(&self, segment_size: u64) -> WalOptions {
        WalOptions::new()
            .segment_size(segment_size)
            .file_system(Arc::new(self.clone()))
            .prepare_segments_in_background(false)
    }

    fn wrap(&self, path: &Path, inner: Arc<dyn WalFile>) -> Arc<dyn WalFile> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Arc::new(HookedFile {
            name,
            inner,
            hook: self.hook.clone(),
        })
    }
}

struct HookedFile {
    name: String,
    inner: Arc<dyn WalFile>,
    hook: Hook,
}

impl fmt::Debug for HookedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HookedFile({})", self.name)
    }
}

impl WalFile for HookedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if (self.hook)(Call::Write(&self.name))? {
            self.inner.write_all_at(buf, offset)?;
        }
        Ok(())
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
        if (self.hook)(Call::SyncData(&self.name))? {
            self.inner.sync_data()?;
        }
        Ok(())
    }
    fn sync_all(&self) -> io::Result<()> {
        if (self.hook)(Call::SyncAll(&self.name))? {
            self.inner.sync_all()?;
        }
        Ok(())
    }
    fn try_lock(&self) -> io::Result<bool> {
        self.inner.try_lock()
    }
    fn unlock(&self) -> io::Result<()> {
        self.inner.unlock()
    }
}

impl FileSystem for HookedFs {
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
        Ok(self.wrap(path, RealFs.create_file(path)?))
    }
    fn open_file(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn WalFile>> {
        Ok(self.wrap(path, RealFs.open_file(path, writable)?))
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
