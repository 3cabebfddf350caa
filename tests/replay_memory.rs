//! Streaming replay holds at most about one segment in memory, however long the log is.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use raftwal::eraftpb::{Entry, HardState};
use raftwal::{LogRecord, Options, Wal, WalSnapshot};

/// Tracks live heap bytes and their high-water mark.
struct Tracking;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

const SEGMENT: u64 = 1 << 20;
const ENTRY: usize = 64 << 10;
const ENTRIES: u64 = 1024; // 64 MiB of entries

#[test]
fn replay_memory_is_bounded_by_a_segment_not_the_log() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let options = Options {
        segment_size: SEGMENT,
        ..Options::default()
    };
    let mut wal = Wal::create_with(&dir, b"", options.clone()).unwrap();
    let hs = HardState {
        term: 1,
        ..Default::default()
    };
    for index in 1..=ENTRIES {
        let entry = Entry {
            index,
            term: 1,
            data: vec![index as u8; ENTRY].into(),
            ..Default::default()
        };
        wal.save(&hs, &[entry]).unwrap();
    }
    wal.close().unwrap();

    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let mut wal = Wal::open_for_read_with(&dir, &WalSnapshot::default(), options).unwrap();
    let (mut count, mut bytes) = (0u64, 0usize);
    for record in wal.replay().unwrap() {
        if let LogRecord::Entry(entry) = record.unwrap() {
            assert_eq!(entry.index, count + 1);
            assert!(entry.data.iter().all(|&b| b == entry.index as u8));
            count += 1;
            bytes += entry.data.len();
        }
    }
    let peak = PEAK.load(Ordering::Relaxed) - baseline;
    assert_eq!(count, ENTRIES);
    assert_eq!(bytes, ENTRIES as usize * ENTRY);
    // The whole log is 64 MiB; replay may hold the current segment (1 MiB plus the entry that
    // crossed it), a decoded record and its entry: allow 8 segments' worth.
    assert!(
        peak < 8 * SEGMENT as usize,
        "replaying {} MiB peaked at {peak} bytes of heap",
        bytes >> 20
    );
}
