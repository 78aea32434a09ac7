//! JWT access-token validation, judged by the claims the token was built from.
//!
//! Input: the first byte picks the mode. Raw mode hands the rest (as UTF-8, lossily) to the
//! validator: nothing the fuzzer writes can carry a valid Ed25519 signature, so every raw token
//! must be refused. Composed mode builds claims (issuer, audience as a string or a list, subject,
//! `exp` and `nbf` relative to now, scopes), signs them with the development key the validator
//! trusts, and optionally damages the token (a byte of the header, payload or signature
//! changed, the header swapped for one naming another algorithm, the signature dropped, a
//! segment appended).
//!
//! Oracle: a token is accepted exactly when it is undamaged and its claims are valid by the
//! rules written out here (issuer equal, audience containing the resource, subject present,
//! `exp` in the future and `nbf` in the past with the guard's leeway). Claims within a few
//! seconds of a leeway boundary are only checked one way (never accepted when invalid), since
//! the clock moves between signing and validating.

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use reference_server::guard::oauth::{DevSigner, JwtValidator, LEEWAY_SECONDS, unix_now};
use std::sync::OnceLock;

const ISSUER: &str = "https://auth.example.test";
const RESOURCE: &str = "https://mcp.example.test/mcp";

fn signer_and_validator() -> &'static (DevSigner, JwtValidator) {
    static PAIR: OnceLock<(DevSigner, JwtValidator)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let signer = DevSigner::from_seed([7; 32]);
        let jwks = serde_json::from_value(signer.jwks()).expect("the dev JWKS parses");
        let validator = JwtValidator::new(&jwks, ISSUER, RESOURCE).expect("the dev key is usable");
        (signer, validator)
    })
}

#[derive(Arbitrary, Debug)]
enum Text {
    Right,
    Absent,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Audience {
    Right,
    Absent,
    Other(String),
    List(Vec<bool>),
}

#[derive(Arbitrary, Debug)]
enum Damage {
    None,
    Byte { at: u16, to: u8 },
    Header(u8),
    DropSignature,
    Append(String),
}

#[derive(Arbitrary, Debug)]
struct Composed {
    issuer: Text,
    audience: Audience,
    subject: Option<String>,
    expires_in: Option<i32>,
    not_before_in: Option<i32>,
    scope: Option<String>,
    damage: Damage,
}

/// Independent claim rules: `Some(true)` valid, `Some(false)` invalid, `None` too close to a
/// leeway boundary to say.
fn claims_valid(input: &Composed) -> Option<bool> {
    let issuer_ok = matches!(input.issuer, Text::Right);
    let audience_ok = match &input.audience {
        Audience::Right => true,
        Audience::List(members) => members.iter().any(|&right| right),
        Audience::Absent | Audience::Other(_) => false,
    };
    let subject_ok = input.subject.is_some();
    if !(issuer_ok && audience_ok && subject_ok) {
        return Some(false);
    }
    let leeway = LEEWAY_SECONDS as i64;
    let near = |value: i64| (value - leeway).abs() <= 5;
    let Some(expires_in) = input.expires_in.map(i64::from) else {
        return Some(false); // exp is required
    };
    if near(-expires_in) {
        return None;
    }
    let mut valid = expires_in > -leeway;
    if let Some(not_before_in) = input.not_before_in.map(i64::from) {
        // A time before 1970 is not a NumericDate a validator must accept (the guard refuses
        // it as malformed, which fails closed): only judge it one way.
        if near(not_before_in) || unix_now() as i64 + not_before_in < 0 {
            return None;
        }
        valid &= not_before_in < leeway;
    }
    Some(valid)
}

fn build(input: &Composed, signer: &DevSigner) -> String {
    let now = unix_now() as i64;
    let mut claims = serde_json::Map::new();
    match &input.issuer {
        Text::Right => drop(claims.insert("iss".into(), ISSUER.into())),
        Text::Other(other) if other != ISSUER => {
            drop(claims.insert("iss".into(), other.as_str().into()))
        }
        _ => {}
    }
    match &input.audience {
        Audience::Right => drop(claims.insert("aud".into(), RESOURCE.into())),
        Audience::Other(other) if other != RESOURCE => {
            drop(claims.insert("aud".into(), other.as_str().into()))
        }
        Audience::List(members) => {
            let list: Vec<serde_json::Value> = members
                .iter()
                .enumerate()
                .map(|(i, &right)| {
                    if right {
                        RESOURCE.into()
                    } else {
                        format!("https://other-{i}.test").into()
                    }
                })
                .collect();
            claims.insert("aud".into(), list.into());
        }
        _ => {}
    }
    if let Some(subject) = &input.subject {
        claims.insert("sub".into(), subject.as_str().into());
    }
    if let Some(expires_in) = input.expires_in {
        claims.insert("exp".into(), (now + i64::from(expires_in)).into());
    }
    if let Some(not_before_in) = input.not_before_in {
        claims.insert("nbf".into(), (now + i64::from(not_before_in)).into());
    }
    if let Some(scope) = &input.scope {
        claims.insert("scope".into(), scope.as_str().into());
    }
    signer.sign(&claims.into())
}

fn damage(token: String, how: &Damage) -> Option<String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    match how {
        Damage::None => None,
        Damage::Byte { at, to } => {
            let mut bytes = token.into_bytes();
            let at = *at as usize % bytes.len();
            if bytes[at] == *to {
                return None;
            }
            bytes[at] = *to;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Damage::Header(choice) => {
            const ALGORITHMS: &[&str] = &["none", "None", "HS256", "RS256", "ES256", "EdDSA", ""];
            let alg = ALGORITHMS[*choice as usize % ALGORITHMS.len()];
            let header = b64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let (_, rest) = token.split_once('.')?;
            let damaged = format!("{header}.{rest}");
            (damaged != token).then_some(damaged)
        }
        Damage::DropSignature => {
            let cut = token.rfind('.')?;
            Some(token[..=cut].to_owned())
        }
        Damage::Append(extra) => Some(format!("{token}.{extra}")),
    }
}

pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (signer, validator) = signer_and_validator();
    if mode % 2 == 0 {
        let token = String::from_utf8_lossy(rest);
        assert!(
            validator.validate(&token).is_err(),
            "a token the fuzzer wrote without the signing key was accepted: {token:?}"
        );
        return;
    }
    let Ok(input) = Composed::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let token = build(&input, signer);
    let (token, damaged) = match damage(token.clone(), &input.damage) {
        Some(damaged) => (damaged, true),
        None => (token, false),
    };
    let accepted = validator.validate(&token);
    if damaged {
        assert!(
            accepted.is_err(),
            "a damaged token was accepted: {input:?} -> {token}"
        );
        return;
    }
    match claims_valid(&input) {
        Some(true) => {
            let principal =
                accepted.unwrap_or_else(|e| panic!("valid claims refused ({e}): {input:?}"));
            assert_eq!(
                principal.name,
                format!("oauth:{}", input.subject.as_deref().unwrap_or_default())
            );
        }
        Some(false) => assert!(accepted.is_err(), "invalid claims accepted: {input:?}"),
        None => {}
    }
}
