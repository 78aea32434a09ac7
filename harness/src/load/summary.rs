//! What a load run concludes, as data (the JSON output) and as text: the totals, latency
//! percentiles by fate, each second's counts and percentiles, the limit the target enforced
//! against the one expected, and where the target stopped keeping up.
//!
//! The enforced limit is read off the served calls only, by when they were sent: the
//! sustained rate is the served calls of the second half of the run over its length (when the
//! target refused some, it served at its limit then); the burst is the least `b` such that
//! `served(0..t) <= b + rate * t` for every `t`, which is what a GCRA or a token bucket with
//! that burst and rate allows. Without a refusal no limit was reached: the figures are lower
//! bounds of any limit, and the verdict says so.
//!
//! Cost: linear in the served calls. Failure: none.

use super::{LoadCall, LoadPlan, Recording};
use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles, in microseconds from the intended send time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Option<Percentiles> {
        (!histogram.is_empty()).then(|| Percentiles {
            count: histogram.len(),
            p50: histogram.value_at_quantile(0.5),
            p90: histogram.value_at_quantile(0.9),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        })
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Second {
    /// Seconds from the start (of intended send time).
    pub second: usize,
    /// The plan's rate at the middle of this second.
    pub offered_per_second: f64,
    pub offered: u64,
    pub served: u64,
    pub refused: u64,
    pub failed: u64,
    pub not_sent: u64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// Every call offered in this second was answered, within the latency budget.
    pub kept_up: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Totals {
    pub offered: u64,
    pub served: u64,
    pub refused: u64,
    pub failed: u64,
    pub not_sent: u64,
}

/// The limit the target enforced, from its served calls.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Enforced {
    /// Some calls were refused by a rate limiter: the figures are the limit. Otherwise they
    /// are what was served, a lower bound of any limit.
    pub limit_reached: bool,
    pub per_second: f64,
    pub burst: u64,
}

/// How the enforced limit compares with the expected one.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LimitVerdict {
    /// Within the expected rate and burst (with their tolerance).
    WithinExpected,
    /// More was served than the expected limit allows.
    AboveExpected,
    /// Nothing was expected, or too little was offered to tell.
    NotJudged,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoadSummary {
    pub target: String,
    pub transport: String,
    pub tool: String,
    pub plan: PlanSummary,
    pub totals: Totals,
    pub latency_us: LatencyByFate,
    pub enforced: Enforced,
    pub expected_per_second: Option<f64>,
    pub expected_burst: Option<u32>,
    pub limit_verdict: LimitVerdict,
    /// Why the verdict is what it is, in one sentence.
    pub limit_reason: String,
    /// The first second in which the target did not keep up, and the rate offered then.
    pub stopped_keeping_up_at_second: Option<usize>,
    pub stopped_keeping_up_at_per_second: Option<f64>,
    /// The generator's own worst lag behind its schedule: when large, the figures measure the
    /// generator, not the target.
    pub worst_send_lag_us: u64,
    pub failure_samples: Vec<String>,
    pub seconds: Vec<Second>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlanSummary {
    pub rate: f64,
    pub ramp_to: Option<f64>,
    pub duration_s: f64,
    pub connections: usize,
    pub max_in_flight: usize,
    pub latency_budget_ms: u64,
    pub elapsed_s: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencyByFate {
    pub served: Option<Percentiles>,
    pub refused: Option<Percentiles>,
    pub failed: Option<Percentiles>,
}

impl LimitVerdict {
    /// How the verdict reads in text.
    pub fn label(self) -> &'static str {
        match self {
            LimitVerdict::WithinExpected => "within the expected limit",
            LimitVerdict::AboveExpected => "ABOVE the expected limit",
            LimitVerdict::NotJudged => "not judged",
        }
    }
}

/// The share by which the served rate may exceed the expected one before it counts, and the
/// calls by which the burst may: scheduling and clock granularity on both sides.
pub const RATE_TOLERANCE: f64 = 0.10;
pub const BURST_TOLERANCE: u64 = 2;

/// Where the run came from, for the summary.
pub struct RunFacts<'a> {
    pub target: &'a str,
    pub transport: &'a str,
    pub call: &'a LoadCall,
    pub plan: &'a LoadPlan,
    pub connections: usize,
    pub expected_per_second: Option<f64>,
    pub expected_burst: Option<u32>,
}

/// The limit read off the send times (microseconds, ascending) of the served calls.
pub fn enforced(served_sent_micros: &[u64], duration_s: f64, limit_reached: bool) -> Enforced {
    let Some(&first) = served_sent_micros.first() else {
        return Enforced {
            limit_reached,
            per_second: 0.0,
            burst: 0,
        };
    };
    let half = first as f64 / 1e6 + (duration_s - first as f64 / 1e6) / 2.0;
    let second_half = served_sent_micros
        .iter()
        .filter(|&&sent| sent as f64 / 1e6 >= half)
        .count();
    let per_second = second_half as f64 / (duration_s - half).max(1e-3);
    let burst = served_sent_micros
        .iter()
        .enumerate()
        .map(|(index, &sent)| {
            let allowed = per_second * (sent - first) as f64 / 1e6;
            ((index + 1) as f64 - allowed).ceil().max(0.0) as u64
        })
        .max()
        .unwrap_or(0);
    Enforced {
        limit_reached,
        per_second,
        burst,
    }
}

/// Whether the enforced limit is within the expected one.
pub fn judge(
    enforced: &Enforced,
    offered_per_second: f64,
    expected_per_second: Option<f64>,
    expected_burst: Option<u32>,
) -> (LimitVerdict, String) {
    if expected_per_second.is_none() && expected_burst.is_none() {
        return (
            LimitVerdict::NotJudged,
            "no --expect-rate or --expect-burst to judge against".into(),
        );
    }
    if let Some(expected) = expected_per_second {
        let ceiling = expected * (1.0 + RATE_TOLERANCE) + 1.0;
        if enforced.per_second > ceiling {
            return (
                LimitVerdict::AboveExpected,
                format!(
                    "served {:.1} calls/s sustained, above the expected {expected} (+{:.0}%)",
                    enforced.per_second,
                    RATE_TOLERANCE * 100.0
                ),
            );
        }
        if !enforced.limit_reached && offered_per_second <= ceiling {
            return (
                LimitVerdict::NotJudged,
                format!(
                    "no call was refused, and {offered_per_second:.1} calls/s offered is not above the expected {expected}: offer more"
                ),
            );
        }
    }
    if let Some(expected) = expected_burst {
        let ceiling = u64::from(expected) + BURST_TOLERANCE;
        if enforced.burst > ceiling {
            return (
                LimitVerdict::AboveExpected,
                format!(
                    "a burst of {} calls was served, above the expected {expected} (+{BURST_TOLERANCE})",
                    enforced.burst
                ),
            );
        }
    }
    if !enforced.limit_reached {
        return (
            LimitVerdict::NotJudged,
            "no call was refused, so no limit was reached".into(),
        );
    }
    (
        LimitVerdict::WithinExpected,
        format!(
            "the target enforced {:.1} calls/s with a burst of {}, within what was expected",
            enforced.per_second, enforced.burst
        ),
    )
}

/// The summary of `recording`.
pub fn summarise(facts: &RunFacts<'_>, recording: &Recording) -> LoadSummary {
    let plan = facts.plan;
    let budget_micros = plan.latency_budget.as_micros() as u64;
    let seconds: Vec<Second> = recording
        .seconds
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let answered = record.served + record.refused + record.failed;
            let p99 = (!record.latency.is_empty()).then(|| record.latency.value_at_quantile(0.99));
            Second {
                second: index,
                offered_per_second: plan.rate_at(index as f64 + 0.5),
                offered: record.offered,
                served: record.served,
                refused: record.refused,
                failed: record.failed,
                not_sent: record.not_sent,
                p50_us: (!record.latency.is_empty()).then(|| record.latency.value_at_quantile(0.5)),
                p99_us: p99,
                kept_up: record.not_sent == 0
                    && answered == record.offered
                    && record.latency.max() <= budget_micros,
            }
        })
        .collect();
    let totals = Totals {
        offered: seconds.iter().map(|s| s.offered).sum(),
        served: seconds.iter().map(|s| s.served).sum(),
        refused: seconds.iter().map(|s| s.refused).sum(),
        failed: seconds.iter().map(|s| s.failed).sum(),
        not_sent: seconds.iter().map(|s| s.not_sent).sum(),
    };
    let mut sent = recording.served_sent_micros.clone();
    sent.sort_unstable();
    let enforced = enforced(&sent, plan.duration.as_secs_f64(), totals.refused > 0);
    // What the second half offered, the part the sustained rate is read from.
    let offered_late = plan.rate_at(plan.duration.as_secs_f64() * 0.75);
    let (limit_verdict, limit_reason) = judge(
        &enforced,
        offered_late,
        facts.expected_per_second,
        facts.expected_burst,
    );
    let stopped = seconds.iter().find(|s| !s.kept_up && s.offered > 0);
    LoadSummary {
        target: facts.target.to_owned(),
        transport: facts.transport.to_owned(),
        tool: facts.call.tool.clone(),
        plan: PlanSummary {
            rate: plan.rate,
            ramp_to: plan.ramp_to,
            duration_s: plan.duration.as_secs_f64(),
            connections: facts.connections,
            max_in_flight: plan.max_in_flight,
            latency_budget_ms: plan.latency_budget.as_millis() as u64,
            elapsed_s: recording.elapsed,
        },
        totals,
        latency_us: LatencyByFate {
            served: Percentiles::of(&recording.served_latency),
            refused: Percentiles::of(&recording.refused_latency),
            failed: Percentiles::of(&recording.failed_latency),
        },
        enforced,
        expected_per_second: facts.expected_per_second,
        expected_burst: facts.expected_burst,
        limit_verdict,
        limit_reason,
        stopped_keeping_up_at_second: stopped.map(|s| s.second),
        stopped_keeping_up_at_per_second: stopped.map(|s| s.offered_per_second),
        worst_send_lag_us: recording.worst_send_lag_micros,
        failure_samples: recording.failure_samples.clone(),
        seconds,
    }
}

impl LoadSummary {
    /// The summary for a person: a few lines.
    pub fn human(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let plan = &self.plan;
        let rate = match plan.ramp_to {
            Some(end) => format!("{} to {end} calls/s", plan.rate),
            None => format!("{} calls/s", plan.rate),
        };
        let _ = writeln!(
            out,
            "load: {} ({}), tool {}: {rate} for {} s over {} connection(s)",
            self.target, self.transport, self.tool, plan.duration_s, plan.connections
        );
        let t = &self.totals;
        let _ = writeln!(
            out,
            "  offered {}, served {}, refused {}, failed {}, not sent {}",
            t.offered, t.served, t.refused, t.failed, t.not_sent
        );
        for (name, percentiles) in [
            ("served", &self.latency_us.served),
            ("refused", &self.latency_us.refused),
            ("failed", &self.latency_us.failed),
        ] {
            if let Some(p) = percentiles {
                let _ = writeln!(
                    out,
                    "  {name:<8} latency from intended send: p50 {} p90 {} p99 {} p99.9 {} max {}",
                    human_micros(p.p50),
                    human_micros(p.p90),
                    human_micros(p.p99),
                    human_micros(p.p999),
                    human_micros(p.max)
                );
            }
        }
        let e = &self.enforced;
        let _ = writeln!(
            out,
            "  {} {:.1} calls/s sustained, burst {}",
            if e.limit_reached {
                "enforced limit:"
            } else {
                "no limit reached; served"
            },
            e.per_second,
            e.burst
        );
        let _ = writeln!(
            out,
            "  limit: {}: {}",
            self.limit_verdict.label(),
            self.limit_reason
        );
        match (
            self.stopped_keeping_up_at_second,
            self.stopped_keeping_up_at_per_second,
        ) {
            (Some(second), Some(rate)) => {
                let _ = writeln!(
                    out,
                    "  stopped keeping up at second {second} ({rate:.0} calls/s offered): calls unanswered, not sent, or slower than {} ms",
                    plan.latency_budget_ms
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  kept up throughout (every call answered within {} ms)",
                    plan.latency_budget_ms
                );
            }
        }
        if self.worst_send_lag_us > 10_000 {
            let _ = writeln!(
                out,
                "  note: the generator fell up to {} behind its schedule (the latencies include it)",
                human_micros(self.worst_send_lag_us)
            );
        }
        for sample in &self.failure_samples {
            let _ = writeln!(out, "  a failure: {sample}");
        }
        out
    }
}

fn human_micros(micros: u64) -> String {
    if micros >= 1_000_000 {
        format!("{:.2}s", micros as f64 / 1e6)
    } else if micros >= 1_000 {
        format!("{:.1}ms", micros as f64 / 1e3)
    } else {
        format!("{micros}us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Send times of a GCRA with this burst and rate, offered `offered` calls a second for
    /// `seconds`.
    fn gcra_served(burst: u32, rate: f64, offered: f64, seconds: f64) -> Vec<u64> {
        let interval = 1.0 / rate;
        let tolerance = interval * f64::from(burst - 1);
        let mut tat: f64 = 0.0;
        let mut served = Vec::new();
        let mut t = 0.0;
        while t < seconds {
            let start = tat.max(t);
            if start - t <= tolerance + 1e-12 {
                tat = start + interval;
                served.push((t * 1e6) as u64);
            }
            t += 1.0 / offered;
        }
        served
    }

    #[test]
    fn a_gcra_limit_is_read_back_from_its_served_calls() {
        let served = gcra_served(40, 20.0, 200.0, 10.0);
        let enforced = enforced(&served, 10.0, true);
        assert!((enforced.per_second - 20.0).abs() < 1.0, "{enforced:?}");
        assert!((38..=42).contains(&enforced.burst), "{enforced:?}");
        let (verdict, _) = judge(&enforced, 200.0, Some(20.0), Some(40));
        assert_eq!(verdict, LimitVerdict::WithinExpected);
        // Expecting less than it allows fails, on the rate and on the burst.
        let (verdict, reason) = judge(&enforced, 200.0, Some(10.0), None);
        assert_eq!(verdict, LimitVerdict::AboveExpected, "{reason}");
        let (verdict, reason) = judge(&enforced, 200.0, None, Some(10));
        assert_eq!(verdict, LimitVerdict::AboveExpected, "{reason}");
    }

    #[test]
    fn a_target_without_a_limit_is_above_any_expected_limit_it_was_offered_past() {
        let served: Vec<u64> = (0..2_000).map(|i| i * 5_000).collect(); // 200/s, all served
        let enforced = enforced(&served, 10.0, false);
        let (verdict, _) = judge(&enforced, 200.0, Some(20.0), Some(40));
        assert_eq!(verdict, LimitVerdict::AboveExpected);
        // Offered no more than the expected rate, unrefused: nothing to conclude.
        let served: Vec<u64> = (0..100).map(|i| i * 100_000).collect(); // 10/s
        let enforced = super::enforced(&served, 10.0, false);
        let (verdict, reason) = judge(&enforced, 10.0, Some(20.0), None);
        assert_eq!(verdict, LimitVerdict::NotJudged, "{reason}");
    }
}
