//! Resources and the prompt: the surfaces beside the tools, admitted exactly as tools are.
//!
//! | surface | what it reaches | guard |
//! |---|---|---|
//! | `resources/list` | the sandbox's files as `file://` URIs (at most the sandbox's listing limit) | [`Files`](crate::guards::Files) |
//! | `resources/templates/list` | `file:///SANDBOX/{+path}` and `{+url}` | - |
//! | `resources/read` | a `file://` URI under the sandbox, or an http(s) URL on an allowed host | [`ResourceReads`](crate::guards::ResourceReads) over the file and fetch guards |
//! | `prompts/get review_file` | a message quoting the sandbox file its `path` argument names | [`PromptFiles`](crate::guards::PromptFiles) |
//! | `completion/complete` of that `path` or the template's `path` | sandbox paths that begin with the value (one directory level, at most 100) | [`PathCompletions`](crate::guards::PathCompletions) over the file guard |
//!
//! Admission is the tools': the caller must be authenticated, and the stdio rate limit, the
//! argument shape check, the per-principal concurrency slot and the call timeout apply
//! ([`ReferenceServer::admit_work`]); the HTTP layer limits every request, these included.
//!
//! Errors follow the specification of the negotiated protocol. A URI that names nothing the
//! server may read, whether it is missing, outside the sandbox or refused by the egress policy,
//! is "resource not found", told apart from nothing else (no existence oracle): -32002 up to
//! 2025-11-25, -32602 from 2026-07-28 (SEP-2164; rmcp's handler rewrites the code for a
//! 2026-07-28 client, [`crate::guards::ProtocolErrors::resource_not_found`]). A prompt argument that names no readable
//! file is -32602, as the prompts specification says for invalid arguments. Either carries only
//! the public message and a correlation id ([`crate::guard::public_error`]). A completion that
//! cannot be made (a value naming no sandbox directory) is an empty list: completions are hints.
//!
//! Cost: a listing walks at most the sandbox's listing limit; a read is the guard's cost.
//! Failure: every refusal is a JSON-RPC error; nothing here panics.

use super::{ReferenceServer, WorkRefusal};
use crate::guard::api_keys::Principal;
use crate::guard::egress::EgressError;
use crate::guard::limits::with_timeout;
use crate::guard::public_error::{FailureKind, WithSources};
use crate::guard::resource_uri::UriError;
use crate::guard::sandbox::SandboxError;
use crate::guards::{ResourceBody, ResourceError};
use rmcp::model::{
    CompleteRequestParams, CompleteResult, CompletionInfo, ErrorCode, GetPromptRequestParams,
    GetPromptResult, JsonObject, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams,
    ReadResourceResult, Reference, Resource, ResourceContents, ResourceTemplate, Role,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

/// The one prompt.
pub const REVIEW_PROMPT: &str = "review_file";
/// How deep `resources/list` walks the sandbox.
pub const LISTED_DEPTH: u8 = 3;

/// What a failed read is, for the public message.
fn resource_failure_kind(error: &ResourceError) -> FailureKind {
    match error {
        ResourceError::Uri(UriError::Unparsable | UriError::NotUtf8) => FailureKind::InvalidInput,
        ResourceError::Uri(_) => FailureKind::NotFound,
        ResourceError::Sandbox(SandboxError::Io(_)) => FailureKind::Internal,
        ResourceError::Sandbox(SandboxError::TooLarge { .. }) => FailureKind::TooLarge,
        ResourceError::Sandbox(_) => FailureKind::NotFound,
        ResourceError::Egress(EgressError::Timeout) => FailureKind::TimedOut,
        ResourceError::Egress(EgressError::RequestFailed | EgressError::ResolutionFailed) => {
            FailureKind::Internal
        }
        ResourceError::Egress(_) => FailureKind::NotFound,
    }
}

impl ReferenceServer {
    /// The caller, or the error a request without one gets.
    pub(crate) fn caller<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
    ) -> Result<&'a Principal, ErrorData> {
        self.principal(context).ok_or_else(|| {
            ErrorData::new(ErrorCode::INVALID_REQUEST, "authentication required", None)
        })
    }

    /// The public error of `kind` for `operation` (its fixed message and correlation id), as a
    /// JSON-RPC error with `code`; the detail goes to the log only.
    fn public_rpc_error(
        &self,
        code: ErrorCode,
        kind: FailureKind,
        operation: &str,
        detail: &dyn std::fmt::Display,
    ) -> ErrorData {
        let public = self.state.guards.errors.report(kind, operation, detail);
        let code = if kind == FailureKind::Internal || kind == FailureKind::TimedOut {
            ErrorCode::INTERNAL_ERROR
        } else {
            code
        };
        ErrorData::new(code, public.to_string(), None)
    }

    /// Admits one request of `operation` with `arguments`, or says why not.
    async fn admit_surface(
        &self,
        operation: &str,
        arguments: &JsonObject,
        context: &RequestContext<RoleServer>,
    ) -> Result<crate::guard::limits::CallSlot, ErrorData> {
        let principal = self.caller(context)?;
        self.admit_work(principal, operation, Some(arguments))
            .await
            .map_err(|refusal| match refusal {
                WorkRefusal::Error(error) => error,
                WorkRefusal::InvalidArguments(reason) => {
                    ErrorData::invalid_params(format!("invalid arguments: {reason}"), None)
                }
            })
    }

    pub(crate) async fn surface_list_resources(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.caller(context)?;
        let files = self.state.guards.files.clone();
        let listing = super::blocking(move || files.list(".", LISTED_DEPTH)).await?;
        let uris = &self.state.guards.resource_uris;
        let resources = match listing {
            Ok(listing) => listing
                .entries
                .into_iter()
                // Files only, and none under a dot directory (`.git`): what a user would open.
                .filter(|entry| {
                    entry.kind == "file" && !entry.path.split('/').any(|c| c.starts_with('.'))
                })
                .map(|entry| {
                    let resource = Resource::new(uris.uri_of(&entry.path), entry.path.clone())
                        .with_description("A file in the sandbox");
                    match entry.size {
                        Some(size) => resource.with_size(size),
                        None => resource,
                    }
                })
                .collect(),
            Err(error) => {
                tracing::warn!(error = %WithSources(&error), "the sandbox could not be listed");
                Vec::new()
            }
        };
        Ok(ListResourcesResult::with_all_items(resources))
    }

    pub(crate) async fn surface_list_resource_templates(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.caller(context)?;
        let uris = &self.state.guards.resource_uris;
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(uris.template(), "sandbox-file")
                .with_description("Any file inside the sandbox, by its path relative to the sandbox root.")
                .with_mime_type("text/plain"),
            ResourceTemplate::new("{+url}", "web-page").with_description(
                "An http(s) URL on an allowed host, fetched through the egress policy: private, loopback and metadata addresses are refused.",
            ),
        ]))
    }

    pub(crate) async fn surface_read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResult, ErrorData> {
        let mut arguments = JsonObject::new();
        arguments.insert("uri".into(), request.uri.clone().into());
        let _slot = self
            .admit_surface("resources/read", &arguments, &context)
            .await?;
        let not_found = self.state.guards.protocol.resource_not_found();
        let guards = &self.state.guards;
        let read = guards
            .resources
            .read(&request.uri, guards.files.clone(), guards.fetch.clone());
        let body = match with_timeout(guards.limits.call_timeout, read).await {
            Ok(Ok(body)) => body,
            Ok(Err(error)) => {
                return Err(self.public_rpc_error(
                    not_found,
                    resource_failure_kind(&error),
                    "resources/read",
                    &WithSources(&error),
                ));
            }
            Err(error) => {
                return Err(self.public_rpc_error(
                    not_found,
                    FailureKind::TimedOut,
                    "resources/read",
                    &error,
                ));
            }
        };
        let contents = match body {
            ResourceBody::Text(text) => ResourceContents::text(text, request.uri),
            ResourceBody::Bytes(bytes) => ResourceContents::blob(
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes),
                request.uri,
            ),
        };
        Ok(ReadResourceResult::new(vec![contents]))
    }

    pub(crate) async fn surface_list_prompts(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.caller(context)?;
        Ok(ListPromptsResult::with_all_items(vec![Prompt::new(
            REVIEW_PROMPT,
            Some("Ask for a review of a text file in the sandbox, quoted in the message."),
            Some(vec![
                PromptArgument::new("path")
                    .with_description("The file, relative to the sandbox root")
                    .with_required(true),
            ]),
        )]))
    }

    pub(crate) async fn surface_get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResult, ErrorData> {
        if request.name != REVIEW_PROMPT {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt: {}", request.name),
                None,
            ));
        }
        let arguments = request.arguments.unwrap_or_default();
        let _slot = self
            .admit_surface("prompts/get", &arguments, &context)
            .await?;
        let Some(path) = arguments.get("path").and_then(|v| v.as_str()) else {
            return Err(ErrorData::invalid_params(
                "the argument path is required and must be a string",
                None,
            ));
        };
        let guards = &self.state.guards;
        let read = guards.prompt_files.read(path, guards.files.clone());
        let text = match with_timeout(guards.limits.call_timeout, read).await {
            Ok(Ok(text)) => text,
            Ok(Err(error)) => {
                let kind = match &error {
                    SandboxError::Io(_) => FailureKind::Internal,
                    _ => FailureKind::InvalidInput,
                };
                return Err(self.public_rpc_error(
                    ErrorCode::INVALID_PARAMS,
                    kind,
                    REVIEW_PROMPT,
                    &WithSources(&error),
                ));
            }
            Err(error) => {
                return Err(self.public_rpc_error(
                    ErrorCode::INTERNAL_ERROR,
                    FailureKind::TimedOut,
                    REVIEW_PROMPT,
                    &error,
                ));
            }
        };
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!("Review this file for errors and unclear passages:\n\n{text}"),
        )])
        .with_description("A review of one sandbox file"))
    }

    pub(crate) async fn surface_complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let guards = &self.state.guards;
        let completes_a_path = request.argument.name == "path"
            && match &request.r#ref {
                Reference::Prompt(prompt) => prompt.name == REVIEW_PROMPT,
                Reference::Resource(template) => template.uri == guards.resource_uris.template(),
                _ => false,
            };
        let mut arguments = JsonObject::new();
        arguments.insert("value".into(), request.argument.value.clone().into());
        let _slot = self
            .admit_surface("completion/complete", &arguments, &context)
            .await?;
        let values = if completes_a_path {
            let complete = guards
                .completions
                .complete(&request.argument.value, guards.files.clone());
            match with_timeout(guards.limits.call_timeout, complete).await {
                Ok(Ok(values)) => values,
                Ok(Err(error)) => {
                    tracing::debug!(error = %WithSources(&error), "no completion");
                    Vec::new()
                }
                Err(error) => {
                    tracing::debug!(%error, "no completion");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let completion = CompletionInfo::new(values).unwrap_or_default();
        Ok(CompleteResult::new(completion))
    }
}
