//! A loopback HTTP listener that records every request it receives: the SSRF oracle, and (with
//! the request headers it keeps) the token-passthrough oracle.
//!
//! Each payload carries a unique path (`/ssrf/<nonce>`), so a hit names the payload that caused
//! it. The listener answers `200` with a canary body, reads at most 8 KiB of each request,
//! keeps at most 1,000 hits (each with at most 64 headers of at most 512 bytes), and gives up
//! on a connection after 2 seconds. The same listener, started on a port the user names
//! (`--upstream-port`), plays an upstream the target is configured to call.
//!
//! Failure: binding fails only if loopback is unavailable; the run then reports SSRF probes as
//! not applicable.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAX_HITS: usize = 1000;
const MAX_HEADERS: usize = 64;
const MAX_HEADER_BYTES: usize = 512;

/// One recorded request.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Hit {
    pub request_line: String,
    /// The request's headers (name, value), as far as the first read got.
    pub headers: Vec<(String, String)>,
}

/// The listener; stops when dropped.
pub struct CanaryListener {
    pub port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
    task_v6: Option<tokio::task::JoinHandle<()>>,
    pub body: String,
}

impl CanaryListener {
    pub async fn start(body: String) -> std::io::Result<Self> {
        Self::start_on(0, body).await
    }

    /// [`Self::start`] on `port` of 127.0.0.1 (0: any free port).
    pub async fn start_on(port: u16, body: String) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let task = tokio::spawn(serve(listener, hits.clone(), body.clone()));
        // The same port on [::1] too, where the machine has IPv6 loopback.
        let task_v6 = match tokio::net::TcpListener::bind(("::1", port)).await {
            Ok(v6) => Some(tokio::spawn(serve(v6, hits.clone(), body.clone()))),
            Err(_) => None,
        };
        Ok(Self {
            port,
            hits,
            task,
            task_v6,
            body,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Hits whose request line contains `marker`.
    pub fn hits_containing(&self, marker: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|h| h.request_line.contains(marker))
            .cloned()
            .collect()
    }

    /// Every hit so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn hit_count(&self) -> usize {
        self.hits.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for CanaryListener {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(task) = &self.task_v6 {
            task.abort();
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, hits: Arc<Mutex<Vec<Hit>>>, body: String) {
    while let Ok((mut socket, _)) = listener.accept().await {
        let hits = hits.clone();
        let body = body.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 8192];
            let read = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buffer)).await;
            let Ok(Ok(n)) = read else { return };
            let request = String::from_utf8_lossy(&buffer[..n]);
            let mut lines = request.lines();
            let request_line = lines.next().unwrap_or_default().chars().take(500).collect();
            let headers = lines
                .take_while(|line| !line.is_empty())
                .filter_map(|line| line.split_once(':'))
                .take(MAX_HEADERS)
                .map(|(name, value)| {
                    (
                        name.trim().to_ascii_lowercase(),
                        value.trim().chars().take(MAX_HEADER_BYTES).collect(),
                    )
                })
                .collect();
            {
                let mut hits = hits.lock().unwrap_or_else(|p| p.into_inner());
                if hits.len() < MAX_HITS {
                    hits.push(Hit {
                        request_line,
                        headers,
                    });
                }
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                body
            );
            let _ =
                tokio::time::timeout(Duration::from_secs(2), socket.write_all(reply.as_bytes()))
                    .await;
        });
    }
}
