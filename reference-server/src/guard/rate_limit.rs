//! Per-principal rate limiting with GCRA (the generic cell rate algorithm) in a fixed table of
//! 16-byte slots, with a hard cap on the number of principals tracked.
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
//! The table: one array of `max_tracked_keys x 1.25` slots, allocated once when the limiter is
//! built (so its memory never grows under attack: 20 bytes per key at the cap). A slot is one
//! 128-bit atomic word: a 64-bit fingerprint of the key (a randomly seeded foldhash, never 0;
//! 0 marks a slot never used) and the key's 64-bit TAT. The key itself is not stored: two keys
//! with the same fingerprint share one budget, which is the safe direction (both are limited
//! together, neither gets more). With `n` live keys the chance that any two share one is about
//! `n^2 / 2^65`: 2.7e-8 at a million keys. A key lives in the first slot from its *home*
//! (the fingerprint scaled onto the table) that holds its fingerprint, at most [`WINDOW`] slots
//! along (linear probing).
//!
//! Cost of a check: a TSC clock read, one hash, then a lock-free scan from the home slot (at 80%
//! occupancy about three slots on average, mostly one cache line) and, when admitted, one 128-bit
//! compare-and-swap on the slot. With a million keys a check costs one cache miss, to the L3 or
//! to DRAM (benches/README.md has the figures against governor and the measured floor).
//!
//! A key not in the table takes one of 64 striped insert locks, so two threads cannot insert
//! the same key twice. It claims the first never-used slot on its way from its home while fewer
//! than `max_tracked_keys` slots hold a key (idle keys stay where they are, so their next check
//! is still the lock-free one); otherwise it takes the first idle slot on its way (a TAT in the
//! past is indistinguishable from a fresh key); otherwise, at the cap, it sweeps: it empties
//! the idle slots among the next 1,024 of the table (a clock hand going round), so keys gone
//! idle anywhere give their budget back. Until a slot has been emptied, a never-used slot ends
//! every chain and scans stop there; after, an empty slot may cut a chain, so the lock-free
//! scan stopping at one is only a fast "not found" and the insert path scans the key's whole
//! window before it inserts.
//!
//! Failure: [`RateLimitError::Limited`] carries the time after which the same request would be
//! admitted (for `Retry-After`); [`RateLimitError::TooManyKeys`] means the cap is reached, a
//! sweep freed nothing and no slot on the new key's way is idle, or its [`WINDOW`] is full of
//! live keys: the limiter fails closed. The second could refuse a new key below the cap;
//! `limiter_occupancy` in benches fills a million-key table to its cap and counts such
//! refusals (none with a 256-slot window; a 64-slot one refused 1% of the last tenth;
//! benches/README.md). Time comes from a monotonic clock, so wall-clock jumps cannot reset a
//! limit.

use portable_atomic::AtomicU128;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The farthest a key may sit from its home slot, in slots (a 4 KiB page).
pub const WINDOW: usize = 256;
/// The largest key cap accepted: 2 GB of table.
pub const MAX_TRACKED_KEYS: usize = 100_000_000;
const INSERT_LOCKS: usize = 64;
/// Slots one sweep looks at when a new key meets the cap (16 KiB).
const SWEEP: usize = 1024;

/// Burst and sustained rate, configured separately.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimitConfig {
    /// Requests admitted at once from a fresh key. At least 1.
    pub burst: u32,
    /// Sustained requests per second. Must be positive and finite.
    pub per_second: f64,
    /// Hard cap on distinct keys tracked at once (at most [`MAX_TRACKED_KEYS`]).
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

/// One insert lock, alone on its cache lines so threads inserting under different locks do not
/// contend on one line.
#[repr(align(128))]
#[derive(Default)]
struct InsertLock(Mutex<()>);

/// For tests and fuzzing (here and in `fuzz-oracles`): fingerprints `1 + key` for small
/// integer keys, so every key lands on home slot 0 and all share one probe chain, the worst
/// case the table can meet. Never for production: it makes every key collide.
#[derive(Clone, Copy, Debug, Default)]
pub struct OneHome;

/// [`OneHome`]'s hasher: the key's bytes as a little-endian number, plus one.
#[derive(Debug, Default)]
pub struct OneHomeHasher(u64);

impl std::hash::Hasher for OneHomeHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_add(1)
    }

    fn write(&mut self, bytes: &[u8]) {
        for (index, byte) in bytes.iter().take(8).enumerate() {
            self.0 |= u64::from(*byte) << (8 * index);
        }
    }
}

impl BuildHasher for OneHome {
    type Hasher = OneHomeHasher;

    fn build_hasher(&self) -> OneHomeHasher {
        OneHomeHasher::default()
    }
}

/// A slot's word: the fingerprint in the high half, the TAT in the low half.
fn slot(fingerprint: u64, tat: u64) -> u128 {
    (u128::from(fingerprint) << 64) | u128::from(tat)
}

fn fingerprint_of(word: u128) -> u64 {
    (word >> 64) as u64
}

fn tat_of(word: u128) -> u64 {
    word as u64
}

/// A keyed GCRA limiter with a hard cap on tracked keys, in a fixed table.
pub struct RateLimiter<K = String, C = MonotonicClock, S = foldhash::quality::RandomState> {
    /// `home_slots + WINDOW` slots: the last `WINDOW` only take keys whose home is near the end,
    /// so a scan never wraps.
    slots: Box<[AtomicU128]>,
    home_slots: usize,
    insert_locks: Box<[InsertLock]>,
    hasher: S,
    /// Slots holding a key, live or idle: never more than `max_tracked_keys`.
    claimed: AtomicUsize,
    /// Where the next sweep starts.
    sweep_hand: AtomicUsize,
    /// Some slot was emptied (or a key placed past a never-used slot): from then on a
    /// never-used slot no longer ends a key's chain, and inserts scan the whole window.
    emptied: AtomicBool,
    interval_nanos: u64,
    tolerance_nanos: u64,
    max_tracked_keys: usize,
    clock: C,
    key: PhantomData<fn(&K)>,
}

impl<K: Hash> RateLimiter<K, MonotonicClock> {
    pub fn new(config: RateLimitConfig) -> Result<Self, RateLimitError> {
        Self::with_clock(config, MonotonicClock::default())
    }
}

impl<K: Hash, C: Clock> RateLimiter<K, C> {
    pub fn with_clock(config: RateLimitConfig, clock: C) -> Result<Self, RateLimitError> {
        Self::with_clock_and_hasher(config, clock, foldhash::quality::RandomState::default())
    }
}

impl<K: Hash, C: Clock, S: BuildHasher> RateLimiter<K, C, S> {
    /// A limiter whose fingerprints come from `hasher` (tests use one that puts every key on
    /// the same home slot).
    pub fn with_clock_and_hasher(
        config: RateLimitConfig,
        clock: C,
        hasher: S,
    ) -> Result<Self, RateLimitError> {
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
        if config.max_tracked_keys > MAX_TRACKED_KEYS {
            return Err(RateLimitError::InvalidConfig(
                "max_tracked_keys must be at most 100,000,000 (a 2 GB table)",
            ));
        }
        // Rounded up, so the sustained rate is never above the configured one.
        let interval_nanos = ((1e9 / config.per_second).ceil() as u64).max(1);
        // 1.25 slots per key in all, the locks and the end window included, so the table is
        // at most 20 bytes per key once the cap is large. Small caps, where memory does not
        // matter, get up to 65,536 spare slots (1 MiB) for shorter probe chains.
        let keys = config.max_tracked_keys;
        let lock_slots = INSERT_LOCKS * size_of::<InsertLock>() / size_of::<AtomicU128>();
        let budget = (keys + keys.div_ceil(4)).saturating_sub(WINDOW + lock_slots);
        let home_slots = budget.max(keys + keys.min(1 << 16));
        Ok(Self {
            slots: (0..home_slots + WINDOW)
                .map(|_| AtomicU128::new(0))
                .collect(),
            home_slots,
            insert_locks: (0..INSERT_LOCKS).map(|_| InsertLock::default()).collect(),
            hasher,
            claimed: AtomicUsize::new(0),
            sweep_hand: AtomicUsize::new(0),
            emptied: AtomicBool::new(false),
            interval_nanos,
            tolerance_nanos: interval_nanos.saturating_mul(u64::from(config.burst - 1)),
            max_tracked_keys: config.max_tracked_keys,
            clock,
            key: PhantomData,
        })
    }

    /// Admits or refuses one request from `key` at the clock's current time.
    pub fn check(&self, key: &K) -> Result<(), RateLimitError> {
        let now = self.clock.now_nanos();
        let fingerprint = self.hasher.hash_one(key).max(1);
        let home = ((u128::from(fingerprint) * self.home_slots as u128) >> 64) as usize;
        // A known key: lock-free, a scan and a compare-and-swap on its slot.
        for index in home..home + WINDOW {
            let word = self.slots[index].load(Ordering::Acquire);
            match fingerprint_of(word) {
                0 => break,
                found if found == fingerprint => {
                    if let Some(verdict) = self.admit(index, fingerprint, word, now) {
                        return verdict;
                    }
                    // The slot went to another key while we read it: this key is idle.
                    break;
                }
                _ => {}
            }
        }
        self.insert(fingerprint, home, now)
    }

    /// The GCRA rule on the key's slot, applied with a compare-and-swap loop; `None` when the
    /// slot no longer holds the key (it was idle and another key took it).
    fn admit(
        &self,
        index: usize,
        fingerprint: u64,
        mut word: u128,
        now: u64,
    ) -> Option<Result<(), RateLimitError>> {
        loop {
            if fingerprint_of(word) != fingerprint {
                return None;
            }
            let start = tat_of(word).max(now);
            let ahead = start - now;
            if ahead > self.tolerance_nanos {
                return Some(Err(RateLimitError::Limited {
                    retry_after: Duration::from_nanos(ahead - self.tolerance_nanos),
                }));
            }
            let next = slot(fingerprint, start.saturating_add(self.interval_nanos));
            match self.slots[index].compare_exchange_weak(
                word,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(Ok(())),
                Err(seen) => word = seen,
            }
        }
    }

    /// A key not found by the lock-free scan: under its insert lock, scan its whole window
    /// (another thread may have inserted it, or a swept slot may have cut its chain), then take
    /// the first idle or never-used slot on its way, or refuse.
    fn insert(&self, fingerprint: u64, home: usize, now: u64) -> Result<(), RateLimitError> {
        let lock = &self.insert_locks[fingerprint as usize % INSERT_LOCKS];
        let _held = lock
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // A fresh key's first request is always admitted (burst >= 1).
        let fresh = slot(fingerprint, now.saturating_add(self.interval_nanos));
        'scan: loop {
            let mut idle = None;
            let mut unused = None;
            for index in home..home + WINDOW {
                let word = self.slots[index].load(Ordering::Acquire);
                match fingerprint_of(word) {
                    0 => {
                        unused.get_or_insert(index);
                        // Until a slot has been emptied, no key sits past a never-used slot.
                        if !self.emptied.load(Ordering::Acquire) {
                            break;
                        }
                    }
                    found if found == fingerprint => {
                        match self.admit(index, fingerprint, word, now) {
                            Some(verdict) => return verdict,
                            None => continue 'scan,
                        }
                    }
                    _ if tat_of(word) <= now => {
                        idle.get_or_insert((index, word));
                    }
                    _ => {}
                }
            }
            // A never-used slot while the cap allows (idle keys stay, so their next check is
            // still the fast one); else an idle slot on the way; else, at the cap, a sweep.
            let claimed_unused = unused.is_some() && self.try_claim();
            let (index, expected, claimed) = match (unused, idle) {
                (Some(index), _) if claimed_unused => (index, 0, true),
                (_, Some((index, word))) => {
                    if unused.is_some_and(|first| first < index) {
                        // The key goes past a never-used slot: scans must look past them.
                        self.emptied.store(true, Ordering::Release);
                    }
                    (index, word, false)
                }
                (Some(index), None) if self.sweep(now) && self.try_claim() => (index, 0, true),
                // The cap is reached and no idle slot is on the way or freed by a sweep, or the
                // window holds live keys only.
                _ => return Err(RateLimitError::TooManyKeys),
            };
            if self.slots[index]
                .compare_exchange(expected, fresh, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Ok(());
            }
            // Another key took the slot first, or a sweep emptied it: look again.
            if claimed {
                self.claimed.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// At the cap: empties the idle slots of the next [`SWEEP`] slots (a clock hand that goes
    /// round the table), so their budget can go to new keys. True when it freed any.
    fn sweep(&self, now: u64) -> bool {
        let total = self.slots.len();
        let start = self.sweep_hand.fetch_add(SWEEP, Ordering::Relaxed) % total;
        let hand = (0..SWEEP.min(total)).map(|offset| &self.slots[(start + offset) % total]);
        self.empty_idle(hand, now) > 0
    }

    /// Empties every idle slot (a scan of the whole table); returns how many it emptied.
    pub fn evict_idle(&self) -> usize {
        self.empty_idle(self.slots.iter(), self.clock.now_nanos())
    }

    /// Empties the slots of `slots` whose key is idle at `now`, and gives their budget back;
    /// returns how many. The table is marked as having emptied slots first, so that a scan
    /// meeting one of them knows to look past it.
    fn empty_idle<'a>(&self, slots: impl Iterator<Item = &'a AtomicU128>, now: u64) -> usize {
        let mut freed = 0;
        for slot in slots {
            let word = slot.load(Ordering::Acquire);
            if fingerprint_of(word) == 0 || tat_of(word) > now {
                continue;
            }
            self.emptied.store(true, Ordering::Release);
            if slot
                .compare_exchange(word, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                freed += 1;
            }
        }
        self.claimed.fetch_sub(freed, Ordering::AcqRel);
        freed
    }

    fn try_claim(&self) -> bool {
        self.claimed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_tracked_keys).then_some(n + 1)
            })
            .is_ok()
    }

    /// Slots in use: keys live now, and idle keys whose slots wait to be reused. Never more
    /// than `max_tracked_keys`.
    pub fn tracked_keys(&self) -> usize {
        self.claimed.load(Ordering::Acquire)
    }

    /// Keys still inside their window now (a scan of the whole table: for status, not the hot
    /// path).
    pub fn live_keys(&self) -> usize {
        let now = self.clock.now_nanos();
        self.slots
            .iter()
            .map(|slot| slot.load(Ordering::Acquire))
            .filter(|&word| fingerprint_of(word) != 0 && tat_of(word) > now)
            .count()
    }

    /// Bytes the table holds (fixed when the limiter is built).
    pub fn table_bytes(&self) -> usize {
        self.slots.len() * size_of::<AtomicU128>()
            + self.insert_locks.len() * size_of::<InsertLock>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

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

    fn config(burst: u32, per_second: f64, cap: usize) -> RateLimitConfig {
        RateLimitConfig {
            burst,
            per_second,
            max_tracked_keys: cap,
        }
    }

    fn limiter(
        burst: u32,
        per_second: f64,
        cap: usize,
    ) -> (RateLimiter<u32, FakeClock>, FakeClock) {
        let clock = FakeClock::default();
        (
            RateLimiter::with_clock(config(burst, per_second, cap), clock.clone()).unwrap(),
            clock,
        )
    }

    fn one_home_limiter(
        burst: u32,
        per_second: f64,
        cap: usize,
    ) -> (RateLimiter<u32, FakeClock, OneHome>, FakeClock) {
        let clock = FakeClock::default();
        let limiter = RateLimiter::with_clock_and_hasher(
            config(burst, per_second, cap),
            clock.clone(),
            OneHome,
        )
        .unwrap();
        (limiter, clock)
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
        // One home for every key, so key 3's way passes the slots of keys 1 and 2 (an idle
        // slot is reused only on the new key's way).
        let (limiter, clock) = one_home_limiter(1, 1.0, 2);
        assert_eq!(limiter.check(&1), Ok(()));
        assert_eq!(limiter.check(&2), Ok(()));
        assert_eq!(limiter.check(&3), Err(RateLimitError::TooManyKeys));
        assert_eq!(limiter.tracked_keys(), 2);
        assert_eq!(limiter.live_keys(), 2);
        clock.set(2_000_000_000);
        assert_eq!(limiter.live_keys(), 0);
        // Key 3 takes an idle key's slot: still two slots in use, one of them live.
        assert_eq!(limiter.check(&3), Ok(()));
        assert_eq!(limiter.tracked_keys(), 2);
        assert_eq!(limiter.live_keys(), 1);
        assert!(
            limiter.check(&3).is_err(),
            "key 3 is tracked in the reused slot"
        );
    }

    #[test]
    fn keys_gone_idle_anywhere_give_their_budget_back_at_the_cap() {
        let (limiter, clock) = limiter(1, 1.0, 1_000);
        for key in 0..1_000 {
            assert_eq!(limiter.check(&key), Ok(()));
        }
        assert_eq!(limiter.check(&5_000), Err(RateLimitError::TooManyKeys));
        clock.set(1_000_000_001);
        // A thousand new keys, whose homes are anywhere: the sweeps give each one room.
        for key in 10_000..11_000 {
            assert_eq!(limiter.check(&key), Ok(()), "key {key}");
        }
        assert_eq!(limiter.tracked_keys(), 1_000);
        assert_eq!(limiter.live_keys(), 1_000);
        assert_eq!(limiter.check(&5_000), Err(RateLimitError::TooManyKeys));
        clock.set(2_000_000_002);
        assert_eq!(limiter.evict_idle(), 1_000);
        assert_eq!(limiter.tracked_keys(), 0);
        assert_eq!(limiter.check(&5_000), Ok(()));
    }

    #[test]
    fn a_full_probe_window_fails_closed_below_the_cap_and_frees_up_when_idle() {
        let (limiter, clock) = one_home_limiter(1, 1.0, 1_000);
        for key in 0..WINDOW as u32 {
            assert_eq!(limiter.check(&key), Ok(()), "key {key}");
        }
        // Every slot the next key may use holds a live key: refused, though the cap is far.
        assert_eq!(limiter.check(&1_000), Err(RateLimitError::TooManyKeys));
        assert_eq!(limiter.tracked_keys(), WINDOW);
        // Every key along the chain is still found and still limited.
        for key in 0..WINDOW as u32 {
            assert!(
                matches!(limiter.check(&key), Err(RateLimitError::Limited { .. })),
                "key {key}"
            );
        }
        clock.set(1_000_000_001);
        assert_eq!(limiter.check(&1_000), Ok(()));
        assert!(limiter.check(&1_000).is_err());
        assert_eq!(limiter.tracked_keys(), WINDOW);
    }

    #[test]
    fn bad_configuration_is_refused() {
        for (burst, rate, cap) in [
            (0, 1.0, 1),
            (1, 0.0, 1),
            (1, f64::NAN, 1),
            (1, 1.0, 0),
            (1, 1.0, MAX_TRACKED_KEYS + 1),
        ] {
            assert!(matches!(
                RateLimiter::<u32>::new(config(burst, rate, cap)),
                Err(RateLimitError::InvalidConfig(_))
            ));
        }
    }

    #[test]
    fn the_table_is_twenty_bytes_a_key_at_a_large_cap() {
        let limiter = RateLimiter::<u64>::new(config(1, 1.0, 1_000_000)).unwrap();
        assert!(
            limiter.table_bytes() <= 20 * 1_000_000,
            "{}",
            limiter.table_bytes()
        );
        // The default cap (10,000) gets spare slots: 20,256 slots and the locks, 332,288 bytes.
        let default = RateLimiter::<u64>::new(config(1, 1.0, 10_000)).unwrap();
        assert_eq!(default.table_bytes(), 332_288);
        // Small caps still get room for a whole window past the last home slot.
        let small = RateLimiter::<u64>::new(config(1, 1.0, 1)).unwrap();
        assert!(small.slots.len() > WINDOW);
    }

    #[test]
    fn threads_racing_on_new_keys_never_track_a_key_twice() {
        // Time stands still, so each key may be admitted exactly `burst` times in all: a key
        // inserted twice by racing threads, or overwritten by another key's insert, gets more.
        // Many fresh tables of one shared chain (every key races for the same few slots), then
        // one large table of random homes.
        let burst = 2;
        type Check = Arc<dyn Fn(u32) -> bool + Send + Sync>;
        let mut trials: Vec<(u32, Check)> = (0..200)
            .map(|_| {
                let clock = FakeClock::default();
                let limiter =
                    RateLimiter::with_clock_and_hasher(config(burst, 1.0, 4_000), clock, OneHome)
                        .unwrap();
                let check: Check = Arc::new(move |key| limiter.check(&key).is_ok());
                (WINDOW as u32, check)
            })
            .collect();
        let limiter =
            RateLimiter::with_clock(config(burst, 1.0, 40_000), FakeClock::default()).unwrap();
        trials.push((20_000, Arc::new(move |key| limiter.check(&key).is_ok())));
        for (trial, (keys, check)) in trials.into_iter().enumerate() {
            let admitted: Arc<Vec<AtomicU64>> =
                Arc::new((0..keys).map(|_| AtomicU64::new(0)).collect());
            let start = Arc::new(std::sync::Barrier::new(4));
            let threads: Vec<_> = (0..4)
                .map(|thread| {
                    let (check, admitted, start) = (check.clone(), admitted.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        for round in 0..2 * burst {
                            for key in 0..keys {
                                let key = (key + thread * keys / 4 + round) % keys;
                                if check(key) {
                                    admitted[key as usize].fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    })
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
            for (key, count) in admitted.iter().enumerate() {
                assert_eq!(
                    count.load(Ordering::Relaxed),
                    u64::from(burst),
                    "key {key} (trial {trial})"
                );
            }
        }
    }

    fn admitted_within_the_bound<S: BuildHasher>(
        limiter: &RateLimiter<u32, FakeClock, S>,
        clock: &FakeClock,
        burst: u32,
        per_second: u32,
        cap: usize,
        ops: &[(u64, u32)],
    ) -> Result<(), TestCaseError> {
        let mut now = 0u64;
        let mut admitted: HashMap<u32, (u64, u64)> = HashMap::new(); // key -> (first admit, count)
        for &(step, key) in ops {
            now += step;
            clock.set(now);
            let verdict = limiter.check(&key);
            if verdict == Err(RateLimitError::TooManyKeys) {
                // These tables are smaller than one sweep, so the cap is full of live keys.
                prop_assert_eq!(limiter.live_keys(), cap);
            }
            if verdict.is_ok() {
                let entry = admitted.entry(key).or_insert((now, 0));
                entry.1 += 1;
                let elapsed = (now - entry.0) as f64 / 1e9;
                let bound = f64::from(burst) + f64::from(per_second) * elapsed + 1e-6;
                prop_assert!(
                    (entry.1 as f64) <= bound,
                    "key {} admitted {} times in {}s (bound {})",
                    key,
                    entry.1,
                    elapsed,
                    bound
                );
            }
            prop_assert!(limiter.tracked_keys() <= cap);
        }
        Ok(())
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
            admitted_within_the_bound(&limiter, &clock, burst, per_second, cap, &ops)?;
        }

        /// The same bound when every key shares one probe chain, so idle slots are reused in
        /// the middle of the chain and keys sit behind each other.
        #[test]
        fn the_bound_holds_when_every_key_shares_one_chain(
            burst in 1u32..20,
            per_second in 1u32..1000,
            cap in 1usize..100,
            ops in proptest::collection::vec((0u64..50_000_000, 0u32..90), 1..600),
        ) {
            let (limiter, clock) = one_home_limiter(burst, f64::from(per_second), cap);
            admitted_within_the_bound(&limiter, &clock, burst, per_second, cap, &ops)?;
        }
    }
}
