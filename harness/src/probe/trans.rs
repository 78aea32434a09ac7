//! TRANS and AUTH: what the Streamable HTTP transport must refuse.
//!
//! Each probe sends a raw request that differs from a working one in exactly one respect (a
//! foreign Origin, a foreign Host, no credential, a wrong credential, the credential in the
//! query string) and judges the status code: a 2xx where the specification requires a refusal
//! is a failure, confirmed by the status itself.

use super::{Evidence, Family, HttpView, Outcome, ProbeInfo, Run, Severity, Verdict};
use crate::connection::{RawOutcome, excerpt};

pub static TRANS_ORIGIN: ProbeInfo = ProbeInfo {
    id: "TRANS-ORIGIN",
    family: Family::TRANS,
    title: "a request with a foreign Origin is refused with 403",
    severity: Severity::High,
    cwe: Some(346),
    enforces: "MCP transports, Streamable HTTP: servers MUST validate the Origin header; if it is present and invalid, respond 403 (DNS rebinding)",
    remediation: "Check Origin against an allowlist before anything else and answer 403.",
};

pub static TRANS_HOST: ProbeInfo = ProbeInfo {
    id: "TRANS-HOST",
    family: Family::TRANS,
    title: "a local server refuses a foreign Host header",
    severity: Severity::Medium,
    cwe: Some(346),
    enforces: "MCP security best practices, DNS rebinding: a local server validates Host",
    remediation: "Accept only the Host values the server is reached by (localhost, 127.0.0.1, [::1]).",
};

pub static TRANS_SESSION_ID: ProbeInfo = ProbeInfo {
    id: "TRANS-SESSION-ID",
    family: Family::TRANS,
    title: "session ids are long, random and visible ASCII",
    severity: Severity::High,
    cwe: Some(330),
    enforces: "MCP transports, session management: the session ID SHOULD be globally unique and cryptographically secure, and MUST only contain visible ASCII",
    remediation: "Issue session ids from a CSPRNG (e.g. a UUIDv4 or 128 random bits), never a counter or a timestamp.",
};

pub static TRANS_SESSION_END: ProbeInfo = ProbeInfo {
    id: "TRANS-SESSION-END",
    family: Family::TRANS,
    title: "a session ended with DELETE is gone, and ending one harms no other",
    severity: Severity::Medium,
    cwe: Some(613),
    enforces: "MCP transports, session management: a client ends a session with HTTP DELETE (the server MAY answer 405); requests with a terminated session id MUST get 404",
    remediation: "Remove the session on DELETE and answer its later requests with 404; never let one session's end break the others.",
};

pub static TRANS_SESSION_UNKNOWN: ProbeInfo = ProbeInfo {
    id: "TRANS-SESSION-UNKNOWN",
    family: Family::TRANS,
    title: "an unknown or malformed session id gets 404 or 400, never a 5xx or a reply",
    severity: Severity::Medium,
    cwe: Some(384),
    enforces: "MCP transports, session management: a request with a session id the server does not know MUST get 404 (and one without a required id 400)",
    remediation: "Look the session id up before anything else; answer an unknown one with 404 and a malformed one with 400.",
};

pub static AUTH_NO_CREDENTIALS: ProbeInfo = ProbeInfo {
    id: "AUTH-NO-CREDENTIALS",
    family: Family::AUTH,
    title: "a request without credentials is refused with 401",
    severity: Severity::Critical,
    cwe: Some(306),
    enforces: "MCP authorization: requests without a valid access token MUST receive 401",
    remediation: "Authenticate every request at the transport, before any MCP handling.",
};

pub static AUTH_BAD_CREDENTIALS: ProbeInfo = ProbeInfo {
    id: "AUTH-BAD-CREDENTIALS",
    family: Family::AUTH,
    title: "a request with a wrong credential is refused with 401",
    severity: Severity::Critical,
    cwe: Some(287),
    enforces: "MCP authorization: invalid or expired tokens MUST receive 401",
    remediation: "Compare credentials in constant time against stored digests; never accept an empty or partial match.",
};

pub static AUTH_CHALLENGE: ProbeInfo = ProbeInfo {
    id: "AUTH-CHALLENGE",
    family: Family::AUTH,
    title: "a 401 carries WWW-Authenticate",
    severity: Severity::Medium,
    cwe: Some(287),
    enforces: "MCP authorization: servers MUST use WWW-Authenticate when returning 401 (RFC 9728 section 5.1)",
    remediation: "Send 'WWW-Authenticate: Bearer resource_metadata=\"...\"' (or at least 'Bearer') with every 401.",
};

pub static AUTH_QUERY_TOKEN: ProbeInfo = ProbeInfo {
    id: "AUTH-QUERY-TOKEN",
    family: Family::AUTH,
    title: "a credential in the query string does not authenticate",
    severity: Severity::High,
    cwe: Some(598),
    enforces: "MCP authorization: access tokens MUST NOT be included in the URI query string",
    remediation: "Read credentials only from the Authorization header.",
};

pub static AUTH_METADATA: ProbeInfo = ProbeInfo {
    id: "AUTH-METADATA",
    family: Family::AUTH,
    title: "the advertised protected resource metadata document is served",
    severity: Severity::Medium,
    cwe: None,
    enforces: "MCP authorization: servers MUST implement OAuth 2.0 Protected Resource Metadata (RFC 9728)",
    remediation: "Serve the document named in WWW-Authenticate's resource_metadata, with a 'resource' field.",
};

/// This family's probes, in report order.
pub static PROBES: &[&ProbeInfo] = &[
    &TRANS_ORIGIN,
    &TRANS_HOST,
    &TRANS_SESSION_ID,
    &TRANS_SESSION_END,
    &TRANS_SESSION_UNKNOWN,
    &AUTH_NO_CREDENTIALS,
    &AUTH_BAD_CREDENTIALS,
    &AUTH_CHALLENGE,
    &AUTH_QUERY_TOKEN,
    &AUTH_METADATA,
];

const PING: &[u8] = br#"{"jsonrpc":"2.0","id":"mcp-harness-raw","method":"ping"}"#;
const INIT: &[u8] = br#"{"jsonrpc":"2.0","id":"mcp-harness-init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcp-harness","version":"0"}}}"#;

fn evidence(request: &str, outcome: &RawOutcome, oracle: &str) -> Evidence {
    let status = outcome.status.map(|s| s.to_string()).unwrap_or_default();
    Evidence {
        tool: None,
        point: None,
        request: request.to_owned(),
        reply: format!("HTTP {status} {}", excerpt(&outcome.excerpt, 300)),
        oracle: oracle.to_owned(),
    }
}

fn success(outcome: &RawOutcome) -> bool {
    outcome.status.is_some_and(|s| (200..300).contains(&s))
}

/// TRANS-SESSION-END: a session of its own, ended with DELETE, then used; then the harness's
/// own session must still be served.
async fn session_end(run: &mut Run<'_>, view: &HttpView) -> Outcome {
    let info = &TRANS_SESSION_END;
    if view.stateless || view.session_id.is_none() {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "the target issues no session ids (stateless HTTP or 2026-07-28)",
        );
    }
    let other = match run.connect_again().await {
        Ok(other) => other,
        Err(error) => {
            return Outcome::new(
                info,
                Verdict::Inconclusive,
                format!("a second session could not be opened: {error}"),
            );
        }
    };
    let Some(session) = other.session_id.clone() else {
        return Outcome::new(
            info,
            Verdict::Inconclusive,
            "a second initialize got no session id",
        );
    };
    let sequence =
        format!("DELETE with a fresh session's id, then a ping with that id ({session})");
    let deleted = match run.delete_session(&session).await {
        Ok(deleted) => deleted,
        Err(error) => {
            return Outcome::new(
                info,
                Verdict::Inconclusive,
                format!("no answer to DELETE: {error}"),
            );
        }
    };
    let with_session = [("mcp-session-id", session.as_str())];
    let used = run
        .http_raw(PING, &with_session, &["mcp-session-id"], None)
        .await;
    // Does the harness's own session survive the other's end?
    let own = run.http_raw(PING, &[], &[], None).await;
    let dos = |what: &str, reply: String| {
        Outcome::new(
            info,
            Verdict::Fail,
            format!("{what}: ending one session is a denial of service"),
        )
        .with_evidence(vec![Evidence {
            tool: None,
            point: None,
            request: sequence.clone(),
            reply,
            oracle: what.to_owned(),
        }])
    };
    if let Err(error) = &own {
        return dos(
            "after another session was deleted, this session's ping failed",
            error.to_string(),
        );
    }
    let deleted_status = deleted.status.unwrap_or(0);
    if deleted_status == 405 {
        return match &used {
            Ok(reply) if success(reply) => Outcome::new(
                info,
                Verdict::Pass,
                "DELETE answered 405 (the server does not end sessions, which the spec allows); the session still works",
            ),
            Ok(reply) => Outcome::new(
                info,
                Verdict::Inconclusive,
                format!(
                    "DELETE answered 405, yet the session then got HTTP {}",
                    reply.status.unwrap_or(0)
                ),
            ),
            Err(error) => dos(
                "after a DELETE answered 405, the session's ping failed",
                error.to_string(),
            ),
        };
    }
    if !(200..300).contains(&deleted_status) {
        return Outcome::new(
            info,
            Verdict::Inconclusive,
            format!("DELETE answered HTTP {deleted_status}"),
        );
    }
    match used {
        Ok(reply) if reply.status == Some(404) => Outcome::new(
            info,
            Verdict::Pass,
            format!(
                "DELETE answered {deleted_status}; the ended session then got 404, and the harness's own session is still served"
            ),
        ),
        Ok(reply) if success(&reply) => Outcome::new(
            info,
            Verdict::Fail,
            "a session ended with DELETE is still served",
        )
        .with_evidence(vec![evidence(
            &sequence,
            &reply,
            "a 2xx status for a terminated session id",
        )]),
        Ok(reply) => Outcome::new(
            info,
            Verdict::Pass,
            format!(
                "the ended session got HTTP {} (the spec asks for 404)",
                reply.status.unwrap_or(0)
            ),
        ),
        Err(error) => dos("the ended session's ping failed", error.to_string()),
    }
}

/// TRANS-SESSION-UNKNOWN: a ping with a session id nobody was given, and one with a malformed
/// id.
async fn session_unknown(run: &mut Run<'_>, view: &HttpView) -> Outcome {
    let info = &TRANS_SESSION_UNKNOWN;
    if view.stateless || view.session_id.is_none() {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "the target issues no session ids (stateless HTTP or 2026-07-28)",
        );
    }
    let unknown = format!("mcp-harness-unknown-{:032x}", rand::random::<u128>());
    let mut findings = Vec::new();
    let mut statuses = Vec::new();
    for (label, id) in [
        ("an unknown session id", unknown.as_str()),
        ("a malformed session id", "not a session id!"),
    ] {
        let described = format!("POST ping with {label} ({id})");
        match run
            .http_raw(PING, &[("mcp-session-id", id)], &["mcp-session-id"], None)
            .await
        {
            Ok(reply) if success(&reply) => findings.push(evidence(
                &described,
                &reply,
                "a 2xx status for a session id the server never issued",
            )),
            Ok(reply) => statuses.push(reply.status.unwrap_or(0)),
            Err(error) => findings.push(Evidence {
                tool: None,
                point: None,
                request: described,
                reply: error.to_string(),
                oracle: "no 404/400: the server failed on a session id it does not know".into(),
            }),
        }
    }
    if findings.is_empty() {
        Outcome::new(
            info,
            Verdict::Pass,
            format!("unknown and malformed session ids got HTTP {statuses:?}"),
        )
    } else {
        Outcome::new(
            info,
            Verdict::Fail,
            "a session id the server never issued was served or crashed it",
        )
        .with_evidence(findings)
    }
}

pub async fn run(run: &mut Run<'_>) -> Vec<Outcome> {
    if run.sse().is_some() {
        return super::trans_sse::run(run).await;
    }
    let Some(view) = run.http_view() else {
        return super::every(PROBES, Verdict::NotApplicable, "not an HTTP target");
    };
    let mut outcomes = Vec::new();
    let url = view.url.clone();
    let loopback = url::Url::parse(&url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| matches!(h, "localhost" | "127.0.0.1" | "[::1]" | "::1"))
        })
        .unwrap_or(false);

    // TRANS-ORIGIN
    let info = &TRANS_ORIGIN;
    outcomes.push(
        match run
            .http_raw(
                PING,
                &[("origin", "http://evil.example")],
                &["origin"],
                None,
            )
            .await
        {
            Ok(reply) if reply.status == Some(403) => {
                Outcome::new(info, Verdict::Pass, "403 for Origin: http://evil.example")
            }
            Ok(reply) if success(&reply) => Outcome::new(
                info,
                Verdict::Fail,
                "a request with Origin: http://evil.example was served",
            )
            .with_evidence(vec![evidence(
                "POST ping with Origin: http://evil.example",
                &reply,
                "a 2xx status for a foreign Origin",
            )]),
            Ok(reply) => Outcome::new(
                info,
                Verdict::Pass,
                format!(
                    "refused with HTTP {} (the spec asks for 403)",
                    reply.status.unwrap_or(0)
                ),
            ),
            Err(error) => Outcome::new(info, Verdict::Inconclusive, format!("no answer: {error}")),
        },
    );

    // TRANS-HOST
    let info = &TRANS_HOST;
    outcomes.push(if !loopback {
        Outcome::new(
            info,
            Verdict::NotApplicable,
            "the target is not on loopback; Host checks depend on the deployment",
        )
    } else {
        match run
            .http_raw(PING, &[("host", "evil.example")], &[], None)
            .await
        {
            Ok(reply) if success(&reply) => Outcome::new(
                info,
                Verdict::Fail,
                "a request with Host: evil.example was served",
            )
            .with_evidence(vec![evidence(
                "POST ping with Host: evil.example",
                &reply,
                "a 2xx status for a foreign Host",
            )]),
            Ok(reply) => Outcome::new(
                info,
                Verdict::Pass,
                format!("refused with HTTP {}", reply.status.unwrap_or(0)),
            ),
            Err(error) => Outcome::new(info, Verdict::Inconclusive, format!("no answer: {error}")),
        }
    });

    // TRANS-SESSION-ID
    let info = &TRANS_SESSION_ID;
    let mut ids = Vec::new();
    if let Some(first) = view.session_id.clone() {
        ids.push(first);
        for _ in 0..3 {
            if let Ok(reply) = run
                .http_raw(INIT, &[], &["mcp-session-id", "mcp-protocol-version"], None)
                .await
                && let Some(id) = reply.header("mcp-session-id")
            {
                ids.push(id.to_owned());
            }
        }
    }
    outcomes.push(judge_session_ids(info, &ids));
    // Unknown ids first: ending a session may break a flawed server for everything after.
    outcomes.push(session_unknown(run, &view).await);
    outcomes.push(session_end(run, &view).await);

    // AUTH
    let credential_headers: Vec<String> = view
        .user_headers
        .iter()
        .filter(|(name, _)| {
            name.eq_ignore_ascii_case("authorization")
                || name.to_ascii_lowercase().contains("api-key")
                || name.eq_ignore_ascii_case("x-api-key")
        })
        .map(|(name, _)| name.clone())
        .collect();
    if credential_headers.is_empty() {
        for info in [
            &AUTH_NO_CREDENTIALS,
            &AUTH_BAD_CREDENTIALS,
            &AUTH_CHALLENGE,
            &AUTH_QUERY_TOKEN,
            &AUTH_METADATA,
        ] {
            outcomes.push(Outcome::new(info, Verdict::NotApplicable, "no credential was given (--header 'Authorization: Bearer ...'); the server accepted the harness without one"));
        }
        return outcomes;
    }
    let drop: Vec<&str> = credential_headers.iter().map(String::as_str).collect();
    let token = view
        .user_headers
        .iter()
        .find(|(name, _)| drop.iter().any(|d| d.eq_ignore_ascii_case(name)))
        .map(|(_, value)| {
            value
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();

    let without = run
        .http_raw(INIT, &[], &[&drop[..], &["mcp-session-id"]].concat(), None)
        .await;
    let info = &AUTH_NO_CREDENTIALS;
    outcomes.push(match &without {
        Ok(reply) if reply.status == Some(401) => {
            Outcome::new(info, Verdict::Pass, "401 without credentials")
        }
        Ok(reply) if success(reply) => Outcome::new(
            info,
            Verdict::Fail,
            "initialize without credentials was served",
        )
        .with_evidence(vec![evidence(
            "POST initialize without the credential header",
            reply,
            "a 2xx status without credentials",
        )]),
        Ok(reply) => Outcome::new(
            info,
            Verdict::Pass,
            format!(
                "refused with HTTP {} (the spec asks for 401)",
                reply.status.unwrap_or(0)
            ),
        ),
        Err(error) => Outcome::new(info, Verdict::Inconclusive, format!("no answer: {error}")),
    });

    let info = &AUTH_CHALLENGE;
    outcomes.push(match &without {
        Ok(reply) if reply.status == Some(401) => match reply.header("www-authenticate") {
            Some(value) if value.to_ascii_lowercase().starts_with("bearer") => Outcome::new(
                info,
                Verdict::Pass,
                format!("WWW-Authenticate: {}", excerpt(value, 120)),
            ),
            _ => Outcome::new(
                info,
                Verdict::Fail,
                "a 401 without a Bearer WWW-Authenticate challenge",
            )
            .with_evidence(vec![evidence(
                "POST initialize without the credential header",
                reply,
                "no WWW-Authenticate: Bearer header on the 401",
            )]),
        },
        _ => Outcome::new(
            info,
            Verdict::NotApplicable,
            "the server did not answer 401",
        ),
    });

    let info = &AUTH_BAD_CREDENTIALS;
    let mut wrong = token.clone().into_bytes();
    if let Some(last) = wrong.last_mut() {
        *last = if *last == b'A' { b'B' } else { b'A' };
    }
    let wrong = format!("Bearer {}", String::from_utf8_lossy(&wrong));
    // A wrong token, and no token at all (an empty configured key must not match an empty token).
    let attempts = [
        (
            wrong.as_str(),
            "POST initialize with the token's last character changed",
        ),
        (
            "Bearer",
            "POST initialize with 'Authorization: Bearer' and no token",
        ),
        (
            "Bearer ",
            "POST initialize with 'Authorization: Bearer ' (an empty token)",
        ),
    ];
    let mut served = Vec::new();
    let mut statuses = Vec::new();
    for (header, described) in attempts {
        match run
            .http_raw(
                INIT,
                &[("authorization", header)],
                &[&drop[..], &["mcp-session-id"]].concat(),
                None,
            )
            .await
        {
            Ok(reply) if success(&reply) => served.push(evidence(
                described,
                &reply,
                "a 2xx status for a wrong or empty credential",
            )),
            Ok(reply) => statuses.push(reply.status.unwrap_or(0)),
            Err(_) => {}
        }
    }
    outcomes.push(if !served.is_empty() {
        Outcome::new(
            info,
            Verdict::Fail,
            "a wrong or empty credential was accepted",
        )
        .with_evidence(served)
    } else if statuses.is_empty() {
        Outcome::new(
            info,
            Verdict::Inconclusive,
            "no answer to any wrong credential",
        )
    } else {
        Outcome::new(
            info,
            Verdict::Pass,
            format!("wrong and empty credentials refused with HTTP {statuses:?}"),
        )
    });

    let info = &AUTH_QUERY_TOKEN;
    let mut served = Vec::new();
    for parameter in ["access_token", "token", "api_key"] {
        let separator = if url.contains('?') { '&' } else { '?' };
        let with_query = format!("{url}{separator}{parameter}={token}");
        if let Ok(reply) = run
            .http_raw(
                INIT,
                &[],
                &[&drop[..], &["mcp-session-id"]].concat(),
                Some(&with_query),
            )
            .await
            && success(&reply)
        {
            served.push(evidence(
                &format!("POST initialize with ?{parameter}=<the token> and no header"),
                &reply,
                "a 2xx status with the token only in the query string",
            ));
        }
    }
    outcomes.push(if served.is_empty() {
        Outcome::new(
            info,
            Verdict::Pass,
            "a token in the query string did not authenticate",
        )
    } else {
        Outcome::new(
            info,
            Verdict::Fail,
            "a token in the query string authenticated",
        )
        .with_evidence(served)
    });

    let info = &AUTH_METADATA;
    let advertised = without
        .as_ref()
        .ok()
        .and_then(|r| r.header("www-authenticate"))
        .and_then(|v| {
            let start = v.find("resource_metadata=\"")? + "resource_metadata=\"".len();
            let end = v[start..].find('"')?;
            Some(v[start..start + end].to_owned())
        });
    outcomes.push(match advertised {
        None => Outcome::new(info, Verdict::NotApplicable, "no resource_metadata is advertised"),
        Some(document) => {
            let same_origin = url::Url::parse(&document).ok().zip(url::Url::parse(&url).ok()).is_some_and(|(d, u)| d.origin() == u.origin());
            if !same_origin {
                Outcome::new(info, Verdict::Inconclusive, format!("the metadata document {document} is on another origin; the harness does not follow it"))
            } else {
                match run.http_get(&document).await {
                    Ok(reply) if reply.status == Some(200) && serde_json::from_str::<serde_json::Value>(&reply.excerpt).is_ok_and(|v| v.get("resource").is_some()) => {
                        Outcome::new(info, Verdict::Pass, format!("{document} serves a document with a resource field"))
                    }
                    Ok(reply) => Outcome::new(info, Verdict::Fail, format!("{document} does not serve protected resource metadata"))
                        .with_evidence(vec![evidence(&format!("GET {document}"), &reply, "no 200 JSON document with a resource field")]),
                    Err(error) => Outcome::new(info, Verdict::Inconclusive, format!("no answer: {error}")),
                }
            }
        }
    });
    outcomes
}

/// Judges a sample of session ids: visible ASCII, at least 16 characters, and no two that
/// differ only in a short numeric tail (a counter).
pub fn judge_session_ids(info: &'static ProbeInfo, ids: &[String]) -> Outcome {
    if ids.is_empty() {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "the server issues no session ids",
        );
    }
    let shown = ids
        .iter()
        .map(|i| excerpt(i, 60))
        .collect::<Vec<_>>()
        .join(", ");
    let bad = |reason: &str| {
        Outcome::new(info, Verdict::Fail, format!("session ids {reason}")).with_evidence(vec![
            Evidence {
                tool: None,
                point: None,
                request: format!("{} initialize requests", ids.len()),
                reply: shown.clone(),
                oracle: format!("session ids {reason}"),
            },
        ])
    };
    if ids
        .iter()
        .any(|id| !id.bytes().all(|b| (0x21..=0x7e).contains(&b)))
    {
        return bad("contain characters outside visible ASCII");
    }
    if ids.iter().any(|id| id.len() < 16) {
        return bad("are shorter than 16 characters");
    }
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    if unique.len() < ids.len() {
        return bad("repeat");
    }
    for pair in ids.windows(2) {
        let common = pair[0]
            .bytes()
            .zip(pair[1].bytes())
            .take_while(|(a, b)| a == b)
            .count();
        let longest = pair[0].len().max(pair[1].len());
        if longest - common <= 4 {
            return bad("differ only in their last few characters (a counter or a timestamp)");
        }
    }
    Outcome::new(
        info,
        Verdict::Pass,
        format!(
            "{} ids sampled, none short, repeated or sequential",
            ids.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(ids: &[&str]) -> Verdict {
        judge_session_ids(
            &TRANS_SESSION_ID,
            &ids.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .verdict
    }

    #[test]
    fn session_ids_are_judged_by_length_charset_and_sequence() {
        assert_eq!(
            verdict(&[
                "f8b43abb-f871-4ac6-a150-7861fd23db1c",
                "0a1b2c3d-1111-4ac6-a150-7861fd23db1c"
            ]),
            Verdict::Pass
        );
        assert_eq!(verdict(&["session-1", "session-2"]), Verdict::Fail);
        assert_eq!(
            verdict(&["session-000000000001", "session-000000000002"]),
            Verdict::Fail
        );
        assert_eq!(verdict(&["abc def ghi jkl mno"]), Verdict::Fail);
        assert_eq!(verdict(&[]), Verdict::NotApplicable);
    }
}
