//! A dudect-style check that the API key check is constant time, in process.
//!
//! Two classes of wrong tokens, drawn in random order: a fixed token equal to the key in all but
//! its last byte, and fresh random tokens of the same length. Each call is timed; Welch's t
//! between the classes is computed on the raw times and on crops below several percentiles
//! (dudect's way of removing interrupts and other one-sided noise). A leak makes |t| grow with
//! the sample; dudect's threshold for "definitely not constant time" is 4.5.
//!
//! The same harness is run on a byte-wise early-exit comparison first, which must be caught:
//! that shows the check can fail. Slow (10^6 measurements), so ignored by default:
//! `cargo test --release -p reference-server --test constant_time -- --ignored --nocapture`.

use rand::Rng;
use reference_server::guard::api_keys::{ApiKeys, Principal};
use std::hint::black_box;
use std::time::Instant;

const MEASUREMENTS: usize = 1_000_000;
const THRESHOLD: f64 = 4.5;

/// Welch's t statistic between two samples.
fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let variance =
        |x: &[f64], m: f64| x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() as f64 - 1.0);
    let (ma, mb) = (mean(a), mean(b));
    let (va, vb) = (variance(a, ma), variance(b, mb));
    (ma - mb) / (va / a.len() as f64 + vb / b.len() as f64).sqrt()
}

/// Times `check` on the two classes and returns the largest |t| over the raw data and the
/// crops below the 50th to 99th percentiles of the pooled times.
fn max_t(key: &[u8], check: impl Fn(&[u8]) -> bool) -> f64 {
    let mut rng = rand::rng();
    let mut near_miss = key.to_vec();
    *near_miss.last_mut().expect("a key") ^= 0x01;
    // As dudect does, every input is prepared before any is timed, in one buffer, so that
    // drawing random bytes does not disturb the caches between measurements.
    let classes: Vec<bool> = (0..MEASUREMENTS).map(|_| rng.random()).collect();
    let mut inputs = vec![0u8; MEASUREMENTS * key.len()];
    for (input, fixed_class) in inputs.chunks_mut(key.len()).zip(&classes) {
        if *fixed_class {
            input.copy_from_slice(&near_miss);
        } else {
            rng.fill(input);
        }
    }
    let mut fixed_times = Vec::with_capacity(MEASUREMENTS / 2 + 1);
    let mut random_times = Vec::with_capacity(MEASUREMENTS / 2 + 1);
    for (input, fixed_class) in inputs.chunks(key.len()).zip(&classes) {
        let started = Instant::now();
        black_box(check(black_box(input)));
        let elapsed = started.elapsed().as_nanos() as f64;
        if *fixed_class {
            fixed_times.push(elapsed);
        } else {
            random_times.push(elapsed);
        }
    }
    let mut pooled: Vec<f64> = fixed_times.iter().chain(&random_times).copied().collect();
    pooled.sort_by(f64::total_cmp);
    let mut worst = welch_t(&fixed_times, &random_times).abs();
    for percentile in [0.5, 0.75, 0.9, 0.95, 0.99] {
        let cut = pooled[(percentile * (pooled.len() - 1) as f64) as usize];
        let a: Vec<f64> = fixed_times.iter().copied().filter(|t| *t <= cut).collect();
        let b: Vec<f64> = random_times.iter().copied().filter(|t| *t <= cut).collect();
        if a.len() > 100 && b.len() > 100 {
            worst = worst.max(welch_t(&a, &b).abs());
        }
    }
    worst
}

#[test]
#[ignore = "slow: 2 x 10^6 timed calls; run with --release --ignored"]
fn the_api_key_check_is_constant_time() {
    // The control: an early-exit comparison over a key long enough to show (a few hundred
    // bytes of difference per call) must be caught, or this test proves nothing.
    let long_key: Vec<u8> = (0..4096).map(|i| (i % 251) as u8).collect();
    let early_exit = max_t(&long_key, |token| token == long_key.as_slice());
    println!("early-exit comparison: max |t| = {early_exit:.1}");
    assert!(
        early_exit > THRESHOLD,
        "the dudect check missed an early-exit comparison (|t| = {early_exit:.1})"
    );

    let key = b"constant-time-test-key-0123456789abcdef".to_vec();
    let keys = ApiKeys::from_plain_keys(
        [(Principal::new("operator", ["files:write"]), key.as_slice())],
        "test",
    )
    .expect("a valid key");
    let reference = max_t(&key, |token| keys.authenticate(token).is_ok());
    println!("reference ApiKeys::authenticate: max |t| = {reference:.1}");
    assert!(
        reference < THRESHOLD,
        "the API key check looks timing-dependent: |t| = {reference:.1}"
    );
}
