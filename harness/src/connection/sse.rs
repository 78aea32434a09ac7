//! A legacy HTTP+SSE target (protocol 2024-11-05): a `GET` opens an event stream whose first
//! `endpoint` event names where to `POST` messages; every answer comes back on the stream.
//!
//! One task reads the stream and hands each response to the request waiting for its id. The
//! endpoint must be on the stream's origin (the harness talks only to the target it was given).
//!
//! Bounds: an event longer than `max_reply_bytes` is dropped and fails every waiting request
//! with [`TargetError::ReplyTooLarge`] (the parser is a few lines here because the SSE crates
//! buffer an event without limit); at most [`MAX_PENDING`] requests wait at once; each waits
//! at most the request timeout. When the stream ends, every waiting request fails with
//! [`TargetError::Closed`] and so does every later one.
//!
//! Cost: one task and one open response for the connection's life; one POST per message.

use super::http::{client, ensure_crypto_provider, header_pairs, transport_error};
use super::{
    Budget, Observations, RawOutcome, Reply, TargetError, accept_initialize, excerpt,
    initialize_params, request_message,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Most requests waiting for their answers at once.
pub const MAX_PENDING: usize = 1024;

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Value, TargetError>>>>>;

/// What the stream reader shares with the connection.
struct Shared {
    pending: Pending,
    /// Why the stream ended, once it has.
    closed: Mutex<Option<String>>,
    observations: Mutex<Observations>,
}

pub struct SseConnection {
    client: reqwest::Client,
    /// For the probes' one-off requests: no connection kept, so a server that closes the
    /// connection after refusing one never resets the next.
    one_off: reqwest::Client,
    /// The URL the event stream is opened at.
    pub url: String,
    /// Where messages are POSTed (the `endpoint` event's URI, resolved against [`Self::url`]).
    pub endpoint: String,
    headers: Vec<(String, String)>,
    budget: Budget,
    next_id: u64,
    pub protocol_version: String,
    pub server_info: Value,
    pub capabilities: Value,
    shared: Arc<Shared>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for SseConnection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The key a response's id is waited for under.
fn id_key(id: &Value) -> String {
    id.to_string()
}

/// Server-sent events from a byte stream, each at most `cap` bytes: `(event name, data)`.
#[derive(Default)]
pub struct EventParser {
    buffer: Vec<u8>,
    /// How much of `buffer` holds no event boundary (so each byte is scanned once).
    scanned: usize,
}

/// The first event boundary (a blank line) at or after `from`: its offset and length.
fn find_boundary(buffer: &[u8], from: usize) -> Option<(usize, usize)> {
    (from..buffer.len()).find_map(|at| {
        let rest = &buffer[at..];
        if rest.starts_with(b"\r\n\r\n") {
            Some((at, 4))
        } else if rest.starts_with(b"\n\n") || rest.starts_with(b"\r\r") {
            Some((at, 2))
        } else {
            None
        }
    })
}

/// What [`EventParser::push`] found.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Event {
        name: String,
        data: String,
    },
    /// An event grew past the cap before it ended: dropped.
    TooLarge,
}

impl EventParser {
    /// Adds `chunk` and returns the events it completed.
    pub fn push(&mut self, chunk: &[u8], cap: usize) -> Vec<Parsed> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        loop {
            // A boundary may straddle the previous chunk's end: back up three bytes.
            let from = self.scanned.saturating_sub(3);
            let Some((at, len)) = find_boundary(&self.buffer, from) else {
                self.scanned = self.buffer.len();
                if self.buffer.len() > cap {
                    self.buffer.clear();
                    self.scanned = 0;
                    events.push(Parsed::TooLarge);
                }
                return events;
            };
            let block: Vec<u8> = self.buffer.drain(..at + len).collect();
            self.scanned = 0;
            if at > cap {
                events.push(Parsed::TooLarge);
                continue;
            }
            let block = String::from_utf8_lossy(&block[..at]).replace("\r\n", "\n");
            let mut name = String::from("message");
            let mut data: Vec<&str> = Vec::new();
            for line in block.split(['\n', '\r']) {
                if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                } else if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim().to_owned();
                }
            }
            if !data.is_empty() {
                events.push(Parsed::Event {
                    name,
                    data: data.join("\n"),
                });
            }
        }
    }
}

/// Hands `message` to whoever waits for it.
fn dispatch(shared: &Shared, message: Value) {
    if super::is_list_changed(&message) {
        shared
            .observations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .list_changed_notifications += 1;
        return;
    }
    let is_response = message.get("result").is_some() || message.get("error").is_some();
    let Some(id) = message.get("id").filter(|_| is_response) else {
        return;
    };
    let waiting = shared
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id_key(id));
    match waiting {
        Some(sender) => {
            let _ = sender.send(Ok(message));
        }
        None => shared
            .observations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note_stray_response(id.clone()),
    }
}

/// Fails every waiting request with `error`.
fn fail_all(shared: &Shared, error: TargetError) {
    let waiting: Vec<_> = shared
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
        .collect();
    for (_, sender) in waiting {
        let _ = sender.send(Err(error.clone()));
    }
}

impl SseConnection {
    /// Opens the event stream at `url`, waits for its `endpoint` event and performs the
    /// `initialize` handshake.
    pub async fn connect(
        url: &str,
        headers: Vec<(String, String)>,
        budget: Budget,
    ) -> Result<Self, TargetError> {
        ensure_crypto_provider();
        let client = client(budget)?;
        let stream_url =
            url::Url::parse(url).map_err(|e| TargetError::Transport(format!("{url}: {e}")))?;
        let mut request = client.get(url).header("accept", "text/event-stream");
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = tokio::time::timeout(budget.startup_timeout, request.send())
            .await
            .map_err(|_| TargetError::Timeout(budget.startup_timeout))?
            .map_err(|e| TargetError::Transport(transport_error(&e)))?;
        let status = response.status().as_u16();
        let event_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !(200..300).contains(&status) {
            let body = response.text().await.unwrap_or_default();
            return Err(TargetError::HttpStatus {
                status,
                body: excerpt(&body, 300),
                retry_after: None,
            });
        }
        if !event_stream {
            return Err(TargetError::Handshake(format!(
                "GET {url} answered {status} without an event stream: not a legacy SSE endpoint"
            )));
        }
        let shared = Arc::new(Shared {
            pending: Default::default(),
            closed: Mutex::new(None),
            observations: Default::default(),
        });
        let (endpoint_tx, endpoint_rx) = oneshot::channel::<String>();
        let cap = budget.max_reply_bytes;
        let reader_shared = shared.clone();
        let reader = tokio::spawn(async move {
            let mut response = response;
            let mut parser = EventParser::default();
            let mut endpoint_tx = Some(endpoint_tx);
            let ended = loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        for parsed in parser.push(&chunk, cap) {
                            match parsed {
                                Parsed::TooLarge => {
                                    fail_all(&reader_shared, TargetError::ReplyTooLarge(cap))
                                }
                                Parsed::Event { name, data } if name == "endpoint" => {
                                    if let Some(tx) = endpoint_tx.take() {
                                        let _ = tx.send(data.trim().to_owned());
                                    }
                                }
                                Parsed::Event { data, .. } => {
                                    if let Ok(message) = serde_json::from_str::<Value>(&data) {
                                        dispatch(&reader_shared, message);
                                    }
                                }
                            }
                        }
                    }
                    Ok(None) => break "the event stream ended".to_owned(),
                    Err(error) => break format!("the event stream failed: {error}"),
                }
            };
            *reader_shared
                .closed
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(ended.clone());
            fail_all(&reader_shared, TargetError::Closed(ended));
        });
        let announced = match tokio::time::timeout(budget.startup_timeout, endpoint_rx).await {
            Ok(Ok(announced)) => announced,
            Ok(Err(_)) => {
                return Err(TargetError::Handshake(
                    "the event stream ended before an endpoint event".into(),
                ));
            }
            Err(_) => {
                reader.abort();
                return Err(TargetError::Handshake(format!(
                    "no endpoint event within {} s",
                    budget.startup_timeout.as_secs()
                )));
            }
        };
        let endpoint = stream_url
            .join(&announced)
            .ok()
            .filter(|e| e.origin() == stream_url.origin())
            .ok_or_else(|| {
                reader.abort();
                TargetError::Handshake(format!(
                    "the endpoint event names {}, not a URL on the stream's origin: the harness talks only to the target it was given",
                    excerpt(&announced, 200)
                ))
            })?;
        let one_off = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .connect_timeout(budget.request_timeout)
            .build()
            .map_err(|e| TargetError::Transport(e.to_string()))?;
        let mut connection = Self {
            client,
            one_off,
            url: url.to_owned(),
            endpoint: endpoint.to_string(),
            headers,
            budget,
            next_id: 0,
            protocol_version: String::new(),
            server_info: Value::Null,
            capabilities: Value::Null,
            shared,
            reader,
        };
        let (version, info, capabilities) = connection
            .request("initialize", Some(initialize_params()))
            .await
            .and_then(accept_initialize)?;
        connection.protocol_version = version;
        connection.server_info = info;
        connection.capabilities = capabilities;
        connection.notify("notifications/initialized", None).await?;
        Ok(connection)
    }

    /// `request` with the user's headers except `drop`, then `extra`.
    fn with_headers(
        &self,
        mut request: reqwest::RequestBuilder,
        extra: &[(&str, &str)],
        drop: &[&str],
    ) -> reqwest::RequestBuilder {
        let dropped = |name: &str| drop.iter().any(|d| d.eq_ignore_ascii_case(name));
        for (name, value) in &self.headers {
            if !dropped(name) {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request
    }

    fn closed(&self) -> Option<String> {
        self.shared
            .closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A POST of `body` to `url` with the user's headers (minus `drop`, plus `extra`).
    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
        drop: &[&str],
    ) -> Result<RawOutcome, TargetError> {
        // The connection's own messages keep their connection; a probe's altered ones do not.
        let client = if extra.is_empty() && drop.is_empty() && url == self.endpoint {
            &self.client
        } else {
            &self.one_off
        };
        let request = self.with_headers(
            client.post(url).header("content-type", "application/json"),
            extra,
            drop,
        );
        let timeout = self.budget.request_timeout;
        let work = async {
            let mut response = request
                .body(body)
                .send()
                .await
                .map_err(|e| TargetError::Transport(transport_error(&e)))?;
            let status = response.status().as_u16();
            let headers = header_pairs(response.headers());
            let mut text = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                let room = self.budget.max_reply_bytes.saturating_sub(text.len());
                text.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room <= chunk.len() {
                    break;
                }
            }
            Ok(RawOutcome {
                status: Some(status),
                headers,
                excerpt: String::from_utf8_lossy(&text).into_owned(),
            })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| TargetError::Timeout(timeout))?
    }

    /// Registers a wait for `id`, sends `message`, and waits for the answer on the stream.
    async fn exchange(&self, id: &Value, message: &Value) -> Result<Value, TargetError> {
        if let Some(why) = self.closed() {
            return Err(TargetError::Closed(why));
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if pending.len() >= MAX_PENDING {
                return Err(TargetError::NotSent(format!(
                    "{MAX_PENDING} requests already wait for their answers"
                )));
            }
            pending.insert(id_key(id), tx);
        }
        let forget = || {
            self.shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id_key(id));
        };
        let posted = self
            .post(&self.endpoint, message.to_string().into_bytes(), &[], &[])
            .await;
        let posted = match posted {
            Ok(outcome) => outcome,
            Err(error) => {
                forget();
                return Err(error);
            }
        };
        let status = posted.status.unwrap_or(0);
        if !(200..300).contains(&status) {
            forget();
            let retry_after = posted
                .header("retry-after")
                .and_then(|v| v.trim().parse().ok());
            return Err(TargetError::HttpStatus {
                status,
                body: excerpt(&posted.excerpt, 300),
                retry_after,
            });
        }
        // Some servers answer in the POST's own body instead of on the stream.
        if let Ok(answer) = serde_json::from_str::<Value>(&posted.excerpt)
            && answer.get("id") == Some(id)
            && (answer.get("result").is_some() || answer.get("error").is_some())
        {
            forget();
            return Ok(answer);
        }
        let timeout = self.budget.request_timeout;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(TargetError::Closed(
                self.closed()
                    .unwrap_or_else(|| "the event stream ended".into()),
            )),
            Err(_) => {
                forget();
                Err(TargetError::Timeout(timeout))
            }
        }
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
        let message = request_message(&id, method, params, false);
        self.exchange(&id, &message).await
    }

    /// One POST per entry of `params`, all sent before any answer is awaited.
    pub async fn requests_at_once(
        &mut self,
        method: &str,
        params: Vec<Value>,
    ) -> Vec<Result<Reply, TargetError>> {
        let first = self.next_id + 1;
        self.next_id += params.len() as u64;
        let this = &*self;
        let exchanges = params
            .into_iter()
            .enumerate()
            .map(|(i, params)| this.call_shared(json!(first + i as u64), method, Some(params)));
        futures::future::join_all(exchanges).await
    }

    /// One request that may run at once with others on the same connection, with a
    /// caller-chosen id: the load generator's call.
    pub async fn call_shared(
        &self,
        id: Value,
        method: &str,
        params: Option<Value>,
    ) -> Result<Reply, TargetError> {
        let message = request_message(&id, method, params, false);
        self.exchange(&id, &message)
            .await
            .and_then(|m| Reply::of_response(&m))
    }

    pub async fn notify(&mut self, method: &str, params: Option<Value>) -> Result<(), TargetError> {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        let posted = self
            .post(&self.endpoint, message.to_string().into_bytes(), &[], &[])
            .await?;
        match posted.status {
            Some(status) if (200..300).contains(&status) => Ok(()),
            status => Err(TargetError::HttpStatus {
                status: status.unwrap_or(0),
                body: excerpt(&posted.excerpt, 300),
                retry_after: None,
            }),
        }
    }

    /// Sends bytes that need not be valid JSON-RPC to the endpoint. The outcome is the POST's
    /// status; when the bytes carry an id and were accepted, its excerpt is the answer the
    /// stream brought for that id (if one came within the request timeout).
    pub async fn raw(
        &mut self,
        bytes: &[u8],
        extra: &[(&str, &str)],
        drop: &[&str],
    ) -> Result<RawOutcome, TargetError> {
        let id = serde_json::from_slice::<Value>(bytes)
            .ok()
            .and_then(|m| m.get("id").cloned());
        let Some(id) = id.filter(|_| extra.is_empty() && drop.is_empty()) else {
            return self.post(&self.endpoint, bytes.to_vec(), extra, drop).await;
        };
        let message: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        match self.exchange(&id, &message).await {
            Ok(answer) => Ok(RawOutcome {
                status: Some(202),
                headers: Vec::new(),
                excerpt: excerpt(&answer.to_string(), 4096),
            }),
            Err(TargetError::HttpStatus { status, body, .. }) => Ok(RawOutcome {
                status: Some(status),
                headers: Vec::new(),
                excerpt: body,
            }),
            Err(error) => Err(error),
        }
    }

    /// GETs the stream URL with the user's headers (minus `drop`, plus `extra`) and reads only
    /// the status and headers: whether a stream would be opened for such a request.
    pub async fn open_stream_status(
        &self,
        extra: &[(&str, &str)],
        drop: &[&str],
    ) -> Result<RawOutcome, TargetError> {
        let request = self.with_headers(
            self.one_off
                .get(&self.url)
                .header("accept", "text/event-stream"),
            extra,
            drop,
        );
        let timeout = self.budget.request_timeout;
        // A kept-alive connection the server has just closed fails the first try: one more,
        // on a fresh connection.
        let retry = request.try_clone();
        let mut sent = tokio::time::timeout(timeout, request.send())
            .await
            .map_err(|_| TargetError::Timeout(timeout))?;
        if let (Err(_), Some(retry)) = (&sent, retry) {
            sent = tokio::time::timeout(timeout, retry.send())
                .await
                .map_err(|_| TargetError::Timeout(timeout))?;
        }
        let response = sent.map_err(|e| TargetError::Transport(transport_error(&e)))?;
        let status = response.status().as_u16();
        let headers = header_pairs(response.headers());
        let event_stream = headers
            .iter()
            .any(|(n, v)| n == "content-type" && v.starts_with("text/event-stream"));
        // A stream is never read to its end: the status and the first bytes say enough.
        let excerpt = if event_stream {
            "(an event stream)".to_owned()
        } else {
            let mut response = response;
            match tokio::time::timeout(timeout, response.chunk()).await {
                Ok(Ok(Some(chunk))) => excerpt(
                    &String::from_utf8_lossy(&chunk[..chunk.len().min(4096)]),
                    300,
                ),
                _ => String::new(),
            }
        };
        Ok(RawOutcome {
            status: Some(status),
            headers,
            excerpt,
        })
    }

    /// POSTs `bytes` to `url` (on the endpoint's origin) with the user's headers.
    pub async fn post_to(&self, url: &str, bytes: &[u8]) -> Result<RawOutcome, TargetError> {
        self.post_without(url, bytes, &[]).await
    }

    /// POSTs `bytes` to `url` (on the endpoint's origin) with the user's headers except
    /// `drop`; any status is data.
    pub async fn post_without(
        &self,
        url: &str,
        bytes: &[u8],
        drop: &[&str],
    ) -> Result<RawOutcome, TargetError> {
        let same_origin = url::Url::parse(url)
            .ok()
            .zip(url::Url::parse(&self.endpoint).ok())
            .is_some_and(|(a, b)| a.origin() == b.origin());
        if !same_origin {
            return Err(TargetError::NotSent(format!(
                "{url} is not on the target's origin"
            )));
        }
        self.post(url, bytes.to_vec(), &[], drop).await
    }

    pub fn observations(&self) -> Observations {
        self.shared
            .observations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The headers the user gave.
    pub fn user_headers(&self) -> &[(String, String)] {
        &self.headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_across_chunks_and_line_endings() {
        let mut parser = EventParser::default();
        assert!(
            parser
                .push(b"event: endpoint\r\ndata: /messages?s", 100)
                .is_empty()
        );
        assert_eq!(
            parser.push(b"=1\r\n\r\ndata: {\"id\":1}\n\n: comment\n\n", 100),
            [
                Parsed::Event {
                    name: "endpoint".into(),
                    data: "/messages?s=1".into()
                },
                Parsed::Event {
                    name: "message".into(),
                    data: "{\"id\":1}".into()
                },
            ]
        );
        let mut multi = EventParser::default();
        assert_eq!(
            multi.push(b"data: a\ndata: b\n\n", 100),
            [Parsed::Event {
                name: "message".into(),
                data: "a\nb".into()
            }]
        );
    }

    #[test]
    fn an_event_past_the_cap_is_dropped_and_the_stream_goes_on() {
        let mut parser = EventParser::default();
        assert_eq!(parser.push(&[b'x'; 64], 32), [Parsed::TooLarge]);
        assert_eq!(
            parser.push(b"\n\ndata: ok\n\n", 32),
            [Parsed::Event {
                name: "message".into(),
                data: "ok".into()
            }]
        );
    }
}
