#![no_main]
//! Fuzz target: see fuzz_oracles::resource_uri for the input format and the oracle.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_oracles::resource_uri::check(data));
