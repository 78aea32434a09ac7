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
//! Cost: per request, one header parse, one key check or signature verification, one limiter
//! check, one JSON parse of the (already bounded) body for the scope check, and a mutex-guarded
//! map lookup for sessions.
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
        .layer(from_fn_with_state(state.clone(), authenticate))
        .layer(from_fn_with_state(state.clone(), rate_limit))
        .layer(from_fn_with_state(state.clone(), scope_and_session))
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

async fn authenticate(
    State(state): State<Arc<HttpState>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(dev) = &state.auth.insecure_dev_principal {
        request.extensions_mut().insert(dev.clone());
        return next.run(request).await;
    }
    let header_value = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let token = match parse_bearer(header_value) {
        Ok(token) => token,
        Err(BearerError::Missing) => return unauthorized(&state, None),
        Err(error) => {
            tracing::info!(%error, "malformed Authorization header");
            return unauthorized(
                &state,
                Some(("invalid_request", "malformed Authorization header")),
            );
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
    match principal {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(reason) => {
            tracing::info!(reason, "authentication failed");
            unauthorized(
                &state,
                Some(("invalid_token", "the access token is invalid")),
            )
        }
    }
}

async fn rate_limit(State(state): State<Arc<HttpState>>, request: Request, next: Next) -> Response {
    let Some(principal) = request.extensions().get::<Principal>() else {
        return unauthorized(&state, None);
    };
    match state.limiter.check(&principal.name) {
        Ok(()) => next.run(request).await,
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
            response
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
            response
        }
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

/// The tools a JSON-RPC body calls (one message or a batch).
fn called_tools(body: &[u8]) -> Vec<String> {
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

async fn scope_and_session(
    State(state): State<Arc<HttpState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return unauthorized(&state, None);
    };
    let (parts, body) = request.into_parts();
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
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let mut sessions = state.sessions.lock().unwrap_or_else(|p| p.into_inner());
    match (&presented, session_id(response.headers())) {
        (None, Some(created)) => sessions.bind(created, principal.name.clone()),
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
    }
}
