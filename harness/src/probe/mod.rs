//! The probe engine: a registry of probes, each with a stable id, and the context they run in.
//!
//! A probe family is a module with a `PROBES` table (what each probe is, what it enforces, how
//! to fix a failure) and a `run` function that makes the calls and returns one [`Outcome`] per
//! probe. Verdicts follow one rule: `fail` only when an oracle confirms the finding (a canary in
//! a reply, a proof file created, a listener hit, a status code the spec forbids); weaker
//! signals are `inconclusive`; a probe with nothing to attack is `not-applicable`.
//!
//! Every exchange goes through [`Run`], which records it (bounded) for the passive leak scan
//! and stops the run when the target stops answering.

pub mod http;
pub mod inject;
pub mod jwt;
pub mod leak;
pub mod proto;
pub mod rate;
pub mod resource;
pub mod ssrf;
pub mod timing;
pub mod trav;

use crate::connection::{Connection, Reply, TargetError, excerpt};
use crate::discover::ToolInfo;
use crate::oracle::leak::decoded_strings;
use crate::stage::Stage;
use serde_json::{Value, json};
use std::time::Instant;

/// Probe families, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Family {
    #[serde(rename = "TRAV")]
    Trav,
    #[serde(rename = "INJ-CMD")]
    InjCmd,
    #[serde(rename = "INJ-ARG")]
    InjArg,
    #[serde(rename = "INJ-SQL")]
    InjSql,
    #[serde(rename = "SSRF")]
    Ssrf,
    #[serde(rename = "TRANS")]
    Trans,
    #[serde(rename = "AUTH")]
    Auth,
    #[serde(rename = "TIME")]
    Time,
    #[serde(rename = "RATE")]
    Rate,
    #[serde(rename = "RES")]
    Res,
    #[serde(rename = "LEAK")]
    Leak,
    #[serde(rename = "PROTO")]
    Proto,
}

impl Family {
    pub const ALL: [Family; 12] = [
        Family::Trav,
        Family::InjCmd,
        Family::InjArg,
        Family::InjSql,
        Family::Ssrf,
        Family::Trans,
        Family::Auth,
        Family::Time,
        Family::Rate,
        Family::Res,
        Family::Leak,
        Family::Proto,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Trav => "TRAV",
            Family::InjCmd => "INJ-CMD",
            Family::InjArg => "INJ-ARG",
            Family::InjSql => "INJ-SQL",
            Family::Ssrf => "SSRF",
            Family::Trans => "TRANS",
            Family::Auth => "AUTH",
            Family::Time => "TIME",
            Family::Rate => "RATE",
            Family::Res => "RES",
            Family::Leak => "LEAK",
            Family::Proto => "PROTO",
        }
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What a probe is. Ids are stable once published.
#[derive(Debug, serde::Serialize)]
pub struct ProbeInfo {
    pub id: &'static str,
    pub family: Family,
    pub title: &'static str,
    pub severity: Severity,
    pub cwe: Option<u32>,
    /// The practice or specification sentence the probe enforces.
    pub enforces: &'static str,
    pub remediation: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
    NotApplicable,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotApplicable => "not-applicable",
        }
    }
}

/// What proved (or suggested) a finding: the request, the start of the reply, and the oracle.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    pub request: String,
    pub reply: String,
    /// The canary or signal that decided the verdict.
    pub oracle: String,
}

/// One probe's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    #[serde(serialize_with = "serialize_probe_id")]
    pub probe: &'static ProbeInfo,
    pub verdict: Verdict,
    /// One sentence: what was tried and what was seen.
    pub summary: String,
    pub evidence: Vec<Evidence>,
}

fn serialize_probe_id<S: serde::Serializer>(
    probe: &&'static ProbeInfo,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(probe.id)
}

impl Outcome {
    pub fn new(probe: &'static ProbeInfo, verdict: Verdict, summary: impl Into<String>) -> Self {
        Self {
            probe,
            verdict,
            summary: summary.into(),
            evidence: Vec::new(),
        }
    }

    pub fn with_evidence(mut self, evidence: Vec<Evidence>) -> Self {
        self.evidence = evidence;
        self
    }
}

/// Every probe the harness knows, across families.
pub fn registry() -> Vec<&'static ProbeInfo> {
    [
        trav::PROBES,
        inject::PROBES,
        ssrf::PROBES,
        http::PROBES,
        jwt::PROBES,
        timing::PROBES,
        rate::PROBES,
        resource::PROBES,
        leak::PROBES,
        proto::PROBES,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Looks up a probe by id.
pub fn probe(id: &str) -> &'static ProbeInfo {
    registry()
        .into_iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("unknown probe id {id}"))
}

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A few payloads per parameter.
    Quick,
    /// Every payload against every matching parameter.
    Standard,
    /// Standard, plus payloads against parameters of every string kind.
    Deep,
}

/// One recorded exchange, for the passive leak scan.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: String,
    pub reply: String,
}

/// What a tool call produced.
#[derive(Debug, Clone)]
pub struct CallResult {
    pub request: String,
    pub reply: Result<Reply, TargetError>,
}

impl CallResult {
    /// The decoded text of the reply (string leaves of a result, or the error), or the
    /// transport error.
    pub fn text(&self) -> String {
        match &self.reply {
            Ok(Reply::Result(value)) => decoded_strings(value),
            Ok(reply) => reply.text(),
            Err(error) => format!("transport: {error}"),
        }
    }

    pub fn evidence(&self, tool: &str, oracle: impl Into<String>) -> Evidence {
        Evidence {
            tool: Some(tool.to_owned()),
            request: excerpt(&self.request, 600),
            reply: excerpt(&self.text(), 600),
            oracle: oracle.into(),
        }
    }
}

const MAX_TRANSCRIPT: usize = 5000;
const TRANSCRIPT_REPLY_BYTES: usize = 16 * 1024;

/// The context probes run in.
pub struct Run<'a> {
    pub connection: &'a mut Connection,
    pub stage: &'a Stage,
    pub tools: &'a [ToolInfo],
    pub profile: Profile,
    pub transcript: Vec<Exchange>,
    /// The user's credential, when given (`Authorization` header value), for AUTH and TIME.
    pub authorization: Option<String>,
    pub deadline: Instant,
    consecutive_timeouts: u32,
    pub calls: u64,
    /// Requests during which the target exited (each is restarted, up to a limit).
    pub crashes: Vec<Evidence>,
    /// What baseline arguments point at (the sandbox, for stdio targets).
    pub baselines: crate::discover::Baselines,
    /// How long one request may take (families with their own clients use it).
    pub request_timeout: std::time::Duration,
    /// Where a family states something the user should know before it goes on (for example
    /// how long `--profile deep` will take).
    pub notices: Option<&'a (dyn Fn(&str) + Send + Sync)>,
    /// The probes `--only` / `--skip` left in; families whose probes are costly skip the work of
    /// those left out (the rest run whole and their outcomes are filtered afterwards).
    pub selected_ids: Vec<&'static str>,
    /// Wait and retry when the target refuses a call for its rate limit (on by default; the
    /// RATE family turns it off to see the refusals).
    pub back_off_when_limited: bool,
    /// How many calls were retried after a rate-limit refusal.
    pub rate_limited_retries: u64,
    /// Whether exchanges go into the transcript; floods turn it off after their first calls,
    /// so that thousands of identical exchanges do not crowd out the rest of the run.
    pub recording: bool,
}

/// Most retries of one call refused by a rate limit.
pub const MAX_RATE_LIMIT_RETRIES: u32 = 20;
/// The longest the harness waits before retrying a rate-limited call.
pub const MAX_RATE_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// When `reply` is a rate-limit refusal, how long to wait before asking again: HTTP 429 (its
/// `Retry-After`), a JSON-RPC error with code -32029 or a message about a rate limit (its
/// `data.retry_after_ms` or `data.retry_after` seconds), or an `isError` result saying so.
/// Capped at [`MAX_RATE_LIMIT_WAIT`]; one second when the target does not say.
pub fn rate_limit_wait(reply: &Result<Reply, TargetError>) -> Option<std::time::Duration> {
    use std::time::Duration;
    let says_rate_limit = |text: &str| {
        let lower = text.to_ascii_lowercase();
        lower.contains("rate limit") || lower.contains("too many requests")
    };
    let wait = match reply {
        Err(TargetError::HttpStatus {
            status: 429,
            retry_after,
            ..
        }) => Duration::from_secs(retry_after.unwrap_or(1)),
        Ok(Reply::Error {
            code,
            message,
            data,
        }) if *code == -32029 || says_rate_limit(message) => {
            let data = data.as_ref();
            data.and_then(|d| d.get("retry_after_ms")?.as_u64())
                .map(Duration::from_millis)
                .or_else(|| {
                    data.and_then(|d| d.get("retry_after")?.as_f64())
                        .map(|s| Duration::from_secs_f64(s.clamp(0.0, 60.0)))
                })
                .unwrap_or(Duration::from_secs(1))
        }
        Ok(Reply::Result(value))
            if value.get("isError") == Some(&Value::Bool(true))
                && says_rate_limit(&decoded_strings(value))
                && decoded_strings(value).len() < 300 =>
        {
            Duration::from_secs(1)
        }
        _ => return None,
    };
    Some(wait.clamp(Duration::from_millis(10), MAX_RATE_LIMIT_WAIT))
}

impl<'a> Run<'a> {
    pub fn new(
        connection: &'a mut Connection,
        stage: &'a Stage,
        tools: &'a [ToolInfo],
        profile: Profile,
        authorization: Option<String>,
        deadline: Instant,
    ) -> Self {
        let connection_is_stdio = connection.is_stdio();
        Self {
            connection,
            stage,
            tools,
            profile,
            transcript: Vec::new(),
            authorization,
            deadline,
            consecutive_timeouts: 0,
            calls: 0,
            crashes: Vec::new(),
            baselines: crate::discover::Baselines {
                sandbox: connection_is_stdio.then(|| stage.sandbox.to_string_lossy().into_owned()),
            },
            request_timeout: crate::connection::Budget::default().request_timeout,
            notices: None,
            selected_ids: registry().iter().map(|info| info.id).collect(),
            back_off_when_limited: true,
            rate_limited_retries: 0,
            recording: true,
        }
    }

    /// Whether the user's selection includes the probe `id`.
    pub fn wants(&self, id: &str) -> bool {
        self.selected_ids.contains(&id)
    }

    pub fn budget_timeout(&self) -> std::time::Duration {
        self.request_timeout
    }

    /// Tells the user something now (on stderr, by the binary), not only in the report.
    pub fn notice(&self, message: &str) {
        if let Some(notices) = self.notices {
            notices(message);
        }
    }

    /// False once the run's deadline has passed or the target stopped answering three times in
    /// a row: families then skip their remaining calls.
    pub fn can_continue(&self) -> bool {
        Instant::now() < self.deadline && self.consecutive_timeouts < 3
    }

    pub fn record(&mut self, request: &str, reply: &str) {
        if self.recording && self.transcript.len() < MAX_TRANSCRIPT {
            self.transcript.push(Exchange {
                request: request.to_owned(),
                reply: excerpt(reply, TRANSCRIPT_REPLY_BYTES),
            });
        }
    }

    /// Calls `tool` with its baseline arguments and `param` set to `value`: one payload in an
    /// otherwise valid call.
    pub async fn call_with(&mut self, tool: &str, param: &str, value: Value) -> CallResult {
        let arguments = match self.tools.iter().find(|t| t.name == tool) {
            Some(info) => crate::discover::arguments_with(info, param, value, &self.baselines),
            None => json!({ param: value }),
        };
        self.call_tool(tool, arguments).await
    }

    /// Calls a tool and records the exchange.
    pub async fn call_tool(&mut self, tool: &str, arguments: Value) -> CallResult {
        let params = json!({"name": tool, "arguments": arguments});
        self.request("tools/call", params).await
    }

    /// Sends any request and records the exchange.
    pub async fn request(&mut self, method: &str, params: Value) -> CallResult {
        let request = json!({"method": method, "params": params}).to_string();
        if !self.can_continue() {
            return CallResult {
                request,
                reply: Err(TargetError::Timeout(std::time::Duration::ZERO)),
            };
        }
        self.calls += 1;
        let mut reply = self.connection.request(method, Some(params.clone())).await;
        // A rate-limit refusal answers nothing the probe asked: wait as told and ask again, so
        // that no verdict rests on a refusal by the limiter (bounded by the run's deadline).
        let mut retries = 0;
        while self.back_off_when_limited
            && retries < MAX_RATE_LIMIT_RETRIES
            && let Some(wait) = rate_limit_wait(&reply)
        {
            if Instant::now() + wait >= self.deadline {
                break;
            }
            retries += 1;
            self.rate_limited_retries += 1;
            tokio::time::sleep(wait).await;
            self.calls += 1;
            reply = self.connection.request(method, Some(params.clone())).await;
        }
        match &reply {
            Err(TargetError::Timeout(_)) => self.consecutive_timeouts += 1,
            Err(TargetError::Closed(detail)) => {
                self.crashes.push(Evidence {
                    tool: None,
                    request: excerpt(&request, 600),
                    reply: excerpt(
                        &format!("{detail}; stderr: {}", self.connection.stderr_tail()),
                        600,
                    ),
                    oracle: "the target exited while handling this request".into(),
                });
                // A dead stdio target is restarted so the run goes on (a bounded number of times).
                if !self.connection.is_stdio() || self.connection.restart().await.is_err() {
                    self.consecutive_timeouts = u32::MAX;
                }
            }
            _ => self.consecutive_timeouts = 0,
        }
        let result = CallResult { request, reply };
        let text = result.text();
        self.record(&result.request, &text);
        result
    }
}

/// The verdict rule every oracle-backed probe follows: any evidence is a failure; no answer to
/// any payload is inconclusive; otherwise a pass that says how much was tried.
pub fn oracle_outcome(
    info: &'static ProbeInfo,
    evidence: Vec<Evidence>,
    answered: usize,
    confirmed_by: &str,
    pass_summary: String,
) -> Outcome {
    if !evidence.is_empty() {
        Outcome::new(
            info,
            Verdict::Fail,
            format!("{}: {confirmed_by}", info.title),
        )
        .with_evidence(evidence)
    } else if answered == 0 {
        Outcome::new(
            info,
            Verdict::Inconclusive,
            "the target answered none of the payloads",
        )
    } else {
        Outcome::new(info, Verdict::Pass, pass_summary)
    }
}

impl Run<'_> {
    /// Every (tool, parameter) pair whose parameter is of one of `kinds`.
    pub fn targets(&self, kinds: &[crate::discover::ParamKind]) -> Vec<(String, String)> {
        self.tools
            .iter()
            .flat_map(|tool| {
                tool.params_of(kinds)
                    .map(move |p| (tool.name.clone(), p.name.clone()))
            })
            .collect()
    }
}
