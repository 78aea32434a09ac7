//! The guards the tools are built from, as one struct of small traits: [`Guards`].
//!
//! The reference server builds [`Guards::reference`] from its configuration and never changes
//! it. The struct exists so that a *test twin* (targets/flawed-server, the kill matrix's
//! targets) can replace exactly one guard and keep every other one, the way rustls's
//! `CryptoProvider { cipher_suites: .., ..default_provider() }` replaces one algorithm:
//!
//! ```ignore
//! guards.files = Arc::new(PrefixCheckedFiles::new(root));
//! ```
//!
//! Everything around the swapped guard (authentication, the tool's scope, the rate limit, the
//! argument shape check, the concurrency slot, the call timeout, the error reporting) is still
//! the reference's, so a twin fails the probe of its guard and nothing else. The HTTP layer's
//! guards are the same idea in [`crate::transport::http::HttpGuards`].
//!
//! Every trait has a `name`: `"reference"` for the reference implementation, the flaw's name
//! for a twin's, so a test can list which guards a server runs with ([`Guards::swapped`]).
//!
//! Cost: one virtual call per guard use (nanoseconds, beside a file system call, a fetch, a
//! query or a child process); async guards return one boxed future per call.
//! Failure: each guard reports its own error enum, exactly as the guard modules define them.

use crate::guard::db::{DbError, ReadOnlyDb, Record};
use crate::guard::egress::{EgressError, EgressPolicy, FetchedPage};
use crate::guard::limits::Limits;
use crate::guard::program::{FixedProgram, ProgramError, ProgramOutput};
use crate::guard::public_error::{self, FailureKind, PublicError};
use crate::guard::rate_limit::{RateLimitError, RateLimiter};
use crate::guard::resource_uri::{ResourceUris, UriError};
use crate::guard::sandbox::{Listing, Sandbox, SandboxError};
use crate::guard::scopes;
use futures::future::BoxFuture;
use rmcp::model::{JsonObject, Tool};
use std::sync::Arc;

/// The name every reference implementation reports.
pub const REFERENCE: &str = "reference";

/// File access inside the sandbox: every file tool goes through it.
pub trait Files: Send + Sync {
    fn name(&self) -> &'static str;
    fn read_to_string(&self, path: &str) -> Result<String, SandboxError>;
    fn read(&self, path: &str) -> Result<Vec<u8>, SandboxError>;
    fn write(&self, path: &str, content: &[u8]) -> Result<(), SandboxError>;
    fn create_dir(&self, path: &str) -> Result<(), SandboxError>;
    fn delete(&self, path: &str) -> Result<(), SandboxError>;
    fn list(&self, path: &str, max_depth: u8) -> Result<Listing, SandboxError>;
}

impl Files for Sandbox {
    fn name(&self) -> &'static str {
        REFERENCE
    }
    fn read_to_string(&self, path: &str) -> Result<String, SandboxError> {
        Sandbox::read_to_string(self, path)
    }
    fn read(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        Sandbox::read(self, path)
    }
    fn write(&self, path: &str, content: &[u8]) -> Result<(), SandboxError> {
        Sandbox::write(self, path, content)
    }
    fn create_dir(&self, path: &str) -> Result<(), SandboxError> {
        Sandbox::create_dir(self, path)
    }
    fn delete(&self, path: &str) -> Result<(), SandboxError> {
        Sandbox::delete(self, path)
    }
    fn list(&self, path: &str, max_depth: u8) -> Result<Listing, SandboxError> {
        Sandbox::list(self, path, max_depth)
    }
}

/// Outbound fetches (`fetch_url`).
pub trait Fetch: Send + Sync {
    fn name(&self) -> &'static str;
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<FetchedPage, EgressError>>;
    /// The fetch `fetch_url` makes for a caller whose HTTP request carried `caller` (no
    /// headers on stdio). TEST SEAM: the reference never reads them, since a client's token is
    /// never passed upstream (the MCP authorization specification's token passthrough rule);
    /// the token-passthrough twin forwards its `Authorization`.
    fn fetch_for<'a>(
        &'a self,
        url: &'a str,
        _caller: &'a http::HeaderMap,
    ) -> BoxFuture<'a, Result<FetchedPage, EgressError>> {
        self.fetch(url)
    }
}

impl Fetch for EgressPolicy {
    fn name(&self) -> &'static str {
        REFERENCE
    }
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<FetchedPage, EgressError>> {
        Box::pin(EgressPolicy::fetch(self, url))
    }
}

/// The records database (`query_records`, and the count `admin_stats` shows).
pub trait Records: Send + Sync {
    fn name(&self) -> &'static str;
    fn search(
        &self,
        needle: &str,
        category: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, DbError>;
    fn count(&self) -> Result<i64, DbError>;
}

impl Records for ReadOnlyDb {
    fn name(&self) -> &'static str {
        REFERENCE
    }
    fn search(
        &self,
        needle: &str,
        category: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, DbError> {
        ReadOnlyDb::search(self, needle, category, limit)
    }
    fn count(&self) -> Result<i64, DbError> {
        ReadOnlyDb::count(self)
    }
}

/// The program `file_history` runs: fixed options from the tool, the user's path as an operand.
pub trait History: Send + Sync {
    fn name(&self) -> &'static str;
    fn run<'a>(
        &'a self,
        options: &'a [String],
        operands: &'a [&'a str],
    ) -> BoxFuture<'a, Result<ProgramOutput, ProgramError>>;
}

impl History for FixedProgram {
    fn name(&self) -> &'static str {
        REFERENCE
    }
    fn run<'a>(
        &'a self,
        options: &'a [String],
        operands: &'a [&'a str],
    ) -> BoxFuture<'a, Result<ProgramOutput, ProgramError>> {
        Box::pin(FixedProgram::run(self, options, operands))
    }
}

/// What `resources/read` answers: the file's text, or its bytes when they are not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceBody {
    Text(String),
    Bytes(Vec<u8>),
}

/// Why a resource could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error(transparent)]
    Uri(#[from] UriError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Egress(#[from] EgressError),
}

/// `resources/read`: a `file://` URI under the sandbox's URI, read through the file guard, or
/// an http(s) URL, fetched through the fetch guard. It is given those two guards, so the
/// reference can only reach what the tools reach.
pub trait ResourceReads: Send + Sync {
    fn name(&self) -> &'static str;
    fn read<'a>(
        &'a self,
        uri: &'a str,
        files: Arc<dyn Files>,
        fetch: Arc<dyn Fetch>,
    ) -> BoxFuture<'a, Result<ResourceBody, ResourceError>>;
}

/// Whether `uri` is an http(s) URL (any case), which `resources/read` fetches.
pub fn is_web_uri(uri: &str) -> bool {
    let scheme = uri.split(':').next().unwrap_or_default();
    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

/// The reference resource reads: [`ResourceUris`] names the file, the sandbox opens it.
pub struct SandboxResources(pub ResourceUris);

impl SandboxResources {
    /// Reads the sandbox file `uri` names (off the async runtime: the sandbox is synchronous).
    pub async fn read_file(
        &self,
        uri: &str,
        files: Arc<dyn Files>,
    ) -> Result<ResourceBody, ResourceError> {
        let relative = self.0.relative_path(uri)?;
        let bytes = off_runtime(move || files.read(&relative)).await?;
        Ok(body_of(bytes))
    }
}

/// Runs a (synchronous) file guard call off the async runtime; a task that died is an I/O
/// failure.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SandboxError> + Send + 'static,
) -> Result<T, SandboxError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| SandboxError::Io(std::io::ErrorKind::Other))?
}

/// Text when `bytes` are UTF-8, bytes otherwise.
pub fn body_of(bytes: Vec<u8>) -> ResourceBody {
    match String::from_utf8(bytes) {
        Ok(text) => ResourceBody::Text(text),
        Err(e) => ResourceBody::Bytes(e.into_bytes()),
    }
}

impl ResourceReads for SandboxResources {
    fn name(&self) -> &'static str {
        REFERENCE
    }
    fn read<'a>(
        &'a self,
        uri: &'a str,
        files: Arc<dyn Files>,
        fetch: Arc<dyn Fetch>,
    ) -> BoxFuture<'a, Result<ResourceBody, ResourceError>> {
        Box::pin(async move {
            if is_web_uri(uri) {
                return Ok(ResourceBody::Text(fetch.fetch(uri).await?.body));
            }
            self.read_file(uri, files).await
        })
    }
}

/// The file the `review_file` prompt puts in its message: the one its `path` argument names.
pub trait PromptFiles: Send + Sync {
    fn name(&self) -> &'static str;
    fn read<'a>(
        &'a self,
        path: &'a str,
        files: Arc<dyn Files>,
    ) -> BoxFuture<'a, Result<String, SandboxError>>;
}

/// The reference: the argument is a sandbox-relative path, read through the file guard.
pub struct SandboxPromptFiles;

impl PromptFiles for SandboxPromptFiles {
    fn name(&self) -> &'static str {
        REFERENCE
    }
    fn read<'a>(
        &'a self,
        path: &'a str,
        files: Arc<dyn Files>,
    ) -> BoxFuture<'a, Result<String, SandboxError>> {
        let path = path.to_owned();
        Box::pin(async move { off_runtime(move || files.read_to_string(&path)).await })
    }
}

/// Most values one completion answers (the specification's limit).
pub const MAX_COMPLETIONS: usize = 100;

/// `completion/complete` of a sandbox path (the prompt's `path`, the template's `{+path}`):
/// the entries of the directory the value names whose paths begin with the value.
pub trait PathCompletions: Send + Sync {
    fn name(&self) -> &'static str;
    fn complete<'a>(
        &'a self,
        value: &'a str,
        files: Arc<dyn Files>,
    ) -> BoxFuture<'a, Result<Vec<String>, SandboxError>>;
}

/// The directory part of a partial path: `docs` for `docs/re`, `.` for `re`.
pub fn completed_directory(value: &str) -> &str {
    value.rsplit_once('/').map_or(".", |(dir, _)| dir)
}

/// The reference: the directory is listed through the file guard, one level.
pub struct SandboxCompletions;

impl PathCompletions for SandboxCompletions {
    fn name(&self) -> &'static str {
        REFERENCE
    }
    fn complete<'a>(
        &'a self,
        value: &'a str,
        files: Arc<dyn Files>,
    ) -> BoxFuture<'a, Result<Vec<String>, SandboxError>> {
        let value = value.to_owned();
        Box::pin(async move {
            let dir = completed_directory(&value).to_owned();
            let listing = off_runtime(move || files.list(&dir, 1)).await?;
            Ok(listing
                .entries
                .into_iter()
                .filter(|entry| entry.path.starts_with(&value))
                .map(|entry| match entry.kind {
                    "directory" => format!("{}/", entry.path),
                    _ => entry.path,
                })
                .take(MAX_COMPLETIONS)
                .collect())
        })
    }
}

/// What a client is told when a tool fails ([`public_error`]).
pub trait ErrorReport: Send + Sync {
    fn name(&self) -> &'static str;
    fn report(
        &self,
        kind: FailureKind,
        operation: &str,
        detail: &dyn std::fmt::Display,
    ) -> PublicError;
}

/// The reference error report: a fixed message per kind and a correlation id.
pub struct PublicErrors;

impl ErrorReport for PublicErrors {
    fn name(&self) -> &'static str {
        REFERENCE
    }
    fn report(
        &self,
        kind: FailureKind,
        operation: &str,
        detail: &dyn std::fmt::Display,
    ) -> PublicError {
        public_error::report(kind, operation, detail)
    }
}

/// Why a tool call was refused by the per-call limit (stdio; HTTP limits requests instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallRefusal {
    #[error("rate limit exceeded")]
    Limited { retry_after: std::time::Duration },
    #[error("rate limit exceeded")]
    Refused,
}

/// The per-call rate limit of a stdio session.
pub trait CallLimit: Send + Sync {
    fn name(&self) -> &'static str;
    /// Admits or refuses one call of `tool` with `arguments` by `principal`.
    fn check<'a>(
        &'a self,
        principal: &'a str,
        tool: &'a str,
        arguments: Option<&'a JsonObject>,
    ) -> BoxFuture<'a, Result<(), CallRefusal>>;
    /// How many keys the limit tracks (shown by `admin_stats`).
    fn tracked_keys(&self) -> usize;
}

/// A limiter's verdict as a tool call's refusal: `Limited` keeps its retry time, anything
/// else (a full key table, an unavailable store) refuses.
pub fn call_refusal(verdict: Result<(), RateLimitError>) -> Result<(), CallRefusal> {
    match verdict {
        Ok(()) => Ok(()),
        Err(RateLimitError::Limited { retry_after }) => Err(CallRefusal::Limited { retry_after }),
        Err(_) => Err(CallRefusal::Refused),
    }
}

/// The reference per-call limit: GCRA per principal, with a hard key cap.
pub struct PerPrincipal(pub RateLimiter<String>);

impl CallLimit for PerPrincipal {
    fn name(&self) -> &'static str {
        REFERENCE
    }
    fn check<'a>(
        &'a self,
        principal: &'a str,
        _tool: &'a str,
        _arguments: Option<&'a JsonObject>,
    ) -> BoxFuture<'a, Result<(), CallRefusal>> {
        Box::pin(std::future::ready(call_refusal(
            self.0.check(&principal.to_owned()),
        )))
    }
    fn tracked_keys(&self) -> usize {
        self.0.tracked_keys()
    }
}

/// The reference call limit with its buckets in Redis, shared by every replica
/// ([`crate::guard::shared_rate_limit`]).
pub struct SharedPerPrincipal(pub Arc<crate::guard::shared_rate_limit::RedisRateLimiter>);

impl CallLimit for SharedPerPrincipal {
    fn name(&self) -> &'static str {
        REFERENCE
    }
    fn check<'a>(
        &'a self,
        principal: &'a str,
        _tool: &'a str,
        _arguments: Option<&'a JsonObject>,
    ) -> BoxFuture<'a, Result<(), CallRefusal>> {
        Box::pin(async move { call_refusal(self.0.check(principal).await) })
    }
    /// The keys live in Redis (the script's live-key index); this process tracks none.
    fn tracked_keys(&self) -> usize {
        0
    }
}

/// Where the server notes each tool call it runs. The reference logs to stderr (through
/// `tracing`), never to stdout, which on stdio carries only MCP messages.
pub trait CallLog: Send + Sync {
    fn name(&self) -> &'static str;
    fn called(&self, tool: &str);
}

/// The reference call log: a debug event on the log (stderr).
pub struct TracingCallLog;

impl CallLog for TracingCallLog {
    fn name(&self) -> &'static str {
        REFERENCE
    }
    fn called(&self, tool: &str) {
        tracing::debug!(tool, "tool call");
    }
}

/// Which errors the server answers for requests it cannot serve (MCP types: this seam is in
/// front of rmcp, not a guard module).
pub trait ProtocolErrors: Send + Sync {
    fn name(&self) -> &'static str;
    /// A method this server does not implement.
    fn unknown_method(&self, method: &str) -> rmcp::ErrorData;
    /// A method it implements, with params rmcp could not read.
    fn malformed_params(&self, method: &str) -> rmcp::ErrorData;
    /// A `tools/call` for a tool that does not exist.
    fn unknown_tool(&self, tool: &str) -> rmcp::ErrorData;
    /// The code of "resource not found".
    fn resource_not_found(&self) -> rmcp::model::ErrorCode;
}

/// The reference protocol errors: JSON-RPC's -32601 and -32602.
pub struct JsonRpcErrors;

impl ProtocolErrors for JsonRpcErrors {
    fn name(&self) -> &'static str {
        REFERENCE
    }
    fn unknown_method(&self, method: &str) -> rmcp::ErrorData {
        rmcp::ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            method.to_owned(),
            None,
        )
    }
    fn malformed_params(&self, method: &str) -> rmcp::ErrorData {
        rmcp::ErrorData::invalid_params(format!("malformed params for {method}"), None)
    }
    fn unknown_tool(&self, tool: &str) -> rmcp::ErrorData {
        rmcp::ErrorData::invalid_params(format!("unknown tool: {tool}"), None)
    }
    /// -32002, which rmcp's handler turns into -32602 for a 2026-07-28 client (SEP-2164), so
    /// each era gets its own code.
    fn resource_not_found(&self) -> rmcp::model::ErrorCode {
        rmcp::model::ErrorCode::RESOURCE_NOT_FOUND
    }
}

/// A tool a twin adds (the reference has none): its definition and what a call of it answers,
/// given the call's arguments. It is routed like every other tool, so every check of
/// [`crate::tools::ReferenceServer`]'s `admit` applies to it.
#[derive(Clone)]
pub struct ExtraTool {
    pub tool: Tool,
    #[allow(clippy::type_complexity)]
    pub call: Arc<
        dyn Fn(Option<JsonObject>) -> BoxFuture<'static, rmcp::model::CallToolResult> + Send + Sync,
    >,
}

/// Every guard the tools use. Build the reference set with [`Guards::reference`]; a twin
/// replaces one field.
#[derive(Clone)]
pub struct Guards {
    pub files: Arc<dyn Files>,
    pub fetch: Arc<dyn Fetch>,
    pub records: Arc<dyn Records>,
    pub history: Arc<dyn History>,
    pub errors: Arc<dyn ErrorReport>,
    /// The per-call limit; `None` over HTTP, whose layer limits requests.
    pub call_limit: Option<Arc<dyn CallLimit>>,
    pub call_log: Arc<dyn CallLog>,
    pub protocol: Arc<dyn ProtocolErrors>,
    /// The scope each tool requires, shared with the HTTP layer.
    pub scopes: Arc<dyn scopes::Scopes>,
    /// Message and argument size limits, the call timeout and the concurrency limit.
    pub limits: Limits,
    /// Tools a twin adds; empty for the reference.
    pub extra_tools: Vec<ExtraTool>,
    /// `resources/read`.
    pub resources: Arc<dyn ResourceReads>,
    /// The file the `review_file` prompt reads.
    pub prompt_files: Arc<dyn PromptFiles>,
    /// Completions of a sandbox path.
    pub completions: Arc<dyn PathCompletions>,
    /// The sandbox's resource URIs (what is listed; configuration, not a guard).
    pub resource_uris: ResourceUris,
    /// `limits` as configured, to tell a twin's change of them.
    configured_limits: Limits,
}

impl Guards {
    /// The reference guards over the given sandbox (and its URIs), database, fetch policy and
    /// program.
    pub fn reference(
        sandbox: Sandbox,
        resource_uris: ResourceUris,
        db: ReadOnlyDb,
        egress: EgressPolicy,
        history: FixedProgram,
        limits: Limits,
        call_limiter: Option<RateLimiter<String>>,
    ) -> Self {
        Self {
            files: Arc::new(sandbox),
            fetch: Arc::new(egress),
            records: Arc::new(db),
            history: Arc::new(history),
            errors: Arc::new(PublicErrors),
            call_limit: call_limiter
                .map(|limiter| Arc::new(PerPrincipal(limiter)) as Arc<dyn CallLimit>),
            call_log: Arc::new(TracingCallLog),
            protocol: Arc::new(JsonRpcErrors),
            scopes: Arc::new(scopes::ReferenceScopes),
            limits,
            extra_tools: Vec::new(),
            resources: Arc::new(SandboxResources(resource_uris.clone())),
            prompt_files: Arc::new(SandboxPromptFiles),
            completions: Arc::new(SandboxCompletions),
            resource_uris,
            configured_limits: limits,
        }
    }

    /// The guard of each field, by field name: `"reference"` or the twin's flaw.
    pub fn implementations(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("files", self.files.name()),
            ("fetch", self.fetch.name()),
            ("records", self.records.name()),
            ("history", self.history.name()),
            ("errors", self.errors.name()),
            (
                "call_limit",
                self.call_limit.as_ref().map_or(REFERENCE, |l| l.name()),
            ),
            ("call_log", self.call_log.name()),
            ("protocol", self.protocol.name()),
            ("scopes", self.scopes.name()),
            (
                "limits",
                if self.limits == self.configured_limits {
                    REFERENCE
                } else {
                    "changed"
                },
            ),
            (
                "extra_tools",
                if self.extra_tools.is_empty() {
                    REFERENCE
                } else {
                    "extra tools"
                },
            ),
            ("resources", self.resources.name()),
            ("prompt_files", self.prompt_files.name()),
            ("completions", self.completions.name()),
        ]
    }

    /// The fields whose guard is not the reference's.
    pub fn swapped(&self) -> Vec<&'static str> {
        not_reference(self.implementations())
    }
}

/// The fields of `implementations` (field, guard name) whose guard is not the reference's.
pub fn not_reference(implementations: Vec<(&'static str, &'static str)>) -> Vec<&'static str> {
    implementations
        .into_iter()
        .filter(|(_, implementation)| *implementation != REFERENCE)
        .map(|(field, _)| field)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_lists_the_directory_its_value_names() {
        assert_eq!(completed_directory("docs/re"), "docs");
        assert_eq!(completed_directory("re"), ".");
        assert_eq!(completed_directory("../outside/c"), "../outside");
        assert_eq!(completed_directory("/etc/pa"), "/etc");
    }

    #[test]
    fn web_uris_are_told_by_their_scheme_in_any_case() {
        assert!(is_web_uri("http://127.0.0.1/"));
        assert!(is_web_uri("HTTPS://example.com/"));
        assert!(!is_web_uri("file:///srv/data/x"));
        assert!(!is_web_uri("httpx://example.com/"));
    }
}
