//! `metrics_csv`: see `cairn_fuzz::metrics_csv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::metrics_csv(data));
