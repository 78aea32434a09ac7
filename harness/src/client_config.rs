//! MCP server lists from the configuration files of common clients, so that
//! `mcp-harness certify --client-config FILE` can certify the servers a user already runs:
//!
//! - Claude Desktop's `claude_desktop_config.json` and Cursor's `mcp.json`: an `mcpServers`
//!   object of `{command, args, env}` or `{url, headers}` entries;
//! - VS Code's `.vscode/mcp.json`: a `servers` object of the same entries, with a `type`
//!   (`stdio`, `http`, `sse`), next to `inputs` prompts.
//!
//! Such a server points at the user's real files and accounts, so nothing here rewrites it:
//! an entry whose arguments contain the harness's own placeholders (`{sandbox}`,
//! `{canary_url}`) is refused rather than filled in, and a value that asks the client to
//! prompt (`${input:...}`) or to read the environment (`${env:NAME}`) is resolved only for
//! `${env:NAME}` (from the harness's environment; an unset one is an error naming it).
//!
//! Cost: one JSON parse. Failure: [`ClientConfigError`], naming the file and the server.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The families run against a configured server unless the user asks for all: they only
/// read (PROTO, TRANS, AUTH; the passive leak scan rides along on their replies).
pub const SAFE_FAMILIES: &[&str] = &["PROTO", "TRANS", "AUTH"];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClientConfigError {
    #[error("cannot read the client configuration {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("the client configuration {path} is not JSON: {reason}")]
    NotJson { path: PathBuf, reason: String },
    #[error("the client configuration {path} has no mcpServers or servers object")]
    NoServers { path: PathBuf },
    #[error("the client configuration {path}, server {server:?}: {reason}")]
    Server {
        path: PathBuf,
        server: String,
        reason: String,
    },
}

/// How a configured server is reached.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientServerKind {
    Stdio {
        /// The command line, each word quoted as needed.
        command: String,
        env: Vec<(String, String)>,
    },
    Http {
        url: String,
        headers: Vec<(String, String)>,
    },
}

/// One server of a client's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientServer {
    pub name: String,
    pub kind: ClientServerKind,
}

/// Reads `path` (any of the three formats).
pub fn load(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ClientServer>, ClientConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ClientConfigError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    parse(path, &text, env)
}

/// [`load`] from text already read.
pub fn parse(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ClientServer>, ClientConfigError> {
    let document: Value = serde_json::from_str(text).map_err(|e| ClientConfigError::NotJson {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let servers = document
        .get("mcpServers")
        .or_else(|| document.get("servers"))
        .and_then(Value::as_object)
        .ok_or_else(|| ClientConfigError::NoServers {
            path: path.to_owned(),
        })?;
    servers
        .iter()
        .map(|(name, entry)| {
            server(entry, env)
                .map(|kind| ClientServer {
                    name: name.clone(),
                    kind,
                })
                .map_err(|reason| ClientConfigError::Server {
                    path: path.to_owned(),
                    server: name.clone(),
                    reason,
                })
        })
        .collect()
}

/// A string of the configuration with `${env:NAME}` resolved; the harness's own placeholders
/// and `${input:...}` prompts are refused.
fn resolve(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    for placeholder in ["{sandbox}", "{canary_url}"] {
        if text.contains(placeholder) {
            return Err(format!(
                "{text:?} contains {placeholder}, which the harness would fill in; a configured server is run as configured, never rewritten"
            ));
        }
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            return Err(format!("{text:?} has an unclosed ${{"));
        };
        let inner = &rest[start + 2..start + end];
        match inner.split_once(':') {
            Some(("env", name)) => out.push_str(
                &env(name).ok_or_else(|| format!("the environment variable {name} is not set"))?,
            ),
            Some(("input", id)) => {
                return Err(format!(
                    "{text:?} asks the client to prompt for {id}; set it in the configuration or use ${{env:NAME}}"
                ));
            }
            _ => return Err(format!("{text:?} has an unknown placeholder ${{{inner}}}")),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn string_map(
    value: Option<&Value>,
    what: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let map = value
        .as_object()
        .ok_or_else(|| format!("{what} is not an object"))?;
    map.iter()
        .map(|(name, value)| {
            let value = value
                .as_str()
                .ok_or_else(|| format!("{what}.{name} is not a string"))?;
            Ok((name.clone(), resolve(value, env)?))
        })
        .collect()
}

fn server(entry: &Value, env: &dyn Fn(&str) -> Option<String>) -> Result<ClientServerKind, String> {
    let kind = entry.get("type").and_then(Value::as_str);
    if let Some(url) = entry.get("url").and_then(Value::as_str) {
        if kind == Some("stdio") {
            return Err("type is stdio but a url is given".into());
        }
        return Ok(ClientServerKind::Http {
            url: resolve(url, env)?,
            headers: string_map(entry.get("headers"), "headers", env)?,
        });
    }
    let command = entry
        .get("command")
        .and_then(Value::as_str)
        .ok_or("neither a command nor a url is given")?;
    if matches!(kind, Some("http") | Some("sse")) {
        return Err(format!(
            "type is {} but no url is given",
            kind.unwrap_or_default()
        ));
    }
    let mut words = vec![resolve(command, env)?];
    if let Some(args) = entry.get("args") {
        for arg in args.as_array().ok_or("args is not an array")? {
            words.push(resolve(
                arg.as_str().ok_or("an argument is not a string")?,
                env,
            )?);
        }
    }
    Ok(ClientServerKind::Stdio {
        command: shell_words::join(&words),
        env: string_map(entry.get("env"), "env", env)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "GITHUB_TOKEN").then(|| "ghp-secret".to_owned())
    }

    fn servers(text: &str) -> Result<Vec<ClientServer>, ClientConfigError> {
        parse(Path::new("config.json"), text, &env)
    }

    #[test]
    fn claude_desktop_config_is_read() {
        let parsed = servers(
            r#"{"mcpServers": {
                "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/My Documents"]},
                "github": {"command": "docker", "args": ["run", "-i", "--rm", "ghcr.io/github/github-mcp-server"], "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "${env:GITHUB_TOKEN}"}}
            }}"#,
        )
        .unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parsed[0].kind,
            ClientServerKind::Stdio {
                command: "npx -y @modelcontextprotocol/server-filesystem '/Users/me/My Documents'"
                    .into(),
                env: vec![]
            }
        );
        let ClientServerKind::Stdio { env, .. } = &parsed[1].kind else {
            panic!("stdio")
        };
        assert_eq!(
            env,
            &[(
                "GITHUB_PERSONAL_ACCESS_TOKEN".to_owned(),
                "ghp-secret".to_owned()
            )]
        );
    }

    #[test]
    fn vs_code_mcp_json_is_read() {
        let parsed = servers(
            r#"{"inputs": [{"type": "promptString", "id": "key", "password": true}],
                "servers": {
                  "fetch": {"type": "stdio", "command": "uvx", "args": ["mcp-server-fetch"]},
                  "remote": {"type": "http", "url": "http://127.0.0.1:8765/mcp", "headers": {"Authorization": "Bearer ${env:GITHUB_TOKEN}"}}
                }}"#,
        )
        .unwrap();
        assert_eq!(parsed[0].name, "fetch");
        assert_eq!(
            parsed[1].kind,
            ClientServerKind::Http {
                url: "http://127.0.0.1:8765/mcp".into(),
                headers: vec![("Authorization".into(), "Bearer ghp-secret".into())]
            }
        );
    }

    #[test]
    fn cursor_mcp_json_is_read() {
        let parsed = servers(
            r#"{"mcpServers": {"remote": {"url": "http://127.0.0.1:9000/mcp", "headers": {"X-Key": "k"}}, "local": {"command": "python3", "args": ["server.py"]}}}"#,
        )
        .unwrap();
        assert!(matches!(parsed[0].kind, ClientServerKind::Stdio { .. }));
        assert!(matches!(parsed[1].kind, ClientServerKind::Http { .. }));
    }

    #[test]
    fn placeholders_prompts_and_bad_entries_are_refused_by_name() {
        for (text, says) in [
            (
                r#"{"mcpServers": {"a": {"command": "srv", "args": ["--root", "{sandbox}"]}}}"#,
                "never rewritten",
            ),
            (
                r#"{"servers": {"a": {"command": "srv", "env": {"K": "${input:key}"}}}}"#,
                "prompt",
            ),
            (
                r#"{"servers": {"a": {"command": "srv", "env": {"K": "${env:UNSET_VAR}"}}}}"#,
                "UNSET_VAR",
            ),
            (
                r#"{"servers": {"a": {"type": "http", "command": "srv"}}}"#,
                "no url",
            ),
            (
                r#"{"servers": {"a": {"args": ["x"]}}}"#,
                "neither a command nor a url",
            ),
            (
                r#"{"servers": {"a": {"command": "srv", "args": "x"}}}"#,
                "not an array",
            ),
        ] {
            let error = servers(text).unwrap_err().to_string();
            assert!(
                error.contains(says) && error.contains("\"a\""),
                "{says}: {error}"
            );
        }
        assert!(matches!(
            servers("{}"),
            Err(ClientConfigError::NoServers { .. })
        ));
        assert!(matches!(
            servers("not json"),
            Err(ClientConfigError::NotJson { .. })
        ));
    }
}
