//! Twins of authentication (`HttpGuards::auth`, the reference `Authenticator`), of the
//! challenge a 401 carries (`HttpGuards::challenge`) and of the OAuth metadata document
//! (`HttpGuards::metadata`). An authenticator twin decides wrongly in one case and asks the
//! reference authenticator in every other.

use super::{
    Flaw,
    Transport::{Http, HttpOAuth},
};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use reference_server::cli::BuildContext;
use reference_server::guard::api_keys::Principal;
use reference_server::guard::oauth::{JwtValidator, unix_now};
use reference_server::transport::http::{
    AuthFailure, Authenticate, Challenge, HttpGuards, ResourceMetadata,
};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mistake {
    /// A token in the query string (`?access_token=`, `?token=`) authenticates.
    QueryToken,
    /// The configured key is empty, so an empty bearer token matches it.
    EmptyKey,
    /// A request without credentials is served as the operator.
    NoneNeeded,
    /// The bearer token is compared byte by byte with the configured key, stopping at the
    /// first wrong byte.
    EarlyExit,
    /// A JWT is decoded without verifying its signature; an unexpired one is accepted.
    JwtUnverified,
    /// A JWT's signature, issuer and lifetime are verified against its own audience.
    JwtNoAudience,
}

struct FlawedAuth {
    name: &'static str,
    mistake: Mistake,
    reference: Arc<dyn Authenticate>,
    /// The key set and issuer, for the JWT twins.
    oauth: Option<(jsonwebtoken::jwk::JwkSet, String)>,
}

/// What the early-exit twin spends on each matching byte (a plain `==` leaks the same way,
/// only in smaller steps).
const EARLY_EXIT_BYTE_COST: std::time::Duration = std::time::Duration::from_nanos(100);

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        headers.insert(header::AUTHORIZATION, value);
    }
    headers
}

/// The configured operator key (`MCP_SERVER_TOKEN`).
fn operator_key() -> String {
    std::env::var(reference_server::config::TOKEN_VAR).unwrap_or_default()
}

/// A JWT's claims, decoded without any verification.
fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl FlawedAuth {
    /// The twin's own decision, or `None` to ask the reference.
    fn decide(&self, headers: &HeaderMap, uri: &Uri) -> Option<Result<Principal, AuthFailure>> {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = sent.and_then(|v| v.strip_prefix("Bearer "));
        let as_operator = || self.reference.authenticate(&bearer(&operator_key()), uri);
        match self.mistake {
            Mistake::QueryToken if sent.is_none() => {
                let from_query = uri.query()?.split('&').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    matches!(name, "access_token" | "token").then(|| value.to_owned())
                })?;
                Some(self.reference.authenticate(&bearer(&from_query), uri))
            }
            Mistake::EmptyKey if matches!(sent.map(str::trim), Some("Bearer" | "bearer")) => {
                Some(as_operator())
            }
            Mistake::NoneNeeded if sent.is_none() => Some(as_operator()),
            Mistake::EarlyExit => {
                let token = token?;
                let expected = operator_key();
                if super::early_exit_equal_costing(
                    token.as_bytes(),
                    expected.as_bytes(),
                    EARLY_EXIT_BYTE_COST,
                ) {
                    None
                } else {
                    Some(Err(AuthFailure::Invalid("not the configured key".into())))
                }
            }
            Mistake::JwtUnverified => {
                let claims = unverified_claims(token.filter(|t| t.split('.').count() == 3)?)?;
                let unexpired = claims
                    .get("exp")
                    .and_then(|exp| exp.as_u64())
                    .is_some_and(|exp| exp > unix_now());
                unexpired.then(|| Ok(principal_from_claims(&claims)))
            }
            Mistake::JwtNoAudience => {
                let token = token.filter(|t| t.split('.').count() == 3)?;
                let audience = unverified_claims(token)?.get("aud")?.as_str()?.to_owned();
                let (jwks, issuer) = self.oauth.as_ref()?;
                let validator = JwtValidator::new(jwks, issuer.clone(), audience).ok()?;
                Some(
                    validator
                        .validate(token)
                        .map_err(|e| AuthFailure::Invalid(e.to_string())),
                )
            }
            _ => None,
        }
    }
}

/// The principal an unverified token claims to be.
fn principal_from_claims(claims: &serde_json::Value) -> Principal {
    let subject = claims
        .get("sub")
        .and_then(|s| s.as_str())
        .unwrap_or("anonymous");
    let scopes = claims
        .get("scope")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned);
    Principal::new(format!("oauth:{subject}"), scopes)
}

impl Authenticate for FlawedAuth {
    fn name(&self) -> &'static str {
        self.name
    }
    fn authenticate(&self, headers: &HeaderMap, uri: &Uri) -> Result<Principal, AuthFailure> {
        self.decide(headers, uri)
            .unwrap_or_else(|| self.reference.authenticate(headers, uri))
    }
    fn accepts_jwt(&self) -> bool {
        self.reference.accepts_jwt()
    }
}

fn swap(guards: &mut HttpGuards, context: &BuildContext, name: &'static str, mistake: Mistake) {
    let needs_oauth = matches!(mistake, Mistake::JwtUnverified | Mistake::JwtNoAudience);
    if needs_oauth && context.oauth.is_none() {
        eprintln!("flawed-server: the {name} flaw needs an [oauth] section in the configuration");
        std::process::exit(2);
    }
    guards.auth = Arc::new(FlawedAuth {
        name,
        mistake,
        reference: guards.auth.clone(),
        oauth: context.oauth.clone(),
    });
}

macro_rules! auth_flaw {
    ($constant:ident, $name:literal, $mistake:ident, $transport:ident, $probe:literal, $summary:literal) => {
        pub const $constant: Flaw = Flaw {
            name: $name,
            summary: $summary,
            caught: &[($transport, $probe)],
            swaps: &["auth"],
            harness_args: &[],
            tools: None,
            http: Some(|guards, context| swap(guards, context, $name, Mistake::$mistake)),
        };
    };
}

auth_flaw!(
    AUTH_QUERY_TOKEN,
    "auth-query-token",
    QueryToken,
    Http,
    "AUTH-QUERY-TOKEN",
    "HTTP: a token in the query string (`?access_token=`, `?token=`) authenticates."
);
auth_flaw!(
    AUTH_EMPTY_KEY,
    "auth-empty-key",
    EmptyKey,
    Http,
    "AUTH-BAD-CREDENTIALS",
    "HTTP: the configured key is empty, so an empty bearer token matches it (the seed's `compare_digest(token, os.getenv(...))` with the variable set to \"\")."
);
auth_flaw!(
    AUTH_NONE,
    "auth-none",
    NoneNeeded,
    Http,
    "AUTH-NO-CREDENTIALS",
    "HTTP: a request without credentials is served (authentication only checks what is sent)."
);
auth_flaw!(
    AUTH_EARLY_EXIT,
    "auth-early-exit",
    EarlyExit,
    Http,
    "TIME-CREDENTIAL-COMPARE",
    "HTTP: the token is compared byte by byte and the check stops at the first wrong byte (each byte made slow enough to see on loopback)."
);
auth_flaw!(
    JWT_UNVERIFIED,
    "jwt-unverified",
    JwtUnverified,
    HttpOAuth,
    "AUTH-JWT-FORGED",
    "HTTP (OAuth): a JWT is decoded without verifying its signature; an unexpired one is accepted."
);
auth_flaw!(
    JWT_NO_AUDIENCE,
    "jwt-no-audience",
    JwtNoAudience,
    HttpOAuth,
    "AUTH-JWT-CLAIMS",
    "HTTP (OAuth): a JWT's signature, issuer and lifetime are verified, its audience is not."
);

/// A 401 with no challenge.
struct NoChallenge;

impl Challenge for NoChallenge {
    fn name(&self) -> &'static str {
        "auth-no-challenge"
    }
    fn challenge(&self, _error: Option<(&str, &str)>) -> Option<HeaderValue> {
        None
    }
}

pub const AUTH_NO_CHALLENGE: Flaw = Flaw {
    name: "auth-no-challenge",
    summary: "HTTP: a 401 carries no WWW-Authenticate challenge.",
    caught: &[(Http, "AUTH-CHALLENGE")],
    swaps: &["challenge"],
    harness_args: &[],
    tools: None,
    http: Some(|guards, _| guards.challenge = Arc::new(NoChallenge)),
};

/// A metadata document that is never served.
struct NoDocument;

impl ResourceMetadata for NoDocument {
    fn name(&self) -> &'static str {
        "metadata-unserved"
    }
    fn document(&self) -> Option<serde_json::Value> {
        None
    }
}

pub const METADATA_UNSERVED: Flaw = Flaw {
    name: "metadata-unserved",
    summary: "HTTP (OAuth): the challenge advertises `resource_metadata`, but every `/.well-known/oauth-protected-resource` path answers 404, so a client cannot discover the authorization server.",
    caught: &[(HttpOAuth, "AUTH-METADATA")],
    swaps: &["metadata"],
    harness_args: &[],
    tools: None,
    http: Some(|guards, _| guards.metadata = Arc::new(NoDocument)),
};
