//! `query`: see `cairn_fuzz::query`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::query(data));
