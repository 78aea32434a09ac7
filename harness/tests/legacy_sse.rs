//! The legacy HTTP+SSE transport (protocol 2024-11-05) against a fake written without an SDK
//! (`tests/hostile/fake_sse_server.py`): the TRANS and AUTH checks that carry over to it each
//! fail on the mode built with their mistake and pass on `careful`. (The SDK's own SSE
//! transport is certified both ways in the kill matrix's tests.)

mod common;

use serde_json::Value;
use std::process::{Child, Command};

const HARNESS: &str = env!("CARGO_BIN_EXE_mcp-harness");
const FAKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/hostile/fake_sse_server.py"
);
const TOKEN: &str = "legacy-sse-0123456789abcdef";

struct Fake {
    child: Child,
    url: String,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(mode: &str) -> Fake {
    let (child, url) = common::start_listening(Command::new("python3").args([FAKE, mode, TOKEN]));
    Fake { child, url }
}

/// The verdict of each TRANS and AUTH probe, and the report's transport.
fn certify(mode: &str) -> (Vec<(String, String)>, Value) {
    let fake = start(mode);
    let header = format!("Authorization: Bearer {TOKEN}");
    let output = Command::new(HARNESS)
        .args(["certify", "--url", &fake.url, "--header", &header])
        .args(["--only", "TRANS", "--only", "AUTH", "--only", "PROTO"])
        .args(["--format", "json", "--timeout", "10"])
        .output()
        .expect("the harness runs");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON report: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let verdicts = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (verdicts, report)
}

fn verdict<'a>(verdicts: &'a [(String, String)], id: &str) -> &'a str {
    verdicts
        .iter()
        .find(|(probe, _)| probe == id)
        .map(|(_, v)| v.as_str())
        .unwrap_or("missing")
}

#[test]
fn the_legacy_sse_checks_fail_on_their_mistake_and_pass_on_the_careful_server() {
    let carried = [
        "TRANS-ORIGIN",
        "TRANS-HOST",
        "TRANS-SESSION-UNKNOWN",
        "AUTH-NO-CREDENTIALS",
        "AUTH-BAD-CREDENTIALS",
    ];
    let (careful, report) = certify("careful");
    assert_eq!(report["target"]["transport"], "sse", "{report}");
    for id in carried {
        assert_eq!(verdict(&careful, id), "pass", "{id}: {report}");
    }
    let failing: Vec<&String> = careful
        .iter()
        .filter(|(_, v)| v == "fail" || v == "inconclusive")
        .map(|(id, _)| id)
        .collect();
    assert!(failing.is_empty(), "careful: {failing:?} {report}");
    // The Streamable HTTP checks say why they do not apply.
    for id in ["TRANS-SESSION-ID", "AUTH-QUERY-TOKEN", "AUTH-JWT-FORGED"] {
        assert_eq!(verdict(&careful, id), "not-applicable", "{id}");
    }
    for (mode, caught) in [
        ("session-unchecked", "TRANS-SESSION-UNKNOWN"),
        ("auth-stream-only", "AUTH-NO-CREDENTIALS"),
        ("any-token", "AUTH-BAD-CREDENTIALS"),
    ] {
        let (verdicts, report) = certify(mode);
        for id in carried {
            let want = if id == caught { "fail" } else { "pass" };
            assert_eq!(verdict(&verdicts, id), want, "{mode}, {id}: {report}");
        }
    }
}

/// A hostile legacy SSE server gets a clear error, never a hang: a stream that names no
/// endpoint (within `--startup-timeout`), an endpoint on another origin (refused, nothing sent
/// there), and answers over the reply cap (each call fails with the cap, the run goes on).
#[test]
fn a_hostile_legacy_sse_server_gets_a_clear_error_and_no_hang() {
    let header = format!("Authorization: Bearer {TOKEN}");
    let run = |mode: &str| {
        let fake = start(mode);
        let started = std::time::Instant::now();
        let output = Command::new(HARNESS)
            .args(["certify", "--url", &fake.url, "--header", &header])
            .args([
                "--only",
                "LEAK",
                "--startup-timeout",
                "3",
                "--format",
                "json",
            ])
            .output()
            .expect("the harness runs");
        (output, started.elapsed())
    };
    let (silent, took) = run("no-endpoint");
    assert_eq!(silent.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&silent.stderr).contains("no endpoint event within 3 s"),
        "{}",
        String::from_utf8_lossy(&silent.stderr)
    );
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    let (foreign, _) = run("foreign-endpoint");
    assert_eq!(foreign.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&foreign.stderr).contains("not a URL on the stream's origin"),
        "{}",
        String::from_utf8_lossy(&foreign.stderr)
    );
    let (huge, took) = run("huge-event");
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    let report: Value = serde_json::from_slice(&huge.stdout).expect("a JSON report");
    assert_eq!(
        report["coverage"]["refused_baselines"][0]["refusal"],
        "the reply was larger than the 4194304-byte cap (dropped unread)",
        "{report}"
    );
}

/// A server that answers in the POST's own body, not on the stream, is still understood.
#[test]
fn answers_in_the_post_body_are_taken() {
    let (verdicts, report) = certify("answers-in-post");
    assert_eq!(
        report["discovery"]["tools"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    for id in ["PROTO-ALIVE", "PROTO-ID-ECHO", "PROTO-UNKNOWN-METHOD"] {
        assert_eq!(verdict(&verdicts, id), "pass", "{id}: {report}");
    }
}
