//! `backup_container`: see `cairn_fuzz::backup_container`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::backup_container(data));
