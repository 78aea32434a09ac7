//! AUTH-AS (the target's own OAuth authorization server): when the protected resource
//! metadata names an authorization server on the target's own origin (as the SDKs' auth
//! routers and the reference's development server do), the rules the MCP authorization
//! specification puts on it.
//!
//! - AUTH-AS-METADATA: RFC 8414 metadata (or OpenID discovery) is served, its `issuer` is the
//!   identifier the PRM names (RFC 8414 section 3.3), and it lists `S256` in
//!   `code_challenge_methods_supported` (without it MCP clients MUST refuse to proceed).
//! - AUTH-AS-REGISTRATION, with a registration endpoint: a redirect URI that is never safe
//!   (`javascript:`, `data:`) is refused, and so is the registration after
//!   [`MAX_REGISTRATIONS`] in a row (one client's registrations are bounded).
//! - AUTH-AS-REDIRECT: the authorization endpoint sends nothing to a redirect URI that is not
//!   exactly the registered one (a path added, a query added, user information).
//! - AUTH-AS-PKCE: no code without an S256 challenge (none, or `plain`), and no token for a code
//!   without its verifier or with a wrong one; the right verifier gets a token (the control).
//! - AUTH-AS-RESOURCE (RFC 8707): a token requested for another resource is refused, or, if
//!   one is issued, this server refuses it; a token requested for this server is served (the
//!   control).
//!
//! The authorization code flow needs the endpoint to answer without a person: development
//! servers and SDK demo providers approve at once; one that shows a login page leaves the
//! flow's probes inconclusive, never passed.
//!
//! Oracle: a redirect (its `Location`) to a URI the harness never registered; a code or an
//! access token the server issued where it must refuse; a 2xx from the MCP endpoint for a token
//! issued for another resource. Refusals count only beside a control that was served, so a
//! server that refuses everything proves nothing. Only the target's own origin is contacted;
//! redirects are read, never followed. Cost: at most [`MAX_REGISTRATIONS`] + 2 registrations
//! and about 15 other requests.

use super::{Evidence, Family, Outcome, ProbeInfo, Run, Severity, Verdict};
use crate::connection::excerpt;
use base64::Engine;
use serde_json::{Value, json};
use std::time::Duration;

pub static AUTH_AS_METADATA: ProbeInfo = ProbeInfo {
    id: "AUTH-AS-METADATA",
    family: Family::AUTH,
    title: "the target's authorization server publishes metadata that matches its PRM and offers S256",
    severity: Severity::Medium,
    cwe: Some(346),
    enforces: "MCP authorization: authorization servers MUST provide RFC 8414 metadata (or OpenID discovery) whose issuer is the identifier the PRM names, and clients MUST refuse one without code_challenge_methods_supported",
    remediation: "Serve /.well-known/oauth-authorization-server with issuer exactly as listed in the PRM's authorization_servers, and code_challenge_methods_supported: [\"S256\"].",
};

pub static AUTH_AS_REGISTRATION: ProbeInfo = ProbeInfo {
    id: "AUTH-AS-REGISTRATION",
    family: Family::AUTH,
    title: "dynamic client registration refuses unsafe redirect URIs and is bounded",
    severity: Severity::Medium,
    cwe: Some(770),
    enforces: "MCP security best practices, confused deputy: validate registered redirect URIs; RFC 7591 section 5: open registration is a resource an attacker can exhaust, so bound it (a javascript: or data: redirect URI is never a client's)",
    remediation: "Accept only https and loopback http redirect URIs, bound their number and size, and rate-limit registrations per caller.",
};

pub static AUTH_AS_REDIRECT: ProbeInfo = ProbeInfo {
    id: "AUTH-AS-REDIRECT",
    family: Family::AUTH,
    title: "the authorization endpoint redirects only to exactly the registered redirect URI",
    severity: Severity::High,
    cwe: Some(601),
    enforces: "OAuth 2.1 / MCP authorization: authorization servers MUST compare redirect URIs with the registered ones by exact string matching, and must not redirect to an invalid one",
    remediation: "Compare redirect_uri with the registered values as exact strings (no prefix, no added path or query) and show an error page, not a redirect, when none matches.",
};

pub static AUTH_AS_PKCE: ProbeInfo = ProbeInfo {
    id: "AUTH-AS-PKCE",
    family: Family::AUTH,
    title: "codes need an S256 PKCE challenge and tokens need its verifier",
    severity: Severity::High,
    cwe: Some(345),
    enforces: "MCP authorization: PKCE is required, with S256; the token endpoint must verify code_verifier against the code's challenge",
    remediation: "Refuse authorization requests without code_challenge or with a method other than S256, and refuse a token request whose code_verifier does not hash to the challenge.",
};

pub static AUTH_AS_RESOURCE: ProbeInfo = ProbeInfo {
    id: "AUTH-AS-RESOURCE",
    family: Family::AUTH,
    title: "a token requested for another resource does not work on this server (RFC 8707)",
    severity: Severity::High,
    cwe: Some(863),
    enforces: "MCP authorization: clients send the resource parameter (RFC 8707); tokens are issued for, and accepted only by, the resource they were requested for",
    remediation: "Bind each token's audience to the requested resource (refuse unknown ones with invalid_target), and accept only tokens whose audience is this server.",
};

/// These probes, in report order.
pub static PROBES: &[&ProbeInfo] = &[
    &AUTH_AS_METADATA,
    &AUTH_AS_REGISTRATION,
    &AUTH_AS_REDIRECT,
    &AUTH_AS_PKCE,
    &AUTH_AS_RESOURCE,
];

/// Registrations in a row (after the harness's own) that AUTH-AS-REGISTRATION sends at most;
/// all of them accepted is the finding.
pub const MAX_REGISTRATIONS: usize = 50;
/// The most of a reply read.
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// The resource AUTH-AS-RESOURCE asks a token for: on loopback, never contacted.
pub const OTHER_RESOURCE: &str = "http://127.0.0.1:9/mcp-harness-other-resource";

/// One answer of the authorization server.
#[derive(Debug, Clone)]
pub struct AsReply {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl AsReply {
    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    fn shown(&self) -> String {
        match &self.location {
            Some(location) => format!("HTTP {} Location: {}", self.status, excerpt(location, 300)),
            None => format!("HTTP {} {}", self.status, excerpt(&self.body, 300)),
        }
    }

    /// Whether this is a redirect whose target starts with `uri`.
    pub fn redirects_to(&self, uri: &str) -> bool {
        (300..400).contains(&self.status)
            && self.location.as_deref().is_some_and(|l| l.starts_with(uri))
    }

    /// The value of `name` in the redirect's query.
    pub fn location_param(&self, name: &str) -> Option<String> {
        let location = url::Url::parse(self.location.as_deref()?).ok()?;
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The access token of a successful token response.
    pub fn access_token(&self) -> Option<String> {
        if !(200..300).contains(&self.status) {
            return None;
        }
        self.json()?
            .get("access_token")?
            .as_str()
            .map(str::to_owned)
    }
}

/// Requests to the target's origin only, redirects never followed.
struct AsHttp {
    client: reqwest::Client,
    origin: url::Origin,
    timeout: Duration,
    sent: usize,
}

impl AsHttp {
    fn new(origin: url::Origin, timeout: Duration) -> Option<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .ok()?;
        Some(Self {
            client,
            origin,
            timeout,
            sent: 0,
        })
    }

    fn on_origin(&self, url: &str) -> bool {
        url::Url::parse(url).is_ok_and(|u| u.origin() == self.origin)
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Result<AsReply, String> {
        self.sent += 1;
        let work = async {
            let mut response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                let room = MAX_REPLY_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room <= chunk.len() {
                    break;
                }
            }
            Ok(AsReply {
                status,
                location,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }

    async fn get(&mut self, url: &str) -> Result<AsReply, String> {
        if !self.on_origin(url) {
            return Err(format!("{url} is not on the target's origin"));
        }
        let request = self.client.get(url).header("accept", "application/json");
        self.send(request).await
    }

    async fn post_json(&mut self, url: &str, body: &Value) -> Result<AsReply, String> {
        if !self.on_origin(url) {
            return Err(format!("{url} is not on the target's origin"));
        }
        let request = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body.to_string());
        self.send(request).await
    }

    async fn post_form(&mut self, url: &str, pairs: &[(&str, &str)]) -> Result<AsReply, String> {
        if !self.on_origin(url) {
            return Err(format!("{url} is not on the target's origin"));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let request = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        self.send(request).await
    }
}

/// A PKCE verifier (43 base64url characters) and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    use sha2::Digest;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let verifier = b64.encode(rand::random::<[u8; 32]>());
    let challenge = b64.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The RFC 8414 metadata URLs for `issuer`, in the order MCP clients try them.
pub fn metadata_urls(issuer: &url::Url) -> Vec<String> {
    let origin = issuer.origin().ascii_serialization();
    let path = issuer.path().trim_end_matches('/');
    let mut urls = vec![format!(
        "{origin}/.well-known/oauth-authorization-server{path}"
    )];
    urls.push(format!("{origin}/.well-known/openid-configuration{path}"));
    if !path.is_empty() {
        urls.push(format!("{origin}{path}/.well-known/openid-configuration"));
    }
    urls
}

/// The verdict on the metadata `document` (served at `url`) of the authorization server the
/// PRM names `named`.
pub fn judge_metadata(named: &str, url: &str, document: &Value) -> Outcome {
    let info = &AUTH_AS_METADATA;
    let fail = |summary: String, oracle: &str| {
        Outcome::new(info, Verdict::Fail, summary.clone()).with_evidence(vec![Evidence {
            tool: None,
            point: None,
            request: format!("GET {url}"),
            reply: excerpt(&document.to_string(), 400),
            oracle: oracle.to_owned(),
        }])
    };
    let issuer = document.get("issuer").and_then(Value::as_str).unwrap_or("");
    let trim = |s: &str| s.trim_end_matches('/').to_owned();
    if trim(issuer) != trim(named) {
        return fail(
            format!(
                "the metadata's issuer {issuer:?} is not the authorization server the PRM names ({named:?})"
            ),
            "RFC 8414 section 3.3: the issuer must be identical to the identifier the metadata was looked up for",
        );
    }
    let methods = document
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array);
    if !methods.is_some_and(|m| m.iter().any(|v| v == "S256")) {
        return fail(
            "the metadata does not list S256 in code_challenge_methods_supported".to_owned(),
            "MCP authorization: without it, clients MUST refuse to proceed",
        );
    }
    let note = if issuer != named {
        " (they differ only in a trailing slash)"
    } else {
        ""
    };
    Outcome::new(
        info,
        Verdict::Pass,
        format!("{url} names the issuer the PRM names{note} and offers S256"),
    )
}

fn evidence(request: String, reply: &AsReply, oracle: &str) -> Evidence {
    Evidence {
        tool: None,
        point: None,
        request,
        reply: reply.shown(),
        oracle: oracle.to_owned(),
    }
}

/// Every probe of this module with one verdict.
fn every(verdict: Verdict, summary: &str) -> Vec<Outcome> {
    super::every(PROBES, verdict, summary)
}

/// What the authorization server offers, found from its metadata.
struct Endpoints {
    authorize: Option<String>,
    token: Option<String>,
    register: Option<String>,
}

/// A client the harness registered.
struct Registered {
    client_id: String,
    client_secret: Option<String>,
    /// The registration that was accepted.
    body: Value,
}

/// Everything a flow needs.
struct Flow {
    http: AsHttp,
    endpoints: Endpoints,
    client: Option<Registered>,
    callback: String,
    resource: String,
}

impl Flow {
    /// Sends an authorization request; `challenge` is (challenge, method) or none.
    async fn authorize(
        &mut self,
        redirect_uri: &str,
        challenge: Option<(&str, &str)>,
        resource: &str,
    ) -> Option<(String, Result<AsReply, String>)> {
        let endpoint = self.endpoints.authorize.clone()?;
        let client = self.client.as_ref()?;
        let mut url = url::Url::parse(&endpoint).ok()?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &client.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", &format!("{:016x}", rand::random::<u64>()))
                .append_pair("resource", resource);
            if let Some((challenge, method)) = challenge {
                query
                    .append_pair("code_challenge", challenge)
                    .append_pair("code_challenge_method", method);
            }
        }
        let reply = self.http.get(url.as_str()).await;
        Some((format!("GET {url}"), reply))
    }

    /// A code for a fresh S256 pair and `resource`, with its verifier; or why there is none.
    async fn code(&mut self, resource: &str) -> Result<(String, String), String> {
        let (verifier, challenge) = pkce_pair();
        let callback = self.callback.clone();
        let Some((_, reply)) = self
            .authorize(&callback, Some((&challenge, "S256")), resource)
            .await
        else {
            return Err("no authorization endpoint or client".into());
        };
        let reply = reply?;
        match reply.location_param("code") {
            Some(code) if reply.redirects_to(&callback) => Ok((code, verifier)),
            _ if reply.redirects_to(&callback) && reply.location_param("error").is_some() => {
                Err(format!(
                    "refused with error={}",
                    reply.location_param("error").unwrap_or_default()
                ))
            }
            _ => Err(format!(
                "the authorization endpoint sent no code to the registered redirect URI without a person ({})",
                reply.shown()
            )),
        }
    }

    /// Exchanges `code`, with `verifier` if given, for a token for `resource`.
    async fn token(
        &mut self,
        code: &str,
        verifier: Option<&str>,
        resource: &str,
    ) -> Option<(String, Result<AsReply, String>)> {
        let endpoint = self.endpoints.token.clone()?;
        let client = self.client.as_ref()?;
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.callback.as_str()),
            ("client_id", client.client_id.as_str()),
            ("resource", resource),
        ];
        if let Some(secret) = &client.client_secret {
            pairs.push(("client_secret", secret.as_str()));
        }
        if let Some(verifier) = verifier {
            pairs.push(("code_verifier", verifier));
        }
        let described = format!(
            "POST {endpoint} grant_type=authorization_code, {}",
            if verifier.is_some() {
                "a code_verifier"
            } else {
                "no code_verifier"
            }
        );
        let reply = self.http.post_form(&endpoint, &pairs).await;
        Some((described, reply))
    }
}

/// The AUTH-AS probes (an HTTP target).
pub async fn run(run: &mut Run<'_>) -> Vec<Outcome> {
    let Some(view) = run.http_view() else {
        return every(Verdict::NotApplicable, "not an HTTP target");
    };
    let Ok(target) = url::Url::parse(&view.url) else {
        return every(Verdict::NotApplicable, "the target URL does not parse");
    };
    let Some(mut http) = AsHttp::new(target.origin(), run.budget_timeout()) else {
        return every(Verdict::Inconclusive, "no HTTP client could be built");
    };
    // The protected resource metadata: RFC 9728's path-inserted URL, then the root one.
    let origin = target.origin().ascii_serialization();
    let path = target.path().trim_end_matches('/');
    let mut prm = None;
    for url in [
        format!("{origin}/.well-known/oauth-protected-resource{path}"),
        format!("{origin}/.well-known/oauth-protected-resource"),
    ] {
        if let Ok(reply) = http.get(&url).await
            && reply.status == 200
            && let Some(document) = reply.json()
        {
            prm = Some(document);
            break;
        }
    }
    let Some(prm) = prm else {
        return every(
            Verdict::NotApplicable,
            "the target publishes no protected resource metadata",
        );
    };
    let Some(named) = prm
        .get("authorization_servers")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return every(
            Verdict::NotApplicable,
            "the protected resource metadata names no authorization server",
        );
    };
    let Some(issuer) = url::Url::parse(&named)
        .ok()
        .filter(|u| u.origin() == target.origin())
    else {
        return every(
            Verdict::NotApplicable,
            &format!(
                "the authorization server {named} is not on the target's origin: not the target's own"
            ),
        );
    };
    let resource = prm
        .get("resource")
        .and_then(Value::as_str)
        .unwrap_or(&view.url)
        .to_owned();

    // AUTH-AS-METADATA
    let mut metadata = None;
    let mut answered = false;
    for url in metadata_urls(&issuer) {
        match http.get(&url).await {
            Ok(reply) => {
                answered = true;
                if reply.status == 200
                    && let Some(document) = reply.json().filter(Value::is_object)
                {
                    metadata = Some((url, document));
                    break;
                }
            }
            Err(_) => continue,
        }
    }
    let Some((metadata_url, document)) = metadata else {
        let mut outcomes = vec![if answered {
            Outcome::new(
                &AUTH_AS_METADATA,
                Verdict::Fail,
                format!("the authorization server {named} serves no RFC 8414 or OpenID metadata"),
            )
            .with_evidence(vec![Evidence {
                tool: None,
                point: None,
                request: format!("GET {}", metadata_urls(&issuer).join(", GET ")),
                reply: "no 200 JSON document".into(),
                oracle: "MCP authorization: authorization servers MUST provide at least one discovery mechanism".into(),
            }])
        } else {
            Outcome::new(
                &AUTH_AS_METADATA,
                Verdict::Inconclusive,
                "no answer to any metadata URL",
            )
        }];
        outcomes.extend(PROBES[1..].iter().map(|info| {
            Outcome::new(
                info,
                Verdict::Inconclusive,
                "no authorization server metadata to find its endpoints",
            )
        }));
        return outcomes;
    };
    let mut outcomes = vec![judge_metadata(&named, &metadata_url, &document)];
    let endpoint = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .filter(|url| http.on_origin(url))
            .map(str::to_owned)
    };
    let endpoints = Endpoints {
        authorize: endpoint("authorization_endpoint"),
        token: endpoint("token_endpoint"),
        register: endpoint("registration_endpoint"),
    };
    let callback_port = run
        .stage
        .listener
        .as_ref()
        .and_then(|l| url::Url::parse(&l.url()).ok()?.port())
        .unwrap_or(9);
    let callback = format!("http://127.0.0.1:{callback_port}/mcp-harness/callback");
    let mut flow = Flow {
        http,
        endpoints,
        client: None,
        callback,
        resource,
    };
    let registration = registration(&mut flow).await;
    let redirect = redirect(&mut flow).await;
    let (pkce, own_token) = pkce(&mut flow).await;
    let resource = resource_binding(run, &mut flow, own_token).await;
    // Last: the flood spends the registration budget the other probes needed one of.
    let registration = match registration {
        Ok(refused_unsafe) => bounded_registrations(&mut flow, refused_unsafe).await,
        Err(outcome) => outcome,
    };
    outcomes.extend([registration, redirect, pkce, resource]);
    outcomes
}

/// The registrations the harness offers for itself, in order: what MCP clients send (an
/// authorization server may insist on refresh_token beside authorization_code), then the
/// least RFC 7591 allows. The first accepted is also the one repeated to find the bound.
fn own_registrations(callback: &str) -> [Value; 2] {
    [
        json!({
            "redirect_uris": [callback],
            "client_name": "mcp-harness",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
        json!({"redirect_uris": [callback]}),
    ]
}

/// Registers the harness's client, then offers the unsafe redirect URIs. `Ok` carries what
/// the unsafe offers showed (for [`bounded_registrations`]); `Err` is the probe's verdict.
async fn registration(flow: &mut Flow) -> Result<Vec<Evidence>, Outcome> {
    let info = &AUTH_AS_REGISTRATION;
    let Some(endpoint) = flow.endpoints.register.clone() else {
        return Err(Outcome::new(
            info,
            Verdict::NotApplicable,
            "the authorization server offers no dynamic client registration on the target's origin",
        ));
    };
    let mut registered = None;
    let mut reply = Err(String::new());
    for body in own_registrations(&flow.callback) {
        reply = flow.http.post_json(&endpoint, &body).await;
        registered = reply.as_ref().ok().and_then(|r| {
            let document = r.json().filter(|_| (200..300).contains(&r.status))?;
            Some(Registered {
                client_id: document.get("client_id")?.as_str()?.to_owned(),
                client_secret: document
                    .get("client_secret")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                body: body.clone(),
            })
        });
        if registered.is_some() {
            break;
        }
    }
    let Some(registered) = registered else {
        let shown = match &reply {
            Ok(r) => r.shown(),
            Err(e) => e.clone(),
        };
        return Err(Outcome::new(
            info,
            Verdict::Inconclusive,
            format!(
                "the harness's own registration (a loopback redirect URI) was not accepted: {shown}"
            ),
        ));
    };
    flow.client = Some(registered);
    let mut accepted = Vec::new();
    for unsafe_uri in [
        "javascript:alert(document.domain)",
        "data:text/html,mcp-harness",
    ] {
        let body = json!({"redirect_uris": [unsafe_uri], "client_name": "mcp-harness unsafe"});
        if let Ok(reply) = flow.http.post_json(&endpoint, &body).await
            && (200..300).contains(&reply.status)
        {
            accepted.push(evidence(
                format!("POST {endpoint} redirect_uris [{unsafe_uri:?}]"),
                &reply,
                "a redirect URI that is never safe was registered",
            ));
        }
    }
    Ok(accepted)
}

/// AUTH-AS-REGISTRATION's second half: registrations in a row until one is refused.
async fn bounded_registrations(flow: &mut Flow, mut findings: Vec<Evidence>) -> Outcome {
    let info = &AUTH_AS_REGISTRATION;
    let endpoint = flow.endpoints.register.clone().unwrap_or_default();
    let body = flow
        .client
        .as_ref()
        .map(|c| c.body.clone())
        .unwrap_or_default();
    let mut accepted = 0;
    let mut refused = None;
    let started = std::time::Instant::now();
    for _ in 0..MAX_REGISTRATIONS {
        match flow.http.post_json(&endpoint, &body).await {
            Ok(reply) if (200..300).contains(&reply.status) => accepted += 1,
            Ok(reply) => {
                refused = Some(reply);
                break;
            }
            Err(_) => break,
        }
    }
    if refused.is_none() && accepted == MAX_REGISTRATIONS {
        findings.push(Evidence {
            tool: None,
            point: None,
            request: format!(
                "{MAX_REGISTRATIONS} registrations in a row from one client, in {} ms",
                started.elapsed().as_millis()
            ),
            reply: "every one 2xx".into(),
            oracle: "no bound on registrations: each is a client record the server keeps".into(),
        });
    }
    if !findings.is_empty() {
        return Outcome::new(
            info,
            Verdict::Fail,
            "dynamic client registration accepts what it must refuse",
        )
        .with_evidence(findings);
    }
    match refused {
        Some(reply) => Outcome::new(
            info,
            Verdict::Pass,
            format!(
                "javascript: and data: redirect URIs were refused, and after {} more registrations the next was refused ({})",
                accepted,
                reply.shown()
            ),
        ),
        None => Outcome::new(
            info,
            Verdict::Inconclusive,
            format!(
                "unsafe redirect URIs were refused; the registration after {accepted} got no answer"
            ),
        ),
    }
}

/// The redirect URI variants AUTH-AS-REDIRECT offers for `callback`: each would land the
/// browser somewhere the client did not register (another path, another query, another host
/// smuggled behind user information).
pub fn redirect_variants(callback: &str) -> Vec<(&'static str, String)> {
    let smuggled = url::Url::parse(callback)
        .ok()
        .map(|u| {
            let authority = format!(
                "{}:{}",
                u.host_str().unwrap_or_default(),
                u.port().unwrap_or(80)
            );
            format!(
                "{}://{authority}@mcp-harness-evil.invalid{}",
                u.scheme(),
                u.path()
            )
        })
        .unwrap_or_default();
    vec![
        ("a path added", format!("{callback}/mcp-harness-evil")),
        ("a query added", format!("{callback}?next=mcp-harness-evil")),
        ("another host behind user information", smuggled),
    ]
}

/// The query parameters an authorization server adds to a redirect (RFC 6749 4.1.2, RFC 9207).
const RESPONSE_PARAMETERS: &[&str] = &[
    "code",
    "state",
    "iss",
    "error",
    "error_description",
    "error_uri",
];

/// Whether a redirect to `location` lands somewhere `registered` does not name: another
/// scheme, host or path, or a query parameter the registered URI lacks besides the response's
/// own. A different port on a loopback host is the same place (RFC 8252 section 7.3 lets the
/// port vary there), and so is added user information on the same host.
pub fn lands_off(location: &str, registered: &str) -> bool {
    let (Ok(to), Ok(registered)) = (url::Url::parse(location), url::Url::parse(registered)) else {
        return true;
    };
    if to.scheme() != registered.scheme()
        || to.host_str() != registered.host_str()
        || to.path() != registered.path()
    {
        return true;
    }
    let loopback = matches!(
        registered.host_str(),
        Some("127.0.0.1" | "localhost" | "[::1]")
    );
    if !loopback && to.port_or_known_default() != registered.port_or_known_default() {
        return true;
    }
    let known: Vec<String> = registered
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    to.query_pairs().any(|(name, _)| {
        !RESPONSE_PARAMETERS.contains(&name.as_ref()) && !known.iter().any(|k| *k == name)
    })
}

async fn redirect(flow: &mut Flow) -> Outcome {
    let info = &AUTH_AS_REDIRECT;
    if flow.client.is_none() || flow.endpoints.authorize.is_none() {
        return Outcome::new(
            info,
            Verdict::Inconclusive,
            "no registered client or no authorization endpoint on the target's origin",
        );
    }
    let (_, challenge) = pkce_pair();
    let resource = flow.resource.clone();
    let callback = flow.callback.clone();
    let control = flow
        .authorize(&callback, Some((&challenge, "S256")), &resource)
        .await
        .and_then(|(_, r)| r.ok());
    let mut findings = Vec::new();
    let mut unanswered = 0;
    for (described, variant) in redirect_variants(&callback) {
        match flow
            .authorize(&variant, Some((&challenge, "S256")), &resource)
            .await
        {
            Some((request, Ok(reply))) => {
                if (300..400).contains(&reply.status)
                    && reply
                        .location
                        .as_deref()
                        .is_some_and(|location| lands_off(location, &callback))
                {
                    findings.push(evidence(
                        request,
                        &reply,
                        &format!("a redirect to a URI never registered ({described})"),
                    ));
                }
            }
            _ => unanswered += 1,
        }
    }
    if !findings.is_empty() {
        return Outcome::new(
            info,
            Verdict::Fail,
            "the authorization endpoint redirected to a redirect URI that is not the registered one",
        )
        .with_evidence(findings);
    }
    match control {
        Some(reply) if reply.redirects_to(&callback) && unanswered == 0 => Outcome::new(
            info,
            Verdict::Pass,
            "the registered redirect URI got a redirect; with a path or a query added, or another host behind user information, none landed elsewhere",
        ),
        Some(reply) => Outcome::new(
            info,
            Verdict::Inconclusive,
            format!(
                "the registered redirect URI itself got no redirect without a person ({}): the variants' refusals prove nothing",
                reply.shown()
            ),
        ),
        None => Outcome::new(
            info,
            Verdict::Inconclusive,
            "no answer from the authorization endpoint",
        ),
    }
}

/// AUTH-AS-PKCE, and the token the control got (for AUTH-AS-RESOURCE).
async fn pkce(flow: &mut Flow) -> (Outcome, Option<String>) {
    let info = &AUTH_AS_PKCE;
    if flow.client.is_none() || flow.endpoints.authorize.is_none() || flow.endpoints.token.is_none()
    {
        return (
            Outcome::new(
                info,
                Verdict::Inconclusive,
                "no registered client, or no authorization or token endpoint on the target's origin",
            ),
            None,
        );
    }
    let resource = flow.resource.clone();
    let callback = flow.callback.clone();
    let mut findings = Vec::new();
    // No code without an S256 challenge.
    let (plain_verifier, _) = pkce_pair();
    for (described, challenge) in [
        ("no code_challenge", None),
        (
            "code_challenge_method=plain",
            Some((plain_verifier.as_str(), "plain")),
        ),
    ] {
        if let Some((request, Ok(reply))) = flow.authorize(&callback, challenge, &resource).await
            && reply.redirects_to(&callback)
            && reply.location_param("code").is_some()
        {
            findings.push(evidence(
                request,
                &reply,
                &format!("a code was issued for an authorization request with {described}"),
            ));
        }
    }
    // No token without the verifier, or with a wrong one.
    let (wrong_verifier, _) = pkce_pair();
    let mut refusals = 0;
    for verifier in [None, Some(wrong_verifier.as_str())] {
        let Ok((code, _)) = flow.code(&resource).await else {
            continue;
        };
        if let Some((request, Ok(reply))) = flow.token(&code, verifier, &resource).await
            && reply.status < 500
        {
            if reply.access_token().is_some() {
                let described = if verifier.is_some() {
                    "a wrong code_verifier"
                } else {
                    "no code_verifier"
                };
                findings.push(evidence(
                    request,
                    &reply,
                    &format!("an access token was issued for a code with {described}"),
                ));
            } else {
                refusals += 1;
            }
        }
    }
    // The control: the right verifier gets a token.
    let control = match flow.code(&resource).await {
        Ok((code, verifier)) => match flow.token(&code, Some(&verifier), &resource).await {
            Some((_, Ok(reply))) => reply.access_token().ok_or_else(|| reply.shown()),
            Some((_, Err(error))) => Err(error),
            None => Err("no token endpoint".into()),
        },
        Err(why) => Err(why),
    };
    let outcome = if !findings.is_empty() {
        Outcome::new(info, Verdict::Fail, "PKCE is not enforced").with_evidence(findings)
    } else {
        match &control {
            Ok(_) if refusals == 2 => Outcome::new(
                info,
                Verdict::Pass,
                "no code without an S256 challenge, no token without the verifier or with a wrong one; the right verifier got a token",
            ),
            Ok(_) => Outcome::new(
                info,
                Verdict::Inconclusive,
                "the token requests without or with a wrong verifier got no answer",
            ),
            Err(why) => Outcome::new(
                info,
                Verdict::Inconclusive,
                format!(
                    "the control (a code and the right verifier) got no token, so refusals prove nothing: {why}"
                ),
            ),
        }
    };
    (outcome, control.ok())
}

/// AUTH-AS-RESOURCE: `own_token` is a token the server issued for its own resource.
async fn resource_binding(
    run: &mut Run<'_>,
    flow: &mut Flow,
    own_token: Option<String>,
) -> Outcome {
    let info = &AUTH_AS_RESOURCE;
    let Some(own_token) = own_token else {
        return Outcome::new(
            info,
            Verdict::Inconclusive,
            "no token for this server was issued (see AUTH-AS-PKCE), so nothing shows what a token is bound to",
        );
    };
    let drop = ["authorization", "mcp-session-id"];
    let served = |reply: &crate::connection::RawOutcome| {
        reply.status.is_some_and(|s| (200..300).contains(&s))
    };
    let own = format!("Bearer {own_token}");
    match run
        .http_raw(
            super::auth::INIT,
            &[("authorization", own.as_str())],
            &drop,
            None,
        )
        .await
    {
        Ok(reply) if served(&reply) => {}
        other => {
            let shown = match other {
                Ok(reply) => format!("HTTP {}", reply.status.unwrap_or(0)),
                Err(error) => error.to_string(),
            };
            return Outcome::new(
                info,
                Verdict::Inconclusive,
                format!(
                    "the token issued for this server was not served here ({shown}), so a refusal of another would prove nothing"
                ),
            );
        }
    }
    let code = match flow.code(OTHER_RESOURCE).await {
        Ok(code) => code,
        Err(why) if why.contains("error=server_error") || why.contains("HTTP 5") => {
            return Outcome::new(
                info,
                Verdict::Inconclusive,
                format!(
                    "the authorization endpoint failed for another resource: {}",
                    excerpt(&why, 200)
                ),
            );
        }
        Err(why) => {
            return Outcome::new(
                info,
                Verdict::Pass,
                format!(
                    "an authorization request for another resource ({OTHER_RESOURCE}) got no code: {}",
                    excerpt(&why, 200)
                ),
            );
        }
    };
    let (code, verifier) = code;
    let other = match flow.token(&code, Some(&verifier), OTHER_RESOURCE).await {
        Some((_, Ok(reply))) if reply.status >= 500 => {
            return Outcome::new(
                info,
                Verdict::Inconclusive,
                format!(
                    "the token endpoint failed for another resource ({}): a server error is not a refusal",
                    reply.shown()
                ),
            );
        }
        Some((_, Ok(reply))) => match reply.access_token() {
            Some(token) => token,
            None => {
                return Outcome::new(
                    info,
                    Verdict::Pass,
                    format!(
                        "a token request for another resource was refused ({})",
                        reply.shown()
                    ),
                );
            }
        },
        _ => {
            return Outcome::new(
                info,
                Verdict::Inconclusive,
                "no answer from the token endpoint",
            );
        }
    };
    let header = format!("Bearer {other}");
    match run
        .http_raw(super::auth::INIT, &[("authorization", header.as_str())], &drop, None)
        .await
    {
        Ok(reply) if served(&reply) => Outcome::new(
            info,
            Verdict::Fail,
            "a token issued for another resource was accepted by this server",
        )
        .with_evidence(vec![Evidence {
            tool: None,
            point: None,
            request: format!("a code and token requested with resource={OTHER_RESOURCE}, then POST initialize with that token"),
            reply: format!("HTTP {}", reply.status.unwrap_or(0)),
            oracle: "a 2xx from the MCP endpoint for a token requested for another resource".into(),
        }]),
        Ok(reply) => Outcome::new(
            info,
            Verdict::Pass,
            format!("a token requested for another resource was refused here (HTTP {})", reply.status.unwrap_or(0)),
        ),
        Err(error) => Outcome::new(info, Verdict::Inconclusive, format!("no answer: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_insert_the_well_known_path() {
        let issuer = url::Url::parse("http://127.0.0.1:8/tenant").unwrap();
        assert_eq!(
            metadata_urls(&issuer),
            [
                "http://127.0.0.1:8/.well-known/oauth-authorization-server/tenant",
                "http://127.0.0.1:8/.well-known/openid-configuration/tenant",
                "http://127.0.0.1:8/tenant/.well-known/openid-configuration",
            ]
        );
        let root = url::Url::parse("http://127.0.0.1:8").unwrap();
        assert_eq!(metadata_urls(&root).len(), 2);
    }

    #[test]
    fn metadata_must_name_the_prm_issuer_and_offer_s256() {
        let named = "http://127.0.0.1:8";
        let good = json!({"issuer": named, "code_challenge_methods_supported": ["S256"]});
        assert_eq!(judge_metadata(named, "u", &good).verdict, Verdict::Pass);
        let slash =
            json!({"issuer": "http://127.0.0.1:8/", "code_challenge_methods_supported": ["S256"]});
        assert_eq!(judge_metadata(named, "u", &slash).verdict, Verdict::Pass);
        let other =
            json!({"issuer": "http://localhost:8", "code_challenge_methods_supported": ["S256"]});
        assert_eq!(judge_metadata(named, "u", &other).verdict, Verdict::Fail);
        let plain = json!({"issuer": named, "code_challenge_methods_supported": ["plain"]});
        assert_eq!(judge_metadata(named, "u", &plain).verdict, Verdict::Fail);
        assert_eq!(
            judge_metadata(named, "u", &json!({"issuer": named})).verdict,
            Verdict::Fail
        );
    }

    #[test]
    fn a_redirect_counts_only_to_the_uri_it_names() {
        let callback = "http://127.0.0.1:8/cb";
        let reply = |status, location: &str| AsReply {
            status,
            location: Some(location.to_owned()),
            body: String::new(),
        };
        for (_, variant) in redirect_variants(callback) {
            assert!(!reply(302, &format!("{callback}?code=1")).redirects_to(&variant));
            let joined = if variant.contains('?') { '&' } else { '?' };
            assert!(
                lands_off(&format!("{variant}{joined}code=1"), callback),
                "{variant}"
            );
        }
        // The same place: the response's parameters, another loopback port, user information.
        assert!(!lands_off(
            "http://127.0.0.1:8/cb?code=1&state=s&iss=x",
            callback
        ));
        assert!(!lands_off("http://127.0.0.1:9999/cb?code=1", callback));
        assert!(!lands_off(
            "http://someone@127.0.0.1:8/cb?error=invalid_request",
            callback
        ));
        assert!(lands_off(
            "https://app.example:444/cb?code=1",
            "https://app.example/cb"
        ));
        assert!(!reply(200, callback).redirects_to(callback));
        assert_eq!(
            reply(302, "http://127.0.0.1:8/cb?code=abc&state=s")
                .location_param("code")
                .as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn the_pkce_pair_is_rfc_7636_s256() {
        let (verifier, challenge) = pkce_pair();
        assert_eq!(verifier.len(), 43);
        use sha2::Digest;
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        assert_eq!(challenge, expected);
    }
}
