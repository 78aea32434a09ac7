//! The GCRA rate limiter, judged by the bound it promises and by a model of the algorithm.
//!
//! Input: a configuration (burst 1..=16, one of a few rates, a key cap of 1..=8), then a
//! sequence of operations on a fake clock: advance time, check a key (from a space of 12, so
//! the cap is hit and idle keys' slots are reused or swept), or evict idle keys.
//!
//! Half the inputs use a hasher that gives every key the same home slot, so every key sits in
//! one probe chain and idle slots are reused in the middle of it.
//!
//! Oracles:
//! - the bound: over every window of every key's admissions, at most `burst + window /
//!   interval` requests were admitted;
//! - the cap: `tracked_keys()` never exceeds `max_tracked_keys`, and `TooManyKeys` comes only
//!   when that many keys are live (the tables are smaller than one sweep);
//! - the model: a plain GCRA without a cap (a map from key to theoretical arrival time, in
//!   `u128` so nothing wraps) decides every check the same way, except that the limiter may
//!   refuse a key the model has never had to track with `TooManyKeys` when the table is full of
//!   keys still inside their window (failing closed), and never otherwise.

use arbitrary::{Arbitrary, Unstructured};
use reference_server::guard::rate_limit::{
    Clock, OneHome, RateLimitConfig, RateLimitError, RateLimiter,
};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Default)]
struct FakeClock(Arc<AtomicU64>);

impl Clock for FakeClock {
    fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Arbitrary, Debug)]
enum Operation {
    Advance(u16),
    AdvanceLong(u32),
    Check(u8),
    EvictIdle,
}

#[derive(Arbitrary, Debug)]
struct Input {
    one_chain: bool,
    burst: u8,
    rate: u8,
    cap: u8,
    operations: Vec<Operation>,
}

const RATES: &[f64] = &[0.5, 1.0, 3.0, 10.0, 7.77, 1000.0, 1e6, 1e9, 3e9];

pub fn check(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let config = RateLimitConfig {
        burst: u32::from(input.burst % 16) + 1,
        per_second: RATES[input.rate as usize % RATES.len()],
        max_tracked_keys: usize::from(input.cap % 8) + 1,
    };
    let clock = FakeClock::default();
    // Start away from zero so that "a TAT in the past" is reachable from the first check.
    clock.0.store(1_000_000_000, Ordering::SeqCst);
    if input.one_chain {
        let limiter = RateLimiter::with_clock_and_hasher(config, clock.clone(), OneHome);
        run(
            &input,
            config,
            &clock,
            &limiter.expect("the fuzz configurations are valid"),
        );
    } else {
        let limiter = RateLimiter::with_clock(config, clock.clone());
        run(
            &input,
            config,
            &clock,
            &limiter.expect("the fuzz configurations are valid"),
        );
    }
}

fn run<S: BuildHasher>(
    input: &Input,
    config: RateLimitConfig,
    clock: &FakeClock,
    limiter: &RateLimiter<u8, FakeClock, S>,
) {
    // The promised rate, rounded as documented (never faster than configured).
    let interval = ((1e9 / config.per_second).ceil() as u128).max(1);
    let tolerance = interval * u128::from(config.burst - 1);
    let mut model: HashMap<u8, u128> = HashMap::new();
    let mut admitted: HashMap<u8, Vec<u128>> = HashMap::new();

    for operation in input.operations.iter().take(1024) {
        match *operation {
            Operation::Advance(nanos) => {
                clock.0.fetch_add(u64::from(nanos) * 1000, Ordering::SeqCst);
            }
            Operation::AdvanceLong(nanos) => {
                clock.0.fetch_add(u64::from(nanos) * 10, Ordering::SeqCst);
            }
            Operation::EvictIdle => {
                limiter.evict_idle();
            }
            Operation::Check(key) => {
                let key = key % 12;
                let now = u128::from(clock.now_nanos());
                let verdict = limiter.check(&key);
                let tat = model.get(&key).copied().unwrap_or(now).max(now);
                let model_admits = tat - now <= tolerance;
                match verdict {
                    Ok(()) => {
                        assert!(
                            model_admits,
                            "admitted {key} at {now}; the model refuses: {input:?}"
                        );
                        admitted.entry(key).or_default().push(now);
                    }
                    Err(RateLimitError::Limited { retry_after }) => {
                        assert!(
                            !model_admits,
                            "refused {key} at {now}; the model admits: {input:?}"
                        );
                        assert_eq!(
                            retry_after.as_nanos(),
                            tat - now - tolerance,
                            "wrong retry-after for {key} at {now}"
                        );
                    }
                    Err(RateLimitError::TooManyKeys) => {
                        // Only a key the limiter is not tracking can be refused this way, and
                        // only while the table is full: such a key is fresh in the model.
                        // The table is smaller than one sweep: every tracked key is live.
                        assert_eq!(
                            limiter.live_keys(),
                            config.max_tracked_keys,
                            "TooManyKeys with room in the table"
                        );
                        assert!(
                            model.get(&key).is_none_or(|&tat| tat <= now),
                            "TooManyKeys for {key}, which the limiter must still be tracking"
                        );
                        continue;
                    }
                    Err(other) => panic!("unexpected refusal {other:?}"),
                }
                if model_admits {
                    model.insert(key, tat + interval);
                }
            }
        }
        assert!(
            limiter.tracked_keys() <= config.max_tracked_keys,
            "{} keys tracked, cap {}",
            limiter.tracked_keys(),
            config.max_tracked_keys
        );
    }

    for (key, times) in &admitted {
        for (first, &start) in times.iter().enumerate() {
            for (last, &end) in times.iter().enumerate().skip(first) {
                let count = (last - first + 1) as u128;
                let allowed = u128::from(config.burst) + (end - start) / interval;
                assert!(
                    count <= allowed,
                    "key {key}: {count} admitted in {} ns, the bound is {allowed}",
                    end - start
                );
            }
        }
    }
}
