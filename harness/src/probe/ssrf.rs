//! SSRF: server-side request forgery, confirmed by a hit on the harness's loopback listener.
//!
//! Every URL-like point gets URLs that reach the listener in different spellings, and every
//! other string point the plainest one (a host or a webhook is not always called `url`). Each
//! payload carries a unique path (`/ssrf/<nonce>`), so a hit names the payload that caused it;
//! a reply that merely repeats the URL proves nothing and is not counted.

use super::{
    Evidence, Family, Outcome, ProbeInfo, Run, Severity, Tally, Verdict, oracle_outcome,
    payloads_for,
};
use crate::discover::PointKind;
use serde_json::json;

const PRACTICE: &str = "Network security: restrict outbound requests to allowed domains; never reach loopback, private or metadata addresses (MCP security best practices; CWE-918)";

pub static SSRF_LOOPBACK: ProbeInfo = ProbeInfo {
    id: "SSRF-LOOPBACK",
    family: Family::SSRF,
    title: "a URL argument reaches a loopback address",
    severity: Severity::High,
    cwe: Some(918),
    enforces: PRACTICE,
    remediation: "Resolve the host, refuse loopback/private/link-local/metadata addresses, and connect only to the address you checked.",
};

pub static SSRF_ENCODED: ProbeInfo = ProbeInfo {
    id: "SSRF-ENCODED",
    family: Family::SSRF,
    title: "an alternative spelling of loopback (decimal, hex, short form, IPv6) gets through",
    severity: Severity::High,
    cwe: Some(918),
    enforces: PRACTICE,
    remediation: "Parse URLs with a WHATWG parser and classify the resulting address; a denylist of strings such as 'localhost' and '127.0.0.1' misses 2130706433, 0x7f.1 and [::ffff:127.0.0.1].",
};

pub static SSRF_USERINFO: ProbeInfo = ProbeInfo {
    id: "SSRF-USERINFO",
    family: Family::SSRF,
    title: "userinfo in the URL fools the host check",
    severity: Severity::High,
    cwe: Some(918),
    enforces: PRACTICE,
    remediation: "Take the host from a real URL parser and refuse URLs with userinfo: 'http://allowed.example:x@127.0.0.1/' has the host 127.0.0.1, not allowed.example.",
};

/// This family's probes, in report order.
pub static PROBES: &[&ProbeInfo] = &[&SSRF_LOOPBACK, &SSRF_ENCODED, &SSRF_USERINFO];

fn payloads(port: u16) -> Vec<(&'static ProbeInfo, Vec<String>)> {
    let p = port;
    vec![
        (
            &SSRF_LOOPBACK,
            vec![
                format!("http://127.0.0.1:{p}/ssrf/NONCE"),
                format!("http://localhost:{p}/ssrf/NONCE"),
            ],
        ),
        (
            &SSRF_ENCODED,
            vec![
                format!("http://2130706433:{p}/ssrf/NONCE"),
                format!("http://0x7f.1:{p}/ssrf/NONCE"),
                format!("http://0x7f000001:{p}/ssrf/NONCE"),
                format!("http://127.1:{p}/ssrf/NONCE"),
                format!("http://0177.0.0.1:{p}/ssrf/NONCE"),
                format!("http://[::ffff:127.0.0.1]:{p}/ssrf/NONCE"),
                format!("http://[::1]:{p}/ssrf/NONCE"),
                format!("http://0.0.0.0:{p}/ssrf/NONCE"),
                format!("http://LOCALHOST:{p}/ssrf/NONCE"),
            ],
        ),
        (
            &SSRF_USERINFO,
            vec![
                format!("http://example.com:x@127.0.0.1:{p}/ssrf/NONCE"),
                format!("http://example.com@127.0.0.1:{p}/ssrf/NONCE"),
                format!("http://example.com:443@127.0.0.1:{p}/ssrf/NONCE"),
            ],
        ),
    ]
}

pub async fn run(run: &mut Run<'_>) -> Vec<Outcome> {
    let points = run.points(&[PointKind::Url]);
    let Some(port) = run.stage.listener.as_ref().map(|l| l.port) else {
        return super::every(
            PROBES,
            Verdict::NotApplicable,
            "the loopback listener could not be started",
        );
    };
    if points.is_empty() {
        return super::every(
            PROBES,
            Verdict::NotApplicable,
            "no tool takes a string argument",
        );
    }
    let mut outcomes = Vec::new();
    for (index, (info, list)) in payloads(port).into_iter().enumerate() {
        // The short set: the plainest loopback URL, once per point.
        let short = usize::from(index == 0);
        let mut evidence: Vec<Evidence> = Vec::new();
        let mut tally = Tally::default();
        'points: for point in &points {
            let count = payloads_for(run.profile, point, list.len(), short, 1);
            for template in list.iter().take(count) {
                let nonce = format!("{:016x}", rand::random::<u64>());
                let url = template.replace("NONCE", &nonce);
                let Some(result) = run.attack(point, json!(url), &mut tally).await else {
                    break 'points;
                };
                let listener = run.stage.listener.as_ref().expect("checked above");
                let hits = listener.hits_containing(&nonce);
                if let Some(hit) = hits.first() {
                    evidence.push(result.evidence_at(
                        point,
                        format!("the loopback listener received '{}'", hit.request_line),
                    ));
                    break 'points;
                }
            }
        }
        outcomes.push(oracle_outcome(
            info,
            evidence,
            &tally,
            "the loopback listener was hit",
            "listener hit",
            "URL-like",
        ));
    }
    outcomes
}
