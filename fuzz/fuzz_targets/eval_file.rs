//! `eval_file`: see `cairn_fuzz::eval_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::eval_file(data));
