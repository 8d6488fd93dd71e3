//! `review_file`: see `cairn_fuzz::review_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::review_file(data));
