#![no_main]
//! Fuzz target: see fuzz_oracles::scope_body for the input format and the oracle.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_oracles::scope_body::check(data));
