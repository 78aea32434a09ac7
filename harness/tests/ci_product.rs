//! The harness as a CI product: the project file, several targets, baselines and
//! suppressions, end to end through the binary, against a flawed twin (one known finding) and
//! the reference server.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{HARNESS, flawed_server};

/// A project file's `[[target]]` for the path-prefix twin (one finding: TRAV-PREFIX on
/// read_file's path) or the reference server, certified for TRAV-PREFIX only.
fn target(name: &str, flaw: Option<&str>) -> String {
    let command = match flaw {
        Some(flaw) => format!(
            "{} --flaw {flaw} --stdio --root {{sandbox}}",
            flawed_server().display()
        ),
        None => format!("{HARNESS} __reference-server --stdio --root {{sandbox}}"),
    };
    format!("[[target]]\nname = \"{name}\"\nstdio = \"{command}\"\n")
}

const HEADER: &str = "only = [\"TRAV-PREFIX\"]\nfail-on = \"low\"\n";

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(HARNESS)
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .expect("the harness runs")
}

fn json_report(dir: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["certify", "--format", "json", "--output", "report.json"];
    args.extend(extra);
    let output = run(dir, &args);
    let text = std::fs::read_to_string(dir.join("report.json")).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (
        output.status.code().unwrap_or(-1),
        serde_json::from_str(&text).unwrap(),
    )
}

fn fingerprints(report: &Value) -> Vec<String> {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["findings"].as_array().cloned().unwrap_or_default())
        .map(|f| f["fingerprint"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_project_file_is_read_from_the_working_directory_and_fingerprints_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mcp-harness.toml"),
        format!("{HEADER}{}", target("twin", Some("path-prefix"))),
    )
    .unwrap();
    let (exit, first) = json_report(dir.path(), &[]);
    assert_eq!(exit, 1, "{first}");
    let (_, second) = json_report(dir.path(), &[]);
    assert_eq!(fingerprints(&first), ["TRAV-PREFIX:read_file:/path"]);
    assert_eq!(
        fingerprints(&first),
        fingerprints(&second),
        "two runs give the same fingerprints (no canary, nonce or path in them)"
    );
}

#[test]
fn a_baseline_accepts_what_it_lists_and_reports_what_was_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("mcp-harness.toml");
    std::fs::write(
        &project,
        format!("{HEADER}{}", target("twin", Some("path-prefix"))),
    )
    .unwrap();
    let written = run(dir.path(), &["baseline", "--output", "baseline.json"]);
    assert_eq!(written.status.code(), Some(0), "{written:?}");
    let baseline: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("baseline.json")).unwrap())
            .unwrap();
    assert_eq!(baseline["version"], 1);
    assert_eq!(
        baseline["findings"][0]["fingerprint"],
        "TRAV-PREFIX:read_file:/path"
    );
    // With the baseline the known finding no longer fails the run.
    let (exit, report) = json_report(dir.path(), &["--baseline", "baseline.json"]);
    assert_eq!(exit, 0, "{report}");
    let finding = &report["probes"][0]["findings"][0];
    assert_eq!(finding["status"], "baselined");
    assert_eq!(report["acceptance"]["baselined"], 1);
    validate_report(&report);
    // The fixed server: nothing new, and the baseline's finding is listed as fixed.
    std::fs::write(&project, format!("{HEADER}{}", target("twin", None))).unwrap();
    let (exit, report) = json_report(dir.path(), &["--baseline", "baseline.json"]);
    assert_eq!(exit, 0, "{report}");
    assert_eq!(
        report["acceptance"]["fixed"][0]["fingerprint"],
        "TRAV-PREFIX:read_file:/path"
    );
    validate_report(&report);
}

#[test]
fn suppressions_need_a_reason_and_fail_the_run_once_expired() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("mcp-harness.toml");
    let twin = target("twin", Some("path-prefix"));
    let suppress = |expires: &str, probe: &str| {
        format!(
            "[[suppress]]\nprobe = \"{probe}\"\ntool = \"read_file\"\nreason = \"tracked in issue 7\"\nexpires = \"{expires}\"\n"
        )
    };
    // In force: the finding is suppressed with its reason, and the run passes.
    std::fs::write(
        &project,
        format!("{HEADER}{twin}{}", suppress("2999-01-01", "TRAV-PREFIX")),
    )
    .unwrap();
    let (exit, report) = json_report(dir.path(), &[]);
    assert_eq!(exit, 0, "{report}");
    let finding = &report["probes"][0]["findings"][0];
    assert_eq!(finding["status"], "suppressed");
    assert_eq!(finding["reason"], "tracked in issue 7");
    validate_report(&report);
    let sarif = run(dir.path(), &["certify", "--format", "sarif"]);
    let sarif: Value = serde_json::from_slice(&sarif.stdout).unwrap();
    validate(
        include_str!("schemas/sarif-2.1.0.json"),
        &sarif,
        "the SARIF report",
    );
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(
        result["partialFingerprints"]["mcpHarnessFinding/v1"],
        "TRAV-PREFIX:read_file:/path"
    );
    assert_eq!(
        result["suppressions"][0]["justification"],
        "tracked in issue 7 (until 2999-01-01)"
    );
    assert_eq!(
        result["locations"][0]["logicalLocations"][1]["fullyQualifiedName"],
        "tools/read_file#/path"
    );
    // Expired: the run fails though the finding matched.
    std::fs::write(
        &project,
        format!("{HEADER}{twin}{}", suppress("2020-01-01", "TRAV-PREFIX")),
    )
    .unwrap();
    let (exit, report) = json_report(dir.path(), &[]);
    assert_eq!(exit, 1, "{report}");
    assert_eq!(report["acceptance"]["expired"].as_array().unwrap().len(), 1);
    // Unused: a warning, and the real finding still fails.
    std::fs::write(
        &project,
        format!("{HEADER}{twin}{}", suppress("2999-01-01", "TRAV-SYMLINK")),
    )
    .unwrap();
    let output = run(dir.path(), &["certify"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: unused suppression: TRAV-SYMLINK:read_file"),
        "{stderr}"
    );
    let human = String::from_utf8_lossy(&output.stdout);
    assert!(
        human.contains("finding  TRAV-PREFIX:read_file:/path (new)"),
        "{human}"
    );
}

#[test]
fn the_html_report_is_one_self_contained_page_with_the_evidence_escaped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mcp-harness.toml"),
        format!("{HEADER}{}", target("twin", Some("path-prefix"))),
    )
    .unwrap();
    let output = run(dir.path(), &["certify", "--format", "html"]);
    assert_eq!(output.status.code(), Some(1));
    let html = String::from_utf8_lossy(&output.stdout);
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    for absent in ["<script", "src=", "href=", "<link", "@import", "url("] {
        assert!(!html.contains(absent), "{absent} in the page");
    }
    for present in [
        "NOT CERTIFIED",
        "<h3 class=\"fail\">TRAV-PREFIX",
        "Finding <code>TRAV-PREFIX:read_file:/path</code> (new)",
        "<svg xmlns=",
        "Proof at read_file at /path",
    ] {
        assert!(html.contains(present), "{present} missing");
    }
}

#[test]
fn several_targets_give_one_report_each_and_the_worst_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mcp-harness.toml"),
        format!(
            "{HEADER}{}{}[[output]]\nformat = \"json\"\npath = \"out/{{target}}.json\"\n",
            target("twin", Some("path-prefix")),
            target("reference", None)
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let output = run(dir.path(), &["certify"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out").join(name)).unwrap())
            .unwrap()
    };
    assert_eq!(read("twin.json")["summary"]["verdict"], "not_certified");
    assert_eq!(read("reference.json")["summary"]["verdict"], "certified");
    // An output path without {target} cannot serve several targets.
    std::fs::write(
        dir.path().join("two.toml"),
        format!(
            "{}{}[[output]]\nformat = \"json\"\npath = \"one.json\"\n",
            target("a", None),
            target("b", None)
        ),
    )
    .unwrap();
    let output = run(dir.path(), &["certify", "--config", "two.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no {target}"));
}

#[test]
fn the_version_names_the_probe_set() {
    let output = Command::new(HARNESS).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("mcp-harness ")
            && text.contains(" (probe set ")
            && text.contains(" probes)"),
        "{text}"
    );
}

#[test]
fn a_bad_project_file_exits_2_naming_the_key_or_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        ("[[target]]\nstdio = \"x\"\nretries = 3\n", "retries"),
        (
            "[[target]]\nurl = \"http://127.0.0.1:9/mcp\"\nbearer-env = \"MCP_HARNESS_TEST_UNSET\"\n",
            "MCP_HARNESS_TEST_UNSET",
        ),
    ] {
        std::fs::write(dir.path().join("bad.toml"), text).unwrap();
        let output = run(dir.path(), &["certify", "--config", "bad.toml"]);
        assert_eq!(output.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(says) && stderr.contains("bad.toml"),
            "{stderr}"
        );
    }
}

fn validate_report(report: &Value) {
    validate(
        include_str!("../report.schema.json"),
        report,
        "the JSON report",
    );
}

fn validate(schema: &str, document: &Value, what: &str) {
    let schema: Value = serde_json::from_str(schema).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{e} at {}", e.instance_path))
        .take(10)
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema:\n{}",
        errors.join("\n")
    );
}

#[test]
fn a_client_configuration_is_certified_as_configured_with_the_reading_families_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir(&root).unwrap();
    let config = serde_json::json!({"mcpServers": {"reference server": {
        "command": HARNESS,
        "args": ["__reference-server", "--stdio", "--root", root.to_string_lossy()],
    }}});
    std::fs::write(
        dir.path().join("claude_desktop_config.json"),
        config.to_string(),
    )
    .unwrap();
    let output = run(
        dir.path(),
        &[
            "certify",
            "--client-config",
            "claude_desktop_config.json",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let families: std::collections::BTreeSet<&str> = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["family"].as_str().unwrap())
        .collect();
    assert!(
        families
            .iter()
            .all(|f| ["PROTO", "TRANS", "AUTH"].contains(f)),
        "only the reading families run against a configured server: {families:?}"
    );
    // Nothing was written where the server works.
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    assert!(report.get("warnings").is_none());
    // Asked for every family, the report says so.
    let output = run(
        dir.path(),
        &[
            "certify",
            "--client-config",
            "claude_desktop_config.json",
            "--all-families",
            "--only",
            "PROTO-ALIVE",
            "--format",
            "json",
        ],
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        report["warnings"][0]
            .as_str()
            .unwrap_or_default()
            .contains("--all-families"),
        "{report}"
    );
    validate_report(&report);
    // The harness's placeholders are never filled into someone's arguments.
    let config = serde_json::json!({"servers": {"s": {"command": HARNESS, "args": ["--root", "{sandbox}"]}}});
    std::fs::write(dir.path().join("mcp.json"), config.to_string()).unwrap();
    let output = run(dir.path(), &["certify", "--client-config", "mcp.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("never rewritten"));
}

#[test]
fn quiet_says_nothing_and_a_pipe_gets_no_progress_line() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = run(dir.path(), &["certify", "--only", "PROTO", "--quiet"]);
    assert_eq!(quiet.status.code(), Some(0));
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    let plain = run(dir.path(), &["certify", "--only", "PROTO"]);
    assert!(
        !String::from_utf8_lossy(&plain.stderr).contains('\x1b'),
        "no terminal, no progress line"
    );
}
