//! Twin of the scope table (`Guards::scopes`, shared by the tools and the HTTP layer).

use super::{Flaw, Transport::Http};
use reference_server::guard::scopes::Scopes;
use std::sync::Arc;

/// No tool requires a scope: any authenticated principal may call every tool.
struct NoScopes;

impl Scopes for NoScopes {
    fn name(&self) -> &'static str {
        "scope-unchecked"
    }
    fn required(&self, _tool: &str) -> Option<&'static str> {
        None
    }
}

pub const SCOPE_UNCHECKED: Flaw = Flaw {
    name: "scope-unchecked",
    summary: "HTTP: any valid key runs with every scope (no tool's scope is ever checked).",
    caught: &[(Http, "AUTH-SCOPE")],
    swaps: &["scopes"],
    harness_args: &[],
    tools: Some(|guards, _| guards.scopes = Arc::new(NoScopes)),
    http: None,
};
