//! `catalog_sync`: see `cairn_fuzz::catalog_sync`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::catalog_sync(data));
