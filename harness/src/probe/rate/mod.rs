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
use crate::connection::{Reply, TargetError, excerpt};
use crate::discover::{Point, ToolInfo, with_value_at};
use crate::oracle::refusal::{self, RefusalClassifier};
use serde_json::Value;
use std::time::{Duration, Instant};

mod burst;
mod flood;
mod rotation;

use burst::*;
use flood::*;
use rotation::*;

pub static RATE_FLOOD: ProbeInfo = ProbeInfo {
    id: "RATE-FLOOD",
    family: Family::RATE,
    title: "a flood of tool calls is refused once past the limit",
    severity: Severity::Medium,
    cwe: Some(770),
    enforces: "MCP tools, security considerations: servers MUST rate limit tool invocations",
    remediation: "Limit tool calls per principal (a token bucket or GCRA) and refuse the excess with 429 and Retry-After (HTTP) or a JSON-RPC error (stdio).",
};

pub static RATE_ROTATING_ID: ProbeInfo = ProbeInfo {
    id: "RATE-ROTATING-ID",
    family: Family::RATE,
    title: "a caller cannot reset its limit with client-chosen headers or arguments",
    severity: Severity::High,
    cwe: Some(799),
    enforces: "MCP security best practices, rate limiting: limits apply per authenticated principal, not per client-supplied identifier",
    remediation: "Key the limiter on the authenticated principal, never on a tool argument such as client_id; trust X-Forwarded-For only from a configured proxy.",
};

pub static RATE_SECOND_PRINCIPAL: ProbeInfo = ProbeInfo {
    id: "RATE-SECOND-PRINCIPAL",
    family: Family::RATE,
    title: "one principal's flood does not lock out another",
    severity: Severity::Medium,
    cwe: Some(400),
    enforces: "MCP security best practices, rate limiting: per-principal limits, so one caller cannot deny service to the rest",
    remediation: "Keep one bucket per principal (bounded in number) rather than one for the whole server.",
};

pub static RATE_CONCURRENT_BURST: ProbeInfo = ProbeInfo {
    id: "RATE-CONCURRENT-BURST",
    family: Family::RATE,
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

/// How many calls the first principal makes, after its flood, to meet a refusal before the
/// second principal's three (a limiter refills a token or two in the meantime).
const FIRST_PRINCIPAL_TRIES: usize = 5;

/// The value of the identity argument in plain calls.
const PLAIN_IDENTITY: &str = "harness-client";

/// Names of tools that change things, reach out, or need privileges a second principal may lack.
const AVOIDED_WORDS: &[&str] = &[
    "write", "delete", "remove", "exec", "run", "fetch", "create", "update", "move", "send",
    "kill", "drop", "push", "commit", "admin",
];

/// The tool to flood: read-only by name, fewest required parameters; never one whose name
/// says it changes, reaches out or needs privileges, and never a prompt or a resource template
/// (the specification requires tool calls to be limited, not those).
pub fn cheap_tool(tools: &[ToolInfo]) -> Option<&ToolInfo> {
    let named = |tool: &ToolInfo, words: &[&str]| {
        let name = tool.name.to_ascii_lowercase();
        words.iter().any(|w| name.contains(w))
    };
    tools
        .iter()
        .filter(|t| t.is_tool() && !named(t, AVOIDED_WORDS))
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

pub async fn run(run: &mut Run<'_>) -> Vec<Outcome> {
    let second_authorization = run.credentials.second.as_deref();
    let expect = run.expect;
    let Some(tool) = served_cheap_tool(run) else {
        return crate::probe::every(
            PROBES,
            Verdict::NotApplicable,
            "no tool that only reads to flood",
        );
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
    let mut second_connection = match second_authorization {
        Some(credential) if run.is_streamable_http() => run.connect_as(credential).await.ok(),
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
        return crate::probe::every(PROBES, Verdict::Inconclusive, &why);
    }
    let limited = flood.refused > 0;

    // While the limit is in force: rotated identity headers, then the second principal.
    let header_rotation = if limited && run.is_streamable_http() {
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
            // The bucket may have refilled by a call or two since the flood ended, so the
            // first principal calls until refused (at most FIRST_PRINCIPAL_TRIES times).
            let mut first_refused = false;
            for _ in 0..FIRST_PRINCIPAL_TRIES {
                if matches!(
                    call_with_headers(run, Vec::new(), &tool.name, &arguments).await,
                    Fate::Refused(_)
                ) {
                    first_refused = true;
                    break;
                }
            }
            let mut served = 0;
            for _ in 0..3 {
                let params = serde_json::json!({"name": tool.name, "arguments": arguments});
                let reply = run.request_on(other, "tools/call", params).await;
                if fate(&reply, &run.refusals) == Fate::Served {
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
    outcomes.push(
        flood_outcome(&flood, &tool.name, expect, recovery).with_figure(Some(flood.figure(expect))),
    );

    // RATE-ROTATING-ID
    outcomes.push(rotating_id_outcome(
        header_rotation,
        argument_rotation,
        limited,
        run.is_stdio(),
        &tool.name,
    ));

    // RATE-SECOND-PRINCIPAL
    outcomes.push(second_principal_outcome(
        second,
        !run.is_streamable_http(),
        second_authorization.is_some(),
        &tool.name,
    ));

    // RATE-CONCURRENT-BURST
    outcomes.push(concurrent_outcome(concurrent, &tool.name));
    outcomes
}

/// RATE-SECOND-PRINCIPAL's verdict: `second` is how many of the second principal's 3 calls
/// were served and whether the first principal was refused just before (`None` when the
/// experiment could not run: a stdio target, no `--token2`, or a flood never refused).
fn second_principal_outcome(
    second: Option<(usize, bool)>,
    one_principal: bool,
    has_second: bool,
    tool: &str,
) -> Outcome {
    let info = &RATE_SECOND_PRINCIPAL;
    match second {
        None if one_principal => Outcome::new(
            info,
            Verdict::NotApplicable,
            "a stdio target, or a legacy SSE connection, serves one principal",
        ),
        None if !has_second => Outcome::new(
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
            tool: Some(tool.to_owned()),
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
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_principal_refused_with_the_first_is_one_bucket_for_everyone() {
        let verdict = |second, stdio, has_second| {
            second_principal_outcome(second, stdio, has_second, "t").verdict
        };
        assert_eq!(verdict(Some((0, true)), false, true), Verdict::Fail);
        assert_eq!(verdict(Some((1, true)), false, true), Verdict::Fail);
        assert_eq!(verdict(Some((3, true)), false, true), Verdict::Pass);
        assert_eq!(verdict(Some((2, false)), false, true), Verdict::Pass);
        // Refused, but the first principal was not refused just before: nothing proved.
        assert_eq!(
            verdict(Some((1, false)), false, true),
            Verdict::Inconclusive
        );
        for (stdio, has_second) in [(true, true), (false, false), (false, true)] {
            assert_eq!(verdict(None, stdio, has_second), Verdict::NotApplicable);
        }
    }
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
    fn a_prompt_or_a_resource_template_is_never_flooded() {
        // Both read-only by name with one argument, against a tool with two: the tool is
        // flooded, because the rule RATE checks is about tool calls.
        let prompt = crate::surface::prompt_tool(
            &json!({"name": "get_summary", "arguments": [{"name": "topic"}]}),
        )
        .unwrap();
        let template =
            crate::surface::template_tool(&json!({"uriTemplate": "docs://{page}"})).unwrap();
        let tool = parse_tool(&json!({"name": "lookup", "inputSchema": {"type": "object", "required": ["a", "b"], "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}})).unwrap();
        let tools = vec![prompt.clone(), template.clone(), tool];
        assert_eq!(cheap_tool(&tools).unwrap().name, "lookup");
        assert!(cheap_tool(&[prompt, template]).is_none());
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
