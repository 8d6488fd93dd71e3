//! `gpu_query_csv`: see `cairn_fuzz::gpu_query_csv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::gpu_query_csv(data));
