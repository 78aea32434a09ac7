//! The timing engine: interleaved request rounds over one keep-alive HTTP/1.1 connection (or
//! any other [`Exchange`], such as a tool call over a stdio pipe), and the sequential decision
//! the TIME probe and its sensitivity benchmark share.
//!
//! A *round* sends each of a few request variants once, in a fresh random order, back to back
//! on the same connection, and records each round trip. Only differences within a round are
//! judged (see [`crate::stats`]), so drift between rounds cancels out.
//!
//! The client here is a small blocking HTTP/1.1 writer and reader on a `TcpStream` (Nagle off)
//! rather than reqwest: a connection pool, a task scheduler and header maps add microseconds of
//! jitter to every sample, which is what the probe has to see through. It reads a response by
//! `Content-Length` or chunked encoding, never more than [`MAX_RESPONSE_BYTES`], and every read
//! has a timeout. Only `http://` URLs: timing through TLS is not supported.
//!
//! Cost: one round trip per variant per round, no allocation beyond the response buffer.
//! Failure: a closed connection is reopened (at most [`MAX_RECONNECTS`] times per run); a
//! timeout or a malformed response ends the measurement with an error, never a hang.

use crate::stats::{self, TestResult};
use rand::Rng;
use rand::seq::SliceRandom;
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

/// Samples from rounds: `times[v][r]` is variant `v`'s round trip in round `r`, in ns, and
/// `statuses[v]` the distinct statuses variant `v` received (at most 16).
#[derive(Debug, Default, Clone)]
pub struct Rounds {
    pub times: Vec<Vec<f64>>,
    pub statuses: Vec<Vec<u16>>,
}

impl Rounds {
    pub fn new(variants: usize) -> Self {
        Self {
            times: vec![Vec::new(); variants],
            statuses: vec![Vec::new(); variants],
        }
    }

    pub fn len(&self) -> usize {
        self.times.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Paired differences `variant b - variant a`, in ns.
    pub fn differences(&self, a: usize, b: usize) -> Vec<f64> {
        self.times[b]
            .iter()
            .zip(&self.times[a])
            .map(|(tb, ta)| tb - ta)
            .collect()
    }
}

/// One timed request per call, in one of a few variants: what a round is made of.
pub trait Exchange {
    /// How many variants there are.
    fn variants(&self) -> usize;
    /// Sends variant `variant` once; returns its status (HTTP status, or 200 for a served and
    /// 401 for a refused tool call) and the round trip.
    fn exchange(&mut self, variant: usize) -> Result<(u16, Duration), TimingError>;
}

/// The HTTP exchange: a POST of `body` with each variant's headers, over one keep-alive client.
pub struct HttpExchange<'a> {
    pub client: &'a mut KeepAliveClient,
    pub body: &'a [u8],
    pub variants: &'a [Variant],
}

impl Exchange for HttpExchange<'_> {
    fn variants(&self) -> usize {
        self.variants.len()
    }

    fn exchange(&mut self, variant: usize) -> Result<(u16, Duration), TimingError> {
        self.client.post(self.body, &self.variants[variant].headers)
    }
}

/// Measures `rounds` more rounds of `variants` into `into`, each round in a random order.
pub fn measure_rounds(
    client: &mut KeepAliveClient,
    body: &[u8],
    variants: &[Variant],
    rounds: usize,
    into: &mut Rounds,
    rng: &mut impl Rng,
) -> Result<(), TimingError> {
    let mut exchange = HttpExchange {
        client,
        body,
        variants,
    };
    measure_rounds_with(&mut exchange, rounds, into, rng)
}

/// [`measure_rounds`] over any [`Exchange`].
pub fn measure_rounds_with(
    exchange: &mut impl Exchange,
    rounds: usize,
    into: &mut Rounds,
    rng: &mut impl Rng,
) -> Result<(), TimingError> {
    let mut order: Vec<usize> = (0..exchange.variants()).collect();
    let mut round = vec![0.0; exchange.variants()];
    for _ in 0..rounds {
        order.shuffle(rng);
        for &v in &order {
            let (status, elapsed) = exchange.exchange(v)?;
            round[v] = elapsed.as_nanos() as f64;
            if into.statuses[v].len() < 16 && !into.statuses[v].contains(&status) {
                into.statuses[v].push(status);
            }
        }
        for (v, time) in round.iter().enumerate() {
            into.times[v].push(*time);
        }
    }
    Ok(())
}

/// The sequential plan: look at the data after each rung of rounds; every look is tested at
/// `alpha / looks` (Bonferroni), so the whole procedure's false-positive rate stays at or below
/// `alpha`.
///
/// A difference must also be at least `min_effect_ns` (median) to count: at tens of thousands
/// of pairs the sign test resolves a few nanoseconds, and a branch taken for one token and not
/// the other (measured: a 0 ns planted delay was "detected" at 60,000 pairs) is not a leak
/// anyone can exploit over a network.
#[derive(Debug, Clone)]
pub struct SequentialPlan {
    pub rungs: Vec<usize>,
    pub alpha: f64,
    pub min_effect_ns: f64,
}

impl SequentialPlan {
    pub fn per_look_alpha(&self) -> f64 {
        stats::bonferroni(self.alpha, self.rungs.len())
    }

    pub fn max_rounds(&self) -> usize {
        self.rungs.last().copied().unwrap_or(0)
    }
}

/// What one look at a comparison concluded.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub rounds: usize,
    pub test: TestResult,
    /// The median of the differences, ns.
    pub median_ns: f64,
    /// The smallest difference these pairs would detect at the per-look alpha (power 0.8), ns.
    pub detectable_ns: f64,
}

impl Look {
    pub fn of(differences: &[f64], alpha: f64) -> Self {
        let mut sorted = differences.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median_ns = if sorted.is_empty() {
            0.0
        } else {
            sorted[sorted.len() / 2]
        };
        Self {
            rounds: differences.len(),
            test: stats::sign_test(differences),
            median_ns,
            detectable_ns: stats::minimum_detectable_effect(differences, alpha, 0.8),
        }
    }

    pub fn significant(&self, alpha: f64) -> bool {
        self.test.p_value < alpha
    }

    /// Significant at `alpha` and at least `min_effect_ns` in size (either direction).
    pub fn differs(&self, alpha: f64, min_effect_ns: f64) -> bool {
        self.significant(alpha) && self.median_ns.abs() >= min_effect_ns
    }
}

/// What the sequential procedure concluded.
#[derive(Debug, Clone, Copy)]
pub enum Decision {
    /// The main comparison differs significantly, in the expected direction (B slower).
    Differs(Look),
    /// The main comparison differs, but B is *faster*: not the leak being tested for.
    Reversed(Look),
    /// The A/A control differed: the measurement itself is unreliable.
    ControlDiffers(Look),
    /// No significant difference after every rung (or when the time ran out).
    NoDifference(Look),
}

/// Which variants to compare: `main` is (a, b) with b expected slower when the target leaks;
/// `control` is (a, a') with two variants that should take the same time.
#[derive(Debug, Clone, Copy)]
pub struct Comparison {
    pub main: (usize, usize),
    pub control: (usize, usize),
}

/// Runs rounds rung by rung until a decision or the plan's end or `deadline`, after `rounds`
/// (which may hold warm-up rounds already; they are cleared first).
pub fn run_sequential(
    client: &mut KeepAliveClient,
    body: &[u8],
    variants: &[Variant],
    plan: &SequentialPlan,
    comparison: Comparison,
    deadline: Instant,
    rng: &mut impl Rng,
) -> Result<(Rounds, Decision), TimingError> {
    let mut exchange = HttpExchange {
        client,
        body,
        variants,
    };
    run_sequential_with(&mut exchange, plan, comparison, deadline, rng)
}

/// [`run_sequential`] over any [`Exchange`].
pub fn run_sequential_with(
    exchange: &mut impl Exchange,
    plan: &SequentialPlan,
    comparison: Comparison,
    deadline: Instant,
    rng: &mut impl Rng,
) -> Result<(Rounds, Decision), TimingError> {
    let alpha = plan.per_look_alpha();
    let mut rounds = Rounds::new(exchange.variants());
    let mut last = Look::of(&[], alpha);
    for &rung in &plan.rungs {
        let started = Instant::now();
        let before = rounds.len();
        measure_rounds_with(exchange, rung - before, &mut rounds, rng)?;
        let control = Look::of(
            &rounds.differences(comparison.control.0, comparison.control.1),
            alpha,
        );
        if control.differs(alpha, plan.min_effect_ns) {
            return Ok((rounds, Decision::ControlDiffers(control)));
        }
        last = Look::of(
            &rounds.differences(comparison.main.0, comparison.main.1),
            alpha,
        );
        if last.differs(alpha, plan.min_effect_ns) {
            let decision = if last.test.z > 0.0 {
                Decision::Differs(last)
            } else {
                Decision::Reversed(last)
            };
            return Ok((rounds, decision));
        }
        // Stop when the next rung would likely overrun the deadline.
        let per_round = started.elapsed().as_secs_f64() / (rung - before).max(1) as f64;
        let next = plan.rungs.iter().find(|r| **r > rung);
        if let Some(next) = next
            && Instant::now() + Duration::from_secs_f64(per_round * (next - rung) as f64) > deadline
        {
            break;
        }
    }
    Ok((rounds, Decision::NoDifference(last)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-connection server that answers each request with `response`.
    fn serve(response: &'static [u8]) -> String {
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

    #[test]
    fn rounds_pair_variants_in_every_order() {
        let url = serve(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
        let mut client = KeepAliveClient::new(&url, Duration::from_secs(5)).unwrap();
        let variants = [
            Variant {
                label: "a",
                headers: vec![],
            },
            Variant {
                label: "b",
                headers: vec![("x-b".into(), "1".into())],
            },
        ];
        let mut rounds = Rounds::new(2);
        let mut rng = rand::rng();
        measure_rounds(&mut client, b"{}", &variants, 50, &mut rounds, &mut rng).unwrap();
        assert_eq!(rounds.len(), 50);
        assert_eq!(rounds.differences(0, 1).len(), 50);
        assert_eq!(rounds.statuses[1], vec![401]);
    }
}
