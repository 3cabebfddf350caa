//! Arbitrary multi-segment logs: the input is cut into up to four segments (a two-byte
//! little-endian length before each) named with consecutive sequence numbers and first indexes
//! taken from the input, then opened and read in every mode.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut segments = Vec::new();
    let mut index = 0u64;
    for seq in 0..4u64 {
        if rest.len() < 3 {
            break;
        }
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        index += u64::from(rest[2]);
        rest = &rest[3..];
        let (bytes, tail) = rest.split_at(len.min(rest.len()));
        segments.push((format!("{seq:016x}-{index:016x}.wal"), bytes));
        rest = tail;
    }
    if segments.is_empty() {
        return;
    }
    let fs = common::disk(&segments);
    common::read_everything(&fs, common::read_size_for(data.len()));
});
