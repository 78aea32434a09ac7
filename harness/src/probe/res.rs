//! RES: does the target bound what one request can make it hold, and survive what it refuses?
//!
//! - RES-BODY-SIZE (HTTP): a 32 MB `tools/call` body. A refusal (413 or any 4xx, or the
//!   connection closed while the body was still being sent) passes; a 2xx means the server read
//!   and parsed all of it: the finding, confirmed by the status.
//! - RES-ARGUMENT-SIZE (stdio): a 16 MB string argument on one line. The child's process group
//!   is sampled for peak resident memory (`VmHWM`, Linux) before and after: growth of at least
//!   half the payload's size means the server buffered the whole request. The target must answer a
//!   ping afterwards.
//! - RES-KEY-GROWTH (stdio): up to 10,000 calls of a read-only tool, each with a distinct 1 KB
//!   value, within 10 s; the group's resident memory is sampled four times. Monotonic growth of
//!   at least 8 MB and 200 bytes per call means per-key state without a cap (a limiter or cache
//!   keyed on arguments).
//! - RES-DEEP-JSON (both): an argument nested 10,000 levels deep (100,000 with `deep`). Any
//!   answer or refusal passes; the finding is a crash or a target that stops answering
//!   (a recursive parser overflowing its stack: Python's `json` raises `RecursionError`).
//! - RES-CONCURRENT (both): 64 calls of a read-only tool sent at once (16 quick, 256 deep):
//!   pipelined on stdio, on separate connections over HTTP. Each must be answered or refused
//!   (a JSON-RPC error, 429, 503) within the request timeout, and the target must answer a ping
//!   afterwards. Calls left unanswered mean the target queues work without bound (no
//!   concurrency cap, no per-call timeout): one caller holds everyone else off.
//!
//! Cost: about 50 MB sent in all, three requests and three pings, plus RES-KEY-GROWTH's flood
//! (at most 10 s) and RES-CONCURRENT's burst (at most one request timeout); memory in the harness is bounded by the payloads it builds (one at a time).

use super::figure::{Figure, MAX_MEMORY_SAMPLES, MemorySample};
use super::{Evidence, FailureMode, Family, Outcome, ProbeInfo, Profile, Run, Severity, Verdict};
use crate::connection::{TargetError, excerpt};
use crate::discover::with_value_at;
use serde_json::{Value, json};

pub static RES_BODY_SIZE: ProbeInfo = ProbeInfo {
    id: "RES-BODY-SIZE",
    family: Family::RES,
    title: "a huge request body is refused before it is read",
    severity: Severity::Medium,
    cwe: Some(770),
    enforces: "MCP security best practices, resource limits: bound request size (refuse with 413)",
    remediation: "Cap the request body (e.g. 1 MB) at the HTTP layer, counting streamed bodies, and answer 413.",
};

pub static RES_ARGUMENT_SIZE: ProbeInfo = ProbeInfo {
    id: "RES-ARGUMENT-SIZE",
    family: Family::RES,
    title: "a huge message on stdio is not buffered whole",
    severity: Severity::Low,
    cwe: Some(770),
    enforces: "MCP security best practices, resource limits: bound message size",
    remediation: "Read stdin with a line-length cap and discard longer lines while streaming.",
};

pub static RES_KEY_GROWTH: ProbeInfo = ProbeInfo {
    id: "RES-KEY-GROWTH",
    family: Family::RES,
    title: "memory stays bounded under a flood of calls with distinct arguments",
    severity: Severity::Medium,
    cwe: Some(770),
    enforces: "MCP security best practices, rate limiting and resource limits: per-key state (limiters, caches) has a hard cap",
    remediation: "Cap every table keyed by request data (refuse or evict when full); key limiters on the principal, not on arguments.",
};

pub static RES_DEEP_JSON: ProbeInfo = ProbeInfo {
    id: "RES-DEEP-JSON",
    family: Family::RES,
    title: "deeply nested JSON is refused without a crash",
    severity: Severity::High,
    cwe: Some(674),
    enforces: "MCP security best practices, input validation: bound JSON nesting depth",
    remediation: "Parse with a depth limit (serde_json's default 128; catch RecursionError in Python) and answer an error.",
};

pub static RES_CONCURRENT: ProbeInfo = ProbeInfo {
    id: "RES-CONCURRENT",
    family: Family::RES,
    title: "many concurrent calls are answered or refused, not queued without bound",
    severity: Severity::Medium,
    cwe: Some(400),
    enforces: "MCP security best practices, resource limits: cap concurrent calls per principal and bound each call's time",
    remediation: "Cap concurrent tool calls per principal and refuse the excess at once (429 or a JSON-RPC error); give every call a timeout.",
};

/// This family's probes, in report order.
pub static PROBES: &[&ProbeInfo] = &[
    &RES_BODY_SIZE,
    &RES_ARGUMENT_SIZE,
    &RES_KEY_GROWTH,
    &RES_DEEP_JSON,
    &RES_CONCURRENT,
];

/// RES-BODY-SIZE's body.
pub const HUGE_BODY_BYTES: usize = 32 * 1024 * 1024;
/// RES-ARGUMENT-SIZE's argument.
pub const HUGE_ARGUMENT_BYTES: usize = 16 * 1024 * 1024;

/// A `tools/call` for the first tool with a string point (or the first tool, with a made-up
/// argument) whose point carries `payload`.
fn call_message(run: &Run<'_>, payload: Value) -> (String, Value) {
    let tool = run
        .tools
        .iter()
        .find(|t| t.is_tool() && !t.points.is_empty())
        .or(run.tools.iter().find(|t| t.is_tool()));
    let Some(tool) = tool else {
        return ("none".into(), json!({"name": "none", "arguments": {}}));
    };
    let point = tool.points.first();
    let arguments = with_value_at(
        run.arguments_at(tool, point),
        point.map_or("/payload", |p| p.pointer.as_str()),
        payload,
    );
    (
        tool.name.clone(),
        json!({"name": tool.name, "arguments": arguments}),
    )
}

/// A `tools/call` message (as bytes) whose string point carries `size` bytes of `A`, built
/// with one allocation of the final size: the payload is never held twice.
fn huge_message(run: &Run<'_>, id: &str, size: usize) -> (String, Vec<u8>) {
    const PLACEHOLDER: &str = "\"MCP-HARNESS-HUGE-PLACEHOLDER\"";
    let (tool, params) = call_message(run, json!("MCP-HARNESS-HUGE-PLACEHOLDER"));
    let text =
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string();
    let (before, after) = text.split_once(PLACEHOLDER).unwrap_or((&text, ""));
    let mut bytes = Vec::with_capacity(before.len() + size + after.len() + 3);
    bytes.extend_from_slice(before.as_bytes());
    bytes.push(b'"');
    bytes.resize(bytes.len() + size, b'A');
    bytes.push(b'"');
    bytes.extend_from_slice(after.as_bytes());
    (tool, bytes)
}

/// Nested arrays `depth` deep, as text (building a `Value` that deep would recurse here).
pub fn nested_json(depth: usize) -> String {
    let mut text = String::with_capacity(depth * 2 + 1);
    text.extend(std::iter::repeat_n('[', depth));
    text.push('1');
    text.extend(std::iter::repeat_n(']', depth));
    text
}

/// The summed peak resident memory (`VmHWM`, kB) of every process in a process group.
pub fn group_peak_rss_kb(group: u32) -> Option<u64> {
    group_status_kb(group, "VmHWM:")
}

/// Sums a `/proc/PID/status` field (in kB) over every process in a process group.
fn group_status_kb(group: u32, field: &str) -> Option<u64> {
    let mut total = 0;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state ppid pgrp ...
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if after.split_whitespace().nth(2) != Some(group.to_string().as_str()) {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        {
            total += kb;
            found = true;
        }
    }
    found.then_some(total)
}

/// After a probe request: is the target still answering? A stdio target that closed the
/// session with exit status 0 refused the message (the TypeScript SDK does this for messages
/// over its size limit); it is restarted so the run goes on, and so is one that crashed.
async fn after_request(run: &mut Run<'_>) -> Aftermath {
    if run.alive().await {
        return Aftermath::Alive;
    }
    if !run.is_stdio() {
        return Aftermath::Died;
    }
    // The exit may lag the closed pipe a little (exit_status waits a second for it).
    let status = run.exit_status().await;
    let (clean, running) = (status.is_some_and(|s| s.success()), status.is_none());
    let restarted = run.restart().await.is_ok();
    if clean {
        Aftermath::ClosedCleanly {
            served_again: restarted && run.alive().await,
        }
    } else if running {
        Aftermath::Unresponsive
    } else {
        Aftermath::Died
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Aftermath {
    Alive,
    /// A stdio target exited with status 0: it ended the session rather than read on; whether
    /// the restarted target then answered.
    ClosedCleanly {
        served_again: bool,
    },
    /// A stdio target stopped answering while its process kept running (killed and restarted).
    Unresponsive,
    Died,
}

/// One RES probe's run.
type ProbeRun = for<'r, 'a> fn(&'r mut Run<'a>) -> futures::future::BoxFuture<'r, Outcome>;

pub async fn run(run: &mut Run<'_>) -> Vec<Outcome> {
    let probes: [(&'static ProbeInfo, ProbeRun); 5] = [
        (&RES_BODY_SIZE, |run| Box::pin(body_size(run))),
        (&RES_ARGUMENT_SIZE, |run| Box::pin(argument_size(run))),
        (&RES_KEY_GROWTH, |run| Box::pin(key_growth(run))),
        (&RES_DEEP_JSON, |run| Box::pin(deep_json(run))),
        (&RES_CONCURRENT, |run| Box::pin(concurrent_calls(run))),
    ];
    let mut outcomes = Vec::new();
    for (info, probe) in probes {
        if !run.wants(info) {
            continue;
        }
        // Each probe judges by what the target does afterwards: it must be answering before.
        if let Some(reason) = dead_before(run).await {
            outcomes.push(Outcome::new(
                info,
                Verdict::Inconclusive,
                format!(
                    "the target was not answering before the probe ({reason}): what it would do after cannot be told"
                ),
            ));
            continue;
        }
        outcomes.push(probe(run).await);
    }
    outcomes
}

/// Why the target is not answering a ping, if it is not (a dead stdio target is restarted
/// once first).
async fn dead_before(run: &mut Run<'_>) -> Option<String> {
    let reason = match run.liveness().await {
        crate::connection::Liveness::Alive => return None,
        crate::connection::Liveness::Dead(reason) => reason,
    };
    if run.is_stdio() && run.restart().await.is_ok() && run.alive().await {
        return None;
    }
    Some(reason)
}

/// RES-CONCURRENT: a burst of calls sent at once; every one must be answered in time.
async fn concurrent_calls(run: &mut Run<'_>) -> Outcome {
    let info = &RES_CONCURRENT;
    let Some(tool) = super::rate::served_cheap_tool(run) else {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "no tool that only reads to call",
        );
    };
    let count = match run.profile {
        Profile::Quick => 16,
        Profile::Standard => 64,
        Profile::Deep => 256,
    };
    let arguments = Value::Object(run.baseline(&tool));
    let params = vec![json!({"name": tool.name, "arguments": arguments}); count];
    let started = std::time::Instant::now();
    let replies = run.at_once("tools/call", params).await;
    let elapsed = started.elapsed();
    let (mut served, mut refused, mut unanswered, mut lost) = (0, 0, 0, 0);
    for reply in &replies {
        match reply {
            Ok(crate::connection::Reply::Result(_)) => served += 1,
            Ok(crate::connection::Reply::Error { .. }) | Err(TargetError::HttpStatus { .. }) => {
                refused += 1
            }
            Err(TargetError::Timeout(_)) => unanswered += 1,
            Err(_) => lost += 1,
        }
    }
    let request = format!(
        "{count} tools/call of {} with baseline arguments, all sent before any answer was read",
        tool.name
    );
    let tally = format!(
        "{served} served, {refused} refused, {unanswered} unanswered, {lost} lost, in {:.1} s",
        elapsed.as_secs_f64()
    );
    let aftermath = after_request(run).await;
    if unanswered > 0 {
        let afterwards = match aftermath {
            Aftermath::Alive => "it answered a ping afterwards",
            _ => "it did not answer a ping afterwards either (restarted)",
        };
        return Outcome::new(
            info,
            Verdict::Fail,
            format!("{unanswered} of {count} concurrent calls had no answer within the request timeout: the target queues calls without bound"),
        )
        .with_evidence(vec![Evidence {
            tool: Some(tool.name.clone()),
            point: None,
            request,
            reply: format!("{tally}; {afterwards}"),
            oracle: format!(
                "no answer (result, error or refusal) within {} s",
                run.request_timeout.as_secs()
            ),
        }]);
    }
    match aftermath {
        Aftermath::Alive if lost == 0 => Outcome::new(
            info,
            Verdict::Pass,
            format!("{count} calls at once: {tally}; the target still answers"),
        ),
        Aftermath::Alive => Outcome::new(
            info,
            Verdict::Inconclusive,
            format!(
                "{count} calls at once: {tally}; some were lost without an answer, the target still answers"
            ),
        ),
        Aftermath::ClosedCleanly { .. } | Aftermath::Unresponsive | Aftermath::Died => {
            crashed(info, tool.name, request)
        }
    }
}

/// The summed current resident memory (`VmRSS`, kB) of every process in a process group.
pub fn group_rss_kb(group: u32) -> Option<u64> {
    group_status_kb(group, "VmRSS:")
}

/// RES-KEY-GROWTH's flood: this many calls (at most), each with a distinct 1 KB value.
pub const KEY_FLOOD_CALLS: usize = 10_000;
/// Growth that counts: at least this much in all, and per call.
pub const KEY_GROWTH_MIN_MB: f64 = 8.0;
pub const KEY_GROWTH_MIN_BYTES_PER_CALL: f64 = 200.0;

async fn key_growth(run: &mut Run<'_>) -> Outcome {
    let info = &RES_KEY_GROWTH;
    if !run.is_stdio() {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "an HTTP target's memory cannot be sampled from here",
        );
    }
    let Some(group) = run.process_group() else {
        return Outcome::new(info, Verdict::Inconclusive, run.unsampled_memory_reason());
    };
    let Some(tool) = super::rate::served_cheap_tool(run) else {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "no tool that only reads to flood",
        );
    };
    let Some(point) = tool
        .points
        .first()
        .map(|point| Run::attack_point(&tool, point))
    else {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            format!("{} has no string parameter to vary", tool.name),
        );
    };
    let calls = match run.profile {
        Profile::Quick => KEY_FLOOD_CALLS / 2,
        Profile::Standard => KEY_FLOOD_CALLS,
        Profile::Deep => KEY_FLOOD_CALLS * 4,
    };
    let Some(first) = group_rss_kb(group) else {
        return Outcome::new(
            info,
            Verdict::Inconclusive,
            "cannot read the target's memory (needs Linux /proc)",
        );
    };
    let backing_off = run.back_off_when_limited;
    run.back_off_when_limited = false;
    let started = std::time::Instant::now();
    let mut samples = vec![first];
    // For the report's picture: more readings than the verdict uses, each with its time.
    let every = (calls / (MAX_MEMORY_SAMPLES - 8)).max(1);
    let mut series = vec![MemorySample {
        at_ms: 0,
        calls: 0,
        kb: first,
    }];
    let mut made = 0;
    let nonce: u64 = rand::random();
    while made < calls && started.elapsed() < super::rate::FLOOD_TIME && run.can_continue() {
        run.recording = made < 20;
        let value = format!("mcp-harness-key-{nonce:016x}-{made:08}-{}", "k".repeat(990));
        let result = run.call_at(&point, Value::String(value)).await;
        made += 1;
        if result.reply.is_err() && !run.is_stdio() {
            break;
        }
        let quarter = made % (calls / 4) == 0;
        if (quarter || made % every == 0)
            && let Some(rss) = group_rss_kb(group)
        {
            if quarter {
                samples.push(rss);
            }
            series.push(MemorySample {
                at_ms: started.elapsed().as_millis().min(u32::MAX as u128) as u32,
                calls: made,
                kb: rss,
            });
        }
    }
    run.back_off_when_limited = backing_off;
    run.recording = true;
    if made % (calls / 4) != 0
        && let Some(rss) = group_rss_kb(group)
    {
        samples.push(rss);
        series.push(MemorySample {
            at_ms: started.elapsed().as_millis().min(u32::MAX as u128) as u32,
            calls: made,
            kb: rss,
        });
    }
    series.truncate(MAX_MEMORY_SAMPLES);
    let figure = Some(Figure::Memory { samples: series });
    let last = *samples.last().unwrap_or(&first);
    let grown_mb = last.saturating_sub(first) as f64 / 1024.0;
    let per_call = last.saturating_sub(first) as f64 * 1024.0 / made.max(1) as f64;
    let monotonic = samples.windows(2).all(|w| w[1] >= w[0]);
    let request = format!(
        "{made} tools/call of {} with {} set to a distinct 1 KB value each, in {:.1} s",
        tool.name,
        point.pointer,
        started.elapsed().as_secs_f64()
    );
    let shown: Vec<String> = samples
        .iter()
        .map(|kb| format!("{} MB", kb / 1024))
        .collect();
    let outcome = if samples.len() >= 3
        && monotonic
        && grown_mb >= KEY_GROWTH_MIN_MB
        && per_call >= KEY_GROWTH_MIN_BYTES_PER_CALL
    {
        Outcome::new(
            info,
            Verdict::Fail,
            format!("memory grew with every batch of distinct arguments: +{grown_mb:.0} MB over {made} calls ({per_call:.0} B per call)"),
        )
        .with_evidence(vec![Evidence {
            tool: Some(tool.name.clone()),
            point: None,
            request,
            reply: format!("resident memory of the target's processes: {}", shown.join(" -> ")),
            oracle: format!("resident memory grew monotonically by {grown_mb:.0} MB, {per_call:.0} bytes per distinct key"),
        }])
    } else if made < 2_000 {
        Outcome::new(
            info,
            Verdict::Inconclusive,
            format!("only {made} calls in the time allowed; too few to see growth per key"),
        )
    } else {
        Outcome::new(
            info,
            Verdict::Pass,
            format!(
                "{made} calls with distinct values: resident memory {} MB before, {} MB after ({per_call:.0} B per call)",
                first / 1024,
                last / 1024
            ),
        )
    };
    outcome.with_figure(figure)
}

async fn body_size(run: &mut Run<'_>) -> Outcome {
    let info = &RES_BODY_SIZE;
    if run.is_stdio() {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "a stdio target has no request body (see RES-ARGUMENT-SIZE)",
        );
    }
    let (tool, body) = huge_message(run, "mcp-harness-res-body", HUGE_BODY_BYTES);
    let size_mb = body.len() / (1024 * 1024);
    let reply = run.raw(&body, &[], &[]).await;
    drop(body);
    let request = format!("POST tools/call {tool} with a {size_mb} MB body");
    match reply {
        Ok(reply) if reply.status.is_some_and(|s| (200..300).contains(&s)) => Outcome::new(
            info,
            Verdict::Fail,
            format!("a {size_mb} MB request was read and answered"),
        )
        .with_evidence(vec![Evidence {
            tool: Some(tool),
            point: None,
            request,
            reply: format!(
                "HTTP {} {}",
                reply.status.unwrap_or(0),
                excerpt(&reply.excerpt, 300)
            ),
            oracle: format!("a 2xx status for a {size_mb} MB body: no request size limit"),
        }]),
        Ok(reply) => {
            let status = reply.status.unwrap_or(0);
            if after_request(run).await == Aftermath::Alive {
                Outcome::new(
                    info,
                    Verdict::Pass,
                    format!("a {size_mb} MB body was refused with HTTP {status}"),
                )
            } else {
                crashed(info, tool, request)
            }
        }
        Err(error) => {
            if after_request(run).await == Aftermath::Alive {
                Outcome::new(
                    info,
                    Verdict::Pass,
                    format!(
                        "the server stopped reading a {size_mb} MB body ({error}) and still answers"
                    ),
                )
            } else {
                crashed(info, tool, request)
            }
        }
    }
}

fn crashed(info: &'static ProbeInfo, tool: String, request: String) -> Outcome {
    Outcome::new(
        info,
        Verdict::Fail,
        "the target stopped answering after the request",
    )
    .with_evidence(vec![Evidence {
        tool: Some(tool),
        point: None,
        request,
        reply: "no answer to a ping afterwards".into(),
        oracle: "the target crashed or hung (no answer to ping)".into(),
    }])
}

/// The message sizes RES-ARGUMENT-SIZE climbs, in MB, by profile.
fn argument_ladder(profile: Profile) -> &'static [usize] {
    match profile {
        Profile::Quick => &[4, 16],
        Profile::Standard => &[1, 4, 10, 16],
        Profile::Deep => &[1, 4, 10, 16, 32],
    }
}

/// RES-ARGUMENT-SIZE: one line of each size of the ladder, each followed by a liveness check
/// on the same session. A target that stops answering while its process runs is wedged by one
/// message (a finding, with the size); one that exits with status 0 refused the message, but
/// only if the restarted target is then served; one that answers the largest size must not
/// have buffered it whole (its peak memory).
async fn argument_size(run: &mut Run<'_>) -> Outcome {
    let info = &RES_ARGUMENT_SIZE;
    if !run.is_stdio() {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "an HTTP target's request size is RES-BODY-SIZE's",
        );
    }
    let mut climbed: Vec<String> = Vec::new();
    let ladder = argument_ladder(run.profile);
    // The peak before the whole ladder: what the largest line is measured against.
    let start = run.process_group().and_then(group_peak_rss_kb);
    for (index, &size_mb) in ladder.iter().enumerate() {
        let largest = index + 1 == ladder.len();
        let Some(group) = run.process_group() else {
            return Outcome::new(info, Verdict::Inconclusive, run.unsampled_memory_reason());
        };
        let Some(before) = group_peak_rss_kb(group) else {
            return Outcome::new(
                info,
                Verdict::Inconclusive,
                "cannot read the target's memory (needs Linux /proc)",
            );
        };
        let (tool, mut line) = huge_message(run, "mcp-harness-res-argument", size_mb * 1024 * 1024);
        line.push(b'\n');
        // Written without waiting for an answer: a server that drops the line never sends one.
        let written = run.raw(&line, &[], &[]).await;
        drop(line);
        let request = format!(
            "tools/call {tool} with a {size_mb} MB string argument on one line (after {})",
            if climbed.is_empty() {
                "nothing".to_owned()
            } else {
                climbed.join(", ")
            }
        );
        // Sampled before the liveness check, which restarts a target that exited.
        let after = group_peak_rss_kb(group).unwrap_or(before);
        match after_request(run).await {
            Aftermath::Alive => climbed.push(format!("{size_mb} MB: answered")),
            Aftermath::ClosedCleanly { served_again: true } => {
                return Outcome::new(
                    info,
                    Verdict::Pass,
                    format!(
                        "the target ended the session (exit status 0) rather than read a {size_mb} MB line, and a new one was served{}",
                        if climbed.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", climbed.join(", "))
                        }
                    ),
                );
            }
            Aftermath::ClosedCleanly {
                served_again: false,
            } => {
                return Outcome::new(
                    info,
                    Verdict::Fail,
                    format!("the target ended the session on a {size_mb} MB line and a new one was not served"),
                )
                .with_evidence(vec![Evidence {
                    tool: Some(tool),
                    point: None,
                    request,
                    reply: "exit status 0, then no answer from the restarted target".into(),
                    oracle: "no answer to a ping after a restart".into(),
                }]);
            }
            Aftermath::Unresponsive => {
                return Outcome::new(
                    info,
                    Verdict::Fail,
                    format!("a {size_mb} MB message wedged the target: it stopped answering while its process kept running (a one-message denial of service)"),
                )
                .with_mode(FailureMode::Wedged)
                .with_evidence(vec![Evidence {
                    tool: Some(tool),
                    point: None,
                    request,
                    reply: format!(
                        "no answer to a ping within {} s; the process was still running (killed and restarted)",
                        run.request_timeout.as_secs()
                    ),
                    oracle: format!("wedged by a {size_mb} MB message"),
                }]);
            }
            Aftermath::Died if written.is_ok() => return crashed(info, tool, request),
            Aftermath::Died => {
                return Outcome::new(
                    info,
                    Verdict::Inconclusive,
                    format!("the {size_mb} MB line could not be written; the target is gone"),
                );
            }
        }
        if !largest {
            continue;
        }
        // Against the peak before the ladder: a restart in between starts a new process.
        let before = start.filter(|s| *s <= after).unwrap_or(before);
        let grown_mb = after.saturating_sub(before) as f64 / 1024.0;
        // Half the message is already far above what a reader that discards long lines keeps
        // (about 1 MB); the peak before may include earlier spikes, so the full size would be
        // a flaky bar.
        return if grown_mb >= size_mb as f64 / 2.0 {
            Outcome::new(
                info,
                Verdict::Fail,
                format!(
                    "the target buffered the whole {size_mb} MB line (peak memory +{grown_mb:.0} MB)"
                ),
            )
            .with_evidence(vec![Evidence {
                tool: Some(tool),
                point: None,
                request,
                reply: format!(
                    "peak resident memory of the target's processes: {} MB before, {} MB after",
                    before / 1024,
                    after / 1024
                ),
                oracle: format!(
                    "peak memory grew by {grown_mb:.0} MB, at least half the {size_mb} MB message"
                ),
            }])
        } else {
            Outcome::new(
                info,
                Verdict::Pass,
                format!(
                    "lines of {} MB: a {size_mb} MB line grew the target's peak memory by {grown_mb:.1} MB; it still answers",
                    ladder
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        };
    }
    Outcome::new(info, Verdict::Inconclusive, "no rung was sent")
}

async fn deep_json(run: &mut Run<'_>) -> Outcome {
    let info = &RES_DEEP_JSON;
    let depth = if run.profile == Profile::Deep {
        100_000
    } else {
        10_000
    };
    let (tool, params) = call_message(run, json!("DEPTH-PLACEHOLDER"));
    let message = json!({"jsonrpc": "2.0", "id": "mcp-harness-res-deep", "method": "tools/call", "params": params})
        .to_string()
        .replace("\"DEPTH-PLACEHOLDER\"", &nested_json(depth));
    let mut bytes = message.into_bytes();
    if run.is_stdio() {
        bytes.push(b'\n');
    }
    let reply = run.raw(&bytes, &[], &[]).await;
    let request = format!("tools/call {tool} with an argument nested {depth} levels deep");
    let answered = match &reply {
        Ok(reply) => reply
            .status
            .map_or("written".to_owned(), |s| format!("HTTP {s}")),
        Err(TargetError::Timeout(_)) => "no answer in time".to_owned(),
        Err(error) => error.to_string(),
    };
    match after_request(run).await {
        Aftermath::Alive => Outcome::new(
            info,
            Verdict::Pass,
            format!("nesting {depth} deep: {answered}; the target still answers"),
        ),
        Aftermath::ClosedCleanly { served_again: true } => Outcome::new(
            info,
            Verdict::Pass,
            format!(
                "nesting {depth} deep: the target ended the session (exit status 0), and a new one was served"
            ),
        ),
        Aftermath::ClosedCleanly {
            served_again: false,
        }
        | Aftermath::Unresponsive
        | Aftermath::Died => crashed(info, tool, request),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_json_is_valid_and_as_deep_as_asked() {
        let text = nested_json(50);
        assert_eq!(text.len(), 101);
        let value: Value = serde_json::from_str(&text).unwrap();
        let mut depth = 0;
        let mut cursor = &value;
        while let Value::Array(items) = cursor {
            depth += 1;
            cursor = &items[0];
        }
        assert_eq!(depth, 50);
    }

    #[test]
    fn this_process_group_has_a_peak_memory() {
        // SAFETY: getpgrp has no preconditions.
        let group = unsafe { libc::getpgrp() } as u32;
        if cfg!(target_os = "linux") {
            assert!(group_peak_rss_kb(group).is_some_and(|kb| kb > 0));
        }
    }
}
