//! Verdicts over Streamable HTTP that must be true: against the fake HTTP server
//! (`tests/hostile/fake_http_server.py`), each flawed mode fails the probe meant for it and its
//! fixed counterpart (`plain`) passes it.

mod common;

use serde_json::Value;
use std::process::{Child, Command};

const HARNESS: &str = env!("CARGO_BIN_EXE_mcp-harness");
const FAKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/hostile/fake_http_server.py"
);

/// The fake in one mode, on an ephemeral loopback port; killed on drop.
struct Fake {
    child: Child,
    url: String,
}

impl Fake {
    fn start(mode: &str) -> Fake {
        let (child, url) = common::start_listening(Command::new("python3").args([FAKE, mode]));
        Fake { child, url }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Run {
    exit: Option<i32>,
    report: Value,
}

impl Run {
    fn verdict(&self, probe: &str) -> String {
        self.probe(probe)["verdict"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn probe(&self, probe: &str) -> &Value {
        self.report["probes"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["id"] == probe))
            .unwrap_or_else(|| panic!("no {probe} in {}", self.report))
    }
}

/// Certifies a fresh fake in `mode` with `args` (JSON report, `--fail-on low`).
fn certify(mode: &str, args: &[&str]) -> Run {
    let fake = Fake::start(mode);
    let output = Command::new(HARNESS)
        .args(["certify", "--url", &fake.url])
        .args(args)
        .args(["--format", "json", "--fail-on", "low", "--timeout", "5"])
        .output()
        .expect("the harness runs");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON report; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Run {
        exit: output.status.code(),
        report,
    }
}

#[test]
fn a_server_that_one_request_turns_into_500s_fails_proto_alive_ten_runs_in_ten() {
    for attempt in 0..10 {
        let run = certify("broken-after-unknown", &["--only", "PROTO"]);
        assert_eq!(
            run.verdict("PROTO-ALIVE"),
            "fail",
            "run {attempt}: {}",
            run.report
        );
        let alive = run.probe("PROTO-ALIVE");
        let evidence = alive["evidence"][0]["request"].as_str().unwrap_or_default();
        assert!(
            evidence.contains("mcp-harness/no-such-method"),
            "the request that did it is named: {evidence}"
        );
        // A 500 is not an answer: the probes after it cannot pass on it.
        assert_ne!(run.verdict("PROTO-INVALID-PARAMS"), "pass");
    }
    let fixed = certify("plain", &["--only", "PROTO"]);
    assert_eq!(fixed.verdict("PROTO-ALIVE"), "pass", "{}", fixed.report);
}

#[test]
fn a_deleted_session_must_be_gone_and_must_not_break_the_server() {
    for mode in ["broken-after-delete", "deleted-served"] {
        let run = certify(mode, &["--only", "TRANS"]);
        assert_eq!(
            run.verdict("TRANS-SESSION-END"),
            "fail",
            "{mode}: {}",
            run.report
        );
    }
    // Ending the session (404 afterwards) and declining to end it (405) are both right.
    for mode in ["plain", "delete-405"] {
        let fixed = certify(mode, &["--only", "TRANS"]);
        assert_eq!(
            fixed.verdict("TRANS-SESSION-END"),
            "pass",
            "{mode}: {}",
            fixed.report
        );
        assert_eq!(fixed.exit, Some(0), "{mode}: {}", fixed.report);
    }
}

#[test]
fn an_unknown_session_id_must_get_404_not_a_server_error() {
    let run = certify("unknown-session-500", &["--only", "TRANS-SESSION-UNKNOWN"]);
    assert_eq!(
        run.verdict("TRANS-SESSION-UNKNOWN"),
        "fail",
        "{}",
        run.report
    );
    let fixed = certify("plain", &["--only", "TRANS-SESSION-UNKNOWN"]);
    assert_eq!(
        fixed.verdict("TRANS-SESSION-UNKNOWN"),
        "pass",
        "{}",
        fixed.report
    );
}

#[test]
fn a_same_origin_redirect_of_the_endpoint_is_followed() {
    let run = certify("slash-redirect", &["--skip", "RATE", "--skip", "RES"]);
    assert_eq!(run.exit, Some(0), "{}", run.report);
    let followed = run.report["observations"]["redirects_followed"].as_u64();
    // Followed once, then the endpoint where it landed is used (DELETE included).
    assert!(matches!(followed, Some(1..=3)), "{followed:?}");
    assert_eq!(run.verdict("TRANS-SESSION-END"), "pass", "{}", run.report);
    // `echo` is reached; `fetch` refuses every URL by design.
    assert_eq!(
        run.report["coverage"]["points_reached"], 1,
        "{}",
        run.report
    );
}

#[test]
fn a_server_that_forgets_sessions_gets_new_ones_and_verdicts_stay_true() {
    let run = certify("forgets-sessions", &["--skip", "RATE", "--skip", "RES"]);
    assert!(
        run.report["observations"]["session_reinitializations"].as_u64() > Some(0),
        "{}",
        run.report["observations"]
    );
    // No probe may have judged a "Session not found" as the answer it was looking for.
    assert_eq!(
        run.verdict("PROTO-INVALID-PARAMS"),
        "pass",
        "{}",
        run.report
    );
    assert_eq!(run.exit, Some(0), "{}", run.report);
}

#[test]
fn echoed_payloads_are_not_leaks_and_a_leaked_credential_is() {
    let header = [
        "--header",
        "Authorization: Bearer fake-credential-0123456789abcdef",
    ];
    let echo = certify(
        "echo-errors",
        &[&header[..], &["--only", "LEAK", "--only", "SSRF"]].concat(),
    );
    for probe in [
        "LEAK-SECRET",
        "LEAK-CREDENTIAL-URL",
        "LEAK-STACK-TRACE",
        "LEAK-DB-ERROR",
        "LEAK-PATH",
    ] {
        assert_eq!(
            echo.verdict(probe),
            "pass",
            "{probe}: {}",
            echo.probe(probe)
        );
    }
    let leak = certify("leaks-secret", &[&header[..], &["--only", "LEAK"]].concat());
    assert_eq!(leak.verdict("LEAK-SECRET"), "fail", "{}", leak.report);
}

#[test]
fn a_redirect_to_another_origin_is_refused_and_named() {
    let fake = Fake::start("foreign-redirect");
    let output = Command::new(HARNESS)
        .args(["certify", "--url", &fake.url, "--timeout", "5"])
        .output()
        .expect("the harness runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refused a redirect to another origin (http://localhost:"),
        "{stderr}"
    );
}

#[test]
fn when_no_new_session_can_be_served_no_later_probe_passes() {
    // From its 40th request the fake's sessions die as they are made: the harness opens new
    // ones (up to its cap) and every answer after that is a session 404. The probes after the
    // break judge nothing, so none of them may pass; the break itself is PROTO-ALIVE's finding.
    let run = certify("sessions-expire", &["--skip", "TIME"]);
    assert!(
        run.report["observations"]["session_reinitializations"].as_u64() > Some(0),
        "{}",
        run.report["observations"]
    );
    for family in ["RATE", "RES", "PROTO"] {
        let passed: Vec<&str> = run.report["probes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["family"] == family && p["verdict"] == "pass")
            .filter_map(|p| p["id"].as_str())
            .collect();
        assert!(passed.is_empty(), "{family}: {passed:?} passed on 404s");
    }
    // The body-size probe in particular: a 404 after reading 32 MB is not a refusal.
    assert_eq!(
        run.verdict("RES-BODY-SIZE"),
        "inconclusive",
        "{}",
        run.report
    );
    assert_eq!(run.verdict("PROTO-ALIVE"), "fail", "{}", run.report);
}
