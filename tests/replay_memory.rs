//! Streaming replay holds a window of a few MiB in memory, however long the log and however
//! large its segments.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use raftwal::eraftpb::{Entry, HardState};
use raftwal::{LogRecord, WalOptions, WalSnapshot};

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

/// The tests share the heap counters: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Writes `entries` entries of `entry_size` bytes into segments of `segment_size`, then replays
/// them and returns the replay's heap high-water mark above what was live before it.
fn replay_peak(segment_size: u64, entry_size: usize, entries: u64) -> usize {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wal");
    let options = WalOptions::new().segment_size(segment_size);
    let mut wal = options.create(&dir, b"").unwrap();
    let hs = HardState {
        term: 1,
        ..Default::default()
    };
    for index in 1..=entries {
        let entry = Entry {
            index,
            term: 1,
            data: vec![index as u8; entry_size].into(),
            ..Default::default()
        };
        wal.save(&hs, &[entry]).unwrap();
    }
    wal.close().unwrap();

    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let mut wal = options
        .open_for_read(&dir, &WalSnapshot::default())
        .unwrap();
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
    assert_eq!(count, entries);
    assert_eq!(bytes, entries as usize * entry_size);
    peak
}

#[test]
fn replay_memory_is_bounded_by_a_segment_not_the_log() {
    const SEGMENT: u64 = 1 << 20;
    // 64 MiB of entries in 1 MiB segments. Replay may hold the current segment (plus the entry
    // that crossed it), a decoded record and its entry: allow 8 segments' worth.
    let peak = replay_peak(SEGMENT, 64 << 10, 1024);
    assert!(
        peak < 8 * SEGMENT as usize,
        "replaying 64 MiB peaked at {peak} bytes of heap"
    );
}

#[test]
fn replay_memory_does_not_grow_with_the_segment_size() {
    // 32 MiB of entries in one preallocated 64 MiB segment: replay reads it through a window of
    // a few MiB (one read chunk plus the frame in progress), not the whole segment.
    let peak = replay_peak(64 << 20, 64 << 10, 512);
    assert!(
        peak < 8 << 20,
        "replaying a 64 MiB segment peaked at {peak} bytes of heap"
    );
}
