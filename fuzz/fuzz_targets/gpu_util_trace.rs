//! `gpu_util_trace`: see `cairn_fuzz::gpu_util_trace`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::gpu_util_trace(data));
