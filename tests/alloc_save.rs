//! The write path allocates nothing in steady state: 0 heap allocations per save, counted by a
//! global allocator, over 10,000 saves of a 256-byte entry and a HardState.
//!
//! Saves are synced (raft requires it for entries) through a file system whose fdatasync does
//! nothing, so the test measures raftwal's code, not the disk. No save in the counted window
//! cuts a segment: a cut creates names and buffers and may allocate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use raftwal::eraftpb::{Entry, HardState};
use raftwal::{SharedWal, SyncPolicy, WalOptions};

#[path = "support/hooked_fs.rs"]
mod hooked_fs;
use hooked_fs::{Call, HookedFs};

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

const WARM_UP: u64 = 1_000;
const COUNTED: u64 = 10_000;

/// The real file system, except that syncs return at once: the count is raftwal's code, not
/// the disk's.
fn options() -> WalOptions {
    let skip_syncs = HookedFs::new(|call| Ok(matches!(call, Call::Write(_))));
    // Large enough that no counted save cuts: (1,000 + 10,000) saves of ~300 bytes.
    skip_syncs.options(64 << 20)
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
    let mut wal = options().create(tmp.path().join("wal"), b"alloc").unwrap();
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
    let wal = options().create(tmp.path().join("wal"), b"alloc").unwrap();
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
