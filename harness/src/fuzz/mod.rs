//! `mcp-harness fuzz`: schema-driven inputs against every tool, prompt and resource template,
//! judged by named checks, each failure shrunk to a small input and given a reproduction.
//!
//! For each target of the discovery (tools, and the prompts and templates the discovery turns
//! into synthesised tools), cases `0..cases` come from [`cases::case`]: deterministic in the
//! seed, the target's name and the case number, so `--seed S --replay TOOL#N` runs one case
//! again. Each answer is judged by the checks below, each a probe of the family `FUZZ` in the
//! ordinary report (so every report format and exit status of `certify` applies):
//!
//! - FUZZ-SERVER-ERROR: no input gets -32603 (internal error), an HTTP 5xx, or a tool error in
//!   a language runtime's own words for an unhandled exception ([`crate::oracle::exception`]:
//!   the TypeScript SDK and FastMCP answer a throwing tool with `isError: true` and the
//!   exception's message). An input the schema refuses must be answered -32602 or
//!   `isError: true`; one it allows must be served or refused as a tool error. Either way an
//!   unhandled exception is a bug the input reached.
//! - FUZZ-VALID-REFUSED: an input the schema allows is not refused as malformed (-32602).
//! - FUZZ-TIMEOUT: every call is answered within the per-call budget.
//! - FUZZ-ALIVE: the target answers a ping after a call it did not answer, and at the end.
//! - FUZZ-LEAK: no reply carries a stack trace, database error text, a planted secret, a URL
//!   with a password or an internal path (the LEAK scanner; text the input itself carried is a
//!   reflection and never counts).
//! - FUZZ-ATTACK: the attack families' confirming oracles: the outside canary's content in a
//!   reply, the stage's listener hit with the case's marker, the proof file created, and any
//!   open, read or write of the planted paths outside the sandbox (the access oracle: a read
//!   escape whose reply says nothing, a write escape).
//!
//! A failing case is shrunk ([`shrink`]): properties, items and characters are removed while
//! the same check still fails, at most [`MAX_SHRINK_CALLS`] calls per failure. The evidence
//! holds the smallest input as the JSON-RPC request to paste, and the replay flag.
//!
//! Bounds: `cases` per target, `max_calls` in all, `max_duration`; every call has the budget's
//! timeout. A target that dies is restarted (stdio) at most as often as the connection allows.

pub mod cases;
pub mod shrink;

use crate::connection::{Budget, Connection, Liveness, Reply, TargetError};
use crate::discover::{Discovery, ToolInfo};
use crate::oracle::leak::LeakScanner;
use crate::probe::{Evidence, Family, Outcome, ProbeInfo, Profile, Severity, Verdict};
use crate::report::{Report, RunFacts, TargetSummary};
use crate::stage::Stage;
use crate::{HarnessError, StageOptions, TargetOptions};
use cases::{Case, Targets};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Shrinking stops after this many calls for one failure.
pub const MAX_SHRINK_CALLS: usize = 64;

const FUZZ: Family = Family::named("FUZZ");
const PRACTICE: &str = "Input validation: every tool validates its arguments and fails safely on any input (MCP security best practices; CWE-20)";

pub static FUZZ_SERVER_ERROR: ProbeInfo = ProbeInfo {
    id: "FUZZ-SERVER-ERROR",
    family: FUZZ,
    title: "an input makes the server fail with an internal error",
    severity: Severity::Medium,
    cwe: Some(20),
    enforces: PRACTICE,
    remediation: "Validate arguments before use and turn every failure of a tool into -32602 (bad arguments) or a result with isError: true; an unhandled exception answered -32603 or HTTP 500 means an input reached code that did not expect it.",
};
pub static FUZZ_VALID_REFUSED: ProbeInfo = ProbeInfo {
    id: "FUZZ-VALID-REFUSED",
    family: FUZZ,
    title: "an input the tool's schema allows is refused as malformed",
    severity: Severity::Low,
    cwe: Some(20),
    enforces: PRACTICE,
    remediation: "Make the input schema say what the tool accepts: a client that builds calls from the schema gets -32602 for arguments the schema allows.",
};
pub static FUZZ_TIMEOUT: ProbeInfo = ProbeInfo {
    id: "FUZZ-TIMEOUT",
    family: FUZZ,
    title: "an input gets no answer within the time budget",
    severity: Severity::Medium,
    cwe: Some(400),
    enforces: PRACTICE,
    remediation: "Bound every tool's work (size checks before work, timeouts) so that any input is answered promptly.",
};
pub static FUZZ_ALIVE: ProbeInfo = ProbeInfo {
    id: "FUZZ-ALIVE",
    family: FUZZ,
    title: "an input kills or wedges the server",
    severity: Severity::High,
    cwe: Some(248),
    enforces: PRACTICE,
    remediation: "Catch failures per request: no input may end the process or stop it answering.",
};
pub static FUZZ_LEAK: ProbeInfo = ProbeInfo {
    id: "FUZZ-LEAK",
    family: FUZZ,
    title: "an input makes a reply disclose internals",
    severity: Severity::Medium,
    cwe: Some(209),
    enforces: "Secure error handling: errors never reveal stack traces, paths, queries or secrets (MCP security best practices; CWE-209)",
    remediation: "Answer failures with a generic message and log the details on the server.",
};
pub static FUZZ_ATTACK: ProbeInfo = ProbeInfo {
    id: "FUZZ-ATTACK",
    family: FUZZ,
    title: "a fuzzed attack payload reached its target (canary, listener or proof file)",
    severity: Severity::High,
    cwe: Some(20),
    enforces: PRACTICE,
    remediation: "See the certify family whose oracle fired (TRAV, SSRF, INJ) for the fix.",
};

/// The checks, in report order.
pub static CHECKS: &[&ProbeInfo] = &[
    &FUZZ_SERVER_ERROR,
    &FUZZ_VALID_REFUSED,
    &FUZZ_TIMEOUT,
    &FUZZ_ALIVE,
    &FUZZ_LEAK,
    &FUZZ_ATTACK,
];

/// What a fuzz run does.
pub struct FuzzOptions {
    pub target: TargetOptions,
    pub stage: StageOptions,
    pub budget: Budget,
    pub seed: u64,
    /// Cases per tool.
    pub cases: u64,
    /// Calls in all (cases, shrinking, pings).
    pub max_calls: u64,
    pub max_duration: Duration,
    /// Only this target, and only this case of it (`TOOL#N`).
    pub replay: Option<(String, u64)>,
    /// Exit 1 when a check at or above this severity fails.
    pub fail_on: Severity,
    /// The command line that reproduces the run, for the replay hint (`mcp-harness fuzz ...`).
    pub command_line: String,
}

/// One failure: the check, where, the case and what was seen.
#[derive(Debug, Clone)]
struct Failure {
    check: &'static ProbeInfo,
    tool: String,
    index: u64,
    arguments: Value,
    reply: String,
    oracle: String,
}

/// The answer to one call, as the checks see it.
struct Answer {
    reply: Result<Reply, TargetError>,
    /// The decoded text of the reply (or the error).
    text: String,
    /// Still a rate-limit refusal after waiting it out: the tool never saw the input, so no
    /// check may judge it.
    limited: bool,
}

struct Fuzzer<'a> {
    connection: &'a mut Connection,
    stage: &'a Stage,
    scanner: LeakScanner,
    calls: u64,
    rate_limited_retries: u64,
    max_calls: u64,
    deadline: Instant,
    /// Listener hits already judged, by case marker: only a new hit is this attempt's doing.
    hits_seen: std::collections::HashMap<String, usize>,
}

impl Fuzzer<'_> {
    fn out_of_budget(&self) -> bool {
        self.calls >= self.max_calls || Instant::now() >= self.deadline
    }

    /// Calls `tool`; a rate-limit refusal is waited out and the call sent again (at most
    /// [`crate::probe::MAX_RATE_LIMIT_RETRIES`] times, within the deadline).
    async fn call(&mut self, tool: &str, arguments: &Value) -> Answer {
        let (method, params) = crate::surface::request_for(tool, arguments.clone());
        let mut retries = 0;
        let (reply, limited) = loop {
            self.calls += 1;
            let reply = self.connection.request(method, Some(params.clone())).await;
            let Some(wait) = crate::oracle::refusal::explicit_wait(&reply) else {
                break (reply, false);
            };
            if retries >= crate::probe::MAX_RATE_LIMIT_RETRIES
                || Instant::now() + wait >= self.deadline
            {
                break (reply, true);
            }
            retries += 1;
            self.rate_limited_retries += 1;
            tokio::time::sleep(wait).await;
        };
        let text = match &reply {
            Ok(Reply::Result(value)) => crate::oracle::leak::decoded_strings(value),
            Ok(Reply::Error { message, data, .. }) => format!(
                "{message}\n{}",
                data.as_ref()
                    .map(crate::oracle::leak::decoded_strings)
                    .unwrap_or_default()
            ),
            Err(error) => error.to_string(),
        };
        Answer {
            reply,
            text,
            limited,
        }
    }

    /// Every check this answer fails, with what decided each (a call that got no answer fails
    /// only the transport's check: nothing else can be judged).
    async fn judge(
        &mut self,
        case: &Case,
        schema_valid: Option<bool>,
        answer: &Answer,
        marker: &str,
    ) -> Vec<(&'static ProbeInfo, String)> {
        if answer.limited {
            return Vec::new();
        }
        let mut failed = Vec::new();
        let request = case.arguments.to_string();
        match &answer.reply {
            Err(TargetError::Timeout(budget)) => {
                let alive = self.alive().await;
                return vec![if alive {
                    (
                        &FUZZ_TIMEOUT,
                        format!("no answer within {} ms", budget.as_millis()),
                    )
                } else {
                    (
                        &FUZZ_ALIVE,
                        "no answer, and then no answer to a ping".into(),
                    )
                }];
            }
            Err(TargetError::HttpStatus { status, .. }) if *status >= 500 => {
                return vec![(&FUZZ_SERVER_ERROR, format!("HTTP {status}"))];
            }
            Err(TargetError::Closed(why)) => {
                return vec![(
                    &FUZZ_ALIVE,
                    format!("the target closed the connection ({why})"),
                )];
            }
            Ok(Reply::Error { code: -32603, .. }) => {
                failed.push((
                    &FUZZ_SERVER_ERROR,
                    "answered -32603 (internal error)".into(),
                ));
            }
            Ok(Reply::Error { code: -32602, .. }) if schema_valid == Some(true) => {
                failed.push((
                    &FUZZ_VALID_REFUSED,
                    "answered -32602 for arguments the schema allows".into(),
                ));
            }
            _ => {}
        }
        if let Ok(reply) = &answer.reply
            && is_tool_error(reply)
            && let Some((runtime, phrase)) =
                crate::oracle::exception::unhandled_exception(&answer.text)
            && !request.contains(phrase)
        {
            failed.push((
                &FUZZ_SERVER_ERROR,
                format!("answered with an unhandled {runtime} ({phrase:?})"),
            ));
        }
        let canaries = &self.stage.canaries;
        if answer.text.contains(&canaries.file_text)
            || answer.text.contains(&canaries.commit_message)
        {
            failed.push((
                &FUZZ_ATTACK,
                "the outside canary's content is in the reply".into(),
            ));
        }
        let hits = self
            .stage
            .listener
            .as_ref()
            .map_or(0, |listener| listener.hits_containing(marker).len());
        let seen = self.hits_seen.insert(marker.to_owned(), hits).unwrap_or(0);
        if hits > seen {
            failed.push((
                &FUZZ_ATTACK,
                format!("the stage's listener was called with {marker}"),
            ));
        }
        // The access oracle: any open, read or write of the planted paths outside the sandbox
        // since the last call (a read escape whose reply carries nothing, a write escape).
        let touches = self.stage.drain_touches();
        let proof = self.stage.outside.join(marker);
        if let Some(touch) = touches.iter().find(|t| t.path != proof) {
            failed.push((&FUZZ_ATTACK, touch.describe()));
        }
        // Removed once seen, so that each shrinking attempt must create it anew; the harness's
        // own deletion is drained at once, so that it is never taken for the target's.
        if std::fs::remove_file(&proof).is_ok() {
            failed.push((&FUZZ_ATTACK, format!("the proof file {marker} was created")));
            let _ = self.stage.drain_touches();
        }
        if let Some(leak) = self.scanner.scan(&answer.text, &request).into_iter().next() {
            failed.push((&FUZZ_LEAK, format!("{:?}: {}", leak.kind, leak.matched)));
        }
        failed
    }

    async fn alive(&mut self) -> bool {
        self.calls += 1;
        match self.connection.liveness().await {
            Liveness::Alive => true,
            Liveness::Dead(_) => {
                if self.connection.is_stdio() {
                    let _ = self.connection.restart().await;
                }
                false
            }
        }
    }
}

/// Whether `reply` is an error: a JSON-RPC error or a tool result with `isError: true`.
fn is_tool_error(reply: &Reply) -> bool {
    match reply {
        Reply::Error { .. } => true,
        Reply::Result(result) => result.get("isError") == Some(&Value::Bool(true)),
    }
}

/// The marker a hostile case of `index` carries in its URL or proof file name.
fn marker(index: u64) -> String {
    format!("case{index}")
}

/// The stage's targets for the hostile cases, for case `index` (its proof file is its own).
fn targets_for(stage: &Stage, index: u64) -> Targets {
    let proof = stage.outside.join(marker(index));
    Targets {
        evil_relative: stage.relative_evil_secret(),
        outside_relative: stage.relative_outside_canary(),
        outside_absolute: stage.outside.join("canary.txt").display().to_string(),
        listener_url: stage.listener.as_ref().map(|l| l.url()),
        proof_command: format!("touch {}", proof.display()),
    }
}

/// Runs the fuzz campaign and returns its report.
pub async fn fuzz(options: FuzzOptions) -> Result<Report, HarnessError> {
    let started = Instant::now();
    let stage = Stage::new(options.stage.sandbox.as_deref()).await?;
    let (mut connection, address) =
        crate::open_target(&options.target, &options.stage, &stage, options.budget).await?;
    let discovery = crate::discover::discover(&mut connection).await?;
    if let Some((name, _)) = &options.replay
        && !discovery.tools.iter().any(|t| t.name == *name)
    {
        connection.shutdown().await;
        return Err(HarnessError::Usage(format!(
            "--replay names {name:?}, which the target does not list (its tools, prompts and templates are in the report's tools line)"
        )));
    }
    let secrets: Vec<String> = stage
        .canaries
        .secrets()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let allowed = [
        stage.sandbox.to_string_lossy().into_owned(),
        stage.base().to_string_lossy().into_owned(),
        stage.evil.to_string_lossy().into_owned(),
    ];
    let mut fuzzer = Fuzzer {
        connection: &mut connection,
        stage: &stage,
        scanner: LeakScanner::new(secrets, allowed),
        calls: 0,
        rate_limited_retries: 0,
        max_calls: options.max_calls,
        hits_seen: Default::default(),
        deadline: started + options.max_duration,
    };
    let mut failures: Vec<Failure> = Vec::new();
    let mut answered = 0u64;
    let mut points_reached = 0usize;
    // Targets at least one case reached (the coverage line's "accepted a call").
    let mut reached_tools = 0usize;
    for tool in &discovery.tools {
        if let Some((only, _)) = &options.replay
            && *only != tool.name
        {
            continue;
        }
        let by_tool = fuzz_tool(&mut fuzzer, tool, &options, &mut failures).await;
        if by_tool > 0 {
            points_reached += tool.points.len();
            reached_tools += 1;
        }
        answered += by_tool;
        if fuzzer.out_of_budget() {
            break;
        }
    }
    if !fuzzer.alive().await {
        failures.push(Failure {
            check: &FUZZ_ALIVE,
            tool: String::new(),
            index: 0,
            arguments: json!({}),
            reply: String::new(),
            oracle: "the target did not answer a ping at the end".into(),
        });
    }
    let calls = fuzzer.calls;
    let fuzzer_stopped = fuzzer.out_of_budget();
    let rate_limited_retries = fuzzer.rate_limited_retries;
    let outcomes = outcomes(&failures, &options, answered);
    let target = TargetSummary::of(&connection, address);
    let observations = connection.observations();
    connection.shutdown().await;
    let mut coverage = coverage(&discovery, reached_tools, answered, points_reached);
    coverage.families.push(crate::coverage::FamilyReach {
        family: FUZZ,
        points_attacked: coverage.points,
        points_reached,
        calls,
        stopped: fuzzer_stopped.then(|| "the run's call or time budget ran out".to_owned()),
    });
    let facts = RunFacts {
        target,
        profile: Profile::Standard,
        fail_on: options.fail_on,
        duration_ms: started.elapsed().as_millis() as u64,
        calls,
        rate_limited_retries,
        discovery,
        observations,
        coverage,
    };
    let mut report = Report::new(facts, &outcomes);
    report.command = "fuzz";
    Ok(report)
}

/// Fuzzes one tool; returns how many of its cases reached the tool: answered with a result
/// (served, or a tool error the tool itself returned). A JSON-RPC error (-32602 from argument
/// validation, a refusal), a rate-limit refusal or a lost call reached nothing, and no pass
/// may rest on those alone.
async fn fuzz_tool(
    fuzzer: &mut Fuzzer<'_>,
    tool: &ToolInfo,
    options: &FuzzOptions,
    failures: &mut Vec<Failure>,
) -> u64 {
    let schema = tool.schema.clone();
    let bases = schema
        .as_deref()
        .map(cases::bases)
        .unwrap_or_else(|| vec![json!({})]);
    let indices: Vec<u64> = match &options.replay {
        Some((_, index)) => vec![*index],
        None => (0..options.cases).collect(),
    };
    let mut answered = 0;
    for index in indices {
        if fuzzer.out_of_budget() {
            break;
        }
        let targets = targets_for(fuzzer.stage, index);
        let case = cases::case(
            options.seed,
            &tool.name,
            index,
            &bases,
            schema.as_deref(),
            &targets,
        );
        // A prompt's or template's schema is the harness's own (strings): only a tool's own
        // schema says what it allows.
        let schema_valid = schema
            .as_deref()
            .filter(|_| tool.is_tool())
            .and_then(|s| case.schema_valid(s));
        let answer = fuzzer.call(&tool.name, &case.arguments).await;
        if !answer.limited && matches!(answer.reply, Ok(Reply::Result(_))) {
            answered += 1;
        }
        let marker = marker(index);
        for (check, oracle) in fuzzer.judge(&case, schema_valid, &answer, &marker).await {
            // One failure per check and tool: the first, shrunk.
            if failures
                .iter()
                .any(|f| f.check.id == check.id && f.tool == tool.name)
            {
                continue;
            }
            let (arguments, reply, oracle) = shrink_failure(
                fuzzer,
                tool,
                &case,
                check,
                (answer.text.clone(), oracle),
                schema.as_deref(),
                &marker,
            )
            .await;
            failures.push(Failure {
                check,
                tool: tool.name.clone(),
                index,
                arguments,
                reply,
                oracle,
            });
        }
    }
    answered
}

/// Shrinks a failing case: a candidate is kept while it fails the same check.
async fn shrink_failure(
    fuzzer: &mut Fuzzer<'_>,
    tool: &ToolInfo,
    case: &Case,
    check: &'static ProbeInfo,
    seen: (String, String),
    schema: Option<&crate::schema::Schema>,
    marker: &str,
) -> (Value, String, String) {
    let (mut reply, mut oracle) = seen;
    let mut current = case.arguments.clone();
    let mut calls = 0;
    'outer: loop {
        for candidate in shrink::candidates(&current) {
            if calls >= MAX_SHRINK_CALLS || fuzzer.out_of_budget() {
                break 'outer;
            }
            calls += 1;
            let attempt = Case {
                kind: case.kind,
                arguments: candidate,
                change: String::new(),
            };
            let valid = schema
                .filter(|_| tool.is_tool())
                .and_then(|s| attempt.schema_valid(s));
            let answer = fuzzer.call(&tool.name, &attempt.arguments).await;
            if let Some((_, said)) = fuzzer
                .judge(&attempt, valid, &answer, marker)
                .await
                .into_iter()
                .find(|(again, _)| again.id == check.id)
            {
                current = attempt.arguments;
                reply = answer.text;
                oracle = said;
                continue 'outer;
            }
        }
        break;
    }
    (current, reply, oracle)
}

fn outcomes(failures: &[Failure], options: &FuzzOptions, answered: u64) -> Vec<Outcome> {
    CHECKS
        .iter()
        .map(|check| {
            let failed: Vec<&Failure> =
                failures.iter().filter(|f| f.check.id == check.id).collect();
            if failed.is_empty() {
                let verdict = if answered == 0 {
                    Verdict::Inconclusive
                } else {
                    Verdict::Pass
                };
                let summary = if answered == 0 {
                    "no case reached a tool (every one was refused before it, or lost)".to_owned()
                } else {
                    format!(
                        "{answered} cases reached the tools (answered with a result), none failed this check (seed {})",
                        options.seed
                    )
                };
                return Outcome::new(check, verdict, summary);
            }
            let evidence = failed
                .iter()
                .map(|f| {
                    let (method, params) =
                        crate::surface::request_for(&f.tool, f.arguments.clone());
                    let request =
                        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
                    Evidence {
                        tool: (!f.tool.is_empty()).then(|| f.tool.clone()),
                        point: None,
                        request: request.to_string(),
                        reply: crate::connection::excerpt(&f.reply, 600),
                        oracle: format!(
                            "{}; replay: {} --seed {} --replay '{}#{}'",
                            f.oracle, options.command_line, options.seed, f.tool, f.index
                        ),
                    }
                })
                .collect();
            let first = failed[0];
            Outcome::new(
                check,
                Verdict::Fail,
                format!(
                    "{} on {} (case {} of seed {}, shrunk to {})",
                    first.oracle,
                    if first.tool.is_empty() {
                        "the server"
                    } else {
                        &first.tool
                    },
                    first.index,
                    options.seed,
                    crate::connection::excerpt(&first.arguments.to_string(), 200)
                ),
            )
            .with_evidence(evidence)
        })
        .collect()
}

fn coverage(
    discovery: &Discovery,
    reached_tools: usize,
    answered: u64,
    points_reached: usize,
) -> crate::coverage::Coverage {
    use crate::coverage::{Coverage, ReachVerdict};
    let points: usize = discovery.tools.iter().map(|t| t.points.len()).sum();
    Coverage {
        verdict: if answered == 0 {
            ReachVerdict::Nothing
        } else {
            ReachVerdict::Complete
        },
        tools: discovery.tools.len(),
        tools_with_accepted_baseline: reached_tools,
        refused_baselines: Vec::new(),
        schema_problems: Vec::new(),
        points,
        points_reached,
        points_unreached: points.saturating_sub(points_reached),
        surfaces: Vec::new(),
        families: Vec::new(),
        unreached: Vec::new(),
        advice: Vec::new(),
        access_oracle: "none",
        planted_path_touches: 0,
    }
}
