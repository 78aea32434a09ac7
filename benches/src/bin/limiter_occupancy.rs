//! How full the compact table can get before it refuses a new key below the cap.
//!
//! `cargo run --release -p benches --bin limiter_occupancy [CAP]` fills a limiter whose cap is
//! CAP keys (default 1,000,000) with distinct live keys, one new key at a time, and counts the
//! new keys refused with `TooManyKeys` in each tenth of the cap. A refusal below the cap is a
//! false refusal: the key's probe window was full of live keys. (Keys are random, so their
//! homes are random; the limiter's fingerprints are seeded per run.) Then every key goes idle
//! and CAP more new keys arrive: each one finds room by reusing an idle slot on its way or by a
//! sweep, and the run counts refusals and the time per new key.

use reference_server::guard::rate_limit::{
    Clock, RateLimitConfig, RateLimitError, RateLimiter, WINDOW,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Time that moves only when told, so "every key goes idle" is one step.
#[derive(Clone, Default)]
struct SteppedClock(Arc<AtomicU64>);

impl Clock for SteppedClock {
    fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn main() {
    let cap: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let clock = SteppedClock::default();
    let config = RateLimitConfig {
        burst: 1,
        per_second: 1e-3,
        max_tracked_keys: cap,
    };
    let limiter =
        RateLimiter::<u64, _>::with_clock(config, clock.clone()).expect("a valid configuration");
    println!(
        "cap {cap} keys, table {} bytes ({:.2} a key), probe window {WINDOW} slots",
        limiter.table_bytes(),
        limiter.table_bytes() as f64 / cap as f64
    );
    println!("| keys offered (share of the cap) | new keys refused below the cap |");
    println!("|---|---|");
    let tenth = cap / 10;
    let mut key = 0u64;
    let mut total_refused = 0;
    for decile in 0..10 {
        let mut refused = 0;
        for _ in 0..tenth {
            key += 1;
            match limiter.check(&key) {
                Ok(()) => {}
                Err(RateLimitError::TooManyKeys) => refused += 1,
                Err(other) => panic!("a new key refused with {other:?}"),
            }
        }
        total_refused += refused;
        println!(
            "| {}-{}% | {refused} ({:.4}%) |",
            decile * 10,
            decile * 10 + 10,
            100.0 * refused as f64 / tenth as f64
        );
    }
    println!(
        "\n{total_refused} of {key} new keys refused ({:.4}%); {} keys tracked at the end.",
        100.0 * total_refused as f64 / key as f64,
        limiter.tracked_keys()
    );

    // Every key's window (1,000 s) passes; a second wave of as many new keys.
    clock.0.store(2_000_000_000_000, Ordering::Relaxed);
    let started = Instant::now();
    let refused = (0..cap as u64)
        .filter(|offset| limiter.check(&(key + 1 + offset)).is_err())
        .count();
    let elapsed = started.elapsed();
    println!(
        "Then every key went idle and {cap} new keys came: {refused} refused, {:.0} ns a new key (reuse on the way, or a sweep of 1,024 slots), {} keys tracked, {} live.",
        elapsed.as_nanos() as f64 / cap as f64,
        limiter.tracked_keys(),
        limiter.live_keys()
    );
}
