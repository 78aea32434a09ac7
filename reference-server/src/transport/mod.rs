//! The two MCP transports. Both serve the same [`crate::tools::ReferenceServer`].
//!
//! - [`stdio`]: the launcher is the principal; stdout carries only MCP messages (logs go to
//!   stderr, configured in the binary before anything else runs).
//! - [`http`]: Streamable HTTP behind tower layers (body limit, timeout, Origin/Host, auth,
//!   rate limit, scope and session binding), plus the OAuth protected resource metadata.

pub mod http;
pub mod stdio;
