//! The only place raftwal touches the file system.
//!
//! Everything above this module reaches files through [`FileSystem`] and [`WalFile`], so the log
//! can run on the real file system ([`RealFs`]) or on a simulated one that drops or tears
//! unsynced writes and fails any call, which is how crash safety is tested.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

use fs2::FileExt;

#[cfg(feature = "sim")]
pub mod sim;

/// An open file: positional reads and writes, durability and locking.
///
/// Methods take `&self` so a file can be shared between the log and its lock list.
pub trait WalFile: Debug + Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`, extending the file when needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// The file's current size in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file holds no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Truncates or extends (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserves disk space so the file is at least `len` bytes long (extending its size).
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data (and the metadata needed to read it) durable: fdatasync.
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the file's data and all its metadata durable: fsync.
    fn sync_all(&self) -> io::Result<()>;
    /// Takes an exclusive advisory lock without waiting; `Ok(false)` when someone else holds it.
    fn try_lock(&self) -> io::Result<bool>;
    /// Releases the lock taken by [`WalFile::try_lock`].
    fn unlock(&self) -> io::Result<()>;
}

/// Directory operations and file opening. Implementations must be usable from several threads:
/// the next segment is prepared in the background.
pub trait FileSystem: Debug + Send + Sync {
    /// Creates `path` and its missing parents (mode 0700 for what it creates).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Removes `path` and everything below it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Removes the empty directory `path`.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of directory `path`, in no particular order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Creates `path` (truncating an existing file) for reading and writing, mode 0600.
    fn create_file(&self, path: &Path) -> io::Result<Arc<dyn WalFile>>;
    /// Opens an existing file, read-only unless `writable`.
    fn open_file(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn WalFile>>;
    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` (an empty directory, for directories).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable: fsync on the directory.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// The directory holding `path` (`.` for a bare name), whose fsync makes `path`'s entry durable.
pub(crate) fn parent_dir(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

/// A file of the operating system's file system.
#[derive(Debug)]
struct RealFile(File);

impl Drop for RealFile {
    /// Unlocks before the file closes: a flock lock belongs to the open file, which a child
    /// process being spawned by another thread shares until it execs, so closing alone could
    /// leave the segment locked against the next open for that long.
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.0);
    }
}

impl WalFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        loop {
            match self.0.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt as _;
        self.0.write_all_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        // posix_fallocate returns its error instead of setting errno (fs2 reads errno, turning
        // ENOSPC into "Success"), so call it directly.
        use std::os::unix::io::AsRawFd as _;
        let len =
            libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        loop {
            // SAFETY: the descriptor is owned by `self.0` and open for the whole call.
            match unsafe { libc::posix_fallocate(self.0.as_raw_fd(), 0, len) } {
                0 => return Ok(()),
                libc::EINTR => continue,
                errno => return Err(io::Error::from_raw_os_error(errno)),
            }
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn try_lock(&self) -> io::Result<bool> {
        match FileExt::try_lock_exclusive(&self.0) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == fs2::lock_contended_error().kind() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn unlock(&self) -> io::Result<()> {
        FileExt::unlock(&self.0)
    }
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt as _;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn create_file(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn open_file(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn WalFile>> {
        let file = OpenOptions::new().read(true).write(writable).open(path)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}
