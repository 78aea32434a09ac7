//! MCP over Streamable HTTP: an axum router with the guards as tower layers.
//!
//! Layers, outermost first:
//! 1. request body limit (413 when exceeded, streamed bodies included);
//! 2. response timeout (408);
//! 3. `Host` and `Origin` validation against allowlists ([`origin`]; DNS rebinding; 403),
//!    applied to every route;
//! 4. authentication ([`auth`]): `Authorization: Bearer` only, API keys or JWTs (401 with
//!    `WWW-Authenticate`, carrying `resource_metadata` when OAuth is configured);
//! 5. per-principal rate limit ([`limit`]; 429 with `Retry-After`; 503 when the limiter's key
//!    table is full);
//! 6. scope and session binding: a `tools/call` for a tool whose scope the principal lacks is
//!    403 `insufficient_scope` (the tools' own table, [`crate::guard::scopes`], read from the
//!    body by [`call_shape`]); a session id is only honoured for the principal that opened it
//!    ([`session`]; 404 otherwise);
//! 7. the rmcp Streamable HTTP service: 2025-11-25 clients get sessions, 2026-07-28 requests
//!    are served statelessly.
//!
//! Plus the OAuth protected resource metadata ([`metadata`]) when OAuth is configured, and,
//! for development only, an authorization server on the same origin ([`dev_authorization`]).
//!
//! Each guard is a field of [`HttpGuards`], so a test twin can replace exactly one (see
//! [`crate::guards`]). Layers 4 to 6 are one middleware ([`guard_request`]). Cost: per request,
//! one header parse, one key check or signature verification, one limiter check, one read of
//! the (already bounded) body for the scope check that builds only the method and tool names, a
//! mutex-guarded map lookup for sessions, and one virtual call per guard.
//!
//! Failure: every refusal is an HTTP status with a short JSON body and no detail; the detail
//! goes to the log with the correlation id of [`crate::guard::public_error`].

pub mod auth;
pub mod call_shape;
pub mod dev_authorization;
pub mod limit;
pub mod metadata;
pub mod origin;
pub mod session;

pub use auth::{AuthFailure, Authenticate, Authenticator, BearerChallenge, Challenge};
pub use call_shape::called_tools;
pub use dev_authorization::{AuthorizationRules, DevAuthorization, ReferenceAuthorizationRules};
pub use limit::{LimitCheck, PerPrincipalLimit, RequestLimit, SharedPerPrincipalLimit};
pub use metadata::{ProtectedResource, ResourceMetadata, metadata_url};
pub use origin::{Allowlists, OriginPolicy};
pub use session::{BoundSessions, MAX_BOUND_SESSIONS, SessionAdmission, SessionPolicy};

use crate::guard::api_keys::Principal;
use crate::guard::rate_limit::{RateLimitError, RateLimiter};
use crate::guard::scopes::Scopes;
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
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// The configuration of the HTTP layer.
pub struct HttpSettings {
    /// Read by [`HttpGuards::reference`] (the origin guard).
    pub allowed_hosts: Vec<String>,
    /// Read by [`HttpGuards::reference`] (the origin guard).
    pub allowed_origins: Vec<String>,
    /// This server's MCP endpoint URL: the OAuth resource identifier.
    pub public_url: String,
    /// Read by [`HttpGuards::reference`] (the metadata document); empty: the JWT issuer.
    pub authorization_servers: Vec<String>,
    pub max_body_bytes: usize,
    pub response_timeout: Duration,
    /// DEVELOPMENT ONLY: serve an authorization server on this origin
    /// ([`dev_authorization`]).
    pub dev_authorization: Option<DevAuthorization>,
}

/// Every guard of the HTTP layer. Build the reference set with [`HttpGuards::reference`]; a twin
/// replaces one field.
#[derive(Clone)]
pub struct HttpGuards {
    pub origin: Arc<dyn OriginPolicy>,
    pub auth: Arc<dyn Authenticate>,
    pub challenge: Arc<dyn Challenge>,
    pub metadata: Arc<dyn ResourceMetadata>,
    pub limit: Arc<dyn RequestLimit>,
    pub sessions: Arc<dyn SessionPolicy>,
    /// The tools' scope table ([`crate::guards::Guards::scopes`]).
    pub scopes: Arc<dyn Scopes>,
    /// The rules of the development authorization server (used only when it is served).
    pub authorization: Arc<dyn AuthorizationRules>,
}

impl HttpGuards {
    /// The reference guards for `settings`, with the tools' `scopes`.
    pub fn reference(
        auth: Authenticator,
        limiter: RateLimiter<String>,
        settings: &HttpSettings,
        scopes: Arc<dyn Scopes>,
    ) -> Self {
        let authorization_servers = match (&auth.jwt, settings.authorization_servers.is_empty()) {
            (Some(jwt), true) => vec![jwt.issuer().to_owned()],
            _ => settings.authorization_servers.clone(),
        };
        let resource_metadata = auth
            .jwt
            .is_some()
            .then(|| metadata_url(&settings.public_url));
        Self {
            origin: Arc::new(Allowlists {
                hosts: settings.allowed_hosts.clone(),
                origins: settings.allowed_origins.clone(),
            }),
            auth: Arc::new(auth),
            challenge: Arc::new(BearerChallenge { resource_metadata }),
            metadata: Arc::new(ProtectedResource {
                resource: settings.public_url.clone(),
                authorization_servers,
            }),
            limit: Arc::new(PerPrincipalLimit(limiter)),
            sessions: Arc::new(BoundSessions::default()),
            scopes,
            authorization: Arc::new(ReferenceAuthorizationRules::default()),
        }
    }

    /// The guard of each field, by field name: `"reference"` or the twin's flaw.
    pub fn implementations(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("origin", self.origin.name()),
            ("auth", self.auth.name()),
            ("challenge", self.challenge.name()),
            ("metadata", self.metadata.name()),
            ("limit", self.limit.name()),
            ("sessions", self.sessions.name()),
            ("scopes", self.scopes.name()),
            ("authorization", self.authorization.name()),
        ]
    }

    /// The fields whose guard is not the reference's.
    pub fn swapped(&self) -> Vec<&'static str> {
        crate::guards::not_reference(self.implementations())
    }
}

struct HttpState {
    guards: HttpGuards,
    settings: HttpSettings,
}

/// Builds the HTTP application: the MCP endpoint at `/mcp` and, when JWTs are accepted, the
/// metadata document.
pub fn router<H: ServerHandler + Clone + Send + Sync + 'static>(
    server: H,
    guards: HttpGuards,
    mut settings: HttpSettings,
) -> Router {
    let dev_authorization = settings.dev_authorization.take();
    let allowlists = guards.origin.rmcp_allowlists();
    let mut rmcp_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowlists.hosts)
        .with_max_request_body_bytes(settings.max_body_bytes);
    if let Some(origins) = allowlists.origins {
        rmcp_config = rmcp_config
            .with_allowed_origins(origins)
            .enforce_origin_validation();
    }
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        rmcp_config,
    );
    let max_body = settings.max_body_bytes;
    let timeout = settings.response_timeout;
    let state = Arc::new(HttpState { guards, settings });
    let mcp_route = ServiceBuilder::new()
        .layer(from_fn_with_state(state.clone(), guard_request))
        .service(mcp);
    let mut app = Router::new().route_service("/mcp", mcp_route);
    if state.guards.auth.accepts_jwt() {
        app = app
            .route(
                "/.well-known/oauth-protected-resource",
                get(protected_resource_metadata),
            )
            .route(
                &metadata::metadata_path(&state.settings.public_url),
                get(protected_resource_metadata),
            );
    }
    if let Some(config) = dev_authorization {
        app = app.merge(dev_authorization::routes(
            config,
            state.guards.authorization.clone(),
        ));
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

async fn check_host_and_origin(
    State(state): State<Arc<HttpState>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let origin_policy = &state.guards.origin;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match host {
        Some(host) if origin_policy.host_allowed(host) => {}
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
            .is_ok_and(|o| origin_policy.origin_allowed(o));
        if !allowed {
            return json_error(StatusCode::FORBIDDEN, "forbidden", "Origin not allowed");
        }
    }
    next.run(request).await
}

fn unauthorized(state: &HttpState, error: Option<(&str, &str)>) -> Response {
    let description = error.map(|(_, d)| d).unwrap_or("authentication required");
    let mut response = json_error(
        StatusCode::UNAUTHORIZED,
        error.map(|(c, _)| c).unwrap_or("unauthorized"),
        description,
    );
    if let Some(challenge) = state.guards.challenge.challenge(error) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
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
    let principal = match state
        .guards
        .auth
        .authenticate(request.headers(), request.uri())
    {
        Ok(principal) => principal,
        Err(AuthFailure::Missing) => return unauthorized(&state, None),
        Err(AuthFailure::Malformed(reason)) => {
            tracing::info!(reason, "malformed Authorization header");
            return unauthorized(
                &state,
                Some(("invalid_request", "malformed Authorization header")),
            );
        }
        Err(AuthFailure::Invalid(reason)) => {
            tracing::info!(reason, "authentication failed");
            return unauthorized(
                &state,
                Some(("invalid_token", "the access token is invalid")),
            );
        }
    };
    if let Err(refusal) = rate_limit(&state, &principal, request.headers()).await {
        return *refusal;
    }
    scope_and_session(&state, principal, request, next).await
}

/// One token from the request's bucket, or the 429 (503 when the key table is full or the
/// shared store is unavailable) to send.
async fn rate_limit(
    state: &HttpState,
    principal: &Principal,
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    match state.guards.limit.check(principal, headers).verdict().await {
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
        Err(refused) => {
            let description = match refused {
                RateLimitError::StoreUnavailable => {
                    "the rate limit store is unavailable; retry later"
                }
                _ => "too many callers; retry later",
            };
            let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, "busy", description);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            Err(Box::new(response))
        }
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The 403 for a call to a tool that needs `scope`.
fn insufficient_scope(state: &HttpState, scope: &str) -> Response {
    let mut response = json_error(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        "the token lacks the scope this tool requires",
    );
    let mut value = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
    if state.guards.auth.accepts_jwt() {
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
    response
}

/// Refuses a call to a tool outside the principal's scopes (403) and a session the session
/// policy refuses (404); otherwise serves the request with the principal in its extensions
/// (where the tools find it) and tells the policy of a session opened or deleted.
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
        if let Some(scope) = state.guards.scopes.required(&tool)
            && !principal.has_scope(scope)
        {
            return insufficient_scope(state, scope);
        }
    }
    let presented = session_id(&parts.headers);
    let sessions = &state.guards.sessions;
    let principal = match sessions.admit(presented.as_deref(), &principal) {
        SessionAdmission::Refused => {
            return json_error(StatusCode::NOT_FOUND, "not_found", "session not found");
        }
        SessionAdmission::Serve { rewrite, act_as } => {
            if let Some(value) = rewrite.and_then(|r| HeaderValue::from_str(&r).ok()) {
                parts.headers.insert(SESSION_HEADER, value);
            }
            act_as.unwrap_or(principal)
        }
    };
    // Only a request without a session can open one.
    let opener = presented.is_none().then(|| principal.clone());
    let is_delete = parts.method == Method::DELETE;
    parts.extensions.insert(principal);
    let mut response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    match (&presented, session_id(response.headers()), opener) {
        (None, Some(created), Some(opener)) => {
            let shown = sessions.opened(&created, &opener);
            if shown != created
                && let Ok(value) = HeaderValue::from_str(&shown)
            {
                response.headers_mut().insert(SESSION_HEADER, value);
            }
        }
        (Some(session), served, _) => {
            if is_delete && response.status().is_success() {
                sessions.closed(session);
            } else if served.is_some_and(|served| &served != session)
                && let Ok(value) = HeaderValue::from_str(session)
            {
                // The client keeps the id it knows.
                response.headers_mut().insert(SESSION_HEADER, value);
            }
        }
        _ => {}
    }
    response
}

async fn protected_resource_metadata(State(state): State<Arc<HttpState>>) -> Response {
    match state.guards.metadata.document() {
        Some(document) => Json(document).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
