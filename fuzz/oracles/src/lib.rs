//! The oracles behind the reference server's fuzz targets (`fuzz/fuzz_targets/`).
//!
//! Each module has one `check(data: &[u8])` that turns the fuzzer's bytes into operations on one
//! guard and panics when the guard breaks a promise it makes, judged by something other than
//! the guard itself: a canary file read or changed, an independent address classifier, a model
//! of the rate limiter, a plain re-implementation of the SQL filter, a planted secret, rmcp's own
//! reading of a request body. "It did
//! not panic" is never the whole oracle.
//!
//! The same functions replay the committed corpora and every regression file under plain
//! `cargo test` (tests/replay.rs), so a bug the fuzzer once found stays fixed on stable Rust.
//!
//! Cost: microseconds per input for the pure guards; the sandbox target rebuilds a small file
//! tree per input (tens of microseconds) and the JSON-RPC target runs a whole MCP session per
//! input (hundreds of microseconds). Failure: a violated oracle panics with what was violated.

pub mod auth_header;
pub mod egress;
pub mod jsonrpc;
pub mod jwt;
pub mod rate_limiter;
pub mod redaction;
pub mod resource_uri;
pub mod sandbox;
pub mod scope_body;
pub mod sql;

/// An oracle: panics when the input broke the guard's promise.
pub type Oracle = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/corpus/` and `fuzz/regressions/`) and its
/// oracle.
pub const TARGETS: &[(&str, Oracle)] = &[
    ("auth_header", auth_header::check),
    ("egress", egress::check),
    ("jsonrpc", jsonrpc::check),
    ("jwt", jwt::check),
    ("rate_limiter", rate_limiter::check),
    ("redaction", redaction::check),
    ("resource_uri", resource_uri::check),
    ("sandbox", sandbox::check),
    ("scope_body", scope_body::check),
    ("sql", sql::check),
];
