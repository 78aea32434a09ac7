//! How fast `mcp-harness load` can offer calls over Streamable HTTP on loopback, and where the
//! reference server stops keeping up.
//!
//! `cargo run --release -p benches --bin load_generator [SECONDS]` runs the harness's load
//! generator (the library behind `mcp-harness load`, in this process) against:
//! 1. a sink: an axum endpoint in this process that answers every MCP request with a canned
//!    JSON reply, so it costs next to nothing and the generator is what is measured;
//! 2. the reference server (in this process too, on its own runtime), with its rate limit
//!    set far above the offered rate so that every call goes through all its guards.
//!
//! Each is first offered 50,000 calls a second for SECONDS (default 5), then a ramp from
//! 5,000 to 100,000 calls a second over 2 x SECONDS, over 64 connections; a second counts as
//! kept up when every call offered in it was answered within 100 ms of its intended send time.
//! Both sides share this machine's cores, so the figures are for the pair.

use harness::connection::Budget;
use harness::load::summary::LoadSummary;
use harness::load::{LoadOptions, LoadPlan};
use harness::{StageOptions, TargetOptions};
use std::time::Duration;

/// A minimal MCP endpoint: `initialize`, one tool, every call served with a canned answer.
async fn sink(body: axum::body::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let message: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let Some(id) = message.get("id").cloned() else {
        return axum::http::StatusCode::ACCEPTED.into_response();
    };
    let result = match message.get("method").and_then(|m| m.as_str()) {
        Some("initialize") => serde_json::json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "sink", "version": "1"}
        }),
        Some("tools/list") => serde_json::json!({"tools": [{
            "name": "get_status",
            "description": "reads the status",
            "inputSchema": {"type": "object", "properties": {}}
        }]}),
        Some("tools/call") => serde_json::json!({"content": [{"type": "text", "text": "ok"}]}),
        _ => {
            return axum::Json(serde_json::json!({
                "jsonrpc": "2.0", "id": id,
                "error": {"code": -32601, "message": "method not found"}
            }))
            .into_response();
        }
    };
    axum::Json(serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

async fn serve_sink() -> String {
    benches::serve_on_loopback(axum::Router::new().route("/mcp", axum::routing::post(sink))).await
}

/// TCP connections the generator uses (each carries one call at a time).
const CONNECTIONS: usize = 64;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The reference server on its own thread (its own runtime), limit far above the load.
fn start_reference() -> String {
    let port = free_port();
    let root = tempfile::tempdir().expect("a temporary directory").keep();
    let argv = vec![
        "mcp-reference-server".to_owned(),
        "--http".to_owned(),
        format!("127.0.0.1:{port}"),
        "--root".to_owned(),
        root.display().to_string(),
        "--rate-burst".to_owned(),
        "10000000".to_owned(),
        "--rate-per-second".to_owned(),
        "10000000".to_owned(),
    ];
    std::thread::spawn(move || reference_server::cli::run(argv));
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return format!("http://127.0.0.1:{port}/mcp");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the reference server did not start");
}

async fn offer(url: &str, headers: &[(String, String)], plan: LoadPlan) -> LoadSummary {
    let options = LoadOptions {
        target: TargetOptions::Http {
            url: url.to_owned(),
            headers: headers.to_vec(),
        },
        stage: StageOptions::default(),
        budget: Budget {
            request_timeout: Duration::from_secs(5),
            ..Budget::default()
        },
        plan,
        tool: None,
        arguments: None,
        connections: CONNECTIONS,
        expected_per_second: None,
        expected_burst: None,
    };
    harness::load::run(options).await.expect("the load runs")
}

fn report(name: &str, summary: &LoadSummary) {
    let served = summary.totals.served as f64;
    let busiest = summary.seconds.iter().map(|s| s.served).max().unwrap_or(0);
    let p99 = summary
        .latency_us
        .served
        .as_ref()
        .map_or(0.0, |p| p.p99 as f64 / 1000.0);
    let stopped = match (
        summary.stopped_keeping_up_at_second,
        summary.stopped_keeping_up_at_per_second,
    ) {
        (Some(second), Some(rate)) => format!("second {second}, {rate:.0}/s"),
        _ => "kept up".to_owned(),
    };
    println!(
        "| {name} | {} | {:.0} | {busiest} | {p99:.1} | {stopped} | {} | {:.1} |",
        summary.plan.ramp_to.map_or_else(
            || format!("{:.0}/s", summary.plan.rate),
            |end| format!("{:.0} to {end:.0}/s", summary.plan.rate)
        ),
        served / summary.plan.duration_s,
        summary.totals.failed + summary.totals.not_sent,
        summary.worst_send_lag_us as f64 / 1000.0,
    );
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5.0);
    let token = format!("load-bench-{:016x}", rand::random::<u64>());
    // SAFETY: set before any other thread exists; the reference server reads it at start.
    unsafe { std::env::set_var("MCP_SERVER_TOKEN", &token) };
    reference_server::guard::egress::ensure_crypto_provider();
    let reference = start_reference();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "{} cores; {CONNECTIONS} connections; a second is kept up when all its calls are answered within 100 ms; open files: {:?}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        harness::load::raise_open_file_limit()
    );
    println!(
        "| target | offered | served/s (mean) | served in the busiest second | p99 served (ms) | stopped keeping up at | failed or not sent | worst generator lag (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    runtime.block_on(async {
        let sink = serve_sink().await;
        let authorization = vec![("Authorization".to_owned(), format!("Bearer {token}"))];
        let plans = [
            LoadPlan {
                rate: 50_000.0,
                ramp_to: None,
                duration: Duration::from_secs_f64(seconds),
                max_in_flight: 10_000,
                latency_budget: Duration::from_millis(100),
            },
            LoadPlan {
                rate: 5_000.0,
                ramp_to: Some(100_000.0),
                duration: Duration::from_secs_f64(2.0 * seconds),
                max_in_flight: 10_000,
                latency_budget: Duration::from_millis(100),
            },
        ];
        for plan in &plans {
            report("sink", &offer(&sink, &[], plan.clone()).await);
        }
        for plan in &plans {
            report(
                "reference server",
                &offer(&reference, &authorization, plan.clone()).await,
            );
        }
    });
}
