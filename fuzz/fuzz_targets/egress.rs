#![no_main]
//! Fuzz target: see fuzz_oracles::egress for the input format and the oracle.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_oracles::egress::check(data));
