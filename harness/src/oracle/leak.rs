//! The leak scanner: reads every reply of every probe for what a server must not disclose.
//!
//! It looks at the *decoded* strings of a reply (JSON string leaves joined by newlines), so a
//! traceback escaped inside JSON is still seen as one. What counts: a canary secret from the
//! target's environment, a stack trace, database error text, a URL with a password, and an
//! absolute path outside what the user configured. Text that also appears in the request is a
//! reflection, not a leak, and is ignored; so are paths under the sandbox root and under the
//! harness's own stage.
//!
//! Cost: a handful of regular expressions over each reply (replies are capped by the budget).

use regex::Regex;
use serde_json::Value;
use std::sync::OnceLock;

/// The kind of disclosure found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum LeakKind {
    CanarySecret,
    StackTrace,
    DatabaseError,
    CredentialInUrl,
    InternalPath,
}

/// One disclosure: what it was and the matching text (secrets masked).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leak {
    pub kind: LeakKind,
    pub matched: String,
}

struct Patterns {
    stack: Vec<Regex>,
    database: Vec<Regex>,
    credential_url: Regex,
    absolute_path: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let compile = |list: &[&str]| list.iter().map(|p| Regex::new(p).expect("valid pattern")).collect();
        Patterns {
            stack: compile(&[
                r"Traceback \(most recent call last\)",
                r#"File "[^"]+", line \d+, in "#,
                r"panicked at [^\n]+",
                r"stack backtrace:",
                r"(?m)^\s+at [\w$.<>\[\] ]+ \([^()\n]+:\d+:\d+\)",
                r"(?m)^\s+at [^\s()]+\.(?:js|mjs|cjs|ts):\d+:\d+",
                r"(?m)^\s+at [\w.$]+\([\w$]+\.java:\d+\)",
                r"(?m)^\s+\d+: [\w:<>]+\n\s+at [^\n]+\.rs:\d+",
            ]),
            database: compile(&[
                r"sqlite3\.\w*Error",
                r"SQLITE_ERROR",
                r#"near "[^"]*": syntax error"#,
                r"syntax error at or near",
                r"You have an error in your SQL syntax",
                r"unrecognized token: ",
                r"no such (?:column|table): \w+",
                r"psycopg2?\.errors",
                r"SequelizeDatabaseError",
                r"ORA-\d{5}",
                r"SqliteFailure\(",
            ]),
            credential_url: Regex::new(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@'\x22]+:([^@\s/'\x22]+)@[^\s/'\x22]+").expect("valid pattern"),
            absolute_path: Regex::new(r#"(?:^|[\s'"(=:\[,])((?:/(?:home|root|usr|opt|var|etc|srv|app|workspace|Users|tmp|private|mnt|data)(?:/[^\s'"),:\]]+)+)|[A-Z]:\\(?:[^\s'"),\\]+\\)*[^\s'"),\\]+)"#).expect("valid pattern"),
        }
    })
}

/// All string leaves of a JSON value, joined by newlines (keys included).
pub fn decoded_strings(value: &Value) -> String {
    let mut out = String::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(text) => {
                out.push_str(text);
                out.push('\n');
            }
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(map) => {
                for (key, item) in map.iter().rev() {
                    out.push_str(key);
                    out.push('\n');
                    stack.push(item);
                }
            }
            other => {
                out.push_str(&other.to_string());
                out.push('\n');
            }
        }
    }
    out
}

/// What the scanner treats as known: secrets to look for, paths that are not leaks.
#[derive(Clone, Debug, Default)]
pub struct LeakScanner {
    secrets: Vec<String>,
    allowed_path_prefixes: Vec<String>,
}

fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(6).collect();
    format!("{shown}***")
}

impl LeakScanner {
    pub fn new(
        secrets: impl IntoIterator<Item = String>,
        allowed_path_prefixes: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            secrets: secrets.into_iter().filter(|s| s.len() >= 8).collect(),
            allowed_path_prefixes: allowed_path_prefixes
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }

    /// Scans one reply. `request` is the text that was sent: anything in it is a reflection,
    /// not a leak (see [`Sent::reflects`]).
    pub fn scan(&self, reply: &str, request: &str) -> Vec<Leak> {
        let mut leaks = Vec::new();
        let p = patterns();
        let sent = Sent::new(request);
        for secret in &self.secrets {
            if reply.contains(secret.as_str()) && !sent.reflects(secret) {
                leaks.push(Leak {
                    kind: LeakKind::CanarySecret,
                    matched: mask(secret),
                });
            }
        }
        for pattern in &p.stack {
            if let Some(m) = pattern.find(reply)
                && !sent.reflects(m.as_str())
            {
                leaks.push(Leak {
                    kind: LeakKind::StackTrace,
                    matched: first_line(m.as_str()),
                });
                break;
            }
        }
        for pattern in &p.database {
            if let Some(m) = pattern.find(reply)
                && !sent.reflects(m.as_str())
            {
                leaks.push(Leak {
                    kind: LeakKind::DatabaseError,
                    matched: first_line(m.as_str()),
                });
                break;
            }
        }
        for captures in p.credential_url.captures_iter(reply) {
            let whole = captures.get(0).map(|m| m.as_str()).unwrap_or_default();
            let password = captures.get(1).map(|m| m.as_str()).unwrap_or_default();
            let masked = password.chars().all(|c| c == '*' || c == 'x' || c == 'X')
                || password.starts_with("${")
                || password.starts_with('<');
            // The harness's own payloads put userinfo in URLs (`http://example.com:443@...`): a
            // URL whose "password" the request carried is an echo.
            if !masked && !sent.reflects(whole) && !sent.reflects(password) {
                leaks.push(Leak {
                    kind: LeakKind::CredentialInUrl,
                    matched: whole.replace(password, "***"),
                });
                break;
            }
        }
        for captures in p.absolute_path.captures_iter(reply) {
            let path = captures.get(1).map(|m| m.as_str()).unwrap_or_default();
            let allowed = self
                .allowed_path_prefixes
                .iter()
                .any(|prefix| path.starts_with(prefix.as_str()));
            if !allowed && !sent.reflects(path) {
                leaks.push(Leak {
                    kind: LeakKind::InternalPath,
                    matched: path.to_owned(),
                });
                break;
            }
        }
        leaks
    }
}

/// What the harness sent in one request, as the scanner reads replies: the raw text and the
/// decoded string leaves of its JSON.
pub struct Sent {
    texts: Vec<String>,
}

impl Sent {
    pub fn new(request: &str) -> Sent {
        let mut texts = vec![request.to_owned()];
        if let Ok(value) = serde_json::from_str::<Value>(request) {
            texts.push(decoded_strings(&value));
        }
        Sent { texts }
    }

    /// Whether `found` repeats what was sent: it appears in the request, or it was cut short
    /// with an ellipsis (`'$(touch /tmp/mcp-harness...proof-...)'`, as pydantic quotes input)
    /// and every piece of 6 characters or more does.
    pub fn reflects(&self, found: &str) -> bool {
        if found.is_empty() || self.texts.iter().any(|t| t.contains(found)) {
            return true;
        }
        let pieces: Vec<&str> = found
            .split(['\u{2026}'])
            .flat_map(|p| p.split("..."))
            .filter(|p| p.len() >= 6)
            .collect();
        pieces.len() > 1
            && pieces
                .iter()
                .all(|piece| self.texts.iter().any(|t| t.contains(piece)))
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(160)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scanner() -> LeakScanner {
        LeakScanner::new(
            ["mcpcanary-secret-0123".to_string()],
            ["/tmp/stage".to_string()],
        )
    }

    fn kinds(reply: &str, request: &str) -> Vec<LeakKind> {
        scanner()
            .scan(reply, request)
            .into_iter()
            .map(|l| l.kind)
            .collect()
    }

    #[test]
    fn each_kind_of_leak_is_found() {
        assert_eq!(
            kinds("token is mcpcanary-secret-0123", ""),
            [LeakKind::CanarySecret]
        );
        assert_eq!(
            kinds(
                "Traceback (most recent call last):\n  File \"x.py\", line 3, in f",
                ""
            ),
            [LeakKind::StackTrace]
        );
        assert_eq!(
            kinds(
                "Error: boom\n    at Object.<anonymous> (/srv/app/index.js:10:5)",
                ""
            )
            .first(),
            Some(&LeakKind::StackTrace)
        );
        assert_eq!(
            kinds("sqlite3.OperationalError: near \"x\": syntax error", ""),
            [LeakKind::DatabaseError]
        );
        assert_eq!(
            kinds("cannot connect to postgres://app:hunter2@db:5432/x", ""),
            [LeakKind::CredentialInUrl]
        );
        assert_eq!(
            kinds("open /home/deploy/.config/app.toml failed", ""),
            [LeakKind::InternalPath]
        );
        assert_eq!(
            kinds(r"open C:\Users\deploy\app.toml failed", ""),
            [LeakKind::InternalPath]
        );
    }

    #[test]
    fn reflections_configured_paths_and_masked_values_are_not_leaks() {
        assert!(kinds("no such file: /etc/passwd", "{\"path\":\"/etc/passwd\"}").is_empty());
        assert!(kinds("read /tmp/stage/sandbox/a.txt", "").is_empty());
        assert!(
            kinds(
                "postgres://app:***@db/x and postgres://app:${PASSWORD}@db",
                ""
            )
            .is_empty()
        );
        assert!(kinds("The request is not permitted (correlation id 0a1b2c)", "").is_empty());
        assert!(kinds("https://example.com/path and a time 12:30:00", "").is_empty());
    }

    #[test]
    fn the_harness_own_payloads_echoed_back_are_not_leaks() {
        // An SSRF payload repeated in a validation error: its "password" is the port.
        let request = r#"{"method":"tools/call","params":{"arguments":{"url":"http://example.com:443@127.0.0.1:4000/ssrf/ab12"}}}"#;
        assert!(
            kinds(
                "invalid url 'http://example.com:443@127.0.0.1:4000/ssrf/ab12.'",
                request
            )
            .is_empty()
        );
        // A payload path quoted with an ellipsis in the middle, as pydantic does.
        let request =
            r#"{"arguments":{"name":"$(touch /home/runner/outside/proof-INJ-CMD-dd051a66)"}}"#;
        assert!(
            kinds(
                "String should match pattern [input_value='$(touch /home/runner...proof-INJ-CMD-dd051a66)']",
                request
            )
            .is_empty()
        );
        // A JSON-escaped request still reflects its decoded strings.
        let request = r#"{"arguments":{"path":"C:\\Users\\deploy\\app.toml"}}"#;
        assert!(!request.contains(r"C:\Users"), "escaped in the JSON text");
        assert!(kinds(r"open C:\Users\deploy\app.toml failed", request).is_empty());
        // A real secret next to the echo is still a leak.
        assert_eq!(
            kinds("bad input 'x' (key mcpcanary-secret-0123)", r#"{"q":"x"}"#),
            [LeakKind::CanarySecret]
        );
    }

    #[test]
    fn decoded_strings_unescape_nested_json() {
        let reply = json!({"content": [{"type": "text", "text": "Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>"}]});
        assert_eq!(kinds(&decoded_strings(&reply), ""), [LeakKind::StackTrace]);
    }
}
