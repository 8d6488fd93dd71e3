//! `notebook_query`: see `cairn_fuzz::notebook_query`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::notebook_query(data));
