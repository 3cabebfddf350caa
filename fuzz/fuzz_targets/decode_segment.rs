//! Arbitrary bytes as the only segment of a log: the frame decoder, the CRC chain, torn-tail
//! classification and repair must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let fs = common::disk(&[("0000000000000000-0000000000000000.wal".to_string(), data)]);
    common::read_everything(&fs, common::read_size_for(data.len()));
});
