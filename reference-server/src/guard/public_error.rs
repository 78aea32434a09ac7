//! What a client is told when something fails, and what the operator's log is told.
//!
//! A client gets a short, fixed message for the *kind* of failure plus a correlation id; the
//! operator's log gets the full detail under the same id, passed through [`redact`] first. The
//! client never sees stack traces, paths outside the sandbox, SQL, configuration values or
//! another layer's error text (the seed had this idea right; this module makes it the only way
//! an error leaves a tool).
//!
//! Cost: one random 64-bit id and one `tracing` event per failure; redaction is a linear scan
//! of the detail text.
//!
//! Failure: none; redaction errs on the side of masking (anything that looks like a credential
//! in a URL, a bearer token, or a `password=`/`token=`/`secret=` pair is replaced by `***`).

use std::fmt;

/// The public side of a failure: safe to send to any client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublicError {
    pub message: &'static str,
    pub correlation_id: String,
}

impl fmt::Display for PublicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (correlation id {})",
            self.message, self.correlation_id
        )
    }
}

/// The public message for each kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    InvalidInput,
    NotFound,
    Denied,
    TooLarge,
    RateLimited,
    Busy,
    TimedOut,
    Internal,
}

impl FailureKind {
    pub fn public_message(self) -> &'static str {
        match self {
            FailureKind::InvalidInput => "Invalid input provided",
            FailureKind::NotFound => "The requested item was not found",
            FailureKind::Denied => "The request is not permitted",
            FailureKind::TooLarge => "The request or its result is too large",
            FailureKind::RateLimited => "Rate limit exceeded; retry later",
            FailureKind::Busy => "Too many requests in flight; retry later",
            FailureKind::TimedOut => "The request took too long",
            FailureKind::Internal => "An error occurred processing your request",
        }
    }
}

/// Logs `detail` (redacted) under a fresh correlation id and returns the public side.
pub fn report(kind: FailureKind, operation: &str, detail: &dyn fmt::Display) -> PublicError {
    let correlation_id = format!("{:016x}", rand::random::<u64>());
    let detail = redact(&detail.to_string());
    if kind == FailureKind::Internal {
        tracing::error!(%correlation_id, operation, detail, "request failed");
    } else {
        tracing::info!(%correlation_id, operation, ?kind, detail, "request refused");
    }
    PublicError {
        message: kind.public_message(),
        correlation_id,
    }
}

/// Masks credentials in free text: URL userinfo passwords (`scheme://user:***@host`), bearer
/// tokens, and values of keys that name a secret (`password=`, `token=`, `secret=`, `api_key=`).
pub fn redact(text: &str) -> String {
    let mut out = mask_url_passwords(text);
    out = mask_after_marker(&out, "bearer ", true);
    for key in [
        "password",
        "passwd",
        "pwd",
        "token",
        "secret",
        "api_key",
        "apikey",
        "access_token",
    ] {
        out = mask_key_values(&out, key);
    }
    out
}

fn is_value_byte(b: u8) -> bool {
    !(b.is_ascii_whitespace() || matches!(b, b'&' | b';' | b',' | b'"' | b'\'' | b')' | b'>'))
}

/// `scheme://user:password@host` -> `scheme://user:***@host`.
fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| c == '/' || c.is_whitespace() || c == '?' || c == '#')
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..=colon]);
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    out
}

fn mask_after_marker(text: &str, marker: &str, case_insensitive: bool) -> String {
    let haystack = if case_insensitive {
        text.to_ascii_lowercase()
    } else {
        text.to_owned()
    };
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    while let Some(found) = haystack[cursor..].find(marker) {
        let value_start = cursor + found + marker.len();
        let value_end = value_start
            + text.as_bytes()[value_start..]
                .iter()
                .take_while(|b| is_value_byte(**b))
                .count();
        out.push_str(&text[cursor..value_start]);
        if value_end > value_start {
            out.push_str("***");
        }
        cursor = value_end;
    }
    out.push_str(&text[cursor..]);
    out
}

fn mask_key_values(text: &str, key: &str) -> String {
    let mut result = text.to_owned();
    for separator in ["=", ": ", ":", "\":\"", "\": \""] {
        result = mask_after_marker(&result, &format!("{key}{separator}"), true);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redaction_masks_each_credential_form() {
        assert_eq!(
            redact("postgresql://app:s3cret@db:5432/x"),
            "postgresql://app:***@db:5432/x"
        );
        assert_eq!(
            redact("Authorization: Bearer abc.def"),
            "Authorization: Bearer ***"
        );
        assert_eq!(
            redact("login password=hunter2 user=bob"),
            "login password=*** user=bob"
        );
        assert_eq!(redact("{\"token\":\"t0k\"}"), "{\"token\":\"***\"}");
        assert_eq!(redact("no secrets here"), "no secrets here");
        assert_eq!(redact("http://host/path"), "http://host/path");
    }

    #[test]
    fn the_public_message_is_fixed_and_carries_an_id() {
        let public = report(
            FailureKind::Internal,
            "read_file",
            &"open /srv/data/x: EACCES password=p",
        );
        assert_eq!(public.message, "An error occurred processing your request");
        assert_eq!(public.correlation_id.len(), 16);
        assert!(!public.to_string().contains("/srv"));
    }

    proptest! {
        /// A planted secret never survives redaction in any of the recognised forms.
        #[test]
        fn no_planted_secret_survives(secret in "[A-Za-z0-9]{8,24}", prefix in "[ -~]{0,20}", form in 0usize..5) {
            let text = match form {
                0 => format!("{prefix} postgres://user:{secret}@host/db"),
                1 => format!("{prefix} Bearer {secret}"),
                2 => format!("{prefix} password={secret}"),
                3 => format!("{prefix} token: {secret}"),
                _ => format!("{prefix} {{\"api_key\":\"{secret}\"}}"),
            };
            let redacted = redact(&text);
            prop_assert!(!redacted.contains(&secret) || prefix.contains(&secret), "{} -> {}", text, redacted);
        }
    }
}
