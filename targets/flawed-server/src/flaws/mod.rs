//! The flaws: one file per guard family, and [`FLAWS`], the one table of them. The kill matrix
//! reads the table (`flawed-server --list`), so no list of flaw names is kept anywhere else.
//!
//! A flaw replaces the guard fields it names in `swaps` and nothing else: everything around
//! them (authentication, scopes, the rate limit, the argument shape check, the call timeout,
//! the public error report) is still the reference's. A test builds every flaw's guards and
//! checks that the fields it does not name are the reference's.

pub mod auth;
pub mod authorization;
pub mod errors;
pub mod fetch;
pub mod files;
pub mod history;
pub mod keys;
pub mod metadata;
pub mod origin;
pub mod protocol;
pub mod rate;
pub mod records;
pub mod scopes;
pub mod sessions;
pub mod surfaces;

use reference_server::cli::BuildContext;
use reference_server::guards::Guards;
use reference_server::transport::http::HttpGuards;

/// Where the kill matrix certifies a twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Stdio,
    /// Streamable HTTP with API keys.
    Http,
    /// Streamable HTTP with OAuth (JWT access tokens).
    HttpOAuth,
    /// Streamable HTTP with the development authorization server on the same origin
    /// (`--dev-authorization-server`), and API keys for the harness's own calls.
    HttpDevAuthorization,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
            Transport::HttpOAuth => "http-oauth",
            Transport::HttpDevAuthorization => "http-dev-as",
        }
    }
}

/// A change to the tools' guards.
pub type ToolSwap = fn(&mut Guards, &BuildContext);
/// A change to the HTTP layer's guards.
pub type HttpSwap = fn(&mut HttpGuards, &BuildContext);

/// One flawed twin.
pub struct Flaw {
    /// The `--flaw` name.
    pub name: &'static str,
    /// The mistake, in one line.
    pub summary: &'static str,
    /// Where the kill matrix certifies the twin, and the probe (an id prefix) meant to catch
    /// it there.
    pub caught: &'static [(Transport, &'static str)],
    /// The guard fields the twin replaces ([`Guards::swapped`], [`HttpGuards::swapped`]).
    pub swaps: &'static [&'static str],
    /// What the harness needs beyond the twin's command line.
    pub harness_args: &'static [&'static str],
    pub tools: Option<ToolSwap>,
    pub http: Option<HttpSwap>,
}

impl Flaw {
    /// The flaw named `name`.
    pub fn named(name: &str) -> Option<&'static Flaw> {
        FLAWS.iter().find(|flaw| flaw.name == name)
    }
}

/// Every flaw, in kill-matrix order.
pub static FLAWS: &[Flaw] = &[
    files::PATH_PREFIX,
    files::PATH_SYMLINK,
    files::FILENAME_STRIP,
    files::PATH_UNCHECKED,
    files::PATH_DECODE,
    files::WRITE_UNCHECKED,
    files::MKDIR_PREFIX,
    files::INFO_UNCHECKED,
    surfaces::TEMPLATE_UNSANDBOXED,
    surfaces::PROMPT_PATH_JOINED,
    surfaces::COMPLETION_UNSANDBOXED,
    records::SQL_CONCAT,
    history::CMD_SHELL,
    history::ARG_INJECTION,
    fetch::SSRF_OPEN,
    fetch::URL_USERINFO,
    fetch::URL_DENYLIST,
    surfaces::RESOURCE_FETCH_OPEN,
    errors::LEAK_DETAILS,
    errors::LEAK_CONFIG,
    records::LEAK_DB_ERROR,
    protocol::STDOUT_NOISE,
    protocol::WRONG_ERROR_CODES,
    protocol::RESOURCE_MISSING_INTERNAL,
    rate::RATE_NONE,
    rate::NO_SIZE_LIMIT,
    rate::RATE_UNBOUNDED_KEYS,
    rate::RATE_CLIENT_ARG,
    rate::RATE_RACE,
    keys::KEY_ARGUMENT_EARLY_EXIT,
    metadata::POISONED_DESCRIPTION,
    origin::ORIGIN_UNCHECKED,
    origin::HOST_UNCHECKED,
    sessions::SESSION_PREDICTABLE,
    auth::AUTH_QUERY_TOKEN,
    auth::AUTH_EMPTY_KEY,
    auth::AUTH_NONE,
    auth::AUTH_NO_CHALLENGE,
    auth::AUTH_EARLY_EXIT,
    fetch::TOKEN_PASSTHROUGH,
    rate::RATE_CLIENT_ID,
    rate::RATE_GLOBAL,
    sessions::SESSION_UNBOUND,
    scopes::SCOPE_UNCHECKED,
    auth::JWT_UNVERIFIED,
    auth::JWT_NO_AUDIENCE,
    auth::METADATA_UNSERVED,
    authorization::AS_ISSUER_MISMATCH,
    authorization::AS_REGISTRATION_UNBOUNDED,
    authorization::AS_REDIRECT_SCHEME_OPEN,
    authorization::AS_REDIRECT_PREFIX,
    authorization::AS_PKCE_UNCHECKED,
    authorization::AS_RESOURCE_UNBOUND,
];

/// Compares byte by byte, spending `cost` per byte compared, and returns at the first
/// difference (the early-exit twins' comparison).
pub fn early_exit_equal_costing(
    presented: &[u8],
    expected: &[u8],
    cost: std::time::Duration,
) -> bool {
    if presented.len() != expected.len() {
        return false;
    }
    for (a, b) in presented.iter().zip(expected) {
        let until = std::time::Instant::now() + cost;
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        if a != b {
            return false;
        }
    }
    true
}
