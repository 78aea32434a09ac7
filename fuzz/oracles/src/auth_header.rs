//! `Authorization` header parsing and the API key check, judged by a plain reading of RFC 6750.
//!
//! Input: the first byte picks the mode. Raw mode hands the rest to the guard as the header
//! value. Composed mode builds a header from a scheme spelling, a separator and one of the
//! configured keys with a mutation (none, a byte changed, cut short, extended, case changed),
//! so that the fuzzer reaches the accepting path as well as the refusing ones.
//!
//! Oracle: the guard accepts a header exactly when it is `Bearer` (any case), one space, and a
//! configured key byte for byte, and then names that key's principal. Anything else accepted is
//! an authentication bypass; an exact key refused is a lock-out.

use arbitrary::{Arbitrary, Unstructured};
use reference_server::guard::api_keys::{ApiKeys, MAX_AUTHORIZATION_LEN, Principal, parse_bearer};
use std::sync::OnceLock;

/// The configured keys: valid RFC 6750 tokens, one with `=` padding, one a prefix of another.
pub const KEYS: &[(&str, &str)] = &[
    ("alice", "alice-key-0123456789abcdef"),
    ("bob", "alice-key-0123456789abcdef-bob"),
    ("carol", "Y2Fyb2wta2V5LXBhZGRlZA=="),
];

fn store() -> &'static ApiKeys {
    static STORE: OnceLock<ApiKeys> = OnceLock::new();
    STORE.get_or_init(|| {
        ApiKeys::from_plain_keys(
            KEYS.iter()
                .map(|(name, key)| (Principal::new(*name, ["files:read"]), key.as_bytes())),
            "fuzz",
        )
        .expect("the fuzz keys are valid")
    })
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    None,
    ChangeByte { at: u8, to: u8 },
    CutShort { by: u8 },
    Extend { with: Vec<u8> },
    FlipCase { at: u8 },
}

#[derive(Arbitrary, Debug)]
struct Composed {
    scheme: u8,
    separator: u8,
    key: u8,
    mutation: Mutation,
}

fn compose(input: Composed) -> Vec<u8> {
    const SCHEMES: &[&str] = &[
        "Bearer", "bearer", "BEARER", "bEaReR", "Basic", "Bearer:", "",
    ];
    const SEPARATORS: &[&str] = &[" ", "  ", "\t", "", " \u{0}", "\u{a0}"];
    let mut header = Vec::new();
    header.extend_from_slice(SCHEMES[input.scheme as usize % SCHEMES.len()].as_bytes());
    header.extend_from_slice(SEPARATORS[input.separator as usize % SEPARATORS.len()].as_bytes());
    let mut key = KEYS[input.key as usize % KEYS.len()].1.as_bytes().to_vec();
    match input.mutation {
        Mutation::None => {}
        Mutation::ChangeByte { at, to } => {
            let at = at as usize % key.len();
            key[at] = to;
        }
        Mutation::CutShort { by } => key.truncate(key.len().saturating_sub(by as usize % 8 + 1)),
        Mutation::Extend { with } => key.extend(with),
        Mutation::FlipCase { at } => {
            let at = at as usize % key.len();
            key[at] ^= 0x20;
        }
    }
    header.extend(key);
    header
}

/// The independent rule: which principal, if any, this header must authenticate.
fn expected_principal(header: &[u8]) -> Option<&'static str> {
    if header.len() > MAX_AUTHORIZATION_LEN || header.len() < 7 {
        return None;
    }
    let (scheme, token) = header.split_at(7);
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    KEYS.iter()
        .find(|(_, key)| key.as_bytes() == token)
        .map(|(name, _)| *name)
}

pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let header = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        match Composed::arbitrary_take_rest(Unstructured::new(rest)) {
            Ok(composed) => compose(composed),
            Err(_) => return,
        }
    };
    let accepted = parse_bearer(Some(&header))
        .ok()
        .and_then(|token| store().authenticate(token.as_bytes()).ok())
        .map(|principal| principal.name.clone());
    let expected = expected_principal(&header);
    assert_eq!(
        accepted.as_deref(),
        expected,
        "header {:?}: the guard authenticated {accepted:?}, RFC 6750 says {expected:?}",
        String::from_utf8_lossy(&header)
    );
}
