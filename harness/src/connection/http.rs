//! A Streamable HTTP target: JSON-RPC messages POSTed to one URL.
//!
//! Replies may be `application/json` or `text/event-stream`; an SSE stream is read only until
//! the event answering the request arrives (servers may keep it open), and never past
//! `max_reply_bytes` or the request timeout. The session id and negotiated protocol version
//! from `initialize` are sent on every later request, with the user's `--header`s.
//!
//! Failure: a non-2xx status is [`TargetError::HttpStatus`] with the start of the body; the
//! raw channel ([`HttpConnection::raw`]) returns any status as data instead.

use super::{
    Budget, Observations, ProtocolChoice, RawOutcome, Reply, STATELESS_PROTOCOL_VERSION,
    TargetError, accept_discover, accept_initialize, excerpt, initialize_params, request_message,
};
use serde_json::{Value, json};

pub struct HttpConnection {
    client: reqwest::Client,
    pub url: String,
    headers: Vec<(String, String)>,
    budget: Budget,
    pub session_id: Option<String>,
    next_id: u64,
    pub protocol_version: String,
    pub server_info: Value,
    /// The capabilities the server declared.
    pub capabilities: Value,
    /// Speaking 2026-07-28: every request carries its own protocol metadata.
    pub stateless: bool,
    /// Headers that replace the user's headers of the same name (or are added) on every
    /// request until cleared: the RATE family sends a second principal's credential or a
    /// forged `X-Forwarded-For` this way.
    pub override_headers: Vec<(String, String)>,
    /// What the replies showed besides their answers (stray responses).
    observations: std::sync::Mutex<Observations>,
    /// The last request answered normally (status below 500), as an excerpt.
    last_answered: std::sync::Mutex<Option<String>>,
}

/// A reply read under the budget.
struct Received {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The JSON-RPC message answering the request, when one was wanted and found.
    answer: Option<Value>,
    /// The body was valid JSON nested past the parser's limit.
    too_deep: bool,
    /// Where a followed (same-origin) redirect landed: the endpoint the target really serves.
    landed: Option<String>,
}

/// serde_json's nesting limit: a deeper reply does not parse.
const JSON_DEPTH_LIMIT: usize = 128;
/// Most new sessions opened after 404s in one run.
pub const MAX_REINITIALIZATIONS: u64 = 20;
/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 3;

/// The JSON messages of an event stream: the `data` of each server-sent event that parses.
fn event_messages(text: &str) -> Vec<Value> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if data.is_empty() {
                return None;
            }
            serde_json::from_str::<Value>(&data.join("\n")).ok()
        })
        .collect()
}

/// The JSON-RPC responses (messages with a result or an error) in a reply body: one message
/// or a batch, or the `data` of each server-sent event.
fn responses(text: &str, event_stream: bool) -> Vec<Value> {
    let is_response =
        |message: &Value| message.get("result").is_some() || message.get("error").is_some();
    if !event_stream {
        return match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => items.into_iter().filter(is_response).collect(),
            Ok(message) if is_response(&message) => vec![message],
            _ => Vec::new(),
        };
    }
    event_messages(text)
        .into_iter()
        .filter(is_response)
        .collect()
}

/// How many `notifications/*/list_changed` an event stream carries (a server may send one
/// on the stream of the request that changed its lists).
fn list_changed_in(text: &str) -> u64 {
    if !text.contains("list_changed") {
        return 0;
    }
    event_messages(text)
        .iter()
        .filter(|message| super::is_list_changed(message))
        .count() as u64
}

fn find_answer(text: &str, id: &Value, event_stream: bool) -> Option<Value> {
    responses(text, event_stream)
        .into_iter()
        .find(|message| message.get("id") == Some(id))
}

impl HttpConnection {
    /// Connects and performs the `initialize` handshake.
    pub async fn connect(
        url: &str,
        headers: Vec<(String, String)>,
        budget: Budget,
    ) -> Result<Self, TargetError> {
        ensure_crypto_provider();
        let client = client(budget)?;
        let mut connection = Self {
            client,
            url: url.to_owned(),
            headers,
            budget,
            session_id: None,
            next_id: 0,
            protocol_version: String::new(),
            server_info: Value::Null,
            capabilities: Value::Null,
            stateless: false,
            override_headers: Vec::new(),
            observations: Default::default(),
            last_answered: Default::default(),
        };
        // Negotiate: `initialize` first, and a refusal means a stateless (2026-07-28) server.
        // Stateless: straight to `server/discover`.
        let refused = match budget.protocol {
            ProtocolChoice::Negotiate => {
                match connection
                    .request("initialize", Some(initialize_params()))
                    .await
                    .and_then(accept_initialize)
                {
                    Ok((version, info, capabilities)) => {
                        connection.protocol_version = version;
                        connection.server_info = info;
                        connection.capabilities = capabilities;
                        connection.notify("notifications/initialized", None).await?;
                        return Ok(connection);
                    }
                    Err(refused) => Some(refused),
                }
            }
            ProtocolChoice::Stateless => None,
        };
        connection.stateless = true;
        connection.protocol_version = STATELESS_PROTOCOL_VERSION.to_owned();
        match connection
            .request("server/discover", None)
            .await
            .and_then(accept_discover)
        {
            Ok((info, capabilities)) => {
                connection.server_info = info;
                connection.capabilities = capabilities;
            }
            // A server that refused both speaks neither era: its refusal of initialize says why.
            Err(error) => return Err(refused.unwrap_or(error)),
        }
        Ok(connection)
    }

    fn builder(&self, url: &str, extra: &[(&str, &str)], drop: &[&str]) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        let overridden = |name: &str| {
            self.override_headers
                .iter()
                .any(|(o, _)| o.eq_ignore_ascii_case(name))
        };
        let dropped = |name: &str| drop.iter().any(|d| d.eq_ignore_ascii_case(name));
        for (name, value) in &self.headers {
            if !dropped(name) && !overridden(name) {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        for (name, value) in &self.override_headers {
            if !dropped(name) {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        if let Some(session) = &self.session_id
            && !dropped("mcp-session-id")
        {
            request = request.header("mcp-session-id", session.as_str());
        }
        if !self.protocol_version.is_empty() && !dropped("mcp-protocol-version") {
            request = request.header("mcp-protocol-version", self.protocol_version.as_str());
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        body: Vec<u8>,
        wanted: Option<&Value>,
    ) -> Result<Received, TargetError> {
        let timeout = self.budget.request_timeout;
        let cap = self.budget.max_reply_bytes;
        let work = async {
            let sent: Vec<u8> = body.iter().take(300).copied().collect();
            let request = request
                .body(body)
                .build()
                .map_err(|e| TargetError::Transport(e.to_string()))?;
            let asked = request.url().clone();
            let response = self
                .client
                .execute(request)
                .await
                .map_err(|e| TargetError::Transport(transport_error(&e)))?;
            let landed = (*response.url() != asked).then(|| response.url().to_string());
            if landed.is_some() {
                self.observations
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .redirects_followed += 1;
            }
            let status = response.status().as_u16();
            if status < 500 {
                *self.last_answered.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(excerpt(&String::from_utf8_lossy(&sent), 300));
            }
            let headers = header_pairs(response.headers());
            let event_stream = headers
                .iter()
                .any(|(n, v)| n == "content-type" && v.starts_with("text/event-stream"));
            let mut body = Vec::new();
            let mut response = response;
            let mut answer = None;
            while let Ok(Some(chunk)) = response.chunk().await {
                if body.len() + chunk.len() > cap {
                    return Err(TargetError::ReplyTooLarge(cap));
                }
                body.extend_from_slice(&chunk);
                if let Some(id) = wanted
                    && event_stream
                    && let Some(found) = find_answer(&String::from_utf8_lossy(&body), id, true)
                {
                    answer = Some(found);
                    break;
                }
            }
            if answer.is_none()
                && let Some(id) = wanted
            {
                let text = String::from_utf8_lossy(&body);
                answer = find_answer(&text, id, event_stream);
                if answer.is_none() {
                    let mut observations =
                        self.observations.lock().unwrap_or_else(|p| p.into_inner());
                    for response in responses(&text, event_stream) {
                        if let Some(stray) = response.get("id") {
                            observations.note_stray_response(stray.clone());
                        }
                    }
                }
            }
            if event_stream {
                let changed = list_changed_in(&String::from_utf8_lossy(&body));
                if changed > 0 {
                    self.observations
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .list_changed_notifications += changed;
                }
            }
            let too_deep = answer.is_none()
                && serde_json::from_slice::<serde::de::IgnoredAny>(&body)
                    .err()
                    .is_some_and(|e| e.to_string().contains("recursion limit exceeded"));
            Ok(Received {
                status,
                headers,
                body,
                answer,
                too_deep,
                landed,
            })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| TargetError::Timeout(timeout))?
    }

    async fn post_message(
        &mut self,
        message: Value,
        id: Option<&Value>,
    ) -> Result<Received, TargetError> {
        let received = self.post_message_shared(message, id).await?;
        // The endpoint moved (`/mcp` to `/mcp/`): later requests, DELETE and GET included, go
        // where it landed instead of being redirected one by one.
        if let Some(landed) = &received.landed
            && received.status < 300
        {
            self.url = landed.clone();
        }
        if self.session_id.is_none()
            && let Some((_, session)) = received.headers.iter().find(|(n, _)| n == "mcp-session-id")
        {
            self.session_id = Some(session.clone());
        }
        Ok(received)
    }

    /// [`Self::post_message`] without learning a session id: several may run at once.
    async fn post_message_shared(
        &self,
        message: Value,
        id: Option<&Value>,
    ) -> Result<Received, TargetError> {
        // 2026-07-28 over HTTP: the method, and what it names (the tool or prompt, the
        // resource's URI), also travel as headers.
        let mut routing: Vec<(&str, String)> = Vec::new();
        if self.stateless
            && let Some(method) = message.get("method").and_then(Value::as_str)
        {
            routing.push(("mcp-method", method.to_owned()));
            let named = match method {
                "tools/call" | "prompts/get" => Some("/params/name"),
                "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                    Some("/params/uri")
                }
                _ => None,
            };
            if let Some(name) = named
                .and_then(|pointer| message.pointer(pointer))
                .and_then(Value::as_str)
            {
                routing.push(("mcp-name", header_safe(name)));
            }
        }
        let extra: Vec<(&str, &str)> = routing.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let request = self.builder(&self.url, &extra, &[]);
        let received = self
            .send(
                request,
                serde_json::to_vec(&message).unwrap_or_default(),
                id,
            )
            .await?;
        // A JSON-RPC answer to this request is the reply, whatever the 4xx status (2026-07-28
        // servers send errors with 4xx statuses); a 5xx is a failure of the server, not an
        // answer, whatever its body says.
        // A 404 for the session the request carried is the session table's answer, whatever
        // JSON-RPC error rides on it ("Session not found"): the connection opens a new one.
        let session_lost = received.status == 404 && self.session_id.is_some();
        if received.status >= 500
            || session_lost
            || (!(200..300).contains(&received.status) && received.answer.is_none())
        {
            return Err(TargetError::HttpStatus {
                status: received.status,
                body: excerpt(&String::from_utf8_lossy(&received.body), 300),
                retry_after: received
                    .headers
                    .iter()
                    .find(|(n, _)| n == "retry-after")
                    .and_then(|(_, v)| v.trim().parse().ok()),
            });
        }
        Ok(received)
    }

    /// Sends one request per entry of `params`, all at once (each on its own pooled
    /// connection), and returns the replies in order; each has the request timeout.
    pub async fn requests_at_once(
        &mut self,
        method: &str,
        params: Vec<Value>,
    ) -> Vec<Result<Reply, TargetError>> {
        let messages: Vec<(Value, Value)> = params
            .into_iter()
            .map(|params| {
                self.next_id += 1;
                let id = json!(self.next_id);
                let message = request_message(&id, method, Some(params), self.stateless);
                (id, message)
            })
            .collect();
        let this = &*self;
        futures::future::join_all(
            messages
                .into_iter()
                .map(|(id, message)| this.answer_shared(message, id)),
        )
        .await
    }

    /// One request that may run at once with others on the same connection (each POST on its
    /// own pooled connection), with a caller-chosen id: the load generator's call. No session
    /// is learned or reopened.
    pub async fn call_shared(
        &self,
        id: Value,
        method: &str,
        params: Option<Value>,
    ) -> Result<Reply, TargetError> {
        let message = request_message(&id, method, params, self.stateless);
        self.answer_shared(message, id).await
    }

    async fn answer_shared(&self, message: Value, id: Value) -> Result<Reply, TargetError> {
        let received = self.post_message_shared(message, Some(&id)).await?;
        received
            .answer
            .as_ref()
            .and_then(Reply::from_message)
            .ok_or_else(|| TargetError::Transport("the reply held no answer to the request".into()))
    }

    pub async fn request(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Reply, TargetError> {
        self.next_id += 1;
        let message = self
            .request_with_id(json!(self.next_id), method, params)
            .await?;
        Reply::of_response(&message)
    }

    pub async fn request_with_id(
        &mut self,
        id: Value,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, TargetError> {
        let message = request_message(&id, method, params, self.stateless);
        let received = match self.post_message(message.clone(), Some(&id)).await {
            Err(TargetError::HttpStatus { status: 404, .. })
                if method != "initialize" && self.reinitialize().await =>
            {
                self.post_message(message, Some(&id)).await?
            }
            other => other?,
        };
        received.answer.ok_or_else(|| {
            TargetError::Transport(if received.too_deep {
                format!("the reply is nested deeper than {JSON_DEPTH_LIMIT} levels")
            } else {
                "the reply held no answer to the request".into()
            })
        })
    }

    /// After a 404 for the current session: the specification tells the client to start a new
    /// session, so the harness sends `initialize` again (at most [`MAX_REINITIALIZATIONS`]
    /// times a run) and says whether a new session was opened.
    async fn reinitialize(&mut self) -> bool {
        if self.stateless || self.session_id.is_none() {
            return false;
        }
        {
            let observations = self.observations.lock().unwrap_or_else(|p| p.into_inner());
            if observations.session_reinitializations >= MAX_REINITIALIZATIONS {
                return false;
            }
        }
        let old = self.session_id.take();
        self.next_id += 1;
        let id = json!(self.next_id);
        let message = request_message(&id, "initialize", Some(initialize_params()), false);
        let opened = match self.post_message(message, Some(&id)).await {
            Ok(received) => received
                .answer
                .as_ref()
                .and_then(Reply::from_message)
                .is_some_and(|reply| accept_initialize(reply).is_ok()),
            Err(_) => false,
        };
        if !opened || self.session_id.is_none() {
            self.session_id = old;
            return false;
        }
        let _ = self.notify("notifications/initialized", None).await;
        self.observations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .session_reinitializations += 1;
        true
    }

    pub async fn notify(&mut self, method: &str, params: Option<Value>) -> Result<(), TargetError> {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.post_message(message, None).await.map(|_| ())
    }

    /// POSTs arbitrary bytes; `url` replaces the endpoint (e.g. to add a query string). Any
    /// status below 500 comes back as data; a 5xx is [`TargetError::HttpStatus`] and a 404 for
    /// the session (after a new one was opened and the bytes sent again) is
    /// [`TargetError::SessionLost`]: neither is an answer from the guard a probe tests.
    pub async fn raw(
        &mut self,
        bytes: &[u8],
        extra: &[(&str, &str)],
        drop: &[&str],
        url: Option<&str>,
    ) -> Result<RawOutcome, TargetError> {
        let target = url.unwrap_or(&self.url).to_owned();
        // A 429 answers nothing the probe asked: wait as told (at most 5 s, 5 times) and ask
        // again, as the probe engine does for JSON-RPC calls.
        let mut received = self
            .send(self.builder(&target, extra, drop), bytes.to_vec(), None)
            .await?;
        for _ in 0..5 {
            if received.status != 429 {
                break;
            }
            let wait = received
                .headers
                .iter()
                .find(|(n, _)| n == "retry-after")
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                .unwrap_or(1)
                .clamp(1, 5);
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            received = self
                .send(self.builder(&target, extra, drop), bytes.to_vec(), None)
                .await?;
        }
        // A 404 for the session the request carried: a new session, and the same bytes again.
        let carried_session = self.session_id.is_some()
            && !drop
                .iter()
                .any(|d| d.eq_ignore_ascii_case("mcp-session-id"));
        if received.status == 404 && carried_session && self.reinitialize().await {
            received = self
                .send(self.builder(&target, extra, drop), bytes.to_vec(), None)
                .await?;
        }
        // Neither is an answer from what a probe tests: a server failure, or the session table.
        if received.status >= 500 {
            return Err(TargetError::HttpStatus {
                status: received.status,
                body: excerpt(&String::from_utf8_lossy(&received.body), 300),
                retry_after: None,
            });
        }
        if received.status == 404 && carried_session {
            return Err(TargetError::SessionLost(excerpt(
                &String::from_utf8_lossy(&received.body),
                200,
            )));
        }
        Ok(RawOutcome {
            status: Some(received.status),
            headers: received.headers,
            excerpt: excerpt(&String::from_utf8_lossy(&received.body), 4096),
        })
    }

    /// GETs a URL on the target's origin (metadata documents), under the same budget.
    pub async fn get(&self, url: &str) -> Result<RawOutcome, TargetError> {
        let request = self.client.get(url).header("accept", "application/json");
        let timeout = self.budget.request_timeout;
        let cap = self.budget.max_reply_bytes;
        let work = async {
            let response = request
                .send()
                .await
                .map_err(|e| TargetError::Transport(e.to_string()))?;
            let status = response.status().as_u16();
            let headers = header_pairs(response.headers());
            let mut body = Vec::new();
            let mut response = response;
            while let Ok(Some(chunk)) = response.chunk().await {
                if body.len() + chunk.len() > cap {
                    return Err(TargetError::ReplyTooLarge(cap));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(RawOutcome {
                status: Some(status),
                headers,
                excerpt: excerpt(&String::from_utf8_lossy(&body), 64 * 1024),
            })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| TargetError::Timeout(timeout))?
    }

    /// A new connection to the same target with the same headers: its own session.
    pub async fn connect_again(&self) -> Result<HttpConnection, TargetError> {
        let budget = Budget {
            protocol: if self.stateless {
                ProtocolChoice::Stateless
            } else {
                ProtocolChoice::Negotiate
            },
            ..self.budget
        };
        HttpConnection::connect(&self.url, self.headers.clone(), budget).await
    }

    /// Ends `session` with HTTP DELETE (the user's headers, that session's id); any status is
    /// data.
    pub async fn delete_session(&self, session: &str) -> Result<RawOutcome, TargetError> {
        let mut request = self.client.delete(&self.url);
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if !self.protocol_version.is_empty() {
            request = request.header("mcp-protocol-version", self.protocol_version.as_str());
        }
        request = request.header("mcp-session-id", session);
        let received = self.send(request, Vec::new(), None).await?;
        Ok(RawOutcome {
            status: Some(received.status),
            headers: received.headers,
            excerpt: excerpt(&String::from_utf8_lossy(&received.body), 4096),
        })
    }

    /// A new connection to the same target as another principal: the user's headers with
    /// `authorization` in place of theirs, the same protocol era, its own session.
    pub async fn connect_as(
        &self,
        authorization: &str,
        request_timeout: std::time::Duration,
    ) -> Result<HttpConnection, TargetError> {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("authorization"))
            .cloned()
            .collect();
        headers.push(("Authorization".to_owned(), authorization.to_owned()));
        let budget = Budget {
            request_timeout,
            protocol: if self.stateless {
                ProtocolChoice::Stateless
            } else {
                ProtocolChoice::Negotiate
            },
            ..self.budget
        };
        HttpConnection::connect(&self.url, headers, budget).await
    }

    pub fn observations(&self) -> Observations {
        self.observations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn last_answered(&self) -> Option<String> {
        self.last_answered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The headers the user gave (e.g. to build a request without them).
    pub fn user_headers(&self) -> &[(String, String)] {
        &self.headers
    }
}

/// Installs rustls's ring provider once: reqwest is built without one (the harness speaks
/// TLS only to a loopback target that asks for it).
pub(super) fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The HTTP client: no proxy; redirects followed only while they stay on the origin they
/// came from, at most [`MAX_REDIRECTS`] of them (an endpoint that answers 307 from `/mcp` to
/// `/mcp/` is followed; one that sends the request elsewhere is refused, with its location).
pub(super) fn client(budget: Budget) -> Result<reqwest::Client, TargetError> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        let same_origin = first.as_ref().is_some_and(|first| {
            first.scheme() == attempt.url().scheme()
                && first.host_str() == attempt.url().host_str()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if same_origin {
            attempt.follow()
        } else {
            let to = attempt.url().to_string();
            attempt.error(format!(
                "refused a redirect to another origin ({to}): the harness talks only to the target it was given"
            ))
        }
    });
    reqwest::Client::builder()
        .no_proxy()
        .redirect(policy)
        .connect_timeout(budget.request_timeout)
        .build()
        .map_err(|e| TargetError::Transport(e.to_string()))
}

/// A transport error's whole story: reqwest keeps the cause (a refused redirect, a reset
/// connection) in its source chain.
pub(super) fn transport_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Response headers as (lower-case name, value) pairs.
pub(super) fn header_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A header value as the MCP HTTP transport carries it: plain when it is visible ASCII without
/// surrounding spaces, otherwise wrapped as `=?base64?...?=`.
fn header_safe(value: &str) -> String {
    let plain = !value.is_empty()
        && value.bytes().all(|b| (0x21..=0x7e).contains(&b))
        && !value.starts_with("=?base64?");
    if plain {
        value.to_owned()
    } else {
        use base64::Engine;
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_found_in_json_and_in_event_streams() {
        let id = json!(7);
        assert!(find_answer(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#, &id, false).is_some());
        assert!(find_answer(r#"{"jsonrpc":"2.0","id":8,"result":{}}"#, &id, false).is_none());
        let sse = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"ok\":true}}\n\n";
        assert_eq!(find_answer(sse, &id, true).unwrap()["result"]["ok"], true);
        assert!(
            find_answer("data: {\"jsonrpc\":\"2.0\",\"id\":7,", &id, true).is_none(),
            "an incomplete event is not an answer"
        );
    }
}
