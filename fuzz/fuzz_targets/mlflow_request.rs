//! `mlflow_request`: see `cairn_fuzz::mlflow_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::mlflow_request(data));
