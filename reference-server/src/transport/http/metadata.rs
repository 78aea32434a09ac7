//! The OAuth protected resource metadata (RFC 9728) a client reads to find the authorization
//! server, served when OAuth is configured.
//!
//! Cost: one small JSON document per request. Failure: none; without OAuth the paths are not
//! routed (404).

use crate::guard::scopes::ALL_SCOPES;

/// The URL of the protected resource metadata document for `public_url` (RFC 9728 section 3.1:
/// the well-known path is inserted between the host and the resource's path).
pub fn metadata_url(public_url: &str) -> String {
    match url::Url::parse(public_url) {
        Ok(url) => {
            let path = url.path().trim_end_matches('/');
            let origin = url.origin().ascii_serialization();
            format!("{origin}/.well-known/oauth-protected-resource{path}")
        }
        Err(_) => String::from("/.well-known/oauth-protected-resource"),
    }
}

/// The path [`metadata_url`] names on this server.
pub fn metadata_path(public_url: &str) -> String {
    url::Url::parse(public_url)
        .map(|u| {
            format!(
                "/.well-known/oauth-protected-resource{}",
                u.path().trim_end_matches('/')
            )
        })
        .unwrap_or_else(|_| "/.well-known/oauth-protected-resource/mcp".into())
}

/// The metadata document (a test seam: see [`crate::guards`]).
pub trait ResourceMetadata: Send + Sync {
    fn name(&self) -> &'static str;
    /// The document to serve, or `None` for 404.
    fn document(&self) -> Option<serde_json::Value>;
}

/// The reference document.
pub struct ProtectedResource {
    /// This server's MCP endpoint URL: the OAuth resource identifier.
    pub resource: String,
    pub authorization_servers: Vec<String>,
}

impl ResourceMetadata for ProtectedResource {
    fn name(&self) -> &'static str {
        crate::guards::REFERENCE
    }
    fn document(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "resource": self.resource,
            "authorization_servers": self.authorization_servers,
            "bearer_methods_supported": ["header"],
            "scopes_supported": ALL_SCOPES,
            "resource_name": "mcp-reference-server",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_inserts_the_well_known_path() {
        assert_eq!(
            metadata_url("http://127.0.0.1:8765/mcp"),
            "http://127.0.0.1:8765/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("https://a.example/"),
            "https://a.example/.well-known/oauth-protected-resource"
        );
    }
}
