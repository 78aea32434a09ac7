//! Configuration: a TOML file, the environment for secrets, and command-line flags on top.
//!
//! Secrets (the API key in `MCP_SERVER_TOKEN`) are read into [`secrecy::SecretString`], hashed
//! at once into [`ApiKeys`], and dropped; no configuration type can print a secret through
//! `Debug`. Validation happens at start-up and names the setting that is missing or wrong,
//! never its value: a server that would run open (HTTP with no key and no OAuth) refuses to
//! start.
//!
//! Cost: read once at start. Failure: [`ConfigError`], printed by the binary before it exits
//! with status 2.

use crate::guard::api_keys::{ApiKeyError, ApiKeys, Principal};
use crate::guard::limits::Limits;
use crate::guard::rate_limit::RateLimitConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The environment variable holding the single API key (as in the seed document).
pub const TOKEN_VAR: &str = "MCP_SERVER_TOKEN";
/// The environment variable listing the scopes granted to that key (space separated).
pub const TOKEN_SCOPES_VAR: &str = "MCP_SERVER_TOKEN_SCOPES";

pub use crate::guard::scopes::ALL_SCOPES;

/// Why the configuration was refused. Messages name settings, never secret values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("the configuration file {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("setting {setting} is invalid: {reason}")]
    BadSetting {
        setting: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Keys(#[from] ApiKeyError),
}

/// The file format. Every section is optional; unknown keys are an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub root: Option<PathBuf>,
    pub database: Option<PathBuf>,
    pub keys_file: Option<PathBuf>,
    #[serde(default)]
    pub http: HttpSettings,
    pub oauth: Option<OAuthSettings>,
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub egress: EgressSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address to bind. Default 127.0.0.1:8765 (loopback only).
    pub bind: SocketAddr,
    /// Accepted `Host` header values (host or host:port).
    pub allowed_hosts: Vec<String>,
    /// Accepted `Origin` values (`scheme://host:port`, `:*` for any port). A request with any
    /// other Origin is refused with 403; an empty list refuses every request that carries one.
    /// Default: loopback origins only, which a DNS-rebinding page (whose origin is the
    /// attacker's domain) cannot present.
    pub allowed_origins: Vec<String>,
    /// This server's public URL of the MCP endpoint, the OAuth resource identifier.
    pub public_url: Option<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8765)),
            allowed_hosts: vec![
                "localhost".into(),
                "127.0.0.1".into(),
                "::1".into(),
                "[::1]".into(),
            ],
            allowed_origins: [
                "http://localhost:*",
                "http://127.0.0.1:*",
                "http://[::1]:*",
                "https://localhost:*",
                "https://127.0.0.1:*",
                "https://[::1]:*",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            public_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    /// The authorization server's issuer identifier (`iss`).
    pub issuer: String,
    /// A JWKS file, or an `http://` URL on loopback.
    pub jwks: String,
    /// Authorization servers advertised in the protected resource metadata. Default: [issuer].
    #[serde(default)]
    pub authorization_servers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    pub burst: u32,
    pub per_second: f64,
    pub max_tracked_keys: usize,
    /// Where the buckets live: `memory` (this process) or `redis` (shared by replicas).
    pub store: RateLimitStore,
    /// The Redis URL when `store = "redis"`.
    pub url: Option<String>,
    /// The prefix of every Redis key: replicas that share a limit share a prefix.
    pub prefix: String,
    /// The longest a check waits for Redis before it is refused (fail closed).
    pub timeout_ms: u64,
}

/// Where the rate limit's buckets live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitStore {
    #[default]
    Memory,
    Redis,
}

impl Default for RateLimitSettings {
    /// 20 calls a second per principal, 40 at once: above the pace of any agent working for a
    /// person, below what a runaway loop or a scraper does.
    fn default() -> Self {
        Self {
            burst: 40,
            per_second: 20.0,
            max_tracked_keys: 10_000,
            store: RateLimitStore::Memory,
            url: None,
            prefix: "mcp-reference-server".into(),
            timeout_ms: 250,
        }
    }
}

impl RateLimitSettings {
    /// The Redis settings when `store = "redis"`: `None` for `memory`, an error naming the
    /// setting when `url` is missing or the timeout is 0.
    pub fn redis(
        &self,
    ) -> Result<Option<crate::guard::shared_rate_limit::RedisSettings>, ConfigError> {
        if self.store == RateLimitStore::Memory {
            return Ok(None);
        }
        let url = self.url.clone().ok_or(ConfigError::BadSetting {
            setting: "rate_limit.url",
            reason: "store = \"redis\" needs a url (redis://HOST:PORT)".into(),
        })?;
        if self.timeout_ms == 0 || self.timeout_ms > 10_000 {
            return Err(ConfigError::BadSetting {
                setting: "rate_limit.timeout_ms",
                reason: "between 1 and 10000".into(),
            });
        }
        Ok(Some(crate::guard::shared_rate_limit::RedisSettings {
            url,
            prefix: self.prefix.clone(),
            timeout: std::time::Duration::from_millis(self.timeout_ms),
        }))
    }
}

impl From<&RateLimitSettings> for RateLimitConfig {
    fn from(s: &RateLimitSettings) -> Self {
        RateLimitConfig {
            burst: s.burst,
            per_second: s.per_second,
            max_tracked_keys: s.max_tracked_keys,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressSettings {
    /// Hosts `fetch_url` may reach: exact names or `*.example.com`.
    pub allowed_hosts: Vec<String>,
    /// Ports allowed besides 80 and 443.
    pub allowed_ports: Vec<u16>,
    /// Internal services by exact address and port (`"127.0.0.1:8080"`), the one exception to
    /// the blocked ranges (loopback, private...); their host and port must be allowed too.
    pub allowed_internal: Vec<std::net::SocketAddr>,
    pub max_response_bytes: usize,
}

impl Default for EgressSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["example.com".into()],
            allowed_ports: Vec::new(),
            allowed_internal: Vec::new(),
            max_response_bytes: 256 * 1024,
        }
    }
}

/// The keys file: one entry per principal, keys stored only as SHA-256 hex digests.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    principal: Vec<KeysFileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFileEntry {
    name: String,
    key_sha256: String,
    #[serde(default)]
    scopes: Vec<String>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: path.into(),
            reason: e.kind().to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.into(),
            reason: e.message().to_owned(),
        })
    }
}

/// Scopes named in `MCP_SERVER_TOKEN_SCOPES`, or every scope when it is unset.
pub fn scopes_from_env(value: Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(value) = value else {
        return Ok(ALL_SCOPES.iter().map(|s| s.to_string()).collect());
    };
    let scopes: Vec<String> = value.split_whitespace().map(String::from).collect();
    if let Some(unknown) = scopes.iter().find(|s| !ALL_SCOPES.contains(&s.as_str())) {
        return Err(ConfigError::BadSetting {
            setting: TOKEN_SCOPES_VAR,
            reason: format!(
                "unknown scope {unknown:?}; known scopes: {}",
                ALL_SCOPES.join(", ")
            ),
        });
    }
    Ok(scopes)
}

/// Builds the API keys from a keys file and/or the token variable. Returns `Ok(None)` when
/// neither is configured; the caller decides whether that is fatal.
pub fn load_api_keys(
    keys_file: Option<&Path>,
    token: Option<SecretString>,
    scopes: Vec<String>,
) -> Result<Option<ApiKeys>, ConfigError> {
    if let Some(path) = keys_file {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: path.into(),
            reason: e.kind().to_string(),
        })?;
        let file: KeysFile = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.into(),
            reason: e.message().to_owned(),
        })?;
        let mut entries: Vec<(Principal, String)> = file
            .principal
            .into_iter()
            .map(|e| (Principal::new(e.name, e.scopes), e.key_sha256))
            .collect();
        if let Some(token) = token {
            let digest: String =
                crate::guard::api_keys::key_digest(token.expose_secret().as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
            check_token_length(&token)?;
            entries.push((Principal::new("token", scopes), digest));
        }
        let keys = ApiKeys::from_hex_digests(
            entries.iter().map(|(p, d)| (p.clone(), d.as_str())),
            "keys_file",
        )?;
        return Ok(Some(keys));
    }
    match token {
        Some(token) => {
            check_token_length(&token)?;
            let keys = ApiKeys::from_plain_keys(
                [(
                    Principal::new("token", scopes),
                    token.expose_secret().as_bytes(),
                )],
                TOKEN_VAR,
            )?;
            Ok(Some(keys))
        }
        None => Ok(None),
    }
}

fn check_token_length(token: &SecretString) -> Result<(), ConfigError> {
    if token.expose_secret().len() < crate::guard::api_keys::MIN_KEY_LEN {
        return Err(ConfigError::BadSetting {
            setting: TOKEN_VAR,
            reason: format!(
                "the key must be at least {} bytes (an empty key would accept an empty token)",
                crate::guard::api_keys::MIN_KEY_LEN
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_or_empty_token_is_refused_without_printing_it() {
        for value in ["", "short-secret"] {
            let error = load_api_keys(None, Some(SecretString::from(value)), vec![]).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(TOKEN_VAR), "{message}");
            if !value.is_empty() {
                assert!(!message.contains(value), "{message}");
            }
        }
    }

    #[test]
    fn nothing_configured_is_reported_as_none() {
        assert!(load_api_keys(None, None, vec![]).unwrap().is_none());
    }

    #[test]
    fn the_keys_file_and_token_combine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let digest: String = crate::guard::api_keys::key_digest(b"alice-key-0123456789")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(
            &path,
            format!(
                "[[principal]]\nname = \"alice\"\nkey_sha256 = \"{digest}\"\nscopes = [\"admin\"]\n"
            ),
        )
        .unwrap();
        let keys = load_api_keys(
            Some(&path),
            Some(SecretString::from("operator-key-0123456789")),
            vec![],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            keys.authenticate(b"alice-key-0123456789").unwrap().name,
            "alice"
        );
        assert_eq!(
            keys.authenticate(b"operator-key-0123456789").unwrap().name,
            "token"
        );
        std::fs::write(&path, "[[principal]]\nname = \"x\"\nkey = \"plain\"\n").unwrap();
        assert!(matches!(
            load_api_keys(Some(&path), None, vec![]),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn unknown_scopes_and_fields_are_named() {
        let error = scopes_from_env(Some("admin root".into()))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(TOKEN_SCOPES_VAR) && error.contains("root"),
            "{error}"
        );
        let parsed: Result<FileConfig, _> = toml::from_str("[http]\nbindd = \"x\"");
        assert!(parsed.is_err());
    }
}
