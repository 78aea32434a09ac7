//! The MCP tools, each a thin adapter from typed, schema-checked arguments to one guard.
//!
//! | tool | practice it demonstrates | guard |
//! |---|---|---|
//! | `read_file`, `list_directory`, `file_info` | secure file access | [`Sandbox`] |
//! | `write_file`, `delete_file`, `create_directory` (scope `files:write`) | least privilege, atomic writes | [`Sandbox`] |
//! | `fetch_url` | allowed domains, SSRF defence | [`EgressPolicy`] |
//! | `query_records` | parameterized SQL, content filtering by rejection | [`ReadOnlyDb`] |
//! | `file_history` | no shell, user values only after `--` | [`FixedProgram`] (`git log`) |
//! | `process_data` | bounded input, resource limits | [`Limits`] |
//! | `admin_stats` (scope `admin`) | authorization by scope | - |
//!
//! Every call passes through [`ReferenceServer::call_tool`], which resolves the principal
//! (from the HTTP layer, or the stdio launcher), checks the tool's scope, applies the stdio rate
//! limit, checks the shape of the arguments (depth, string and array sizes), takes a
//! per-principal concurrency slot and runs the tool under the call timeout.
//!
//! Errors follow MCP 2025-11-25 (server/tools, "Error Handling"): an unknown tool or a
//! malformed `tools/call` is a protocol error (JSON-RPC `-32602`); arguments that fail
//! validation (wrong type, unknown field, out of range, a path that is never valid) are a tool
//! execution error, `isError: true` with a message that names the problem, so a model can
//! correct itself; failures inside a tool are `isError: true` carrying only a generic message
//! and a correlation id ([`public_error`]).
//! Tools know nothing of transports: they see a [`Principal`], never a header.

use crate::guard::api_keys::Principal;
use crate::guard::db::{DbError, ReadOnlyDb};
use crate::guard::egress::{EgressError, EgressPolicy};
use crate::guard::limits::{
    CallSlot, ConcurrencyGate, LimitError, Limits, check_json_object_shape, with_timeout,
};
use crate::guard::program::{FixedProgram, ProgramError};
use crate::guard::public_error::{FailureKind, WithSources};
use crate::guard::rate_limit::RateLimiter;
use crate::guard::sandbox::{Sandbox, SandboxError, check_relative_path};
use crate::guards::{CallRefusal, ErrorReport, Guards};
use rmcp::handler::server::router::tool::{ToolRoute, ToolRouter};
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    ContentBlock as Content, CustomRequest, CustomResult, ErrorCode, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

/// JSON-RPC error code for a refused call on stdio (rate limit or concurrency): in the
/// implementation-defined server error range.
pub const RATE_LIMITED_CODE: i32 = -32029;

pub use crate::guard::scopes::required_scope;

pub mod surfaces;

/// Everything the tools share. Built once at start-up.
pub struct ServerState {
    /// Every guard a tool goes through ([`Guards::reference`] for the reference server).
    pub guards: Guards,
    pub gate: ConcurrencyGate,
    /// The principal of a stdio session (the launcher); `None` over HTTP.
    pub stdio_principal: Option<Principal>,
    pub started: Instant,
    pub calls: Mutex<BTreeMap<String, u64>>,
}

impl ServerState {
    /// A state for a server built in process (the fuzz target of the JSON-RPC surface and the
    /// end-to-end benchmark): the sandbox at `root` with default limits, the records database at
    /// `database` (at most 100 rows, 1 s a query), no host allowed for fetches, the stdio
    /// `principal` and its per-call `limiter`. The binary builds its state from the
    /// configuration instead (see `cli`).
    pub fn in_process(
        root: std::path::PathBuf,
        database: std::path::PathBuf,
        limits: Limits,
        principal: Option<Principal>,
        limiter: Option<RateLimiter<String>>,
    ) -> Result<Self, String> {
        let sandbox = Sandbox::open(&root, crate::guard::sandbox::SandboxLimits::default())
            .map_err(|e| format!("the sandbox {} cannot be opened: {e}", root.display()))?;
        let db = ReadOnlyDb::open(&database, 100, std::time::Duration::from_secs(1))
            .map_err(|e| format!("the database {} cannot be opened: {e}", database.display()))?;
        let absolute = std::fs::canonicalize(&root)
            .map_err(|e| format!("the sandbox {} cannot be resolved: {e}", root.display()))?;
        let uris = crate::guard::resource_uri::ResourceUris::new(&absolute)
            .ok_or_else(|| format!("the sandbox {} has no absolute path", root.display()))?;
        let guards = Guards::reference(
            sandbox,
            uris,
            db,
            EgressPolicy::new(Vec::<String>::new()),
            history_program(root),
            limits,
            limiter,
        );
        Ok(Self::new(guards, principal))
    }

    /// The state over `guards`, for the stdio `principal` (`None` over HTTP).
    pub fn new(guards: Guards, principal: Option<Principal>) -> Self {
        Self {
            gate: ConcurrencyGate::new(guards.limits.max_concurrent_calls_per_principal),
            guards,
            stdio_principal: principal,
            started: Instant::now(),
            calls: Default::default(),
        }
    }
}

/// The MCP server handler.
#[derive(Clone)]
pub struct ReferenceServer {
    state: Arc<ServerState>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFileArgs {
    /// Path relative to the sandbox root, `/`-separated.
    #[schemars(length(min = 1, max = 1024))]
    pub path: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDirectoryArgs {
    /// Directory relative to the sandbox root; `.` for the root.
    #[serde(default = "dot")]
    #[schemars(length(max = 1024))]
    pub path: String,
    /// How many levels to descend, 1 to 10.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 10))]
    pub max_depth: u8,
}

fn dot() -> String {
    ".".into()
}
fn one() -> u8 {
    1
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileArgs {
    #[schemars(length(min = 1, max = 1024))]
    pub path: String,
    /// UTF-8 text to write; replaces the file atomically.
    pub content: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchUrlArgs {
    /// An http(s) URL on an allowed host.
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRecordsArgs {
    /// Literal text the record name must contain (case-sensitive).
    #[schemars(length(max = 200))]
    pub name_contains: String,
    /// Only records of this category.
    #[schemars(length(max = 100))]
    pub category: Option<String>,
    /// At most this many rows, 1 to 100.
    #[serde(default = "twenty")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

fn twenty() -> u32 {
    20
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Uppercase,
    Lowercase,
    Reverse,
    WordCount,
    Sha256,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessDataArgs {
    /// Text to process, at most 64 KiB.
    #[schemars(length(max = 65536))]
    pub data: String,
    pub operation: Operation,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileHistoryArgs {
    /// A file or directory relative to the sandbox root; `.` for the whole repository.
    #[serde(default = "dot")]
    #[schemars(length(min = 1, max = 1024))]
    pub path: String,
    /// How many commits to show, 1 to 50.
    #[serde(default = "five")]
    #[schemars(range(min = 1, max = 50))]
    pub max_count: u8,
}

fn five() -> u8 {
    5
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// `git log` as the history tool runs it: fixed options, the user's path only after `--`.
pub fn history_program(root: std::path::PathBuf) -> FixedProgram {
    FixedProgram::new("git", ["log", "--no-color", "--format=%h %s"], root)
}

/// What `file_info` says about a file: its size, lines and digest, never its content.
pub fn file_summary(bytes: &[u8]) -> serde_json::Value {
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    serde_json::json!({
        "bytes": bytes.len(),
        "lines": bytes.iter().filter(|b| **b == b'\n').count(),
        "sha256": digest,
    })
}

/// Longest `process_data` input, in bytes.
pub const MAX_PROCESS_BYTES: usize = 64 * 1024;

/// A tool execution error for arguments that failed validation. The message describes the
/// argument, never the server's state.
fn invalid_arguments(reason: impl std::fmt::Display) -> CallToolResult {
    CallToolResult::error(vec![Content::text(format!("invalid arguments: {reason}"))])
}

fn text_result(value: &impl serde::Serialize) -> CallToolResult {
    CallToolResult::success(vec![Content::text(
        serde_json::to_string_pretty(value).unwrap_or_default(),
    )])
}

fn failure(
    errors: &dyn ErrorReport,
    kind: FailureKind,
    operation: &str,
    detail: &dyn std::fmt::Display,
) -> CallToolResult {
    let public = errors.report(kind, operation, detail);
    let mut result = CallToolResult::error(vec![Content::text(public.to_string())]);
    result.structured_content = serde_json::to_value(&public).ok();
    result
}

fn sandbox_failure(
    errors: &dyn ErrorReport,
    operation: &str,
    error: SandboxError,
) -> Result<CallToolResult, ErrorData> {
    let kind = match &error {
        // A path that is lexically never valid is an invalid argument, not a tool failure.
        SandboxError::InvalidPath(reason) => {
            return Ok(invalid_arguments(format!("path: {reason}")));
        }
        SandboxError::Escape => FailureKind::Denied,
        SandboxError::NotFound => FailureKind::NotFound,
        SandboxError::NotAFile
        | SandboxError::NotADirectory
        | SandboxError::NotText
        | SandboxError::AlreadyExists => FailureKind::InvalidInput,
        SandboxError::TooLarge { .. } => FailureKind::TooLarge,
        SandboxError::Io(_) => FailureKind::Internal,
    };
    Ok(failure(errors, kind, operation, &WithSources(&error)))
}

fn egress_failure(errors: &dyn ErrorReport, error: EgressError) -> CallToolResult {
    let kind = match &error {
        EgressError::Unparsable | EgressError::TooLong(_) => FailureKind::InvalidInput,
        EgressError::Timeout => FailureKind::TimedOut,
        EgressError::ResponseTooLarge(_) => FailureKind::TooLarge,
        EgressError::RequestFailed | EgressError::ResolutionFailed => FailureKind::Internal,
        _ => FailureKind::Denied,
    };
    failure(errors, kind, "fetch_url", &WithSources(&error))
}

fn db_failure(errors: &dyn ErrorReport, error: DbError) -> CallToolResult {
    let kind = match &error {
        DbError::Denied => FailureKind::Denied,
        DbError::TimedOut => FailureKind::TimedOut,
        DbError::Sqlite(_) => FailureKind::Internal,
    };
    failure(errors, kind, "query_records", &WithSources(&error))
}

/// Runs blocking guard work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ErrorData> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ErrorData::internal_error("the operation failed", None))
}

#[tool_router]
impl ReferenceServer {
    pub fn new(state: ServerState) -> Self {
        let mut tool_router = Self::tool_router();
        for extra in &state.guards.extra_tools {
            let call = extra.call.clone();
            tool_router.add_route(ToolRoute::new_dyn(extra.tool.clone(), move |context| {
                let answer = call(context.arguments.clone());
                Box::pin(async move { Ok(answer.await.into()) })
            }));
        }
        Self {
            state: Arc::new(state),
            tool_router,
        }
    }

    fn errors(&self) -> &dyn ErrorReport {
        self.state.guards.errors.as_ref()
    }

    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    #[tool(
        description = "Read a UTF-8 text file inside the sandbox (at most 1 MiB by default).",
        annotations(read_only_hint = true)
    )]
    async fn read_file(
        &self,
        Parameters(args): Parameters<ReadFileArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let state = self.state.clone();
        match blocking(move || state.guards.files.read_to_string(&args.path)).await? {
            Ok(text) => Ok(CallToolResult::success(vec![Content::text(text)])),
            Err(error) => sandbox_failure(self.errors(), "read_file", error),
        }
    }

    #[tool(
        description = "List a directory inside the sandbox, descending max_depth levels (1-10). Symlinks are listed, not followed.",
        annotations(read_only_hint = true)
    )]
    async fn list_directory(
        &self,
        Parameters(args): Parameters<ListDirectoryArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if !(1..=10).contains(&args.max_depth) {
            return Ok(invalid_arguments("max_depth must be between 1 and 10"));
        }
        let state = self.state.clone();
        match blocking(move || state.guards.files.list(&args.path, args.max_depth)).await? {
            Ok(listing) => Ok(text_result(&listing)),
            Err(error) => sandbox_failure(self.errors(), "list_directory", error),
        }
    }

    #[tool(
        description = "Write a UTF-8 text file inside the sandbox, replacing it atomically. Requires scope files:write.",
        annotations(destructive_hint = true)
    )]
    async fn write_file(
        &self,
        Parameters(args): Parameters<WriteFileArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let state = self.state.clone();
        let path = args.path.clone();
        match blocking(move || {
            state
                .guards
                .files
                .write(&args.path, args.content.as_bytes())
        })
        .await?
        {
            Ok(()) => Ok(text_result(&serde_json::json!({"written": path}))),
            Err(error) => sandbox_failure(self.errors(), "write_file", error),
        }
    }

    #[tool(
        description = "Delete a file inside the sandbox (never a directory). Requires scope files:write.",
        annotations(destructive_hint = true)
    )]
    async fn delete_file(
        &self,
        Parameters(args): Parameters<ReadFileArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let state = self.state.clone();
        let path = args.path.clone();
        match blocking(move || state.guards.files.delete(&args.path)).await? {
            Ok(()) => Ok(text_result(&serde_json::json!({"deleted": path}))),
            Err(error) => sandbox_failure(self.errors(), "delete_file", error),
        }
    }

    #[tool(
        description = "Create a directory inside the sandbox (its parent must exist). Requires scope files:write.",
        annotations(destructive_hint = false, idempotent_hint = false)
    )]
    async fn create_directory(
        &self,
        Parameters(args): Parameters<ReadFileArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let state = self.state.clone();
        let path = args.path.clone();
        match blocking(move || state.guards.files.create_dir(&args.path)).await? {
            Ok(()) => Ok(text_result(&serde_json::json!({"created": path}))),
            Err(error) => sandbox_failure(self.errors(), "create_directory", error),
        }
    }

    #[tool(
        description = "Size, line count and SHA-256 of a file inside the sandbox, without its content.",
        annotations(read_only_hint = true)
    )]
    async fn file_info(
        &self,
        Parameters(args): Parameters<ReadFileArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let state = self.state.clone();
        match blocking(move || state.guards.files.read(&args.path)).await? {
            Ok(bytes) => Ok(text_result(&file_summary(&bytes))),
            Err(error) => sandbox_failure(self.errors(), "file_info", error),
        }
    }

    #[tool(
        description = "Fetch an http(s) URL on an allowed host. Private, loopback and metadata addresses are refused.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn fetch_url(
        &self,
        Parameters(args): Parameters<FetchUrlArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let no_headers = http::HeaderMap::new();
        let caller = context
            .extensions
            .get::<http::request::Parts>()
            .map_or(&no_headers, |parts| &parts.headers);
        match self.state.guards.fetch.fetch_for(&args.url, caller).await {
            Ok(page) => Ok(text_result(&page)),
            Err(error) => Ok(egress_failure(self.errors(), error)),
        }
    }

    #[tool(
        description = "Search the records database: rows whose name contains the given text, optionally in one category.",
        annotations(read_only_hint = true)
    )]
    async fn query_records(
        &self,
        Parameters(args): Parameters<QueryRecordsArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if !(1..=100).contains(&args.limit) {
            return Ok(invalid_arguments("limit must be between 1 and 100"));
        }
        if args.name_contains.len() > 200 || args.category.as_ref().is_some_and(|c| c.len() > 100) {
            return Ok(invalid_arguments(
                "name_contains is limited to 200 bytes and category to 100",
            ));
        }
        let state = self.state.clone();
        let rows = blocking(move || {
            state.guards.records.search(
                &args.name_contains,
                args.category.as_deref(),
                args.limit as usize,
            )
        })
        .await?;
        match rows {
            Ok(rows) => Ok(text_result(&rows)),
            Err(error) => Ok(db_failure(self.errors(), error)),
        }
    }

    #[tool(
        description = "Commit history of a file or directory in the sandbox (git log; the sandbox must be a git repository).",
        annotations(read_only_hint = true)
    )]
    async fn file_history(
        &self,
        Parameters(args): Parameters<FileHistoryArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if !(1..=50).contains(&args.max_count) {
            return Ok(invalid_arguments("max_count must be between 1 and 50"));
        }
        if args.path != "."
            && let Err(error) = check_relative_path(&args.path)
        {
            return sandbox_failure(self.errors(), "file_history", error);
        }
        let options = [format!("--max-count={}", args.max_count)];
        match self.state.guards.history.run(&options, &[&args.path]).await {
            Ok(output) if output.success => Ok(text_result(&output)),
            Ok(_) => Ok(failure(
                self.errors(),
                FailureKind::NotFound,
                "file_history",
                &"git log exited with a failure status",
            )),
            Err(error @ ProgramError::TimedOut(_)) => Ok(failure(
                self.errors(),
                FailureKind::TimedOut,
                "file_history",
                &WithSources(&error),
            )),
            Err(error) => Ok(failure(
                self.errors(),
                FailureKind::Internal,
                "file_history",
                &WithSources(&error),
            )),
        }
    }

    #[tool(
        description = "Transform text: uppercase, lowercase, reverse, word_count or sha256. Input at most 64 KiB.",
        annotations(read_only_hint = true)
    )]
    async fn process_data(
        &self,
        Parameters(args): Parameters<ProcessDataArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if args.data.len() > MAX_PROCESS_BYTES {
            return Ok(invalid_arguments(format!(
                "data is limited to {MAX_PROCESS_BYTES} bytes"
            )));
        }
        let output = match args.operation {
            Operation::Uppercase => args.data.to_uppercase(),
            Operation::Lowercase => args.data.to_lowercase(),
            Operation::Reverse => args.data.chars().rev().collect(),
            Operation::WordCount => args.data.split_whitespace().count().to_string(),
            Operation::Sha256 => {
                use sha2::Digest;
                sha2::Sha256::digest(args.data.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }
        };
        Ok(CallToolResult::success(vec![Content::text(output)]))
    }

    #[tool(
        description = "Server statistics: uptime, calls per tool, records. Requires scope admin.",
        annotations(read_only_hint = true)
    )]
    async fn admin_stats(
        &self,
        Parameters(_): Parameters<NoArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let calls = self
            .state
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let state = self.state.clone();
        let records = blocking(move || state.guards.records.count()).await?.ok();
        Ok(text_result(&serde_json::json!({
            "uptime_seconds": self.state.started.elapsed().as_secs(),
            "calls": calls,
            "records": records,
            "rate_limited_keys": self.state.guards.call_limit.as_ref().map(|l| l.tracked_keys()),
        })))
    }
}

impl ReferenceServer {
    /// The caller: set by the HTTP auth layer in the request's extensions, or the stdio launcher.
    fn principal<'a>(&'a self, context: &'a RequestContext<RoleServer>) -> Option<&'a Principal> {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .or(self.state.stdio_principal.as_ref())
    }

    fn count_call(&self, tool: &str) {
        self.state.guards.call_log.called(tool);
        let mut calls = self.state.calls.lock().unwrap_or_else(|p| p.into_inner());
        // Only known tools are counted, so the map is bounded by the tool list.
        if let Some(count) = calls.get_mut(tool) {
            *count += 1;
        } else if self.tool_router.get(tool).is_some() {
            calls.insert(tool.to_owned(), 1);
        }
    }
}

fn refused(code: i32, message: &str, data: serde_json::Value) -> ErrorData {
    ErrorData::new(ErrorCode(code), message.to_owned(), Some(data))
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ReferenceServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .enable_completions()
                .build(),
        )
            .with_server_info(Implementation::new("mcp-reference-server", env!("CARGO_PKG_VERSION")))
            .with_instructions("A reference secure MCP server: sandboxed files, an allowlisted fetcher, a read-only records database.")
    }

    /// rmcp hands over any request it could not parse as a known method; for the methods this
    /// server implements, that means malformed params, which JSON-RPC answers with -32602
    /// (rmcp's default would say -32601, "method not found", for a method that exists).
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        const IMPLEMENTED: &[&str] = &[
            "initialize",
            "ping",
            "tools/list",
            "tools/call",
            "resources/list",
            "resources/templates/list",
            "resources/read",
            "prompts/list",
            "prompts/get",
            "completion/complete",
        ];
        let protocol = &self.state.guards.protocol;
        if IMPLEMENTED.contains(&request.method.as_str()) {
            Err(protocol.malformed_params(&request.method))
        } else {
            Err(protocol.unknown_method(&request.method))
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.surface_list_resources(&context).await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.surface_list_resource_templates(&context).await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Ok(self.surface_read_resource(request, context).await?.into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.surface_list_prompts(&context).await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        Ok(self.surface_get_prompt(request, context).await?.into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.surface_complete(request, context).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // The principal is borrowed from the request (or the state) until the call holds its
        // slot; the context then moves into the tool call.
        let _slot = match self.admit(&request, &context).await {
            Ok(slot) => slot,
            Err(refusal) => return *refusal,
        };
        self.count_call(&request.name);
        let name = request.name.clone();
        let call = ToolCallContext::new(self, request, context);
        match with_timeout(
            self.state.guards.limits.call_timeout,
            self.tool_router.call(call),
        )
        .await
        {
            Ok(result) => result,
            Err(error) => Ok(failure(self.errors(), FailureKind::TimedOut, &name, &error).into()),
        }
    }
}

/// Why a call may not run: the error, or the tool result, to answer with.
type Refusal = Box<Result<CallToolResponse, ErrorData>>;

/// Why [`ReferenceServer::admit_work`] refused: an error to answer with, or arguments too
/// large or deep (a tool says so in its result; a prompt or a resource read with -32602).
pub(crate) enum WorkRefusal {
    Error(ErrorData),
    InvalidArguments(String),
}

impl ReferenceServer {
    /// Every check before a tool runs: authentication, the tool's existence and scope, the rate
    /// limit, the arguments' shape and a concurrency slot (held by the caller while it runs).
    /// A refusal is the error or the tool result to answer with.
    async fn admit(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallSlot, Refusal> {
        let principal = self.caller(context).map_err(|e| Box::new(Err(e)))?;
        let guards = &self.state.guards;
        if self.tool_router.get(&request.name).is_none() {
            return Err(Box::new(Err(guards.protocol.unknown_tool(&request.name))));
        }
        if let Some(scope) = guards.scopes.required(&request.name)
            && !principal.has_scope(scope)
        {
            return Err(Box::new(Ok(failure(
                self.errors(),
                FailureKind::Denied,
                &request.name,
                &format!("principal lacks scope {scope}"),
            )
            .into())));
        }
        self.admit_work(principal, &request.name, request.arguments.as_ref())
            .await
            .map_err(|refusal| {
                Box::new(match refusal {
                    WorkRefusal::Error(error) => Err(error),
                    WorkRefusal::InvalidArguments(reason) => Ok(invalid_arguments(reason).into()),
                })
            })
    }

    /// The checks every request that does work passes (tools, prompts, resource reads) once
    /// its caller is known: the rate limit, the arguments' shape and a concurrency slot.
    pub(crate) async fn admit_work(
        &self,
        principal: &Principal,
        operation: &str,
        arguments: Option<&rmcp::model::JsonObject>,
    ) -> Result<CallSlot, WorkRefusal> {
        let guards = &self.state.guards;
        if let Some(limit) = &guards.call_limit {
            match limit.check(&principal.name, operation, arguments).await {
                Ok(()) => {}
                Err(CallRefusal::Limited { retry_after }) => {
                    return Err(WorkRefusal::Error(refused(
                        RATE_LIMITED_CODE,
                        "rate limit exceeded",
                        serde_json::json!({"retry_after_ms": retry_after.as_millis() as u64}),
                    )));
                }
                Err(_) => {
                    return Err(WorkRefusal::Error(refused(
                        RATE_LIMITED_CODE,
                        "rate limit exceeded",
                        serde_json::json!({}),
                    )));
                }
            }
        }
        if let Some(arguments) = arguments
            && let Err(error) = check_json_object_shape(arguments, &guards.limits)
        {
            return Err(WorkRefusal::InvalidArguments(error.to_string()));
        }
        self.state.gate.try_enter(&principal.name).map_err(|e| {
            WorkRefusal::Error(match e {
                LimitError::TooManyConcurrentCalls(limit) => refused(
                    RATE_LIMITED_CODE,
                    "too many calls in flight",
                    serde_json::json!({"limit": limit}),
                ),
                other => ErrorData::internal_error(other.to_string(), None),
            })
        })
    }
}
