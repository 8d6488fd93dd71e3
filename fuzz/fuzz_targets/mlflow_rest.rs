//! `mlflow_rest`: see `cairn_fuzz::mlflow_rest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::mlflow_rest(data));
