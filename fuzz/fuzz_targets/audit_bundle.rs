//! `audit_bundle`: see `cairn_fuzz::audit_bundle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::audit_bundle(data));
