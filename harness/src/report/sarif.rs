//! SARIF 2.1.0: one run, one rule per probe in the report, one result per finding of a failing
//! probe (`error` at or above the threshold, `warning` below; its fingerprint in
//! `partialFingerprints`, a baselined or suppressed one with a `suppressions` entry and its
//! justification) and per inconclusive probe (`note`).
//! Results carry the CWE as a tag and the evidence in their message and properties. The output
//! is validated against the SARIF 2.1.0 schema in the tests.

use super::Report;
use crate::baseline::Acceptance;
use crate::probe::Verdict;
use serde_json::{Value, json};

/// Where a finding is: the tool and its argument (or the server) as logical locations, and the
/// endpoint as a physical one when it is a URL (a stdio command line is not a URI).
fn location(report: &Report, tool: Option<&str>, point: Option<&str>) -> Value {
    // A prompt's, a resource template's or a completion's name already says its surface
    // (`prompts/NAME`).
    let name = tool
        .map(|t| {
            if crate::surface::surface_of(t) != "tool" {
                t.to_owned()
            } else {
                format!("tools/{t}")
            }
        })
        .unwrap_or_else(|| "server".to_owned());
    let mut logical = vec![
        json!({"fullyQualifiedName": name, "kind": if tool.is_some() { "function" } else { "module" }}),
    ];
    if let Some(point) = point {
        logical.push(json!({"fullyQualifiedName": format!("{name}#{point}"), "kind": "parameter"}));
    }
    let mut location = json!({"logicalLocations": logical});
    if report.target.transport == "http" && url::Url::parse(&report.target.address).is_ok() {
        location["physicalLocation"] = json!({"artifactLocation": {"uri": report.target.address}});
    }
    location
}

/// Where one SARIF result is: a finding's fingerprint, tool, point and acceptance.
struct Place<'a> {
    fingerprint: String,
    tool: Option<&'a str>,
    point: Option<&'a str>,
    acceptance: Option<&'a Acceptance>,
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
    let mut results: Vec<Value> = Vec::new();
    for (index, p) in report.probes.iter().enumerate() {
        if !matches!(p.verdict, Verdict::Fail | Verdict::Inconclusive) {
            continue;
        }
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
        // One result per finding (a failing probe at one tool and point); an inconclusive
        // probe is one result.
        let places: Vec<Place> = if p.findings.is_empty() {
            vec![Place {
                fingerprint: p.id.to_owned(),
                tool: p.evidence.first().and_then(|e| e.tool.as_deref()),
                point: None,
                acceptance: None,
            }]
        } else {
            p.findings
                .iter()
                .map(|f| Place {
                    fingerprint: f.fingerprint.clone(),
                    tool: f.tool.as_deref(),
                    point: f.point.as_deref(),
                    acceptance: Some(&f.acceptance),
                })
                .collect()
        };
        for Place {
            fingerprint,
            tool,
            point,
            acceptance,
        } in places
        {
            let evidence: Vec<&crate::probe::Evidence> = p
                .evidence
                .iter()
                .filter(|e| {
                    tool.is_none() || (e.tool.as_deref() == tool && e.point.as_deref() == point)
                })
                .collect();
            let mut result = json!({
                "ruleId": p.id,
                "ruleIndex": index,
                "level": level,
                "kind": if p.verdict == Verdict::Fail { "fail" } else { "review" },
                "message": {"text": format!("{}.{proof}", p.summary)},
                "locations": [location(report, tool, point)],
                "partialFingerprints": {"mcpHarnessFinding/v1": fingerprint},
                "properties": {"tags": tags, "verdict": p.verdict.name(), "evidence": evidence},
            });
            let suppression = match acceptance {
                Some(Acceptance::Suppressed { reason, expires }) => Some(json!({
                    "kind": "external",
                    "status": "accepted",
                    "justification": match expires {
                        Some(date) => format!("{reason} (until {date})"),
                        None => reason.clone(),
                    },
                })),
                Some(Acceptance::Baselined) => Some(json!({
                    "kind": "external",
                    "status": "accepted",
                    "justification": "in the baseline file",
                })),
                _ => None,
            };
            if let Some(suppression) = suppression {
                result["suppressions"] = json!([suppression]);
            }
            results.push(result);
        }
    }
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
