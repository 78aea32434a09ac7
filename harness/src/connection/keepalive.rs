//! A small blocking keep-alive HTTP/1.1 client for timing: requests written and responses read
//! on one `TcpStream` (Nagle off) rather than through reqwest, because a connection pool, a
//! task scheduler and header maps add microseconds of jitter to every sample, which is what the
//! TIME probe has to see through ([`crate::stats::sequential`] runs the rounds).
//!
//! It reads a response by `Content-Length` or chunked encoding, never more than
//! [`MAX_RESPONSE_BYTES`], and every read has a timeout. Only `http://` URLs: timing through
//! TLS is not supported.
//!
//! Cost: one round trip per request, no allocation beyond the response buffer. Failure: a
//! closed connection is reopened (at most [`MAX_RECONNECTS`] times per run); a timeout or a
//! malformed response is an error, never a hang.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// A response larger than this is an error: the probe sends requests that must be refused.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// How often a run reopens a connection the server closed.
pub const MAX_RECONNECTS: u32 = 50;

#[derive(Debug, thiserror::Error)]
pub enum TimingError {
    #[error("timing needs an http:// URL (TLS is not supported): {0}")]
    Unsupported(String),
    #[error("cannot reach {0}: {1}")]
    Connect(String, String),
    #[error("i/o with the target: {0}")]
    Io(String),
    #[error("the target did not answer within the request timeout")]
    Timeout,
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    #[error("the server closed the connection more than {MAX_RECONNECTS} times")]
    TooManyReconnects,
    /// The target's rate limit refused the request; it asks to wait this long. The answer is
    /// the limiter's, not the timed check's: the round is measured again after the wait.
    #[error("the target's rate limit refused the request")]
    Refused(std::time::Duration),
    #[error("the target's rate limit refused {0} rounds in a row")]
    RefusedTooOften(usize),
}

/// One request to time: a POST of `body` with these extra headers.
#[derive(Debug, Clone)]
pub struct Variant {
    pub label: &'static str,
    pub headers: Vec<(String, String)>,
}

/// A blocking keep-alive HTTP/1.1 client for one URL.
pub struct KeepAliveClient {
    address: SocketAddr,
    host_header: String,
    path: String,
    timeout: Duration,
    stream: Option<TcpStream>,
    reconnects: u32,
    buffer: Vec<u8>,
}

impl KeepAliveClient {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, TimingError> {
        let parsed = url::Url::parse(url).map_err(|e| TimingError::Unsupported(e.to_string()))?;
        if parsed.scheme() != "http" {
            return Err(TimingError::Unsupported(url.to_owned()));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| TimingError::Unsupported(url.to_owned()))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let address = (host.trim_matches(['[', ']']), port)
            .to_socket_addrs()
            .map_err(|e| TimingError::Connect(url.to_owned(), e.to_string()))?
            .next()
            .ok_or_else(|| TimingError::Connect(url.to_owned(), "no address".into()))?;
        let host_header = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let mut path = parsed.path().to_owned();
        if let Some(query) = parsed.query() {
            path = format!("{path}?{query}");
        }
        Ok(Self {
            address,
            host_header,
            path,
            timeout,
            stream: None,
            reconnects: 0,
            buffer: Vec::with_capacity(4096),
        })
    }

    fn stream(&mut self) -> Result<&mut TcpStream, TimingError> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.address, self.timeout)
                .map_err(|e| TimingError::Connect(self.address.to_string(), e.to_string()))?;
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(self.timeout));
            let _ = stream.set_write_timeout(Some(self.timeout));
            self.stream = Some(stream);
        }
        Ok(self.stream.as_mut().expect("just opened"))
    }

    /// POSTs `body` and returns the status and the round-trip time (from the first byte
    /// written to the last byte read). A connection the server closed is reopened and the
    /// request retried once.
    pub fn post(
        &mut self,
        body: &[u8],
        headers: &[(String, String)],
    ) -> Result<(u16, Duration), TimingError> {
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
            self.path,
            self.host_header,
            body.len()
        )
        .into_bytes();
        for (name, value) in headers {
            request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        loop {
            match self.exchange(&request) {
                Ok(result) => return Ok(result),
                Err(TimingError::Io(_)) if self.reconnects < MAX_RECONNECTS => {
                    self.reconnects += 1;
                    self.stream = None;
                }
                Err(TimingError::Io(_)) => return Err(TimingError::TooManyReconnects),
                Err(other) => return Err(other),
            }
        }
    }

    fn exchange(&mut self, request: &[u8]) -> Result<(u16, Duration), TimingError> {
        self.stream()?;
        let started = Instant::now();
        let stream = self.stream.as_mut().expect("opened above");
        stream.write_all(request).map_err(io)?;
        let (status, close) = read_response(stream, &mut self.buffer)?;
        let elapsed = started.elapsed();
        if close {
            self.stream = None;
        }
        Ok((status, elapsed))
    }
}

fn io(error: std::io::Error) -> TimingError {
    match error.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => TimingError::Timeout,
        _ => TimingError::Io(error.to_string()),
    }
}

/// Reads one response; returns its status and whether the server will close the connection.
fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(u16, bool), TimingError> {
    buffer.clear();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() > MAX_RESPONSE_BYTES {
            return Err(TimingError::Malformed("headers too large"));
        }
        let read = stream.read(&mut chunk).map_err(io)?;
        if read == 0 {
            return Err(TimingError::Io("closed before the headers".into()));
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = std::str::from_utf8(&buffer[..header_end])
        .map_err(|_| TimingError::Malformed("headers are not UTF-8"))?
        .to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(TimingError::Malformed("no status code"))?;
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
            .map(str::to_owned)
    };
    let close = header("connection").is_some_and(|v| v.contains("close"));
    if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| TimingError::Malformed("bad content-length"))?;
        if length > MAX_RESPONSE_BYTES {
            return Err(TimingError::Malformed("body too large"));
        }
        while buffer.len() < header_end + length {
            let read = stream.read(&mut chunk).map_err(io)?;
            if read == 0 {
                return Err(TimingError::Io("closed inside the body".into()));
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
        return Ok((status, close));
    }
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        // The body ends with the zero-length chunk; trailers are not expected.
        let complete = |buffer: &[u8]| {
            let body = &buffer[header_end..];
            body.ends_with(b"0\r\n\r\n")
                && (body.len() == 5 || body[..body.len() - 5].ends_with(b"\n"))
        };
        while !complete(buffer) {
            if buffer.len() > MAX_RESPONSE_BYTES {
                return Err(TimingError::Malformed("body too large"));
            }
            let read = stream.read(&mut chunk).map_err(io)?;
            if read == 0 {
                return Err(TimingError::Io("closed inside a chunked body".into()));
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
        return Ok((status, close));
    }
    // No length: the body runs to the end of the connection.
    loop {
        if buffer.len() > MAX_RESPONSE_BYTES {
            return Err(TimingError::Malformed("body too large"));
        }
        let read = stream.read(&mut chunk).map_err(io)?;
        if read == 0 {
            return Ok((status, true));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-connection server that answers each request with `response`.
    pub(crate) fn serve(response: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            while let Ok((mut stream, _)) = listener.accept() {
                let mut buffer = [0u8; 8192];
                loop {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            if stream.write_all(response).is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        format!("http://{address}/mcp")
    }

    #[test]
    fn reads_content_length_and_chunked_responses() {
        let url = serve(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\nnope!");
        let mut client = KeepAliveClient::new(&url, Duration::from_secs(5)).unwrap();
        for _ in 0..3 {
            assert_eq!(client.post(b"{}", &[]).unwrap().0, 401);
        }
        let url =
            serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        let mut client = KeepAliveClient::new(&url, Duration::from_secs(5)).unwrap();
        for _ in 0..3 {
            assert_eq!(client.post(b"{}", &[]).unwrap().0, 200);
        }
    }

    #[test]
    fn a_silent_server_times_out_instead_of_hanging() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let mut client = KeepAliveClient::new(&url, Duration::from_millis(200)).unwrap();
        let started = Instant::now();
        assert!(client.post(b"{}", &[]).is_err());
        assert!(started.elapsed() < Duration::from_secs(30));
        drop(listener);
    }

    #[test]
    fn a_huge_response_is_an_error() {
        let url = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n");
        let mut client = KeepAliveClient::new(&url, Duration::from_secs(5)).unwrap();
        assert!(matches!(
            client.post(b"{}", &[]),
            Err(TimingError::Malformed(_))
        ));
    }

    #[test]
    fn https_is_refused_up_front() {
        assert!(matches!(
            KeepAliveClient::new("https://127.0.0.1/", Duration::from_secs(1)),
            Err(TimingError::Unsupported(_))
        ));
    }
}
