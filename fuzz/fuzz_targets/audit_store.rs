//! `audit_store`: see `cairn_fuzz::audit_store`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::audit_store(data));
