//! RATE: does the target rate limit tool invocations, per principal, and can a caller reset
//! the limit by changing something it controls?
//!
//! One flood of `tools/call` to a cheap tool (one whose name says it only reads, with baseline
//! arguments), as fast as the transport allows, with the harness's rate-limit back-off turned
//! off. Then, while the limit is in force:
//! - calls that differ only in what a client chooses (`X-Forwarded-For`, `X-Real-IP`,
//!   `Forwarded` over HTTP; a new value of an identity-like tool argument such as `client_id`,
//!   on any transport) are paired with plain calls in 16 rounds (see [`rotate`]): rounds where
//!   only the rotated call was served, and none the other way, prove the limiter keys on
//!   client-chosen data. A tool with an identity argument is flooded on its own first (with one
//!   fixed value) when it is not the flooded tool;
//! - a second principal (`--token2`), silent so far, calls: refused means one bucket for
//!   everyone, so one caller can lock out all others.
//!
//! Finally the limit must lift after the advertised wait (reported).
//!
//! RATE-CONCURRENT-BURST then compares calls sent at once with calls sent one by one, under the
//! same conditions (see [`concurrent_bursts`]): after a wait that refills the bucket, calls one
//! by one until refused (the sequential burst); after the same wait, twice, a burst of about
//! twice as many calls all sent before any answer is read. A limiter that checks, awaits and
//! then counts serves every concurrent call; an atomic one serves about the sequential burst.
//!
//! Oracles: counts of served and refused calls. A refusal is recognised by behaviour: the
//! flooded call was served, and under flood it starts getting another answer that is a
//! failure (HTTP 429/503, a JSON-RPC error, `isError`), whatever its words; the shape is
//! learned ([`crate::oracle::refusal`]) so that later calls, and every family's waiting out,
//! know it too. The flood sends [`FLOOD_SEQUENTIAL`] calls one by one, then [`FLOOD_BATCH`] at
//! a time, so that it drives the target as hard as it answers. A flood served whole is the
//! finding for RATE-FLOOD only past the ceiling ([`CEILING_CALLS`] calls at
//! [`MIN_FLOOD_RATE`] a second) or past what `--expect-burst`/`--expect-rate` allow;
//! otherwise it proves only that any limit is above what the flood reached: inconclusive.
//!
//! Cost: a [`REFILL_PAUSE`] when the limit was hit before, at most the profile's flood size
//! (1,000 / 1,200 / 3,000 calls) within [`FLOOD_TIME`], plus
//! about 20 calls and one wait of at most [`MAX_RECOVERY_WAIT`]; a second flood of the same
//! size when a tool takes an identity argument; for the concurrent bursts three refill waits of
//! at most [`LONGEST_REFILL_WAIT`] and up to three times the profile's burst cap (64 / 256 /
//! 256 calls) in calls.

use super::{Evidence, Family, Outcome, ProbeInfo, Profile, Run, Severity, Verdict};
use crate::connection::{Connection, Reply, TargetError, excerpt};
use crate::discover::{Point, ToolInfo, with_value_at};
use crate::oracle::refusal::{self, RefusalClassifier};
use serde_json::Value;
use std::time::{Duration, Instant};

pub static RATE_FLOOD: ProbeInfo = ProbeInfo {
    id: "RATE-FLOOD",
    family: Family::Rate,
    title: "a flood of tool calls is refused once past the limit",
    severity: Severity::Medium,
    cwe: Some(770),
    enforces: "MCP tools, security considerations: servers MUST rate limit tool invocations",
    remediation: "Limit tool calls per principal (a token bucket or GCRA) and refuse the excess with 429 and Retry-After (HTTP) or a JSON-RPC error (stdio).",
};

pub static RATE_ROTATING_ID: ProbeInfo = ProbeInfo {
    id: "RATE-ROTATING-ID",
    family: Family::Rate,
    title: "a caller cannot reset its limit with client-chosen headers or arguments",
    severity: Severity::High,
    cwe: Some(799),
    enforces: "MCP security best practices, rate limiting: limits apply per authenticated principal, not per client-supplied identifier",
    remediation: "Key the limiter on the authenticated principal, never on a tool argument such as client_id; trust X-Forwarded-For only from a configured proxy.",
};

pub static RATE_SECOND_PRINCIPAL: ProbeInfo = ProbeInfo {
    id: "RATE-SECOND-PRINCIPAL",
    family: Family::Rate,
    title: "one principal's flood does not lock out another",
    severity: Severity::Medium,
    cwe: Some(400),
    enforces: "MCP security best practices, rate limiting: per-principal limits, so one caller cannot deny service to the rest",
    remediation: "Keep one bucket per principal (bounded in number) rather than one for the whole server.",
};

pub static RATE_CONCURRENT_BURST: ProbeInfo = ProbeInfo {
    id: "RATE-CONCURRENT-BURST",
    family: Family::Rate,
    title: "calls sent at once are limited like calls sent one by one",
    severity: Severity::Medium,
    cwe: Some(367),
    enforces: "MCP tools, security considerations: servers MUST rate limit tool invocations (a limit that concurrent calls pass is no limit)",
    remediation: "Take the token and decide in one atomic step (a compare-and-swap, a lock held across check and update, or the store's atomic increment), never read, await, then write back.",
};

/// This family's probes, in report order.
pub static PROBES: &[&ProbeInfo] = &[
    &RATE_FLOOD,
    &RATE_ROTATING_ID,
    &RATE_SECOND_PRINCIPAL,
    &RATE_CONCURRENT_BURST,
];

/// Below this many calls per second the flood proves nothing about a limit.
pub const MIN_FLOOD_RATE: f64 = 100.0;
/// A flood served whole proves "no limit" only past this: at least this many calls, at least
/// [`MIN_FLOOD_RATE`] a second. No per-principal limit a server needs lets 1,000 tool calls
/// through at 100 a second (five times the reference's sustained limit, twenty-five times
/// its burst); below that, "all served" proves only that the limit, if any, is higher than
/// what the flood reached, which is inconclusive unless `--expect-burst`/`--expect-rate` say
/// what the limit should be.
pub const CEILING_CALLS: usize = 1_000;
/// The flood stops after this long, whatever its size.
pub const FLOOD_TIME: Duration = Duration::from_secs(10);
/// The longest the probe waits for the limit to lift.
pub const MAX_RECOVERY_WAIT: Duration = Duration::from_secs(5);
/// Once refusals start, the flood goes on this long to measure the sustained rate.
const SUSTAIN_TIME: Duration = Duration::from_secs(2);
/// The pause before the flood when the target has refused calls for its limit already.
pub const REFILL_PAUSE: Duration = Duration::from_secs(3);
/// The longest wait for the bucket to refill before a burst.
pub const LONGEST_REFILL_WAIT: Duration = Duration::from_secs(4);
/// Concurrent bursts: every one must exceed the allowance for RATE-CONCURRENT-BURST to fail,
/// since a fixed-window limiter serves up to two windows' worth once when a burst straddles a
/// window boundary, and cannot do so twice in a row.
const CONCURRENT_BURSTS: usize = 2;
/// Alternations of plain and rotated calls.
const ROTATIONS: usize = 16;
/// Rounds in which the forged call alone was served that RATE-ROTATING-ID needs to fail, with
/// no round the other way: by symmetry a correct server does that with probability 2^-10.
const DISCORDANT_TO_FAIL: usize = 10;

/// What the user expects of the limit (`--expect-burst`, `--expect-rate`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Expectations {
    pub burst: Option<u32>,
    pub per_second: Option<f64>,
}

/// One call's fate.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    Served,
    Refused(Option<Duration>),
    Lost,
}

/// A call's fate by what the reply says: a refusal when the refusal classifier recognises it
/// (explicitly or by a shape the flood learned), served for any other answer (an error result
/// too: the tool answered), lost for no answer. The flood judges by behaviour on top of this.
fn fate(reply: &Result<Reply, TargetError>, refusals: &RefusalClassifier) -> Fate {
    if let Some(wait) = refusals.wait(reply) {
        return Fate::Refused(Some(wait));
    }
    match reply {
        Ok(_) => Fate::Served,
        // Another refusal (403, 404, 5xx) says nothing about the limit.
        Err(_) => Fate::Lost,
    }
}

const READ_ONLY_WORDS: &[&str] = &[
    "list", "get", "read", "stat", "status", "info", "ping", "echo", "search", "show", "describe",
];
/// Argument names (lowercase, without `_` and `-`) that carry a caller-chosen identity: the
/// seed's limiter keyed on a `client_id` argument.
const IDENTITY_ARGUMENTS: &[&str] = &[
    "clientid",
    "client",
    "callerid",
    "caller",
    "userid",
    "user",
    "username",
    "requesterid",
    "requester",
    "sessionid",
    "tenantid",
    "tenant",
    "accountid",
    "customerid",
    "consumerid",
    "appid",
];

/// A tool that is safe to flood (see [`cheap_tool`]) and takes a string argument whose name
/// says it identifies the caller (at any depth), with that point.
pub fn identity_tool(tools: &[ToolInfo]) -> Option<(&ToolInfo, &Point)> {
    tools
        .iter()
        .filter(|t| cheap_tool(std::slice::from_ref(*t)).is_some())
        .find_map(|tool| tool.point_named(IDENTITY_ARGUMENTS).map(|p| (tool, p)))
}

/// The value of the identity argument in plain calls.
const PLAIN_IDENTITY: &str = "harness-client";

/// Names of tools that change things, reach out, or need privileges a second principal may lack.
const AVOIDED_WORDS: &[&str] = &[
    "write", "delete", "remove", "exec", "run", "fetch", "create", "update", "move", "send",
    "kill", "drop", "push", "commit", "admin",
];

/// The tool to flood: read-only by name, fewest required parameters; never one whose name
/// says it changes, reaches out or needs privileges.
pub fn cheap_tool(tools: &[ToolInfo]) -> Option<&ToolInfo> {
    let named = |tool: &ToolInfo, words: &[&str]| {
        let name = tool.name.to_ascii_lowercase();
        words.iter().any(|w| name.contains(w))
    };
    tools
        .iter()
        .filter(|t| !named(t, AVOIDED_WORDS))
        .min_by_key(|t| {
            (
                !named(t, READ_ONLY_WORDS),
                t.points.iter().filter(|p| p.required).count(),
            )
        })
}

/// [`cheap_tool`] among the tools whose baseline was served (so that its calls answer and its
/// refusals show), or among all when none was.
pub fn served_cheap_tool(run: &Run<'_>) -> Option<ToolInfo> {
    let accepted: Vec<ToolInfo> = run
        .tools
        .iter()
        .filter(|t| run.accepted.get(&t.name).is_some_and(|c| c.accepted))
        .cloned()
        .collect();
    cheap_tool(&accepted)
        .or_else(|| cheap_tool(run.tools))
        .cloned()
}

struct Flood {
    served_before_refusal: usize,
    served_after_refusal: usize,
    refused: usize,
    lost: usize,
    elapsed: Duration,
    since_first_refusal: Duration,
    refusal_latencies: Vec<Duration>,
    last_wait: Option<Duration>,
    refusal_excerpt: String,
    http_429_without_retry_after: bool,
    /// The refusals were recognised by behaviour (served, then another answer under flood).
    by_behaviour: bool,
}

/// Calls sent one by one at the start of a flood, to learn what the served call looks like;
/// after them, calls go [`FLOOD_BATCH`] at a time (pipelined on stdio, one connection each
/// over HTTP), so the flood drives the target as hard as it answers.
const FLOOD_SEQUENTIAL: usize = 16;
pub const FLOOD_BATCH: usize = 8;

async fn flood(run: &mut Run<'_>, tool: &str, arguments: &Value, size: usize) -> Flood {
    let started = Instant::now();
    let mut flood = Flood {
        served_before_refusal: 0,
        served_after_refusal: 0,
        refused: 0,
        lost: 0,
        elapsed: Duration::ZERO,
        since_first_refusal: Duration::ZERO,
        refusal_latencies: Vec::new(),
        last_wait: None,
        refusal_excerpt: String::new(),
        http_429_without_retry_after: false,
        by_behaviour: false,
    };
    let mut first_refusal: Option<Instant> = None;
    // What the call looks like when served: a later answer of another shape that is a
    // failure is a refusal by behaviour, whatever its words.
    let mut served_shape: Option<String> = None;
    let params = serde_json::json!({"name": tool, "arguments": arguments});
    let mut sent = 0;
    while sent < size {
        if started.elapsed() > FLOOD_TIME
            || first_refusal.is_some_and(|t| t.elapsed() > SUSTAIN_TIME)
            || !run.can_continue()
            || flood.lost >= 3
        {
            break;
        }
        let batch_started = Instant::now();
        let replies: Vec<Result<Reply, TargetError>> = if sent < FLOOD_SEQUENTIAL {
            // The first calls of the flood are enough for the passive leak scan.
            run.recording = sent < 20;
            vec![run.call_tool(tool, arguments.clone()).await.reply]
        } else {
            run.recording = false;
            let count = FLOOD_BATCH.min(size - sent);
            run.calls += count as u64;
            run.connection
                .requests_at_once("tools/call", vec![params.clone(); count])
                .await
        };
        let latency = batch_started.elapsed() / replies.len().max(1) as u32;
        sent += replies.len();
        for reply in replies {
            let mut judged = fate(&reply, &run.refusals);
            if judged == Fate::Served
                && let Ok(answer) = &reply
            {
                let shape = answer.summary(300);
                match &served_shape {
                    None => served_shape = Some(shape),
                    Some(served) if crate::coverage::same_answer(served, &shape) => {}
                    Some(_) if refusal::is_failure(&reply) => {
                        run.refusals.learn(&reply);
                        flood.by_behaviour = true;
                        judged = Fate::Refused(None);
                    }
                    Some(_) => {}
                }
            }
            match judged {
                Fate::Served if first_refusal.is_none() => flood.served_before_refusal += 1,
                Fate::Served => flood.served_after_refusal += 1,
                Fate::Refused(wait) => {
                    if first_refusal.is_none() {
                        first_refusal = Some(Instant::now());
                        flood.refusal_excerpt = excerpt(
                            &match &reply {
                                Ok(answer) => answer.summary(200),
                                Err(error) => error.to_string(),
                            },
                            200,
                        );
                    }
                    if let Err(TargetError::HttpStatus {
                        status: 429,
                        retry_after: None,
                        ..
                    }) = &reply
                    {
                        flood.http_429_without_retry_after = true;
                    }
                    flood.refused += 1;
                    flood.last_wait = wait;
                    flood.refusal_latencies.push(latency);
                }
                Fate::Lost => flood.lost += 1,
            }
        }
    }
    run.recording = true;
    flood.elapsed = started.elapsed();
    flood.since_first_refusal = first_refusal.map_or(Duration::ZERO, |t| t.elapsed());
    flood
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Rounds of rotation while the limit is in force, counted as pairs: rounds where only the
/// forged call was served, rounds where only the plain one was, and how many forged calls were
/// served in all.
#[derive(Debug, Clone, Copy, Default)]
struct Rotation {
    forged_only: usize,
    plain_only: usize,
    forged_served: usize,
}

impl Rotation {
    fn describe(&self, forged: &str) -> String {
        format!(
            "{forged} served and the plain call refused in {} of {ROTATIONS} rounds, the reverse in {}; {forged} served {} times in all",
            self.forged_only, self.plain_only, self.forged_served
        )
    }
}

/// [`ROTATIONS`] rounds of four calls: plain, compared, plain, compared, where the two compared
/// calls are one plain and one forged call in a random order. Each compared call comes right
/// after a plain call that takes whatever the bucket refilled, so both see the same refill (a
/// forged call that followed a refused one would otherwise get the token the plain call just
/// missed). The order is random and each round starts after a random pause of up to 2 ms,
/// because a round that lasts about as long as the limiter's refill interval locks in phase
/// with it and hands every refilled token to the same position: with a fixed order that was a
/// false positive on the reference server under load. The rounds are judged as pairs (see
/// [`rotation_verdict`]).
async fn rotate(
    run: &mut Run<'_>,
    tool: &str,
    plain: &Value,
    forge: impl Fn(usize) -> (Vec<(String, String)>, Value),
) -> Rotation {
    let mut rotation = Rotation::default();
    let rounds: Vec<(bool, u64)> = (0..ROTATIONS)
        .map(|_| (rand::random::<bool>(), rand::random_range(0..2_000u64)))
        .collect();
    for (i, (forged_first, pause_us)) in rounds.into_iter().enumerate() {
        tokio::time::sleep(Duration::from_micros(pause_us)).await;
        let (headers, arguments) = forge(i);
        let (mut plain_served, mut forged_served) = (false, false);
        for forged_turn in [forged_first, !forged_first] {
            call_with_headers(run, Vec::new(), tool, plain).await;
            if forged_turn {
                forged_served =
                    call_with_headers(run, headers.clone(), tool, &arguments).await == Fate::Served;
            } else {
                plain_served =
                    call_with_headers(run, Vec::new(), tool, plain).await == Fate::Served;
            }
        }
        rotation.forged_served += usize::from(forged_served);
        rotation.forged_only += usize::from(forged_served && !plain_served);
        rotation.plain_only += usize::from(plain_served && !forged_served);
    }
    rotation
}

/// A sign test on the discordant rounds: on a server that ignores the forged value, "only the
/// forged call served" and "only the plain call served" are equally likely (the order within a
/// round is random). Fail when at least [`DISCORDANT_TO_FAIL`] rounds went the forged way and
/// none the other; pass when the forged way is not ahead by more than 3.
fn rotation_verdict(rotation: Rotation) -> Verdict {
    if rotation.plain_only == 0 && rotation.forged_only >= DISCORDANT_TO_FAIL {
        Verdict::Fail
    } else if rotation.forged_only <= rotation.plain_only + 3 {
        Verdict::Pass
    } else {
        Verdict::Inconclusive
    }
}

/// Sends one call with `overrides` replacing the user's headers (HTTP only).
async fn call_with_headers(
    run: &mut Run<'_>,
    overrides: Vec<(String, String)>,
    tool: &str,
    arguments: &Value,
) -> Fate {
    if let Connection::Http(http) = &mut *run.connection {
        http.override_headers = overrides;
    }
    let result = run.call_tool(tool, arguments.clone()).await;
    if let Connection::Http(http) = &mut *run.connection {
        http.override_headers.clear();
    }
    fate(&result.reply, &run.refusals)
}

pub async fn run(run: &mut Run<'_>) -> Vec<Outcome> {
    let second_authorization = run.credentials.second.as_deref();
    let expect = run.expect;
    let Some(tool) = served_cheap_tool(run) else {
        return PROBES
            .iter()
            .copied()
            .map(|p| {
                Outcome::new(
                    p,
                    Verdict::NotApplicable,
                    "no tool that only reads to flood",
                )
            })
            .collect();
    };
    let arguments = Value::Object(run.baseline(&tool));
    let size = match run.profile {
        Profile::Quick => CEILING_CALLS,
        Profile::Standard => CEILING_CALLS + CEILING_CALLS / 5,
        Profile::Deep => 3 * CEILING_CALLS,
    };
    // Earlier families may have drained the bucket: give it time to refill, so that the calls
    // served before the first refusal measure the burst.
    if run.rate_limited_retries > 0 {
        tokio::time::sleep(REFILL_PAUSE).await;
    }
    // The second principal connects before the flood, on its own (its own session when the
    // target has sessions), with its credential in place of the first's.
    let mut second_connection = match (&*run.connection, second_authorization) {
        (Connection::Http(http), Some(credential)) => {
            http.connect_as(credential, run.request_timeout).await.ok()
        }
        _ => None,
    };
    let backing_off = run.back_off_when_limited;
    run.back_off_when_limited = false;
    let flood = flood(run, &tool.name, &arguments, size).await;
    let mut outcomes = Vec::new();
    let total = flood.served_before_refusal + flood.served_after_refusal + flood.refused;
    if total == 0 {
        // Nothing the limiter (or the tool) said: no verdict of this family can rest on it.
        run.back_off_when_limited = backing_off;
        let why = format!(
            "no call of the flood was answered ({} lost): the target was not serving",
            flood.lost
        );
        return PROBES
            .iter()
            .copied()
            .map(|p| Outcome::new(p, Verdict::Inconclusive, why.clone()))
            .collect();
    }
    let rate = total as f64 / flood.elapsed.as_secs_f64().max(1e-9);
    let limited = flood.refused > 0;

    // While the limit is in force: rotated identity headers, then the second principal.
    let header_rotation = if limited && !run.connection.is_stdio() {
        Some(
            rotate(run, &tool.name, &arguments, |i| {
                let address = format!("203.0.113.{}", 10 + i);
                let forged = vec![
                    ("X-Forwarded-For".to_owned(), address.clone()),
                    ("X-Real-IP".to_owned(), address.clone()),
                    ("Forwarded".to_owned(), format!("for={address}")),
                ];
                (forged, arguments.clone())
            })
            .await,
        )
    } else {
        None
    };
    let second = match second_connection.as_mut() {
        Some(other) if limited => {
            // Right after a refused call of the first principal, three calls of the second,
            // back to back: a shared bucket refills too slowly to serve more than one of them.
            let first_refused = matches!(
                call_with_headers(run, Vec::new(), &tool.name, &arguments).await,
                Fate::Refused(_)
            );
            let mut served = 0;
            for _ in 0..3 {
                run.calls += 1;
                let params = serde_json::json!({"name": tool.name, "arguments": arguments});
                if fate(
                    &other.request("tools/call", Some(params)).await,
                    &run.refusals,
                ) == Fate::Served
                {
                    served += 1;
                }
            }
            Some((served, first_refused))
        }
        _ => None,
    };
    let recovery = if limited {
        let wait = flood
            .last_wait
            .unwrap_or(Duration::from_secs(1))
            .min(MAX_RECOVERY_WAIT)
            + Duration::from_millis(200);
        tokio::time::sleep(wait).await;
        let fate = call_with_headers(run, Vec::new(), &tool.name, &arguments).await;
        Some((wait, fate == Fate::Served))
    } else {
        None
    };
    // The identity-argument tool may be limited on its own even when the flooded tool is not
    // (the seed's limiter guarded only the tools that took a client_id).
    let argument_rotation = rotate_identity_argument(run, size).await;
    let sustained =
        flood.served_after_refusal as f64 / flood.since_first_refusal.as_secs_f64().max(1e-3);
    let concurrent = if limited && run.wants(&RATE_CONCURRENT_BURST) {
        let plan = BurstPlan::new(flood.served_before_refusal, sustained, run.profile);
        Some(concurrent_bursts(run, &tool.name, &arguments, plan).await)
    } else {
        None
    };
    run.back_off_when_limited = backing_off;

    // RATE-FLOOD
    let info = &RATE_FLOOD;
    let request = format!(
        "{total} tools/call of {} with baseline arguments, {FLOOD_SEQUENTIAL} one by one then {FLOOD_BATCH} at a time, in {:.1} s ({rate:.0}/s)",
        tool.name,
        flood.elapsed.as_secs_f64()
    );
    outcomes.push(if !limited {
        let expected_at_most = expect.burst.map(|burst| {
            burst as f64 * 1.1
                + 2.0
                + expect.per_second.unwrap_or(0.0) * 1.2 * flood.elapsed.as_secs_f64()
        });
        let beyond_expectation = expected_at_most.filter(|most| total as f64 > *most);
        let beyond_ceiling = total >= CEILING_CALLS && rate >= MIN_FLOOD_RATE;
        if beyond_ceiling || beyond_expectation.is_some() {
            let why = match beyond_expectation {
                Some(most) => format!(
                    "no refusal in {total} calls at {rate:.0}/s, where --expect-burst/--expect-rate allow at most {most:.0}"
                ),
                None => format!(
                    "no refusal in {total} calls at {rate:.0}/s (the ceiling: {CEILING_CALLS} calls at {MIN_FLOOD_RATE:.0}/s)"
                ),
            };
            Outcome::new(
                info,
                Verdict::Fail,
                format!("{total} calls in {:.1} s ({rate:.0}/s) were all served: tool calls are not rate limited", flood.elapsed.as_secs_f64()),
            )
            .with_evidence(vec![Evidence {
                tool: Some(tool.name.clone()),
                point: None,
                request,
                reply: format!("{total} served, 0 refused"),
                oracle: why,
            }])
        } else {
            Outcome::new(
                info,
                Verdict::Inconclusive,
                format!(
                    "no refusal in {total} calls at {rate:.0}/s: no limit at or below what the flood reached, which is short of the ceiling ({CEILING_CALLS} calls at {MIN_FLOOD_RATE:.0}/s); --expect-burst/--expect-rate say what the limit should be"
                ),
            )
        }
    } else {
        let mut latencies = flood.refusal_latencies.clone();
        latencies.sort();
        let refusal_time: Duration = latencies.iter().sum();
        let rejection_rate = latencies.len() as f64 / refusal_time.as_secs_f64().max(1e-9);
        let burst = flood.served_before_refusal;
        let mut summary = format!(
            "first refusal after {burst} calls; then {} served in {:.1} s (about {sustained:.0}/s sustained); {} refusals at {rejection_rate:.0}/s, latency p50 {} us, p99 {} us",
            flood.served_after_refusal,
            flood.since_first_refusal.as_secs_f64(),
            flood.refused,
            percentile(&latencies, 0.5).as_micros(),
            percentile(&latencies, 0.99).as_micros(),
        );
        if flood.http_429_without_retry_after {
            summary.push_str("; some 429s carried no Retry-After");
        }
        match recovery {
            Some((wait, true)) => summary.push_str(&format!(
                "; served again after {:.1} s",
                wait.as_secs_f64()
            )),
            Some((wait, false)) => summary.push_str(&format!(
                "; still refused {:.1} s after the advertised wait",
                wait.as_secs_f64()
            )),
            None => {}
        }
        let too_generous = expect
            .burst
            .filter(|&b| burst as f64 > b as f64 * 1.1 + 2.0)
            .map(|b| format!("the limit let {burst} calls through before refusing; --expect-burst is {b}"))
            .or_else(|| {
                expect
                    .per_second
                    .filter(|&r| flood.since_first_refusal >= Duration::from_secs(1) && sustained > r * 1.2 + 1.0)
                    .map(|r| format!("the limit served about {sustained:.0}/s under flood; --expect-rate is {r}"))
            });
        match too_generous {
            Some(reason) => Outcome::new(info, Verdict::Fail, reason.clone()).with_evidence(vec![
                Evidence {
                    tool: Some(tool.name.clone()),
                    point: None,
                    request,
                    reply: format!("{}; first refusal: {}", summary, flood.refusal_excerpt),
                    oracle: reason,
                },
            ]),
            None => Outcome::new(info, Verdict::Pass, summary),
        }
    });

    // RATE-ROTATING-ID
    outcomes.push(rotating_id_outcome(
        header_rotation,
        argument_rotation,
        limited,
        run.connection.is_stdio(),
        &tool.name,
    ));

    // RATE-SECOND-PRINCIPAL
    let info = &RATE_SECOND_PRINCIPAL;
    outcomes.push(match second {
        None if run.connection.is_stdio() => Outcome::new(
            info,
            Verdict::NotApplicable,
            "a stdio target serves one principal",
        ),
        None if second_authorization.is_none() => Outcome::new(
            info,
            Verdict::NotApplicable,
            "no second credential was given (--token2)",
        ),
        None => Outcome::new(
            info,
            Verdict::NotApplicable,
            "the flood was never refused",
        ),
        Some((served, first_refused)) if served <= 1 && first_refused => Outcome::new(
            info,
            Verdict::Fail,
            "a second principal that had made no tool call was refused while the first was limited: one bucket for everyone",
        )
        .with_evidence(vec![Evidence {
            tool: Some(tool.name.clone()),
            point: None,
            request: "3 calls with the --token2 credential, back to back, right after a refused call of the first principal".into(),
            reply: format!("{served} of 3 served"),
            oracle: "the second principal's first calls were refused for the first principal's flood".into(),
        }]),
        Some((served, _)) if served >= 2 => Outcome::new(
            info,
            Verdict::Pass,
            format!("the second principal was served ({served} of 3) while the first was limited"),
        ),
        Some((served, first_refused)) => Outcome::new(
            info,
            Verdict::Inconclusive,
            format!("the second principal was served {served} of 3 times (first principal refused just before: {first_refused})"),
        ),
    });

    // RATE-CONCURRENT-BURST
    outcomes.push(concurrent_outcome(concurrent, &tool.name));
    outcomes
}

/// How the concurrent bursts are sized and spaced, from the main flood.
#[derive(Debug, Clone, Copy, PartialEq)]
struct BurstPlan {
    /// Calls per concurrent burst: about twice the flood's burst, within the profile's cap.
    size: usize,
    /// The wait before each burst: the flood's burst over its sustained rate (the time to
    /// refill), within [`LONGEST_REFILL_WAIT`], plus 200 ms.
    refill_wait: Duration,
    /// The sustained rate the flood measured, calls per second.
    sustained: f64,
}

impl BurstPlan {
    fn new(flood_burst: usize, sustained: f64, profile: Profile) -> BurstPlan {
        let cap = match profile {
            Profile::Quick => 64,
            Profile::Standard | Profile::Deep => 256,
        };
        let refill = if sustained > 0.1 {
            (flood_burst as f64 / sustained).clamp(0.3, LONGEST_REFILL_WAIT.as_secs_f64())
        } else {
            LONGEST_REFILL_WAIT.as_secs_f64()
        };
        BurstPlan {
            size: (2 * flood_burst + 10).clamp(16, cap),
            refill_wait: Duration::from_secs_f64(refill) + Duration::from_millis(200),
            sustained,
        }
    }

    /// The most calls a correct limiter serves in a burst lasting `elapsed`, given that one by
    /// one it served `sequential` after the same wait: those, what refills meanwhile, and a
    /// quarter more plus four for jitter.
    fn ceiling(&self, sequential: usize, elapsed: Duration) -> f64 {
        1.25 * (sequential as f64 + self.sustained * elapsed.as_secs_f64() + 1.0) + 4.0
    }
}

/// One burst of calls sent at once.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Burst {
    served: usize,
    refused: usize,
    lost: usize,
    elapsed: Duration,
}

/// What RATE-CONCURRENT-BURST measured.
#[derive(Debug, Clone, PartialEq)]
enum Concurrency {
    /// The run ran out of time or the target stopped answering before the bursts.
    Stopped,
    /// One by one, the calls were never refused within the burst's size: nothing to compare.
    SequentialUnrefused { plan: BurstPlan },
    Measured {
        plan: BurstPlan,
        sequential: usize,
        bursts: Vec<Burst>,
    },
}

/// The sequential burst, then [`CONCURRENT_BURSTS`] concurrent ones, each after the plan's
/// refill wait. The sequential burst is measured here rather than taken from the flood because
/// earlier families may have left the bucket partly drained, and its refill rate is only an
/// estimate: the same wait before both makes them comparable.
async fn concurrent_bursts(
    run: &mut Run<'_>,
    tool: &str,
    arguments: &Value,
    plan: BurstPlan,
) -> Concurrency {
    tokio::time::sleep(plan.refill_wait).await;
    let mut sequential = 0;
    let mut refused = false;
    let mut lost = 0;
    for _ in 0..plan.size {
        if !run.can_continue() || lost >= 3 {
            return Concurrency::Stopped;
        }
        let reply = run.call_tool(tool, arguments.clone()).await.reply;
        match fate(&reply, &run.refusals) {
            Fate::Served => sequential += 1,
            Fate::Refused(_) => {
                refused = true;
                break;
            }
            Fate::Lost => lost += 1,
        }
    }
    if !refused {
        return Concurrency::SequentialUnrefused { plan };
    }
    let mut bursts = Vec::new();
    for _ in 0..CONCURRENT_BURSTS {
        tokio::time::sleep(plan.refill_wait).await;
        if !run.can_continue() {
            return Concurrency::Stopped;
        }
        let params = vec![serde_json::json!({"name": tool, "arguments": arguments}); plan.size];
        run.calls += plan.size as u64;
        let started = Instant::now();
        let replies = run.connection.requests_at_once("tools/call", params).await;
        let mut burst = Burst {
            elapsed: started.elapsed(),
            ..Burst::default()
        };
        for reply in &replies {
            match fate(reply, &run.refusals) {
                Fate::Served => burst.served += 1,
                Fate::Refused(_) => burst.refused += 1,
                Fate::Lost => burst.lost += 1,
            }
        }
        bursts.push(burst);
    }
    Concurrency::Measured {
        plan,
        sequential,
        bursts,
    }
}

fn concurrent_outcome(concurrency: Option<Concurrency>, tool: &str) -> Outcome {
    let info = &RATE_CONCURRENT_BURST;
    let (plan, sequential, bursts) = match concurrency {
        None => {
            return Outcome::new(
                info,
                Verdict::NotApplicable,
                "the flood was never refused, so there is no limit to compare bursts with",
            );
        }
        Some(Concurrency::Stopped) => {
            return Outcome::new(
                info,
                Verdict::Inconclusive,
                "the run's time ran out, or the target stopped answering, before the bursts",
            );
        }
        Some(Concurrency::SequentialUnrefused { plan }) => {
            return Outcome::new(
                info,
                Verdict::Inconclusive,
                format!(
                    "after a {:.1} s refill wait, {} calls one by one were all served: the limit is too loose for bursts of this size to test",
                    plan.refill_wait.as_secs_f64(),
                    plan.size
                ),
            );
        }
        Some(Concurrency::Measured {
            plan,
            sequential,
            bursts,
        }) => (plan, sequential, bursts),
    };
    let tallies: Vec<String> = bursts
        .iter()
        .map(|b| {
            format!(
                "{} served, {} refused, {} lost in {} ms (at most {:.0} expected)",
                b.served,
                b.refused,
                b.lost,
                b.elapsed.as_millis(),
                plan.ceiling(sequential, b.elapsed)
            )
        })
        .collect();
    let summary = format!(
        "one by one, {sequential} calls were served before the first refusal; {} calls at once, twice, after the same {:.1} s wait: {}",
        plan.size,
        plan.refill_wait.as_secs_f64(),
        tallies.join("; ")
    );
    if (plan.size as f64) <= plan.ceiling(sequential, Duration::ZERO) {
        return Outcome::new(
            info,
            Verdict::Inconclusive,
            format!(
                "{summary}: a burst of {} cannot serve more than a correct limiter would",
                plan.size
            ),
        );
    }
    if bursts.iter().any(|b| b.lost * 4 > plan.size) {
        return Outcome::new(
            info,
            Verdict::Inconclusive,
            format!("{summary}: too many calls were lost to tell"),
        );
    }
    let over = bursts
        .iter()
        .filter(|b| b.served as f64 > plan.ceiling(sequential, b.elapsed))
        .count();
    if over == bursts.len() {
        Outcome::new(
            info,
            Verdict::Fail,
            "calls sent at once get past the rate limit: the limiter checks and counts in separate steps (or limits per connection)",
        )
        .with_evidence(vec![Evidence {
            tool: Some(tool.to_owned()),
            point: None,
            request: format!(
                "after a {:.1} s wait, calls one by one until refused; then, twice after the same wait, {} tools/call of {tool} with baseline arguments, all sent before any answer was read",
                plan.refill_wait.as_secs_f64(),
                plan.size
            ),
            reply: summary,
            oracle: format!(
                "every burst served more than 1.25 x ({sequential} served one by one + refill during the burst + 1) + 4"
            ),
        }])
    } else if over == 0 {
        Outcome::new(info, Verdict::Pass, summary)
    } else {
        Outcome::new(
            info,
            Verdict::Inconclusive,
            format!(
                "{summary}: one burst exceeded the limit and one did not (a fixed window's boundary?)"
            ),
        )
    }
}

/// The identity-argument experiment: the tool that takes one, flooded with a fixed value until
/// refused (unless the main flood already was that tool's), then rotated. `None` when no tool
/// takes an identity argument; `Some((tool, argument, None))` when its flood was never refused.
async fn rotate_identity_argument(
    run: &mut Run<'_>,
    size: usize,
) -> Option<(String, String, Option<Rotation>)> {
    let (tool, point) = identity_tool(run.tools)?;
    let (tool, point) = (tool.clone(), point.clone());
    let parameter = point.name.clone();
    let plain = with_value_at(
        run.arguments_at(&tool, Some(&point)),
        &point.pointer,
        Value::from(PLAIN_IDENTITY),
    );
    // The main flood may have used the same tool with another value, and the recovery wait
    // refilled its bucket: flood again with the fixed value until refused.
    let flood = flood(run, &tool.name, &plain, size).await;
    if flood.refused == 0 {
        return Some((tool.name, parameter, None));
    }
    let rotation = rotate(run, &tool.name, &plain, |i| {
        let forged = with_value_at(
            plain.clone(),
            &point.pointer,
            Value::from(format!("{PLAIN_IDENTITY}-{}", i + 2)),
        );
        (Vec::new(), forged)
    })
    .await;
    Some((tool.name, parameter, Some(rotation)))
}

fn rotating_id_outcome(
    headers: Option<Rotation>,
    argument: Option<(String, String, Option<Rotation>)>,
    limited: bool,
    stdio: bool,
    flooded_tool: &str,
) -> Outcome {
    let info = &RATE_ROTATING_ID;
    if let Some(rotation) = headers.filter(|r| rotation_verdict(*r) == Verdict::Fail) {
        return Outcome::new(
            info,
            Verdict::Fail,
            "a new X-Forwarded-For resets the limit: forged calls are served while plain calls are refused",
        )
        .with_evidence(vec![Evidence {
            tool: Some(flooded_tool.to_owned()),
            point: None,
            request: format!("{ROTATIONS} rounds of four calls right after the flood: plain, then (in a random order, each after a plain call) a plain call and one carrying X-Forwarded-For / X-Real-IP / Forwarded 203.0.113.x"),
            reply: rotation.describe("the forged call"),
            oracle: "calls differing only in client-chosen headers served while identical plain calls are refused".into(),
        }]);
    }
    if let Some((tool, parameter, Some(rotation))) = &argument
        && rotation_verdict(*rotation) == Verdict::Fail
    {
        return Outcome::new(
            info,
            Verdict::Fail,
            format!("a new value of the `{parameter}` argument resets the limit: the limiter keys on what the caller says it is"),
        )
        .with_evidence(vec![Evidence {
            tool: Some(tool.clone()),
            point: None,
            request: format!("a flood of {tool} with {parameter} = \"{PLAIN_IDENTITY}\" until refused, then {ROTATIONS} rounds of four calls: plain, then (in a random order, each after a plain call) a plain call and one with a new {parameter}"),
            reply: rotation.describe(&format!("the call with a new {parameter}")),
            oracle: format!("calls differing only in the caller-chosen `{parameter}` served while identical plain calls are refused"),
        }]);
    }
    let mut passed = Vec::new();
    let mut unclear = Vec::new();
    if let Some(rotation) = headers {
        let text = format!(
            "forged X-Forwarded-For calls fared like plain ones ({})",
            rotation.describe("the forged call")
        );
        match rotation_verdict(rotation) {
            Verdict::Pass => passed.push(text),
            _ => unclear.push(format!(
                "headers mixed: {}",
                rotation.describe("the forged call")
            )),
        }
    }
    match &argument {
        Some((_, parameter, Some(rotation))) => {
            let text = format!(
                "new `{parameter}` values fared like the fixed one ({})",
                rotation.describe("the new value")
            );
            match rotation_verdict(*rotation) {
                Verdict::Pass => passed.push(text),
                _ => unclear.push(format!(
                    "`{parameter}` mixed: {}",
                    rotation.describe("the new value")
                )),
            }
        }
        Some((tool, parameter, None)) if passed.is_empty() && unclear.is_empty() => {
            return Outcome::new(
                info,
                Verdict::NotApplicable,
                format!(
                    "a flood of {tool} with a fixed `{parameter}` was never refused, so there is no limit to reset"
                ),
            );
        }
        _ => {}
    }
    if !unclear.is_empty() {
        return Outcome::new(info, Verdict::Inconclusive, unclear.join("; "));
    }
    if !passed.is_empty() {
        return Outcome::new(info, Verdict::Pass, passed.join("; "));
    }
    let why = if !limited {
        "the flood was never refused, so there is no limit to reset"
    } else if stdio {
        "a stdio target has no client-chosen identity headers, and no tool takes an identity argument"
    } else {
        "no rotation was possible"
    };
    Outcome::new(info, Verdict::NotApplicable, why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::parse_tool;
    use serde_json::json;

    #[test]
    fn the_flooded_tool_only_reads() {
        let tools: Vec<ToolInfo> = [
            json!({"name": "delete_file", "inputSchema": {"type": "object"}}),
            json!({"name": "read_file", "inputSchema": {"type": "object", "required": ["path"], "properties": {"path": {"type": "string"}}}}),
            json!({"name": "list_directory", "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}}}),
            json!({"name": "fetch_url", "inputSchema": {"type": "object"}}),
            json!({"name": "admin_stats", "inputSchema": {"type": "object"}}),
        ]
        .iter()
        .map(|t| parse_tool(t).unwrap())
        .collect();
        assert_eq!(cheap_tool(&tools).unwrap().name, "list_directory");
        assert!(cheap_tool(&tools[3..]).is_none());
    }

    #[test]
    fn refusals_are_recognised_by_status_code_and_message() {
        let refused = Err(TargetError::HttpStatus {
            status: 429,
            body: String::new(),
            retry_after: Some(2),
        });
        let none = RefusalClassifier::default();
        let fate = |reply: &Result<Reply, TargetError>| super::fate(reply, &none);
        assert_eq!(fate(&refused), Fate::Refused(Some(Duration::from_secs(2))));
        let refused = Ok(Reply::Error {
            code: -32029,
            message: "rate limit exceeded".into(),
            data: Some(json!({"retry_after_ms": 150})),
        });
        assert_eq!(
            fate(&refused),
            Fate::Refused(Some(Duration::from_millis(150)))
        );
        let refused = Ok(Reply::Result(
            json!({"isError": true, "content": [{"type": "text", "text": "Rate limit exceeded, slow down"}]}),
        ));
        assert!(matches!(fate(&refused), Fate::Refused(_)));
        let served = Ok(Reply::Result(
            json!({"isError": true, "content": [{"type": "text", "text": "no such file"}]}),
        ));
        assert_eq!(fate(&served), Fate::Served);
        assert_eq!(fate(&Err(TargetError::Timeout(Duration::ZERO))), Fate::Lost);
    }

    #[test]
    fn bursts_are_about_twice_the_flood_burst_and_wait_for_a_refill() {
        let plan = BurstPlan::new(20, 10.0, Profile::Standard);
        assert_eq!(plan.size, 50);
        assert_eq!(plan.refill_wait, Duration::from_millis(2_200));
        // Capped by the profile; a limit that never refilled waits the longest.
        let plan = BurstPlan::new(1_000, 0.0, Profile::Quick);
        assert_eq!(plan.size, 64);
        assert_eq!(
            plan.refill_wait,
            LONGEST_REFILL_WAIT + Duration::from_millis(200)
        );
        assert_eq!(BurstPlan::new(1, 1_000.0, Profile::Deep).size, 16);
    }

    fn measured(sequential: usize, served: &[usize]) -> Concurrency {
        let plan = BurstPlan::new(20, 10.0, Profile::Standard);
        Concurrency::Measured {
            plan,
            sequential,
            bursts: served
                .iter()
                .map(|&served| Burst {
                    served,
                    refused: plan.size - served,
                    lost: 0,
                    elapsed: Duration::from_millis(50),
                })
                .collect(),
        }
    }

    #[test]
    fn only_every_burst_past_the_ceiling_fails() {
        let verdict = |c| concurrent_outcome(Some(c), "list_directory").verdict;
        // One by one 20; at once the ceiling is 1.25 x (20 + 0.5 + 1) + 4 = 30.9.
        assert_eq!(verdict(measured(20, &[50, 50])), Verdict::Fail);
        assert_eq!(verdict(measured(20, &[20, 30])), Verdict::Pass);
        assert_eq!(verdict(measured(20, &[31, 31])), Verdict::Fail);
        // A fixed window's boundary can lift one burst, not both.
        assert_eq!(verdict(measured(20, &[40, 20])), Verdict::Inconclusive);
        // A sequential burst so large that 50 at once cannot exceed its ceiling proves nothing.
        assert_eq!(verdict(measured(40, &[50, 50])), Verdict::Inconclusive);
        let unrefused = Concurrency::SequentialUnrefused {
            plan: BurstPlan::new(20, 10.0, Profile::Standard),
        };
        assert_eq!(verdict(unrefused), Verdict::Inconclusive);
        assert_eq!(
            concurrent_outcome(None, "list_directory").verdict,
            Verdict::NotApplicable
        );
    }
}
