//! The load run as one self-contained HTML page (`mcp-harness load --html FILE`): the verdict,
//! the totals and percentiles, and two charts drawn with the report's own SVG code
//! ([`crate::report::chart::series`]): calls per second (offered, served, refused, failed,
//! against the expected rate) and latency per second (p50, p99, against the budget). Every
//! text from the run is escaped.
//!
//! Cost: linear in the seconds of the run. Failure: none.

use super::summary::{LoadSummary, Percentiles};
use crate::report::chart::{self, Series};
use crate::report::html::escape;
use std::fmt::Write;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#1b1f24}\
h1{font-size:1.4em}table{border-collapse:collapse}td,th{border:1px solid #d0d5dd;padding:.25em .6em;text-align:right}\
figure{margin:.5em 0 1.5em}figcaption{color:#475467}";

fn row(name: &str, percentiles: &Option<Percentiles>) -> String {
    match percentiles {
        Some(p) => format!(
            "<tr><th>{name}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            p.count,
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.p999),
            ms(p.max)
        ),
        None => format!("<tr><th>{name}</th><td>0</td><td colspan=\"5\">-</td></tr>"),
    }
}

fn ms(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1000.0)
}

/// The page.
pub fn render(summary: &LoadSummary) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mcp-harness load: {}</title><style>{STYLE}</style></head><body>",
        escape(&summary.target)
    );
    let _ = write!(
        out,
        "<h1>Load: {}</h1><p>{} over {}, tool <code>{}</code>, {} connection(s), up to {} calls in flight.</p>",
        escape(&summary.target),
        escape(&match summary.plan.ramp_to {
            Some(end) => format!(
                "{} to {end} calls/s for {} s",
                summary.plan.rate, summary.plan.duration_s
            ),
            None => format!(
                "{} calls/s for {} s",
                summary.plan.rate, summary.plan.duration_s
            ),
        }),
        escape(&summary.transport),
        escape(&summary.tool),
        summary.plan.connections,
        summary.plan.max_in_flight
    );
    let _ = write!(
        out,
        "<p><strong>Limit: {}</strong>: {}</p>",
        summary.limit_verdict.label(),
        escape(&summary.limit_reason)
    );
    let keeping_up = match (
        summary.stopped_keeping_up_at_second,
        summary.stopped_keeping_up_at_per_second,
    ) {
        (Some(second), Some(rate)) => {
            format!("Stopped keeping up at second {second}, with {rate:.0} calls/s offered.")
        }
        _ => format!(
            "Kept up throughout: every call answered within {} ms.",
            summary.plan.latency_budget_ms
        ),
    };
    let _ = write!(out, "<p>{}</p>", escape(&keeping_up));
    let t = &summary.totals;
    let _ = write!(
        out,
        "<table><tr><th>offered</th><th>served</th><th>refused</th><th>failed</th><th>not sent</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        t.offered, t.served, t.refused, t.failed, t.not_sent
    );
    let _ = write!(
        out,
        "<h2>Latency from the intended send time (ms)</h2><table><tr><th></th><th>calls</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>{}{}{}</table>",
        row("served", &summary.latency_us.served),
        row("refused", &summary.latency_us.refused),
        row("failed", &summary.latency_us.failed)
    );
    let at = |s: &super::summary::Second| s.second as f64 + 0.5;
    let per_second = |pick: fn(&super::summary::Second) -> u64| {
        summary
            .seconds
            .iter()
            .map(|s| (at(s), pick(s) as f64))
            .collect::<Vec<_>>()
    };
    let mut lines = vec![
        Series {
            colour: chart::EXPECTED_COLOUR,
            label: "offered",
            dashed: true,
            points: summary
                .seconds
                .iter()
                .map(|s| (at(s), s.offered_per_second))
                .collect(),
        },
        Series {
            colour: chart::SERVED_COLOUR,
            label: "served",
            dashed: false,
            points: per_second(|s| s.served),
        },
        Series {
            colour: chart::REFUSED_COLOUR,
            label: "refused",
            dashed: false,
            points: per_second(|s| s.refused),
        },
        Series {
            colour: chart::OTHER_COLOUR,
            label: "failed or not sent",
            dashed: false,
            points: per_second(|s| s.failed + s.not_sent),
        },
    ];
    if let Some(expected) = summary.expected_per_second {
        let end = summary.seconds.len() as f64;
        lines.push(Series {
            colour: chart::REFUSED_COLOUR,
            label: "expected rate",
            dashed: true,
            points: vec![(0.0, expected), (end, expected)],
        });
    }
    out.push_str("<h2>Calls per second</h2>");
    out.push_str(&chart::series(
        "calls per second, by second of intended send time",
        "second of the run",
        "calls/s",
        &lines,
        &format!(
            "enforced: {:.1} calls/s sustained, burst {}{}",
            summary.enforced.per_second,
            summary.enforced.burst,
            if summary.enforced.limit_reached {
                ""
            } else {
                " (no call refused: a lower bound)"
            }
        ),
    ));
    let latency = |pick: fn(&super::summary::Second) -> Option<u64>| {
        summary
            .seconds
            .iter()
            .filter_map(|s| pick(s).map(|v| (at(s), v as f64 / 1000.0)))
            .collect::<Vec<_>>()
    };
    let budget = summary.plan.latency_budget_ms as f64;
    let end = summary.seconds.len() as f64;
    out.push_str("<h2>Latency per second</h2>");
    out.push_str(&chart::series(
        "latency per second",
        "second of the run",
        "ms",
        &[
            Series {
                colour: chart::SERVED_COLOUR,
                label: "p50",
                dashed: false,
                points: latency(|s| s.p50_us),
            },
            Series {
                colour: chart::REFUSED_COLOUR,
                label: "p99",
                dashed: false,
                points: latency(|s| s.p99_us),
            },
            Series {
                colour: chart::EXPECTED_COLOUR,
                label: "budget",
                dashed: true,
                points: vec![(0.0, budget), (end, budget)],
            },
        ],
        "latency of every answered call, from when it was due",
    ));
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::summary::{RunFacts, summarise};
    use crate::load::{LoadCall, LoadPlan, Recording};
    use std::time::Duration;

    #[test]
    fn the_page_escapes_the_target_and_draws_well_formed_charts() {
        let plan = LoadPlan {
            rate: 10.0,
            ramp_to: Some(30.0),
            duration: Duration::from_secs(3),
            max_in_flight: 10,
            latency_budget: Duration::from_millis(50),
        };
        let mut recording = Recording::new(&plan);
        for (second, record) in recording.seconds.iter_mut().enumerate() {
            record.offered = 10 * (second as u64 + 1);
            record.served = 5;
            record.refused = record.offered - 5;
            record
                .latency
                .saturating_record(1_000 * (second as u64 + 1));
        }
        recording.served_sent_micros = (0..15).map(|i| i * 200_000).collect();
        let call = LoadCall {
            tool: "<b>tool</b>".into(),
            arguments: serde_json::json!({}),
        };
        let facts = RunFacts {
            target: "python3 server.py --name '<script>alert(1)</script>'",
            transport: "stdio",
            call: &call,
            plan: &plan,
            connections: 1,
            expected_per_second: Some(5.0),
            expected_burst: None,
        };
        let page = render(&summarise(&facts, &recording));
        assert!(!page.contains("<script>"), "the target's name is escaped");
        assert!(!page.contains("<b>tool"), "the tool's name is escaped");
        assert!(!page.contains("NaN"));
        let charts: Vec<&str> = page
            .split("<svg")
            .skip(1)
            .map(|rest| &rest[..rest.find("</svg>").expect("closed") + "</svg>".len()])
            .collect();
        assert_eq!(charts.len(), 2, "calls per second and latency per second");
        for chart in charts {
            let chart = format!("<svg{chart}");
            roxmltree::Document::parse(&chart).unwrap_or_else(|e| panic!("{e}: {chart}"));
            assert!(chart.contains("<path"), "{chart}");
        }
    }
}
