//! MCP over Streamable HTTP: an axum router with the guards as tower layers.
//!
//! Layers, outermost first:
//! 1. request body limit (413 when exceeded, streamed bodies included);
//! 2. response timeout (408);
//! 3. `Host` and `Origin` validation against allowlists (DNS rebinding; 403), applied to every
//!    route;
//! 4. authentication: `Authorization: Bearer` only (never a query parameter), checked against
//!    the API keys or, for JWT-shaped tokens when OAuth is configured, the JWT validator (401
//!    with `WWW-Authenticate`, carrying `resource_metadata` when OAuth is configured);
//! 5. per-principal rate limit (429 with `Retry-After`; 503 when the limiter's key table is
//!    full);
//! 6. scope and session binding: a `tools/call` for a tool whose scope the principal lacks is
//!    403 `insufficient_scope`; a session id is only honoured for the principal that opened it
//!    (another principal, or an unknown id, gets 404 as if the session did not exist);
//! 7. the rmcp Streamable HTTP service: 2025-11-25 clients get sessions, 2026-07-28 requests
//!    are served statelessly.
//!
//! Layers 4 to 6 are one middleware ([`guard_request`]). Cost: per request, one header parse,
//! one key check or signature verification, one limiter check, one read of the (already
//! bounded) body for the scope check that builds only the method and tool names, and a
//! mutex-guarded map lookup for sessions.
//!
//! Failure: every refusal is an HTTP status with a short JSON body and no detail; the detail
//! goes to the log with the correlation id of [`crate::guard::public_error`].

use crate::config::ALL_SCOPES;
use crate::guard::api_keys::{ApiKeys, BearerError, Principal, parse_bearer};
use crate::guard::oauth::JwtValidator;
use crate::guard::rate_limit::{RateLimitError, RateLimiter};
use crate::tools::required_scope;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// Most sessions whose owner is remembered; the oldest binding is dropped beyond this, which
/// ends that session (an unknown session id is refused, never let through).
pub const MAX_BOUND_SESSIONS: usize = 10_000;

/// How callers are authenticated.
pub struct Authenticator {
    pub api_keys: Option<ApiKeys>,
    pub jwt: Option<JwtValidator>,
    /// Development only: every request runs as a principal with every scope. The binary allows
    /// it only on a loopback bind and warns at every start.
    pub insecure_dev_principal: Option<Principal>,
}

/// Everything the HTTP layers need.
pub struct HttpSettings {
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    /// This server's MCP endpoint URL: the OAuth resource identifier.
    pub public_url: String,
    pub authorization_servers: Vec<String>,
    pub max_body_bytes: usize,
    pub response_timeout: Duration,
}

struct HttpState {
    auth: Authenticator,
    limiter: RateLimiter<String>,
    settings: HttpSettings,
    sessions: Mutex<SessionOwners>,
}

#[derive(Default)]
struct SessionOwners {
    owner: HashMap<String, String>,
    order: VecDeque<String>,
}

impl SessionOwners {
    fn bind(&mut self, session: String, principal: String) {
        if self.owner.insert(session.clone(), principal).is_none() {
            self.order.push_back(session);
        }
        while self.order.len() > MAX_BOUND_SESSIONS {
            if let Some(oldest) = self.order.pop_front() {
                self.owner.remove(&oldest);
            }
        }
    }

    fn unbind(&mut self, session: &str) {
        if self.owner.remove(session).is_some() {
            self.order.retain(|s| s != session);
        }
    }
}

/// The URL of the protected resource metadata document for `public_url` (RFC 9728 section 3.1:
/// the well-known path is inserted between the host and the resource's path).
pub fn metadata_url(public_url: &str) -> String {
    match url::Url::parse(public_url) {
        Ok(url) => {
            let path = url.path().trim_end_matches('/');
            let origin = url.origin().ascii_serialization();
            format!("{origin}/.well-known/oauth-protected-resource{path}")
        }
        Err(_) => String::from("/.well-known/oauth-protected-resource"),
    }
}

/// Builds the HTTP application: the MCP endpoint at `/mcp` and the metadata document.
pub fn router<H: ServerHandler + Clone + Send + Sync + 'static>(
    server: H,
    auth: Authenticator,
    limiter: RateLimiter<String>,
    settings: HttpSettings,
) -> Router {
    let rmcp_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(settings.allowed_hosts.clone())
        .with_allowed_origins(settings.allowed_origins.clone())
        .enforce_origin_validation()
        .with_max_request_body_bytes(settings.max_body_bytes);
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        rmcp_config,
    );
    let max_body = settings.max_body_bytes;
    let timeout = settings.response_timeout;
    let state = Arc::new(HttpState {
        auth,
        limiter,
        settings,
        sessions: Mutex::new(SessionOwners::default()),
    });
    let mcp_route = ServiceBuilder::new()
        .layer(from_fn_with_state(state.clone(), guard_request))
        .service(mcp);
    let metadata_path = url::Url::parse(&state.settings.public_url)
        .map(|u| {
            format!(
                "/.well-known/oauth-protected-resource{}",
                u.path().trim_end_matches('/')
            )
        })
        .unwrap_or_else(|_| "/.well-known/oauth-protected-resource/mcp".into());
    let mut app = Router::new().route_service("/mcp", mcp_route);
    if state.auth.jwt.is_some() {
        app = app
            .route(
                "/.well-known/oauth-protected-resource",
                get(protected_resource_metadata),
            )
            .route(&metadata_path, get(protected_resource_metadata));
    }
    // Router::layer wraps what is already there: the last call is the outermost layer.
    app.layer(from_fn_with_state(state.clone(), check_host_and_origin))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(RequestBodyLimitLayer::new(max_body))
        .with_state(state)
}

fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn host_allowed(allowed: &[String], host: &str) -> bool {
    let bare = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        }
        _ => host,
    };
    let bare_unbracketed = bare.trim_start_matches('[').trim_end_matches(']');
    allowed.iter().any(|a| {
        let a = a.as_str();
        a.eq_ignore_ascii_case(host)
            || a.eq_ignore_ascii_case(bare)
            || a.eq_ignore_ascii_case(bare_unbracketed)
    })
}

fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    let Ok(parsed) = url::Url::parse(origin) else {
        return false;
    };
    allowed.iter().any(|entry| {
        if let Some(prefix) = entry.strip_suffix(":*") {
            url::Url::parse(prefix)
                .is_ok_and(|p| p.scheme() == parsed.scheme() && p.host_str() == parsed.host_str())
        } else {
            url::Url::parse(entry).is_ok_and(|e| e.origin() == parsed.origin())
        }
    })
}

async fn check_host_and_origin(
    State(state): State<Arc<HttpState>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match host {
        Some(host) if host_allowed(&state.settings.allowed_hosts, host) => {}
        _ => {
            return json_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Host header not allowed",
            );
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| origin_allowed(&state.settings.allowed_origins, o));
        if !allowed {
            return json_error(StatusCode::FORBIDDEN, "forbidden", "Origin not allowed");
        }
    }
    next.run(request).await
}

fn challenge(state: &HttpState, error: Option<(&str, &str)>) -> HeaderValue {
    let mut parts = vec![];
    if state.auth.jwt.is_some() {
        parts.push(format!(
            "resource_metadata=\"{}\"",
            metadata_url(&state.settings.public_url)
        ));
    } else {
        parts.push("realm=\"mcp\"".to_owned());
    }
    if let Some((code, description)) = error {
        parts.push(format!("error=\"{code}\""));
        parts.push(format!("error_description=\"{description}\""));
    }
    HeaderValue::from_str(&format!("Bearer {}", parts.join(", ")))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

fn unauthorized(state: &HttpState, error: Option<(&str, &str)>) -> Response {
    let description = error.map(|(_, d)| d).unwrap_or("authentication required");
    let mut response = json_error(
        StatusCode::UNAUTHORIZED,
        error.map(|(c, _)| c).unwrap_or("unauthorized"),
        description,
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge(state, error));
    response
}

/// Layers 4 to 6 in one middleware: authentication, then the rate limit, then scope and
/// session binding (one boxed future and one clone of the inner service per request, where
/// three middlewares cost three of each; measured in benches/README.md).
async fn guard_request(
    State(state): State<Arc<HttpState>>,
    request: Request,
    next: Next,
) -> Response {
    let principal = match authenticate(&state, &request) {
        Ok(principal) => principal,
        Err(refusal) => return *refusal,
    };
    if let Err(refusal) = rate_limit(&state, &principal) {
        return *refusal;
    }
    scope_and_session(&state, principal, request, next).await
}

/// The principal the request's bearer token names, or the 401 to send.
fn authenticate(state: &HttpState, request: &Request) -> Result<Principal, Box<Response>> {
    if let Some(dev) = &state.auth.insecure_dev_principal {
        return Ok(dev.clone());
    }
    let header_value = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let token = match parse_bearer(header_value) {
        Ok(token) => token,
        Err(BearerError::Missing) => return Err(Box::new(unauthorized(state, None))),
        Err(error) => {
            tracing::info!(%error, "malformed Authorization header");
            return Err(Box::new(unauthorized(
                state,
                Some(("invalid_request", "malformed Authorization header")),
            )));
        }
    };
    let looks_like_jwt = token.split('.').count() == 3;
    let principal = match (&state.auth.jwt, &state.auth.api_keys) {
        (Some(jwt), _) if looks_like_jwt => jwt.validate(token).map_err(|e| e.to_string()),
        (_, Some(keys)) => keys
            .authenticate(token.as_bytes())
            .cloned()
            .map_err(|e| e.to_string()),
        _ => Err("no credential of this kind is accepted".to_owned()),
    };
    principal.map_err(|reason| {
        tracing::info!(reason, "authentication failed");
        Box::new(unauthorized(
            state,
            Some(("invalid_token", "the access token is invalid")),
        ))
    })
}

/// One token from the principal's bucket, or the 429 (503 when the key table is full) to send.
fn rate_limit(state: &HttpState, principal: &Principal) -> Result<(), Box<Response>> {
    match state.limiter.check(&principal.name) {
        Ok(()) => Ok(()),
        Err(RateLimitError::Limited { retry_after }) => {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let mut response = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "rate limit exceeded",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            Err(Box::new(response))
        }
        Err(_) => {
            let mut response = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many callers; retry later",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            Err(Box::new(response))
        }
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

/// The fields of a JSON-RPC message the scope check reads; every other field is skipped
/// without being built. Read from a JSON object only (a derived `Deserialize` would also take
/// an array, positionally, which the slow path does not).
struct CallShape {
    method: Option<String>,
    params: Option<CallParamsShape>,
}

/// The `params` of a [`CallShape`]: only the tool name.
struct CallParamsShape {
    name: Option<String>,
}

/// The keys [`CallShape`] and [`CallParamsShape`] read.
#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum ShapeKey {
    Method,
    Params,
    Name,
    #[serde(other)]
    Other,
}

/// Reads an object's `wanted` keys with `read` and skips the others; a repeated wanted key is
/// an error (the slow path decides those).
fn visit_object<'de, A: serde::de::MapAccess<'de>>(
    mut map: A,
    mut read: impl FnMut(ShapeKey, &mut A) -> Result<bool, A::Error>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key::<ShapeKey>()? {
        if !read(key, &mut map)? {
            map.next_value::<serde::de::IgnoredAny>()?;
        }
    }
    Ok(())
}

fn read_once<'de, T: serde::Deserialize<'de>, A: serde::de::MapAccess<'de>>(
    slot: &mut Option<Option<T>>,
    field: &'static str,
    map: &mut A,
) -> Result<bool, A::Error> {
    if slot.is_some() {
        return Err(serde::de::Error::duplicate_field(field));
    }
    *slot = Some(map.next_value()?);
    Ok(true)
}

impl<'de> serde::Deserialize<'de> for CallShape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = CallShape;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON-RPC message object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<CallShape, A::Error> {
                let (mut method, mut params) = (None, None);
                visit_object(map, |key, map| match key {
                    ShapeKey::Method => read_once(&mut method, "method", map),
                    ShapeKey::Params => read_once(&mut params, "params", map),
                    _ => Ok(false),
                })?;
                Ok(CallShape {
                    method: method.flatten(),
                    params: params.flatten(),
                })
            }
        }
        deserializer.deserialize_map(ObjectOnly)
    }
}

impl<'de> serde::Deserialize<'de> for CallParamsShape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = CallParamsShape;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a params object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<CallParamsShape, A::Error> {
                let mut name = None;
                visit_object(map, |key, map| match key {
                    ShapeKey::Name => read_once(&mut name, "name", map),
                    _ => Ok(false),
                })?;
                Ok(CallParamsShape {
                    name: name.flatten(),
                })
            }
        }
        deserializer.deserialize_map(ObjectOnly)
    }
}

/// The tools a JSON-RPC body calls (one message or a batch).
///
/// Fast path: the body read into [`CallShape`]s, which build nothing but the method and tool
/// names (the arguments, usually the bulk of a call, are skipped). Any body that shape does not
/// fit (a `method` that is not a string, `params` that is not an object, a duplicate field)
/// takes the slow path, a whole [`serde_json::Value`], so for every body that is JSON the answer
/// is the slow path's (a property test and the `scope_body` fuzz target check it, the latter
/// also against rmcp's own reading): the scope check never sees fewer tools than the server
/// will run. A body that is not JSON only because of something in a skipped field (a number
/// out of range) may still name its tool here; rmcp refuses such a body (415), so at worst the
/// refusal is a 403.
pub fn called_tools(body: &[u8]) -> Vec<String> {
    // serde_json skips an ignored string without checking its UTF-8, where reading the whole
    // value refuses the body (found by the scope_body fuzz target): check it first.
    let Ok(text) = std::str::from_utf8(body) else {
        return called_tools_from_value(body);
    };
    let shapes = if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<CallShape>>(text).ok()
    } else {
        serde_json::from_str::<CallShape>(text)
            .ok()
            .map(|one| vec![one])
    };
    match shapes {
        Some(shapes) => shapes
            .into_iter()
            .filter(|m| m.method.as_deref() == Some("tools/call"))
            .filter_map(|m| m.params?.name)
            .collect(),
        None => called_tools_from_value(body),
    }
}

/// [`called_tools`]'s slow path: the body as a whole JSON value.
fn called_tools_from_value(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return vec![];
    };
    let messages = match value {
        serde_json::Value::Array(items) => items,
        single => vec![single],
    };
    messages
        .iter()
        .filter(|m| m.get("method").and_then(|v| v.as_str()) == Some("tools/call"))
        .filter_map(|m| {
            m.pointer("/params/name")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .collect()
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Refuses a call to a tool outside the principal's scopes (403) and a session id the
/// principal did not open (404); otherwise serves the request with the principal in its
/// extensions (where the tools find it) and remembers who opened a new session (or forgets one
/// that was deleted).
async fn scope_and_session(
    state: &HttpState,
    principal: Principal,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let bytes = match to_bytes(body, state.settings.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "request body too large",
            );
        }
    };
    for tool in called_tools(&bytes) {
        if let Some(scope) = required_scope(&tool)
            && !principal.has_scope(scope)
        {
            let mut response = json_error(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "the token lacks the scope this tool requires",
            );
            let mut value = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
            if state.auth.jwt.is_some() {
                value.push_str(&format!(
                    ", resource_metadata=\"{}\"",
                    metadata_url(&state.settings.public_url)
                ));
            }
            if let Ok(header_value) = HeaderValue::from_str(&value) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, header_value);
            }
            return response;
        }
    }
    let presented = session_id(&parts.headers);
    if let Some(session) = &presented {
        let sessions = state.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if sessions.owner.get(session) != Some(&principal.name) {
            drop(sessions);
            tracing::info!(
                principal = principal.name,
                "session id not bound to this principal"
            );
            return json_error(StatusCode::NOT_FOUND, "not_found", "session not found");
        }
    }
    let is_delete = parts.method == Method::DELETE;
    let name = principal.name.clone();
    parts.extensions.insert(principal);
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let mut sessions = state.sessions.lock().unwrap_or_else(|p| p.into_inner());
    match (&presented, session_id(response.headers())) {
        (None, Some(created)) => sessions.bind(created, name),
        (Some(session), _) if is_delete && response.status().is_success() => {
            sessions.unbind(session)
        }
        _ => {}
    }
    response
}

async fn protected_resource_metadata(State(state): State<Arc<HttpState>>) -> Response {
    let Some(jwt) = &state.auth.jwt else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let servers = if state.settings.authorization_servers.is_empty() {
        vec![jwt.issuer().to_owned()]
    } else {
        state.settings.authorization_servers.clone()
    };
    Json(serde_json::json!({
        "resource": state.settings.public_url,
        "authorization_servers": servers,
        "bearer_methods_supported": ["header"],
        "scopes_supported": ALL_SCOPES,
        "resource_name": "mcp-reference-server",
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_inserts_the_well_known_path() {
        assert_eq!(
            metadata_url("http://127.0.0.1:8765/mcp"),
            "http://127.0.0.1:8765/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("https://a.example/"),
            "https://a.example/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn host_matching_handles_ports_and_brackets() {
        let allowed: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for ok in [
            "localhost",
            "localhost:8765",
            "127.0.0.1:1",
            "[::1]:8765",
            "[::1]",
        ] {
            assert!(host_allowed(&allowed, ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8765",
            "localhost.evil.example",
            "127.0.0.1.nip.io:80",
            "",
        ] {
            assert!(!host_allowed(&allowed, bad), "{bad}");
        }
    }

    #[test]
    fn origin_matching_is_exact_or_any_port() {
        let allowed = vec![
            "http://localhost:*".to_owned(),
            "https://app.example:443".to_owned(),
        ];
        assert!(origin_allowed(&allowed, "http://localhost:3000"));
        assert!(origin_allowed(&allowed, "https://app.example"));
        assert!(!origin_allowed(&allowed, "http://evil.example"));
        assert!(!origin_allowed(&allowed, "https://localhost:3000"));
        assert!(!origin_allowed(&allowed, "null"));
        assert!(!origin_allowed(&[], "http://localhost:3000"));
    }

    #[test]
    fn called_tools_reads_single_and_batched_calls() {
        assert_eq!(called_tools(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_stats"}}"#), vec!["admin_stats"]);
        assert_eq!(
            called_tools(br#"[{"method":"tools/call","params":{"name":"a"}},{"method":"ping"}]"#),
            vec!["a"]
        );
        assert!(called_tools(b"not json").is_empty());
        // Shapes the fast path does not fit fall back to the whole value, with its answer.
        assert_eq!(
            called_tools(
                br#"{"method":"tools/call","params":{"name":"a"},"params":{"name":"admin_stats"}}"#
            ),
            vec!["admin_stats"]
        );
        assert_eq!(
            called_tools(br#"[{"method":"tools\/call","params":{"name":"admin\u005fstats"}},7]"#),
            vec!["admin_stats"]
        );
        // Invalid UTF-8 in a skipped field: not JSON, for the fast path either.
        let body = b"{\"method\":\"tools/call\",\"params\":{\"name\":\"a\"},\"x\":\"\xe5\"}";
        assert!(called_tools(body).is_empty());
    }

    /// JSON text built from pieces a scope check cares about: JSON-RPC messages whose fields
    /// may repeat, be of the wrong type or have escaped names or values, alone or in batches,
    /// and arbitrary nesting. Duplicate keys are allowed (serde_json::Value cannot hold them, so the text is
    /// written by hand).
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        fn object(fields: Vec<(&'static str, String)>) -> String {
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", fields.join(","))
        }
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("7".to_owned()),
            Just(r#""tools/call""#.to_owned()),
            Just(r#""tools\/call""#.to_owned()),
            Just(r#""admin_stats""#.to_owned()),
            Just(r#""read_\u0066ile""#.to_owned()),
            Just(r#""ping""#.to_owned()),
        ];
        let value = leaf.clone().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                proptest::collection::vec((Just("name"), inner), 0..3).prop_map(object),
            ]
        });
        let params = prop_oneof![
            4 => proptest::collection::vec(
                prop_oneof![
                    (Just("name"), leaf.clone()),
                    (Just("arguments"), value.clone()),
                ],
                0..3,
            )
            .prop_map(object),
            1 => value.clone(),
        ];
        let method = prop_oneof![
            3 => Just(r#""tools/call""#.to_owned()),
            1 => leaf,
        ];
        let message = proptest::collection::vec(
            prop_oneof![
                (Just("method"), method.clone()),
                (Just(r"met\u0068od"), method),
                (Just("params"), params.clone()),
                (Just(r"p\u0061rams"), params),
                (Just("id"), Just("1".to_owned())),
                (Just("other"), value.clone()),
            ],
            0..5,
        )
        .prop_map(object);
        prop_oneof![
            3 => message.clone(),
            3 => proptest::collection::vec(prop_oneof![4 => message, 1 => value.clone()], 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            1 => value,
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// The fast path never disagrees with reading the whole value: a scope check that saw
        /// fewer tools than the server runs would let a call through unchecked.
        #[test]
        fn called_tools_agrees_with_the_whole_value(text in json_text()) {
            proptest::prop_assert_eq!(called_tools(text.as_bytes()), called_tools_from_value(text.as_bytes()));
        }
    }
}
