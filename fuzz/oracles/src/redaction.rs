//! Redaction of credentials in log text, judged by a planted secret.
//!
//! Input: free text before and after, a separator, and one of the credential forms the
//! redactor promises to mask (URL userinfo password, `Bearer` token, `key=value`, `key: value`,
//! `"key":"value"` and `"key": "value"` for each secret-naming key, in any letter case), holding
//! a fixed canary secret. Occurrences of the canary in the free text are removed first, so any
//! canary in the output is the planted one.
//!
//! Oracle: the canary never appears in `redact`'s output.

use arbitrary::{Arbitrary, Unstructured};
// The keys are the redactor's promise (its own list); the forms and separators are written here.
use reference_server::guard::public_error::{SECRET_KEYS as KEYS, redact};

pub const CANARY: &str = "Zq7CanarySecret9W";

#[derive(Arbitrary, Debug)]
struct Input {
    before: String,
    separator: u8,
    form: u8,
    key: u8,
    upper: bool,
    after: String,
}

const SEPARATORS: &[&str] = &["", " ", "\n", "\"", "(", "=", ",", "://", "@"];

fn plant(input: &Input) -> String {
    let key = KEYS[input.key as usize % KEYS.len()];
    let key = if input.upper {
        key.to_ascii_uppercase()
    } else {
        key.to_owned()
    };
    match input.form % 6 {
        0 => format!("postgres://app:{CANARY}@db.internal:5432/app"),
        1 => format!("{} {CANARY}", if input.upper { "BEARER" } else { "Bearer" }),
        2 => format!("{key}={CANARY}"),
        3 => format!("{key}: {CANARY}"),
        4 => format!("\"{key}\":\"{CANARY}\""),
        _ => format!("\"{key}\": \"{CANARY}\""),
    }
}

/// `text` with every canary removed, including any that a removal joins together.
fn without_canary(text: &str) -> String {
    let mut text = text.to_owned();
    while text.contains(CANARY) {
        text = text.replace(CANARY, "");
    }
    text
}

pub fn check(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let separator = SEPARATORS[input.separator as usize % SEPARATORS.len()];
    let text = format!(
        "{}{separator}{}{separator}{}",
        without_canary(&input.before),
        plant(&input),
        without_canary(&input.after)
    );
    let redacted = redact(&text);
    assert!(
        !redacted.contains(CANARY),
        "the planted secret survived redaction:\n  in:  {text:?}\n  out: {redacted:?}"
    );
}
