//! The report as one self-contained HTML file (`--format html`): no script, no stylesheet or
//! font from the network, everything inline, so it opens from a CI artifact anywhere.
//!
//! The verdict and the counts (with a bar of the verdicts as inline SVG), each failing probe
//! with its evidence (request, reply, proof) and fix, accepted findings, the other probes, and
//! the reach, and what the probes measured, drawn ([`super::chart`]: the RATE flood, the TIME
//! distribution, the RES memory). Every text from the run is escaped ([`escape`]): a reply is whatever the target
//! sent, and must not become markup.
//!
//! Cost: linear in the report. Failure: none.

use super::{Report, RunVerdict};
use crate::baseline::Acceptance;
use crate::probe::Verdict;
use std::fmt::Write;

/// Text safe inside an element or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#1b1f24}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}code,pre{font:12px ui-monospace,monospace}\
pre{background:#f4f5f7;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}\
.fail{color:#b42318}.pass{color:#067647}.inconclusive{color:#b54708}.na{color:#667085}\
table{border-collapse:collapse}td,th{border:1px solid #d0d5dd;padding:.25em .6em;text-align:left;vertical-align:top}\
details{margin:.3em 0 1em}summary{cursor:pointer}figure{margin:.5em 0 1.5em}figcaption{color:#475467}";

/// The verdict counts as a horizontal bar (inline SVG, 600 by 24), one segment a verdict.
pub fn verdict_bar(pass: usize, fail: usize, inconclusive: usize, not_applicable: usize) -> String {
    let total = (pass + fail + inconclusive + not_applicable).max(1) as f64;
    let mut x = 0.0;
    let mut out = String::from(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"24\" role=\"img\" aria-label=\"verdicts\">",
    );
    for (count, colour, label) in [
        (fail, "#d92d20", "failed"),
        (inconclusive, "#f79009", "inconclusive"),
        (pass, "#17b26a", "passed"),
        (not_applicable, "#d0d5dd", "not applicable"),
    ] {
        if count == 0 {
            continue;
        }
        let width = 600.0 * count as f64 / total;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"0\" width=\"{width:.1}\" height=\"24\" fill=\"{colour}\"><title>{count} {label}</title></rect>"
        );
        x += width;
    }
    out.push_str("</svg>");
    out
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let class = if s.verdict == RunVerdict::Certified {
        "pass"
    } else {
        "fail"
    };
    let verdict = report.verdict_sentence();
    let t = &report.target;
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>mcp-harness: {}</title><style>{STYLE}</style></head><body>",
        escape(&verdict)
    );
    let _ = write!(
        out,
        "<h1 class=\"{class}\">{}</h1><p><code>{}</code> {} ({} {}, protocol {}), profile {:?}, {} calls in {:.1} s, mcp-harness {}</p>",
        escape(&verdict),
        escape(t.transport),
        escape(&t.address),
        escape(&t.server_name),
        escape(&t.server_version),
        escape(&t.protocol_version),
        report.profile,
        report.calls,
        report.duration_ms as f64 / 1000.0,
        escape(report.harness_version)
    );
    for also in &report.also_over {
        let _ = write!(
            out,
            "<p>Also over <code>{}</code> {} (protocol {}): the probes marked <em>over {}</em>.</p>",
            escape(also.transport),
            escape(&also.address),
            escape(&also.protocol_version),
            escape(also.transport)
        );
    }
    for warning in &report.warnings {
        let _ = write!(
            out,
            "<p class=\"inconclusive\">Warning: {}</p>",
            escape(warning)
        );
    }
    let _ = write!(
        out,
        "{}<p><span class=\"pass\">{} passed</span>, <span class=\"fail\">{} failed</span>, <span class=\"inconclusive\">{} inconclusive</span>, <span class=\"na\">{} not applicable</span></p>",
        verdict_bar(s.pass, s.fail, s.inconclusive, s.not_applicable),
        s.pass,
        s.fail,
        s.inconclusive,
        s.not_applicable
    );
    let failures: Vec<_> = report.failures().collect();
    if !failures.is_empty() {
        let _ = write!(out, "<h2>Failing probes</h2>");
    }
    for record in failures {
        let cwe = record.cwe.map(|c| format!(", CWE-{c}")).unwrap_or_default();
        let _ = write!(
            out,
            "<h3 class=\"fail\">{} <small>({}{cwe})</small></h3><p>{}</p><p><b>Fix:</b> {}</p>",
            escape(record.id),
            record.severity.name(),
            escape(&record.summary),
            escape(record.remediation)
        );
        for finding in &record.findings {
            let status = match &finding.acceptance {
                Acceptance::New => "new".to_owned(),
                Acceptance::Baselined => "in the baseline".to_owned(),
                Acceptance::Suppressed { reason, .. } => format!("suppressed: {reason}"),
            };
            let _ = write!(
                out,
                "<p>Finding <code>{}</code> ({})</p>",
                escape(&finding.fingerprint),
                escape(&status)
            );
        }
        for evidence in &record.evidence {
            let place = match (&evidence.tool, &evidence.point) {
                (Some(tool), Some(point)) => format!("{tool} at {point}"),
                (Some(tool), None) => tool.clone(),
                _ => "the server".to_owned(),
            };
            let _ = write!(
                out,
                "<details open><summary>Proof at {}: {}</summary><p>Request</p><pre>{}</pre><p>Reply</p><pre>{}</pre></details>",
                escape(&place),
                escape(&evidence.oracle),
                escape(&evidence.request),
                escape(&evidence.reply)
            );
        }
    }
    if let Some(accepted) = &report.acceptance {
        let _ = write!(
            out,
            "<h2>Accepted findings</h2><p>{} new, {} in the baseline, {} suppressed</p><ul>",
            accepted.new, accepted.baselined, accepted.suppressed
        );
        for fixed in &accepted.fixed {
            let _ = write!(
                out,
                "<li>fixed since the baseline: <code>{}</code></li>",
                escape(&fixed.fingerprint)
            );
        }
        for expired in &accepted.expired {
            let _ = write!(
                out,
                "<li class=\"fail\">expired suppression (fails the run): {}</li>",
                escape(expired)
            );
        }
        for unused in &accepted.unused {
            let _ = write!(out, "<li>unused suppression: {}</li>", escape(unused));
        }
        let _ = write!(out, "</ul>");
    }
    let others: Vec<_> = report
        .probes
        .iter()
        .filter(|p| p.verdict != Verdict::Fail)
        .collect();
    if !others.is_empty() {
        let _ = write!(
            out,
            "<h2>Other probes</h2><table><tr><th>probe</th><th>verdict</th><th>summary</th></tr>"
        );
    }
    for record in &others {
        let (class, label) = match record.verdict {
            Verdict::Pass => ("pass", "pass"),
            Verdict::Inconclusive => ("inconclusive", "inconclusive"),
            _ => ("na", "not applicable"),
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td class=\"{class}\">{label}</td><td>{}</td></tr>",
            escape(record.id),
            escape(&record.summary)
        );
    }
    if !others.is_empty() {
        out.push_str("</table>");
    }
    let measured: Vec<_> = report
        .probes
        .iter()
        .filter_map(|p| p.figure.as_ref().map(|f| (p, f)))
        .collect();
    if !measured.is_empty() {
        let _ = write!(out, "<h2>What the probes measured</h2>");
    }
    for (record, figure) in measured {
        let _ = write!(
            out,
            "<h3><code>{}</code> <small class=\"{}\">{}</small></h3>{}",
            escape(record.id),
            match record.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "fail",
                Verdict::Inconclusive => "inconclusive",
                Verdict::NotApplicable => "na",
            },
            record.verdict.name(),
            super::chart::render(figure)
        );
    }
    let c = &report.coverage;
    let _ = write!(
        out,
        "<h2>Reach</h2><p>{} of {} tools served a baseline call; {} of {} attack points reached ({:?}).</p><ul>",
        c.tools_with_accepted_baseline, c.tools, c.points_reached, c.points, c.verdict
    );
    for advice in &c.advice {
        let _ = write!(out, "<li>{}</li>", escape(advice));
    }
    let _ = writeln!(out, "</ul></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn the_verdict_bar_splits_600_pixels_by_count() {
        let bar = verdict_bar(3, 1, 0, 0);
        assert!(bar.contains("<rect x=\"0.0\" y=\"0\" width=\"150.0\" height=\"24\" fill=\"#d92d20\"><title>1 failed</title>"), "{bar}");
        assert!(bar.contains("x=\"150.0\" y=\"0\" width=\"450.0\""), "{bar}");
        assert!(!bar.contains("inconclusive"), "{bar}");
        assert_eq!(
            verdict_bar(0, 0, 0, 0),
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"24\" role=\"img\" aria-label=\"verdicts\"></svg>"
        );
    }
}
