//! The reference server's JSON-RPC surface over its stdio transport, judged by the protocol.
//!
//! Each input runs a whole MCP session in process (`transport::stdio::serve_on` on an
//! in-memory pipe, the same code path as the binary's stdin and stdout): `initialize`, then
//! the fuzzer's messages, then a final `ping`.
//!
//! Input: the first byte picks the mode. Raw mode writes the rest as bytes, as they come (not
//! JSON, several lines, a line without its newline, invalid UTF-8...). Message mode writes a
//! sequence of well-formed requests and notifications (methods of the protocol and unknown
//! ones; `tools/call` with each tool and arguments of any JSON shape; integer and string ids)
//! one at a time, each followed by a probe `ping`.
//!
//! Oracles: every line the server writes is a JSON-RPC 2.0 message (a response with an id and
//! exactly one of `result` and `error`, the error with an integer code and a string message, or
//! a message from the server with a method); in message mode every request gets exactly one
//! response carrying its id, and no response arrives for a notification; in both modes the
//! server still answers the final `ping` (it keeps serving). A reply that takes longer than
//! five seconds is a hang and fails the input.

use arbitrary::{Arbitrary, Unstructured};
use reference_server::guard::api_keys::Principal;
use reference_server::guard::db::ReadOnlyDb;
use reference_server::guard::limits::Limits;
use reference_server::guard::rate_limit::{RateLimitConfig, RateLimiter};
use reference_server::tools::{ReferenceServer, ServerState};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const MAX_LINE_BYTES: usize = 64 * 1024;
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

struct Fixture {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    server: ReferenceServer,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root_dir = tempfile::tempdir().expect("a temporary sandbox");
        let db_dir = tempfile::tempdir().expect("a temporary database directory");
        let root = root_dir
            .path()
            .canonicalize()
            .expect("the sandbox resolves");
        std::fs::write(root.join("notes.txt"), "hello").expect("a seed file");
        let database = db_dir.path().join("demo.sqlite");
        ReadOnlyDb::create_demo(&database).expect("the demo database");
        let limits = Limits {
            max_body_bytes: MAX_LINE_BYTES,
            call_timeout: Duration::from_secs(2),
            ..Limits::default()
        };
        // No host is allowed for fetches: no input can make the server reach the network.
        let state = ServerState::in_process(
            root,
            database,
            limits,
            Some(Principal::new(
                "fuzz",
                ["files:read", "files:write", "admin"],
            )),
            Some(
                RateLimiter::new(RateLimitConfig {
                    burst: 1_000_000,
                    per_second: 1e9,
                    max_tracked_keys: 16,
                })
                .expect("a valid limiter"),
            ),
        )
        .expect("the fuzz state");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Fixture {
            _dirs: (root_dir, db_dir),
            server: ReferenceServer::new(state),
            runtime,
        }
    })
}

#[derive(Arbitrary, Debug)]
enum Id {
    Number(i64),
    Text(String),
}

impl Id {
    fn json(&self) -> Value {
        match self {
            Id::Number(n) => json!(n),
            Id::Text(text) => json!(text),
        }
    }
}

/// A JSON value of bounded depth, for parameters and tool arguments.
#[derive(Arbitrary, Debug)]
enum Shape {
    Null,
    Bool(bool),
    Integer(i64),
    Float(f64),
    Text(String),
    List(Vec<Shape>),
    Object(Vec<(u8, Shape)>),
}

const KEYS: &[&str] = &[
    "path",
    "content",
    "url",
    "name_contains",
    "category",
    "limit",
    "data",
    "operation",
    "max_depth",
    "max_count",
    "name",
    "arguments",
    "uri",
    "cursor",
    "level",
    "requestId",
    "_meta",
    "progressToken",
    "protocolVersion",
    "capabilities",
    "clientInfo",
    "extra",
];

impl Shape {
    fn json(&self, depth: usize) -> Value {
        if depth > 8 {
            return Value::Null;
        }
        match self {
            Shape::Null => Value::Null,
            Shape::Bool(b) => json!(b),
            Shape::Integer(n) => json!(n),
            Shape::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Shape::Text(text) => json!(text),
            Shape::List(items) => items.iter().take(16).map(|s| s.json(depth + 1)).collect(),
            Shape::Object(fields) => Value::Object(
                fields
                    .iter()
                    .take(16)
                    .map(|(k, s)| (KEYS[*k as usize % KEYS.len()].to_owned(), s.json(depth + 1)))
                    .collect(),
            ),
        }
    }
}

const METHODS: &[&str] = &[
    "ping",
    "initialize",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "no/such/method",
    "",
    "rpc.discover",
    "admin_stats",
];
const TOOLS: &[&str] = &[
    "read_file",
    "list_directory",
    "write_file",
    "delete_file",
    "fetch_url",
    "query_records",
    "file_history",
    "process_data",
    "admin_stats",
    "no_such_tool",
];

#[derive(Arbitrary, Debug)]
enum Message {
    Request {
        id: Id,
        method: u8,
        params: Option<Shape>,
    },
    ToolCall {
        id: Id,
        tool: u8,
        arguments: Shape,
    },
    Notification {
        method: u8,
        params: Option<Shape>,
    },
    OtherMethod {
        id: Option<Id>,
        method: String,
    },
}

impl Message {
    /// The message and the id of the response it must get (`None` for a notification).
    fn render(&self) -> (Value, Option<Value>) {
        let pick = |i: &u8| METHODS[*i as usize % METHODS.len()];
        let mut message = json!({"jsonrpc": "2.0"});
        let id = match self {
            Message::Request { id, method, params } => {
                message["method"] = json!(pick(method));
                if let Some(params) = params {
                    message["params"] = params.json(0);
                }
                Some(id.json())
            }
            Message::ToolCall {
                id,
                tool,
                arguments,
            } => {
                message["method"] = json!("tools/call");
                message["params"] = json!({
                    "name": TOOLS[*tool as usize % TOOLS.len()],
                    "arguments": arguments.json(0),
                });
                Some(id.json())
            }
            Message::Notification { method, params } => {
                message["method"] = json!(pick(method));
                if let Some(params) = params {
                    message["params"] = params.json(0);
                }
                None
            }
            Message::OtherMethod { id, method } => {
                message["method"] = json!(method);
                id.as_ref().map(Id::json)
            }
        };
        if let Some(id) = &id {
            message["id"] = id.clone();
        }
        (message, id)
    }
}

/// Checks that `line` is a well-formed JSON-RPC message from a server; returns it.
fn well_formed(line: &str) -> Value {
    let message: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("the server wrote a line that is not JSON ({e}): {line:?}"));
    assert_eq!(message["jsonrpc"], "2.0", "not JSON-RPC 2.0: {line}");
    if message.get("method").is_some() {
        return message; // a notification or request from the server
    }
    // MCP 2026-07-28 (basic, Error Responses) lets an error omit the id when the request's id
    // could not be read; JSON-RPC 2.0 wrote it as null. A result always carries one.
    let unreadable_request = message["error"]["code"]
        .as_i64()
        .is_some_and(|code| code == -32600 || code == -32700);
    assert!(
        message.get("id").is_some() || unreadable_request,
        "a response without an id: {line}"
    );
    match (message.get("result"), message.get("error")) {
        (Some(result), None) => {
            assert!(result.is_object(), "a result that is not an object: {line}")
        }
        (None, Some(error)) => {
            assert!(
                error["code"].is_i64(),
                "an error without an integer code: {line}"
            );
            assert!(
                error["message"].is_string(),
                "an error without a message: {line}"
            );
        }
        _ => panic!("a response needs exactly one of result and error: {line}"),
    }
    message
}

struct Session<R> {
    lines: tokio::io::Lines<BufReader<R>>,
    writer: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    /// Responses read so far, by id (as JSON text), with how many times each was seen.
    seen: std::collections::HashMap<String, usize>,
}

impl<R: tokio::io::AsyncRead + Unpin> Session<R> {
    async fn send(&mut self, bytes: &[u8]) {
        // The server may have closed its side; the final ping then notices.
        let _ = self.writer.write_all(bytes).await;
        let _ = self.writer.flush().await;
    }

    async fn send_json(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).expect("JSON serializes");
        line.push(b'\n');
        self.send(&line).await;
    }

    /// Reads until a response with `id` arrives; panics on a hang or a closed stream.
    async fn wait_for(&mut self, id: &Value, context: &dyn std::fmt::Debug) {
        let key = id.to_string();
        let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
        while !self.seen.contains_key(&key) {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!("no reply to {key} within {REPLY_TIMEOUT:?} after {context:?}")
                })
                .unwrap_or_else(|e| panic!("the server's output failed ({e}) after {context:?}"))
                .unwrap_or_else(|| {
                    panic!("the server closed the session before answering {key} after {context:?}")
                });
            let message = well_formed(&line);
            if message.get("method").is_none() {
                *self.seen.entry(message["id"].to_string()).or_default() += 1;
            }
        }
    }
}

async fn session(input: &[u8], server: ReferenceServer) {
    let (client, server_side) = tokio::io::duplex(256 * 1024);
    let (server_read, server_write) = tokio::io::split(server_side);
    let serving = tokio::spawn(reference_server::transport::stdio::serve_on(
        server,
        server_read,
        server_write,
        MAX_LINE_BYTES,
    ));
    let (client_read, writer) = tokio::io::split(client);
    let mut session = Session {
        lines: BufReader::new(client_read).lines(),
        writer,
        seen: Default::default(),
    };
    session
        .send_json(
            &json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "fuzz", "version": "0"}}}),
        )
        .await;
    session.wait_for(&json!("init"), &"initialize").await;
    session
        .send_json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;

    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        session.send(rest).await;
        session.send(b"\n").await;
    } else if let Ok(messages) = Vec::<Message>::arbitrary_take_rest(Unstructured::new(rest)) {
        let mut requests = std::collections::HashSet::new();
        for (n, message) in messages.iter().take(16).enumerate() {
            let (json, id) = message.render();
            if id.as_ref().is_some_and(|id| {
                session.seen.contains_key(&id.to_string())
                    || id.as_str().is_some_and(|s| s.starts_with("probe-"))
            }) {
                continue; // a reused id cannot be told apart
            }
            session.send_json(&json).await;
            let probe = json!(format!("probe-{n}"));
            session
                .send_json(&json!({"jsonrpc": "2.0", "id": probe, "method": "ping"}))
                .await;
            session.wait_for(&probe, &json).await;
            match &id {
                Some(id) => {
                    requests.insert(id.to_string());
                    session.wait_for(id, &json).await;
                    assert_eq!(
                        session.seen[&id.to_string()],
                        1,
                        "{json}: more than one response"
                    );
                }
                None => {
                    let unexpected: Vec<_> = session
                        .seen
                        .keys()
                        .filter(|k| {
                            *k != "\"init\"" && !k.starts_with("\"probe-") && !requests.contains(*k)
                        })
                        .collect();
                    assert!(
                        unexpected.is_empty(),
                        "{json}: a notification was answered: {unexpected:?}"
                    );
                }
            }
        }
    }
    let last = json!("final-ping");
    session
        .send_json(&json!({"jsonrpc": "2.0", "id": last, "method": "ping"}))
        .await;
    session.wait_for(&last, &"the input").await;
    drop(session);
    serving.abort();
}

pub fn check(data: &[u8]) {
    let fixture = fixture();
    fixture
        .runtime
        .block_on(session(data, fixture.server.clone()));
}
