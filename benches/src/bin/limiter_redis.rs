//! The rate limit shared in Redis (`reference_server::guard::shared_rate_limit`) against the
//! in-process limiter and against the fixed window people write first (`INCR` and `EXPIRE` in
//! one `MULTI`), each one request at a time (latency) and 64 at once over one multiplexed
//! connection (pipelined: throughput).
//!
//! `cargo run --release -p benches --bin limiter_redis [CHECKS]` starts its own `redis-server`
//! on a free loopback port (Debian's `redis-server` package), or uses `REDIS_URL` when set,
//! and prints one Markdown table. Every check is on the allowed path, keys drawn from 10,000.

use reference_server::guard::rate_limit::{RateLimitConfig, RateLimiter};
use reference_server::guard::shared_rate_limit::{RedisRateLimiter, RedisSettings};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEYS: u64 = 10_000;
const IN_FLIGHT: usize = 64;

struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> (String, Option<RedisServer>) {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return (url, None);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server runs (apt-get install redis-server), or set REDIS_URL");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    (
        format!("redis://127.0.0.1:{port}"),
        Some(RedisServer(child)),
    )
}

/// One row: median and 99th percentile latency one at a time, and checks a second both ways.
struct Row {
    name: &'static str,
    p50: Duration,
    p99: Duration,
    sequential_per_second: f64,
    pipelined_per_second: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// Measures `check` (an async check of key `i`) `n` times one at a time, then `n` times with
/// [`IN_FLIGHT`] at once.
async fn measure<F, Fut>(name: &'static str, n: usize, check: F) -> Row
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let check = Arc::new(check);
    let key = |i: usize| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % KEYS;
    for i in 0..n.min(2_000) {
        assert!(check(key(i)).await, "{name}: a warm-up check was refused");
    }
    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let asked = Instant::now();
        assert!(check(key(i)).await, "{name}: a check was refused");
        latencies.push(asked.elapsed());
    }
    let sequential = started.elapsed();
    latencies.sort();
    let started = Instant::now();
    let per_task = n / IN_FLIGHT;
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|t| {
            let check = check.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    assert!(check(key(t * per_task + i)).await);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a check task");
    }
    let pipelined = started.elapsed();
    Row {
        name,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        sequential_per_second: n as f64 / sequential.as_secs_f64(),
        pipelined_per_second: (per_task * IN_FLIGHT) as f64 / pipelined.as_secs_f64(),
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let (url, _server) = start_redis();
    // Every check allowed: the cost of a check, not of a refusal.
    let config = RateLimitConfig {
        burst: u32::MAX,
        per_second: 1e9,
        max_tracked_keys: 1_000_000,
    };
    let rows = runtime.block_on(async {
        let settings = RedisSettings {
            url: url.clone(),
            prefix: format!("bench-{:08x}", rand::random::<u32>()),
            timeout: Duration::from_secs(2),
        };
        let shared = Arc::new(
            RedisRateLimiter::connect(config, &settings)
                .await
                .expect("Redis answers"),
        );
        let in_process = Arc::new(RateLimiter::<String>::new(config).expect("a valid config"));
        let client = redis::Client::open(url.as_str()).expect("a Redis URL");
        let connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("Redis answers");
        let mut rows = Vec::new();
        rows.push(
            measure("in process (reference, for scale)", n, move |k| {
                let limiter = in_process.clone();
                async move { limiter.check(&k.to_string()).is_ok() }
            })
            .await,
        );
        rows.push(
            measure("Redis GCRA script (ours, shared)", n, move |k| {
                let limiter = shared.clone();
                async move { limiter.check(&k.to_string()).await.is_ok() }
            })
            .await,
        );
        rows.push(
            measure("Redis INCR + EXPIRE fixed window", n, move |k| {
                let mut connection = connection.clone();
                async move {
                    let key = format!("bench-window:{k}");
                    let (count,): (u64,) = redis::pipe()
                        .atomic()
                        .incr(&key, 1)
                        .expire(&key, 1)
                        .ignore()
                        .query_async(&mut connection)
                        .await
                        .expect("INCR and EXPIRE answered");
                    count < u64::MAX
                }
            })
            .await,
        );
        rows
    });
    println!(
        "| limiter | p50 one at a time | p99 one at a time | checks/s one at a time | checks/s, {IN_FLIGHT} in flight |"
    );
    println!("|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {:.1} us | {:.1} us | {:.0} | {:.0} |",
            row.name,
            row.p50.as_secs_f64() * 1e6,
            row.p99.as_secs_f64() * 1e6,
            row.sequential_per_second,
            row.pipelined_per_second
        );
    }
}
