//! The guards: small, synchronous where possible, and free of MCP types. Each has its own error
//! enum and a module doc that states what it costs and how it fails. Tools and transports are
//! built on these; nothing reaches a file, a URL or the database except through one of them.

pub mod api_keys;
pub mod db;
pub mod egress;
pub mod limits;
pub mod oauth;
pub mod program;
pub mod public_error;
pub mod rate_limit;
pub mod resource_uri;
pub mod sandbox;
pub mod scopes;
pub mod shared_rate_limit;
