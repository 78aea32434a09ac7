//! OAuth 2.1 resource server: validates JWT access tokens against a JWKS, per the MCP
//! authorization specification.
//!
//! A token is accepted only if: its header names an algorithm on the allowlist (asymmetric
//! only: `none` is not an algorithm jsonwebtoken will parse, and HS* are never allowed, so a
//! token "signed" with a public key as an HMAC secret cannot pass); a key in the JWKS matches
//! its `kid` (or, with no `kid`, the single key of that algorithm family) and verifies the
//! signature; `iss` equals the configured issuer; `aud` contains this server's resource URI
//! (RFC 8707: a token minted for another service is refused); `exp` is in the future and
//! `nbf` in the past, each with a small leeway; and `sub` is present. Scopes come from `scope`
//! (space separated) or `scp` (string or array).
//!
//! Cost: one base64 decode and one signature verification per request: about 50 us for
//! EdDSA, 30-100 us for RS256/ES256 on this class of machine. The JWKS is loaded once at
//! start-up (a file, or an `http://` URL on loopback only).
//!
//! Failure: [`JwtError`] says which check failed, for the log and for the `error_description`
//! of `WWW-Authenticate`; it never contains the token.

use super::api_keys::Principal;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use std::collections::BTreeSet;

/// Algorithms a token may use. Only asymmetric ones: the server holds no shared secret.
pub const ALLOWED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::EdDSA,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

/// Why a token, or the validator's configuration, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("no key in the JWKS matches the token")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued for another audience")]
    WrongAudience,
    #[error("the token was issued by an unexpected issuer")]
    WrongIssuer,
    #[error("the token lacks a required claim")]
    MissingClaim,
    #[error("the JWKS could not be loaded: {0}")]
    Jwks(String),
}

#[derive(Deserialize)]
struct AccessClaims {
    sub: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<ScopeList>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeList {
    Text(String),
    List(Vec<String>),
}

struct VerificationKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// Validates access tokens for one resource.
pub struct JwtValidator {
    keys: Vec<VerificationKey>,
    issuer: String,
    resource: String,
}

impl std::fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtValidator")
            .field("issuer", &self.issuer)
            .field("resource", &self.resource)
            .field("keys", &self.keys.len())
            .finish()
    }
}

fn algorithms_for(jwk: &Jwk) -> Vec<Algorithm> {
    if let Some(declared) = jwk
        .common
        .key_algorithm
        .and_then(|alg| alg.to_string().parse::<Algorithm>().ok())
    {
        return vec![declared];
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            jsonwebtoken::jwk::EllipticCurve::P256 => vec![Algorithm::ES256],
            jsonwebtoken::jwk::EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => vec![],
        },
        AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
        // Symmetric keys are never used: an HS token is refused whatever the JWKS holds.
        AlgorithmParameters::OctetKey(_) => vec![],
    }
}

impl JwtValidator {
    /// `issuer` is the authorization server's issuer identifier; `resource` is this server's
    /// canonical URI, which every accepted token must carry in `aud`.
    pub fn new(
        jwks: &JwkSet,
        issuer: impl Into<String>,
        resource: impl Into<String>,
    ) -> Result<Self, JwtError> {
        let mut keys = Vec::new();
        for jwk in &jwks.keys {
            let algorithms: Vec<Algorithm> = algorithms_for(jwk)
                .into_iter()
                .filter(|a| ALLOWED_ALGORITHMS.contains(a))
                .collect();
            if algorithms.is_empty() {
                continue;
            }
            let key = DecodingKey::from_jwk(jwk).map_err(|e| JwtError::Jwks(e.to_string()))?;
            keys.push(VerificationKey {
                kid: jwk.common.key_id.clone(),
                algorithms,
                key,
            });
        }
        if keys.is_empty() {
            return Err(JwtError::Jwks(
                "the JWKS has no usable asymmetric key".into(),
            ));
        }
        Ok(Self {
            keys,
            issuer: issuer.into(),
            resource: resource.into(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Validates `token` and returns the principal it names.
    pub fn validate(&self, token: &str) -> Result<Principal, JwtError> {
        let header = decode_header(token).map_err(|_| JwtError::Malformed)?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(JwtError::AlgorithmNotAllowed);
        }
        let candidates: Vec<&VerificationKey> = self
            .keys
            .iter()
            .filter(|k| k.algorithms.contains(&header.alg))
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(wanted), Some(have)) => wanted == have,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .collect();
        // Without a kid, exactly one key of the family must be configured: never try them all.
        let key = match candidates.as_slice() {
            [only] => *only,
            _ => return Err(JwtError::UnknownKey),
        };
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.resource]);
        validation.set_issuer(&[&self.issuer]);
        validation.required_spec_claims = ["exp", "iss", "aud", "sub"]
            .into_iter()
            .map(String::from)
            .collect();
        let data = decode::<AccessClaims>(token, &key.key, &validation).map_err(|error| {
            use jsonwebtoken::errors::ErrorKind as K;
            match error.kind() {
                K::InvalidSignature => JwtError::BadSignature,
                K::ExpiredSignature => JwtError::Expired,
                K::ImmatureSignature => JwtError::NotYetValid,
                K::InvalidAudience => JwtError::WrongAudience,
                K::InvalidIssuer => JwtError::WrongIssuer,
                K::MissingRequiredClaim(_) => JwtError::MissingClaim,
                K::InvalidAlgorithm => JwtError::AlgorithmNotAllowed,
                _ => JwtError::Malformed,
            }
        })?;
        let claims = data.claims;
        let mut scopes = BTreeSet::new();
        if let Some(text) = claims.scope {
            scopes.extend(text.split_whitespace().map(String::from));
        }
        match claims.scp {
            Some(ScopeList::Text(text)) => scopes.extend(text.split_whitespace().map(String::from)),
            Some(ScopeList::List(list)) => scopes.extend(list),
            None => {}
        }
        Ok(Principal {
            name: format!("oauth:{}", claims.sub),
            scopes,
        })
    }
}

/// Loads a JWKS from a file path, or from an `http://` URL whose host is a loopback address.
pub async fn load_jwks(source: &str) -> Result<JwkSet, JwtError> {
    let text = if source.starts_with("http://") || source.starts_with("https://") {
        let url = url::Url::parse(source)
            .map_err(|_| JwtError::Jwks("the JWKS URL is invalid".into()))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        };
        if !loopback {
            return Err(JwtError::Jwks(
                "a JWKS URL must be on loopback; give a file for other issuers".into(),
            ));
        }
        super::egress::ensure_crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| JwtError::Jwks(e.to_string()))?;
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|e| JwtError::Jwks(e.to_string()))?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| JwtError::Jwks(e.to_string()))?;
        if bytes.len() > 1024 * 1024 {
            return Err(JwtError::Jwks("the JWKS is larger than 1 MiB".into()));
        }
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        std::fs::read_to_string(source)
            .map_err(|e| JwtError::Jwks(format!("cannot read the JWKS file: {}", e.kind())))?
    };
    serde_json::from_str(&text).map_err(|_| JwtError::Jwks("the JWKS is not valid JSON".into()))
}

/// A local signing key for development: mints tokens that a validator built from
/// [`DevSigner::jwks`] accepts. Never used by the server itself.
pub struct DevSigner {
    signing_key: ed25519_dalek::SigningKey,
    pub kid: String,
}

impl DevSigner {
    pub fn generate() -> Self {
        Self::from_seed(rand::random())
    }

    /// Rebuilds a signer from its 32-byte seed; the key id is derived from the public key.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing_key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = signing_key.verifying_key().to_bytes();
        let kid = format!(
            "dev-{}",
            public[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Self { signing_key, kid }
    }

    /// The secret seed, for storing the key between runs of `dev-token`.
    pub fn seed(&self) -> [u8; 32] {
        self.signing_key.to_bytes()
    }

    /// The public half as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        use base64::Engine;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.signing_key.verifying_key().as_bytes());
        serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]})
    }

    /// Signs arbitrary claims (tests use this to build expired, wrong-audience... tokens).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let der = self
            .signing_key
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes");
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .expect("signing with a valid Ed25519 key cannot fail")
    }

    /// Mints an access token for `subject` with `scopes`, valid for `lifetime_seconds`.
    pub fn mint(
        &self,
        issuer: &str,
        resource: &str,
        subject: &str,
        scopes: &[String],
        lifetime_seconds: u64,
    ) -> String {
        let now = unix_now();
        self.sign(&serde_json::json!({
            "iss": issuer, "aud": resource, "sub": subject, "scope": scopes.join(" "),
            "iat": now, "nbf": now, "exp": now + lifetime_seconds,
        }))
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use serde_json::json;

    const ISS: &str = "https://issuer.test";
    const RES: &str = "http://127.0.0.1:8765/mcp";

    fn setup() -> (DevSigner, JwtValidator) {
        let signer = DevSigner::generate();
        let jwks: JwkSet = serde_json::from_value(signer.jwks()).unwrap();
        let validator = JwtValidator::new(&jwks, ISS, RES).unwrap();
        (signer, validator)
    }

    fn claims(overrides: serde_json::Value) -> serde_json::Value {
        let now = unix_now();
        let mut base = json!({"iss": ISS, "aud": RES, "sub": "alice", "scope": "files:read admin", "nbf": now, "exp": now + 300});
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base
    }

    fn b64(value: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[test]
    fn a_valid_token_yields_its_principal_and_scopes() {
        let (signer, validator) = setup();
        let principal = validator
            .validate(&signer.sign(&claims(json!({}))))
            .unwrap();
        assert_eq!(principal.name, "oauth:alice");
        assert!(principal.has_scope("admin") && principal.has_scope("files:read"));
        let scp = validator
            .validate(&signer.sign(&claims(json!({"scope": null, "scp": ["a", "b"]}))))
            .unwrap();
        assert!(scp.has_scope("a") && scp.has_scope("b"));
    }

    #[test]
    fn each_bad_claim_is_refused_with_its_reason() {
        let (signer, validator) = setup();
        let now = unix_now();
        let cases = [
            (json!({"exp": now - 120}), JwtError::Expired),
            (json!({"nbf": now + 120}), JwtError::NotYetValid),
            (
                json!({"aud": "http://other.example/mcp"}),
                JwtError::WrongAudience,
            ),
            (json!({"aud": null}), JwtError::MissingClaim),
            (json!({"iss": "https://evil.test"}), JwtError::WrongIssuer),
            (json!({"exp": null}), JwtError::MissingClaim),
        ];
        for (overrides, expected) in cases {
            let token = signer.sign(&claims(overrides.clone()));
            assert_eq!(validator.validate(&token), Err(expected), "{overrides}");
        }
    }

    #[test]
    fn forged_tokens_are_refused() {
        let (signer, validator) = setup();
        let good = signer.sign(&claims(json!({})));
        let parts: Vec<&str> = good.split('.').collect();
        // alg none
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            parts[1]
        );
        assert!(validator.validate(&none).is_err());
        // Payload changed under the original signature
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64(&claims(json!({"sub": "root"}))),
            parts[2]
        );
        assert_eq!(validator.validate(&tampered), Err(JwtError::BadSignature));
        // HS256 "signed" with the public key as the secret
        let public_x = signer.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some(signer.kid.clone());
        let confused = jsonwebtoken::encode(
            &header,
            &claims(json!({})),
            &jsonwebtoken::EncodingKey::from_secret(public_x.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            validator.validate(&confused),
            Err(JwtError::AlgorithmNotAllowed)
        );
        // Signed by another key with the same kid
        let other = DevSigner {
            kid: signer.kid.clone(),
            ..DevSigner::generate()
        };
        assert_eq!(
            validator.validate(&other.sign(&claims(json!({})))),
            Err(JwtError::BadSignature)
        );
        // Garbage
        for junk in ["", "a.b", "a.b.c", "....", &"A".repeat(10_000)] {
            assert!(validator.validate(junk).is_err());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Changing any one byte of a valid token, in its header, claims or signature, gets it
        /// refused (a change that decodes to the same bytes, e.g. base64 padding bits, is skipped).
        #[test]
        fn any_one_byte_change_is_refused(position in 0usize..10_000, replacement in proptest::sample::select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".to_vec())) {
            let (signer, validator) = setup();
            let token = signer.sign(&claims(json!({})));
            let position = position % token.len();
            let mut bytes = token.clone().into_bytes();
            proptest::prop_assume!(bytes[position] != replacement);
            bytes[position] = replacement;
            let forged = String::from_utf8(bytes).unwrap();
            let decodes_the_same = |a: &str, b: &str| {
                let parts = |t: &str| t.split('.').map(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok()).collect::<Vec<_>>();
                parts(a) == parts(b) && a.split('.').count() == b.split('.').count()
            };
            proptest::prop_assume!(!decodes_the_same(&token, &forged));
            proptest::prop_assert!(validator.validate(&forged).is_err(), "a forged token was accepted");
        }
    }

    #[test]
    fn a_jwks_with_only_symmetric_keys_is_refused() {
        let jwks: JwkSet = serde_json::from_value(
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]}),
        )
        .unwrap();
        assert!(matches!(
            JwtValidator::new(&jwks, ISS, RES),
            Err(JwtError::Jwks(_))
        ));
    }
}
