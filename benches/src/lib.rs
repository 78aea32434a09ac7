//! Shared pieces of the benchmarks: the rate limiters under test behind one trait, and the
//! key sequences they are driven with.
//!
//! Every limiter is configured the same way for a given scenario: *allowed* (a huge burst and
//! rate, so every check admits) or *denied* (a burst of one and a period of 1,000 s, primed so
//! every later check refuses). Keys are `u64`; a scenario with `n` keys draws them at random from
//! `0..n` (a fixed, pre-generated sequence, so the random number generator is not measured).

use governor::{Quota, RateLimiter as Governor};
use reference_server::guard::rate_limit::{RateLimitConfig, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// What a scenario's checks should answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Allowed,
    Denied,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::Allowed => "allowed",
            Path::Denied => "denied",
        }
    }
}

/// A keyed rate limiter, as the benchmarks see it.
pub trait Limiter: Sync + Send {
    fn name(&self) -> &'static str;
    /// True when the request from `key` is admitted.
    fn check(&self, key: u64) -> bool;
}

/// The reference server's GCRA limiter with a hard key cap.
pub struct Ours(pub RateLimiter<u64>);

impl Ours {
    pub fn new(path: Path, max_keys: usize) -> Self {
        let config = match path {
            Path::Allowed => RateLimitConfig {
                burst: 1_000_000,
                per_second: 1e9,
                max_tracked_keys: max_keys,
            },
            Path::Denied => RateLimitConfig {
                burst: 1,
                per_second: 1e-3,
                max_tracked_keys: max_keys,
            },
        };
        Self(RateLimiter::new(config).expect("a valid configuration"))
    }
}

impl Limiter for Ours {
    fn name(&self) -> &'static str {
        "ours"
    }

    fn check(&self, key: u64) -> bool {
        self.0.check(&key).is_ok()
    }
}

fn quota(path: Path) -> Quota {
    match path {
        Path::Allowed => Quota::per_second(NonZeroU32::new(1_000_000_000).expect("non-zero"))
            .allow_burst(NonZeroU32::new(1_000_000).expect("non-zero")),
        Path::Denied => Quota::with_period(Duration::from_secs(1_000))
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::new(1).expect("non-zero")),
    }
}

/// governor's keyed limiter (a DashMap of GCRA states, quanta clock): what a user would pick.
pub struct GovernorKeyed(pub governor::DefaultKeyedRateLimiter<u64>);

impl GovernorKeyed {
    pub fn new(path: Path) -> Self {
        Self(Governor::keyed(quota(path)))
    }
}

impl Limiter for GovernorKeyed {
    fn name(&self) -> &'static str {
        "governor-keyed"
    }

    fn check(&self, key: u64) -> bool {
        self.0.check_key(&key).is_ok()
    }
}

/// governor's direct (single-key) limiter: one atomic state, the lower bound for one key.
pub struct GovernorDirect(pub governor::DefaultDirectRateLimiter);

impl GovernorDirect {
    pub fn new(path: Path) -> Self {
        Self(Governor::direct(quota(path)))
    }
}

impl Limiter for GovernorDirect {
    fn name(&self) -> &'static str {
        "governor-direct"
    }

    fn check(&self, _key: u64) -> bool {
        self.0.check().is_ok()
    }
}

/// Serves `app` on an ephemeral loopback port with `TCP_NODELAY` (as the reference binary
/// does: small SSE writes must not wait for delayed ACKs, 40 ms a call); returns its `/mcp` URL.
pub async fn serve_on_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("an address");
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/mcp")
}

/// A fixed pseudo-random sequence of `length` keys from `0..keys`.
pub fn key_sequence(keys: u64, length: usize, seed: u64) -> Vec<u64> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..length).map(|_| rng.random_range(0..keys)).collect()
}

/// Touches every key once so the table holds all of them (and, on the denied path, every key
/// has spent its burst).
pub fn prime(limiter: &dyn Limiter, keys: u64) {
    for key in 0..keys {
        limiter.check(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limiter_agrees_on_the_allowed_and_denied_paths() {
        let limiters: Vec<Box<dyn Limiter>> = vec![
            Box::new(Ours::new(Path::Allowed, 100)),
            Box::new(GovernorKeyed::new(Path::Allowed)),
            Box::new(GovernorDirect::new(Path::Allowed)),
        ];
        for limiter in &limiters {
            assert!((0..50).all(|k| limiter.check(k % 10)), "{}", limiter.name());
        }
        let limiters: Vec<Box<dyn Limiter>> = vec![
            Box::new(Ours::new(Path::Denied, 100)),
            Box::new(GovernorKeyed::new(Path::Denied)),
            Box::new(GovernorDirect::new(Path::Denied)),
        ];
        for limiter in &limiters {
            prime(limiter.as_ref(), 10);
            assert!(
                (0..50).all(|k| !limiter.check(k % 10)),
                "{}",
                limiter.name()
            );
        }
    }

    #[test]
    fn key_sequences_are_fixed_and_in_range() {
        let a = key_sequence(1000, 100, 7);
        assert_eq!(a, key_sequence(1000, 100, 7));
        assert!(a.iter().all(|k| *k < 1000));
    }
}
