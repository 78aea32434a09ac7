//! API-key authentication: `Authorization: Bearer` parsing and a constant-time key check.
//!
//! Keys are never held in plain text: each configured key is reduced to its SHA-256 digest at
//! start-up and the plain value is dropped. A presented token is hashed once, its digest is
//! looked up in a hash table of the configured digests, and a found entry is confirmed with a
//! constant-time comparison ([`subtle`]). Nothing about the *token* can be learned from the
//! time taken: the lookup's timing depends only on the digest, and steering a digest (to learn
//! which buckets or prefixes exist) would need SHA-256 preimages. The time does not depend on
//! how many leading bytes of the token were right, nor on its length beyond the hashing of it.
//!
//! Cost: one SHA-256 of the token (about 120 ns for a 43-byte token with the CPU's SHA
//! instructions), one hash-table lookup, one 32-byte constant-time comparison: the same at 1 or
//! 1,000 keys (benches/README.md).
//!
//! Failure: every malformed header is a [`BearerError`] and every unknown key is
//! [`ApiKeyError::UnknownKey`]; neither ever carries the token, so logging the error is safe.
//! Configuring no key, or a key shorter than [`MIN_KEY_LEN`], is a start-up error: the server
//! fails closed rather than accept every caller.

use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use subtle::ConstantTimeEq;

/// Longest `Authorization` header value accepted, in bytes. Real bearer tokens (JWTs included)
/// are well under this; anything longer is refused before hashing.
pub const MAX_AUTHORIZATION_LEN: usize = 8 * 1024;

/// Shortest API key the server will accept in its configuration, in bytes.
pub const MIN_KEY_LEN: usize = 16;

/// Who is calling, and what they may do. Produced by [`ApiKeys`] or by the OAuth validator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    /// A stable, non-secret name: the keys-file entry name or the JWT `sub`.
    pub name: String,
    /// Scopes granted to this principal, e.g. `files:read`, `files:write`, `admin`.
    pub scopes: BTreeSet<String>,
}

impl Principal {
    pub fn new(
        name: impl Into<String>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }
}

/// Why an `Authorization` header was not a well-formed bearer credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("the Authorization header is missing")]
    Missing,
    #[error("the Authorization header is longer than {MAX_AUTHORIZATION_LEN} bytes")]
    TooLong,
    #[error("the Authorization header contains a control or non-ASCII byte")]
    InvalidByte,
    #[error("the Authorization scheme is not Bearer")]
    WrongScheme,
    #[error("the bearer token is empty or surrounded by extra whitespace")]
    Malformed,
}

/// Extracts the token from an `Authorization: Bearer <token>` value (RFC 6750 section 2.1).
///
/// The scheme is matched case-insensitively; exactly one space separates it from the token; the
/// token must be non-empty, contain no whitespace and only the RFC 6750 `b64token` characters.
pub fn parse_bearer(header: Option<&[u8]>) -> Result<&str, BearerError> {
    let value = header.ok_or(BearerError::Missing)?;
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(BearerError::TooLong);
    }
    if value.iter().any(|b| !(0x20..0x7f).contains(b)) {
        return Err(BearerError::InvalidByte);
    }
    // Safe: every byte was checked to be printable ASCII.
    let value = std::str::from_utf8(value).map_err(|_| BearerError::InvalidByte)?;
    let (scheme, token) = value.split_once(' ').ok_or(BearerError::WrongScheme)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::WrongScheme);
    }
    let is_b64token_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=');
    if token.is_empty() || !token.chars().all(is_b64token_char) {
        return Err(BearerError::Malformed);
    }
    // RFC 6750: '=' may only pad the end.
    if token.trim_end_matches('=').contains('=') {
        return Err(BearerError::Malformed);
    }
    Ok(token)
}

/// Why the key store could not be built or a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("no API key is configured; set {0} or a keys file (the server refuses to run open)")]
    NoKeyConfigured(&'static str),
    #[error("the API key for principal {principal:?} is shorter than {MIN_KEY_LEN} bytes")]
    KeyTooShort { principal: String },
    #[error("the key digest for principal {principal:?} is not 64 hex digits")]
    BadDigest { principal: String },
    #[error("principal {0:?} is configured twice")]
    DuplicatePrincipal(String),
    #[error("principal {0:?} has the same key as another principal")]
    DuplicateKey(String),
    #[error("the API key is not recognised")]
    UnknownKey,
}

/// The configured API keys, each held only as its SHA-256 digest.
#[derive(Clone)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
    principals: Vec<Principal>,
    /// Digest to index in `digests` and `principals`.
    by_digest: HashMap<[u8; 32], usize>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.principals.iter().map(|p| p.name.as_str()).collect();
        f.debug_struct("ApiKeys")
            .field("principals", &names)
            .finish_non_exhaustive()
    }
}

/// Hashes a key the way [`ApiKeys`] stores it.
pub fn key_digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl ApiKeys {
    /// Builds the store from `(principal, plain key)` pairs. The plain keys are hashed and not kept.
    pub fn from_plain_keys<'a>(
        entries: impl IntoIterator<Item = (Principal, &'a [u8])>,
        source_name: &'static str,
    ) -> Result<Self, ApiKeyError> {
        let mut store = Self {
            digests: Vec::new(),
            principals: Vec::new(),
            by_digest: HashMap::new(),
        };
        for (principal, key) in entries {
            if key.len() < MIN_KEY_LEN {
                return Err(ApiKeyError::KeyTooShort {
                    principal: principal.name,
                });
            }
            store.push(principal, key_digest(key))?;
        }
        store.ensure_not_empty(source_name)
    }

    /// Builds the store from `(principal, hex SHA-256 digest)` pairs, as in a keys file.
    pub fn from_hex_digests<'a>(
        entries: impl IntoIterator<Item = (Principal, &'a str)>,
        source_name: &'static str,
    ) -> Result<Self, ApiKeyError> {
        let mut store = Self {
            digests: Vec::new(),
            principals: Vec::new(),
            by_digest: HashMap::new(),
        };
        for (principal, hex) in entries {
            let digest = decode_hex_digest(hex).ok_or_else(|| ApiKeyError::BadDigest {
                principal: principal.name.clone(),
            })?;
            store.push(principal, digest)?;
        }
        store.ensure_not_empty(source_name)
    }

    fn push(&mut self, principal: Principal, digest: [u8; 32]) -> Result<(), ApiKeyError> {
        if self.principals.iter().any(|p| p.name == principal.name) {
            return Err(ApiKeyError::DuplicatePrincipal(principal.name));
        }
        if self.by_digest.contains_key(&digest) {
            return Err(ApiKeyError::DuplicateKey(principal.name));
        }
        self.by_digest.insert(digest, self.digests.len());
        self.digests.push(digest);
        self.principals.push(principal);
        Ok(())
    }

    fn ensure_not_empty(self, source_name: &'static str) -> Result<Self, ApiKeyError> {
        if self.digests.is_empty() {
            Err(ApiKeyError::NoKeyConfigured(source_name))
        } else {
            Ok(self)
        }
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Finds the principal whose key is `token`; the time taken reveals nothing about the
    /// token beyond its length (see the module documentation).
    pub fn authenticate(&self, token: &[u8]) -> Result<&Principal, ApiKeyError> {
        let presented = key_digest(token);
        match self.by_digest.get(&presented) {
            Some(&index) if bool::from(self.digests[index].ct_eq(&presented)) => {
                Ok(&self.principals[index])
            }
            _ => Err(ApiKeyError::UnknownKey),
        }
    }
}

fn decode_hex_digest(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = b"correct-horse-battery-staple";

    fn keys() -> ApiKeys {
        ApiKeys::from_plain_keys(
            [
                (Principal::new("alice", ["files:read"]), KEY),
                (
                    Principal::new("bob", ["admin"]),
                    b"another-long-enough-key".as_slice(),
                ),
            ],
            "MCP_SERVER_TOKEN",
        )
        .unwrap()
    }

    #[test]
    fn bearer_parsing_accepts_only_the_canonical_form() {
        assert_eq!(
            parse_bearer(Some(b"Bearer abc.DEF-_~+/=")),
            Ok("abc.DEF-_~+/=")
        );
        assert_eq!(parse_bearer(Some(b"bearer abc")), Ok("abc"));
        assert_eq!(parse_bearer(None), Err(BearerError::Missing));
        assert_eq!(
            parse_bearer(Some(b"Basic abc")),
            Err(BearerError::WrongScheme)
        );
        assert_eq!(parse_bearer(Some(b"Bearer")), Err(BearerError::WrongScheme));
        assert_eq!(parse_bearer(Some(b"Bearer ")), Err(BearerError::Malformed));
        assert_eq!(
            parse_bearer(Some(b"Bearer  abc")),
            Err(BearerError::Malformed)
        );
        assert_eq!(
            parse_bearer(Some(b"Bearer abc ")),
            Err(BearerError::Malformed)
        );
        assert_eq!(
            parse_bearer(Some(b"Bearer a=bc")),
            Err(BearerError::Malformed)
        );
        assert_eq!(
            parse_bearer(Some(b"Bearer ab\tc")),
            Err(BearerError::InvalidByte)
        );
        assert_eq!(
            parse_bearer(Some("Bearer ab\u{e9}".as_bytes())),
            Err(BearerError::InvalidByte)
        );
        let long = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN));
        assert_eq!(
            parse_bearer(Some(long.as_bytes())),
            Err(BearerError::TooLong)
        );
    }

    #[test]
    fn the_right_key_finds_its_principal() {
        assert_eq!(keys().authenticate(KEY).unwrap().name, "alice");
        assert_eq!(
            keys()
                .authenticate(b"another-long-enough-key")
                .unwrap()
                .name,
            "bob"
        );
    }

    #[test]
    fn empty_and_short_keys_fail_closed_at_configuration() {
        let none: [(Principal, &[u8]); 0] = [];
        assert_eq!(
            ApiKeys::from_plain_keys(none, "MCP_SERVER_TOKEN").unwrap_err(),
            ApiKeyError::NoKeyConfigured("MCP_SERVER_TOKEN")
        );
        let err = ApiKeys::from_plain_keys([(Principal::new("a", ["x"]), b"".as_slice())], "V")
            .unwrap_err();
        assert!(matches!(err, ApiKeyError::KeyTooShort { .. }));
        // The message names the variable, never a value.
        assert!(
            ApiKeyError::NoKeyConfigured("MCP_SERVER_TOKEN")
                .to_string()
                .contains("MCP_SERVER_TOKEN")
        );
    }

    #[test]
    fn an_empty_token_never_authenticates() {
        assert_eq!(keys().authenticate(b""), Err(ApiKeyError::UnknownKey));
    }

    #[test]
    fn hex_digests_load_and_bad_ones_are_named() {
        let hex: String = key_digest(KEY).iter().map(|b| format!("{b:02x}")).collect();
        let store =
            ApiKeys::from_hex_digests([(Principal::new("alice", ["x"]), hex.as_str())], "F")
                .unwrap();
        assert_eq!(store.authenticate(KEY).unwrap().name, "alice");
        let err =
            ApiKeys::from_hex_digests([(Principal::new("eve", ["x"]), "zz")], "F").unwrap_err();
        assert_eq!(
            err,
            ApiKeyError::BadDigest {
                principal: "eve".into()
            }
        );
    }

    #[test]
    fn debug_output_never_shows_digests() {
        let text = format!("{:?}", keys());
        assert!(text.contains("alice"));
        let hex: String = key_digest(KEY).iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&hex[..16]));
    }

    proptest! {
        #[test]
        fn a_wrong_key_of_any_length_is_rejected(token in proptest::collection::vec(any::<u8>(), 0..256)) {
            prop_assume!(token != KEY && token != b"another-long-enough-key");
            let store = keys();
            prop_assert_eq!(store.authenticate(&token), Err(ApiKeyError::UnknownKey));
        }

        #[test]
        fn a_one_byte_change_anywhere_is_rejected(pos in 0..KEY.len(), flip in 1u8..=255) {
            let mut token = KEY.to_vec();
            token[pos] ^= flip;
            let store = keys();
            prop_assert_eq!(store.authenticate(&token), Err(ApiKeyError::UnknownKey));
        }

        #[test]
        fn bearer_parsing_never_accepts_whitespace_or_control_bytes(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut header = b"Bearer ".to_vec();
            header.extend_from_slice(&raw);
            if let Ok(token) = parse_bearer(Some(&header)) {
                prop_assert!(!token.is_empty());
                prop_assert!(token.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }

    #[test]
    fn two_principals_cannot_share_a_key() {
        let key: &[u8] = b"shared-key-0123456789";
        let error = ApiKeys::from_plain_keys(
            [
                (Principal::new("a", ["admin"]), key),
                (Principal::new("b", ["admin"]), key),
            ],
            "test",
        )
        .unwrap_err();
        assert!(matches!(error, ApiKeyError::DuplicateKey(name) if name == "b"));
    }
}
