//! The flood: one cheap call, as fast as the target answers (one by one, then in batches),
//! with refusals recognised by behaviour.

use super::*;
use crate::probe::figure::{Figure, MAX_TIMELINE_CALLS, TimedCall};

/// What one flood saw.
#[derive(Debug, Default)]
pub(super) struct Flood {
    pub(super) served_before_refusal: usize,
    pub(super) served_after_refusal: usize,
    pub(super) refused: usize,
    pub(super) lost: usize,
    pub(super) elapsed: Duration,
    pub(super) since_first_refusal: Duration,
    pub(super) refusal_latencies: Vec<Duration>,
    pub(super) last_wait: Option<Duration>,
    pub(super) refusal_excerpt: String,
    pub(super) http_429_without_retry_after: bool,
    /// The refusals were recognised by behaviour (served, then another answer under flood).
    pub(super) by_behaviour: bool,
    /// Each call's answer, in order, for the report's picture (the first
    /// [`MAX_TIMELINE_CALLS`]).
    pub(super) timeline: Vec<TimedCall>,
    pub(super) timeline_not_shown: usize,
}

impl Flood {
    /// The flood as a picture, against what the user expects of the limit.
    pub(super) fn figure(&self, expect: Expectations) -> Figure {
        Figure::CallTimeline {
            calls: self.timeline.clone(),
            calls_not_shown: self.timeline_not_shown,
            expected_burst: expect.burst,
            expected_per_second: expect.per_second,
        }
    }
}

/// Calls sent one by one at the start of a flood, to learn what the served call looks like;
/// after them, calls go [`FLOOD_BATCH`] at a time (pipelined on stdio, one connection each
/// over HTTP), so the flood drives the target as hard as it answers.
pub(super) const FLOOD_SEQUENTIAL: usize = 16;
pub const FLOOD_BATCH: usize = 8;

pub(super) async fn flood(run: &mut Run<'_>, tool: &str, arguments: &Value, size: usize) -> Flood {
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
        timeline: Vec::new(),
        timeline_not_shown: 0,
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
            run.at_once("tools/call", vec![params.clone(); count]).await
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
            // Lost calls (no answer) are counted in the summary, not drawn.
            if judged != Fate::Lost {
                if flood.timeline.len() < MAX_TIMELINE_CALLS {
                    flood.timeline.push(TimedCall {
                        at_ms: started.elapsed().as_millis().min(u32::MAX as u128) as u32,
                        served: judged == Fate::Served,
                    });
                } else {
                    flood.timeline_not_shown += 1;
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

pub(super) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// RATE-FLOOD's verdict from what the flood saw: refusals (with the recovery check's result)
/// pass unless the limit let through more than `--expect-*` allow; a flood served whole fails
/// only past the ceiling or the expectations, and is otherwise inconclusive.
pub(super) fn flood_outcome(
    flood: &Flood,
    tool: &str,
    expect: Expectations,
    recovery: Option<(Duration, bool)>,
) -> Outcome {
    let total = flood.served_before_refusal + flood.served_after_refusal + flood.refused;
    let rate = total as f64 / flood.elapsed.as_secs_f64().max(1e-9);
    let limited = flood.refused > 0;
    let sustained =
        flood.served_after_refusal as f64 / flood.since_first_refusal.as_secs_f64().max(1e-3);
    let info = &RATE_FLOOD;
    let request = format!(
        "{total} tools/call of {} with baseline arguments, {FLOOD_SEQUENTIAL} one by one then {FLOOD_BATCH} at a time, in {:.1} s ({rate:.0}/s)",
        tool,
        flood.elapsed.as_secs_f64()
    );
    if !limited {
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
                tool: Some(tool.to_owned()),
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
            Some((wait, true)) => {
                summary.push_str(&format!("; served again after {:.1} s", wait.as_secs_f64()))
            }
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
            Some(reason) => {
                Outcome::new(info, Verdict::Fail, reason.clone()).with_evidence(vec![Evidence {
                    tool: Some(tool.to_owned()),
                    point: None,
                    request,
                    reply: format!("{}; first refusal: {}", summary, flood.refusal_excerpt),
                    oracle: reason,
                }])
            }
            None => Outcome::new(info, Verdict::Pass, summary),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served_whole(calls: usize, seconds: f64) -> Flood {
        Flood {
            served_before_refusal: calls,
            elapsed: Duration::from_secs_f64(seconds),
            ..Flood::default()
        }
    }

    fn limited(burst: usize, after: usize, refused: usize) -> Flood {
        Flood {
            served_before_refusal: burst,
            served_after_refusal: after,
            refused,
            elapsed: Duration::from_secs(3),
            since_first_refusal: Duration::from_secs(2),
            refusal_latencies: vec![Duration::from_micros(100); refused],
            ..Flood::default()
        }
    }

    #[test]
    fn a_flood_served_whole_fails_only_past_the_ceiling_or_the_expectations() {
        let none = Expectations::default();
        // Past the ceiling: 1,200 calls at 3,000/s.
        let outcome = flood_outcome(&served_whole(1200, 0.4), "t", none, None);
        assert_eq!(outcome.verdict, Verdict::Fail, "{}", outcome.summary);
        // Too few calls, or too slow, to say a sensible limit would have refused.
        for flood in [served_whole(400, 0.2), served_whole(1200, 24.0)] {
            let outcome = flood_outcome(&flood, "t", none, None);
            assert_eq!(
                outcome.verdict,
                Verdict::Inconclusive,
                "{}",
                outcome.summary
            );
            assert!(outcome.summary.contains("short of the ceiling"));
        }
        // The user said the burst is 100: 400 served is a finding at any speed.
        let expect = Expectations {
            burst: Some(100),
            per_second: Some(10.0),
        };
        let outcome = flood_outcome(&served_whole(400, 8.0), "t", expect, None);
        assert_eq!(outcome.verdict, Verdict::Fail, "{}", outcome.summary);
    }

    #[test]
    fn a_limited_flood_passes_unless_the_limit_is_looser_than_expected() {
        let flood = limited(50, 40, 300);
        let outcome = flood_outcome(
            &flood,
            "t",
            Expectations::default(),
            Some((Duration::from_secs(1), true)),
        );
        assert_eq!(outcome.verdict, Verdict::Pass, "{}", outcome.summary);
        assert!(outcome.summary.contains("first refusal after 50 calls"));
        assert!(outcome.summary.contains("served again after"));
        let strict = Expectations {
            burst: Some(20),
            per_second: None,
        };
        let outcome = flood_outcome(&flood, "t", strict, None);
        assert_eq!(outcome.verdict, Verdict::Fail, "{}", outcome.summary);
        let slow = Expectations {
            burst: Some(50),
            per_second: Some(5.0),
        };
        // 40 served in the 2 s after the first refusal: 20/s against an expected 5/s.
        let outcome = flood_outcome(&flood, "t", slow, None);
        assert_eq!(outcome.verdict, Verdict::Fail, "{}", outcome.summary);
    }
}
