//! The per-principal rate limit shared by every replica of the server: the same GCRA as
//! [`super::rate_limit`], kept in Redis, one atomic server-side script per check.
//!
//! Why: replicas behind a load balancer each with an in-process limiter admit N times the
//! configured rate. With one store, they admit together what one would: `burst` at once, then
//! `per_second`. The clock is Redis's own (`TIME` inside the script), so replicas whose clocks
//! disagree still share one timeline.
//!
//! The script, per check of key `k`: read `k`'s theoretical arrival time (TAT); a key with none
//! is new and must find room under `max_tracked_keys` (counted in one sorted set of live keys,
//! scored by when each goes idle, idle entries dropped first); admit when
//! `max(TAT, now) - now <= (burst - 1) * interval`, and then store `max(TAT, now) + interval`
//! with a TTL that ends exactly when the key goes idle, so idle keys expire by themselves.
//! Keys share one hash tag (`{prefix}`), so the script is valid on a Redis Cluster too.
//! Needs Redis 5 or later (scripts that call `TIME` and then write).
//!
//! Cost: one round trip to Redis per check (about 50-100 us on loopback, measured in
//! benches/README.md) over one multiplexed connection that reconnects by itself
//! (`redis::aio::ConnectionManager`); the script is sent by its SHA1 (`EVALSHA`), its body only
//! once per connection. Memory in Redis: about 100 bytes per live key.
//!
//! Failure: fails closed. A check that gets no answer within `timeout` (Redis down, slow or
//! unreachable) is refused with [`RateLimitError::StoreUnavailable`] (503), never admitted; the
//! log says so at most once a second. Start-up fails if Redis does not answer within
//! `timeout`. When Redis comes back, the next checks are answered again.

use super::rate_limit::{RateLimitConfig, RateLimitError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The GCRA check. KEYS: the key, the live-key index. ARGV: interval (us), tolerance (us),
/// max keys. Returns `{1, 0}` admitted, `{0, retry_after_us}` limited, `{-1, 0}` no room.
const GCRA_SCRIPT: &str = r"
local key, index = KEYS[1], KEYS[2]
local interval, tolerance, max_keys = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', key))
if not tat then
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  if redis.call('ZCARD', index) >= max_keys then
    return {-1, 0}
  end
  tat = now
elseif tat < now then
  tat = now
end
if tat - now > tolerance then
  return {0, tat - now - tolerance}
end
local new_tat = tat + interval
redis.call('SET', key, new_tat, 'PX', math.ceil((new_tat - now) / 1000))
redis.call('ZADD', index, new_tat, key)
return {1, 0}
";

/// Where the limiter's keys live and how long a check may wait.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://HOST:PORT[/DB]` (or `rediss://` for TLS, `redis+unix://` for a socket).
    pub url: String,
    /// Every key starts with `{prefix}:`: replicas sharing a limit share a prefix.
    pub prefix: String,
    /// The longest a check waits for Redis before it is refused.
    pub timeout: Duration,
}

/// Why the shared limiter could not start.
#[derive(Debug, thiserror::Error)]
pub enum SharedLimitError {
    #[error("invalid rate limit configuration: {0}")]
    InvalidConfig(&'static str),
    #[error("the Redis URL is invalid: {0}")]
    InvalidUrl(String),
    #[error("Redis did not answer within {} ms: {reason}", .within.as_millis())]
    Unreachable { within: Duration, reason: String },
}

/// A keyed GCRA limiter in Redis, shared by every process with the same URL and prefix.
pub struct RedisRateLimiter {
    connection: redis::aio::ConnectionManager,
    script: redis::Script,
    index_key: String,
    key_prefix: String,
    interval_micros: u64,
    tolerance_micros: u64,
    max_tracked_keys: usize,
    timeout: Duration,
    /// When the last "store unavailable" was logged (ms since the limiter started), so an
    /// outage logs once a second, not once a request.
    last_logged_ms: AtomicU64,
    started: std::time::Instant,
}

impl RedisRateLimiter {
    /// Connects to Redis (within `settings.timeout`) and loads the script.
    pub async fn connect(
        config: RateLimitConfig,
        settings: &RedisSettings,
    ) -> Result<Self, SharedLimitError> {
        if config.burst == 0 {
            return Err(SharedLimitError::InvalidConfig("burst must be at least 1"));
        }
        if !(config.per_second.is_finite() && config.per_second > 0.0) {
            return Err(SharedLimitError::InvalidConfig(
                "per_second must be a positive number",
            ));
        }
        if config.max_tracked_keys == 0 {
            return Err(SharedLimitError::InvalidConfig(
                "max_tracked_keys must be at least 1",
            ));
        }
        if settings.prefix.is_empty() || settings.prefix.contains(['{', '}']) {
            return Err(SharedLimitError::InvalidConfig(
                "redis prefix must be non-empty, without braces",
            ));
        }
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| SharedLimitError::InvalidUrl(e.to_string()))?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let unreachable = |reason: String| SharedLimitError::Unreachable {
            within: settings.timeout,
            reason,
        };
        let mut connection = tokio::time::timeout(
            settings.timeout,
            redis::aio::ConnectionManager::new_with_config(client, manager_config),
        )
        .await
        .map_err(|_| unreachable("no connection".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let script = redis::Script::new(GCRA_SCRIPT);
        tokio::time::timeout(
            settings.timeout,
            script.prepare_invoke().load_async(&mut connection),
        )
        .await
        .map_err(|_| unreachable("no answer to SCRIPT LOAD".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        // Rounded up, so the sustained rate is never above the configured one.
        let interval_micros = ((1e6 / config.per_second).ceil() as u64).max(1);
        Ok(Self {
            connection,
            script,
            index_key: format!("{{{}}}:live-keys", settings.prefix),
            key_prefix: format!("{{{}}}:key:", settings.prefix),
            interval_micros,
            tolerance_micros: interval_micros.saturating_mul(u64::from(config.burst - 1)),
            max_tracked_keys: config.max_tracked_keys,
            timeout: settings.timeout,
            last_logged_ms: AtomicU64::new(0),
            started: std::time::Instant::now(),
        })
    }

    /// Admits or refuses one request from `key`.
    pub async fn check(&self, key: &str) -> Result<(), RateLimitError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(format!("{}{key}", self.key_prefix));
        invocation
            .key(&self.index_key)
            .arg(self.interval_micros)
            .arg(self.tolerance_micros)
            .arg(self.max_tracked_keys);
        let answer: Result<Result<(i64, i64), redis::RedisError>, _> =
            tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection)).await;
        match answer {
            Ok(Ok((1, _))) => Ok(()),
            Ok(Ok((0, retry_micros))) => Err(RateLimitError::Limited {
                retry_after: Duration::from_micros(retry_micros.max(0) as u64),
            }),
            Ok(Ok(_)) => Err(RateLimitError::TooManyKeys),
            Ok(Err(error)) => Err(self.unavailable(&error.to_string())),
            Err(_) => {
                Err(self.unavailable(&format!("no answer within {} ms", self.timeout.as_millis())))
            }
        }
    }

    /// The refusal for a check Redis did not answer, logged at most once a second.
    fn unavailable(&self, why: &str) -> RateLimitError {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_logged_ms.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 1000)
            && self
                .last_logged_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                reason = why,
                "the shared rate limit store is unavailable: refusing requests (fail closed)"
            );
        }
        RateLimitError::StoreUnavailable
    }
}
