//! `flawed-server --flaw NAME [reference server flags]`: the reference server with exactly one
//! guard swapped for a flawed twin. It exists only so that the harness's kill matrix can prove
//! each probe catches the mistake it is meant to catch. NEVER deploy it.
//!
//! Each flaw reproduces a real mistake faithfully, most of them from the seed document's
//! snippets; everything else is the reference server unchanged.

use axum::response::IntoResponse;
use clap::ValueEnum;
use reference_server::tools::{ReferenceServer, ServerState};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
    CustomResult, ErrorCode, ListToolsResult, PaginatedRequestParams, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// The flaws, named as in DESIGN.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Flaw {
    /// read_file checks containment with a string prefix (`/data` admits `/data_evil`).
    PathPrefix,
    /// read_file checks the path lexically, then follows symlinks out.
    PathSymlink,
    /// read_file removes `../` once (`....//` becomes `../`).
    FilenameStrip,
    /// query_records concatenates SQL behind a keyword blocklist.
    SqlConcat,
    /// file_history runs git through `sh -c` with the path interpolated.
    CmdShell,
    /// file_history passes the path to git without `--` (an option if it starts with `-`).
    ArgInjection,
    /// fetch_url takes the host from `netloc.split(':')[0]` (fooled by userinfo).
    UrlUserinfo,
    /// fetch_url refuses only URLs containing "localhost" or "127.0.0.1".
    UrlDenylist,
    /// Tool errors carry the raw error, the location and a backtrace.
    LeakDetails,
    /// Tool errors carry the database connection string.
    LeakConfig,
    /// Every tool call prints a line to stdout.
    StdoutNoise,
    /// Unknown methods and malformed requests get -32603 instead of -32601/-32602.
    WrongErrorCodes,
    /// HTTP: the Origin header is never checked (stripped before the reference check sees it).
    OriginUnchecked,
    /// HTTP: session ids are a counter (`session-1`, `session-2`, ...).
    SessionPredictable,
    /// read_file joins the path to the root with no check at all.
    PathUnchecked,
    /// read_file refuses `..` in the raw path, then percent-decodes it.
    PathDecode,
    /// write_file joins the path to the root with no check at all.
    WriteUnchecked,
    /// create_directory normalizes the path and checks it with a string prefix (the seed's
    /// `abspath(join(base, p)).startswith(base)`): `/data` admits `/data_evil/new`.
    MkdirPrefix,
    /// file_info joins the path to the root with no check, reads the file and answers only its
    /// size, line count and digest: an escape whose reply carries nothing of the file.
    InfoUnchecked,
    /// fetch_url fetches any http(s) URL.
    SsrfOpen,
    /// query_records reports the database's own error text (and builds its SQL by hand behind
    /// a blocklist that also stops UNION and SELECT).
    LeakDbError,
    /// HTTP: the Host header is never checked (replaced before the reference check sees it).
    HostUnchecked,
    /// HTTP: a token in the query string (`?access_token=`, `?token=`) authenticates.
    AuthQueryToken,
    /// HTTP: the configured key is empty, so an empty bearer token matches it (the seed's
    /// `compare_digest(token, os.getenv(...))` with the variable set to "").
    AuthEmptyKey,
    /// HTTP: a request without credentials is served (authentication only checks what is sent).
    AuthNone,
    /// HTTP: a 401 carries no WWW-Authenticate challenge.
    AuthNoChallenge,
    /// HTTP (OAuth): the challenge advertises `resource_metadata`, but the document is never
    /// routed: every `/.well-known/oauth-protected-resource` path answers 404, so a client
    /// cannot discover the authorization server.
    MetadataUnserved,
    /// HTTP: the token is compared byte by byte and the check stops at the first wrong byte
    /// (each byte made slow enough to see on loopback; a plain `==` leaks the same way, only
    /// in smaller steps).
    AuthEarlyExit,
    /// No rate limit: the reference limiter is configured out of the way.
    RateNone,
    /// HTTP: the rate limit is keyed on X-Forwarded-For when present (a caller resets it by
    /// sending a new address), instead of on the principal.
    RateClientId,
    /// HTTP: one bucket for the whole server: one principal's flood locks out every other.
    RateGlobal,
    /// No request size limit: bodies and stdio lines of any size are read whole.
    NoSizeLimit,
    /// HTTP: a session id is taken as proof of identity: whoever presents it acts as the
    /// principal that opened the session.
    SessionUnbound,
    /// HTTP (OAuth): a JWT is decoded without verifying its signature; an unexpired one is
    /// accepted.
    JwtUnverified,
    /// HTTP (OAuth): a JWT's signature, issuer and lifetime are verified, its audience is not.
    JwtNoAudience,
    /// HTTP: any valid key from the keys file runs with every scope (scopes are never checked).
    ScopeUnchecked,
    /// Tool calls are limited per distinct arguments (caller-chosen data) in a table without a
    /// cap: every new value adds an entry that is never removed.
    RateUnboundedKeys,
    /// The seed's limiter: an extra tool, `service_status`, takes a `client_id` argument and
    /// its calls are limited per `client_id`: a caller resets its limit by naming itself anew.
    RateClientArg,
    /// Tool calls are limited (20 at once, 20 per second) by a limiter that reads the bucket,
    /// awaits its store ([`RACY_STORE_DELAY`]), then writes back what it read minus one: one
    /// by one the limit holds; calls that arrive together all read the same bucket and all pass.
    RateRace,
    /// The seed's API key check: an extra tool, `private_status`, takes the key as an
    /// `api_key` argument and compares it byte by byte, stopping at the first wrong byte
    /// ([`ARGUMENT_KEY_BYTE_COST`] per byte, so the leak shows through a stdio pipe).
    KeyArgumentEarlyExit,
}

/// The key the key-argument-early-exit twin's `private_status` tool expects.
pub const ARGUMENT_KEY: &str = "flawed-argument-key-0123456789abcdef";
/// What that twin's comparison spends on each matching byte.
const ARGUMENT_KEY_BYTE_COST: std::time::Duration = std::time::Duration::from_micros(1);

impl Flaw {
    /// The configuration section and settings the twin overrides, if any: the reference
    /// limit is lifted out of the way, and the twin limits wrongly in its own layer or not at
    /// all.
    fn lifted_settings(self) -> Option<(&'static str, toml::Table)> {
        let mut settings = toml::Table::new();
        match self {
            Flaw::RateNone
            | Flaw::RateClientId
            | Flaw::RateGlobal
            | Flaw::RateUnboundedKeys
            | Flaw::RateClientArg
            | Flaw::RateRace => {
                settings.insert("burst".into(), toml::Value::Integer(1_000_000));
                settings.insert("per_second".into(), toml::Value::Float(1_000_000.0));
                Some(("rate_limit", settings))
            }
            Flaw::NoSizeLimit => {
                settings.insert("max_body_bytes".into(), toml::Value::Integer(1 << 30));
                settings.insert("max_string_bytes".into(), toml::Value::Integer(1 << 30));
                Some(("limits", settings))
            }
            _ => None,
        }
    }
}

#[derive(Clone)]
struct FlawedServer {
    inner: ReferenceServer,
    state: Arc<ServerState>,
    flaw: Flaw,
    /// The rate-unbounded-keys twin's table: calls per distinct arguments, never pruned.
    calls_by_arguments: Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
    /// The rate-client-arg twin's limiter, keyed on the `client_id` argument.
    client_arg_limiter: Arc<reference_server::guard::rate_limit::RateLimiter<String>>,
    /// The rate-race twin's limiter.
    racy_limiter: Arc<RacyLimiter>,
}

/// What the rate-race twin's limiter spends between reading its bucket and writing it back,
/// as a round trip to a shared store (Redis, a database) would.
const RACY_STORE_DELAY: std::time::Duration = std::time::Duration::from_millis(2);

/// A token bucket (burst 20, 20 per second) kept as a read-modify-write with an await in the
/// middle: the lost update of a limiter whose check and count are separate store calls.
struct RacyLimiter {
    /// Tokens left and when they were counted.
    bucket: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl RacyLimiter {
    const BURST: f64 = 20.0;
    const PER_SECOND: f64 = 20.0;

    fn new() -> RacyLimiter {
        RacyLimiter {
            bucket: std::sync::Mutex::new((Self::BURST, std::time::Instant::now())),
        }
    }

    async fn admit(&self) -> bool {
        let now = std::time::Instant::now();
        let read = {
            let bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
            let elapsed = now.duration_since(bucket.1).as_secs_f64();
            (bucket.0 + elapsed * Self::PER_SECOND).min(Self::BURST)
        };
        if read < 1.0 {
            return false;
        }
        tokio::time::sleep(RACY_STORE_DELAY).await;
        *self.bucket.lock().unwrap_or_else(|p| p.into_inner()) = (read - 1.0, now);
        true
    }
}

/// A twin's extra tool with one required string argument.
fn one_argument_tool(
    name: &'static str,
    description: &'static str,
    argument: &str,
    argument_description: &str,
) -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {argument: {"type": "string", "description": argument_description}},
        "required": [argument],
    });
    let serde_json::Value::Object(schema) = schema else {
        unreachable!("a JSON object literal")
    };
    Tool::new(name, description, schema)
}

/// The key-argument-early-exit twin's extra tool.
fn private_status_tool() -> Tool {
    one_argument_tool(
        "private_status",
        "Reports private status; needs an API key.",
        "api_key",
        "Your API key",
    )
}

/// The rate-client-arg twin's extra tool.
fn service_status_tool() -> Tool {
    one_argument_tool(
        "service_status",
        "Reports whether the service is up. Rate limited per client_id.",
        "client_id",
        "Who is asking",
    )
}

fn text(result: &str) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(result.to_owned())])
}

fn error(result: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(result.to_owned())])
}

fn argument<'a>(request: &'a CallToolRequestParams, name: &str) -> Option<&'a str> {
    request.arguments.as_ref()?.get(name)?.as_str()
}

impl FlawedServer {
    /// The flawed implementation of a tool, when the active flaw swaps its guard.
    async fn flawed_call(&self, request: &CallToolRequestParams) -> Option<CallToolResult> {
        let root = &self.state.root;
        match (self.flaw, request.name.as_ref()) {
            (Flaw::PathPrefix, "read_file") => {
                let path = argument(request, "path")?;
                // The seed: (base / requested).resolve(), then str.startswith(base).
                let Ok(resolved) = std::fs::canonicalize(root.join(path)) else {
                    return Some(error("File not found"));
                };
                if !resolved
                    .to_string_lossy()
                    .starts_with(&*root.to_string_lossy())
                {
                    return Some(error("Path traversal detected"));
                }
                Some(read_text(&resolved))
            }
            (Flaw::PathSymlink, "read_file") => {
                let path = argument(request, "path")?;
                if path.contains("..") || path.starts_with('/') {
                    return Some(error("Invalid path"));
                }
                Some(read_text(&root.join(path)))
            }
            (Flaw::FilenameStrip, "read_file") => {
                let path = argument(request, "path")?;
                if path.starts_with('/') {
                    return Some(error("Invalid path"));
                }
                Some(read_text(&root.join(path.replace("../", ""))))
            }
            (Flaw::PathUnchecked, "read_file") => {
                let path = argument(request, "path")?;
                Some(read_text(&root.join(path)))
            }
            (Flaw::PathDecode, "read_file") => {
                let path = argument(request, "path")?;
                if path.contains("..") || path.starts_with('/') {
                    return Some(error("Invalid path"));
                }
                Some(read_text(&root.join(percent_decode(path))))
            }
            (Flaw::WriteUnchecked, "write_file") => {
                let path = argument(request, "path")?;
                let content = argument(request, "content").unwrap_or_default();
                Some(match std::fs::write(root.join(path), content) {
                    Ok(()) => text("written"),
                    Err(_) => error("write failed"),
                })
            }
            (Flaw::MkdirPrefix, "create_directory") => {
                let path = argument(request, "path")?;
                let resolved = normalize(&root.join(path));
                if !resolved
                    .to_string_lossy()
                    .starts_with(&*root.to_string_lossy())
                {
                    return Some(error("Path traversal detected"));
                }
                Some(match std::fs::create_dir(&resolved) {
                    Ok(()) => text("created"),
                    Err(_) => error("could not create the directory"),
                })
            }
            (Flaw::InfoUnchecked, "file_info") => {
                let path = argument(request, "path")?;
                Some(match std::fs::read(root.join(path)) {
                    Ok(bytes) => text(&reference_server::tools::file_summary(&bytes).to_string()),
                    Err(_) => error("File not found"),
                })
            }
            (Flaw::SsrfOpen, "fetch_url") => {
                let url = argument(request, "url")?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Some(error("only http(s) URLs"));
                }
                Some(fetch(url).await)
            }
            (Flaw::LeakDbError, "query_records") => {
                let needle = argument(request, "name_contains")?;
                Some(sql_with_raw_errors(&self.state.database, needle))
            }
            (Flaw::SqlConcat, "query_records") => {
                let needle = argument(request, "name_contains")?;
                Some(sql_concat(&self.state.database, needle))
            }
            (Flaw::CmdShell, "file_history") => {
                let path = argument(request, "path").unwrap_or(".");
                let script = format!("git log --max-count=5 --format='%h %s' -- \"{path}\"");
                let output = tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(script)
                    .current_dir(root)
                    .output()
                    .await;
                Some(program_result(output))
            }
            (Flaw::ArgInjection, "file_history") => {
                let path = argument(request, "path").unwrap_or(".");
                let output = tokio::process::Command::new("git")
                    .args(["log", "--max-count=5", "--format=%h %s", path])
                    .current_dir(root)
                    .output()
                    .await;
                Some(program_result(output))
            }
            (Flaw::UrlUserinfo, "fetch_url") => {
                let url = argument(request, "url")?;
                // The seed: urlparse(url).netloc, lower-cased, split(':')[0], in the allowlist.
                let netloc = url
                    .split_once("://")
                    .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default())
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let domain = netloc.split(':').next().unwrap_or_default();
                if domain != "example.com" {
                    return Some(error(&format!("URL not in allowed domains: {url}")));
                }
                Some(fetch(url).await)
            }
            (Flaw::UrlDenylist, "fetch_url") => {
                let url = argument(request, "url")?;
                if url.contains("localhost") || url.contains("127.0.0.1") {
                    return Some(error("Access to local addresses is not allowed"));
                }
                Some(fetch(url).await)
            }
            _ => None,
        }
    }

    /// Post-processing of tool errors, for the flaws that swap the public-error guard.
    #[track_caller]
    fn decorate_error(&self, mut result: CallToolResult) -> CallToolResult {
        let extra = match self.flaw {
            Flaw::LeakDetails => {
                let location = std::panic::Location::caller();
                format!(
                    "\nthread 'tokio-runtime-worker' panicked at {location}\n{}",
                    std::backtrace::Backtrace::force_capture()
                )
            }
            Flaw::LeakConfig => {
                let url = std::env::var("DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://mcp_app:s3cret-demo@127.0.0.1:5432/app".into());
                format!(" (storage: {url})")
            }
            _ => return result,
        };
        if let Some(block) = result.content.first_mut()
            && let Some(text) = block.as_text()
        {
            *block = ContentBlock::text(format!("{}{extra}", text.text));
        }
        result
    }
}

/// `..` and `.` removed lexically, as Python's `os.path.abspath` does (symlinks untouched).
fn normalize(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn read_text(path: &Path) -> CallToolResult {
    match std::fs::read_to_string(path) {
        Ok(content) => text(&content),
        Err(_) => error("File not found"),
    }
}

fn program_result(output: std::io::Result<std::process::Output>) -> CallToolResult {
    match output {
        Ok(output) => text(&String::from_utf8_lossy(&output.stdout)),
        Err(_) => error("git failed"),
    }
}

async fn fetch(url: &str) -> CallToolResult {
    reference_server::guard::egress::ensure_crypto_provider();
    let Ok(client) = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    else {
        return error("client");
    };
    match client.get(url).send().await {
        Ok(response) => text(&response.text().await.unwrap_or_default()),
        Err(_) => error("fetch failed"),
    }
}

/// Decodes `%XX` escapes (once), as a web framework would before the handler sees the value.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(value) = u8::from_str_radix(hex, 16)
        {
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SQL built by hand behind a broad blocklist, with the database's error text returned.
fn sql_with_raw_errors(database: &Path, needle: &str) -> CallToolResult {
    let upper = needle.to_uppercase();
    for keyword in [
        "UNION", "SELECT", "DROP", "DELETE", "UPDATE", "INSERT", "ALTER", "CREATE", "--",
    ] {
        if upper.contains(keyword) {
            return error(&format!("Dangerous SQL keyword '{keyword}' detected"));
        }
    }
    let Ok(connection) =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return error("database unavailable");
    };
    let sql = format!("SELECT name FROM records WHERE name LIKE '%{needle}%' LIMIT 20");
    let names = connection.prepare(&sql).and_then(|mut statement| {
        statement
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()
    });
    match names {
        Ok(names) => text(&names.join("\n")),
        Err(db_error) => error(&format!("query failed: {db_error}")),
    }
}

fn sql_concat(database: &Path, needle: &str) -> CallToolResult {
    // The seed's sanitize_sql_query: a keyword blocklist, then the value spliced into SQL.
    let upper = needle.to_uppercase();
    for keyword in ["DROP", "DELETE", "UPDATE", "INSERT", "ALTER", "CREATE"] {
        if upper.contains(keyword) {
            return error(&format!("Dangerous SQL keyword '{keyword}' detected"));
        }
    }
    let Ok(connection) =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return error("database unavailable");
    };
    let sql =
        format!("SELECT id, name, category FROM records WHERE name LIKE '%{needle}%' LIMIT 20");
    let rows = connection.prepare(&sql).and_then(|mut statement| {
        statement
            .query_map([], |row| Ok(json!({"id": row.get::<_, rusqlite::types::Value>(0).ok().map(|v| format!("{v:?}")), "name": row.get::<_, String>(1).unwrap_or_default(), "category": row.get::<_, String>(2).unwrap_or_default()})))?
            .collect::<Result<Vec<_>, _>>()
    });
    match rows {
        Ok(rows) => text(&serde_json::to_string_pretty(&rows).unwrap_or_default()),
        Err(_) => error("query failed"),
    }
}

impl ServerHandler for FlawedServer {
    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = self.inner.list_tools(request, context).await?;
        if self.flaw == Flaw::RateClientArg {
            tools.tools.push(service_status_tool());
        }
        if self.flaw == Flaw::KeyArgumentEarlyExit {
            tools.tools.push(private_status_tool());
        }
        Ok(tools)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        if self.flaw == Flaw::RateClientArg && name == "service_status" {
            return Some(service_status_tool());
        }
        if self.flaw == Flaw::KeyArgumentEarlyExit && name == "private_status" {
            return Some(private_status_tool());
        }
        self.inner.get_tool(name)
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        if self.flaw == Flaw::WrongErrorCodes {
            return Err(ErrorData::new(
                ErrorCode::INTERNAL_ERROR,
                format!("cannot handle {}", request.method),
                None,
            ));
        }
        self.inner.on_custom_request(request, context).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.flaw == Flaw::StdoutNoise {
            // Straight to fd 1, as a stray print or a chatty library would.
            println!("[flawed-server] handling {}", request.name);
        }
        if self.flaw == Flaw::WrongErrorCodes && self.inner.get_tool(&request.name).is_none() {
            return Err(ErrorData::new(
                ErrorCode::INTERNAL_ERROR,
                "tool failed",
                None,
            ));
        }
        if self.flaw == Flaw::RateUnboundedKeys {
            let key = serde_json::to_string(&request.arguments).unwrap_or_default();
            let mut table = self
                .calls_by_arguments
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let count = table.entry(key).or_insert(0);
            *count += 1;
            if *count > 20 {
                return Err(ErrorData::new(
                    ErrorCode(reference_server::tools::RATE_LIMITED_CODE),
                    "rate limit exceeded",
                    None,
                ));
            }
        }
        if self.flaw == Flaw::RateRace && !self.racy_limiter.admit().await {
            return Err(ErrorData::new(
                ErrorCode(reference_server::tools::RATE_LIMITED_CODE),
                "rate limit exceeded",
                None,
            ));
        }
        if self.flaw == Flaw::KeyArgumentEarlyExit && request.name == "private_status" {
            // The seed: verify_api_key(api_key) with a comparison that stops at the first
            // difference.
            let presented = argument(&request, "api_key").unwrap_or_default();
            let valid = early_exit_equal_costing(
                presented.as_bytes(),
                ARGUMENT_KEY.as_bytes(),
                ARGUMENT_KEY_BYTE_COST,
            );
            return Ok(if valid {
                text("status: private and fine")
            } else {
                error("Invalid API key")
            }
            .into());
        }
        if self.flaw == Flaw::RateClientArg && request.name == "service_status" {
            // The seed: check_rate_limit(client_id) with the caller's own word for who it is.
            let client_id = argument(&request, "client_id")
                .unwrap_or_default()
                .to_owned();
            return Ok(match self.client_arg_limiter.check(&client_id) {
                Ok(()) => text("status: up"),
                Err(_) => error("Rate limit exceeded. Try again later."),
            }
            .into());
        }
        if let Some(result) = self.flawed_call(&request).await {
            return Ok(result.into());
        }
        let response = self.inner.call_tool(request, context).await?;
        Ok(match response {
            CallToolResponse::Complete(result) if result.is_error == Some(true) => {
                self.decorate_error(result).into()
            }
            other => other,
        })
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let Some(position) = args.iter().position(|a| a == "--flaw") else {
        eprintln!(
            "flawed-server: --flaw NAME is required; names: {}",
            Flaw::value_variants()
                .iter()
                .filter_map(|f| f.to_possible_value())
                .map(|v| v.get_name().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::from(2);
    };
    let Some(name) = args.get(position + 1).cloned() else {
        eprintln!("flawed-server: --flaw needs a name");
        return ExitCode::from(2);
    };
    let Ok(flaw) = Flaw::from_str(&name, true) else {
        eprintln!("flawed-server: unknown flaw {name:?}");
        return ExitCode::from(2);
    };
    args.drain(position..=position + 1);
    let oauth_settings = match flaw {
        Flaw::JwtUnverified | Flaw::JwtNoAudience => match oauth_settings(&args) {
            Ok(settings) => Some(settings),
            Err(error) => {
                eprintln!("flawed-server: the {name} flaw needs an [oauth] section: {error}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let keys_file_digests = if flaw == Flaw::ScopeUnchecked {
        match keys_file_digests(&args) {
            Ok(digests) => digests,
            Err(error) => {
                eprintln!("flawed-server: the {name} flaw needs a keys_file: {error}");
                return ExitCode::from(2);
            }
        }
    } else {
        Vec::new()
    };
    // Kept alive until the server exits: the config file with the reference limit lifted.
    let _lifted_config = match flaw.lifted_settings() {
        Some((section, settings)) => match lift_setting(&mut args, section, settings) {
            Ok(file) => Some(file),
            Err(error) => {
                eprintln!("flawed-server: cannot lift the {section} setting: {error}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    eprintln!("flawed-server: running with the {name} flaw; this server is deliberately insecure");
    reference_server::cli::run_with(
        args,
        move |inner| {
            let state = inner.state().clone();
            FlawedServer {
                inner,
                state,
                flaw,
                calls_by_arguments: Default::default(),
                client_arg_limiter: Arc::new(twin_limiter()),
                racy_limiter: Arc::new(RacyLimiter::new()),
            }
        },
        move |router| match flaw {
            Flaw::OriginUnchecked => router.layer(axum::middleware::from_fn(strip_origin)),
            Flaw::HostUnchecked => router.layer(axum::middleware::from_fn(rewrite_host)),
            Flaw::AuthQueryToken => router.layer(axum::middleware::from_fn(token_from_query)),
            Flaw::AuthEmptyKey => router.layer(axum::middleware::from_fn(empty_token_matches)),
            Flaw::AuthNone => router.layer(axum::middleware::from_fn(missing_token_passes)),
            Flaw::AuthNoChallenge => router.layer(axum::middleware::from_fn(drop_challenge)),
            Flaw::MetadataUnserved => router.layer(axum::middleware::from_fn(hide_metadata)),
            Flaw::AuthEarlyExit => router.layer(axum::middleware::from_fn(early_exit_compare)),
            Flaw::SessionUnbound => {
                let owners = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
                router.layer(axum::middleware::from_fn(move |request, next| {
                    sessions_as_identity(owners.clone(), request, next)
                }))
            }
            Flaw::ScopeUnchecked => {
                let digests = Arc::new(keys_file_digests.clone());
                router.layer(axum::middleware::from_fn(move |request, next| {
                    any_key_is_the_operator(digests.clone(), request, next)
                }))
            }
            Flaw::JwtUnverified | Flaw::JwtNoAudience => {
                let oauth = Arc::new(oauth_settings.clone());
                router.layer(axum::middleware::from_fn(move |request, next| {
                    flawed_jwt_check(oauth.clone(), flaw, request, next)
                }))
            }
            Flaw::RateClientId | Flaw::RateGlobal => {
                let limiter = Arc::new(twin_limiter());
                router.layer(axum::middleware::from_fn(move |request, next| {
                    wrongly_keyed_limit(limiter.clone(), flaw, request, next)
                }))
            }
            Flaw::SessionPredictable => {
                let sessions = Arc::new(std::sync::Mutex::new(PredictableSessions::default()));
                router.layer(axum::middleware::from_fn(move |request, next| {
                    predictable_sessions(sessions.clone(), request, next)
                }))
            }
            _ => router,
        },
    )
}

/// The origin-unchecked twin: the Origin header never reaches the check.
async fn strip_origin(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    request.headers_mut().remove(axum::http::header::ORIGIN);
    next.run(request).await
}

/// The host-unchecked twin: whatever Host the client sent, the check sees `localhost`.
async fn rewrite_host(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    request.headers_mut().insert(
        axum::http::header::HOST,
        axum::http::HeaderValue::from_static("localhost"),
    );
    next.run(request).await
}

/// The auth-query-token twin: a token in the query string becomes the Authorization header.
async fn token_from_query(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let from_query = request.uri().query().and_then(|query| {
        query.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            matches!(name, "access_token" | "token").then(|| value.to_owned())
        })
    });
    if !request
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
        && let Some(token) = from_query
        && let Ok(value) = axum::http::HeaderValue::from_str(&format!("Bearer {token}"))
    {
        request
            .headers_mut()
            .insert(axum::http::header::AUTHORIZATION, value);
    }
    next.run(request).await
}

/// The auth-empty-key twin: an empty bearer token is taken for the configured key, as
/// `compare_digest("", "")` would when the key variable is set but empty.
async fn empty_token_matches(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if matches!(presented, Some("Bearer") | Some("bearer")) {
        act_as_operator(&mut request);
    }
    next.run(request).await
}

/// Gives the request the operator's key, as a twin that wrongly authenticates it would.
fn act_as_operator(request: &mut axum::extract::Request) {
    if let Ok(key) = std::env::var("MCP_SERVER_TOKEN")
        && let Ok(value) = axum::http::HeaderValue::from_str(&format!("Bearer {key}"))
    {
        request
            .headers_mut()
            .insert(axum::http::header::AUTHORIZATION, value);
    }
}

/// The auth-none twin: a request that sends no credential is let through as the operator.
async fn missing_token_passes(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !request
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        act_as_operator(&mut request);
    }
    next.run(request).await
}

/// The auth-no-challenge twin: 401 responses lose their WWW-Authenticate header.
async fn drop_challenge(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .remove(axum::http::header::WWW_AUTHENTICATE);
    response
}

/// The metadata-unserved twin: the well-known metadata paths are not found.
async fn hide_metadata(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if request
        .uri()
        .path()
        .starts_with("/.well-known/oauth-protected-resource")
    {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    next.run(request).await
}

/// The session-predictable twin: clients see `session-N` for the real (random) session ids.
#[derive(Default)]
struct PredictableSessions {
    counter: u64,
    by_public: std::collections::HashMap<String, String>,
    by_real: std::collections::HashMap<String, String>,
}

async fn predictable_sessions(
    sessions: Arc<std::sync::Mutex<PredictableSessions>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    const HEADER: &str = "mcp-session-id";
    if let Some(public) = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    {
        let real = sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_public
            .get(&public)
            .cloned();
        if let Some(real) = real.and_then(|r| axum::http::HeaderValue::from_str(&r).ok()) {
            request.headers_mut().insert(HEADER, real);
        }
    }
    let mut response = next.run(request).await;
    if let Some(real) = response
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    {
        let mut table = sessions.lock().unwrap_or_else(|p| p.into_inner());
        let public = match table.by_real.get(&real) {
            Some(public) => public.clone(),
            None => {
                table.counter += 1;
                let public = format!("session-{}", table.counter);
                table.by_real.insert(real.clone(), public.clone());
                table.by_public.insert(public.clone(), real);
                public
            }
        };
        if let Ok(value) = axum::http::HeaderValue::from_str(&public) {
            response.headers_mut().insert(HEADER, value);
        }
    }
    response
}

/// What the auth-early-exit twin spends on each matching byte.
const EARLY_EXIT_BYTE_COST: std::time::Duration = std::time::Duration::from_nanos(100);

/// [`early_exit_equal_costing`] at [`EARLY_EXIT_BYTE_COST`] per byte.
fn early_exit_equal(presented: &[u8], expected: &[u8]) -> bool {
    early_exit_equal_costing(presented, expected, EARLY_EXIT_BYTE_COST)
}

/// Compares byte by byte, spending `cost` per byte compared, and returns at the first
/// difference.
fn early_exit_equal_costing(presented: &[u8], expected: &[u8], cost: std::time::Duration) -> bool {
    if presented.len() != expected.len() {
        return false;
    }
    for (a, b) in presented.iter().zip(expected) {
        let until = std::time::Instant::now() + cost;
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        if a != b {
            return false;
        }
    }
    true
}

/// The auth-early-exit twin: a bearer token that is not the operator's key is refused after an
/// early-exit comparison, before the reference check runs.
async fn early_exit_compare(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let expected = std::env::var("MCP_SERVER_TOKEN").unwrap_or_default();
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if let Some(presented) = presented
        && !early_exit_equal(presented.as_bytes(), expected.as_bytes())
    {
        let mut response = (
            axum::http::StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_token"})),
        )
            .into_response();
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return response;
    }
    next.run(request).await
}

/// Rewrites `--config FILE` (or adds one) with `section` replaced by `settings`.
fn lift_setting(
    args: &mut Vec<String>,
    section: &str,
    settings: toml::Table,
) -> Result<tempfile::NamedTempFile, String> {
    let position = args.iter().position(|a| a == "--config");
    let mut table: toml::Table = match position.and_then(|p| args.get(p + 1)) {
        Some(path) => read_toml(path)?,
        None => toml::Table::new(),
    };
    table.insert(section.into(), toml::Value::Table(settings));
    let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::fs::write(file.path(), table.to_string()).map_err(|e| e.to_string())?;
    let path = file.path().to_string_lossy().into_owned();
    match position {
        Some(p) if p + 1 < args.len() => args[p + 1] = path,
        _ => args.extend(["--config".to_owned(), path]),
    }
    Ok(file)
}

/// The rate twins' own limit: 50 calls at once, 20 per second, per (wrong) key (slow enough
/// that a refill rarely lands between two back-to-back calls, even on a loaded machine).
fn twin_limiter() -> reference_server::guard::rate_limit::RateLimiter<String> {
    reference_server::guard::rate_limit::RateLimiter::new(
        reference_server::guard::rate_limit::RateLimitConfig {
            burst: 50,
            per_second: 20.0,
            max_tracked_keys: 100_000,
        },
    )
    .expect("a valid limiter configuration")
}

/// The rate-client-id and rate-global twins: a limit keyed on X-Forwarded-For (falling back to
/// the credential), or one key for everyone.
async fn wrongly_keyed_limit(
    limiter: Arc<reference_server::guard::rate_limit::RateLimiter<String>>,
    flaw: Flaw,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let key = match flaw {
        Flaw::RateGlobal => "everyone".to_owned(),
        _ => ["x-forwarded-for", "authorization"]
            .iter()
            .find_map(|name| request.headers().get(*name)?.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    };
    let verdict = limiter.check(&key);
    if let Err(reference_server::guard::rate_limit::RateLimitError::Limited { retry_after }) =
        verdict
    {
        let mut response = (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"error": "rate_limited"})),
        )
            .into_response();
        let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(seconds),
        );
        return response;
    }
    next.run(request).await
}

/// The session-unbound twin: remembers the credential that opened each session and gives it
/// to every later request carrying that session id.
async fn sessions_as_identity(
    owners: Arc<std::sync::Mutex<std::collections::HashMap<String, axum::http::HeaderValue>>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    const HEADER: &str = "mcp-session-id";
    let session = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let owner = session.and_then(|s| {
        owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&s)
            .cloned()
    });
    if let Some(owner) = owner {
        request
            .headers_mut()
            .insert(axum::http::header::AUTHORIZATION, owner);
    }
    let credential = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .cloned();
    let response = next.run(request).await;
    if let (Some(session), Some(credential)) = (
        response.headers().get(HEADER).and_then(|v| v.to_str().ok()),
        credential,
    ) {
        owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(session.to_owned())
            .or_insert(credential);
    }
    response
}

/// What the JWT twins need from the reference configuration.
#[derive(Clone)]
struct OAuthSettings {
    issuer: String,
    jwks: jsonwebtoken::jwk::JwkSet,
}

/// Reads `[oauth] issuer` and the JWKS file from `--config`.
fn oauth_settings(args: &[String]) -> Result<OAuthSettings, String> {
    let table = read_toml(config_path(args)?)?;
    let oauth = table
        .get("oauth")
        .and_then(|v| v.as_table())
        .ok_or("no [oauth] section")?;
    let field = |name: &str| {
        oauth
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or(format!("no oauth.{name}"))
    };
    let jwks_path = field("jwks")?;
    let jwks = serde_json::from_str(
        &std::fs::read_to_string(&jwks_path).map_err(|e| format!("{jwks_path}: {e}"))?,
    )
    .map_err(|e| format!("{jwks_path}: {e}"))?;
    Ok(OAuthSettings {
        issuer: field("issuer")?,
        jwks,
    })
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

/// The jwt-unverified and jwt-no-audience twins: a JWT that passes the twin's weaker check runs
/// as the operator.
async fn flawed_jwt_check(
    oauth: Arc<Option<OAuthSettings>>,
    flaw: Flaw,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let token = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| t.split('.').count() == 3)
        .map(str::to_owned);
    let accepted = match (token, oauth.as_ref()) {
        (Some(token), Some(oauth)) => match flaw {
            // Decoded, never verified: only the expiry is looked at.
            Flaw::JwtUnverified => unverified_claims(&token)
                .and_then(|claims| claims.get("exp")?.as_u64())
                .is_some_and(|exp| exp > reference_server::guard::oauth::unix_now()),
            // Verified against the token's own audience: any audience passes.
            _ => unverified_claims(&token)
                .and_then(|claims| claims.get("aud")?.as_str().map(str::to_owned))
                .and_then(|audience| {
                    reference_server::guard::oauth::JwtValidator::new(
                        &oauth.jwks,
                        oauth.issuer.clone(),
                        audience,
                    )
                    .ok()
                })
                .is_some_and(|validator| validator.validate(&token).is_ok()),
        },
        _ => false,
    };
    if accepted {
        act_as_operator(&mut request);
    }
    next.run(request).await
}

/// The `key_sha256` values of the keys file named by `--config`.
fn keys_file_digests(args: &[String]) -> Result<Vec<String>, String> {
    let keys_file = read_toml(config_path(args)?)?
        .get("keys_file")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or("no keys_file in the config")?;
    Ok(read_toml(&keys_file)?
        .get("principal")
        .and_then(|v| v.as_array())
        .map(|principals| {
            principals
                .iter()
                .filter_map(|p| p.get("key_sha256")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// The scope-unchecked twin: any principal's valid key is taken as the operator's, so every
/// principal has every scope.
async fn any_key_is_the_operator(
    digests: Arc<Vec<String>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|token| {
            reference_server::guard::api_keys::key_digest(token.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
    if presented.is_some_and(|digest| digests.contains(&digest)) {
        act_as_operator(&mut request);
    }
    next.run(request).await
}

/// The value of `--config` in the server's arguments.
fn config_path(args: &[String]) -> Result<&str, String> {
    args.iter()
        .position(|a| a == "--config")
        .and_then(|p| args.get(p + 1))
        .map(String::as_str)
        .ok_or_else(|| "no --config".to_owned())
}

/// A TOML file as a table; errors name the file.
fn read_toml(path: &str) -> Result<toml::Table, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("{path}: {e}"))?
        .parse()
        .map_err(|e| format!("{path}: {e}"))
}
