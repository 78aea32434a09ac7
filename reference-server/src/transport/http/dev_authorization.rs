//! DEVELOPMENT ONLY: an OAuth 2.1 authorization server on the MCP server's own origin, so that
//! an MCP client (or the harness) can run the whole authorization flow against one process:
//! RFC 8414 metadata, RFC 7591 dynamic client registration, the authorization endpoint with
//! PKCE (S256 only) and RFC 8707 resource indicators, and the token endpoint, which mints
//! EdDSA JWTs that this server's own JWT validator accepts.
//!
//! It approves every authorization request without asking anyone (there is no user to ask in
//! a test), so the binary allows it only on a loopback address and warns at every start. A
//! production deployment uses a real authorization server and `[oauth]`.
//!
//! The rules an authorization server must keep are one trait, [`AuthorizationRules`], so that
//! the flawed twins can break one at a time; everything else (the client and code tables, their
//! bounds, single-use codes) is the same for all of them:
//! - PKCE is required, with `S256` only; a token request must carry the verifier that hashes
//!   to the challenge (compared in constant time).
//! - `redirect_uri` is compared exactly, as a string, with a registered one: no prefix, no
//!   added path or query. An unknown client or redirect URI gets a 400 page, never a redirect.
//! - Registration is bounded: at most [`MAX_REDIRECT_URIS`] redirect URIs of at most
//!   [`MAX_URI_BYTES`], each `https` or `http` on a loopback host, with no fragment; a
//!   `client_name` of at most [`MAX_CLIENT_NAME_BYTES`]; [`REGISTRATIONS_PER_MINUTE`] a minute
//!   (burst [`REGISTRATION_BURST`]); at most [`MAX_CLIENTS`] clients in all.
//! - A token is issued only for this server's resource (`aud` = its public URL); a request
//!   naming another resource gets `invalid_target`.
//!
//! `oxide-auth` was considered: it has no RFC 7591 registration and no RFC 8707 resource
//! indicators, which are the two things MCP adds; the rest is a few table lookups.
//!
//! Cost: a registration or an authorization is one table insert under a mutex; a token is one
//! SHA-256 and one Ed25519 signature (about 50 us). Memory is bounded by [`MAX_CLIENTS`] and
//! [`MAX_PENDING_CODES`] (a few hundred KiB at most). Failure: OAuth error responses (RFC 6749
//! section 5.2 and 4.1.2.1); nothing here panics on input.

use crate::guard::oauth::DevSigner;
use crate::guard::rate_limit::{RateLimitConfig, RateLimiter};
use crate::guard::scopes::ALL_SCOPES;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 5;
/// Longest redirect URI, in bytes.
pub const MAX_URI_BYTES: usize = 512;
/// Longest `client_name`, in bytes.
pub const MAX_CLIENT_NAME_BYTES: usize = 200;
/// Most clients registered at once; further registrations are refused.
pub const MAX_CLIENTS: usize = 1_000;
/// Registrations admitted at once, across all callers.
pub const REGISTRATION_BURST: u32 = 10;
/// Registrations admitted a minute after the burst.
pub const REGISTRATIONS_PER_MINUTE: u32 = 10;
/// Most authorization codes waiting for their token request.
pub const MAX_PENDING_CODES: usize = 1_000;
/// How long an authorization code may wait for its token request.
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// How long an access token is valid.
pub const TOKEN_LIFETIME_SECONDS: u64 = 900;

/// The paths this server answers on.
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub const REGISTER_PATH: &str = "/oauth/register";
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";

/// The rules an authorization server keeps (a test seam: see [`crate::guards`]).
pub trait AuthorizationRules: Send + Sync {
    fn name(&self) -> &'static str;
    /// The RFC 8414 metadata document of the server whose issuer identifier is `issuer`.
    fn metadata(&self, issuer: &str) -> serde_json::Value;
    /// Whether one more registration is admitted now (the registration rate).
    fn registration_admitted(&self) -> bool;
    /// Whether `uri` may be registered as a redirect URI.
    fn redirect_uri_allowed(&self, uri: &str) -> bool;
    /// Whether `given` is one of the client's `registered` redirect URIs.
    fn redirect_uri_matches(&self, registered: &[String], given: &str) -> bool;
    /// Whether an authorization request's PKCE parameters are acceptable.
    fn challenge_accepted(&self, challenge: Option<&str>, method: Option<&str>) -> bool;
    /// Whether the token request's `verifier` proves the authorization's `challenge`.
    fn verifier_proves(&self, challenge: &str, verifier: Option<&str>) -> bool;
    /// The audience of a token for the `requested` resource (RFC 8707), or `None` to refuse
    /// the request with `invalid_target`. `own_resource` is this server's resource identifier.
    fn audience(&self, requested: Option<&str>, own_resource: &str) -> Option<String>;
}

/// The reference rules.
pub struct ReferenceAuthorizationRules {
    registrations: RateLimiter<&'static str>,
}

impl Default for ReferenceAuthorizationRules {
    fn default() -> Self {
        let config = RateLimitConfig {
            burst: REGISTRATION_BURST,
            per_second: f64::from(REGISTRATIONS_PER_MINUTE) / 60.0,
            max_tracked_keys: 1,
        };
        Self {
            registrations: RateLimiter::new(config).expect("a valid constant configuration"),
        }
    }
}

/// The RFC 8414 document the reference serves.
pub fn reference_metadata(issuer: &str) -> serde_json::Value {
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}{AUTHORIZE_PATH}"),
        "token_endpoint": format!("{issuer}{TOKEN_PATH}"),
        "registration_endpoint": format!("{issuer}{REGISTER_PATH}"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ALL_SCOPES,
        "authorization_response_iss_parameter_supported": true,
    })
}

/// The S256 challenge of `verifier` (RFC 7636 section 4.2).
pub fn s256_challenge(verifier: &str) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// Whether `verifier` has RFC 7636's form: 43 to 128 unreserved characters.
fn verifier_well_formed(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Whether `uri` is a redirect URI OAuth 2.1 allows: `https`, or `http` on a loopback host
/// (RFC 8252 section 7.3); no fragment; no user information.
pub fn safe_redirect_uri(uri: &str) -> bool {
    if uri.len() > MAX_URI_BYTES {
        return false;
    }
    let Ok(parsed) = url::Url::parse(uri) else {
        return false;
    };
    if parsed.fragment().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return false;
    }
    match (parsed.scheme(), parsed.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Domain(domain))) => domain.eq_ignore_ascii_case("localhost"),
        _ => false,
    }
}

impl AuthorizationRules for ReferenceAuthorizationRules {
    fn name(&self) -> &'static str {
        crate::guards::REFERENCE
    }
    fn metadata(&self, issuer: &str) -> serde_json::Value {
        reference_metadata(issuer)
    }
    fn registration_admitted(&self) -> bool {
        self.registrations.check(&"registrations").is_ok()
    }
    fn redirect_uri_allowed(&self, uri: &str) -> bool {
        safe_redirect_uri(uri)
    }
    fn redirect_uri_matches(&self, registered: &[String], given: &str) -> bool {
        registered.iter().any(|r| r == given)
    }
    fn challenge_accepted(&self, challenge: Option<&str>, method: Option<&str>) -> bool {
        // A challenge is the base64url of 32 bytes: 43 characters.
        method == Some("S256") && challenge.is_some_and(|c| c.len() == 43)
    }
    fn verifier_proves(&self, challenge: &str, verifier: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        verifier.is_some_and(|v| {
            verifier_well_formed(v)
                && bool::from(s256_challenge(v).as_bytes().ct_eq(challenge.as_bytes()))
        })
    }
    fn audience(&self, requested: Option<&str>, own_resource: &str) -> Option<String> {
        match requested {
            None => Some(own_resource.to_owned()),
            Some(resource) if resource == own_resource => Some(own_resource.to_owned()),
            Some(_) => None,
        }
    }
}

/// What the dev authorization server is configured with.
pub struct DevAuthorization {
    /// The issuer identifier: this server's origin (`http://127.0.0.1:PORT`).
    pub issuer: String,
    /// This server's resource identifier (its public MCP URL).
    pub resource: String,
    /// The key tokens are signed with; the server's JWT validator trusts its public half.
    pub signer: Arc<DevSigner>,
}

struct Client {
    redirect_uris: Vec<String>,
}

struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    audience: String,
    scopes: Vec<String>,
    expires: Instant,
}

struct AuthorizationState {
    config: DevAuthorization,
    rules: Arc<dyn AuthorizationRules>,
    clients: Mutex<HashMap<String, Client>>,
    codes: Mutex<HashMap<String, Grant>>,
}

/// The routes of the dev authorization server, to merge into the MCP server's router.
pub fn routes<S: Clone + Send + Sync + 'static>(
    config: DevAuthorization,
    rules: Arc<dyn AuthorizationRules>,
) -> Router<S> {
    let state = Arc::new(AuthorizationState {
        config,
        rules,
        clients: Mutex::new(HashMap::new()),
        codes: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route(METADATA_PATH, get(metadata))
        .route(REGISTER_PATH, post(register))
        .route(AUTHORIZE_PATH, get(authorize))
        .route(TOKEN_PATH, post(token))
        .with_state(state)
}

fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// An OAuth error response (RFC 6749 section 5.2), never cached.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store(
        (
            status,
            Json(serde_json::json!({"error": error, "error_description": description})),
        )
            .into_response(),
    )
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn metadata(State(state): State<Arc<AuthorizationState>>) -> Response {
    Json(state.rules.metadata(&state.config.issuer)).into_response()
}

#[derive(Deserialize)]
struct Registration {
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
}

async fn register(
    State(state): State<Arc<AuthorizationState>>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(registration) = serde_json::from_slice::<Registration>(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "the body is not a client metadata document",
        );
    };
    if registration.redirect_uris.is_empty() || registration.redirect_uris.len() > MAX_REDIRECT_URIS
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "register between 1 and 5 redirect URIs",
        );
    }
    if let Some(refused) = registration
        .redirect_uris
        .iter()
        .find(|uri| !state.rules.redirect_uri_allowed(uri))
    {
        let shown: String = refused.chars().take(80).collect();
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            &format!("{shown:?} is not an https URL or an http URL on a loopback host"),
        );
    }
    if registration
        .client_name
        .as_ref()
        .is_some_and(|n| n.len() > MAX_CLIENT_NAME_BYTES)
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "client_name is too long",
        );
    }
    if !state.rules.registration_admitted() {
        return oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            "too many registrations: try again in a minute",
        );
    }
    let client_id = random_token();
    {
        let mut clients = state.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= MAX_CLIENTS {
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the client table is full",
            );
        }
        clients.insert(
            client_id.clone(),
            Client {
                redirect_uris: registration.redirect_uris.clone(),
            },
        );
    }
    tracing::info!("dev authorization server: registered a client");
    no_store(
        (
            StatusCode::CREATED,
            Json(serde_json::json!({
                "client_id": client_id,
                "client_id_issued_at": crate::guard::oauth::unix_now(),
                "redirect_uris": registration.redirect_uris,
                "client_name": registration.client_name,
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            })),
        )
            .into_response(),
    )
}

#[derive(Deserialize)]
struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    state: Option<String>,
    resource: Option<String>,
    scope: Option<String>,
}

/// A redirect to the client's `redirect_uri` with `pairs` added to its query.
fn redirect_to(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut target = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "redirect_uri is not a URL",
            );
        }
    };
    target.query_pairs_mut().extend_pairs(pairs);
    let mut response = StatusCode::FOUND.into_response();
    match HeaderValue::from_str(target.as_str()) {
        Ok(location) => {
            response.headers_mut().insert(header::LOCATION, location);
            no_store(response)
        }
        Err(_) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri cannot be sent back",
        ),
    }
}

async fn authorize(
    State(state): State<Arc<AuthorizationState>>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    // Until the client and its redirect URI are known, errors are shown here, never sent
    // to a URI the client did not register (RFC 6749 section 4.1.2.1).
    let redirect_uri = {
        let clients = state.clients.lock().unwrap_or_else(|e| e.into_inner());
        let Some(client) = params.client_id.as_ref().and_then(|id| clients.get(id)) else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "unknown client");
        };
        match &params.redirect_uri {
            Some(given)
                if state
                    .rules
                    .redirect_uri_matches(&client.redirect_uris, given) =>
            {
                given.clone()
            }
            _ => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "redirect_uri is not one this client registered",
                );
            }
        }
    };
    let issuer = state.config.issuer.as_str();
    let client_state = params.state.as_deref().unwrap_or("");
    let refuse = |error: &str| {
        let mut pairs = vec![("error", error), ("iss", issuer)];
        if params.state.is_some() {
            pairs.push(("state", client_state));
        }
        redirect_to(&redirect_uri, &pairs)
    };
    if params.response_type.as_deref() != Some("code") {
        return refuse("unsupported_response_type");
    }
    if !state.rules.challenge_accepted(
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    ) {
        return refuse("invalid_request");
    }
    let Some(audience) = state
        .rules
        .audience(params.resource.as_deref(), &state.config.resource)
    else {
        return refuse("invalid_target");
    };
    let scopes: Vec<String> = params
        .scope
        .as_deref()
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    if scopes.iter().any(|s| !ALL_SCOPES.contains(&s.as_str())) {
        return refuse("invalid_scope");
    }
    let code = random_token();
    {
        let mut codes = state.codes.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        codes.retain(|_, grant| grant.expires > now);
        if codes.len() >= MAX_PENDING_CODES {
            return refuse("temporarily_unavailable");
        }
        codes.insert(
            code.clone(),
            Grant {
                client_id: params.client_id.clone().unwrap_or_default(),
                redirect_uri: redirect_uri.clone(),
                challenge: params.code_challenge.clone().unwrap_or_default(),
                audience,
                scopes,
                expires: now + CODE_LIFETIME,
            },
        );
    }
    let mut pairs = vec![("code", code.as_str()), ("iss", issuer)];
    if params.state.is_some() {
        pairs.push(("state", client_state));
    }
    redirect_to(&redirect_uri, &pairs)
}

#[derive(Deserialize)]
struct TokenParams {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
    resource: Option<String>,
}

async fn token(
    State(state): State<Arc<AuthorizationState>>,
    Form(params): Form<TokenParams>,
) -> Response {
    if params.grant_type.as_deref() != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code is supported",
        );
    }
    // A code is used once: taken out of the table whatever the outcome.
    let grant = params.code.as_ref().and_then(|code| {
        state
            .codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(code)
    });
    let invalid_grant =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let Some(grant) = grant.filter(|g| g.expires > Instant::now()) else {
        return invalid_grant("unknown, used or expired code");
    };
    if params.client_id.as_deref() != Some(grant.client_id.as_str()) {
        return invalid_grant("the code was issued to another client");
    }
    if params.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return invalid_grant("redirect_uri differs from the authorization request's");
    }
    if !state
        .rules
        .verifier_proves(&grant.challenge, params.code_verifier.as_deref())
    {
        return invalid_grant("code_verifier does not match the code challenge");
    }
    if let Some(requested) = params.resource.as_deref() {
        let audience = state
            .rules
            .audience(Some(requested), &state.config.resource);
        if audience.as_deref() != Some(grant.audience.as_str()) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                "resource differs from the authorization request's",
            );
        }
    }
    let access_token = state.config.signer.mint(
        &state.config.issuer,
        &grant.audience,
        &format!("client:{}", grant.client_id),
        &grant.scopes,
        TOKEN_LIFETIME_SECONDS,
    );
    no_store(
        Json(serde_json::json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "scope": grant.scopes.join(" "),
        }))
        .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn the_reference_rules_keep_each_rule() {
        let rules = ReferenceAuthorizationRules::default();
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = s256_challenge(verifier);
        assert!(rules.verifier_proves(&challenge, Some(verifier)));
        assert!(!rules.verifier_proves(&challenge, None));
        assert!(!rules.verifier_proves(&challenge, Some(&verifier.replace('d', "e"))));
        assert!(rules.challenge_accepted(Some(&challenge), Some("S256")));
        assert!(!rules.challenge_accepted(Some(&challenge), Some("plain")));
        assert!(!rules.challenge_accepted(None, Some("S256")));
        let registered = vec!["http://127.0.0.1:9/cb".to_owned()];
        assert!(rules.redirect_uri_matches(&registered, "http://127.0.0.1:9/cb"));
        for variant in [
            "http://127.0.0.1:9/cb/x",
            "http://127.0.0.1:9/cb?x=1",
            "http://127.0.0.1:9/c",
            "http://a@127.0.0.1:9/cb",
        ] {
            assert!(
                !rules.redirect_uri_matches(&registered, variant),
                "{variant}"
            );
        }
        for (uri, allowed) in [
            ("http://127.0.0.1:9/cb", true),
            ("http://localhost/cb", true),
            ("http://[::1]:8/cb", true),
            ("https://app.example/cb", true),
            ("http://app.example/cb", false),
            ("javascript:alert(1)", false),
            ("data:text/html,x", false),
            ("https://app.example/cb#frag", false),
            ("https://user@app.example/cb", false),
        ] {
            assert_eq!(rules.redirect_uri_allowed(uri), allowed, "{uri}");
        }
        let own = "http://127.0.0.1:9/mcp";
        assert_eq!(rules.audience(Some(own), own).as_deref(), Some(own));
        assert_eq!(rules.audience(None, own).as_deref(), Some(own));
        assert_eq!(rules.audience(Some("http://127.0.0.1:1/other"), own), None);
        let admitted = (0..REGISTRATION_BURST + 5)
            .filter(|_| rules.registration_admitted())
            .count();
        assert_eq!(admitted, REGISTRATION_BURST as usize);
    }
}
