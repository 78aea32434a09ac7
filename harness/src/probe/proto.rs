//! PROTO: JSON-RPC and MCP protocol behaviour: error codes, id echo, surviving garbage, stdout
//! hygiene on stdio, and staying alive through the run.
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
