//! The report as Markdown, sized for a pull-request comment or `$GITHUB_STEP_SUMMARY`: the
//! verdict, the counts, each failing probe with its proof and its fix in a line or two, what
//! a baseline or suppressions accepted, and the reach.
//!
//! Cost: linear in the report. Failure: none; it never exceeds [`MAX_BYTES`] (GitHub refuses
//! a comment over 65,536 characters): past that, the remaining failures are counted, not shown.

use super::{Report, RunVerdict};
use crate::baseline::Acceptance;
use crate::probe::Verdict;
use std::fmt::Write;

/// The most the summary may hold.
pub const MAX_BYTES: usize = 60_000;

/// Text for a table cell or a line: no pipes or newlines, at most `limit` characters.
fn cell(text: &str, limit: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| match c {
            '|' => '/',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect();
    if flat.chars().count() > limit {
        let cut: String = flat.chars().take(limit).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let mark = match s.verdict {
        RunVerdict::Certified => "✅",
        RunVerdict::NotCertified => "❌",
        RunVerdict::NothingReached => "⚠️",
    };
    let verdict = report.verdict_sentence();
    let t = &report.target;
    let _ = writeln!(out, "## {mark} mcp-harness: {verdict}\n");
    let _ = writeln!(
        out,
        "`{}` {} ({} {}, protocol {}), profile {:?}, {} calls in {:.1} s\n",
        t.transport,
        cell(&t.address, 120),
        cell(&t.server_name, 60),
        cell(&t.server_version, 30),
        t.protocol_version,
        report.profile,
        report.calls,
        report.duration_ms as f64 / 1000.0
    );
    for also in &report.also_over {
        let _ = writeln!(
            out,
            "Also over `{}` {} (protocol {}): the probes marked _over {}_.\n",
            also.transport,
            cell(&also.address, 120),
            also.protocol_version,
            also.transport
        );
    }
    let _ = writeln!(
        out,
        "| passed | failed | inconclusive | not applicable |\n|---|---|---|---|\n| {} | {} | {} | {} |\n",
        s.pass, s.fail, s.inconclusive, s.not_applicable
    );
    for warning in &report.warnings {
        let _ = writeln!(out, "> **Warning:** {}\n", cell(warning, 300));
    }
    let failures: Vec<_> = report.failures().collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "### Failing probes\n");
        let mut shown = 0;
        for record in &failures {
            if out.len() > MAX_BYTES - 2_000 {
                break;
            }
            let cwe = record.cwe.map(|c| format!(", CWE-{c}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "- **{}** ({}{cwe}): {}",
                record.id,
                record.severity.name(),
                cell(&record.summary, 300)
            );
            if let Some(evidence) = record.evidence.first() {
                let place = match (&evidence.tool, &evidence.point) {
                    (Some(tool), Some(point)) => format!(" at `{tool}` `{point}`"),
                    (Some(tool), None) => format!(" at `{tool}`"),
                    _ => String::new(),
                };
                let _ = writeln!(out, "  - proof{place}: {}", cell(&evidence.oracle, 300));
            }
            let accepted: Vec<String> = record
                .findings
                .iter()
                .filter_map(|f| match &f.acceptance {
                    Acceptance::New => None,
                    Acceptance::Baselined => Some(format!("`{}` in the baseline", f.fingerprint)),
                    Acceptance::Suppressed { reason, .. } => Some(format!(
                        "`{}` suppressed: {}",
                        f.fingerprint,
                        cell(reason, 200)
                    )),
                })
                .collect();
            if !accepted.is_empty() {
                let _ = writeln!(out, "  - accepted: {}", accepted.join("; "));
            }
            let _ = writeln!(out, "  - fix: {}", cell(record.remediation, 300));
            shown += 1;
        }
        if shown < failures.len() {
            let _ = writeln!(
                out,
                "- ... and {} more failing probes (see the full report)",
                failures.len() - shown
            );
        }
        let _ = writeln!(out);
    }
    if let Some(accepted) = &report.acceptance {
        let _ = writeln!(
            out,
            "Findings: {} new, {} in the baseline, {} suppressed.",
            accepted.new, accepted.baselined, accepted.suppressed
        );
        for fixed in accepted.fixed.iter().take(20) {
            let _ = writeln!(out, "- fixed since the baseline: `{}`", fixed.fingerprint);
        }
        for expired in &accepted.expired {
            let _ = writeln!(
                out,
                "- **expired suppression** (fails the run): {}",
                cell(expired, 200)
            );
        }
        for unused in &accepted.unused {
            let _ = writeln!(out, "- unused suppression: {}", cell(unused, 200));
        }
        let _ = writeln!(out);
    }
    let inconclusive: Vec<&str> = report
        .probes
        .iter()
        .filter(|p| p.verdict == Verdict::Inconclusive)
        .map(|p| p.id)
        .collect();
    if !inconclusive.is_empty() {
        let _ = writeln!(out, "Inconclusive: {}.\n", inconclusive.join(", "));
    }
    let c = &report.coverage;
    let _ = writeln!(
        out,
        "Reach: {} of {} tools served a baseline call; {} of {} attack points reached ({:?}).",
        c.tools_with_accepted_baseline, c.tools, c.points_reached, c.points, c.verdict
    );
    if let Some(surfaces) = c.surfaces_line() {
        let _ = writeln!(out, "By surface: {surfaces}.\n");
    }
    for advice in c.advice.iter().take(5) {
        let _ = writeln!(out, "- {}", cell(advice, 300));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_have_no_pipes_or_newlines_and_are_bounded() {
        assert_eq!(cell("a|b\nc", 10), "a/b c");
        assert_eq!(cell("abcdef", 3), "abc...");
    }
}
