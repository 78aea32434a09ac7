//! MCP over stdio: newline-delimited JSON-RPC on stdin/stdout.
//!
//! The process that launched the server is trusted (it chose the binary and its environment),
//! so the session runs as one principal configured at start-up, and the per-call rate limit
//! and concurrency cap still apply. An input line longer than the configured body limit is
//! discarded unread, so a hostile client cannot make the server buffer without bound. Nothing
//! else may write to stdout: the binary sends every log line to stderr.
//!
//! The transport is [`LineTransport`] rather than rmcp's `AsyncRwTransport` for one reason,
//! found by the JSON-RPC fuzz target: rmcp answers a request whose id it can read but whose
//! shape it cannot decode (`{"id": 2, "method": "logging/setLevel", "params": 5}`) with an
//! error that carries *no* id, so the client waiting for id 2 waits until its own timeout.
//! Here such a request gets its error with its id: `-32602` (invalid params) for a JSON-RPC
//! 2.0 request, `-32600` when the envelope itself is wrong.
//!
//! Failure: a transport error ends the session. A line that is not JSON at all is ignored (no
//! id to answer, and answering invalid data can start an error storm with an echoing peer; the
//! official SDKs agree), and so is an undecodable message without an id (a notification is
//! never answered); the session goes on. Cost: each line is parsed once, twice when it cannot
//! be decoded (once more as a plain JSON value, to find its id).

use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Serves one MCP session on this process's stdin and stdout until the client disconnects.
/// Lines longer than `max_line_bytes` are dropped.
pub async fn serve(
    server: impl ServerHandler,
    max_line_bytes: usize,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    serve_on(server, stdin, stdout, max_line_bytes).await
}

/// Serves one MCP session on any byte stream pair, exactly as [`serve`] does on stdin and
/// stdout (the fuzz target of the JSON-RPC surface drives the server through this).
pub async fn serve_on<R, W>(
    server: impl ServerHandler,
    input: R,
    output: W,
    max_line_bytes: usize,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let transport = LineTransport::new(input, output, max_line_bytes);
    let running = server.serve(transport).await?;
    running.waiting().await?;
    Ok(())
}

/// Newline-delimited JSON-RPC on a reader and a writer, for rmcp's service loop.
pub struct LineTransport<R, W> {
    reader: BufReader<R>,
    writer: Arc<tokio::sync::Mutex<W>>,
    /// The line being read. `receive` may be cancelled between reads (rmcp polls it in a
    /// `select!`), so a partial line lives here, not on the stack.
    line: Vec<u8>,
    /// The current line passed the limit: its bytes are being skipped up to the newline.
    discarding: bool,
    max_line_bytes: usize,
}

/// What to do with one complete input line.
#[derive(Debug)]
enum Decoded {
    Message(Box<ClientJsonRpcMessage>),
    /// Written straight back: the error for a request that could not be decoded.
    Answer(Vec<u8>),
    Ignore,
}

/// Decodes one line (without its newline) the way rmcp does, except that a request whose id can
/// be read is answered with that id.
fn decode(line: &[u8]) -> Decoded {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Decoded::Ignore;
    }
    let error = match serde_json::from_slice::<ClientJsonRpcMessage>(line) {
        Ok(message) => return Decoded::Message(Box::new(message)),
        Err(error) => error,
    };
    if matches!(
        error.classify(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
    ) {
        return Decoded::Ignore;
    }
    let Ok(value) = serde_json::from_slice::<Value>(line) else {
        return Decoded::Ignore;
    };
    let answer = |id: Option<&Value>, code: i64, message: &str| {
        let mut response = json!({"jsonrpc": "2.0", "error": {"code": code, "message": message}});
        if let Some(id) = id {
            response["id"] = id.clone();
        }
        let mut bytes = serde_json::to_vec(&response).unwrap_or_default();
        bytes.push(b'\n');
        Decoded::Answer(bytes)
    };
    let Some(object) = value.as_object() else {
        // A batch or a bare value: an invalid request whose id cannot be read.
        return answer(None, -32600, "Invalid request");
    };
    let is_request = object.get("method").is_some();
    let is_response = object.contains_key("result") || object.contains_key("error");
    let readable_id = object
        .get("id")
        .filter(|id| id.is_string() || id.is_i64() || id.is_u64());
    match (object.get("id"), is_request) {
        // A response that fails to decode: there is nothing to answer.
        _ if is_response && !is_request => Decoded::Ignore,
        // A notification is never answered.
        (None, true) => Decoded::Ignore,
        (Some(_), true) if readable_id.is_some() => {
            let envelope_ok = object.get("jsonrpc") == Some(&Value::from("2.0"))
                && object.get("method").is_some_and(Value::is_string);
            if envelope_ok {
                answer(readable_id, -32602, "Invalid params")
            } else {
                answer(readable_id, -32600, "Invalid request")
            }
        }
        // Neither a request, a notification nor a response; or an id of the wrong type.
        _ => answer(readable_id, -32600, "Invalid request"),
    }
}

impl<R, W> LineTransport<R, W>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    pub fn new(input: R, output: W, max_line_bytes: usize) -> Self {
        Self {
            reader: BufReader::new(input),
            writer: Arc::new(tokio::sync::Mutex::new(output)),
            line: Vec::new(),
            discarding: false,
            max_line_bytes,
        }
    }

    /// Reads until a whole line of at most `max_line_bytes` is in `self.line`; `false` at the
    /// end of the input. Cancel-safe: every byte consumed is already in `self.line` or skipped.
    async fn next_line(&mut self) -> std::io::Result<bool> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(false);
            }
            let (chunk, consumed, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (&available[..end], end + 1, true),
                None => (available, available.len(), false),
            };
            if !self.discarding {
                if self.line.len() + chunk.len() > self.max_line_bytes {
                    tracing::warn!(
                        max_line_bytes = self.max_line_bytes,
                        "an input line exceeded the limit; discarding it"
                    );
                    self.discarding = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            self.reader.consume(consumed);
            if complete {
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                return Ok(true);
            }
        }
    }

    async fn write(writer: &tokio::sync::Mutex<W>, bytes: &[u8]) -> std::io::Result<()> {
        let mut writer = writer.lock().await;
        writer.write_all(bytes).await?;
        writer.flush().await
    }
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        async move {
            let message: &ServerJsonRpcMessage = &item;
            let mut bytes = serde_json::to_vec(message).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
            Self::write(&writer, &bytes).await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            match self.next_line().await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(error) => {
                    tracing::error!(%error, "reading the input failed");
                    return None;
                }
            }
            let line = std::mem::take(&mut self.line);
            match decode(&line) {
                Decoded::Message(message) => return Some(*message),
                Decoded::Ignore => {}
                Decoded::Answer(bytes) => {
                    if Self::write(&self.writer, &bytes).await.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer.lock().await.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(line: &str) -> Option<Value> {
        match decode(line.as_bytes()) {
            Decoded::Answer(bytes) => Some(serde_json::from_slice(&bytes).unwrap()),
            _ => None,
        }
    }

    #[test]
    fn a_request_that_cannot_be_decoded_is_answered_with_its_id() {
        // Found by the JSON-RPC fuzz target: rmcp's transport answered this without the id.
        let reply = answered(r#"{"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":5}"#)
            .expect("an answer");
        assert_eq!(reply["id"], 2);
        assert_eq!(reply["error"]["code"], -32602);
        let reply = answered(r#"{"jsonrpc":"1.0","id":"x","method":"ping"}"#).expect("an answer");
        assert_eq!(reply["id"], "x");
        assert_eq!(reply["error"]["code"], -32600);
    }

    #[test]
    fn notifications_garbage_and_valid_messages_are_not_answered_here() {
        assert_eq!(
            answered(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":5}"#),
            None
        );
        assert!(matches!(decode(b"not json"), Decoded::Ignore));
        assert!(matches!(decode(b"   "), Decoded::Ignore));
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Decoded::Message(_)
        ));
        assert!(matches!(
            decode(b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r"),
            Decoded::Message(_)
        ));
        let batch = answered(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).expect("an answer");
        assert!(batch.get("id").is_none());
    }
}
