//! `metric_chunk`: see `cairn_fuzz::metric_chunk`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::metric_chunk(data));
