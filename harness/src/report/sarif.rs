//! SARIF 2.1.0: one run, one rule per probe in the report, one result per failing probe
//! (`error` at or above the threshold, `warning` below) and per inconclusive probe (`note`).
//! Results carry the CWE as a tag and the evidence in their message and properties. The output
//! is validated against the SARIF 2.1.0 schema in the tests.

use super::Report;
use crate::probe::Verdict;
use serde_json::{Value, json};

/// Where a finding is: the tool (or the server) as a logical location, and the endpoint as a
/// physical one when it is a URL (a stdio command line is not a URI).
fn location(report: &Report, tool: Option<&str>) -> Value {
    let name = tool
        .map(|t| format!("tools/{t}"))
        .unwrap_or_else(|| "server".to_owned());
    let mut location = json!({"logicalLocations": [{"fullyQualifiedName": name, "kind": if tool.is_some() { "function" } else { "module" }}]});
    if report.target.transport == "http" && url::Url::parse(&report.target.address).is_ok() {
        location["physicalLocation"] = json!({"artifactLocation": {"uri": report.target.address}});
    }
    location
}

pub fn render(report: &Report) -> String {
    let rules: Vec<Value> = report
        .probes
        .iter()
        .map(|p| {
            let mut tags = vec![format!("family:{}", p.family.name()), "security".to_owned()];
            if let Some(cwe) = p.cwe {
                tags.push(format!("external/cwe/cwe-{cwe}"));
            }
            json!({
                "id": p.id,
                "name": p.id.replace('-', ""),
                "shortDescription": {"text": p.title},
                "fullDescription": {"text": p.enforces},
                "help": {"text": p.remediation},
                "defaultConfiguration": {"level": if p.severity >= report.fail_on { "error" } else { "warning" }},
                "properties": {"tags": tags, "security-severity": match p.severity {
                    crate::probe::Severity::Low => "3.0",
                    crate::probe::Severity::Medium => "5.5",
                    crate::probe::Severity::High => "8.0",
                    crate::probe::Severity::Critical => "9.5",
                }},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .probes
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p.verdict, Verdict::Fail | Verdict::Inconclusive))
        .map(|(index, p)| {
            let level = match p.verdict {
                Verdict::Fail if p.severity >= report.fail_on => "error",
                Verdict::Fail => "warning",
                _ => "note",
            };
            let proof = p
                .evidence
                .first()
                .map(|e| format!(" Proof: {}.", e.oracle))
                .unwrap_or_default();
            let mut tags = Vec::new();
            if let Some(cwe) = p.cwe {
                tags.push(format!("CWE-{cwe}"));
            }
            json!({
                "ruleId": p.id,
                "ruleIndex": index,
                "level": level,
                "kind": if p.verdict == Verdict::Fail { "fail" } else { "review" },
                "message": {"text": format!("{}.{proof}", p.summary)},
                "locations": [location(report, p.evidence.first().and_then(|e| e.tool.as_deref()))],
                "properties": {"tags": tags, "verdict": p.verdict.name(), "evidence": p.evidence},
            })
        })
        .collect();
    let sarif = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "mcp-harness",
                "version": report.harness_version,
                "informationUri": "https://github.com/example/mcp-certify",
                "rules": rules,
            }},
            "results": results,
            "properties": {"target": report.target, "summary": report.summary, "coverage": report.coverage},
        }],
    });
    serde_json::to_string_pretty(&sarif).unwrap_or_default()
}
