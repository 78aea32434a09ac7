//! The report for a person: a header, failures first with their evidence and fix, then one
//! line per other probe, then the verdict. Colour is used only when `colour` is true (the
//! binary passes true when stdout is a terminal and NO_COLOR is unset).

use super::{Report, RunVerdict};
use crate::baseline::Acceptance;
use crate::coverage::ReachVerdict;
use crate::probe::Verdict;
use std::fmt::Write;

fn paint(colour: bool, code: &str, text: &str) -> String {
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn verdict_label(colour: bool, verdict: Verdict) -> String {
    let (code, label) = match verdict {
        Verdict::Pass => ("32", "PASS"),
        Verdict::Fail => ("1;31", "FAIL"),
        Verdict::Inconclusive => ("33", "INCONCLUSIVE"),
        Verdict::NotApplicable => ("2", "N/A"),
    };
    paint(colour, code, label)
}

pub fn render(report: &Report, colour: bool) -> String {
    let mut out = String::new();
    let t = &report.target;
    let _ = writeln!(
        out,
        "mcp-harness {} {}",
        report.harness_version, report.command
    );
    let _ = writeln!(
        out,
        "target   {} {} ({} {}, protocol {})",
        t.transport, t.address, t.server_name, t.server_version, t.protocol_version
    );
    for also in &report.also_over {
        let _ = writeln!(
            out,
            "also     {} {} (protocol {}): the probes marked 'over {}'",
            also.transport, also.address, also.protocol_version, also.transport
        );
    }
    let tools: Vec<String> = report
        .discovery
        .tools
        .iter()
        .map(|tool| {
            let params: Vec<String> = tool
                .points
                .iter()
                .map(|p| format!("{}:{}", p.pointer.trim_start_matches('/'), p.kind.name()))
                .collect();
            format!("{}({})", tool.name, params.join(", "))
        })
        .collect();
    let _ = writeln!(
        out,
        "tools    {}",
        if tools.is_empty() {
            "none".to_owned()
        } else {
            tools.join(" ")
        }
    );
    reach(&mut out, report);
    let _ = writeln!(
        out,
        "profile  {:?}, {} calls in {:.1} s{}\n",
        report.profile,
        report.calls,
        report.duration_ms as f64 / 1000.0,
        if report.rate_limited_retries > 0 {
            format!(
                " ({} retried after rate-limit refusals)",
                report.rate_limited_retries
            )
        } else {
            String::new()
        }
    );
    for record in report.failures() {
        let cwe = record.cwe.map(|c| format!(" CWE-{c}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {} [{}{}] {}",
            verdict_label(colour, record.verdict),
            record.id,
            record.severity.name(),
            cwe,
            record.summary
        );
        if let Some(reason) = &record.severity_reason {
            let _ = writeln!(out, "     severity {}, {reason}", record.severity.name());
        }
        for evidence in record.evidence.iter().take(2) {
            if let Some(tool) = &evidence.tool {
                match &evidence.point {
                    Some(point) => {
                        let _ = writeln!(out, "     tool     {tool} at {point}");
                    }
                    None => {
                        let _ = writeln!(out, "     tool     {tool}");
                    }
                }
            }
            let _ = writeln!(
                out,
                "     request  {}",
                evidence.request.replace('\n', "\\n")
            );
            let _ = writeln!(out, "     reply    {}", evidence.reply.replace('\n', "\\n"));
            let _ = writeln!(out, "     proof    {}", evidence.oracle);
        }
        let _ = writeln!(out, "     fix      {}", record.remediation);
        for finding in &record.findings {
            let status = match &finding.acceptance {
                Acceptance::New if report.acceptance.is_none() => continue,
                Acceptance::New => "new".to_owned(),
                Acceptance::Baselined => "in the baseline".to_owned(),
                Acceptance::Suppressed { reason, expires } => match expires {
                    Some(date) => format!("suppressed until {date}: {reason}"),
                    None => format!("suppressed: {reason}"),
                },
            };
            let _ = writeln!(out, "     finding  {} ({status})", finding.fingerprint);
        }
    }
    for record in report.probes.iter().filter(|p| p.verdict != Verdict::Fail) {
        let _ = writeln!(
            out,
            "{} {} {}",
            verdict_label(colour, record.verdict),
            record.id,
            record.summary
        );
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} passed, {} failed, {} inconclusive, {} not applicable",
        s.pass, s.fail, s.inconclusive, s.not_applicable
    );
    for warning in &report.warnings {
        let _ = writeln!(
            out,
            "{}",
            paint(colour, "1;33", &format!("warning: {warning}"))
        );
    }
    if let Some(accepted) = &report.acceptance {
        let _ = writeln!(
            out,
            "findings {} new, {} in the baseline, {} suppressed",
            accepted.new, accepted.baselined, accepted.suppressed
        );
        for fixed in &accepted.fixed {
            let _ = writeln!(
                out,
                "  fixed: {} (in the baseline, not found now)",
                fixed.fingerprint
            );
        }
        for expired in &accepted.expired {
            let _ = writeln!(
                out,
                "  {}",
                paint(
                    colour,
                    "1;31",
                    &format!("expired suppression (fails the run): {expired}")
                )
            );
        }
        for unused in &accepted.unused {
            let _ = writeln!(out, "  warning: unused suppression: {unused}");
        }
    }
    // The shared sentence, with what a terminal reader also wants to know.
    let detail = match s.verdict {
        RunVerdict::Certified => {
            let partial = if report.coverage.verdict == ReachVerdict::Partial {
                format!(
                    " (reach is partial: {} of {} points reached, see 'reach' above)",
                    report.coverage.points_reached, report.coverage.points
                )
            } else {
                String::new()
            };
            format!(
                ": no failing probe at or above {}{partial}",
                report.fail_on.name()
            )
        }
        RunVerdict::NotCertified if s.failing_at_threshold == 0 => {
            " (renew it with a reason, or fix the finding)".to_owned()
        }
        RunVerdict::NotCertified if report.acceptance.is_some() => " with a new finding".to_owned(),
        RunVerdict::NotCertified => String::new(),
        RunVerdict::NothingReached => ", so it proved nothing (exit 2)".to_owned(),
    };
    let code = if s.verdict == RunVerdict::Certified {
        "1;32"
    } else {
        "1;31"
    };
    let verdict = paint(
        colour,
        code,
        &format!("{}{detail}", report.verdict_sentence()),
    );
    let _ = writeln!(out, "{verdict}");
    for advice in &report.coverage.advice {
        let _ = writeln!(out, "  - {advice}");
    }
    out
}

/// The reach lines: baselines accepted, points reached per family, what was not reached.
fn reach(out: &mut String, report: &Report) {
    let c = &report.coverage;
    if c.verdict == ReachVerdict::NotMeasured {
        let _ = writeln!(out, "reach    not measured (no input family selected)");
        return;
    }
    let families: Vec<String> = c
        .families
        .iter()
        .map(|f| {
            let stopped = if f.stopped.is_some() { ", stopped" } else { "" };
            format!(
                "{} {}/{}{stopped}",
                f.family.name(),
                f.points_reached,
                f.points_attacked
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "reach    {}: {} of {} tools accepted a baseline call, {} of {} string points reached ({})",
        c.verdict.name(),
        c.tools_with_accepted_baseline,
        c.tools,
        c.points_reached,
        c.points,
        families.join(", ")
    );
    if let Some(surfaces) = c.surfaces_line() {
        let _ = writeln!(out, "         by surface: {surfaces}");
    }
    for refused in c.refused_baselines.iter().take(10) {
        let _ = writeln!(
            out,
            "         baseline refused by {}: {}",
            refused.tool,
            refused.refusal.replace('\n', " ")
        );
    }
    for problem in c.schema_problems.iter().take(10) {
        let _ = writeln!(
            out,
            "         schema of {}: {}",
            problem.tool, problem.problem
        );
    }
    for point in c.unreached.iter().take(10) {
        let _ = writeln!(
            out,
            "         not reached: {}{} ({})",
            point.tool, point.pointer, point.reason
        );
    }
    if c.points_unreached > 10 {
        let _ = writeln!(
            out,
            "         ... and {} more not reached",
            c.points_unreached - 10
        );
    }
    for family in c.families.iter().filter(|f| f.stopped.is_some()) {
        let _ = writeln!(
            out,
            "         {} stopped: {}",
            family.family.name(),
            family.stopped.as_deref().unwrap_or_default()
        );
    }
}
