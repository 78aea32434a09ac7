//! The reference secure MCP server: guards (no MCP types), tools built on them, and the stdio
//! and Streamable HTTP transports. See the README's security model for where each practice of
//! the MCP security best practices lives and which test proves it.

pub mod cli;
pub mod config;
pub mod guard;
pub mod guards;
pub mod tools;
pub mod transport;
