//! JUnit XML: one test suite per probe family, one test case per probe. A failing probe is a
//! failure, an inconclusive or not-applicable probe is skipped with its reason; the evidence is
//! the failure's text. Readable by any CI system that reads JUnit.

use super::Report;
use crate::coverage::ReachVerdict;
use crate::probe::Verdict;
use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};

pub fn render(report: &Report) -> String {
    let mut junit = JunitReport::new("mcp-harness certify");
    for family in crate::probe::FAMILIES.iter().map(|spec| spec.family) {
        let records: Vec<_> = report
            .probes
            .iter()
            .filter(|p| p.family == family)
            .collect();
        if records.is_empty() {
            continue;
        }
        let mut suite = TestSuite::new(family.name());
        for record in records {
            let status = match record.verdict {
                Verdict::Pass => TestCaseStatus::success(),
                Verdict::Fail => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(record.summary.clone());
                    status.set_type(format!("{} severity", record.severity.name()));
                    let mut description = String::new();
                    for evidence in &record.evidence {
                        description.push_str(&format!(
                            "request: {}\nreply: {}\nproof: {}\n",
                            evidence.request, evidence.reply, evidence.oracle
                        ));
                    }
                    description.push_str(&format!("fix: {}", record.remediation));
                    status.set_description(description);
                    status
                }
                Verdict::Inconclusive | Verdict::NotApplicable => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(format!("{}: {}", record.verdict.name(), record.summary));
                    status
                }
            };
            let mut case = TestCase::new(format!("{} {}", record.id, record.title), status);
            case.set_classname(format!("mcp-harness.{}", family.name()));
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit.add_test_suite(reach_suite(report));
    junit.to_string().unwrap_or_default()
}

/// The run's reach as a test case of its own: it fails when the run reached nothing (and the
/// exit status is 2), and its properties carry the counts.
fn reach_suite(report: &Report) -> TestSuite {
    let coverage = &report.coverage;
    let status = match coverage.verdict {
        ReachVerdict::Nothing => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message("the run reached nothing it could attack");
            status.set_description(coverage.advice.join("\n"));
            status
        }
        ReachVerdict::NotMeasured => {
            let mut status = TestCaseStatus::skipped();
            status.set_message("reach not measured: no input family selected");
            status
        }
        ReachVerdict::Partial | ReachVerdict::Complete => TestCaseStatus::success(),
    };
    let mut case = TestCase::new("REACH coverage of the target's inputs", status);
    case.set_classname("mcp-harness.REACH");
    let mut suite = TestSuite::new("REACH");
    for (name, value) in [
        ("reach", coverage.verdict.name().to_owned()),
        ("tools", coverage.tools.to_string()),
        (
            "tools_with_accepted_baseline",
            coverage.tools_with_accepted_baseline.to_string(),
        ),
        ("points", coverage.points.to_string()),
        ("points_reached", coverage.points_reached.to_string()),
    ] {
        suite.add_property(quick_junit::Property::new(name, value));
    }
    let unreached: Vec<String> = coverage
        .unreached
        .iter()
        .map(|u| format!("{}{}: {}", u.tool, u.pointer, u.reason))
        .collect();
    if !unreached.is_empty() {
        case.set_system_out(unreached.join("\n"));
    }
    suite.add_test_case(case);
    suite
}
