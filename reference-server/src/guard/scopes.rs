//! Which scope each tool requires beyond authentication: the one table both the tools (which
//! check it on every transport) and the HTTP layer (which refuses with 403 `insufficient_scope`
//! before the call is read further) use, so the two can never disagree.
//!
//! Cost: a `match` on the tool name. Failure: none; a tool not listed needs no scope.

/// Scopes a tool may require. `files:write` for changes in the sandbox, `admin` for statistics.
pub const ALL_SCOPES: &[&str] = &["files:write", "admin"];

/// The scope `tool` requires, if any.
pub fn required_scope(tool: &str) -> Option<&'static str> {
    match tool {
        "write_file" | "delete_file" | "create_directory" => Some("files:write"),
        "admin_stats" => Some("admin"),
        _ => None,
    }
}

/// The scope table as a guard a test twin can replace (see [`crate::guards`]).
pub trait Scopes: Send + Sync {
    fn name(&self) -> &'static str;
    /// The scope `tool` requires, if any.
    fn required(&self, tool: &str) -> Option<&'static str>;
}

/// The reference table, [`required_scope`].
pub struct ReferenceScopes;

impl Scopes for ReferenceScopes {
    fn name(&self) -> &'static str {
        crate::guards::REFERENCE
    }
    fn required(&self, tool: &str) -> Option<&'static str> {
        required_scope(tool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_required_scope_is_a_known_scope() {
        for tool in [
            "write_file",
            "delete_file",
            "create_directory",
            "admin_stats",
            "read_file",
        ] {
            if let Some(scope) = required_scope(tool) {
                assert!(ALL_SCOPES.contains(&scope), "{tool}: {scope}");
            }
        }
        assert_eq!(required_scope("read_file"), None);
    }
}
