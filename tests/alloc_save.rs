//! The write path allocates nothing in steady state: 0 heap allocations per save, counted by a
//! global allocator, over 10,000 saves of a 256-byte entry and a HardState.
//!
//! Saves are synced (raft requires it for entries) through a file system whose fdatasync does
//! nothing, so the test measures raftwal's code, not the disk. No save in the counted window
//! cuts a segment: a cut creates names and buffers and may allocate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;
use std::path::Path;
use std::sync::Arc;

use raftwal::eraftpb::{Entry, HardState};
use raftwal::fs::{FileSystem, RealFs, WalFile};
use raftwal::{Options, SharedWal, SyncPolicy, Wal};

/// Counts the allocations made by the thread that enabled counting.
struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.with(Cell::get) {
        COUNT.with(|c| c.set(c.get() + 1));
    }
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Allocations made by this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    COUNT.with(Cell::get)
}

/// The real file system, except that fdatasync returns at once.
#[derive(Debug)]
struct NoSyncFs;

#[derive(Debug)]
struct NoSyncFile(Arc<dyn WalFile>);

impl WalFile for NoSyncFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.0.allocate(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
    fn sync_all(&self) -> io::Result<()> {
        Ok(())
    }
    fn try_lock(&self) -> io::Result<bool> {
        self.0.try_lock()
    }
    fn unlock(&self) -> io::Result<()> {
        self.0.unlock()
    }
}

impl FileSystem for NoSyncFs {
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
        Ok(Arc::new(NoSyncFile(RealFs.create_file(path)?)))
    }
    fn open_file(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn WalFile>> {
        Ok(Arc::new(NoSyncFile(RealFs.open_file(path, writable)?)))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealFs.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }
    fn sync_dir(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
}

const WARM_UP: u64 = 1_000;
const COUNTED: u64 = 10_000;

fn options() -> Options {
    Options {
        // Large enough that no counted save cuts: (1,000 + 10,000) saves of ~300 bytes.
        segment_size: 64 << 20,
        file_system: Arc::new(NoSyncFs),
        prepare_segments_in_background: false,
    }
}

/// Drives `save(hard_state, entries)` with one 256-byte entry per save and a HardState that
/// commits it; returns the allocations of the counted saves.
fn count_steady_state_allocations(mut save: impl FnMut(&HardState, &[Entry])) -> u64 {
    let mut entries = [Entry {
        term: 1,
        data: vec![7u8; 256].into(),
        ..Default::default()
    }];
    let mut hard_state = HardState {
        term: 1,
        ..Default::default()
    };
    let mut index = 0;
    let mut next = |entries: &mut [Entry; 1], hard_state: &mut HardState| {
        index += 1;
        entries[0].index = index;
        hard_state.commit = index;
    };
    for _ in 0..WARM_UP {
        next(&mut entries, &mut hard_state);
        save(&hard_state, &entries);
    }
    allocations_in(|| {
        for _ in 0..COUNTED {
            next(&mut entries, &mut hard_state);
            save(&hard_state, &entries);
        }
    })
}

#[test]
fn the_counter_sees_an_allocation() {
    let allocations = allocations_in(|| {
        std::hint::black_box(vec![1u8; 16]);
    });
    assert_eq!(allocations, 1);
}

#[test]
fn wal_save_allocates_nothing_in_steady_state() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = Wal::create_with(tmp.path().join("wal"), b"alloc", options()).unwrap();
    let allocations = count_steady_state_allocations(|hs, entries| {
        if let Err(e) = wal.save(hs, entries) {
            panic!("save failed: {e}");
        }
    });
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in {COUNTED} saves"
    );
    assert_eq!(wal.last_index(), WARM_UP + COUNTED);
}

#[test]
fn shared_wal_save_from_one_thread_allocates_nothing_in_steady_state() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = Wal::create_with(tmp.path().join("wal"), b"alloc", options()).unwrap();
    let wal = SharedWal::new(wal, SyncPolicy::Grouped).unwrap();
    let allocations = count_steady_state_allocations(|hs, entries| {
        if let Err(e) = wal.save(hs, entries) {
            panic!("save failed: {e}");
        }
    });
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in {COUNTED} saves"
    );
    assert_eq!(wal.last_index(), WARM_UP + COUNTED);
}
