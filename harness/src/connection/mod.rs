//! How the harness reaches a target: a stdio child process, a Streamable HTTP endpoint, or a
//! legacy HTTP+SSE endpoint (protocol 2024-11-05, [`sse`]).
//!
//! The harness speaks JSON-RPC itself rather than through an SDK client, because it must stay in
//! control when the target is hostile: every request has a timeout, every reply a size cap,
//! lines on stdout are read with a cap, and anything that is not an answer is counted, sampled
//! and dropped. The same connection also sends what no SDK would (garbage bytes, malformed
//! messages, requests without credentials) through [`Connection::raw`].
//!
//! Protocol versions: the harness offers the newest version that has an `initialize` handshake
//! and accepts whichever of 2024-11-05 .. 2026-07-28 the server answers with.
//!
//! Cost: one task per stdio stream (stdout, stderr) and a reqwest client for HTTP. Memory is
//! bounded by `max_reply_bytes` per reply, a 64 KiB stderr tail and a few samples of noise.

pub mod http;
pub mod keepalive;
pub mod sse;
pub mod stdio;

use serde_json::Value;
use std::time::Duration;

/// The protocol version offered in `initialize`.
pub const OFFERED_PROTOCOL_VERSION: &str = "2025-11-25";
/// Versions the harness accepts from a server.
pub const KNOWN_PROTOCOL_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

/// Limits that keep a hostile target from hanging or exhausting the harness.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub request_timeout: Duration,
    pub max_reply_bytes: usize,
    pub startup_timeout: Duration,
    pub protocol: ProtocolChoice,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            max_reply_bytes: 4 * 1024 * 1024,
            startup_timeout: Duration::from_secs(30),
            protocol: ProtocolChoice::Negotiate,
        }
    }
}

/// Why an exchange with the target failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("no reply within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("the target closed the connection ({0})")]
    Closed(String),
    #[error("the target could not be started: {0}")]
    Spawn(String),
    #[error("the reply was larger than the {0}-byte cap (dropped unread)")]
    ReplyTooLarge(usize),
    #[error("the reply is nested deeper than {0} levels (valid JSON the harness will not parse)")]
    ReplyTooDeep(usize),
    #[error("HTTP {status}: {body}")]
    HttpStatus {
        status: u16,
        body: String,
        /// The `Retry-After` header, in seconds, when the server sent one.
        retry_after: Option<u64>,
    },
    #[error("transport error: {0}")]
    Transport(String),
    #[error("the handshake failed: {0}")]
    Handshake(String),
    /// HTTP 404 for the session the request carried, even after a new session was opened:
    /// the answer came from the session table, not from what the request was meant to test.
    #[error("HTTP 404 for the session, even in a new one ({0})")]
    SessionLost(String),
    /// The harness did not send the request (the run stopped, or no valid call could be built).
    #[error("not sent: {0}")]
    NotSent(String),
}

/// A JSON-RPC answer: a result, or an error object.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Result(Value),
    Error {
        code: i64,
        message: String,
        data: Option<Value>,
    },
}

impl Reply {
    /// The reply a response message carries, or the transport error for one with neither a
    /// result nor an error.
    pub fn of_response(message: &Value) -> Result<Reply, TargetError> {
        Reply::from_message(message).ok_or_else(|| {
            TargetError::Transport("a response with neither result nor error".into())
        })
    }

    /// Builds a reply from a whole JSON-RPC response message.
    pub fn from_message(message: &Value) -> Option<Reply> {
        if let Some(result) = message.get("result") {
            return Some(Reply::Result(result.clone()));
        }
        let error = message.get("error")?;
        Some(Reply::Error {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            data: error.get("data").cloned(),
        })
    }

    /// All the text a person (or a model) would see in this reply.
    /// The reply as text for the oracles: the result as JSON, followed by the decoded text of
    /// any base64 `blob` of a `resources/read` result (a canary read as a binary resource is
    /// still the canary).
    pub fn text(&self) -> String {
        match self {
            Reply::Result(value) => {
                let mut text = value.to_string();
                for blob in value
                    .get("contents")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("blob").and_then(Value::as_str))
                {
                    use base64::Engine;
                    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(blob) {
                        text.push(' ');
                        text.push_str(&String::from_utf8_lossy(&bytes));
                    }
                }
                text
            }
            Reply::Error {
                code,
                message,
                data,
            } => {
                format!(
                    "error {code}: {message}{}",
                    data.as_ref().map(|d| format!(" {d}")).unwrap_or_default()
                )
            }
        }
    }

    /// What a person reads in a `tools/call` answer: the text of its content blocks (or the
    /// error), else the result as JSON; at most `max` bytes.
    pub fn summary(&self, max: usize) -> String {
        let text = match self {
            Reply::Result(value) => {
                // A tool's content blocks, a resource's contents, a prompt's messages.
                let texts: Vec<&str> = ["/content", "/contents", "/messages"]
                    .iter()
                    .filter_map(|pointer| value.pointer(pointer).and_then(Value::as_array))
                    .flatten()
                    .filter_map(|b| {
                        b.get("text")
                            .or_else(|| b.pointer("/content/text"))
                            .and_then(Value::as_str)
                    })
                    .collect();
                if texts.is_empty() {
                    value.to_string()
                } else {
                    texts.join(" ")
                }
            }
            error => error.text(),
        };
        excerpt(&text.split_whitespace().collect::<Vec<_>>().join(" "), max)
    }

    /// For a `tools/call` result: whether the tool reported an error.
    pub fn is_tool_error(&self) -> bool {
        matches!(self, Reply::Result(v) if v.get("isError").and_then(Value::as_bool) == Some(true))
    }
}

/// What happened to bytes sent outside the protocol.
#[derive(Debug, Clone, Default)]
pub struct RawOutcome {
    /// HTTP status, when the target is HTTP.
    pub status: Option<u16>,

    pub headers: Vec<(String, String)>,
    /// The start of whatever came back, at most 4 KiB.
    pub excerpt: String,
}

impl RawOutcome {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Things the target did that were not answers, for the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Observations {
    /// Lines on stdout that were not JSON-RPC messages (stdio only).
    pub stdout_noise_lines: u64,
    pub stdout_noise_samples: Vec<String>,
    /// Lines longer than the reply cap, dropped unread.
    pub oversized_lines: u64,
    /// Lines of valid JSON nested deeper than the parser reads (stdio only).
    pub too_deep_lines: u64,
    /// Server-to-client requests the harness declined.
    pub server_requests: u64,
    /// Times the target was restarted after dying.
    pub restarts: u64,
    /// Times an HTTP session was found gone (404) and a new one opened with `initialize`.
    pub session_reinitializations: u64,
    /// Same-origin redirects of the MCP endpoint the harness followed (HTTP).
    pub redirects_followed: u64,
    /// `notifications/tools/list_changed` (and the prompts' and resources') the server sent:
    /// a listing that changes with one is announced, without one is a rug pull.
    pub list_changed_notifications: u64,
    /// Responses that answered no request the harness was waiting for: a late answer to a
    /// timed-out request, or an answer under an altered id.
    pub stray_responses: u64,
    /// The ids of the last [`STRAY_ID_SAMPLES`] of those, for the probes (not in the report:
    /// an id is whatever the target chose to send).
    #[serde(skip)]
    pub stray_response_ids: Vec<Value>,
}

/// Whether `message` is a notification that one of the server's lists changed.
pub fn is_list_changed(message: &Value) -> bool {
    message.get("id").is_none()
        && matches!(
            message.get("method").and_then(Value::as_str),
            Some(
                "notifications/tools/list_changed"
                    | "notifications/prompts/list_changed"
                    | "notifications/resources/list_changed"
            )
        )
}

/// How many lines of stdout noise [`Observations`] keeps.
pub const NOISE_SAMPLES: usize = 5;

/// How many stray response ids [`Observations`] keeps.
pub const STRAY_ID_SAMPLES: usize = 16;

impl Observations {
    /// Counts a response that answered nothing pending, keeping the latest ids.
    pub fn note_stray_response(&mut self, id: Value) {
        self.stray_responses += 1;
        self.note_stray_id(id);
    }

    /// Adds another run's observations to these (a report joining two runs): counts add up,
    /// samples are kept while there is room.
    pub fn absorb(&mut self, other: Observations) {
        self.stdout_noise_lines += other.stdout_noise_lines;
        let room = NOISE_SAMPLES.saturating_sub(self.stdout_noise_samples.len());
        self.stdout_noise_samples
            .extend(other.stdout_noise_samples.into_iter().take(room));
        self.oversized_lines += other.oversized_lines;
        self.too_deep_lines += other.too_deep_lines;
        self.server_requests += other.server_requests;
        self.restarts += other.restarts;
        self.session_reinitializations += other.session_reinitializations;
        self.redirects_followed += other.redirects_followed;
        self.stray_responses += other.stray_responses;
        self.list_changed_notifications += other.list_changed_notifications;
        for id in other.stray_response_ids {
            self.note_stray_id(id);
        }
    }

    fn note_stray_id(&mut self, id: Value) {
        if self.stray_response_ids.len() == STRAY_ID_SAMPLES {
            self.stray_response_ids.remove(0);
        }
        self.stray_response_ids.push(id);
    }

    /// The ids of the stray responses seen since `earlier` was taken (at most the samples kept).
    pub fn stray_ids_since(&self, earlier: &Observations) -> &[Value] {
        let new = (self.stray_responses - earlier.stray_responses) as usize;
        let kept = self.stray_response_ids.len();
        &self.stray_response_ids[kept - new.min(kept)..]
    }
}

/// Whether a target answers (see [`Connection::liveness`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// Not answering, and why.
    Dead(String),
}

impl Liveness {
    pub fn is_alive(&self) -> bool {
        matches!(self, Liveness::Alive)
    }
}

/// A live connection to the target.
pub enum Connection {
    Stdio(Box<stdio::StdioConnection>),
    Http(Box<http::HttpConnection>),
    /// The legacy HTTP+SSE transport: an event stream and an endpoint to POST to.
    Sse(Box<sse::SseConnection>),
}

impl Connection {
    /// Sends a request and waits for its answer.
    pub async fn request(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Reply, TargetError> {
        match self {
            Connection::Stdio(c) => c.request(method, params).await,
            Connection::Http(c) => c.request(method, params).await,
            Connection::Sse(c) => c.request(method, params).await,
        }
    }

    /// Sends a request with a caller-chosen id and returns the whole response message (for id
    /// echo checks).
    pub async fn request_with_id(
        &mut self,
        id: Value,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, TargetError> {
        match self {
            Connection::Stdio(c) => c.request_with_id(id, method, params).await,
            Connection::Http(c) => c.request_with_id(id, method, params).await,
            Connection::Sse(c) => c.request_with_id(id, method, params).await,
        }
    }

    /// Sends one request per entry of `params` without waiting for any answer first (pipelined
    /// on stdio, on several connections over HTTP); the replies come back in order.
    pub async fn requests_at_once(
        &mut self,
        method: &str,
        params: Vec<Value>,
    ) -> Vec<Result<Reply, TargetError>> {
        match self {
            Connection::Stdio(c) => c.requests_at_once(method, params).await,
            Connection::Http(c) => c.requests_at_once(method, params).await,
            Connection::Sse(c) => c.requests_at_once(method, params).await,
        }
    }

    /// One request that may run at once with others on this connection (`&self`), with a
    /// caller-chosen id and the request timeout; no session is reopened and no stdio target
    /// restarted. The load generator's call: give ids no other request uses.
    pub async fn call_shared(
        &self,
        id: Value,
        method: &str,
        params: Option<Value>,
    ) -> Result<Reply, TargetError> {
        match self {
            Connection::Stdio(c) => c.call_shared(id, method, params).await,
            Connection::Http(c) => c.call_shared(id, method, params).await,
            Connection::Sse(c) => c.call_shared(id, method, params).await,
        }
    }

    pub async fn notify(&mut self, method: &str, params: Option<Value>) -> Result<(), TargetError> {
        match self {
            Connection::Stdio(c) => c.notify(method, params).await,
            Connection::Http(c) => c.notify(method, params).await,
            Connection::Sse(c) => c.notify(method, params).await,
        }
    }

    /// Sends bytes that need not be valid JSON-RPC. Over HTTP they are a POST body with the
    /// connection's headers, except those in `drop_headers`, plus `extra_headers`.
    pub async fn raw(
        &mut self,
        bytes: &[u8],
        extra_headers: &[(&str, &str)],
        drop_headers: &[&str],
    ) -> Result<RawOutcome, TargetError> {
        match self {
            Connection::Stdio(c) => c.raw(bytes).await,
            Connection::Http(c) => c.raw(bytes, extra_headers, drop_headers, None).await,
            Connection::Sse(c) => c.raw(bytes, extra_headers, drop_headers).await,
        }
    }

    /// A ping with the request timeout: is the target still answering?
    pub async fn alive(&mut self) -> bool {
        self.liveness().await.is_alive()
    }

    /// Liveness as the report defines it: a `ping` answered, on the target's own session, with
    /// a result, or with a well-formed JSON-RPC error (2026-07-28 has no ping and answers it
    /// with -32601). An HTTP 5xx (whatever its body), any other HTTP error status, a reply that
    /// is not JSON-RPC, a timeout or a closed connection is not alive; for a stdio target the
    /// reason says whether its process is still running (busy or wedged) or has exited.
    pub async fn liveness(&mut self) -> Liveness {
        let reply = self.request("ping", None).await;
        self.liveness_of(reply)
    }

    /// What the answer to a liveness `ping` says (see [`Self::liveness`]).
    pub fn liveness_of(&mut self, reply: Result<Reply, TargetError>) -> Liveness {
        match reply {
            Ok(_) => Liveness::Alive,
            Err(error) => {
                let process = match self {
                    Connection::Stdio(c) => match c.exit_status() {
                        Some(status) => format!("; its process has exited ({status})"),
                        None => "; its process is still running (busy or wedged)".to_owned(),
                    },
                    Connection::Http(_) => String::new(),
                    Connection::Sse(_) => String::new(),
                };
                Liveness::Dead(format!("the ping got {error}{process}"))
            }
        }
    }

    pub fn observations(&self) -> Observations {
        match self {
            Connection::Stdio(c) => c.observations(),
            Connection::Http(c) => c.observations(),
            Connection::Sse(c) => c.observations(),
        }
    }

    /// The negotiated protocol version.
    pub fn protocol_version(&self) -> &str {
        match self {
            Connection::Stdio(c) => &c.protocol_version,
            Connection::Http(c) => &c.protocol_version,
            Connection::Sse(c) => &c.protocol_version,
        }
    }

    pub fn server_info(&self) -> &Value {
        match self {
            Connection::Stdio(c) => &c.server_info,
            Connection::Http(c) => &c.server_info,
            Connection::Sse(c) => &c.server_info,
        }
    }

    /// The capabilities the server declared (`initialize` or `server/discover`); null before.
    pub fn capabilities(&self) -> &Value {
        match self {
            Connection::Stdio(c) => &c.capabilities,
            Connection::Http(c) => &c.capabilities,
            Connection::Sse(c) => &c.capabilities,
        }
    }

    pub fn is_stdio(&self) -> bool {
        matches!(self, Connection::Stdio(_))
    }

    /// The transport's name in reports: `stdio`, `in-process` (the stdio line protocol over a
    /// pipe to a server in this process), `http` or `sse`.
    pub fn transport_name(&self) -> &'static str {
        match self {
            Connection::Stdio(c) if c.is_in_process() => "in-process",
            Connection::Stdio(_) => "stdio",
            Connection::Http(_) => "http",
            Connection::Sse(_) => "sse",
        }
    }

    /// Restarts a dead stdio target (HTTP targets cannot be restarted by the harness).
    pub async fn restart(&mut self) -> Result<(), TargetError> {
        match self {
            Connection::Stdio(c) => c.restart().await,
            Connection::Http(_) | Connection::Sse(_) => Err(TargetError::Closed(
                "an HTTP target cannot be restarted".into(),
            )),
        }
    }

    pub async fn shutdown(&mut self) {
        if let Connection::Stdio(c) = self {
            c.shutdown().await;
        }
    }

    /// The last request the target answered normally (an answer, or an HTTP status below 500),
    /// for telling which request a server died after (HTTP; stdio records crashes itself).
    pub fn last_answered(&self) -> Option<String> {
        match self {
            Connection::Stdio(_) => None,
            Connection::Http(c) => c.last_answered(),
            Connection::Sse(_) => None,
        }
    }

    /// The end of the target's stderr (stdio only), for the report.
    pub fn stderr_tail(&self) -> String {
        match self {
            Connection::Stdio(c) => c.stderr_tail(),
            Connection::Http(_) => String::new(),
            Connection::Sse(_) => String::new(),
        }
    }
}

/// The protocol version without `initialize` or sessions: every request carries its own
/// protocol version and client capabilities in `_meta`, and `server/discover` replaces the
/// handshake.
pub const STATELESS_PROTOCOL_VERSION: &str = "2026-07-28";

/// A JSON-RPC request; speaking statelessly, its params carry the per-request metadata.
pub fn request_message(id: &Value, method: &str, params: Option<Value>, stateless: bool) -> Value {
    let params = if stateless {
        Some(with_request_meta(params))
    } else {
        params
    };
    let mut message = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method});
    if let Some(params) = params {
        message["params"] = params;
    }
    message
}

/// `params` with the per-request metadata a stateless (2026-07-28) server requires.
pub fn with_request_meta(params: Option<Value>) -> Value {
    let mut params = match params {
        Some(Value::Object(map)) => Value::Object(map),
        Some(other) => return other,
        None => serde_json::json!({}),
    };
    let meta = params
        .as_object_mut()
        .expect("an object")
        .entry("_meta")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(
            "io.modelcontextprotocol/protocolVersion".into(),
            Value::from(STATELESS_PROTOCOL_VERSION),
        );
        meta.insert(
            "io.modelcontextprotocol/clientCapabilities".into(),
            serde_json::json!({}),
        );
        meta.insert(
            "io.modelcontextprotocol/clientInfo".into(),
            serde_json::json!({"name": "mcp-harness", "version": env!("CARGO_PKG_VERSION")}),
        );
    }
    params
}

/// Checks a `server/discover` result: the server must list 2026-07-28 among its versions.
/// Returns (server info, capabilities).
pub fn accept_discover(reply: Reply) -> Result<(Value, Value), TargetError> {
    match reply {
        Reply::Result(result) => {
            let supported = result
                .get("supportedVersions")
                .and_then(Value::as_array)
                .is_some_and(|v| v.iter().any(|v| v == STATELESS_PROTOCOL_VERSION));
            if supported {
                // 2026-07-28 puts it in the result's metadata; earlier drafts at the top.
                let info = result
                    .get("serverInfo")
                    .or_else(|| result.pointer("/_meta/io.modelcontextprotocol~1serverInfo"));
                Ok((
                    info.cloned().unwrap_or(Value::Null),
                    result.get("capabilities").cloned().unwrap_or(Value::Null),
                ))
            } else {
                Err(TargetError::Handshake(format!(
                    "server/discover does not list {STATELESS_PROTOCOL_VERSION}"
                )))
            }
        }
        Reply::Error { code, message, .. } => Err(TargetError::Handshake(format!(
            "server/discover failed: {code} {message}"
        ))),
    }
}

/// Which protocol era to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolChoice {
    /// `initialize`, and stateless 2026-07-28 only if the server refuses it.
    #[default]
    Negotiate,
    /// Stateless 2026-07-28 from the start.
    Stateless,
}

/// The `initialize` request the harness sends.
pub fn initialize_params() -> Value {
    serde_json::json!({
        "protocolVersion": OFFERED_PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "mcp-harness", "version": env!("CARGO_PKG_VERSION")},
    })
}

/// Checks an `initialize` result and returns (protocol version, server info, capabilities).
pub fn accept_initialize(reply: Reply) -> Result<(String, Value, Value), TargetError> {
    match reply {
        Reply::Result(result) => {
            let version = result
                .get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if !KNOWN_PROTOCOL_VERSIONS.contains(&version.as_str()) {
                return Err(TargetError::Handshake(format!(
                    "the server answered with unknown protocol version {version:?}"
                )));
            }
            Ok((
                version,
                result.get("serverInfo").cloned().unwrap_or(Value::Null),
                result.get("capabilities").cloned().unwrap_or(Value::Null),
            ))
        }
        Reply::Error { code, message, .. } => Err(TargetError::Handshake(format!(
            "initialize failed: {code} {message}"
        ))),
    }
}

/// Cuts text to at most `max` bytes on a character boundary.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_read_as_a_blob_is_read_by_the_oracles_too() {
        use base64::Engine;
        let blob = base64::engine::general_purpose::STANDARD.encode("MCPCANARY-FILE-0123");
        let reply =
            Reply::Result(serde_json::json!({"contents": [{"uri": "file:///x", "blob": blob}]}));
        assert!(
            reply.text().contains("MCPCANARY-FILE-0123"),
            "{}",
            reply.text()
        );
        let prompt = Reply::Result(
            serde_json::json!({"messages": [{"role": "user", "content": {"type": "text", "text": "hello  there"}}]}),
        );
        assert_eq!(prompt.summary(100), "hello there");
    }
    use serde_json::json;

    #[test]
    fn server_discover_names_the_server_from_its_metadata_or_the_top() {
        let versions = json!([STATELESS_PROTOCOL_VERSION]);
        let in_meta = json!({"supportedVersions": versions, "_meta": {
            "io.modelcontextprotocol/serverInfo": {"name": "s", "version": "1"}}});
        let at_top = json!({"supportedVersions": versions, "serverInfo": {"name": "t"}});
        assert_eq!(
            accept_discover(Reply::Result(in_meta)).unwrap().0["name"],
            "s"
        );
        assert_eq!(
            accept_discover(Reply::Result(at_top)).unwrap().0["name"],
            "t"
        );
        let old = json!({"supportedVersions": ["2025-11-25"]});
        assert!(accept_discover(Reply::Result(old)).is_err());
    }

    #[test]
    fn stray_ids_since_keeps_the_latest_samples() {
        let mut observations = Observations::default();
        observations.note_stray_response(json!(1));
        let before = observations.clone();
        assert!(observations.stray_ids_since(&before).is_empty());
        for id in 0..20 {
            observations.note_stray_response(json!(100 + id));
        }
        let since = observations.stray_ids_since(&before);
        assert_eq!(since.len(), STRAY_ID_SAMPLES);
        assert_eq!(since.last(), Some(&json!(119)));
        assert_eq!(since.first(), Some(&json!(104)));
    }
}
