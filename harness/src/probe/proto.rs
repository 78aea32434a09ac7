//! PROTO: JSON-RPC and MCP protocol behaviour: error codes, id echo, surviving garbage, stdout
//! hygiene on stdio, and staying alive through the run.
//!
//! PROTO-RESOURCE-NOT-FOUND reads a URI the harness made up beside a listed resource (or in
//! a listed template) and checks the error against the negotiated protocol: -32602 from
//! 2026-07-28 (SEP-2164 moved "resource not found" there), -32002 before it (its
//! specification's suggestion; -32602 is accepted too, being where the code went). It fails on
//! -32603 (a missing resource is not an internal error) and, in 2026-07-28, on the old -32002.
//! A result is inconclusive: a template may serve any name, so a made-up one proves nothing.
//!
//! PROTO-ID-ECHO's oracle: a response that answers no pending request (the connections keep
//! the ids of such stray responses) and carries the ping's id altered (a number turned into a
//! string or a float, a string re-encoded). A ping that gets no answer at all costs the request
//! timeout.

use super::{Evidence, Family, Outcome, ProbeInfo, Run, Severity, Verdict};
use crate::connection::{Reply, excerpt};
use serde_json::{Value, json};

pub static PROTO_UNKNOWN_METHOD: ProbeInfo = ProbeInfo {
    id: "PROTO-UNKNOWN-METHOD",
    family: Family::PROTO,
    title: "an unknown method gets JSON-RPC -32601",
    severity: Severity::Low,
    cwe: None,
    enforces: "JSON-RPC 2.0 section 5.1: -32601 Method not found",
    remediation: "Answer unknown methods with error code -32601.",
};

pub static PROTO_INVALID_PARAMS: ProbeInfo = ProbeInfo {
    id: "PROTO-INVALID-PARAMS",
    family: Family::PROTO,
    title: "a malformed tools/call gets a JSON-RPC error (-32602)",
    severity: Severity::Low,
    cwe: None,
    enforces: "MCP server/tools, Error Handling: malformed requests are protocol errors (-32602)",
    remediation: "Validate request shapes before dispatch and answer with -32602.",
};

pub static PROTO_RESOURCE_NOT_FOUND: ProbeInfo = ProbeInfo {
    id: "PROTO-RESOURCE-NOT-FOUND",
    family: Family::PROTO,
    title: "a resource that does not exist gets the negotiated era's error code",
    severity: Severity::Low,
    cwe: None,
    enforces: "MCP server/resources, Error Handling: resource not found is -32602 from 2026-07-28 (SEP-2164), -32002 in 2025-11-25 and before",
    remediation: "Answer resources/read for a URI that names nothing with a JSON-RPC error: -32602 for 2026-07-28 clients, -32002 (or -32602) for older ones.",
};

pub static PROTO_ID_ECHO: ProbeInfo = ProbeInfo {
    id: "PROTO-ID-ECHO",
    family: Family::PROTO,
    title: "the response id equals the request id (string and large integer ids)",
    severity: Severity::Medium,
    cwe: None,
    enforces: "JSON-RPC 2.0 section 5: the response id MUST be the same as the request id",
    remediation: "Echo the id exactly as received; do not coerce it to a number or a string.",
};

pub static PROTO_GARBAGE: ProbeInfo = ProbeInfo {
    id: "PROTO-GARBAGE",
    family: Family::PROTO,
    title: "the target survives malformed input",
    severity: Severity::Medium,
    cwe: Some(20),
    enforces: "Resource management: malformed input must not stop the server",
    remediation: "Treat every unparsable message as an error for that message only.",
};

pub static PROTO_STDOUT_HYGIENE: ProbeInfo = ProbeInfo {
    id: "PROTO-STDOUT-HYGIENE",
    family: Family::PROTO,
    title: "stdout carries only JSON-RPC messages (stdio)",
    severity: Severity::Medium,
    cwe: None,
    enforces: "MCP transports, stdio: the server MUST NOT write anything to stdout that is not a valid MCP message",
    remediation: "Send logs and banners to stderr; stdout belongs to the protocol.",
};

pub static PROTO_ALIVE: ProbeInfo = ProbeInfo {
    id: "PROTO-ALIVE",
    family: Family::PROTO,
    title: "the target stays alive through every probe family",
    severity: Severity::High,
    cwe: Some(400),
    enforces: "Resource management: no input may crash or hang the server",
    remediation: "Bound every input and catch every error at the request boundary.",
};

/// This family's probes, in report order.
pub static PROBES: &[&ProbeInfo] = &[
    &PROTO_UNKNOWN_METHOD,
    &PROTO_INVALID_PARAMS,
    &PROTO_RESOURCE_NOT_FOUND,
    &PROTO_ID_ECHO,
    &PROTO_GARBAGE,
    &PROTO_STDOUT_HYGIENE,
    &PROTO_ALIVE,
];

fn evidence(request: &str, reply: &str, oracle: &str) -> Evidence {
    Evidence {
        tool: None,
        point: None,
        request: request.to_owned(),
        reply: excerpt(reply, 600),
        oracle: oracle.to_owned(),
    }
}

pub async fn run(run: &mut Run<'_>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();

    let unknown = run.request("mcp-harness/no-such-method", json!({})).await;
    let info = &PROTO_UNKNOWN_METHOD;
    outcomes.push(match &unknown.reply {
        Ok(Reply::Error { code: -32601, .. }) => {
            Outcome::new(info, Verdict::Pass, "answered -32601")
        }
        Ok(reply) => Outcome::new(
            info,
            Verdict::Fail,
            format!("answered {} instead of -32601", excerpt(&reply.text(), 120)),
        )
        .with_evidence(vec![evidence(
            &unknown.request,
            &reply.text(),
            "the JSON-RPC error code",
        )]),
        Err(error) => Outcome::new(info, Verdict::Inconclusive, format!("no answer: {error}")),
    });

    let malformed = run.request("tools/call", json!({"arguments": {}})).await;
    let info = &PROTO_INVALID_PARAMS;
    outcomes.push(match &malformed.reply {
        Ok(Reply::Error {
            code: -32602 | -32600,
            ..
        }) => Outcome::new(
            info,
            Verdict::Pass,
            "answered with a JSON-RPC invalid-params error",
        ),
        Ok(reply) => Outcome::new(
            info,
            Verdict::Fail,
            format!(
                "answered {} to a tools/call without a name",
                excerpt(&reply.text(), 120)
            ),
        )
        .with_evidence(vec![evidence(
            &malformed.request,
            &reply.text(),
            "the JSON-RPC error code",
        )]),
        Err(error) => Outcome::new(info, Verdict::Inconclusive, format!("no answer: {error}")),
    });

    outcomes.push(resource_not_found(run).await);

    let info = &PROTO_ID_ECHO;
    let mut mismatches = Vec::new();
    let mut answered = 0;
    for id in ECHOED_IDS.iter().map(|make| make()) {
        let before = run.observations();
        let reply = run.request_with_id(id.clone(), "ping", None).await;
        if reply.is_ok() {
            answered += 1;
            continue;
        }
        // No answer under the id sent: was there one under an altered id?
        let after = run.observations();
        if let Some(altered) = after
            .stray_ids_since(&before)
            .iter()
            .find(|received| altered_echo(&id, received))
        {
            mismatches.push(evidence(
                &format!("ping with id {id}"),
                &format!("a response with id {altered}"),
                "the response id differs from the request id",
            ));
        }
    }
    outcomes.push(if !mismatches.is_empty() {
        Outcome::new(info, Verdict::Fail, "a response id did not match its request id").with_evidence(mismatches)
    } else if answered < ECHOED_IDS.len() {
        Outcome::new(info, Verdict::Inconclusive, format!("{answered} of {} pings with chosen ids were answered; the others got no answer at all", ECHOED_IDS.len()))
    } else {
        Outcome::new(info, Verdict::Pass, format!("{answered} ids echoed exactly"))
    });

    let info = &PROTO_GARBAGE;
    let garbage: [&[u8]; 4] = [
        b"this is not json\n",
        b"{\"jsonrpc\": \"2.0\", \"id\": \n",
        b"[]\n",
        b"\xff\xfe\x00garbage\n",
    ];
    // A target already down proves nothing about malformed input.
    let alive_before = run.alive().await;
    let mut statuses = Vec::new();
    for bytes in garbage {
        if let Ok(outcome) = run.raw(bytes, &[], &[]).await
            && let Some(status) = outcome.status
        {
            statuses.push(status);
        }
    }
    let alive = run.alive().await;
    outcomes.push(if !alive_before {
        Outcome::new(
            info,
            Verdict::Inconclusive,
            "the target did not answer a ping before the malformed input was sent",
        )
    } else if alive {
        let note = if statuses.is_empty() {
            String::new()
        } else {
            format!(" (HTTP statuses {statuses:?})")
        };
        Outcome::new(
            info,
            Verdict::Pass,
            format!("answered a ping after malformed input{note}"),
        )
    } else {
        Outcome::new(
            info,
            Verdict::Fail,
            "the target stopped answering after malformed input",
        )
        .with_evidence(vec![evidence(
            "malformed lines: not JSON, a truncated object, an empty batch, invalid UTF-8",
            &run.stderr_tail(),
            "no answer to ping afterwards",
        )])
    });
    outcomes
}

/// A URI no resource has: beside the first listed resource that is not a web URL (its last
/// segment replaced), or a listed template (not a whole-URI or web one) expanded with a
/// made-up name. `None` when the server lists neither.
pub fn missing_resource_uri(listings: &crate::discover::Listings, name: &str) -> Option<String> {
    let web = |uri: &str| {
        let lower = uri.to_ascii_lowercase();
        lower.starts_with("http:") || lower.starts_with("https:")
    };
    let beside_resource = listings
        .resources
        .iter()
        .filter_map(|r| r.get("uri").and_then(Value::as_str))
        .filter(|uri| !web(uri))
        .find_map(|uri| {
            let cut = uri.rfind('/')?;
            (cut + 1 >= uri.find("://").map_or(0, |i| i + 3))
                .then(|| format!("{}{name}", &uri[..=cut]))
        });
    beside_resource.or_else(|| {
        listings
            .resource_templates
            .iter()
            .filter_map(|t| t.get("uriTemplate").and_then(Value::as_str))
            .filter(|template| !web(template) && !template.starts_with('{'))
            .find_map(|template| {
                let variables: serde_json::Map<String, Value> =
                    crate::surface::expressions(template)?
                        .iter()
                        .flat_map(|e| e.variables.clone())
                        .map(|v| (v, Value::String(name.to_owned())))
                        .collect();
                (!variables.is_empty()).then(|| crate::surface::expand(template, &variables))
            })
    })
}

/// The resource-not-found code of protocol `version`.
pub fn resource_not_found_code(version: &str) -> i64 {
    if version >= "2026-07-28" {
        -32602
    } else {
        -32002
    }
}

/// The name PROTO-RESOURCE-NOT-FOUND reads: one no server has.
pub const MISSING_RESOURCE: &str = "mcp-harness-no-such-resource";

/// PROTO-RESOURCE-NOT-FOUND.
async fn resource_not_found(run: &mut Run<'_>) -> Outcome {
    let info = &PROTO_RESOURCE_NOT_FOUND;
    let Some(uri) = missing_resource_uri(run.listings, MISSING_RESOURCE) else {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "the server lists no resource and no resource template to read beside",
        );
    };
    let version = run.protocol_version().to_owned();
    let read = run.request("resources/read", json!({"uri": uri})).await;
    let (verdict, summary) = judge_missing_resource(&uri, &version, &read.reply);
    let outcome = Outcome::new(info, verdict, summary);
    if verdict == Verdict::Fail {
        let reply = read.reply.as_ref().map(Reply::text).unwrap_or_default();
        outcome.with_evidence(vec![evidence(
            &read.request,
            &reply,
            "the JSON-RPC error code, against the negotiated protocol version",
        )])
    } else {
        outcome
    }
}

/// The verdict on `reply`, the answer to reading `uri` (which names nothing) in protocol
/// `version`.
pub fn judge_missing_resource(
    uri: &str,
    version: &str,
    reply: &Result<Reply, crate::connection::TargetError>,
) -> (Verdict, String) {
    let expected = resource_not_found_code(version);
    let modern = version >= "2026-07-28";
    match reply {
        Ok(Reply::Error { code, .. }) if *code == expected || *code == -32602 => (
            Verdict::Pass,
            format!("{uri} answered {code} (protocol {version})"),
        ),
        Ok(Reply::Error {
            code: crate::coverage::HEADER_MISMATCH,
            ..
        }) => (
            Verdict::Inconclusive,
            format!(
                "{uri}: the transport refused the request's routing headers (-32020), so the resource handler never answered"
            ),
        ),
        Ok(Reply::Error { code: -32603, .. }) => (
            Verdict::Fail,
            format!(
                "{uri}, which does not exist, answered -32603 (internal error) instead of {expected} (protocol {version})"
            ),
        ),
        Ok(Reply::Error { code, .. }) if modern => (
            Verdict::Fail,
            format!(
                "{uri}, which does not exist, answered {code} instead of -32602, the code of protocol {version} (SEP-2164)"
            ),
        ),
        Ok(Reply::Error { code, .. }) => (
            Verdict::Pass,
            format!(
                "{uri} answered an error, code {code}, not the {expected} protocol {version} suggests (a SHOULD)"
            ),
        ),
        Ok(Reply::Result(_)) => (
            Verdict::Inconclusive,
            format!(
                "{uri}, a name the harness made up, was served: a template may serve any name, so this proves nothing"
            ),
        ),
        Err(error) => (Verdict::Inconclusive, format!("no answer: {error}")),
    }
}

/// The ids PROTO-ID-ECHO pings with: a string with non-ASCII characters, an integer beyond 32
/// bits (but within 2^53, which every JSON number parser, JavaScript's included, keeps
/// exactly), and zero (falsy in many languages).
const ECHOED_IDS: [fn() -> Value; 3] = [
    || json!("mcp-harness-id-\u{e9}-\u{2713}"),
    || json!(1_099_511_627_777u64),
    || json!(0),
];

/// Whether `received`, the id of a response that answered nothing pending, is `sent` altered:
/// a number turned into a string or a float, or the string re-encoded. Anything else is
/// another request's late answer.
fn altered_echo(sent: &Value, received: &Value) -> bool {
    if sent == received {
        return false;
    }
    match (sent, received) {
        (Value::Number(sent), Value::Number(received)) => sent.as_f64() == received.as_f64(),
        (Value::Number(sent), Value::String(received)) => received.trim() == sent.to_string(),
        (Value::String(sent), Value::String(received)) => {
            let prefix = "mcp-harness-id-";
            sent.starts_with(prefix) && received.starts_with(prefix)
        }
        (Value::String(sent), Value::Number(received)) => sent == &received.to_string(),
        // `message.get("id") or None`: a falsy id answered as null.
        (Value::Number(sent), Value::Null) => sent.as_f64() == Some(0.0),
        _ => false,
    }
}

/// The stdout hygiene verdict, from what the connection saw during the whole run.
pub fn stdout_hygiene(run: &Run<'_>) -> Outcome {
    let info = &PROTO_STDOUT_HYGIENE;
    if !run.is_stdio() {
        return Outcome::new(info, Verdict::NotApplicable, "not a stdio target");
    }
    let observations = run.observations();
    if observations.stdout_noise_lines == 0 {
        Outcome::new(
            info,
            Verdict::Pass,
            "every line on stdout was a JSON-RPC message",
        )
    } else {
        let samples = observations.stdout_noise_samples.join("\n");
        Outcome::new(
            info,
            Verdict::Fail,
            format!(
                "{} lines on stdout were not JSON-RPC messages",
                observations.stdout_noise_lines
            ),
        )
        .with_evidence(vec![evidence(
            "(the whole run)",
            &samples,
            "lines on stdout that are not JSON-RPC messages",
        )])
    }
}

/// A liveness ping that failed after a family: the family, why the ping failed (see
/// [`crate::connection::Connection::liveness`]), and the last request the target answered
/// normally before it stopped, when known (HTTP): likely the one that did it.
#[derive(Debug, Clone)]
pub struct Death {
    pub family: String,
    pub reason: String,
    pub last_answered: Option<String>,
}

/// The liveness verdict: the requests during which the target exited, and the families after
/// which it did not answer a ping.
pub fn alive(crashes: &[Evidence], deaths: &[Death]) -> Outcome {
    let info = &PROTO_ALIVE;
    if crashes.is_empty() && deaths.is_empty() {
        return Outcome::new(info, Verdict::Pass, "answered a ping after every family");
    }
    let mut evidence: Vec<Evidence> = crashes.iter().take(3).cloned().collect();
    evidence.extend(deaths.iter().take(3).map(|death| Evidence {
        tool: None,
        point: None,
        request: match &death.last_answered {
            Some(last) => format!(
                "ping after the {} family; the last request answered before: {last}",
                death.family
            ),
            None => format!("ping after the {} family", death.family),
        },
        reply: excerpt(&death.reason, 600),
        oracle: "no answer to a ping on the target's own session".into(),
    }));
    let mut parts = Vec::new();
    if !crashes.is_empty() {
        parts.push(format!(
            "the target exited during {}",
            super::plural(crashes.len(), "request")
        ));
    }
    if let Some(first) = deaths.first() {
        let families = if deaths.len() == 1 {
            "1 family".to_owned()
        } else {
            format!("{} families", deaths.len())
        };
        parts.push(format!(
            "it did not answer the liveness ping after {families} (first after {}: {})",
            first.family,
            excerpt(&first.reason, 160)
        ));
    }
    Outcome::new(info, Verdict::Fail, parts.join("; ")).with_evidence(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_uri_is_beside_a_listed_resource_or_in_a_template() {
        let listings = |resources: Value, templates: Value| crate::discover::Listings {
            resources: serde_json::from_value(resources).unwrap(),
            resource_templates: serde_json::from_value(templates).unwrap(),
            ..Default::default()
        };
        let beside = listings(
            json!([{"uri": "https://example.com/a"}, {"uri": "file:///srv/data/notes.txt"}]),
            json!([]),
        );
        assert_eq!(
            missing_resource_uri(&beside, "gone").as_deref(),
            Some("file:///srv/data/gone")
        );
        let templated = listings(
            json!([]),
            json!([{"uriTemplate": "{+url}"}, {"uriTemplate": "repo://{owner}/{repo}"}]),
        );
        assert_eq!(
            missing_resource_uri(&templated, "gone").as_deref(),
            Some("repo://gone/gone")
        );
        assert_eq!(
            missing_resource_uri(
                &listings(json!([]), json!([{"uriTemplate": "{+url}"}])),
                "x"
            ),
            None
        );
        assert_eq!(resource_not_found_code("2025-11-25"), -32002);
        assert_eq!(resource_not_found_code("2026-07-28"), -32602);
    }

    #[test]
    fn a_missing_resource_is_judged_by_the_negotiated_era() {
        let error = |code: i64| {
            Ok(Reply::Error {
                code,
                message: "Resource not found".into(),
                data: None,
            })
        };
        let verdict = |version: &str, reply| judge_missing_resource("x://gone", version, &reply).0;
        assert_eq!(verdict("2025-11-25", error(-32002)), Verdict::Pass);
        assert_eq!(verdict("2025-11-25", error(-32602)), Verdict::Pass);
        assert_eq!(verdict("2025-11-25", error(0)), Verdict::Pass);
        assert_eq!(verdict("2025-11-25", error(-32603)), Verdict::Fail);
        assert_eq!(verdict("2026-07-28", error(-32602)), Verdict::Pass);
        assert_eq!(verdict("2026-07-28", error(-32002)), Verdict::Fail);
        assert_eq!(verdict("2026-07-28", error(0)), Verdict::Fail);
        assert_eq!(verdict("2026-07-28", error(-32603)), Verdict::Fail);
        assert_eq!(verdict("2026-07-28", error(-32020)), Verdict::Inconclusive);
        assert_eq!(
            verdict("2025-11-25", Ok(Reply::Result(json!({"contents": []})))),
            Verdict::Inconclusive
        );
    }

    #[test]
    fn altered_ids_are_told_from_other_requests_late_answers() {
        let [text, large, zero] = ECHOED_IDS.map(|make| make());
        assert!(altered_echo(&zero, &Value::Null));
        assert!(altered_echo(&zero, &json!("0")));
        assert!(altered_echo(&zero, &json!(0.0)));
        assert!(altered_echo(&large, &json!("1099511627777")));
        assert!(altered_echo(&large, &json!(1_099_511_627_777.0)));
        assert!(altered_echo(&text, &json!("mcp-harness-id-\u{c3}\u{a9}-?")));
        // The same id, or another request's answer, is no alteration.
        assert!(!altered_echo(&zero, &json!(0)));
        assert!(!altered_echo(&zero, &json!(17)));
        assert!(!altered_echo(&large, &json!(12)));
        assert!(!altered_echo(&large, &Value::Null));
        assert!(!altered_echo(&text, &json!("other")));
        assert!(!altered_echo(&text, &Value::Null));
    }
}
