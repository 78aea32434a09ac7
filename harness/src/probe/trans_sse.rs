//! TRANS and AUTH over the legacy HTTP+SSE transport (protocol 2024-11-05): the checks whose
//! meaning carries over from Streamable HTTP, on the two requests that transport has.
//!
//! - TRANS-ORIGIN and TRANS-HOST: the event stream opened with `Origin: http://evil.example`,
//!   or (on loopback) `Host: evil.example`, must be refused: a page the user visits, or a DNS
//!   rebinding, would otherwise hold a session. The harness's own stream, opened with its own
//!   headers, is the control.
//! - TRANS-SESSION-UNKNOWN: a message POSTed to the endpoint with its session replaced by a
//!   random one (each query value, or else the last path segment) must be refused.
//! - AUTH-NO-CREDENTIALS: the stream opened without the credential headers, and a message
//!   POSTed to the harness's own endpoint without them, must both be refused (a session id is
//!   not a credential).
//! - AUTH-BAD-CREDENTIALS: the stream opened with a wrong token must be refused.
//!
//! The session-id form and ending probes, the challenge, the query-token and metadata checks
//! are Streamable HTTP's: not applicable here, with that reason.
//!
//! Oracle: a 2xx status (an event stream opened, a message accepted) for a request the target
//! must refuse. Cost: at most eight requests; no stream is read past its headers.

use super::trans::{
    AUTH_BAD_CREDENTIALS, AUTH_CHALLENGE, AUTH_METADATA, AUTH_NO_CREDENTIALS, AUTH_QUERY_TOKEN,
    TRANS_HOST, TRANS_ORIGIN, TRANS_SESSION_END, TRANS_SESSION_ID, TRANS_SESSION_UNKNOWN,
};
use super::{Evidence, Outcome, ProbeInfo, Run, Verdict};
use crate::connection::{RawOutcome, TargetError, excerpt};

const PING: &[u8] = br#"{"jsonrpc":"2.0","id":"mcp-harness-sse","method":"ping"}"#;

fn served(outcome: &RawOutcome) -> bool {
    outcome.status.is_some_and(|s| (200..300).contains(&s))
}

fn evidence(request: String, outcome: &RawOutcome, oracle: &str) -> Evidence {
    Evidence {
        tool: None,
        point: None,
        request,
        reply: format!(
            "HTTP {} {}",
            outcome.status.unwrap_or(0),
            excerpt(&outcome.excerpt, 300)
        ),
        oracle: oracle.to_owned(),
    }
}

/// The verdict on one request that must be refused.
fn must_refuse(
    info: &'static ProbeInfo,
    described: String,
    outcome: Result<RawOutcome, TargetError>,
    oracle: &str,
) -> Outcome {
    match outcome {
        Ok(reply) if served(&reply) => {
            Outcome::new(info, Verdict::Fail, format!("{described} was served"))
                .with_evidence(vec![evidence(described, &reply, oracle)])
        }
        Ok(reply) => Outcome::new(
            info,
            Verdict::Pass,
            format!(
                "{described}: refused with HTTP {}",
                reply.status.unwrap_or(0)
            ),
        ),
        Err(error) => Outcome::new(info, Verdict::Inconclusive, format!("no answer: {error}")),
    }
}

/// `endpoint` with its session replaced by random characters of the same length: every
/// query value, or, without a query, the last path segment when it is long enough (16
/// characters) to be an id. `None` when it names nothing.
pub fn with_unknown_session(endpoint: &str) -> Option<String> {
    let mut url = url::Url::parse(endpoint).ok()?;
    let random = |len: usize| -> String {
        (0..len.max(8))
            .map(|_| char::from(b"0123456789abcdef"[rand::random::<u8>() as usize % 16]))
            .collect()
    };
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !pairs.is_empty() {
        url.query_pairs_mut()
            .clear()
            .extend_pairs(pairs.iter().map(|(k, v)| (k.clone(), random(v.len()))));
        return Some(url.to_string());
    }
    let last = url.path_segments()?.next_back()?.to_owned();
    if last.len() < 16 {
        return None;
    }
    url.path_segments_mut()
        .ok()?
        .pop()
        .push(&random(last.len()));
    Some(url.to_string())
}

/// TRANS and AUTH over the legacy SSE connection of `run`.
pub async fn run(run: &mut Run<'_>) -> Vec<Outcome> {
    let Some(sse) = run.sse() else {
        return Vec::new();
    };
    let stream_url = sse.url.clone();
    let endpoint = sse.endpoint.clone();
    let user_headers = sse.user_headers().to_vec();
    let loopback = url::Url::parse(&stream_url).is_ok_and(|u| {
        matches!(
            u.host(),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback()
        ) || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
            || u.host_str() == Some("localhost")
    });
    let mut outcomes = Vec::new();

    run.calls += 1;
    let origin = run
        .sse()
        .expect("checked above")
        .open_stream_status(&[("origin", "http://evil.example")], &["origin"])
        .await;
    outcomes.push(must_refuse(
        &TRANS_ORIGIN,
        format!("GET {stream_url} (the event stream) with Origin: http://evil.example"),
        origin,
        "a 2xx event stream for a foreign Origin: any page the user visits can hold a session",
    ));

    outcomes.push(if loopback {
        run.calls += 1;
        let host = run
            .sse()
            .expect("checked above")
            .open_stream_status(&[("host", "evil.example")], &[])
            .await;
        must_refuse(
            &TRANS_HOST,
            format!("GET {stream_url} (the event stream) with Host: evil.example"),
            host,
            "a 2xx event stream for a foreign Host: DNS rebinding reaches this server",
        )
    } else {
        Outcome::new(
            &TRANS_HOST,
            Verdict::NotApplicable,
            "the target is not on loopback; Host checks depend on the deployment",
        )
    });

    let legacy = "the legacy SSE transport names its session in the endpoint URL and has no session header or DELETE (TRANS-SESSION-UNKNOWN checks its sessions)";
    outcomes.push(Outcome::new(
        &TRANS_SESSION_ID,
        Verdict::NotApplicable,
        legacy,
    ));
    outcomes.push(Outcome::new(
        &TRANS_SESSION_END,
        Verdict::NotApplicable,
        legacy,
    ));

    outcomes.push(match with_unknown_session(&endpoint) {
        None => Outcome::new(
            &TRANS_SESSION_UNKNOWN,
            Verdict::NotApplicable,
            format!("the endpoint {endpoint} names no session to replace"),
        ),
        Some(unknown) => {
            run.calls += 1;
            let reply = run
                .sse()
                .expect("checked above")
                .post_to(&unknown, PING)
                .await;
            must_refuse(
                &TRANS_SESSION_UNKNOWN,
                format!("POST ping to {unknown} (a session that was never opened)"),
                reply,
                "a message for a session that does not exist was accepted",
            )
        }
    });

    let credential_names: Vec<String> = user_headers
        .iter()
        .filter(|(name, _)| {
            name.eq_ignore_ascii_case("authorization")
                || name.to_ascii_lowercase().contains("api-key")
        })
        .map(|(name, _)| name.clone())
        .collect();
    if credential_names.is_empty() {
        for info in [&AUTH_NO_CREDENTIALS, &AUTH_BAD_CREDENTIALS] {
            outcomes.push(Outcome::new(
                info,
                Verdict::NotApplicable,
                "no credential was given (--header 'Authorization: Bearer ...'); the server accepted the harness without one",
            ));
        }
    } else {
        let drop: Vec<&str> = credential_names.iter().map(String::as_str).collect();
        run.calls += 2;
        let sse = run.sse().expect("checked above");
        let stream = sse.open_stream_status(&[], &drop).await;
        let message = sse.post_without(&endpoint, PING, &drop).await;
        let mut findings = Vec::new();
        let mut answered = 0;
        for (described, reply) in [
            (
                format!("GET {stream_url} (the event stream) without credentials"),
                &stream,
            ),
            (
                format!("POST ping to the harness's own endpoint {endpoint} without credentials"),
                &message,
            ),
        ] {
            if let Ok(reply) = reply {
                answered += 1;
                if served(reply) {
                    findings.push(evidence(
                        described,
                        reply,
                        "a 2xx status without credentials (a session id is not a credential)",
                    ));
                }
            }
        }
        outcomes.push(if !findings.is_empty() {
            Outcome::new(
                &AUTH_NO_CREDENTIALS,
                Verdict::Fail,
                "a request without credentials was served",
            )
            .with_evidence(findings)
        } else if answered == 2 {
            Outcome::new(
                &AUTH_NO_CREDENTIALS,
                Verdict::Pass,
                "the event stream and the endpoint both refused a request without credentials",
            )
        } else {
            Outcome::new(
                &AUTH_NO_CREDENTIALS,
                Verdict::Inconclusive,
                "no answer to a request without credentials",
            )
        });
        let wrong = format!("Bearer mcp-harness-wrong-{:016x}", rand::random::<u64>());
        let extra: Vec<(&str, &str)> = drop.iter().map(|name| (*name, wrong.as_str())).collect();
        let bad = sse.open_stream_status(&extra, &drop).await;
        outcomes.push(must_refuse(
            &AUTH_BAD_CREDENTIALS,
            format!("GET {stream_url} (the event stream) with a wrong credential"),
            bad,
            "a 2xx event stream for a wrong credential",
        ));
    }
    let streamable = "a Streamable HTTP check: not applicable over the legacy SSE transport";
    for info in [&AUTH_CHALLENGE, &AUTH_QUERY_TOKEN, &AUTH_METADATA] {
        outcomes.push(Outcome::new(info, Verdict::NotApplicable, streamable));
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unknown_session_replaces_what_names_the_session() {
        let replaced = with_unknown_session(
            "http://127.0.0.1:8/messages/?session_id=0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        assert!(replaced.starts_with("http://127.0.0.1:8/messages/?session_id="));
        assert!(!replaced.contains("0123456789abcdef0123456789abcdef"));
        assert_eq!(replaced.len(), 72);
        let in_path = with_unknown_session("http://127.0.0.1:8/messages/abcdef0123456789").unwrap();
        assert!(in_path.starts_with("http://127.0.0.1:8/messages/"));
        assert!(!in_path.ends_with("abcdef0123456789"));
        assert_eq!(with_unknown_session("http://127.0.0.1:8/messages"), None);
    }
}
