//! JUnit XML: one test suite per probe family, one test case per probe. A failing probe is a
//! failure, an inconclusive or not-applicable probe is skipped with its reason; the evidence is
//! the failure's text. Readable by any CI system that reads JUnit.

use super::Report;
use crate::probe::{Family, Verdict};
use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};

pub fn render(report: &Report) -> String {
    let mut junit = JunitReport::new("mcp-harness certify");
    for family in Family::ALL {
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
    junit.to_string().unwrap_or_default()
}
