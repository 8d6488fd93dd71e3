//! `mlflow_meta`: see `cairn_fuzz::mlflow_meta`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::mlflow_meta(data));
