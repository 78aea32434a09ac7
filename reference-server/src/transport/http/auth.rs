//! Authentication of HTTP requests: `Authorization: Bearer` only (never a query parameter),
//! checked against the API keys or, for JWT-shaped tokens when OAuth is configured, the JWT
//! validator; and the `WWW-Authenticate` challenge a refusal carries.
//!
//! Cost: one header parse, then one keyed digest and constant-time compare (API keys) or one
//! signature verification (JWT). Failure: [`AuthFailure`], which the layer answers with 401 and
//! the challenge; the reason goes to the log only.

use crate::guard::api_keys::{ApiKeys, BearerError, Principal, parse_bearer};
use crate::guard::oauth::JwtValidator;
use axum::http::{HeaderMap, HeaderValue, Uri, header};

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credential was sent")]
    Missing,
    #[error("malformed Authorization header: {0}")]
    Malformed(String),
    #[error("the credential is invalid: {0}")]
    Invalid(String),
}

/// Who a request's credential names (a test seam: see [`crate::guards`]).
pub trait Authenticate: Send + Sync {
    fn name(&self) -> &'static str;
    /// The principal the request's credential names, or why there is none.
    fn authenticate(&self, headers: &HeaderMap, uri: &Uri) -> Result<Principal, AuthFailure>;
    /// Whether JWT access tokens are accepted (the metadata document and the challenge's
    /// `resource_metadata` exist only then).
    fn accepts_jwt(&self) -> bool;
}

/// The reference authenticator.
pub struct Authenticator {
    pub api_keys: Option<ApiKeys>,
    pub jwt: Option<JwtValidator>,
    /// Development only: every request runs as a principal with every scope. The binary allows
    /// it only on a loopback bind and warns at every start.
    pub insecure_dev_principal: Option<Principal>,
}

impl Authenticator {
    /// The principal `token` names.
    pub fn authenticate_token(&self, token: &str) -> Result<Principal, AuthFailure> {
        let looks_like_jwt = token.split('.').count() == 3;
        match (&self.jwt, &self.api_keys) {
            (Some(jwt), _) if looks_like_jwt => jwt.validate(token).map_err(|e| e.to_string()),
            (_, Some(keys)) => keys
                .authenticate(token.as_bytes())
                .cloned()
                .map_err(|e| e.to_string()),
            _ => Err("no credential of this kind is accepted".to_owned()),
        }
        .map_err(AuthFailure::Invalid)
    }
}

impl Authenticate for Authenticator {
    fn name(&self) -> &'static str {
        crate::guards::REFERENCE
    }

    fn authenticate(&self, headers: &HeaderMap, _uri: &Uri) -> Result<Principal, AuthFailure> {
        if let Some(dev) = &self.insecure_dev_principal {
            return Ok(dev.clone());
        }
        let header_value = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        match parse_bearer(header_value) {
            Ok(token) => self.authenticate_token(token),
            Err(BearerError::Missing) => Err(AuthFailure::Missing),
            Err(error) => Err(AuthFailure::Malformed(error.to_string())),
        }
    }

    fn accepts_jwt(&self) -> bool {
        self.jwt.is_some()
    }
}

/// The `WWW-Authenticate` value a 401 carries (a test seam: see [`crate::guards`]).
pub trait Challenge: Send + Sync {
    fn name(&self) -> &'static str;
    /// The challenge for a refusal with an optional `(error, description)`; `None` sends none.
    fn challenge(&self, error: Option<(&str, &str)>) -> Option<HeaderValue>;
}

/// The reference challenge: `Bearer`, with `resource_metadata` (RFC 9728) when OAuth is
/// configured and `realm="mcp"` otherwise.
pub struct BearerChallenge {
    /// The protected resource metadata URL, when OAuth is configured.
    pub resource_metadata: Option<String>,
}

impl Challenge for BearerChallenge {
    fn name(&self) -> &'static str {
        crate::guards::REFERENCE
    }

    fn challenge(&self, error: Option<(&str, &str)>) -> Option<HeaderValue> {
        let mut parts = vec![];
        match &self.resource_metadata {
            Some(url) => parts.push(format!("resource_metadata=\"{url}\"")),
            None => parts.push("realm=\"mcp\"".to_owned()),
        }
        if let Some((code, description)) = error {
            parts.push(format!("error=\"{code}\""));
            parts.push(format!("error_description=\"{description}\""));
        }
        Some(
            HeaderValue::from_str(&format!("Bearer {}", parts.join(", ")))
                .unwrap_or_else(|_| HeaderValue::from_static("Bearer")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_names_the_metadata_or_a_realm() {
        let oauth = BearerChallenge {
            resource_metadata: Some(
                "http://127.0.0.1/.well-known/oauth-protected-resource/mcp".into(),
            ),
        };
        let value = oauth.challenge(Some(("invalid_token", "bad"))).unwrap();
        let value = value.to_str().unwrap();
        assert!(
            value.starts_with("Bearer resource_metadata=\"http://127.0.0.1/"),
            "{value}"
        );
        assert!(value.contains("error=\"invalid_token\""), "{value}");
        let keys = BearerChallenge {
            resource_metadata: None,
        };
        assert_eq!(keys.challenge(None).unwrap(), "Bearer realm=\"mcp\"");
    }

    #[test]
    fn a_query_token_is_not_a_credential() {
        let auth = Authenticator {
            api_keys: Some(
                ApiKeys::from_plain_keys(
                    [(
                        Principal::new("a", Vec::<String>::new()),
                        b"0123456789abcdef-key".as_slice(),
                    )],
                    "test",
                )
                .unwrap(),
            ),
            jwt: None,
            insecure_dev_principal: None,
        };
        let uri: Uri = "/mcp?access_token=0123456789abcdef-key".parse().unwrap();
        assert_eq!(
            auth.authenticate(&HeaderMap::new(), &uri),
            Err(AuthFailure::Missing)
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer 0123456789abcdef-key"),
        );
        assert_eq!(auth.authenticate(&headers, &uri).unwrap().name, "a");
    }
}
