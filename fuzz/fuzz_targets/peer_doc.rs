//! `peer_doc`: see `cairn_fuzz::peer_doc`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::peer_doc(data));
