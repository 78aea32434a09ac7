//! End to end: `tools/call` round trips per second, and p50 / p99 latency, through the reference
//! server with every guard on, against the same SDK serving the same tool with no guard.
//! `cargo bench -p benches --bench end_to_end` (a plain program, not criterion: it reports
//! percentiles and a ratio measured in one interleaved run).
//!
//! - **Guarded**: `ReferenceServer`, the real tool router. Every call passes the JSON shape
//!   check, the per-principal rate limiter (configured generously, so it checks but never
//!   refuses), the concurrency gate, the scope check and the sandbox (cap-std, lexical check,
//!   size checked on the handle); over HTTP also the Host/Origin check, the body limit, the
//!   timeout, bearer authentication (an API key digest lookup) and the session binding.
//! - **Bare**: a minimal rmcp server with one `read_file` tool that reads `root.join(path)`
//!   with `std::fs` on the blocking pool, as an unguarded server would; over HTTP, rmcp's
//!   Streamable HTTP service on its own.
//!
//! Both read the same 13-byte file. "stdio" runs the server's stdio transport on an in-process
//! pipe (the transport code without the two pipe system calls, which would add the same time to
//! both); "HTTP" runs both on 127.0.0.1 and calls them with one keep-alive client. The two
//! servers are measured in alternating batches, so drift on a shared machine hits both.

use reference_server::guard::api_keys::{ApiKeys, Principal};
use reference_server::guard::db::ReadOnlyDb;
use reference_server::guard::limits::Limits;
use reference_server::guard::rate_limit::{RateLimitConfig, RateLimiter};
use reference_server::tools::{ReferenceServer, ServerState};
use reference_server::transport::http::{Authenticator, HttpGuards, HttpSettings, router};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const API_KEY: &str = "end-to-end-benchmark-key-0123456789";

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct ReadFileArgs {
    path: String,
}

/// The unguarded peer: what a server without the practices does for the same call.
#[derive(Clone)]
struct BareServer {
    root: PathBuf,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl BareServer {
    fn new(root: PathBuf) -> Self {
        Self {
            root,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Read a file")]
    async fn read_file(
        &self,
        Parameters(args): Parameters<ReadFileArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let path = self.root.join(args.path);
        let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for BareServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

fn generous_limiter() -> RateLimiter<String> {
    RateLimiter::new(RateLimitConfig {
        burst: 1_000_000_000,
        per_second: 1e9,
        max_tracked_keys: 1_000,
    })
    .expect("a valid limiter")
}

fn guarded(root: PathBuf, database: PathBuf) -> ReferenceServer {
    let state = ServerState::in_process(
        root,
        database,
        Limits::default(),
        Some(Principal::new("bench", ["files:read"])),
        Some(generous_limiter()),
    )
    .expect("the reference server's state");
    ReferenceServer::new(state)
}

fn initialize_message() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"}}})
}

fn call_message(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "read_file", "arguments": {"path": "hello.txt"}}})
}

/// A session over an in-process pipe through the server's stdio transport.
struct PipeSession {
    lines: tokio::io::Lines<BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>>,
    writer: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    next_id: u64,
}

impl PipeSession {
    async fn start(server: impl ServerHandler) -> Self {
        let (client, server_side) = tokio::io::duplex(1 << 20);
        let (server_read, server_write) = tokio::io::split(server_side);
        tokio::spawn(reference_server::transport::stdio::serve_on(
            server,
            server_read,
            server_write,
            1 << 20,
        ));
        let (read, writer) = tokio::io::split(client);
        let mut session = Self {
            lines: BufReader::new(read).lines(),
            writer,
            next_id: 1,
        };
        session.exchange(&initialize_message()).await;
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        session.send(&initialized).await;
        session
    }

    async fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).expect("JSON");
        line.push(b'\n');
        self.writer.write_all(&line).await.expect("the pipe");
    }

    async fn exchange(&mut self, message: &Value) -> Value {
        self.send(message).await;
        loop {
            let line = self
                .lines
                .next_line()
                .await
                .expect("the pipe")
                .expect("a reply");
            let reply: Value = serde_json::from_str(&line).expect("a JSON reply");
            if reply.get("id") == message.get("id") {
                return reply;
            }
        }
    }

    async fn call(&mut self) {
        self.next_id += 1;
        let reply = self.exchange(&call_message(self.next_id)).await;
        assert_eq!(
            reply["result"]["content"][0]["text"], "hello, bench\n",
            "{reply}"
        );
    }
}

/// A Streamable HTTP session with one keep-alive client.
struct HttpSession {
    client: reqwest::Client,
    url: String,
    session: Option<String>,
    authorization: Option<String>,
    next_id: u64,
}

impl HttpSession {
    async fn start(url: String, authorization: Option<String>) -> Self {
        let mut session = Self {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("a client"),
            url,
            session: None,
            authorization,
            next_id: 1,
        };
        session.exchange(&initialize_message()).await;
        session
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        session
    }

    async fn post(&mut self, message: &Value) -> reqwest::Response {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .body(serde_json::to_vec(message).expect("JSON"));
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.expect("the server answers");
        if let Some(id) = response.headers().get("mcp-session-id") {
            self.session = Some(id.to_str().expect("an ASCII session id").to_owned());
        }
        response
    }

    async fn exchange(&mut self, message: &Value) -> String {
        let response = self.post(message).await;
        assert!(response.status().is_success(), "{}", response.status());
        response.text().await.expect("a body")
    }

    async fn call(&mut self) {
        self.next_id += 1;
        let body = self.exchange(&call_message(self.next_id)).await;
        assert!(body.contains("hello, bench"), "{body}");
    }
}

/// Latencies of each side, measured in alternating batches.
struct Measured {
    guarded: Vec<Duration>,
    bare: Vec<Duration>,
}

impl Measured {
    fn report(&self, transport: &str) {
        self.report_as(transport, "guarded");
    }

    fn report_as(&self, transport: &str, guarded_label: &str) {
        let summary = |latencies: &[Duration]| {
            let mut sorted = latencies.to_vec();
            sorted.sort();
            let total: Duration = sorted.iter().sum();
            let per_second = sorted.len() as f64 / total.as_secs_f64();
            let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
            (per_second, at(0.5), at(0.99))
        };
        let (guarded_rate, guarded_p50, guarded_p99) = summary(&self.guarded);
        let (bare_rate, bare_p50, bare_p99) = summary(&self.bare);
        println!(
            "{transport:5}  {guarded_label} {guarded_rate:8.0} calls/s  p50 {:6.1} us  p99 {:6.1} us | bare {bare_rate:8.0} calls/s  p50 {:6.1} us  p99 {:6.1} us | ratio {:.2} ({} calls each)",
            guarded_p50.as_secs_f64() * 1e6,
            guarded_p99.as_secs_f64() * 1e6,
            bare_p50.as_secs_f64() * 1e6,
            bare_p99.as_secs_f64() * 1e6,
            guarded_rate / bare_rate,
            self.guarded.len(),
        );
    }
}

const ROUNDS: usize = 20;

/// A session that can make one timed `tools/call`.
trait Session {
    async fn call(&mut self);
}

impl Session for PipeSession {
    async fn call(&mut self) {
        PipeSession::call(self).await
    }
}

impl Session for HttpSession {
    async fn call(&mut self) {
        HttpSession::call(self).await
    }
}

/// `batch` calls of one side, then of the other, for a warm-up round and [`ROUNDS`] more.
async fn alternate(guarded: &mut impl Session, bare: &mut impl Session, batch: usize) -> Measured {
    let mut measured = Measured {
        guarded: Vec::new(),
        bare: Vec::new(),
    };
    for round in 0..=ROUNDS {
        for _ in 0..batch {
            let started = Instant::now();
            guarded.call().await;
            if round > 0 {
                measured.guarded.push(started.elapsed());
            }
        }
        for _ in 0..batch {
            let started = Instant::now();
            bare.call().await;
            if round > 0 {
                measured.bare.push(started.elapsed());
            }
        }
    }
    measured
}

async fn stdio(root: PathBuf, database: PathBuf, batch: usize) -> Measured {
    let mut guarded_session = PipeSession::start(guarded(root.clone(), database)).await;
    let mut bare_session = PipeSession::start(BareServer::new(root)).await;
    alternate(&mut guarded_session, &mut bare_session, batch).await
}

/// The HTTP layers alone (Host/Origin, body limit, timeout, authentication, rate limit, scope
/// and session binding) around the bare server, against the bare server: where the HTTP cost
/// goes.
async fn http_layers_only(root: PathBuf, batch: usize) -> Measured {
    let app = router(
        BareServer::new(root.clone()),
        bench_guards(),
        bench_settings(),
    );
    let mut layered = HttpSession::start(
        benches::serve_on_loopback(app).await,
        Some(format!("Bearer {API_KEY}")),
    )
    .await;
    let mut bare = HttpSession::start(benches::serve_on_loopback(bare_app(root)).await, None).await;
    alternate(&mut layered, &mut bare, batch).await
}

/// The reference HTTP guards with the bench's key and a limiter that never refuses.
fn bench_guards() -> HttpGuards {
    HttpGuards::reference(
        bench_authenticator(),
        generous_limiter(),
        &bench_settings(),
        std::sync::Arc::new(reference_server::guard::scopes::ReferenceScopes),
    )
}

fn bench_authenticator() -> Authenticator {
    let keys = ApiKeys::from_plain_keys(
        [(Principal::new("bench", ["files:read"]), API_KEY.as_bytes())],
        "bench",
    )
    .expect("a valid key");
    Authenticator {
        api_keys: Some(keys),
        jwt: None,
        insecure_dev_principal: None,
    }
}

fn bench_settings() -> HttpSettings {
    HttpSettings {
        allowed_hosts: vec!["127.0.0.1".into(), "localhost".into()],
        allowed_origins: Vec::new(),
        public_url: "http://127.0.0.1/mcp".into(),
        authorization_servers: Vec::new(),
        max_body_bytes: Limits::default().max_body_bytes,
        response_timeout: Duration::from_secs(30),
        dev_authorization: None,
    }
}

/// rmcp's Streamable HTTP service alone, serving the bare server.
fn bare_app(root: PathBuf) -> axum::Router {
    let service = rmcp::transport::StreamableHttpService::new(
        move || Ok(BareServer::new(root.clone())),
        std::sync::Arc::new(
            rmcp::transport::streamable_http_server::session::local::LocalSessionManager::default(),
        ),
        rmcp::transport::StreamableHttpServerConfig::default(),
    );
    axum::Router::new().route_service("/mcp", service)
}

async fn http(root: PathBuf, database: PathBuf, batch: usize) -> Measured {
    let guarded_app = router(
        guarded(root.clone(), database),
        bench_guards(),
        bench_settings(),
    );
    let bare_app = bare_app(root);
    let mut guarded_session = HttpSession::start(
        benches::serve_on_loopback(guarded_app).await,
        Some(format!("Bearer {API_KEY}")),
    )
    .await;
    let mut bare_session =
        HttpSession::start(benches::serve_on_loopback(bare_app).await, None).await;
    alternate(&mut guarded_session, &mut bare_session, batch).await
}

fn main() {
    reference_server::guard::egress::ensure_crypto_provider();
    // `cargo bench` passes `--bench`; a filter argument is not supported here.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("the sandbox");
    std::fs::write(root.join("hello.txt"), "hello, bench\n").expect("the file");
    let database = dir.path().join("demo.sqlite");
    ReadOnlyDb::create_demo(&database).expect("the database");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "tools/call read_file round trips, {ROUNDS} alternating rounds (after one warm-up round)"
    );
    // One section alone, e.g. under a profiler: END_TO_END_ONLY=stdio, http or layers.
    let only = std::env::var("END_TO_END_ONLY").ok();
    let wanted = |section: &str| only.as_deref().is_none_or(|o| o == section);
    if wanted("stdio") {
        runtime
            .block_on(stdio(root.clone(), database.clone(), 500))
            .report("stdio");
    }
    if wanted("http") {
        runtime
            .block_on(http(root.clone(), database, 200))
            .report("HTTP");
    }
    if wanted("layers") {
        runtime
            .block_on(http_layers_only(root, 200))
            .report_as("HTTP", "layers only");
    }
}
