//! `mcp-harness fuzz` finds, shrinks and reports a planted validation bug in a Python fake (an
//! empty string in a nested field crashes a tool), in a TypeScript SDK server (a zod
//! refinement that throws) and in flawed twins of the reference, and reports nothing on the
//! fakes' fixes or on the reference server in 2,000 cases; a reported replay runs the case
//! again and gets the same failure.

mod common;

use common::{HARNESS, fastmcp_python, flawed_server, start_listening};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fuzz(args: &[&str]) -> (Output, Value) {
    let output = Command::new(HARNESS)
        .arg("fuzz")
        .args(args)
        .args(["--format", "json"])
        .output()
        .expect("the harness runs");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON report; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

fn notes_server(mode: &str) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/notes_server.py");
    format!("python3 {} {mode}", script.display())
}

fn probe<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["probes"]
        .as_array()
        .and_then(|probes| probes.iter().find(|p| p["id"] == id))
        .unwrap_or_else(|| panic!("no {id} in {report:#}"))
}

fn failing(report: &Value) -> Vec<String> {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["verdict"] == "fail")
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The request of a failing probe's first evidence, and its replay argument (`TOOL#N`).
fn reproduction(probe: &Value) -> (Value, String) {
    let evidence = &probe["evidence"][0];
    let request: Value = serde_json::from_str(evidence["request"].as_str().unwrap()).unwrap();
    let oracle = evidence["oracle"].as_str().unwrap();
    let replay = oracle
        .split("--replay '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no replay in {oracle}"))
        .to_owned();
    (request, replay)
}

#[test]
fn a_python_tool_that_crashes_on_an_empty_nested_string_is_found_shrunk_and_replayed() {
    let target = notes_server("crash-on-empty");
    let (output, report) = fuzz(&["--stdio", &target, "--cases", "200", "--seed", "7"]);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    assert_eq!(failing(&report), ["FUZZ-SERVER-ERROR"], "{report:#}");
    let (request, replay) = reproduction(probe(&report, "FUZZ-SERVER-ERROR"));
    // Shrunk to the required fields, the title empty: nothing else is needed to crash it.
    assert_eq!(
        request["params"]["arguments"],
        json!({"note": {"title": "", "body": ""}}),
        "{request}"
    );
    assert_eq!(request["method"], "tools/call");

    let (output, again) = fuzz(&["--stdio", &target, "--seed", "7", "--replay", &replay]);
    assert_eq!(output.status.code(), Some(1), "{again:#}");
    assert_eq!(failing(&again), ["FUZZ-SERVER-ERROR"]);
    assert_eq!(
        reproduction(probe(&again, "FUZZ-SERVER-ERROR")),
        (request, replay)
    );

    // A replay of a target the server does not have is a usage error, not a clean run.
    let output = Command::new(HARNESS)
        .args(["fuzz", "--stdio", &target, "--replay", "no_such_tool#1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no_such_tool"));

    // The same cases against the fix: nothing.
    let (output, fixed) = fuzz(&[
        "--stdio",
        &notes_server("checked"),
        "--cases",
        "200",
        "--seed",
        "7",
    ]);
    assert_eq!(output.status.code(), Some(0), "{fixed:#}");
    assert!(failing(&fixed).is_empty());
    assert_eq!(probe(&fixed, "FUZZ-SERVER-ERROR")["verdict"], "pass");
}

fn twin(flaw: &str) -> String {
    format!(
        "{} --flaw {flaw} --stdio --root {{sandbox}} --rate-burst 1000000 --rate-per-second 1000000",
        flawed_server().display()
    )
}

#[test]
fn flawed_twins_fail_the_check_their_mistake_breaks() {
    // Malformed arguments answered -32603 instead of -32602.
    let (output, report) = fuzz(&["--stdio", &twin("wrong-error-codes"), "--cases", "30"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        failing(&report).contains(&"FUZZ-SERVER-ERROR".to_owned()),
        "{report:#}"
    );
    // Tool errors that carry a backtrace.
    let (output, report) = fuzz(&["--stdio", &twin("leak-details"), "--cases", "30"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        failing(&report).contains(&"FUZZ-LEAK".to_owned()),
        "{report:#}"
    );
    let evidence = &probe(&report, "FUZZ-LEAK")["evidence"][0];
    assert!(
        evidence["oracle"].as_str().unwrap().contains("StackTrace"),
        "{evidence:#}"
    );
    // Escapes whose replies carry nothing: seen by the access oracle (a read of the outside
    // directory by file_info, a file created outside by write_file).
    for (flaw, tool, verb) in [
        ("info-unchecked", "file_info", "opened"),
        ("write-unchecked", "write_file", "created"),
    ] {
        let (output, report) = fuzz(&["--stdio", &twin(flaw), "--cases", "30"]);
        assert_eq!(output.status.code(), Some(1), "{flaw}");
        let attack = probe(&report, "FUZZ-ATTACK");
        assert_eq!(attack["verdict"], "fail", "{flaw}: {report:#}");
        let evidence = &attack["evidence"][0];
        assert_eq!(evidence["tool"], tool, "{flaw}: {evidence:#}");
        assert!(
            evidence["oracle"]
                .as_str()
                .unwrap()
                .contains(&format!("the target {verb} ")),
            "{flaw}: {evidence:#}"
        );
    }
}

#[test]
fn the_reference_server_passes_two_thousand_cases() {
    let reference = format!(
        "{HARNESS} __reference-server --stdio --root {{sandbox}} --rate-burst 1000000 --rate-per-second 1000000"
    );
    // 17 tools, prompts, templates and completions, 118 cases each: 2,006 cases.
    let (output, report) = fuzz(&["--stdio", &reference, "--cases", "118", "--seed", "2026"]);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert!(failing(&report).is_empty(), "{report:#}");
    let summary = probe(&report, "FUZZ-SERVER-ERROR")["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    // 2,006 cases sent; most reached the tools (the rest were refused by argument validation,
    // which a pass may not rest on alone).
    assert!(report["calls"].as_u64().unwrap() >= 2006, "{report:#}");
    let reached: u64 = summary.split_whitespace().next().unwrap().parse().unwrap();
    assert!(reached >= 1000, "{summary}");
}

/// The TypeScript MCP SDK the zod fake runs on (its 1.x line, with zod 4).
const TYPESCRIPT_SDK: &str = "@modelcontextprotocol/sdk@1.32.2";

/// The zod fake, copied next to a `node_modules` holding the SDK (installed once with npm, in a
/// staging directory renamed into place, so a half-done install is never taken for a finished
/// one). Node resolves an ES module's imports from the script's own directory up.
fn refine_server(mode: &str) -> String {
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _only_one = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ts-sdk-1.32.2");
    let installed = |dir: &Path| {
        dir.join("node_modules/@modelcontextprotocol/sdk/package.json")
            .exists()
    };
    if !installed(&dir) {
        let staging = dir.with_extension(format!("partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).unwrap();
        let status = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&staging)
            .arg(TYPESCRIPT_SDK)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            status,
            "npm install {TYPESCRIPT_SDK} failed (this test needs node, npm and the npm registry)"
        );
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&staging, &dir).expect("the SDK moves into place");
    }
    let script = dir.join("refine_server.mjs");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/refine_server.mjs"),
        &script,
    )
    .expect("the fake is copied next to the SDK");
    format!("node {} {mode}", script.display())
}

#[test]
fn a_zod_refinement_that_throws_is_found_and_shrunk_and_its_fix_passes() {
    let (output, report) = fuzz(&["--stdio", &refine_server("refine-throws"), "--cases", "60"]);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    assert_eq!(failing(&report), ["FUZZ-SERVER-ERROR"], "{report:#}");
    let server_error = probe(&report, "FUZZ-SERVER-ERROR");
    assert!(
        server_error["summary"]
            .as_str()
            .unwrap()
            .contains("JavaScript TypeError"),
        "{server_error:#}"
    );
    let (request, _) = reproduction(server_error);
    // Any repo without a slash throws: the shrinker takes it down to the empty string.
    assert_eq!(
        request["params"]["arguments"],
        json!({"repo": ""}),
        "{request}"
    );

    let (output, fixed) = fuzz(&["--stdio", &refine_server("refine-checked"), "--cases", "60"]);
    assert_eq!(output.status.code(), Some(0), "{fixed:#}");
}

/// The FastMCP server of the kill matrix (pydantic models, nested objects, arrays of objects):
/// its vulnerable mode's string-prefix containment and shell are reached by the hostile cases
/// and confirmed by their oracles (the `_evil` sibling's canary in a reply, the proof file), and
/// its fixed mode passes the same cases.
#[test]
fn a_fastmcp_server_s_sinks_are_reached_and_its_fix_passes() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fastmcp/models_server.py");
    let python = fastmcp_python();
    let target = |mode: &str| {
        format!(
            "{} {} {mode} {{sandbox}}",
            python.display(),
            script.display()
        )
    };
    let (output, report) = fuzz(&["--stdio", &target("vulnerable"), "--cases", "60"]);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    assert_eq!(failing(&report), ["FUZZ-ATTACK"], "{report:#}");
    let tools: Vec<&str> = probe(&report, "FUZZ-ATTACK")["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tool"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["read_document", "run_checks"], "{report:#}");
    let (output, fixed) = fuzz(&["--stdio", &target("fixed"), "--cases", "60"]);
    assert_eq!(output.status.code(), Some(0), "{fixed:#}");
}

/// Over Streamable HTTP the same checks hold: the reference passes, and nothing is judged on
/// an HTTP refusal (its limiter's 429s are waited out).
#[test]
fn the_reference_server_passes_over_http() {
    let root = tempfile::tempdir().unwrap();
    let token = format!("fuzz-{:016x}", rand::random::<u64>());
    let (mut server, url) = start_listening(
        Command::new(HARNESS)
            .args(["__reference-server", "--http", "127.0.0.1:0", "--root"])
            .arg(root.path())
            .args(["--rate-burst", "100", "--rate-per-second", "100"])
            .env("MCP_SERVER_TOKEN", &token)
            .env("RUST_LOG", "warn"),
    );
    let header = format!("Authorization: Bearer {token}");
    let (output, report) = fuzz(&["--url", &url, "--header", &header, "--cases", "30"]);
    let _ = server.kill();
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["target"]["transport"], "http");
    assert!(report["calls"].as_u64().unwrap() >= 30 * 10, "{report:#}");
}

/// The human report a person reads, pinned: the failing check with its shrunk request and
/// replay line, then the passing checks (paths and timings replaced, they change every run).
#[test]
fn the_human_report_of_a_failure_reads_as_pinned() {
    let target = notes_server("crash-on-empty");
    let output = Command::new(HARNESS)
        .args(["fuzz", "--stdio", &target, "--cases", "30", "--seed", "7"])
        .env("NO_COLOR", "1")
        .output()
        .expect("the harness runs");
    let text =
        String::from_utf8_lossy(&output.stdout).replace(env!("CARGO_MANIFEST_DIR"), "[harness]");
    let text = regex::Regex::new(r"\d+ calls in [\d.]+ s")
        .unwrap()
        .replace_all(&text, "[calls] in [time]");
    insta::assert_snapshot!(text);
}

/// A server that refuses every call as malformed is reached nowhere: no check passes on
/// refusals alone (each is inconclusive), and the refusal of inputs its schema allows is the
/// one finding.
#[test]
fn a_server_that_refuses_every_call_is_not_passed() {
    let (output, report) = fuzz(&["--stdio", &notes_server("reject-all"), "--cases", "30"]);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    assert_eq!(failing(&report), ["FUZZ-VALID-REFUSED"]);
    assert_eq!(report["coverage"]["verdict"], "nothing");
    assert_eq!(report["coverage"]["tools_with_accepted_baseline"], 0);
    for check in ["FUZZ-SERVER-ERROR", "FUZZ-ATTACK", "FUZZ-LEAK"] {
        assert_eq!(probe(&report, check)["verdict"], "inconclusive", "{check}");
    }
}

/// FUZZ-ALIVE and FUZZ-TIMEOUT each fail on a hostile fake made for them: one that exits on a
/// tools/call, one that answers calls later than the per-call budget while still answering
/// pings.
#[test]
fn a_server_that_dies_fails_alive_and_one_that_stalls_fails_timeout() {
    let hostile = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/fake_server.py");
    let target = |mode: &str| format!("python3 {} {mode}", hostile.display());
    let (output, report) = fuzz(&["--stdio", &target("crash"), "--cases", "5"]);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    assert!(
        failing(&report).contains(&"FUZZ-ALIVE".to_owned()),
        "{report:#}"
    );
    let (output, report) = fuzz(&[
        "--stdio",
        &target("slows-down"),
        "--cases",
        "3",
        "--timeout",
        "1",
        "--max-calls",
        "12",
    ]);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    assert_eq!(failing(&report), ["FUZZ-TIMEOUT"], "{report:#}");
}
