//! `tfevents`: see `cairn_fuzz::tfevents`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::tfevents(data));
