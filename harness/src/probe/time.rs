//! TIME: is the credential check constant time (CWE-208)?
//!
//! Given the user's valid bearer token, the probe builds near-miss tokens: wrong in the first
//! byte (twice, with different bytes: the A/A control), wrong in the last byte, and one byte
//! short. A comparison that exits at the first differing byte takes longer for the last-byte
//! miss, since it walks the whole matching prefix first. Rounds of the four requests, in a
//! fresh random order each round, go over one keep-alive connection (see [`crate::connection::keepalive`] and [`crate::stats::sequential`]),
//! and the paired differences are tested rung by rung (sign test, Bonferroni across looks).
//!
//! Verdicts: `fail` only when the last-byte miss is significantly slower at alpha = 0.001, by a
//! median of at least [`MIN_EFFECT_NS`], and the A/A control is quiet; `pass` says "no difference larger than X ns at N pairs" when X is
//! at most [`RESOLVE_LIMIT_NS`]; otherwise `inconclusive` (a noisy or slow target, or a control
//! that differed). The one-byte-short token is reported, never judged: the usual constant-time
//! comparisons (`hmac.compare_digest`, `subtle`) reveal length by design.
//!
//! Over stdio there is no per-request credential (the launcher is trusted), unless a tool takes
//! its credential as an argument (the seed's `api_key` pattern: a parameter named `api_key`,
//! `token`, `password`...). Given a valid key for it (`--argument-key`), the same rounds are
//! tool calls over the pipe, with the near misses in that argument; the pipe's jitter (tens of
//! microseconds through the async reader) makes small leaks inconclusive rather than passed.
//!
//! Cost: the default profile takes at most 6,000 rounds (24,000 requests) or 20 s; `deep`
//! takes up to 60,000 rounds or 5 minutes and states its estimate before it starts.

use super::{Evidence, Family, Outcome, ProbeInfo, Profile, Run, Severity, Verdict};
use crate::connection::keepalive::{KeepAliveClient, TimingError, Variant};
use crate::connection::{Connection, Reply, TargetError};
use crate::discover::{Point, ToolInfo, with_value_at};
use crate::oracle::refusal::RefusalClassifier;
use crate::stats::sequential::{
    Comparison, Deadlines, Decision, Exchange, Look, Rounds, SequentialPlan, measure_rounds_with,
    run_sequential, run_sequential_with,
};
use serde_json::Value;
use std::time::{Duration, Instant};

pub static TIME_CREDENTIAL_COMPARE: ProbeInfo = ProbeInfo {
    id: "TIME-CREDENTIAL-COMPARE",
    family: Family::TIME,
    title: "the credential check takes the same time however much of the token is right",
    severity: Severity::High,
    cwe: Some(208),
    enforces: "MCP security best practices, authentication: compare credentials in constant time (hmac.compare_digest, subtle::ConstantTimeEq), never with an early-exit ==",
    remediation: "Hash the presented token and compare digests in constant time, or use a constant-time comparison over equal-length inputs.",
};

/// This family's probes, in report order.
pub static PROBES: &[&ProbeInfo] = &[&TIME_CREDENTIAL_COMPARE];

/// A pass must be able to say "no difference larger than this"; a noisier measurement is
/// inconclusive.
pub const RESOLVE_LIMIT_NS: f64 = 5_000.0;
/// The whole procedure's false-positive rate.
pub const ALPHA: f64 = 0.001;
/// The smallest median difference that counts as a leak (see [`SequentialPlan`]).
pub const MIN_EFFECT_NS: f64 = 50.0;

pub const PING: &[u8] = br#"{"jsonrpc":"2.0","id":"mcp-harness-timing","method":"ping"}"#;
const WARM_UP_ROUNDS: usize = 30;

/// The rungs of rounds and the time allowed, by profile.
pub fn plan(profile: Profile) -> (SequentialPlan, Duration) {
    let (rungs, budget) = match profile {
        Profile::Quick => (vec![100, 300, 1_000], 8),
        Profile::Standard => (vec![100, 300, 1_000, 3_000, 6_000], 20),
        Profile::Deep => (vec![100, 300, 1_000, 3_000, 10_000, 30_000, 60_000], 300),
    };
    (
        SequentialPlan {
            rungs,
            alpha: ALPHA,
            min_effect_ns: MIN_EFFECT_NS,
        },
        Duration::from_secs(budget),
    )
}

/// `token` with the byte at `index` replaced by a different character of the same kind.
pub fn change_byte(token: &str, index: usize, nth_alternative: u8) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let original = bytes[index];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let replacement = alphabet
        .iter()
        .copied()
        .filter(|b| *b != original)
        .nth(nth_alternative as usize)
        .unwrap_or(b'x');
    bytes[index] = replacement;
    String::from_utf8_lossy(&bytes).into_owned()
}

pub const FIRST: usize = 0;
pub const FIRST_CONTROL: usize = 1;
pub const LAST: usize = 2;
pub const SHORT: usize = 3;

/// What the probe compares: the last-byte miss against the first-byte miss, with the two
/// first-byte misses as the A/A control.
pub const COMPARISON: Comparison = Comparison {
    main: (FIRST, LAST),
    control: (FIRST, FIRST_CONTROL),
};

/// The verdict a sequential decision leads to (the probe and its sensitivity benchmark share it).
pub fn verdict_of(decision: &Decision) -> Verdict {
    match decision {
        Decision::Differs(_) => Verdict::Fail,
        Decision::NoDifference(look) if look.detectable_ns <= RESOLVE_LIMIT_NS => Verdict::Pass,
        _ => Verdict::Inconclusive,
    }
}

/// The near misses of `token`, labelled, in the order of [`FIRST`], [`FIRST_CONTROL`],
/// [`LAST`], [`SHORT`].
pub fn near_misses(token: &str) -> [(&'static str, String); 4] {
    let last = token.len() - 1;
    [
        ("wrong first byte", change_byte(token, 0, 0)),
        ("wrong first byte (A/A control)", change_byte(token, 0, 1)),
        ("wrong last byte", change_byte(token, last, 0)),
        ("one byte short", token[..last].to_owned()),
    ]
}

/// The four requests of a round, in the order of [`FIRST`], [`FIRST_CONTROL`], [`LAST`], [`SHORT`].
pub fn variants(token: &str, headers: &[(String, String)]) -> Vec<Variant> {
    let with = |label: &'static str, candidate: String| {
        let mut all: Vec<(String, String)> = headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("authorization"))
            .cloned()
            .collect();
        all.push(("Authorization".into(), format!("Bearer {candidate}")));
        Variant {
            label,
            headers: all,
        }
    };
    near_misses(token)
        .into_iter()
        .map(|(label, candidate)| with(label, candidate))
        .collect()
}

/// Argument names (lowercase, without `_` and `-`) that carry a credential.
const CREDENTIAL_ARGUMENTS: &[&str] = &[
    "apikey",
    "token",
    "accesstoken",
    "authtoken",
    "password",
    "secret",
    "credential",
    "credentials",
    "authorization",
    "bearer",
];

/// The first tool with a string argument named like a credential (at any depth), and that
/// point.
pub fn credential_argument(tools: &[ToolInfo]) -> Option<(&ToolInfo, &Point)> {
    tools
        .iter()
        .filter(|tool| tool.is_tool())
        .find_map(|tool| tool.point_named(CREDENTIAL_ARGUMENTS).map(|p| (tool, p)))
}

/// A tool call over the stdio pipe with a near miss in the credential argument, timed from the
/// write to the answer. Runs on a blocking section of the multi-threaded runtime.
struct StdioArgumentExchange<'a> {
    connection: &'a mut Connection,
    runtime: tokio::runtime::Handle,
    tool: String,
    arguments: Value,
    /// The credential's JSON pointer in the arguments.
    pointer: String,
    candidates: Vec<String>,
    /// Recognises a rate limiter's refusal: such a reply is the limiter's answer, not the
    /// credential check's, so it is waited out and the call sent again, never timed.
    refusals: &'a RefusalClassifier,
}

impl Exchange for StdioArgumentExchange<'_> {
    fn variants(&self) -> usize {
        self.candidates.len()
    }

    fn exchange(&mut self, variant: usize) -> Result<(u16, Duration), TimingError> {
        let arguments = with_value_at(
            self.arguments.clone(),
            &self.pointer,
            Value::from(self.candidates[variant].as_str()),
        );
        let params = serde_json::json!({"name": self.tool, "arguments": arguments});
        let started = Instant::now();
        let reply = self
            .runtime
            .block_on(self.connection.request("tools/call", Some(params)));
        let elapsed = started.elapsed();
        if let Some(wait) = self.refusals.wait(&reply) {
            return Err(TimingError::Refused(wait));
        }
        match reply {
            Ok(reply) if reply.is_tool_error() || matches!(reply, Reply::Error { .. }) => {
                Ok((401, elapsed))
            }
            Ok(_) => Ok((200, elapsed)),
            Err(TargetError::Timeout(_)) => Err(TimingError::Timeout),
            Err(error) => Err(TimingError::Io(error.to_string())),
        }
    }
}

/// TIME over stdio through a credential argument.
async fn run_stdio(run: &mut Run<'_>, argument_key: Option<&str>) -> Outcome {
    let info = &TIME_CREDENTIAL_COMPARE;
    let Some((tool, point)) = credential_argument(run.tools) else {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "a stdio target has no per-request credential to time, and no tool takes one as an argument",
        );
    };
    let (tool, point) = (tool.clone(), point.clone());
    let parameter = point.name.clone();
    let Some(key) = argument_key.filter(|k| k.len() >= 2 && k.is_ascii()) else {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            format!(
                "{} takes a credential argument ({parameter}), but no valid key for it was given (--argument-key)",
                tool.name
            ),
        );
    };
    if tokio::runtime::Handle::current().runtime_flavor()
        != tokio::runtime::RuntimeFlavor::MultiThread
    {
        return Outcome::new(
            info,
            Verdict::Inconclusive,
            "timing over stdio needs the multi-threaded runtime",
        );
    }
    let misses = near_misses(key);
    let variants: Vec<Variant> = misses
        .iter()
        .map(|(label, _)| Variant {
            label,
            headers: Vec::new(),
        })
        .collect();
    let (plan, budget) = plan(run.profile);
    let deadline = (Instant::now() + budget).min(run.deadline);
    let hard_deadline = run.deadline;
    let arguments = run.arguments_at(&tool, Some(&point));
    let events = run.events;
    let (connection, refusals) = run.timing_parts();
    let mut exchange = StdioArgumentExchange {
        connection,
        runtime: tokio::runtime::Handle::current(),
        tool: tool.name.clone(),
        arguments,
        pointer: point.pointer.clone(),
        candidates: misses.into_iter().map(|(_, candidate)| candidate).collect(),
        refusals,
    };
    let measured = tokio::task::block_in_place(|| {
        let mut rng = rand::rng();
        let mut warm = Rounds::new(variants.len());
        let started = Instant::now();
        measure_rounds_with(&mut exchange, WARM_UP_ROUNDS, &mut warm, &mut rng)?;
        let per_round = started.elapsed().as_secs_f64() / WARM_UP_ROUNDS as f64;
        if let Some(events) = events {
            let expected = Duration::from_secs_f64(per_round * plan.max_rounds() as f64)
                .min(deadline.saturating_duration_since(Instant::now()));
            events(crate::Event::Notice(&format!(
                "TIME: up to {} rounds of {} tool calls over stdio, expected at most {:.0} s",
                plan.max_rounds(),
                variants.len(),
                expected.as_secs_f64().ceil()
            )));
        }
        run_sequential_with(
            &mut exchange,
            &plan,
            COMPARISON,
            Deadlines {
                soft: deadline,
                hard: hard_deadline,
            },
            &mut rng,
        )
    });
    let (rounds, decision) = match measured {
        Ok(measured) => measured,
        Err(error) => {
            return Outcome::new(
                info,
                Verdict::Inconclusive,
                format!("the timing measurement over stdio stopped: {error}"),
            );
        }
    };
    let refused = rounds.refused;
    run.count_calls(((rounds.len() + WARM_UP_ROUNDS) * variants.len() + refused) as u64);
    let mut outcome = judge(info, &rounds, decision, &plan, &variants);
    for evidence in &mut outcome.evidence {
        evidence.tool = Some(tool.name.clone());
        evidence.request = format!(
            "{} interleaved rounds over the stdio pipe of tools/call {} with {parameter} = <the key with one byte changed>",
            rounds.len(),
            tool.name
        );
    }
    outcome
}

/// A duration in nanoseconds as people read it: `740 ns`, `12.5 us`, `3.1 ms`.
pub fn format_ns(ns: f64) -> String {
    if ns.abs() >= 1_000_000.0 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns.abs() >= 1_000.0 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

pub async fn run(run: &mut Run<'_>) -> Vec<Outcome> {
    let argument_key = run.credentials.argument_key.as_deref();
    let info = &TIME_CREDENTIAL_COMPARE;
    let Some(http) = run.http_view() else {
        return vec![run_stdio(run, argument_key).await];
    };
    let Some(token) = run
        .credentials
        .primary
        .as_deref()
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or(value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| t.len() >= 2 && t.is_ascii())
        .map(str::to_owned)
    else {
        return vec![Outcome::new(
            info,
            Verdict::NotApplicable,
            "no bearer token was given (--header 'Authorization: Bearer ...')",
        )];
    };
    if super::auth::Jwt::parse(&token).is_some() {
        return vec![Outcome::new(
            info,
            Verdict::NotApplicable,
            "the token is a JWT: it is verified by signature, not compared with a stored secret (a changed byte takes a different parsing path, which is no leak)",
        )];
    }
    let url = http.url.clone();
    let variants = variants(&token, &http.user_headers);
    let timeout = run.budget_timeout();
    let (plan, budget) = plan(run.profile);
    let deadline = (Instant::now() + budget).min(run.deadline);
    let hard_deadline = run.deadline;

    let warm_up = {
        let variants = variants.clone();
        tokio::task::spawn_blocking(move || {
            let mut client = KeepAliveClient::new(&url, timeout)?;
            let mut rounds = Rounds::new(variants.len());
            let started = Instant::now();
            crate::stats::sequential::measure_rounds(
                &mut client,
                PING,
                &variants,
                WARM_UP_ROUNDS,
                &mut rounds,
                &mut rand::rng(),
            )?;
            Ok::<_, TimingError>((client, rounds, started.elapsed()))
        })
        .await
    };
    let (mut client, warm, warm_time) = match finished(info, warm_up, "could not time the target") {
        Ok(measured) => measured,
        Err(outcome) => return vec![outcome],
    };
    run.count_calls((WARM_UP_ROUNDS * variants.len()) as u64);
    if let Some(accepted) = warm
        .statuses
        .iter()
        .zip(&variants)
        .find(|(statuses, _)| statuses.iter().any(|s| (200..300).contains(s)))
    {
        return vec![Outcome::new(
            info,
            Verdict::Inconclusive,
            format!(
                "a near-miss token ({}) was accepted, so there is no refusal to time (see AUTH-BAD-CREDENTIALS)",
                accepted.1.label
            ),
        )];
    }
    let per_round = warm_time.as_secs_f64() / WARM_UP_ROUNDS as f64;
    let expected = Duration::from_secs_f64(per_round * plan.max_rounds() as f64)
        .min(deadline.saturating_duration_since(Instant::now()));
    run.notice(&format!(
        "TIME: up to {} rounds of {} requests, expected at most {:.0} s",
        plan.max_rounds(),
        variants.len(),
        expected.as_secs_f64().ceil()
    ));

    let measured = {
        let variants = variants.clone();
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || {
            run_sequential(
                &mut client,
                PING,
                &variants,
                &plan,
                COMPARISON,
                Deadlines {
                    soft: deadline,
                    hard: hard_deadline,
                },
                &mut rand::rng(),
            )
        })
        .await
    };
    let (rounds, decision) = match finished(info, measured, "the timing measurement stopped") {
        Ok(measured) => measured,
        Err(outcome) => return vec![outcome],
    };
    run.count_calls((rounds.len() * variants.len()) as u64);
    vec![judge(info, &rounds, decision, &plan, &variants)]
}

/// The result of a timing task on the blocking pool, or the inconclusive outcome that says why
/// there is none (`stopped` prefixes a measurement error).
fn finished<T>(
    info: &'static ProbeInfo,
    task: Result<Result<T, TimingError>, tokio::task::JoinError>,
    stopped: &str,
) -> Result<T, Outcome> {
    match task {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Outcome::new(
            info,
            Verdict::Inconclusive,
            format!("{stopped}: {error}"),
        )),
        Err(error) => Err(Outcome::new(
            info,
            Verdict::Inconclusive,
            format!("the timing task failed: {error}"),
        )),
    }
}

fn describe(look: &Look) -> String {
    format!(
        "median difference {} (z = {:.1}, p = {:.2e}) at {} pairs",
        format_ns(look.median_ns),
        look.test.z,
        look.test.p_value,
        look.rounds
    )
}

/// Turns the sequential decision into a verdict, noting the refusals of a rate limit that
/// were waited out (those answers are the limiter's and were never timed).
fn judge(
    info: &'static ProbeInfo,
    rounds: &Rounds,
    decision: Decision,
    plan: &SequentialPlan,
    variants: &[Variant],
) -> Outcome {
    let mut outcome = judge_decision(info, rounds, decision, plan, variants);
    let figure = super::figure::Figure::differences(
        "last-byte miss minus first-byte miss",
        &rounds.differences(FIRST, LAST),
        outcome.verdict.name(),
    );
    outcome.figure = figure.map(Box::new);
    if rounds.refused > 0 {
        outcome.summary.push_str(&format!(
            " ({} calls refused by the rate limit were waited out and the round measured again; only answers of the credential check were timed)",
            rounds.refused
        ));
    }
    outcome
}

fn judge_decision(
    info: &'static ProbeInfo,
    rounds: &Rounds,
    decision: Decision,
    plan: &SequentialPlan,
    variants: &[Variant],
) -> Outcome {
    let alpha = plan.per_look_alpha();
    let short = Look::of(&rounds.differences(FIRST, SHORT), alpha);
    let length_note = format!(
        "one byte short vs wrong first byte: {} (reported, not judged)",
        describe(&short)
    );
    let statuses = rounds
        .statuses
        .iter()
        .zip(variants)
        .map(|(s, v)| format!("{}: {s:?}", v.label))
        .collect::<Vec<_>>()
        .join("; ");
    match decision {
        Decision::Differs(look) => {
            let mut rng = rand::rng();
            let (low, high) = crate::stats::bootstrap_median_ci(
                &rounds.differences(FIRST, LAST),
                0.95,
                1000,
                &mut rng,
            );
            Outcome::new(
                info,
                Verdict::Fail,
                format!(
                    "a token wrong in its last byte is refused {} later than one wrong in its first byte: the comparison exits early",
                    format_ns(look.median_ns)
                ),
            )
            .with_evidence(vec![Evidence {
                tool: None,
                point: None,
                request: format!(
                    "{} interleaved rounds over one keep-alive connection of POST ping with Authorization: Bearer <the token with one byte changed>",
                    look.rounds
                ),
                reply: format!("statuses: {statuses}"),
                oracle: format!(
                    "sign test on paired differences (last-byte miss minus first-byte miss): {}, 95% CI of the median [{}, {}], below alpha {alpha:.1e}; the A/A control was quiet",
                    describe(&look),
                    format_ns(low),
                    format_ns(high)
                ),
            }])
        }
        Decision::Reversed(look) => Outcome::new(
            info,
            Verdict::Inconclusive,
            format!(
                "the first-byte miss was slower than the last-byte miss ({}); not an early exit",
                describe(&look)
            ),
        ),
        Decision::ControlDiffers(look) => Outcome::new(
            info,
            Verdict::Inconclusive,
            format!(
                "the A/A control (two first-byte misses) differed ({}): the measurement is unreliable",
                describe(&look)
            ),
        ),
        Decision::NoDifference(look) if look.detectable_ns <= RESOLVE_LIMIT_NS => Outcome::new(
            info,
            Verdict::Pass,
            format!(
                "no difference larger than {} between first- and last-byte misses at {} pairs (alpha {ALPHA}); {length_note}",
                format_ns(look.detectable_ns),
                look.rounds
            ),
        ),
        Decision::NoDifference(look) => Outcome::new(
            info,
            Verdict::Inconclusive,
            format!(
                "at {} pairs the smallest detectable difference is {}, more than the {} this probe must resolve; try --profile deep",
                look.rounds,
                format_ns(look.detectable_ns),
                format_ns(RESOLVE_LIMIT_NS)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_miss_tokens_differ_where_intended() {
        let token = "abcdef0123";
        let built = variants(token, &[("Authorization".into(), "Bearer x".into())]);
        let tokens: Vec<String> = built
            .iter()
            .map(|v| v.headers.last().unwrap().1["Bearer ".len()..].to_owned())
            .collect();
        assert_ne!(tokens[FIRST], tokens[FIRST_CONTROL]);
        assert_eq!(&tokens[FIRST][1..], &token[1..]);
        assert_eq!(&tokens[FIRST_CONTROL][1..], &token[1..]);
        assert_ne!(&tokens[FIRST][..1], &token[..1]);
        assert_eq!(&tokens[LAST][..9], &token[..9]);
        assert_ne!(tokens[LAST], token);
        assert_eq!(tokens[SHORT], &token[..9]);
        // The user's Authorization header is replaced, not sent twice.
        assert!(built.iter().all(|v| v.headers.len() == 1));
    }
}
