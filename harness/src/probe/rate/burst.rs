//! RATE-CONCURRENT-BURST: calls sent at once against calls sent one by one, after the same
//! refill wait.

use super::*;

/// How the concurrent bursts are sized and spaced, from the main flood.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct BurstPlan {
    /// Calls per concurrent burst: about twice the flood's burst, within the profile's cap.
    pub(super) size: usize,
    /// The wait before each burst: the flood's burst over its sustained rate (the time to
    /// refill), within [`LONGEST_REFILL_WAIT`], plus 200 ms.
    pub(super) refill_wait: Duration,
    /// The sustained rate the flood measured, calls per second.
    pub(super) sustained: f64,
}

impl BurstPlan {
    pub(super) fn new(flood_burst: usize, sustained: f64, profile: Profile) -> BurstPlan {
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
    pub(super) fn ceiling(&self, sequential: usize, elapsed: Duration) -> f64 {
        1.25 * (sequential as f64 + self.sustained * elapsed.as_secs_f64() + 1.0) + 4.0
    }
}

/// One burst of calls sent at once.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Burst {
    pub(super) served: usize,
    pub(super) refused: usize,
    pub(super) lost: usize,
    pub(super) elapsed: Duration,
}

/// What RATE-CONCURRENT-BURST measured.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Concurrency {
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
pub(super) async fn concurrent_bursts(
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
        let started = Instant::now();
        let replies = run.at_once("tools/call", params).await;
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

pub(super) fn concurrent_outcome(concurrency: Option<Concurrency>, tool: &str) -> Outcome {
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
