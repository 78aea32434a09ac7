//! `mcp-harness load`: an open-loop load generator for any MCP target, to measure the limit its
//! rate limiter really enforces and the rate at which it stops keeping up.
//!
//! Open loop, as wrk2 does it: call `i` has an intended send time fixed by the plan before the
//! run (a constant rate, or a linear ramp), and its latency is measured from that time, not from
//! when it was actually sent. A target that queues therefore shows its queue in the latency
//! instead of slowing the generator down to its own pace (coordinated omission). The calls are
//! one cheap tool's `tools/call`s (the RATE family's choice, or `--tool`) with its baseline
//! arguments, spread over N connections (HTTP sessions, each one request at a time as HTTP/1.1
//! carries them, so N TCP connections; one pipe for stdio, pipelined), up to `max_in_flight`
//! calls sent or waiting for their connection; a call due when that many wait is not sent and
//! counted so.
//!
//! Each answer is one of: *served* (a result that is not `isError`), *refused* (what the
//! refusal oracle recognises as a rate limiter's refusal: HTTP 429, 503 with `Retry-After`,
//! JSON-RPC -32029, a short error saying so), *failed* (any other error, a timeout, a closed
//! connection). Latencies go into HDR histograms (`hdrhistogram`, microseconds, 3 significant
//! digits) for the run and for each second of intended send time.
//!
//! What it concludes ([`summary`]): the limit the target enforced, read off the served calls
//! (the sustained rate from the second half of the run, the burst as the least `b` with
//! `served(t) <= b + rate * t` throughout), judged against `--expect-rate`/`--expect-burst`;
//! and the first second whose calls were not all answered within the latency budget, with
//! the offered rate then.
//!
//! Bounds: at most [`MAX_DURATION`] and [`MAX_CALLS`] calls; an HTTP target must be on
//! loopback; every call has the request timeout, so the run ends at most one timeout after its
//! last intended send. Memory: one task and one small record per call in flight, a histogram
//! per second (about 10 KiB each). Failure: a target that cannot be reached, or whose tool call
//! is not served before the run, is an error, since a load of failing calls measures nothing.

pub mod html;
pub mod summary;

use crate::connection::{Budget, Connection, Reply, TargetError};
use crate::oracle::refusal::explicit_wait;
use crate::stage::Stage;
use crate::{HarnessError, StageOptions, TargetOptions};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use summary::{LoadSummary, RunFacts};
use tokio::time::Instant;

/// The longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// The most calls one run offers.
pub const MAX_CALLS: u64 = 20_000_000;
/// The highest rate offered.
pub const MAX_RATE: f64 = 500_000.0;
/// The most calls in flight at once.
pub const MAX_IN_FLIGHT: usize = 100_000;
/// Ids of the generator's calls start here, far from the connection's own.
const FIRST_ID: u64 = 1 << 40;
/// The largest latency a histogram records (longer ones are clamped to it).
const LONGEST_LATENCY_MICROS: u64 = 3_600_000_000;

/// What to offer.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// Calls per second at the start.
    pub rate: f64,
    /// Calls per second at the end (a linear ramp); `None`: constant.
    pub ramp_to: Option<f64>,
    pub duration: Duration,
    /// Calls in flight at most; a call due beyond it is not sent.
    pub max_in_flight: usize,
    /// A second whose calls are not all answered within this is one the target did not keep
    /// up with.
    pub latency_budget: Duration,
}

impl LoadPlan {
    /// The plan, or why it is out of bounds.
    pub fn checked(self) -> Result<LoadPlan, String> {
        let rates = [Some(self.rate), self.ramp_to];
        for rate in rates.into_iter().flatten() {
            if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
                return Err(format!(
                    "a rate must be above 0 and at most {MAX_RATE} calls a second, not {rate}"
                ));
            }
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return Err(format!(
                "the duration must be above 0 and at most {} s",
                MAX_DURATION.as_secs()
            ));
        }
        if self.max_in_flight == 0 || self.max_in_flight > MAX_IN_FLIGHT {
            return Err(format!(
                "--max-in-flight must be between 1 and {MAX_IN_FLIGHT}"
            ));
        }
        if self.total_calls() > MAX_CALLS {
            return Err(format!(
                "the plan offers {} calls; at most {MAX_CALLS} a run",
                self.total_calls()
            ));
        }
        Ok(self)
    }

    fn end_rate(&self) -> f64 {
        self.ramp_to.unwrap_or(self.rate)
    }

    /// Calls the plan offers: the area under the rate.
    pub fn total_calls(&self) -> u64 {
        (self.duration.as_secs_f64() * (self.rate + self.end_rate()) / 2.0).floor() as u64
    }

    /// The offered rate at `seconds` into the run.
    pub fn rate_at(&self, seconds: f64) -> f64 {
        let share = (seconds / self.duration.as_secs_f64()).clamp(0.0, 1.0);
        self.rate + (self.end_rate() - self.rate) * share
    }

    /// When call `index` is due, in seconds from the start: the time at which the area under
    /// the rate reaches `index` (for a ramp, the root of `rate*t + slope*t^2/2 = index`).
    pub fn intended_offset(&self, index: u64) -> f64 {
        let calls = index as f64;
        let slope = (self.end_rate() - self.rate) / self.duration.as_secs_f64();
        if slope.abs() < 1e-12 {
            return calls / self.rate;
        }
        // The stable form of the quadratic's root (no cancellation when slope is small).
        2.0 * calls / (self.rate + (self.rate * self.rate + 2.0 * slope * calls).sqrt())
    }
}

/// What became of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Served,
    Refused,
    Failed,
    /// Due while `max_in_flight` calls waited: not sent.
    NotSent,
}

impl Fate {
    /// The fate of an answer: see the module documentation.
    pub fn of(reply: &Result<Reply, TargetError>) -> Fate {
        if explicit_wait(reply).is_some() {
            return Fate::Refused;
        }
        match reply {
            Ok(reply) if matches!(reply, Reply::Result(_)) && !reply.is_tool_error() => {
                Fate::Served
            }
            _ => Fate::Failed,
        }
    }
}

/// One second of intended send time.
#[derive(Debug, Clone)]
pub struct SecondRecord {
    pub offered: u64,
    pub served: u64,
    pub refused: u64,
    pub failed: u64,
    pub not_sent: u64,
    /// Every answered call's latency from its intended send time.
    pub latency: Histogram<u64>,
}

/// Everything the run recorded.
#[derive(Debug, Clone)]
pub struct Recording {
    pub seconds: Vec<SecondRecord>,
    pub served_latency: Histogram<u64>,
    pub refused_latency: Histogram<u64>,
    pub failed_latency: Histogram<u64>,
    /// When each served call was actually sent, in microseconds from the start, in order of
    /// sending (for the enforced limit).
    pub served_sent_micros: Vec<u64>,
    /// Up to five distinct error texts of failed calls, for the report.
    pub failure_samples: Vec<String>,
    /// How far behind its schedule the generator fell at worst, in microseconds (its own
    /// limit: a generator that cannot send on time measures itself).
    pub worst_send_lag_micros: u64,
    /// Seconds from the first intended send to the last answer.
    pub elapsed: f64,
}

fn histogram(significant_digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, LONGEST_LATENCY_MICROS, significant_digits)
        .expect("constant bounds are valid")
}

impl Recording {
    fn new(plan: &LoadPlan) -> Recording {
        let seconds = plan.duration.as_secs_f64().ceil() as usize;
        Recording {
            seconds: (0..seconds.max(1))
                .map(|_| SecondRecord {
                    offered: 0,
                    served: 0,
                    refused: 0,
                    failed: 0,
                    not_sent: 0,
                    latency: histogram(2),
                })
                .collect(),
            served_latency: histogram(3),
            refused_latency: histogram(3),
            failed_latency: histogram(3),
            served_sent_micros: Vec::new(),
            failure_samples: Vec::new(),
            worst_send_lag_micros: 0,
            elapsed: 0.0,
        }
    }

    fn second(&mut self, intended_micros: u64) -> &mut SecondRecord {
        let last = self.seconds.len() - 1;
        &mut self.seconds[((intended_micros / 1_000_000) as usize).min(last)]
    }

    fn offered(&mut self, intended_micros: u64) {
        self.second(intended_micros).offered += 1;
    }

    fn not_sent(&mut self, intended_micros: u64) {
        self.second(intended_micros).not_sent += 1;
    }

    fn answered(&mut self, call: &Answered, reply: &Result<Reply, TargetError>) {
        let fate = Fate::of(reply);
        let latency = call.latency_micros.clamp(1, LONGEST_LATENCY_MICROS);
        let second = self.second(call.intended_micros);
        second.latency.saturating_record(latency);
        match fate {
            Fate::Served => second.served += 1,
            Fate::Refused => second.refused += 1,
            _ => second.failed += 1,
        }
        match fate {
            Fate::Served => {
                self.served_latency.saturating_record(latency);
                self.served_sent_micros.push(call.sent_micros);
            }
            Fate::Refused => self.refused_latency.saturating_record(latency),
            _ => {
                self.failed_latency.saturating_record(latency);
                if self.failure_samples.len() < 5 {
                    let text = match reply {
                        Ok(reply) => reply.summary(200),
                        Err(error) => crate::connection::excerpt(&error.to_string(), 200),
                    };
                    if !self.failure_samples.contains(&text) {
                        self.failure_samples.push(text);
                    }
                }
            }
        }
    }
}

struct Answered {
    intended_micros: u64,
    sent_micros: u64,
    latency_micros: u64,
}

/// The call the generator repeats.
#[derive(Debug, Clone)]
pub struct LoadCall {
    pub tool: String,
    pub arguments: Value,
}

/// Runs `plan` against `connections` (round robin) and returns what it recorded.
pub async fn generate(
    connections: &[Arc<Connection>],
    call: &LoadCall,
    plan: &LoadPlan,
) -> Recording {
    let recording = Arc::new(Mutex::new(Recording::new(plan)));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(plan.max_in_flight));
    // HTTP/1.1 carries one request at a time on a connection: a call waits for its
    // connection's answer to the one before (the wait is in its latency, from its intended
    // time), instead of opening one TCP connection per call in flight. A pipe is shared.
    let lanes: Vec<Arc<tokio::sync::Semaphore>> = connections
        .iter()
        .map(|c| {
            let permits = match c.as_ref() {
                Connection::Stdio(_) => plan.max_in_flight,
                _ => 1,
            };
            Arc::new(tokio::sync::Semaphore::new(permits))
        })
        .collect();
    let params = Arc::new(json!({"name": call.tool, "arguments": call.arguments}));
    let total = plan.total_calls();
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now() + Duration::from_millis(20);
    let mut worst_lag = Duration::ZERO;
    let mut index = 0u64;
    while index < total {
        let due = start + Duration::from_secs_f64(plan.intended_offset(index));
        tokio::time::sleep_until(due).await;
        // Everything due by now goes out at once (the timer's granularity is a millisecond).
        let now = Instant::now();
        worst_lag = worst_lag.max(now.saturating_duration_since(due));
        while index < total {
            let intended = start + Duration::from_secs_f64(plan.intended_offset(index));
            if intended > now {
                break;
            }
            let intended_micros = micros(intended - start);
            let permit = in_flight.clone().try_acquire_owned();
            {
                let mut recording = lock(&recording);
                recording.offered(intended_micros);
                if permit.is_err() {
                    recording.not_sent(intended_micros);
                }
            }
            if let Ok(permit) = permit {
                let lane = (index % connections.len() as u64) as usize;
                let (connection, lane) = (connections[lane].clone(), lanes[lane].clone());
                let (recording, params) = (recording.clone(), params.clone());
                let id = json!(FIRST_ID + index);
                tasks.spawn(async move {
                    let Ok(_turn) = lane.acquire_owned().await else {
                        return;
                    };
                    let sent = Instant::now();
                    let reply = connection
                        .call_shared(id, "tools/call", Some((*params).clone()))
                        .await;
                    let answered = Answered {
                        intended_micros,
                        sent_micros: micros(sent - start),
                        latency_micros: micros(Instant::now().saturating_duration_since(intended)),
                    };
                    lock(&recording).answered(&answered, &reply);
                    drop(permit);
                });
            }
            index += 1;
            // Reap finished tasks as we go, so the set stays the size of what is in flight.
            while tasks.try_join_next().is_some() {}
        }
    }
    while tasks.join_next().await.is_some() {}
    let mut recording = lock(&recording).clone();
    recording.worst_send_lag_micros = micros(worst_lag);
    recording.elapsed = Instant::now()
        .saturating_duration_since(start)
        .as_secs_f64();
    recording
}

fn micros(duration: Duration) -> u64 {
    duration.as_micros().min(u128::from(u64::MAX)) as u64
}

fn lock(recording: &Mutex<Recording>) -> std::sync::MutexGuard<'_, Recording> {
    recording.lock().unwrap_or_else(|p| p.into_inner())
}

/// Most connections one run opens.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections over HTTP when none are asked for.
pub const DEFAULT_HTTP_CONNECTIONS: usize = 32;

/// Everything a load run needs.
pub struct LoadOptions {
    pub target: TargetOptions,
    pub stage: StageOptions,
    pub budget: Budget,
    pub plan: LoadPlan,
    /// The tool to call (default: the RATE family's cheap tool).
    pub tool: Option<String>,
    /// Its arguments (default: its baseline arguments, built from its schema).
    pub arguments: Option<Value>,
    /// HTTP sessions (TCP connections) to spread the calls over; 1 for stdio.
    pub connections: usize,
    pub expected_per_second: Option<f64>,
    pub expected_burst: Option<u32>,
}

/// Raises this process's soft limit on open files to its hard limit (each HTTP connection is
/// one); returns the limit now in force. A process-wide change: the binary and the benchmark
/// call it, the library never does by itself.
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return Some(raised.rlim_cur);
            }
        }
    }
    Some(limit.rlim_cur)
}

/// Whether `url`'s host is loopback: 127.0.0.0/8, [::1] or `localhost`.
pub fn is_loopback_url(url: &str) -> bool {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Connects, picks the call, checks that it is served once, then runs the plan.
pub async fn run(options: LoadOptions) -> Result<LoadSummary, HarnessError> {
    let plan = options
        .plan
        .clone()
        .checked()
        .map_err(HarnessError::Usage)?;
    if options.connections == 0 || options.connections > MAX_CONNECTIONS {
        return Err(HarnessError::Usage(format!(
            "--connections must be between 1 and {MAX_CONNECTIONS}"
        )));
    }
    match &options.target {
        TargetOptions::Http { url, .. } if !is_loopback_url(url) => {
            return Err(HarnessError::Usage(format!(
                "load offers up to {MAX_RATE} calls a second: only to a loopback target (127.0.0.0/8, [::1], localhost), not {url}"
            )));
        }
        TargetOptions::Stdio { .. } if options.connections > 1 => {
            return Err(HarnessError::Usage(
                "a stdio target is one process on one pipe: --connections must be 1".into(),
            ));
        }
        _ => {}
    }
    let stage = Stage::new(options.stage.sandbox.as_deref()).await?;
    let (mut first, address) =
        crate::open_target(&options.target, &options.stage, &stage, options.budget).await?;
    let discovery = crate::discover::discover(&mut first).await?;
    let tool = match &options.tool {
        Some(name) => discovery
            .tools
            .iter()
            .find(|t| t.is_tool() && &t.name == name)
            .ok_or_else(|| HarnessError::Usage(format!("the target lists no tool {name:?}")))?,
        None => crate::probe::rate::cheap_tool(&discovery.tools).ok_or_else(|| {
            HarnessError::Usage(
                "the target lists no tool that only reads: name one with --tool".into(),
            )
        })?,
    };
    let arguments = match &options.arguments {
        Some(arguments) => arguments.clone(),
        None => {
            let baselines = crate::discover::Baselines {
                sandbox: matches!(options.target, TargetOptions::Stdio { .. })
                    .then(|| stage.sandbox.to_string_lossy().into_owned()),
                listener: None,
            };
            tool.arguments(None, &baselines, 0).map_err(|e| {
                HarnessError::Usage(format!(
                    "no arguments for {} from its schema ({e}): give --arguments",
                    tool.name
                ))
            })?
        }
    };
    let call = LoadCall {
        tool: tool.name.clone(),
        arguments,
    };
    // A load of calls that fail measures nothing: the call must be served once first.
    let trial = first
        .request(
            "tools/call",
            Some(json!({"name": call.tool, "arguments": call.arguments})),
        )
        .await;
    if Fate::of(&trial) != Fate::Served {
        let why = match &trial {
            Ok(reply) => reply.summary(300),
            Err(error) => error.to_string(),
        };
        first.shutdown().await;
        return Err(HarnessError::Usage(format!(
            "the call to {} was not served before the load ({why}): give --tool and --arguments the target serves",
            call.tool
        )));
    }
    let transport = first.transport_name();
    let mut connections = vec![Arc::new(first)];
    if let TargetOptions::Http { url, headers } = &options.target {
        for _ in 1..options.connections {
            let more = crate::connect_http(url, headers.clone(), options.budget).await?;
            connections.push(Arc::new(more));
        }
    }
    let mut recording = generate(&connections, &call, &plan).await;
    // The trial call was served just before the start: it counts towards the burst.
    recording.served_sent_micros.insert(0, 0);
    for connection in connections {
        if let Ok(mut connection) = Arc::try_unwrap(connection) {
            connection.shutdown().await;
        }
    }
    let facts = RunFacts {
        target: &address,
        transport,
        call: &call,
        plan: &plan,
        connections: options.connections,
        expected_per_second: options.expected_per_second,
        expected_burst: options.expected_burst,
    };
    Ok(summary::summarise(&facts, &recording))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rate: f64, ramp_to: Option<f64>, seconds: u64) -> LoadPlan {
        LoadPlan {
            rate,
            ramp_to,
            duration: Duration::from_secs(seconds),
            max_in_flight: 100,
            latency_budget: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_constant_rate_spaces_calls_evenly() {
        let plan = plan(100.0, None, 10);
        assert_eq!(plan.total_calls(), 1_000);
        assert!((plan.intended_offset(50) - 0.5).abs() < 1e-9);
        assert!((plan.intended_offset(999) - 9.99).abs() < 1e-9);
    }

    #[test]
    fn a_ramp_offers_the_area_under_it_and_ends_on_time() {
        let plan = plan(100.0, Some(300.0), 10);
        assert_eq!(plan.total_calls(), 2_000);
        assert!((plan.intended_offset(2_000) - 10.0).abs() < 1e-6);
        // Calls come faster as the rate climbs: the first half of the calls takes longer
        // than the second.
        let half = plan.intended_offset(1_000);
        assert!(half > 5.0 && half < 10.0, "{half}");
        assert!((plan.rate_at(5.0) - 200.0).abs() < 1e-9);
        // A ramp down too.
        let down = LoadPlan {
            rate: 300.0,
            ramp_to: Some(100.0),
            ..plan.clone()
        };
        assert!((down.intended_offset(2_000) - 10.0).abs() < 1e-6);
        let mut last = 0.0;
        for index in (0..2_000).step_by(100) {
            let offset = down.intended_offset(index);
            assert!(offset >= last);
            last = offset;
        }
    }

    #[test]
    fn plans_out_of_bounds_are_refused() {
        assert!(plan(0.0, None, 1).checked().is_err());
        assert!(plan(f64::NAN, None, 1).checked().is_err());
        assert!(plan(1.0, Some(-1.0), 1).checked().is_err());
        assert!(plan(1.0, None, 0).checked().is_err());
        assert!(plan(1.0, None, 601).checked().is_err());
        assert!(
            plan(MAX_RATE, None, 600).checked().is_err(),
            "too many calls"
        );
        assert!(plan(1_000.0, None, 10).checked().is_ok());
    }

    #[test]
    fn only_loopback_urls_are_loaded() {
        for url in [
            "http://127.0.0.1:8080/mcp",
            "http://127.3.2.1/mcp",
            "http://[::1]:9/mcp",
            "http://localhost:3000/mcp",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "http://10.0.0.1/mcp",
            "https://example.com/mcp",
            "http://127.0.0.1.example.com/",
            "not a url",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }

    #[test]
    fn answers_are_served_refused_or_failed() {
        let served: Result<Reply, TargetError> = Ok(Reply::Result(json!({"content": []})));
        assert_eq!(Fate::of(&served), Fate::Served);
        let tool_error = Ok(Reply::Result(json!({"isError": true, "content": []})));
        assert_eq!(Fate::of(&tool_error), Fate::Failed);
        let too_many = Err(TargetError::HttpStatus {
            status: 429,
            body: String::new(),
            retry_after: Some(1),
        });
        assert_eq!(Fate::of(&too_many), Fate::Refused);
        let limited = Ok(Reply::Result(json!({
            "isError": true,
            "content": [{"type": "text", "text": "rate limit exceeded; retry after 50 ms"}]
        })));
        assert_eq!(Fate::of(&limited), Fate::Refused);
        let timeout = Err(TargetError::Timeout(Duration::from_secs(1)));
        assert_eq!(Fate::of(&timeout), Fate::Failed);
    }
}
