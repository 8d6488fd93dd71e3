//! `sync_frame`: see `cairn_fuzz::sync_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::sync_frame(data));
