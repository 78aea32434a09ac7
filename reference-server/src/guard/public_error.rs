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
    /// The fixed message of the failure's kind (owned only in a test twin's report).
    pub message: std::borrow::Cow<'static, str>,
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

/// An error and its chain of sources, `outer: inner: innermost`: the detail the log gets
/// (an error's own message often hides its cause, e.g. "database error").
pub struct WithSources<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for WithSources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
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
        message: kind.public_message().into(),
        correlation_id,
    }
}

/// Masks credentials in free text: URL userinfo passwords (`scheme://user:***@host`), bearer
/// tokens, and values of keys that name a secret (`password=`, `token=`, `secret=`, `api_key=`).
///
/// Every credential is found in the *original* text and all of them are masked at once. (The
/// first version masked one form after another, so masking one value could erase the marker of
/// the next: `pwd":"access_token: s3cret` kept `s3cret`. The redaction fuzz target found it,
/// and a `://` before a URL that hid the URL's password.)
pub fn redact(text: &str) -> String {
    let mut spans = Vec::new();
    url_password_spans(text, &mut spans);
    marker_spans(text, "bearer ", &mut spans);
    for key in SECRET_KEYS {
        for separator in ["=", ": ", ":", "\":\"", "\": \""] {
            marker_spans(text, &format!("{key}{separator}"), &mut spans);
        }
    }
    mask(text, spans)
}

/// Keys whose values are masked, matched in any letter case.
pub const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "token",
    "secret",
    "api_key",
    "apikey",
    "access_token",
];

fn is_value_byte(b: u8) -> bool {
    !(b.is_ascii_whitespace() || matches!(b, b'&' | b';' | b',' | b'"' | b'\'' | b')' | b'>'))
}

/// The password of every `scheme://user:password@host`, at every `://` (a `://` without
/// userinfo may be followed by another URL inside what looked like its authority).
fn url_password_spans(text: &str, spans: &mut Vec<std::ops::Range<usize>>) {
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        let authority_len = text[start..]
            .find(|c: char| c == '/' || c.is_whitespace() || c == '?' || c == '#')
            .unwrap_or(text.len() - start);
        let authority = &text[start..start + authority_len];
        if let (Some(at), Some(colon)) = (authority.rfind('@'), authority.find(':'))
            && colon < at
        {
            spans.push(start + colon + 1..start + at);
        }
        from = start;
    }
}

/// The value after every occurrence of `marker` (matched in any ASCII letter case), up to the
/// first byte that ends a value.
fn marker_spans(text: &str, marker: &str, spans: &mut Vec<std::ops::Range<usize>>) {
    // ASCII lowercasing keeps every byte offset.
    let haystack = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = haystack[from..].find(marker) {
        let value_start = from + found + marker.len();
        let value_len = text.as_bytes()[value_start..]
            .iter()
            .take_while(|b| is_value_byte(**b))
            .count();
        if value_len > 0 {
            spans.push(value_start..value_start + value_len);
        }
        from = value_start;
    }
}

/// `text` with each run of overlapping or touching spans replaced by `***`. Every span starts
/// after an ASCII byte and ends before one (or at the end), so each cut is a char boundary.
fn mask(text: &str, mut spans: Vec<std::ops::Range<usize>>) -> String {
    spans.sort_by_key(|span| span.start);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut spans = spans.into_iter().peekable();
    while let Some(span) = spans.next() {
        let mut end = span.end;
        while let Some(next) = spans.next_if(|next| next.start <= end) {
            end = end.max(next.end);
        }
        // Merged runs are disjoint and in order: each starts after the last one ended.
        out.push_str(&text[copied..span.start]);
        out.push_str("***");
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
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
        // Found by the redaction fuzz target: a "://" before the URL hid its password.
        assert_eq!(
            redact("://postgres://app:s3cret@db/x"),
            "://postgres://app:***@db/x"
        );
        // Found by the redaction fuzz target: masking one value erased the next one's marker.
        assert_eq!(
            redact("xpwd\":\"access_token: s3cret\""),
            "xpwd\":\"*** ***\""
        );
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
