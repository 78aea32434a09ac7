//! The rate limit shared in Redis (`[rate_limit] store = "redis"`), against a real
//! `redis-server` each test starts on a free loopback port: two replicas admit together what
//! one would; with Redis gone every request is refused (503) within the timeout, never
//! admitted, and admitted again once Redis is back; a server whose Redis is unreachable does
//! not start.
//!
//! `redis-server` comes from Debian's `redis-server` package (`.ci/run` installs it). Without
//! it these tests say so and pass, unless `MCP_REQUIRE_REDIS=1` (set by CI), where they fail.

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "shared-limit-key-0123456789abcdef";
const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

struct Redis {
    child: Child,
    port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` on `port` (no persistence), once it accepts connections; `None` when the
/// binary is missing and Redis is not required.
fn start_redis(port: u16) -> Option<Redis> {
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match spawned {
        Ok(child) => child,
        Err(error) => {
            assert!(
                std::env::var("MCP_REQUIRE_REDIS").as_deref() != Ok("1"),
                "MCP_REQUIRE_REDIS=1 but redis-server does not run: {error}"
            );
            eprintln!("skipped: redis-server is not installed ({error})");
            return None;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Redis { child, port })
}

fn shared_config(stage: &Stage, port: u16, prefix: &str) -> String {
    stage
        .config(&format!(
            "[rate_limit]\nburst = 10\nper_second = 20.0\nstore = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\nprefix = \"{prefix}\"\ntimeout_ms = 200\n"
        ))
        .to_string_lossy()
        .into_owned()
}

async fn replica(stage: &Stage, config: &str) -> HttpServer {
    http_server(
        &stage.root(),
        &["--config", config],
        &[("MCP_SERVER_TOKEN", KEY)],
    )
    .await
}

/// POSTs `initialize` with the key; the status.
async fn status(client: &reqwest::Client, url: &str) -> u16 {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {KEY}"))
        .body(INIT)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn client() -> reqwest::Client {
    reference_server::guard::egress::ensure_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_admit_together_what_one_would() {
    let Some(redis) = start_redis(free_port()) else {
        return;
    };
    let stage = Stage::new();
    let prefix = format!("test-{:08x}", rand::random::<u32>());
    let config = shared_config(&stage, redis.port, &prefix);
    let first = replica(&stage, &config).await;
    let second = replica(&stage, &config).await;
    let client = client();
    // Both replicas flooded at once, for two seconds.
    let started = Instant::now();
    let run_for = Duration::from_secs(2);
    let flood = |url: String| {
        let client = client.clone();
        async move {
            let (mut served, mut refused) = (0u32, 0u32);
            while started.elapsed() < run_for {
                match status(&client, &url).await {
                    200 => served += 1,
                    429 => refused += 1,
                    other => panic!("unexpected status {other}"),
                }
            }
            (served, refused)
        }
    };
    let (a, b) = tokio::join!(flood(first.url.clone()), flood(second.url.clone()));
    let elapsed = started.elapsed().as_secs_f64();
    let served = a.0 + b.0;
    // GCRA's bound over a window of `elapsed`: burst + rate x elapsed (one more for the edge).
    let bound = 10.0 + 20.0 * elapsed + 1.0;
    assert!(
        f64::from(served) <= bound,
        "two replicas served {served} in {elapsed:.2} s; one limit allows {bound:.0}"
    );
    assert!(
        f64::from(served) >= 0.8 * (10.0 + 20.0 * 2.0),
        "served only {served}: the flood did not reach the limit"
    );
    assert!(a.0 > 0 && b.0 > 0, "each replica served some: {a:?} {b:?}");
    assert!(
        a.1 + b.1 > served,
        "most of the flood was refused: {a:?} {b:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_every_request_is_refused_and_with_it_back_admitted() {
    let port = free_port();
    let Some(redis) = start_redis(port) else {
        return;
    };
    let stage = Stage::new();
    let config = shared_config(&stage, port, "outage");
    let server = replica(&stage, &config).await;
    let client = client();
    assert_eq!(status(&client, &server.url).await, 200);
    drop(redis);
    // Redis gone: refused, each within the timeout (and a margin), never admitted.
    let outage = Instant::now();
    let mut statuses = Vec::new();
    while outage.elapsed() < Duration::from_secs(1) {
        let asked = Instant::now();
        statuses.push(status(&client, &server.url).await);
        assert!(
            asked.elapsed() < Duration::from_millis(1500),
            "a check waited {:?}",
            asked.elapsed()
        );
    }
    assert!(
        statuses.iter().all(|s| *s == 503),
        "during the outage: {statuses:?}"
    );
    // Back: admitted again within a few seconds (the connection manager reconnects).
    let _back = start_redis(port).expect("redis-server ran a moment ago");
    let recovery = Instant::now();
    loop {
        if status(&client, &server.url).await == 200 {
            break;
        }
        assert!(
            recovery.elapsed() < Duration::from_secs(10),
            "not admitted 10 s after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_server_whose_redis_is_unreachable_does_not_start() {
    let stage = Stage::new();
    // A free port with nothing listening.
    let config = shared_config(&stage, free_port(), "unreachable");
    let started = Instant::now();
    let output = tokio::process::Command::new(BINARY)
        .args(["--http", "127.0.0.1:0", "--config", &config, "--root"])
        .arg(stage.root())
        .env("MCP_SERVER_TOKEN", KEY)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rate_limit.url"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Over stdio the launcher is the principal: two server processes sharing a Redis share its
/// bucket, so the burst is spent across both.
#[tokio::test]
async fn two_stdio_processes_on_one_redis_share_the_launchers_bucket() {
    let Some(redis) = start_redis(free_port()) else {
        return;
    };
    let stage = Stage::new();
    let config = stage.config(&format!(
        "[rate_limit]\nburst = 3\nper_second = 0.5\nstore = \"redis\"\nurl = \"redis://127.0.0.1:{}\"\nprefix = \"stdio-{:08x}\"\n",
        redis.port,
        rand::random::<u32>()
    ));
    let config = config.to_string_lossy().into_owned();
    let first = stdio_client(&stage, &["--config", &config], &[]).await;
    let second = stdio_client(&stage, &["--config", &config], &[]).await;
    let work = || {
        call(
            "process_data",
            serde_json::json!({"data": "x", "operation": "uppercase"}),
        )
    };
    let mut outcomes = Vec::new();
    for client in [&first, &second, &first, &second] {
        outcomes.push(client.call_tool(work()).await.is_ok());
    }
    assert_eq!(
        outcomes,
        [true, true, true, false],
        "the fourth call, across both processes, is over the burst of 3"
    );
    first.cancel().await.unwrap();
    second.cancel().await.unwrap();
}
