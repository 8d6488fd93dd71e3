//! `notebook_markup`: see `cairn_fuzz::notebook_markup`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::notebook_markup(data));
