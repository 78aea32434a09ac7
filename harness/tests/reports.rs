//! The four report formats from one run: JSON validated against the published schema
//! (harness/report.schema.json), SARIF against the SARIF 2.1.0 schema (vendored from the
//! serde-sarif crate), JUnit read back by an independent XML parser; snapshots of the human
//! and JSON reports for the reference server.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const HARNESS: &str = env!("CARGO_BIN_EXE_mcp-harness");
const FAKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/fake_server.py");

struct Outputs {
    exit: i32,
    json: String,
    sarif: String,
    junit: String,
    human: String,
}

fn certify_all_formats(target: &[&str], dir: &Path) -> Outputs {
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let status = Command::new(HARNESS)
        .arg("certify")
        .args(target)
        .args([
            "--format",
            "json",
            "--output",
            &path("r.json"),
            "--format",
            "sarif",
            "--output",
            &path("r.sarif"),
        ])
        .args([
            "--format",
            "junit",
            "--output",
            &path("r.xml"),
            "--format",
            "human",
            "--output",
            &path("r.txt"),
        ])
        .args([
            "--fail-on",
            "low",
            "--timeout",
            "10",
            "--startup-timeout",
            "30",
        ])
        .status()
        .expect("the harness runs");
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    Outputs {
        exit: status.code().unwrap_or(-1),
        json: read("r.json"),
        sarif: read("r.sarif"),
        junit: read("r.xml"),
        human: read("r.txt"),
    }
}

fn validate(schema: &str, instance: &str, what: &str) {
    let schema: Value = serde_json::from_str(schema).unwrap();
    let instance: Value =
        serde_json::from_str(instance).unwrap_or_else(|e| panic!("{what} is not JSON: {e}"));
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .take(10)
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema:\n{}",
        errors.join("\n")
    );
}

/// Reads the JUnit XML with roxmltree and checks the structure CI systems rely on; returns
/// (test cases, failures, skipped).
fn check_junit(xml: &str, probes: usize) -> (usize, usize, usize) {
    let document = roxmltree::Document::parse(xml).expect("well-formed XML");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let cases: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(
        cases.len(),
        probes + 1,
        "one test case per probe, and one for the run's reach"
    );
    for case in &cases {
        assert!(case.attribute("name").is_some_and(|n| !n.is_empty()));
        assert!(
            case.attribute("classname")
                .is_some_and(|c| c.starts_with("mcp-harness."))
        );
        assert_eq!(
            case.parent().map(|p| p.tag_name().name()),
            Some("testsuite")
        );
    }
    let failures = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("skipped")))
        .count();
    let declared: usize = root
        .attribute("failures")
        .and_then(|f| f.parse().ok())
        .unwrap_or(usize::MAX);
    assert_eq!(
        declared, failures,
        "the failures attribute counts the failing cases"
    );
    (cases.len(), failures, skipped)
}

/// Masks what changes between runs: durations, temporary paths, the binary's location.
/// Every run of digits replaced with `N`.
fn digits_as_n(text: &str) -> String {
    regex::Regex::new(r"[0-9]+(\.[0-9]+)?")
        .unwrap()
        .replace_all(text, "N")
        .into_owned()
}

/// [`digits_as_n`], and the unit and sign of a duration too (a timing figure is -80 ns on one
/// run, 1.2 us on the next).
fn figures_as_n(text: &str) -> String {
    regex::Regex::new(r"N (ns|us|µs|ms)\b")
        .unwrap()
        .replace_all(&digits_as_n(text), "N [time unit]")
        .replace("-N", "N")
}

/// A summary with its figures as N, and RES-BODY-SIZE's said one way: the server refuses a
/// 32 MB body with 413 or by closing the connection mid-body, whichever the race gives.
fn stable_summary(summary: &str) -> String {
    if summary.contains(" MB body") {
        "over http: [a N MB body refused: HTTP N, or the connection closed mid-body]".to_owned()
    } else {
        figures_as_n(summary)
    }
}

/// `text` with the stage directory's random name (`/tmp/mcp-harness-UiEP9V/`) fixed: the
/// reference server's template names its sandbox.
fn stage_fixed(text: &str) -> String {
    regex::Regex::new("mcp-harness-[A-Za-z0-9]{6}/")
        .unwrap()
        .replace_all(text, "mcp-harness-[stage]/")
        .into_owned()
}

fn stable_human(text: &str) -> String {
    let text = stage_fixed(text);
    text.lines()
        .map(|line| {
            if line.starts_with("target ") {
                "target   stdio [the bundled reference server] (mcp-reference-server [version], protocol 2025-11-25)".to_owned()
            } else if line.starts_with("also ") {
                regex::Regex::new("127.0.0.1:[0-9]+")
                    .unwrap()
                    .replace_all(line, "127.0.0.1:[port]")
                    .into_owned()
            } else if let Some((probe, summary)) = line.split_once(" over http:") {
                // Over HTTP the figures (ports, timings) differ from run to run.
                format!("{probe} {}", stable_summary(&format!("over http:{summary}")))
            } else if line.starts_with("profile ") {
                line.split(',').next().unwrap_or_default().to_owned() + ", [calls and duration]"
            } else if line.contains("correlation id") {
                // A tool's refusal carries a fresh correlation id.
                regex::Regex::new("correlation id [0-9a-f]+")
                    .unwrap()
                    .replace_all(line, "correlation id [id]")
                    .into_owned()
            } else if line.contains(" RATE-") || line.contains(" RES-") || line.contains(" LEAK-") {
                // Measured figures (rates, memory, reply counts) differ from run to run.
                digits_as_n(line)
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn reports_for_the_reference_server_validate_and_match_their_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let out = certify_all_formats(&[], dir.path());
    assert_eq!(out.exit, 0, "{}", out.human);
    validate(
        include_str!("../report.schema.json"),
        &out.json,
        "the JSON report",
    );
    validate(
        include_str!("schemas/sarif-2.1.0.json"),
        &out.sarif,
        "the SARIF report",
    );
    let report: Value = serde_json::from_str(&stage_fixed(&out.json)).unwrap();
    assert_eq!(
        report["coverage"]["planted_path_touches"], 0,
        "a server that stays in its sandbox touches no planted path, and neither does the harness"
    );
    // The first run shows everything: what stdio cannot apply ran over HTTP.
    assert_eq!(
        report["summary"]["not_applicable"], 0,
        "the first run leaves no probe not applicable: {}",
        out.human
    );
    assert_eq!(report["also_over"][0]["transport"], "http");
    for id in [
        "TRANS-ORIGIN",
        "AUTH-JWT-CLAIMS",
        "AUTH-SCOPE",
        "TIME-CREDENTIAL-COMPARE",
        "RATE-SECOND-PRINCIPAL",
    ] {
        let record = report["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("{id} is in the report"));
        assert_eq!(record["transport"], "http", "{id} ran over HTTP: {record}");
    }
    let probes = report["probes"].as_array().unwrap().len();
    let (_, failures, _) = check_junit(&out.junit, probes);
    assert_eq!(failures, 0);
    let sarif: Value = serde_json::from_str(&out.sarif).unwrap();
    assert_eq!(
        sarif["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        probes,
        "one rule per probe"
    );
    assert!(sarif["runs"][0]["results"].as_array().unwrap().is_empty());
    insta::assert_snapshot!("human_report_reference_server", stable_human(&out.human));
    insta::assert_json_snapshot!("json_report_reference_server", report, {
        ".duration_ms" => "[duration]",
        ".harness_version" => "[version]",
        ".target.address" => "[address]",
        ".target.server_version" => "[version]",
        ".also_over[].address" => "[address]",
        ".probes[].figure" => "[measured]",
        ".also_over[].server_version" => "[version]",
        ".rate_limited_retries" => "[retries]",
        ".calls" => "[calls]",
        ".probes[].summary" => insta::dynamic_redaction(|value, _| {
            stable_summary(value.as_str().unwrap_or_default())
        }),
        ".coverage.refused_baselines[].refusal" => insta::dynamic_redaction(|value, _| {
            regex::Regex::new("correlation id [0-9a-f]+")
                .unwrap()
                .replace_all(value.as_str().unwrap_or_default(), "correlation id [id]")
                .into_owned()
        }),
    });
}

#[test]
fn failing_probes_render_as_sarif_results_and_junit_failures() {
    let dir = tempfile::tempdir().unwrap();
    let command = format!("python3 {FAKE} crash");
    let out = certify_all_formats(&["--stdio", &command], dir.path());
    assert_eq!(out.exit, 1);
    validate(
        include_str!("../report.schema.json"),
        &out.json,
        "the JSON report",
    );
    validate(
        include_str!("schemas/sarif-2.1.0.json"),
        &out.sarif,
        "the SARIF report",
    );
    let report: Value = serde_json::from_str(&out.json).unwrap();
    let probes = report["probes"].as_array().unwrap().len();
    let (_, failures, skipped) = check_junit(&out.junit, probes);
    assert!(
        failures >= 1 && skipped >= 1,
        "failures {failures}, skipped {skipped}"
    );
    let sarif: Value = serde_json::from_str(&out.sarif).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let alive = results
        .iter()
        .find(|r| r["ruleId"] == "PROTO-ALIVE")
        .expect("a SARIF result for the crash");
    assert_eq!(alive["level"], "error");
    assert_eq!(alive["properties"]["tags"][0], "CWE-400");
    assert!(
        alive["message"]["text"]
            .as_str()
            .unwrap()
            .contains("Proof: the target exited while handling this request")
    );
    assert!(out.human.contains("NOT CERTIFIED"));
}

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    for (args, expected) in [
        (
            vec!["certify", "--only", "NO-SUCH-PROBE"],
            "no probe or family is called",
        ),
        (
            vec![
                "certify",
                "--url",
                "http://127.0.0.1:9/mcp",
                "--header",
                "no colon",
            ],
            "is not 'Name: value'",
        ),
        (
            vec!["certify", "--stdio", "/nonexistent/server --stdio"],
            "could not be started",
        ),
        (
            vec![
                "certify", "--format", "json", "--output", "a", "--output", "b",
            ],
            "more --output files",
        ),
    ] {
        let output = Command::new(HARNESS).args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
