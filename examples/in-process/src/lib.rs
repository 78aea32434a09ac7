//! A toy MCP server on rmcp, to show a server certifying itself from its own tests (see
//! `tests/certify.rs`): one tool, `read_note`, that reads a note by name from the directory the
//! server is given, and refuses any name that is not a plain file name.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, CustomRequest, CustomResult, Implementation, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::PathBuf;

/// The notes server: notes are the `.txt` files directly inside `directory`.
#[derive(Clone)]
pub struct NotesServer {
    directory: PathBuf,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadNoteArgs {
    /// The note's file name, for example `todo.txt`.
    pub name: String,
}

/// Whether `name` is a plain file name of a note: letters, digits, `-` and `_`, then `.txt`.
/// Nothing that could name another directory gets through (no separator, no dot but the
/// extension's, no encoding).
fn is_note_name(name: &str) -> bool {
    name.strip_suffix(".txt").is_some_and(|stem| {
        !stem.is_empty()
            && stem.len() <= 64
            && stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

#[tool_router]
impl NotesServer {
    pub fn new(directory: PathBuf) -> Self {
        Self {
            directory,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Read a note by its file name.",
        annotations(read_only_hint = true)
    )]
    async fn read_note(
        &self,
        Parameters(args): Parameters<ReadNoteArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if !is_note_name(&args.name) {
            return Ok(CallToolResult::error(vec![ContentBlock::text(
                "a note name is letters, digits, '-' or '_', then .txt",
            )]));
        }
        // The file is opened without following a symlink at the last component: a note that
        // is a link to elsewhere is refused.
        let path = self.directory.join(&args.name);
        let text = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => std::fs::read_to_string(&path).ok(),
            _ => None,
        };
        Ok(match text {
            Some(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            None => CallToolResult::error(vec![ContentBlock::text("no such note")]),
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for NotesServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("notes", env!("CARGO_PKG_VERSION")))
    }

    /// rmcp hands a request whose params it could not parse to this method. For a method the
    /// server implements that is malformed params, which JSON-RPC answers with -32602; rmcp's
    /// default answer, -32601 "method not found", is what PROTO-INVALID-PARAMS fails.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        const IMPLEMENTED: &[&str] = &["initialize", "ping", "tools/list", "tools/call"];
        if IMPLEMENTED.contains(&request.method.as_str()) {
            Err(ErrorData::invalid_params(
                format!("malformed params for {}", request.method),
                None,
            ))
        } else {
            Err(ErrorData::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                format!("no method {}", request.method),
                None,
            ))
        }
    }
}
