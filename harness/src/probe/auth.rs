//! AUTH (OAuth resource server): forged and out-of-policy JWTs, and sessions used by another
//! principal.
//!
//! - AUTH-JWT-FORGED, when the user's bearer token is a JWT: the same claims under
//!   `alg: none` (three spellings), the payload changed under the original signature, and the
//!   signature corrupted; with `--jwt-signing-key`, also HS256 tokens keyed with the public key
//!   (as JWK text, raw bytes and PEM: the algorithm confusion attack). Each must get 401.
//! - AUTH-JWT-CLAIMS, when `--jwt-signing-key` names a key the target trusts: a freshly signed
//!   copy of the user's claims first (the control: it must be served, or the probe is
//!   inconclusive), then the same token expired, not yet valid, for another audience, and
//!   from another issuer. Each must get 401.
//! - AUTH-SCOPE, with `--token-low` (a valid token that lacks a scope some tool needs): every
//!   tool is called with it (on its own connection); at least one must be refused with 403
//!   `insufficient_scope` (or an error naming the scope). Served by every tool is the finding.
//! - AUTH-SESSION-BINDING, with `--token2` on a target that issues sessions: the first
//!   principal's session id presented with the second principal's credential must not be
//!   served (sessions are not authentication).
//! - AUTH-TOKEN-PASSTHROUGH, with a credential header: every URL point (tools and resource
//!   templates, at most [`MAX_PASSTHROUGH_POINTS`]) is given the upstream's URL
//!   (`--upstream-port`) and the loopback listener's, and then every request any probe of the
//!   run made the target send to either listener is read: a credential the harness sent the
//!   target (its `Authorization` value or token, another credential header's value) arriving
//!   there is the finding, the listener's record the proof. No request reaching a listener is
//!   inconclusive: nothing shows what the target sends upstream.
//!
//! - AUTH-AS-*: the target's own authorization server ([`super::authorization_server`]).
//!
//! Oracle: a 2xx status for a token or session the target must refuse; a credential in a
//! request the target made. Cost: at most a dozen requests, and two calls per URL point.

use super::{Evidence, Family, Outcome, ProbeInfo, Run, Severity, Verdict};
use crate::connection::{RawOutcome, TargetError, excerpt};
use base64::Engine;
use serde_json::{Value, json};

pub static AUTH_JWT_FORGED: ProbeInfo = ProbeInfo {
    id: "AUTH-JWT-FORGED",
    family: Family::AUTH,
    title: "a JWT with no signature, a changed payload or a broken signature is refused",
    severity: Severity::Critical,
    cwe: Some(347),
    enforces: "MCP authorization: resource servers MUST validate access tokens (signature, with an allowlist of algorithms)",
    remediation: "Verify the signature against the issuer's JWKS with an allowlist of asymmetric algorithms; never accept alg none or decode without verifying.",
};

pub static AUTH_JWT_CLAIMS: ProbeInfo = ProbeInfo {
    id: "AUTH-JWT-CLAIMS",
    family: Family::AUTH,
    title: "an expired, not yet valid, wrong-audience or wrong-issuer JWT is refused",
    severity: Severity::Critical,
    cwe: Some(287),
    enforces: "MCP authorization: servers MUST validate that tokens were issued specifically for them as the intended audience (RFC 8707), and reject invalid or expired tokens",
    remediation: "Check exp and nbf (small leeway), iss against the configured issuer, and aud against this server's resource URL.",
};

pub static AUTH_SCOPE: ProbeInfo = ProbeInfo {
    id: "AUTH-SCOPE",
    family: Family::AUTH,
    title: "a token without a tool's scope is refused with 403 insufficient_scope",
    severity: Severity::High,
    cwe: Some(285),
    enforces: "MCP authorization, scope challenge: a request whose token lacks the scope an operation needs gets 403 with WWW-Authenticate error=\"insufficient_scope\"",
    remediation: "Check each tool's required scope against the token's scopes before running it, and answer 403 insufficient_scope.",
};

pub static AUTH_SESSION_BINDING: ProbeInfo = ProbeInfo {
    id: "AUTH-SESSION-BINDING",
    family: Family::AUTH,
    title: "a session opened by one principal cannot be used by another",
    severity: Severity::High,
    cwe: Some(384),
    enforces: "MCP security best practices, session hijacking: servers MUST NOT use sessions for authentication; bind session ids to the user",
    remediation: "Remember which principal opened each session and refuse (404) a session id presented with anyone else's credential.",
};

pub static AUTH_TOKEN_PASSTHROUGH: ProbeInfo = ProbeInfo {
    id: "AUTH-TOKEN-PASSTHROUGH",
    family: Family::AUTH,
    title: "the client's credential never reaches what the server fetches upstream",
    severity: Severity::High,
    cwe: Some(441),
    enforces: "MCP authorization, token passthrough: servers MUST NOT pass through the token they received from the client to upstream APIs",
    remediation: "Call upstream APIs with the server's own credential (or a token obtained for that API); never forward the client's Authorization header.",
};

/// URL points AUTH-TOKEN-PASSTHROUGH gives the upstream's and the listener's URL, at most.
pub const MAX_PASSTHROUGH_POINTS: usize = 10;
/// Credential values shorter than this are not looked for in upstream requests (a short value
/// matches by chance).
const MIN_PASSTHROUGH_SECRET: usize = 8;

/// This family's probes, in report order.
pub static PROBES: &[&ProbeInfo] = &[
    &AUTH_JWT_FORGED,
    &AUTH_JWT_CLAIMS,
    &AUTH_SESSION_BINDING,
    &AUTH_SCOPE,
    &AUTH_TOKEN_PASSTHROUGH,
    &super::authorization_server::AUTH_AS_METADATA,
    &super::authorization_server::AUTH_AS_REGISTRATION,
    &super::authorization_server::AUTH_AS_REDIRECT,
    &super::authorization_server::AUTH_AS_PKCE,
    &super::authorization_server::AUTH_AS_RESOURCE,
];

/// Sent with each token: an `initialize` needs no session, so a 2xx can only mean the token
/// was accepted.
pub(super) const INIT: &[u8] = br#"{"jsonrpc":"2.0","id":"mcp-harness-jwt","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcp-harness","version":"0"}}}"#;
/// Sent with another principal's credential and the first principal's session.
const LIST: &[u8] = br#"{"jsonrpc":"2.0","id":"mcp-harness-jwt","method":"tools/list"}"#;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT split into its decoded header and claims, and its raw parts.
#[derive(Debug, Clone)]
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
    pub parts: [String; 3],
}

impl Jwt {
    pub fn parse(token: &str) -> Option<Self> {
        let mut pieces = token.split('.');
        let (h, c, s) = (pieces.next()?, pieces.next()?, pieces.next()?);
        if pieces.next().is_some() {
            return None;
        }
        let decode = |part: &str| -> Option<Value> {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .ok()?;
            serde_json::from_slice(&bytes).ok()
        };
        let header = decode(h)?;
        let claims = decode(c)?;
        (header.is_object() && claims.is_object()).then(|| Self {
            header,
            claims,
            parts: [h.to_owned(), c.to_owned(), s.to_owned()],
        })
    }
}

/// Forgeries that need no key: (what it is, the token).
pub fn forgeries(jwt: &Jwt) -> Vec<(String, String)> {
    let mut forged = Vec::new();
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        forged.push((
            format!("alg {alg}, no signature"),
            format!("{}.{}.", b64(header.to_string().as_bytes()), jwt.parts[1]),
        ));
    }
    let mut claims = jwt.claims.clone();
    let scope = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    claims["scope"] = Value::from(format!("{scope} admin").trim().to_owned());
    claims["sub"] = Value::from("mcp-harness-forged-subject");
    forged.push((
        "payload changed (sub, scope), original signature".into(),
        format!(
            "{}.{}.{}",
            jwt.parts[0],
            b64(claims.to_string().as_bytes()),
            jwt.parts[2]
        ),
    ));
    let mut signature = jwt.parts[2].clone().into_bytes();
    if !signature.is_empty() {
        // A character in the middle: the last one may only carry padding bits.
        let middle = signature.len() / 2;
        signature[middle] = if signature[middle] == b'A' {
            b'B'
        } else {
            b'A'
        };
        forged.push((
            "signature corrupted".into(),
            format!(
                "{}.{}.{}",
                jwt.parts[0],
                jwt.parts[1],
                String::from_utf8_lossy(&signature)
            ),
        ));
    }
    forged
}

/// A key the target trusts, from `--jwt-signing-key`: an Ed25519 seed as 64 hex digits (the
/// file the reference server's `dev-token` writes). Tokens carry the key id `dev-` and the
/// first 4 bytes of the public key in hex, as `dev-token` names the key in its JWKS.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    kid: String,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl SigningKey {
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --jwt-signing-key {}: {e}", path.display()))?;
        let text = text.trim();
        let bytes: Vec<u8> = (0..text.len() / 2)
            .filter_map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        let seed: [u8; 32] = bytes
            .try_into()
            .ok()
            .filter(|_| text.len() == 64)
            .ok_or_else(|| {
                format!(
                    "--jwt-signing-key {}: expected an Ed25519 seed as 64 hex digits (the file `dev-token` writes)",
                    path.display()
                )
            })?;
        Ok(Self::from_seed(seed))
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let kid = format!(
            "dev-{}",
            key.verifying_key().as_bytes()[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Self { key, kid }
    }

    /// An EdDSA JWT over `claims`, with this key's id.
    pub fn sign(&self, claims: &Value) -> String {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let der = self
            .key
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .expect("signing with a valid Ed25519 key cannot fail")
    }

    /// The public half as a JWK.
    fn jwk(&self) -> Value {
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.key.verifying_key().as_bytes());
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"})
    }

    /// The public key in the forms a confused verifier might use as an HMAC secret: the JWK
    /// text, the raw key bytes, and a PEM SubjectPublicKeyInfo.
    pub fn public_key_forms(&self) -> Vec<(&'static str, Vec<u8>)> {
        let jwk = self.jwk();
        let raw = self.key.verifying_key().as_bytes().to_vec();
        // SubjectPublicKeyInfo for Ed25519 (RFC 8410): a fixed prefix, then the 32 key bytes.
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(&raw);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        vec![
            ("the JWK", jwk.to_string().into_bytes()),
            ("the raw public key", raw),
            ("the PEM public key", pem.into_bytes()),
        ]
    }

    /// HS256 tokens over `claims`, keyed with each public key form (the algorithm confusion
    /// attack: a verifier that takes `alg` from the token and the key from its key store).
    pub fn confused_tokens(&self, claims: &Value) -> Vec<(String, String)> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        self.public_key_forms()
            .into_iter()
            .filter_map(|(form, secret)| {
                let token = jsonwebtoken::encode(
                    &header,
                    claims,
                    &jsonwebtoken::EncodingKey::from_secret(&secret),
                )
                .ok()?;
                Some((format!("HS256 keyed with {form}"), token))
            })
            .collect()
    }
}

/// Claims variants signed with a trusted key: the control first.
pub fn claim_variants(claims: &Value, now: u64) -> Vec<(String, Value)> {
    let mut fresh = claims.clone();
    fresh["iat"] = Value::from(now);
    fresh["nbf"] = Value::from(now);
    fresh["exp"] = Value::from(now + 600);
    let with = |key: &str, value: Value| {
        let mut changed = fresh.clone();
        changed[key] = value;
        changed
    };
    let mut expired = with("exp", Value::from(now - 600));
    expired["iat"] = Value::from(now - 4200);
    expired["nbf"] = Value::from(now - 4200);
    vec![
        (
            "control: the same claims, freshly signed".into(),
            fresh.clone(),
        ),
        ("expired ten minutes ago".into(), expired),
        (
            "not valid for another hour (nbf)".into(),
            with("nbf", Value::from(now + 3600)),
        ),
        (
            "for another audience".into(),
            with("aud", Value::from("https://evil.example/mcp")),
        ),
        (
            "from another issuer".into(),
            with("iss", Value::from("https://evil.example")),
        ),
    ]
}

fn served(outcome: &RawOutcome) -> bool {
    outcome.status.is_some_and(|s| (200..300).contains(&s))
}

fn evidence(described: &str, outcome: &RawOutcome, oracle: &str) -> Evidence {
    Evidence {
        tool: None,
        point: None,
        request: described.to_owned(),
        reply: format!(
            "HTTP {} {}",
            outcome.status.unwrap_or(0),
            excerpt(&outcome.excerpt, 200)
        ),
        oracle: oracle.to_owned(),
    }
}

/// Whether a reply refuses the call for a missing scope.
fn refused_for_scope(
    reply: &Result<crate::connection::Reply, crate::connection::TargetError>,
) -> bool {
    use crate::connection::{Reply, TargetError};
    let mentions = |text: &str| text.to_ascii_lowercase().contains("scope");
    match reply {
        Err(TargetError::HttpStatus { status, body, .. }) => *status == 403 || mentions(body),
        Ok(Reply::Error { message, .. }) => mentions(message),
        Ok(Reply::Result(value)) => {
            value.get("isError") == Some(&Value::Bool(true))
                && mentions(&crate::oracle::leak::decoded_strings(value))
        }
        Err(_) => false,
    }
}

/// AUTH-SCOPE: calls every tool with the low-privilege credential on its own connection.
async fn scope(run: &mut Run<'_>, low_authorization: Option<&str>) -> Outcome {
    let info = &AUTH_SCOPE;
    if run.is_stdio() {
        return Outcome::new(info, Verdict::NotApplicable, "not an HTTP target");
    }
    let Some(low) = low_authorization else {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "no low-privilege credential was given (--token-low)",
        );
    };
    let mut low_connection = match run.connect_as(low).await {
        Ok(connection) => connection,
        Err(error) => {
            return Outcome::new(
                info,
                Verdict::Inconclusive,
                format!("the --token-low credential could not connect: {error}"),
            );
        }
    };
    let mut refused = Vec::new();
    let mut served = Vec::new();
    for tool in run.tools.iter().filter(|t| t.is_tool()).take(30) {
        if !run.can_continue() {
            break;
        }
        let arguments = Value::Object(run.baseline(tool));
        let params = json!({"name": tool.name, "arguments": arguments});
        let reply = run
            .request_on(&mut low_connection, "tools/call", params)
            .await;
        if refused_for_scope(&reply) {
            refused.push(tool.name.clone());
        } else if reply.is_ok() {
            served.push(tool.name.clone());
        }
    }
    if !refused.is_empty() {
        Outcome::new(
            info,
            Verdict::Pass,
            format!(
                "the low-privilege token was refused for scope by {} and served by {}",
                refused.join(", "),
                if served.is_empty() {
                    "none".to_owned()
                } else {
                    served.join(", ")
                }
            ),
        )
    } else if served.is_empty() {
        Outcome::new(
            info,
            Verdict::Inconclusive,
            "no tool answered the low-privilege token",
        )
    } else {
        Outcome::new(
            info,
            Verdict::Fail,
            "a token lacking scopes was served by every tool: scopes are not enforced",
        )
        .with_evidence(vec![Evidence {
            tool: None,
            point: None,
            request: format!(
                "tools/call of every tool ({}) with the --token-low credential",
                served.join(", ")
            ),
            reply: "every call served; none refused with 403 insufficient_scope".into(),
            oracle: "a token the user says lacks scopes was served by every tool".into(),
        }])
    }
}

pub async fn run(run: &mut Run<'_>) -> Vec<Outcome> {
    if run.sse().is_some() {
        return super::every(
            PROBES,
            Verdict::NotApplicable,
            "a Streamable HTTP check: the legacy SSE transport holds one credential per stream (its own checks are AUTH-NO-CREDENTIALS and AUTH-BAD-CREDENTIALS)",
        );
    }
    let credentials = run.credentials;
    let signing_key = credentials.jwt_signing_key.as_ref();
    let second_authorization = credentials.second.as_deref();
    let low_authorization = credentials.low_scope.as_deref();
    let scope_outcome = scope(run, low_authorization).await;
    let Some(view) = run.http_view() else {
        return super::every(PROBES, Verdict::NotApplicable, "not an HTTP target");
    };
    let credential = credentials
        .primary
        .as_deref()
        .and_then(|v| v.strip_prefix("Bearer ").or(v.strip_prefix("bearer ")))
        .map(str::trim);
    let jwt = credential.and_then(Jwt::parse);
    let drop = ["authorization", "mcp-session-id"];
    let mut outcomes = Vec::new();

    // AUTH-JWT-FORGED
    let info = &AUTH_JWT_FORGED;
    outcomes.push(match &jwt {
        None => Outcome::new(
            info,
            Verdict::NotApplicable,
            "the bearer token given is not a JWT",
        ),
        Some(jwt) => {
            let mut accepted = Vec::new();
            let mut refused = Vec::new();
            let mut attempts = forgeries(jwt);
            if let Some(key) = signing_key {
                let now = unix_now();
                attempts.extend(key.confused_tokens(&claim_variants(&jwt.claims, now)[0].1));
            }
            for (described, token) in attempts {
                let header = format!("Bearer {token}");
                match run
                    .http_raw(INIT, &[("authorization", header.as_str())], &drop, None)
                    .await
                {
                    Ok(reply) if served(&reply) => accepted.push(evidence(
                        &format!("POST initialize with a JWT: {described}"),
                        &reply,
                        "a 2xx status for a token whose signature does not verify",
                    )),
                    Ok(reply) => refused.push(reply.status.unwrap_or(0)),
                    Err(_) => {}
                }
            }
            if !accepted.is_empty() {
                Outcome::new(
                    info,
                    Verdict::Fail,
                    "a JWT whose signature does not verify was accepted",
                )
                .with_evidence(accepted)
            } else if refused.is_empty() {
                Outcome::new(
                    info,
                    Verdict::Inconclusive,
                    "no answer to any forged token",
                )
            } else {
                                Outcome::new(
                    info,
                    Verdict::Pass,
                    format!(
                        "{} forged tokens (alg none, a changed payload, a corrupted signature{}) were refused (HTTP {refused:?})",
                        refused.len(),
                        if signing_key.is_some() {
                            ", HS256 keyed with the public key"
                        } else {
                            ""
                        }
                    ),
                )
            }
        }
    });

    // AUTH-JWT-CLAIMS
    let info = &AUTH_JWT_CLAIMS;
    outcomes.push(match (&jwt, signing_key) {
        (None, _) => Outcome::new(
            info,
            Verdict::NotApplicable,
            "the bearer token given is not a JWT",
        ),
        (_, None) => Outcome::new(
            info,
            Verdict::NotApplicable,
            "no --jwt-signing-key that the target trusts was given",
        ),
        (Some(jwt), Some(key)) => {
            let now = unix_now();
            let mut accepted = Vec::new();
            let mut refused = Vec::new();
            let mut control_served = false;
            for (index, (described, claims)) in claim_variants(&jwt.claims, now)
                .into_iter()
                .enumerate()
            {
                let header = format!("Bearer {}", key.sign(&claims));
                let Ok(reply) = run
                    .http_raw(INIT, &[("authorization", header.as_str())], &drop, None)
                    .await
                else {
                    continue;
                };
                if index == 0 {
                    control_served = served(&reply);
                    if !control_served {
                        break;
                    }
                } else if served(&reply) {
                    accepted.push(evidence(
                        &format!("POST initialize with a validly signed JWT {described}"),
                        &reply,
                        &format!("a 2xx status for a token {described}"),
                    ));
                } else {
                    refused.push(reply.status.unwrap_or(0));
                }
            }
            if !control_served {
                Outcome::new(
                    info,
                    Verdict::Inconclusive,
                    "the target refused a fresh token signed with --jwt-signing-key, so it does not trust that key",
                )
            } else if !accepted.is_empty() {
                Outcome::new(
                    info,
                    Verdict::Fail,
                    "a validly signed token outside its validity, audience or issuer was accepted",
                )
                .with_evidence(accepted)
            } else {
                Outcome::new(
                    info,
                    Verdict::Pass,
                    format!("expired, not yet valid, wrong-audience and wrong-issuer tokens were refused (HTTP {refused:?}); the control was served"),
                )
            }
        }
    });

    // AUTH-SESSION-BINDING
    let info = &AUTH_SESSION_BINDING;
    outcomes.push(match (view.session_id.clone(), second_authorization) {
        (None, _) => Outcome::new(
            info,
            Verdict::NotApplicable,
            "the server issues no session ids",
        ),
        (_, None) => Outcome::new(
            info,
            Verdict::NotApplicable,
            "no second credential was given (--token2)",
        ),
        (Some(_), Some(second)) => {
            match run
                .http_raw(LIST, &[("authorization", second)], &["authorization"], None)
                .await
            {
                Ok(reply) if served(&reply) && reply.excerpt.contains("\"result\"") => {
                    Outcome::new(
                        info,
                        Verdict::Fail,
                        "the first principal's session was served to the second principal",
                    )
                    .with_evidence(vec![evidence(
                        "POST tools/list with the first principal's Mcp-Session-Id and the --token2 credential",
                        &reply,
                        "a result for another principal's session",
                    )])
                }
                Ok(reply) => Outcome::new(
                    info,
                    Verdict::Pass,
                    format!(
                        "another principal's session id was refused with HTTP {}",
                        reply.status.unwrap_or(0)
                    ),
                ),
                // 404 in the first session and again in a fresh one: the guard's answer if,
                // and only if, the owner is still served in that session.
                Err(TargetError::SessionLost(body)) => {
                    match run.http_raw(LIST, &[], &[], None).await {
                        Ok(owner) if served(&owner) && owner.excerpt.contains("\"result\"") => {
                            Outcome::new(
                                info,
                                Verdict::Pass,
                                "another principal's session id got HTTP 404, twice, while its owner was served in it",
                            )
                        }
                        _ => Outcome::new(
                            info,
                            Verdict::Inconclusive,
                            format!(
                                "no answer: HTTP 404 for the session, and its owner was not served in it either ({body})"
                            ),
                        ),
                    }
                }
                Err(error) => {
                    Outcome::new(info, Verdict::Inconclusive, format!("no answer: {error}"))
                }
            }
        }
    });
    outcomes.push(scope_outcome);
    outcomes.push(token_passthrough(run).await);
    outcomes.extend(super::authorization_server::run(run).await);
    outcomes
}

/// AUTH-TOKEN-PASSTHROUGH (an HTTP target).
async fn token_passthrough(run: &mut Run<'_>) -> Outcome {
    let info = &AUTH_TOKEN_PASSTHROUGH;
    let secrets: Vec<String> = run
        .credentials
        .secrets()
        .into_iter()
        .filter(|s| s.len() >= MIN_PASSTHROUGH_SECRET)
        .collect();
    if secrets.is_empty() {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "no credential was given to look for upstream (--header 'Authorization: ...')",
        );
    }
    let bases: Vec<String> = [run.stage.upstream.as_ref(), run.stage.listener.as_ref()]
        .into_iter()
        .flatten()
        .map(|listener| listener.url())
        .collect();
    let points = run.points(&[crate::discover::PointKind::Url]);
    let mut sent = 0;
    'points: for point in points.iter().take(MAX_PASSTHROUGH_POINTS) {
        for base in &bases {
            if !run.can_continue() {
                break 'points;
            }
            let url = format!("{base}/mcp-harness-upstream/{:016x}", rand::random::<u64>());
            run.call_at(point, json!(url)).await;
            sent += 1;
        }
    }
    let hits: Vec<crate::oracle::listener::Hit> =
        [run.stage.upstream.as_ref(), run.stage.listener.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|listener| listener.hits())
            .collect();
    let (verdict, summary, evidence) = judge_passthrough(&hits, &secrets, sent);
    Outcome::new(info, verdict, summary).with_evidence(evidence)
}

/// The verdict on `hits` (every request the target sent the listeners) for the credentials
/// `secrets`, after `sent` calls with a listener URL.
pub fn judge_passthrough(
    hits: &[crate::oracle::listener::Hit],
    secrets: &[String],
    sent: usize,
) -> (Verdict, String, Vec<Evidence>) {
    let mut evidence = Vec::new();
    for hit in hits {
        let carried = hit
            .headers
            .iter()
            .find(|(_, value)| secrets.iter().any(|s| value.contains(s.as_str())))
            .map(|(name, _)| format!("its {name} header"))
            .or_else(|| {
                secrets
                    .iter()
                    .any(|s| hit.request_line.contains(s.as_str()))
                    .then(|| "its request line".to_owned())
            });
        if let Some(place) = carried {
            evidence.push(Evidence {
                tool: None,
                point: None,
                request: hit.request_line.clone(),
                reply: String::new(),
                oracle: format!(
                    "a request the target sent the harness's listener carried, in {place}, a credential the harness sent the target"
                ),
            });
        }
    }
    if !evidence.is_empty() {
        let count = evidence.len();
        evidence.truncate(5);
        return (
            Verdict::Fail,
            format!("{count} request(s) the target made upstream carried the client's credential"),
            evidence,
        );
    }
    if hits.is_empty() {
        return (
            Verdict::Inconclusive,
            format!(
                "no request of the target reached the harness's listeners ({sent} calls gave a URL point their address): nothing shows what it sends upstream; serve one with --upstream-port and point the target's upstream at it"
            ),
            Vec::new(),
        );
    }
    (
        Verdict::Pass,
        format!(
            "{} request(s) the target made to the harness's listeners carried none of the credentials it was sent",
            hits.len()
        ),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_in_an_upstream_request_is_the_finding() {
        use crate::oracle::listener::Hit;
        let hit = |headers: &[(&str, &str)]| Hit {
            request_line: "GET /mcp-harness-upstream/1 HTTP/1.1".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        let secrets = vec![
            "Bearer s3cret-token-123".to_owned(),
            "s3cret-token-123".to_owned(),
        ];
        let forwarded = [hit(&[
            ("host", "127.0.0.1"),
            ("authorization", "Bearer s3cret-token-123"),
        ])];
        let (verdict, _, evidence) = judge_passthrough(&forwarded, &secrets, 2);
        assert_eq!(verdict, Verdict::Fail);
        assert!(evidence[0].oracle.contains("authorization header"));
        let in_the_query = [Hit {
            request_line: "GET /x?token=s3cret-token-123 HTTP/1.1".into(),
            headers: Vec::new(),
        }];
        assert_eq!(
            judge_passthrough(&in_the_query, &secrets, 1).0,
            Verdict::Fail
        );
        let clean = [hit(&[
            ("host", "127.0.0.1"),
            ("authorization", "Bearer the-servers-own"),
        ])];
        assert_eq!(judge_passthrough(&clean, &secrets, 2).0, Verdict::Pass);
        assert_eq!(judge_passthrough(&[], &secrets, 2).0, Verdict::Inconclusive);
    }

    fn sample() -> (reference_server::guard::oauth::DevSigner, String) {
        let signer = reference_server::guard::oauth::DevSigner::from_seed([7; 32]);
        let token = signer.mint(
            "http://127.0.0.1/issuer",
            "http://127.0.0.1:1/mcp",
            "alice",
            &["files:write".to_owned()],
            600,
        );
        (signer, token)
    }

    #[test]
    fn forgeries_keep_the_claims_and_break_the_signature() {
        let (signer, token) = sample();
        let jwt = Jwt::parse(&token).unwrap();
        assert_eq!(jwt.claims["sub"], "alice");
        let validator = reference_server::guard::oauth::JwtValidator::new(
            &serde_json::from_value(signer.jwks()).unwrap(),
            "http://127.0.0.1/issuer",
            "http://127.0.0.1:1/mcp",
        )
        .unwrap();
        assert!(validator.validate(&token).is_ok());
        let forged = forgeries(&jwt);
        assert_eq!(forged.len(), 5);
        for (described, token) in forged {
            assert!(validator.validate(&token).is_err(), "{described} verified");
            if described.starts_with("alg") {
                assert_eq!(Jwt::parse(&token).unwrap().claims, jwt.claims);
            }
        }
    }

    #[test]
    fn claim_variants_start_with_a_valid_control() {
        let (signer, token) = sample();
        let validator = reference_server::guard::oauth::JwtValidator::new(
            &serde_json::from_value(signer.jwks()).unwrap(),
            "http://127.0.0.1/issuer",
            "http://127.0.0.1:1/mcp",
        )
        .unwrap();
        let now = unix_now();
        let variants = claim_variants(&Jwt::parse(&token).unwrap().claims, now);
        for (index, (described, claims)) in variants.iter().enumerate() {
            let verdict = validator.validate(&signer.sign(claims));
            assert_eq!(verdict.is_ok(), index == 0, "{described}: {verdict:?}");
        }
    }

    #[test]
    fn algorithm_confusion_tokens_are_refused_by_the_reference_validator() {
        let (signer, token) = sample();
        let key = SigningKey::from_seed(signer.seed());
        let validator = reference_server::guard::oauth::JwtValidator::new(
            &serde_json::from_value(signer.jwks()).unwrap(),
            "http://127.0.0.1/issuer",
            "http://127.0.0.1:1/mcp",
        )
        .unwrap();
        let claims = Jwt::parse(&token).unwrap().claims;
        // The harness's own signer (no code of the server it attacks) names and signs as
        // `dev-token` does: the reference validator accepts what it signs.
        assert_eq!(key.jwk(), signer.jwks()["keys"][0]);
        assert!(validator.validate(&key.sign(&claims)).is_ok());
        let confused = key.confused_tokens(&claims);
        assert_eq!(confused.len(), 3);
        for (described, token) in confused {
            assert_eq!(Jwt::parse(&token).unwrap().header["alg"], "HS256");
            assert!(validator.validate(&token).is_err(), "{described} verified");
        }
        assert!(
            key.public_key_forms()[2]
                .1
                .starts_with(b"-----BEGIN PUBLIC KEY-----")
        );
    }

    #[test]
    fn non_jwts_are_not_parsed() {
        assert!(Jwt::parse("kill-matrix-0123").is_none());
        assert!(Jwt::parse("a.b.c").is_none());
        assert!(Jwt::parse("a.b.c.d").is_none());
    }
}
