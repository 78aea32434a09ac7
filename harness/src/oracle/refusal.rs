//! Refusals by a rate limiter, recognised by behaviour first and wording second.
//!
//! A limiter's refusal is whatever an identical call that was served gets once the caller
//! goes too fast, and stops getting after a pause: an HTTP 429 or 503, a JSON-RPC error, or a
//! tool result with `isError`, worded any way at all ("Burst limit exceeded (10/minute)",
//! "slow down", or nothing). The RATE family learns the shape of that answer from its flood
//! ([`RefusalClassifier::learn`]) once the recovery check has shown the call served again;
//! from then on every family's calls that get it are waited out like a 429. Before anything is
//! learned, [`explicit_wait`] recognises the common signals: HTTP 429, HTTP 503 with
//! `Retry-After`, JSON-RPC -32029, and a short error whose words say so. Wording (and a
//! `Retry-After`, a `retry_after_ms`, or "try again in 30s" in the text) only refines how long
//! to wait.
//!
//! Cost: a few substring searches a reply; the learned shapes are at most
//! [`MAX_LEARNED`]. Failure: a refusal worded unlike any pattern and not yet learned is not
//! waited out; the verdicts that could rest on it treat it as an answer of the tool, and the
//! RATE family still sees it by behaviour.

use crate::connection::{Reply, TargetError};
use crate::oracle::leak::decoded_strings;
use serde_json::Value;
use std::time::Duration;

/// The longest the harness waits before retrying a refused call.
pub const MAX_WAIT: Duration = Duration::from_secs(5);
/// The wait when a refusal does not say.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);
/// Refusal shapes kept from behaviour.
pub const MAX_LEARNED: usize = 8;

/// Phrases that say "too many, too fast", lowercased. A bare "limit" is not one of them
/// ("limit must be between 1 and 100" is validation).
const WORDINGS: &[&str] = &[
    "rate limit",
    "rate-limit",
    "ratelimit",
    "rate limited",
    "too many requests",
    "too many calls",
    "quota exceeded",
    "quota has been exceeded",
    "throttled",
    "throttling",
    "slow down",
    "burst limit",
    "request limit exceeded",
    "try again in",
    "try again later",
];

/// The text of an error answer, if the reply is one (a JSON-RPC error or an `isError`
/// result), short enough to be a refusal rather than a tool's output.
fn error_text(reply: &Result<Reply, TargetError>) -> Option<String> {
    let text = match reply {
        Ok(Reply::Error { message, data, .. }) => match data {
            Some(data) => format!("{message} {}", decoded_strings(data)),
            None => message.clone(),
        },
        Ok(Reply::Result(value)) if value.get("isError") == Some(&Value::Bool(true)) => {
            decoded_strings(value)
        }
        _ => return None,
    };
    (text.len() < 600).then_some(text)
}

/// A wait stated in the text: "try again in 30s", "retry after 2 seconds", "in 500 ms".
fn stated_wait(text: &str) -> Option<Duration> {
    static WAIT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let pattern = WAIT.get_or_init(|| {
        regex::Regex::new(
            r"(?i)(?:again in|retry after|retry in|wait)\s+([0-9]+(?:\.[0-9]+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?)\b",
        )
        .expect("a valid pattern")
    });
    let captures = pattern.captures(text)?;
    let amount: f64 = captures.get(1)?.as_str().parse().ok()?;
    let unit = captures.get(2)?.as_str().to_ascii_lowercase();
    let seconds = if unit.starts_with("ms") || unit.starts_with("milli") {
        amount / 1000.0
    } else if unit.starts_with('m') {
        amount * 60.0
    } else {
        amount
    };
    Some(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)))
}

fn clamp(wait: Duration) -> Duration {
    wait.clamp(Duration::from_millis(10), MAX_WAIT)
}

/// When `reply` says explicitly that the caller is being limited, how long to wait before
/// asking again (see the module docs), at most [`MAX_WAIT`].
pub fn explicit_wait(reply: &Result<Reply, TargetError>) -> Option<Duration> {
    match reply {
        Err(TargetError::HttpStatus {
            status: 429,
            retry_after,
            ..
        }) => return Some(clamp(retry_after.map_or(DEFAULT_WAIT, Duration::from_secs))),
        Err(TargetError::HttpStatus {
            status: 503,
            retry_after: Some(seconds),
            ..
        }) => return Some(clamp(Duration::from_secs(*seconds))),
        _ => {}
    }
    let text = error_text(reply)?;
    let lower = text.to_ascii_lowercase();
    let coded = matches!(reply, Ok(Reply::Error { code: -32029, .. }));
    if !coded && !WORDINGS.iter().any(|w| lower.contains(w)) {
        return None;
    }
    let data = match reply {
        Ok(Reply::Error {
            data: Some(data), ..
        }) => Some(data),
        _ => None,
    };
    let from_data = data
        .and_then(|d| d.get("retry_after_ms")?.as_u64())
        .map(Duration::from_millis)
        .or_else(|| {
            data.and_then(|d| d.get("retry_after")?.as_f64())
                .map(|s| Duration::from_secs_f64(s.clamp(0.0, 60.0)))
        });
    Some(clamp(
        from_data
            .or_else(|| stated_wait(&text))
            .unwrap_or(DEFAULT_WAIT),
    ))
}

/// Whether a reply is a failure an identical, earlier served call did not get: any error
/// answer, or HTTP 429/503.
pub fn is_failure(reply: &Result<Reply, TargetError>) -> bool {
    error_text(reply).is_some()
        || matches!(
            reply,
            Err(TargetError::HttpStatus {
                status: 429 | 503,
                ..
            })
        )
}

/// The refusal shapes learned from behaviour, on top of the explicit signals.
#[derive(Debug, Clone, Default)]
pub struct RefusalClassifier {
    learned: Vec<String>,
}

impl RefusalClassifier {
    /// How long to wait when `reply` is a refusal, explicit or of a learned shape.
    pub fn wait(&self, reply: &Result<Reply, TargetError>) -> Option<Duration> {
        if let Some(wait) = explicit_wait(reply) {
            return Some(wait);
        }
        let text = error_text(reply)?;
        self.learned
            .iter()
            .any(|shape| crate::coverage::same_answer(shape, &text))
            .then(|| clamp(stated_wait(&text).unwrap_or(DEFAULT_WAIT)))
    }

    /// Keeps the shape of a refusal seen by behaviour (served, refused under flood, served
    /// again after a pause).
    pub fn learn(&mut self, reply: &Result<Reply, TargetError>) {
        if let Some(text) = error_text(reply)
            && self.learned.len() < MAX_LEARNED
            && !self
                .learned
                .iter()
                .any(|shape| crate::coverage::same_answer(shape, &text))
        {
            self.learned.push(text);
        }
    }

    pub fn learned(&self) -> &[String] {
        &self.learned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool_error(text: &str) -> Result<Reply, TargetError> {
        Ok(Reply::Result(
            json!({"isError": true, "content": [{"type": "text", "text": text}]}),
        ))
    }

    fn rpc_error(code: i64, message: &str) -> Result<Reply, TargetError> {
        Ok(Reply::Error {
            code,
            message: message.to_owned(),
            data: None,
        })
    }

    /// Refusals as real servers word them, with the wait each implies.
    #[test]
    fn real_world_refusals_are_recognised_with_their_waits() {
        let table: Vec<(Result<Reply, TargetError>, Duration)> = vec![
            (
                Err(TargetError::HttpStatus {
                    status: 429,
                    body: String::new(),
                    retry_after: Some(2),
                }),
                Duration::from_secs(2),
            ),
            (
                Err(TargetError::HttpStatus {
                    status: 503,
                    body: "busy".into(),
                    retry_after: Some(1),
                }),
                Duration::from_secs(1),
            ),
            (rpc_error(-32029, "rate limit exceeded"), DEFAULT_WAIT),
            (tool_error("Rate limit exceeded"), DEFAULT_WAIT),
            (tool_error("Error: Too Many Requests"), DEFAULT_WAIT),
            (tool_error("Quota exceeded for this key"), DEFAULT_WAIT),
            (tool_error("Request throttled"), DEFAULT_WAIT),
            (
                tool_error("Slow down! Try again in 3s"),
                Duration::from_secs(3),
            ),
            (
                tool_error("Burst limit exceeded (10/minute); try again in 500 ms"),
                Duration::from_millis(500),
            ),
            (
                rpc_error(-32000, "Too many requests, retry after 2 seconds"),
                Duration::from_secs(2),
            ),
            (tool_error("rate-limited: wait 90 seconds"), MAX_WAIT),
        ];
        for (reply, wait) in table {
            assert_eq!(explicit_wait(&reply), Some(wait), "{reply:?}");
        }
    }

    #[test]
    fn validation_errors_and_other_failures_are_not_refusals() {
        for reply in [
            tool_error("limit must be between 1 and 100"),
            tool_error("File size limit exceeded"),
            rpc_error(-32602, "Invalid params"),
            Err(TargetError::HttpStatus {
                status: 503,
                body: String::new(),
                retry_after: None,
            }),
            Err(TargetError::HttpStatus {
                status: 500,
                body: String::new(),
                retry_after: None,
            }),
            Ok(Reply::Result(
                json!({"content": [{"type": "text", "text": "rate limit docs"}]}),
            )),
        ] {
            assert_eq!(explicit_wait(&reply), None, "{reply:?}");
        }
    }

    #[test]
    fn a_refusal_worded_like_nothing_known_is_learned_from_behaviour() {
        let odd = tool_error("Hold your horses (10 calls a minute), partner #4411");
        let mut classifier = RefusalClassifier::default();
        assert_eq!(
            classifier.wait(&odd),
            None,
            "unknown wording, nothing learned"
        );
        assert!(is_failure(&odd));
        classifier.learn(&odd);
        assert_eq!(
            classifier.wait(&tool_error(
                "Hold your horses (10 calls a minute), partner #9120"
            )),
            Some(DEFAULT_WAIT),
            "the same shape with another number"
        );
        assert_eq!(classifier.wait(&tool_error("no such file")), None);
    }
}
