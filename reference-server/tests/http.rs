//! The server over Streamable HTTP on a loopback port: both protocol eras through rmcp's client,
//! and every layer's refusal (401, 403, 404, 413, 429) checked with raw requests.

mod common;

use common::*;
use reference_server::guard::api_keys::key_digest;
use reference_server::guard::oauth::{DevSigner, unix_now};
use rmcp::ServiceExt;
use rmcp::model::ProtocolVersion;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

const ALICE: &str = "alice-key-0123456789abcdef";
const BOB: &str = "bob-key-0123456789abcdef";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A keys file with alice (every scope) and bob (no scope).
fn keys_file(stage: &Stage) -> String {
    let path = stage.path("keys.toml");
    std::fs::write(
        &path,
        format!(
            "[[principal]]\nname = \"alice\"\nkey_sha256 = \"{}\"\nscopes = [\"files:write\", \"admin\"]\n\n[[principal]]\nname = \"bob\"\nkey_sha256 = \"{}\"\nscopes = []\n",
            hex(&key_digest(ALICE.as_bytes())),
            hex(&key_digest(BOB.as_bytes()))
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// Starts the server over HTTP with the keys file, and `config` as its configuration file.
async fn keyed_server(stage: &Stage, config: Option<&str>) -> HttpServer {
    let keys = keys_file(stage);
    let mut args = vec!["--keys-file".to_owned(), keys];
    if let Some(toml) = config {
        args.push("--config".to_owned());
        args.push(stage.config(toml).to_string_lossy().into_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    http_server(&stage.root(), &args, &[]).await
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The JSON-RPC message in the body, whether sent as JSON or as SSE `data:` lines.
    fn message(&self) -> Value {
        if let Ok(value) = serde_json::from_str(&self.body) {
            return value;
        }
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("jsonrpc").is_some())
            .unwrap_or(Value::Null)
    }
}

async fn post(url: &str, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> Reply {
    try_post(url, headers, body).await.unwrap()
}

async fn try_post(
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> Result<Reply, reqwest::Error> {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body).send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn rmcp_client(url: &str, token: &str, version: ProtocolVersion) -> Client {
    let config =
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned());
    client_info(version)
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("the client connects")
}

#[tokio::test]
async fn both_protocol_eras_work_through_rmcp() {
    let stage = Stage::new();
    let server = keyed_server(
        &stage,
        Some("[rate_limit]\nburst = 200\nper_second = 100.0\n"),
    )
    .await;
    for version in [
        ProtocolVersion::V_2025_11_25,
        ProtocolVersion::V_2026_07_28,
        ProtocolVersion::V_2025_03_26,
    ] {
        let client = rmcp_client(&server.url, ALICE, version.clone()).await;
        let tools = client.list_all_tools().await.unwrap();
        assert_eq!(tools.len(), 11, "{version:?}");
        let read = client
            .call_tool(call("read_file", json!({"path": "hello.txt"})))
            .await
            .unwrap();
        assert_eq!(text(&read), "hello from the sandbox", "{version:?}");
        let rows = client
            .call_tool(call(
                "query_records",
                json!({"name_contains": "notes", "limit": 1}),
            ))
            .await
            .unwrap();
        assert!(text(&rows).contains("gamma notes"), "{version:?}");
        let written = client
            .call_tool(call(
                "write_file",
                json!({"path": "w.txt", "content": "by alice"}),
            ))
            .await
            .unwrap();
        assert_eq!(written.is_error, Some(false));
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn missing_bad_and_misplaced_credentials_get_401() {
    let stage = Stage::new();
    let server = keyed_server(&stage, None).await;
    let none = post(&server.url, &[], INIT).await;
    assert_eq!(none.status, 401);
    assert!(
        none.header("www-authenticate").starts_with("Bearer"),
        "{:?}",
        none.headers
    );
    let wrong = post(
        &server.url,
        &[("authorization", &bearer("wrong-key-0123456789abcdef"))],
        INIT,
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .header("www-authenticate")
            .contains("error=\"invalid_token\"")
    );
    for malformed in [
        "Basic YWxpY2U6eA==",
        "Bearer",
        "Bearer  two-spaces",
        "bearer\ttab",
    ] {
        assert_eq!(
            post(&server.url, &[("authorization", malformed)], INIT)
                .await
                .status,
            401,
            "{malformed}"
        );
    }
    let in_query = post(&format!("{}?access_token={ALICE}", server.url), &[], INIT).await;
    assert_eq!(
        in_query.status, 401,
        "a token in the query string must not authenticate"
    );
    let empty = post(&server.url, &[("authorization", "Bearer ")], INIT).await;
    assert_eq!(empty.status, 401);
    insta::assert_json_snapshot!(
        "http_401_body",
        serde_json::from_str::<Value>(&wrong.body).unwrap()
    );
    let good = post(&server.url, &[("authorization", &bearer(ALICE))], INIT).await;
    assert_eq!(good.status, 200);
    assert_eq!(
        good.message()["result"]["serverInfo"]["name"],
        "mcp-reference-server"
    );
}

#[tokio::test]
async fn foreign_origin_and_host_get_403() {
    let stage = Stage::new();
    let server = keyed_server(&stage, None).await;
    let auth = bearer(ALICE);
    let origin = post(
        &server.url,
        &[("authorization", &auth), ("origin", "http://evil.example")],
        INIT,
    )
    .await;
    assert_eq!(origin.status, 403);
    let host = post(
        &server.url,
        &[("authorization", &auth), ("host", "evil.example")],
        INIT,
    )
    .await;
    assert_eq!(host.status, 403);
    let rebinding = post(
        &server.url,
        &[
            ("authorization", &auth),
            ("host", "127.0.0.1.evil.example:80"),
        ],
        INIT,
    )
    .await;
    assert_eq!(rebinding.status, 403);
    // Without credentials the Origin check still answers first: no authentication oracle for
    // a foreign page.
    assert_eq!(
        post(&server.url, &[("origin", "http://evil.example")], INIT)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn an_oversized_body_gets_413_and_the_server_stays_up() {
    let stage = Stage::new();
    let server = keyed_server(&stage, Some("[limits]\nmax_body_bytes = 65536\n")).await;
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "a".repeat(200_000)
    );
    let reply = post(&server.url, &[("authorization", &bearer(ALICE))], huge).await;
    assert_eq!(reply.status, 413);
    // A chunked body with no Content-Length is cut off too: the server answers 413 and may
    // close the connection before the client has finished sending.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b' '; 10_000])).collect();
    let stream = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    match try_post(&server.url, &[("authorization", &bearer(ALICE))], stream).await {
        Ok(reply) => assert_eq!(reply.status, 413),
        Err(error) => assert!(error.is_request(), "{error:?}"),
    }
    assert_eq!(
        post(&server.url, &[("authorization", &bearer(ALICE))], INIT)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_flood_gets_429_with_retry_after_and_other_principals_are_served() {
    let stage = Stage::new();
    let server = keyed_server(&stage, Some("[rate_limit]\nburst = 3\nper_second = 0.2\n")).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        // A caller-chosen X-Forwarded-For must not give a fresh budget.
        let forwarded = format!("10.0.0.{}", statuses.len());
        let reply = post(
            &server.url,
            &[
                ("authorization", &bearer(ALICE)),
                ("x-forwarded-for", &forwarded),
            ],
            INIT,
        )
        .await;
        if reply.status == 429 {
            let retry: u64 = reply.header("retry-after").parse().unwrap();
            assert!((1..=5).contains(&retry), "Retry-After {retry}");
        }
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    assert_eq!(
        post(&server.url, &[("authorization", &bearer(BOB))], INIT)
            .await
            .status,
        200,
        "bob has his own budget"
    );
}

#[tokio::test]
async fn a_tool_outside_the_principals_scope_gets_403_insufficient_scope() {
    let stage = Stage::new();
    let server = keyed_server(&stage, None).await;
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"bob.txt","content":"x"}}}"#;
    let reply = post(
        &server.url,
        &[
            ("authorization", &bearer(BOB)),
            ("mcp-protocol-version", "2026-07-28"),
        ],
        call,
    )
    .await;
    assert_eq!(reply.status, 403);
    let challenge = reply.header("www-authenticate");
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"files:write\""),
        "{challenge}"
    );
    assert!(!stage.root().join("bob.txt").exists());
    // Through rmcp, bob can still use the tools that need no extra scope.
    let client = rmcp_client(&server.url, BOB, ProtocolVersion::V_2025_11_25).await;
    assert_eq!(
        text(
            &client
                .call_tool(common::call("read_file", json!({"path": "hello.txt"})))
                .await
                .unwrap()
        ),
        "hello from the sandbox"
    );
    assert!(
        client
            .call_tool(common::call("admin_stats", json!({})))
            .await
            .is_err(),
        "403 surfaces as a transport error"
    );
    client.cancel().await.ok();
}

#[tokio::test]
async fn a_session_is_bound_to_the_principal_that_opened_it() {
    let stage = Stage::new();
    let server = keyed_server(&stage, None).await;
    let opened = post(&server.url, &[("authorization", &bearer(ALICE))], INIT).await;
    let session = opened.header("mcp-session-id");
    assert!(
        session.len() >= 32 && session.bytes().all(|b| (0x21..=0x7e).contains(&b)),
        "{session}"
    );
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let stolen = post(
        &server.url,
        &[
            ("authorization", &bearer(BOB)),
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        list,
    )
    .await;
    assert_eq!(stolen.status, 404, "bob must not use alice's session");
    let invented = post(
        &server.url,
        &[
            ("authorization", &bearer(ALICE)),
            ("mcp-session-id", "00000000-0000-0000-0000-000000000000"),
        ],
        list,
    )
    .await;
    assert_eq!(invented.status, 404);
}

#[tokio::test]
async fn oauth_tokens_are_validated_and_metadata_is_published() {
    let stage = Stage::new();
    let signer = DevSigner::generate();
    let jwks = stage.path("jwks.json");
    std::fs::write(&jwks, signer.jwks().to_string()).unwrap();
    let issuer = "http://127.0.0.1/test-issuer";
    // The resource URI must be known before the port is: fix it with --public-url.
    let resource = "http://127.0.0.1/mcp";
    let config = stage.config(&format!(
        "[oauth]\nissuer = \"{issuer}\"\njwks = \"{}\"\n",
        jwks.display()
    ));
    let server = http_server(
        &stage.root(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--public-url",
            resource,
        ],
        &[],
    )
    .await;

    let metadata: Value = reqwest::get(format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        server.origin
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(metadata["resource"], resource);
    assert_eq!(metadata["authorization_servers"][0], issuer);
    assert_eq!(metadata["bearer_methods_supported"][0], "header");

    let unauthenticated = post(&server.url, &[], INIT).await;
    assert_eq!(unauthenticated.status, 401);
    assert!(unauthenticated.header("www-authenticate").contains(
        "resource_metadata=\"http://127.0.0.1/.well-known/oauth-protected-resource/mcp\""
    ));

    let now = unix_now();
    let claims = |overrides: Value| {
        let mut base = json!({"iss": issuer, "aud": resource, "sub": "carol", "scope": "admin", "nbf": now, "exp": now + 300});
        for (k, v) in overrides.as_object().unwrap() {
            base[k] = v.clone();
        }
        signer.sign(&base)
    };
    let good = claims(json!({}));
    assert_eq!(
        post(&server.url, &[("authorization", &bearer(&good))], INIT)
            .await
            .status,
        200
    );
    for (label, token) in [
        ("expired", claims(json!({"exp": now - 600}))),
        ("not yet valid", claims(json!({"nbf": now + 600}))),
        (
            "wrong audience",
            claims(json!({"aud": "http://127.0.0.1:9999/other"})),
        ),
        (
            "wrong issuer",
            claims(json!({"iss": "http://evil.example"})),
        ),
        (
            "signed by another key",
            DevSigner::generate()
                .sign(&json!({"iss": issuer, "aud": resource, "sub": "x", "exp": now + 300})),
        ),
    ] {
        let reply = post(&server.url, &[("authorization", &bearer(&token))], INIT).await;
        assert_eq!(reply.status, 401, "{label}");
        assert!(
            reply.header("www-authenticate").contains("invalid_token"),
            "{label}"
        );
    }
    // A valid token without files:write gets 403 insufficient_scope for write_file.
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"c.txt","content":"x"}}}"#;
    let reply = post(
        &server.url,
        &[
            ("authorization", &bearer(&good)),
            ("mcp-protocol-version", "2026-07-28"),
        ],
        call,
    )
    .await;
    assert_eq!(reply.status, 403);
    let client = rmcp_client(&server.url, &good, ProtocolVersion::V_2026_07_28).await;
    assert!(
        text(
            &client
                .call_tool(common::call("admin_stats", json!({})))
                .await
                .unwrap()
        )
        .contains("uptime_seconds")
    );
    client.cancel().await.ok();
}

#[tokio::test]
async fn the_server_refuses_to_start_open() {
    let stage = Stage::new();
    let output = tokio::process::Command::new(BINARY)
        .args(["--http", "127.0.0.1:0", "--root"])
        .arg(stage.root())
        .env_remove("MCP_SERVER_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MCP_SERVER_TOKEN"), "{stderr}");
    let short = tokio::process::Command::new(BINARY)
        .args(["--http", "127.0.0.1:0", "--root"])
        .arg(stage.root())
        .env("MCP_SERVER_TOKEN", "tiny-secret")
        .output()
        .await
        .unwrap();
    assert_eq!(short.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(
        stderr.contains("MCP_SERVER_TOKEN") && !stderr.contains("tiny-secret"),
        "{stderr}"
    );
    let dev_public = tokio::process::Command::new(BINARY)
        .args(["--http", "0.0.0.0:0", "--insecure-dev-no-auth", "--root"])
        .arg(stage.root())
        .output()
        .await
        .unwrap();
    assert_eq!(
        dev_public.status.code(),
        Some(2),
        "dev mode is refused off loopback"
    );
}

#[tokio::test]
async fn dev_token_mints_a_token_the_server_accepts() {
    let stage = Stage::new();
    let out = stage.path("dev-oauth");
    let issuer = "http://127.0.0.1/dev-issuer";
    let resource = "http://127.0.0.1/mcp";
    let mint = |scope: &'static str| {
        let out = out.clone();
        async move {
            let output = tokio::process::Command::new(BINARY)
                .args([
                    "dev-token",
                    "--scope",
                    scope,
                    "--issuer",
                    issuer,
                    "--resource",
                    resource,
                    "--out",
                ])
                .arg(&out)
                .output()
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap().trim().to_owned()
        }
    };
    let first = mint("admin").await;
    let second = mint("files:write").await;
    let config = stage.config(&format!(
        "[oauth]\nissuer = \"{issuer}\"\njwks = \"{}\"\n",
        out.join("jwks.json").display()
    ));
    let server = http_server(
        &stage.root(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--public-url",
            resource,
        ],
        &[],
    )
    .await;
    // The key is kept between runs, so the first token is still valid after the second run.
    for token in [&first, &second] {
        assert_eq!(
            post(&server.url, &[("authorization", &bearer(token))], INIT)
                .await
                .status,
            200
        );
    }
    let bad_scope = tokio::process::Command::new(BINARY)
        .args(["dev-token", "--scope", "root"])
        .output()
        .await
        .unwrap();
    assert_eq!(bad_scope.status.code(), Some(2));
}

/// The development authorization server: one whole authorization-code flow with PKCE and a
/// resource indicator, whose token the MCP endpoint accepts; and each rule it keeps, refused
/// by the rule's own error.
#[tokio::test]
async fn the_dev_authorization_server_runs_the_whole_flow_and_keeps_its_rules() {
    use reference_server::transport::http::dev_authorization::{
        REGISTRATION_BURST, s256_challenge,
    };
    let stage = Stage::new();
    let bind = format!("127.0.0.1:{}", free_port());
    let server = http_server_on(
        &bind,
        &stage.root(),
        &["--dev-authorization-server"],
        &[("MCP_SERVER_TOKEN", ALICE)],
    )
    .await;
    let origin = server.origin.clone();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The protected resource metadata names this origin; its own metadata agrees.
    let prm: Value = client
        .get(format!("{origin}/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["authorization_servers"], json!([origin]));
    let metadata: Value = client
        .get(format!("{origin}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], json!(origin));
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    let endpoint = |name: &str| metadata[name].as_str().unwrap().to_owned();

    let register = |body: Value| {
        let request = client.post(endpoint("registration_endpoint")).json(&body);
        async move { request.send().await.unwrap() }
    };
    let callback = "http://127.0.0.1:9/callback";
    let registered = register(json!({"redirect_uris": [callback], "client_name": "test"})).await;
    assert_eq!(registered.status(), 201);
    let client_id = registered.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = register(json!({"redirect_uris": ["javascript:alert(1)"]})).await;
    assert_eq!(refused.status(), 400);

    let verifier = "a".repeat(43);
    let challenge = s256_challenge(&verifier);
    let authorize = |redirect_uri: &str, resource: &str| {
        let mut url = url::Url::parse(&endpoint("authorization_endpoint")).unwrap();
        url.query_pairs_mut().extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "s1"),
            ("resource", resource),
        ]);
        let request = client.get(url);
        async move { request.send().await.unwrap() }
    };
    let location = |response: &reqwest::Response| {
        url::Url::parse(
            response
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap())
                .unwrap_or("http://none/"),
        )
        .unwrap()
    };
    let param = |url: &url::Url, name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let code_for = |resource: &'static str| {
        let authorize = &authorize;
        async move {
            let response = authorize(callback, resource).await;
            assert_eq!(response.status(), 302);
            let to = location(&response);
            assert!(to.as_str().starts_with(callback), "{to}");
            assert_eq!(param(&to, "state").as_deref(), Some("s1"));
            param(&to, "code").expect("a code")
        }
    };
    let resource: &'static str = Box::leak(server.url.clone().into_boxed_str());
    let token = |code: String, code_verifier: Option<String>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", callback.to_owned()),
            ("client_id", client_id.clone()),
            ("resource", resource.to_owned()),
        ];
        if let Some(v) = code_verifier {
            form.push(("code_verifier", v));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = client
            .post(endpoint("token_endpoint"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        async move { request.send().await.unwrap() }
    };

    // Redirect URIs are matched exactly: a variant gets a page, never a redirect.
    for variant in [
        "http://127.0.0.1:9/callback/evil",
        "http://127.0.0.1:9/callback?next=evil",
        "http://evil@127.0.0.1:9/callback",
    ] {
        let response = authorize(variant, resource).await;
        assert_eq!(response.status(), 400, "{variant}");
        assert!(response.headers().get("location").is_none());
    }
    // PKCE: no verifier, or a wrong one, gets invalid_grant; the right one gets a token.
    let missing = token(code_for(resource).await, None).await;
    assert_eq!(missing.status(), 400);
    let wrong = token(code_for(resource).await, Some("b".repeat(43))).await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let code = code_for(resource).await;
    let issued = token(code.clone(), Some(verifier.clone())).await;
    assert_eq!(issued.status(), 200);
    assert_eq!(issued.headers()["cache-control"], "no-store");
    let access_token = issued.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A code is used once.
    assert_eq!(token(code, Some(verifier.clone())).await.status(), 400);
    // The token works on the MCP endpoint.
    let served = post(
        &server.url,
        &[("authorization", &bearer(&access_token))],
        INIT,
    )
    .await;
    assert_eq!(served.status, 200);
    // RFC 8707: no token for another resource.
    let other = authorize(callback, "http://127.0.0.1:1/other").await;
    assert_eq!(
        param(&location(&other), "error").as_deref(),
        Some("invalid_target")
    );
    // Registrations are bounded: the burst (one spent above, one refused before counting) and
    // then 429.
    let mut statuses = Vec::new();
    for _ in 0..REGISTRATION_BURST {
        statuses.push(
            register(json!({"redirect_uris": [callback]}))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        REGISTRATION_BURST as usize - 1
    );
    assert_eq!(statuses.last(), Some(&429));
}

#[tokio::test]
async fn the_dev_authorization_server_is_refused_off_loopback_or_without_a_fixed_port() {
    let stage = Stage::new();
    let output = tokio::process::Command::new(BINARY)
        .args([
            "--http",
            "127.0.0.1:0",
            "--dev-authorization-server",
            "--root",
        ])
        .arg(stage.root())
        .env("MCP_SERVER_TOKEN", ALICE)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("fixed port"));
}
