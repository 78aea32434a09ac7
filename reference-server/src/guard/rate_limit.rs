//! Per-principal rate limiting with GCRA (the generic cell rate algorithm) and a hard cap on
//! the number of principals tracked.
//!
//! GCRA keeps one number per key, the *theoretical arrival time* (TAT). With a sustained rate
//! of one request per `interval` and a burst of `burst`, a request at time `now` is admitted
//! when `max(TAT, now) - now <= (burst - 1) * interval`, and then `TAT = max(TAT, now) +
//! interval`. This composes burst and sustained rate correctly in one rule: at most `burst`
//! requests at once, then one per `interval`, so over any window of length `t` a key is
//! admitted at most `burst + t / interval` times. (The seed's limiter compared the burst with a
//! one-minute window, so its "burst" was just a smaller per-minute limit.)
//!
//! Why not governor: governor implements the same algorithm, but its `StateStore` can only
//! answer "here is the previous TAT or none"; a full store has no way to *refuse* a new key, it
//! could only admit it untracked, which fails open. This limiter refuses a new key with
//! [`RateLimitError::TooManyKeys`] once `max_tracked_keys` keys are live and none is idle.
//!
//! Cost: a TSC clock read, two foldhash hashes of the key (shard, then table; both randomly
//! seeded), a shared lock on one of 64 shards, one hashbrown lookup and a compare-and-swap on
//! the key's TAT (a new key takes the shard's exclusive lock once): tens of nanoseconds
//! (benches/README.md has the figures against governor). Memory: about `size_of::<K>() + 8` bytes per key
//! plus hash-map overhead, never more than `max_tracked_keys` keys.
//!
//! Failure: [`RateLimitError::Limited`] carries the time after which the same request would be
//! admitted (for `Retry-After`); [`RateLimitError::TooManyKeys`] means the table is full of keys
//! that are all still inside their window: the limiter fails closed. A key whose TAT is in the
//! past is indistinguishable from a new key, so it is evicted first when room is needed.
//! Time comes from a monotonic clock, so wall-clock jumps cannot reset a limit.

use hashbrown::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

const SHARDS: usize = 64;

/// Burst and sustained rate, configured separately.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimitConfig {
    /// Requests admitted at once from a fresh key. At least 1.
    pub burst: u32,
    /// Sustained requests per second. Must be positive and finite.
    pub per_second: f64,
    /// Hard cap on distinct keys tracked at once.
    pub max_tracked_keys: usize,
}

/// Why a limiter could not be built or a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate limit exceeded; retry after {} ms", retry_after.as_millis())]
    Limited { retry_after: Duration },
    #[error("too many distinct callers are being rate limited; try again later")]
    TooManyKeys,
    /// The shared store ([`super::shared_rate_limit`]) did not answer: refused, never admitted.
    #[error("the rate limit store is unavailable; try again later")]
    StoreUnavailable,
    #[error("invalid rate limit configuration: {0}")]
    InvalidConfig(&'static str),
}

/// A source of monotonic nanoseconds. [`MonotonicClock`] in production; tests drive a fake.
pub trait Clock: Send + Sync {
    fn now_nanos(&self) -> u64;
}

/// Nanoseconds since the clock was made, from `quanta` (the CPU's invariant TSC, calibrated
/// against the OS monotonic clock; the OS clock where there is no usable TSC). Reading it costs a
/// few nanoseconds, against 20 or more for `Instant::now()` on a virtual machine.
#[derive(Debug)]
pub struct MonotonicClock {
    clock: quanta::Clock,
    start: quanta::Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        let clock = quanta::Clock::new();
        let start = clock.now();
        Self { clock, start }
    }
}

impl Clock for MonotonicClock {
    fn now_nanos(&self) -> u64 {
        self.clock.now().duration_since(self.start).as_nanos() as u64
    }
}

/// One shard's table, alone on its cache lines: a shared lock writes its lock word, and two
/// shards on one line would make threads on different shards contend anyway.
#[repr(align(128))]
struct Shard<K>(RwLock<HashMap<K, AtomicU64>>);

/// A keyed GCRA limiter with a hard cap on tracked keys.
pub struct RateLimiter<K = String, C = MonotonicClock> {
    shards: Box<[Shard<K>]>,
    shard_hasher: foldhash::fast::RandomState,
    tracked: AtomicUsize,
    interval_nanos: u64,
    tolerance_nanos: u64,
    max_tracked_keys: usize,
    clock: C,
}

impl<K: Hash + Eq + Clone> RateLimiter<K, MonotonicClock> {
    pub fn new(config: RateLimitConfig) -> Result<Self, RateLimitError> {
        Self::with_clock(config, MonotonicClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock> RateLimiter<K, C> {
    pub fn with_clock(config: RateLimitConfig, clock: C) -> Result<Self, RateLimitError> {
        if config.burst == 0 {
            return Err(RateLimitError::InvalidConfig("burst must be at least 1"));
        }
        if !(config.per_second.is_finite() && config.per_second > 0.0) {
            return Err(RateLimitError::InvalidConfig(
                "per_second must be a positive number",
            ));
        }
        if config.max_tracked_keys == 0 {
            return Err(RateLimitError::InvalidConfig(
                "max_tracked_keys must be at least 1",
            ));
        }
        // Rounded up, so the sustained rate is never above the configured one.
        let interval_nanos = ((1e9 / config.per_second).ceil() as u64).max(1);
        Ok(Self {
            shards: (0..SHARDS)
                .map(|_| Shard(RwLock::new(HashMap::new())))
                .collect(),
            shard_hasher: foldhash::fast::RandomState::default(),
            tracked: AtomicUsize::new(0),
            interval_nanos,
            tolerance_nanos: interval_nanos.saturating_mul(u64::from(config.burst - 1)),
            max_tracked_keys: config.max_tracked_keys,
            clock,
        })
    }

    /// Admits or refuses one request from `key` at the clock's current time.
    pub fn check(&self, key: &K) -> Result<(), RateLimitError> {
        let now = self.clock.now_nanos();
        let shard = &self.shards[(self.shard_hasher.hash_one(key) as usize) % SHARDS];
        // A known key: a shared lock and a compare-and-swap on its TAT, so threads checking
        // keys of the same shard do not wait for each other.
        {
            let table = shard
                .0
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(tat) = table.get(key) {
                return self.admit(tat, now);
            }
        }
        let mut table = shard
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(tat) = table.get(key) {
            return self.admit(tat, now);
        }
        if !self.reserve_slot(&mut table, now) {
            return Err(RateLimitError::TooManyKeys);
        }
        let tat = AtomicU64::new(now);
        let verdict = self.admit(&tat, now);
        table.insert(key.clone(), tat);
        verdict
    }

    /// The GCRA rule on one key's TAT, applied with a compare-and-swap loop.
    fn admit(&self, tat: &AtomicU64, now: u64) -> Result<(), RateLimitError> {
        let mut current = tat.load(Ordering::Acquire);
        loop {
            let start = current.max(now);
            let ahead = start - now;
            if ahead > self.tolerance_nanos {
                return Err(RateLimitError::Limited {
                    retry_after: Duration::from_nanos(ahead - self.tolerance_nanos),
                });
            }
            match tat.compare_exchange_weak(
                current,
                start + self.interval_nanos,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    /// Takes one slot of the global key budget, evicting this shard's idle keys if it is full.
    fn reserve_slot(&self, table: &mut HashMap<K, AtomicU64>, now: u64) -> bool {
        if self.try_take_slot() {
            return true;
        }
        let before = table.len();
        table.retain(|_, tat| tat.load(Ordering::Acquire) > now);
        self.tracked
            .fetch_sub(before - table.len(), Ordering::AcqRel);
        self.try_take_slot()
    }

    fn try_take_slot(&self) -> bool {
        self.tracked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_tracked_keys).then_some(n + 1)
            })
            .is_ok()
    }

    /// Keys tracked now (live or idle but not yet evicted).
    pub fn tracked_keys(&self) -> usize {
        self.tracked.load(Ordering::Acquire)
    }

    /// Drops every key whose window has passed; returns how many were dropped.
    pub fn evict_idle(&self) -> usize {
        let now = self.clock.now_nanos();
        let mut dropped = 0;
        for shard in self.shards.iter() {
            let mut table = shard
                .0
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let before = table.len();
            table.retain(|_, tat| tat.load(Ordering::Acquire) > now);
            dropped += before - table.len();
        }
        self.tracked.fetch_sub(dropped, Ordering::AcqRel);
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct FakeClock(Arc<AtomicU64>);
    impl Clock for FakeClock {
        fn now_nanos(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }
    impl FakeClock {
        fn set(&self, nanos: u64) {
            self.0.store(nanos, Ordering::SeqCst)
        }
    }

    fn limiter(
        burst: u32,
        per_second: f64,
        cap: usize,
    ) -> (RateLimiter<u32, FakeClock>, FakeClock) {
        let clock = FakeClock::default();
        let config = RateLimitConfig {
            burst,
            per_second,
            max_tracked_keys: cap,
        };
        (
            RateLimiter::with_clock(config, clock.clone()).unwrap(),
            clock,
        )
    }

    #[test]
    fn burst_then_sustained_rate() {
        let (limiter, clock) = limiter(3, 10.0, 100);
        for _ in 0..3 {
            assert_eq!(limiter.check(&1), Ok(()));
        }
        let Err(RateLimitError::Limited { retry_after }) = limiter.check(&1) else {
            panic!("fourth request in the same instant must be refused")
        };
        assert_eq!(retry_after, Duration::from_millis(100));
        clock.set(100_000_000);
        assert_eq!(limiter.check(&1), Ok(()));
        assert!(limiter.check(&1).is_err());
        // Another key is independent.
        assert_eq!(limiter.check(&2), Ok(()));
    }

    #[test]
    fn the_key_cap_fails_closed_and_idle_keys_make_room() {
        let (limiter, clock) = limiter(1, 1.0, 2);
        assert_eq!(limiter.check(&1), Ok(()));
        assert_eq!(limiter.check(&2), Ok(()));
        assert_eq!(limiter.check(&3), Err(RateLimitError::TooManyKeys));
        assert_eq!(limiter.tracked_keys(), 2);
        clock.set(2_000_000_000);
        assert_eq!(limiter.evict_idle(), 2);
        assert_eq!(limiter.check(&3), Ok(()));
        assert_eq!(limiter.tracked_keys(), 1);
    }

    #[test]
    fn bad_configuration_is_refused() {
        for (burst, rate, cap) in [(0, 1.0, 1), (1, 0.0, 1), (1, f64::NAN, 1), (1, 1.0, 0)] {
            let config = RateLimitConfig {
                burst,
                per_second: rate,
                max_tracked_keys: cap,
            };
            assert!(matches!(
                RateLimiter::<u32>::new(config),
                Err(RateLimitError::InvalidConfig(_))
            ));
        }
    }

    proptest! {
        /// The limiter never admits more than burst + rate x elapsed for any key, and never
        /// tracks more keys than its cap, whatever the sequence of (time step, key).
        #[test]
        fn admitted_never_exceeds_burst_plus_rate_times_elapsed(
            burst in 1u32..20,
            per_second in 1u32..1000,
            cap in 1usize..8,
            ops in proptest::collection::vec((0u64..50_000_000, 0u32..12), 1..400),
        ) {
            let (limiter, clock) = limiter(burst, f64::from(per_second), cap);
            let mut now = 0u64;
            let mut admitted: HashMap<u32, (u64, u64)> = HashMap::new(); // key -> (first admit, count)
            for (step, key) in ops {
                now += step;
                clock.set(now);
                if limiter.check(&key).is_ok() {
                    let entry = admitted.entry(key).or_insert((now, 0));
                    entry.1 += 1;
                    let elapsed = (now - entry.0) as f64 / 1e9;
                    let bound = f64::from(burst) + f64::from(per_second) * elapsed + 1e-6;
                    prop_assert!((entry.1 as f64) <= bound,
                        "key {} admitted {} times in {}s (bound {})", key, entry.1, elapsed, bound);
                }
                prop_assert!(limiter.tracked_keys() <= cap);
            }
        }
    }
}
