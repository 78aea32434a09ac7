//! MCP over stdio: newline-delimited JSON-RPC on stdin/stdout.
//!
//! The process that launched the server is trusted (it chose the binary and its environment),
//! so the session runs as one principal configured at start-up, and the per-call rate limit
//! and concurrency cap still apply. An input line longer than the configured body limit is
//! discarded unread, so a hostile client cannot make the server buffer without bound. Nothing
//! else may write to stdout: the binary sends every log line to stderr.
//!
//! Failure: a transport error ends the session. Well-formed JSON that is not a valid message
//! gets `-32600`; a line that is not JSON at all is ignored (no id to answer, and answering
//! invalid data can start an error storm with an echoing peer; the official SDKs agree), and the
//! session goes on.

use rmcp::{ServerHandler, ServiceExt};

/// Serves one MCP session on this process's stdin and stdout until the client disconnects.
/// Lines longer than `max_line_bytes` are dropped.
pub async fn serve(
    server: impl ServerHandler,
    max_line_bytes: usize,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let transport = rmcp::transport::async_rw::AsyncRwTransport::new_server(stdin, stdout)
        .with_max_line_length(max_line_bytes);
    let running = server.serve(transport).await?;
    running.waiting().await?;
    Ok(())
}
