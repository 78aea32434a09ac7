//! `mcp-harness load` against the reference server (its limit read back over stdio and over
//! HTTP, and a wrong expectation failing the run) and against a fake that queues without limit
//! (open loop: the queue shows in the latency, and the run says where it stopped keeping up).

mod common;

use common::{HARNESS, start_listening};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn load(args: &[&str]) -> (Output, Value) {
    let output = Command::new(HARNESS)
        .arg("load")
        .args(args)
        .args(["--format", "json"])
        .output()
        .expect("the harness runs");
    let summary = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON summary; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, summary)
}

fn fake_server() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/fake_server.py")
}

fn number(summary: &Value, pointer: &str) -> f64 {
    summary
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no {pointer} in {summary:#}"))
}

/// The bundled reference server runs at burst 100, 100 calls a second: offered three times
/// that, it serves burst + rate x t and refuses the rest, and the run reads its limit back.
#[test]
fn the_reference_servers_limit_is_read_back_over_stdio() {
    let (output, summary) = load(&[
        "--rate",
        "300",
        "--duration",
        "3",
        "--expect-rate",
        "100",
        "--expect-burst",
        "100",
    ]);
    assert!(output.status.success(), "{summary:#}");
    assert_eq!(summary["limit_verdict"], "within_expected", "{summary:#}");
    assert_eq!(summary["enforced"]["limit_reached"], true);
    let rate = number(&summary, "/enforced/per_second");
    assert!((85.0..=115.0).contains(&rate), "{rate}");
    let burst = number(&summary, "/enforced/burst");
    assert!((95.0..=103.0).contains(&burst), "{burst}");
    assert_eq!(number(&summary, "/totals/failed"), 0.0, "{summary:#}");
    assert!(number(&summary, "/totals/refused") > 300.0);
    assert_eq!(summary["stopped_keeping_up_at_second"], Value::Null);
    assert!(summary["latency_us"]["served"]["p99"].is_u64());
}

/// The same limit expected tighter than it is: more is served than allowed, exit 1.
#[test]
fn a_limit_looser_than_expected_fails_the_run() {
    let (output, summary) = load(&["--rate", "300", "--duration", "2", "--expect-rate", "50"]);
    assert_eq!(output.status.code(), Some(1), "{summary:#}");
    assert_eq!(summary["limit_verdict"], "above_expected");
}

/// Over HTTP, spread over four sessions of one principal: one bucket, the same limit.
#[test]
fn the_reference_servers_limit_is_read_back_over_http() {
    let root = tempfile::tempdir().unwrap();
    let token = format!("load-{:016x}", rand::random::<u64>());
    let (mut server, url) = start_listening(
        Command::new(HARNESS)
            .args(["__reference-server", "--http", "127.0.0.1:0", "--root"])
            .arg(root.path())
            .args(["--rate-burst", "50", "--rate-per-second", "50"])
            .env("MCP_SERVER_TOKEN", &token)
            .env("RUST_LOG", "warn"),
    );
    let header = format!("Authorization: Bearer {token}");
    let (output, summary) = load(&[
        "--url",
        &url,
        "--header",
        &header,
        "--connections",
        "4",
        "--rate",
        "200",
        "--duration",
        "3",
        "--expect-rate",
        "50",
        "--expect-burst",
        "50",
    ]);
    let _ = server.kill();
    assert!(output.status.success(), "{summary:#}");
    assert_eq!(summary["transport"], "http");
    assert_eq!(summary["limit_verdict"], "within_expected", "{summary:#}");
    let rate = number(&summary, "/enforced/per_second");
    assert!((40.0..=60.0).contains(&rate), "{rate}");
    // The HTTP limiter refuses with 429: recognised as refusals, not failures.
    assert_eq!(number(&summary, "/totals/failed"), 0.0, "{summary:#}");
    assert!(number(&summary, "/totals/refused") > 200.0);
}

/// A target that serves one call at a time (0.5 s each) and lets the rest wait, without a
/// limit: at 20 calls a second the queue grows, so latency from the intended send time grows
/// with it (a closed-loop flood would see 0.5 s a call), nothing is refused, and the target
/// stops keeping up in the first second.
#[test]
fn a_target_that_queues_without_limit_stops_keeping_up() {
    let command = format!("python3 {} serial", fake_server().display());
    let (output, summary) = load(&[
        "--stdio",
        &command,
        "--tool",
        "echo",
        "--arguments",
        r#"{"text": "load"}"#,
        "--rate",
        "20",
        "--duration",
        "2",
        "--timeout",
        "4",
        "--latency-budget",
        "800",
    ]);
    assert!(output.status.success(), "{summary:#}");
    assert_eq!(number(&summary, "/totals/refused"), 0.0);
    assert_eq!(summary["stopped_keeping_up_at_second"], 0, "{summary:#}");
    assert!(
        number(&summary, "/totals/failed") > 0.0,
        "the queue outlasts the timeout"
    );
    let longest = number(&summary, "/latency_us/served/max");
    assert!(
        longest > 2_000_000.0,
        "served calls waited in the queue: {longest} us"
    );
    assert_eq!(summary["enforced"]["limit_reached"], false);
}

/// Bad plans and targets off loopback are refused before anything is sent.
#[test]
fn bad_plans_and_remote_targets_are_refused() {
    for args in [
        &["--url", "http://192.0.2.1/mcp"][..],
        &["--rate", "0"][..],
        &["--duration", "601"][..],
        &["--arguments", "[1]"][..],
        &["--stdio", "true", "--connections", "2"][..],
    ] {
        let output = Command::new(HARNESS)
            .arg("load")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            !String::from_utf8_lossy(&output.stderr).trim().is_empty(),
            "{args:?} says why"
        );
    }
}
