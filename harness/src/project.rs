//! The project file, `mcp-harness.toml`: what a CI job certifies and how, kept in the
//! repository instead of on one long command line.
//!
//! ```toml
//! fail-on = "high"                 # the gate (default high)
//! profile = "standard"             # quick, standard, deep
//! only = ["TRAV", "INJ-SQL"]       # or skip = [...]
//! max-duration = 600               # seconds; also timeout, startup-timeout
//! baseline = "mcp-baseline.json"   # fail only on findings not in it
//!
//! [[target]]
//! name = "files"                   # the report's label (required with several targets)
//! stdio = "python server.py --root {sandbox}"
//! cwd = "."
//! env = { LOG_LEVEL = "warning" }
//! argument-key-env = "FILES_API_KEY"
//!
//! [[target]]
//! name = "api"
//! url = "http://127.0.0.1:8765/mcp"
//! headers = { "X-Team" = "ci" }
//! bearer-env = "MCP_TOKEN"         # Authorization: Bearer $MCP_TOKEN
//! second-bearer-env = "MCP_TOKEN2"
//! low-scope-bearer-env = "MCP_TOKEN_LOW"
//! header-env = { "X-Api-Key" = "MCP_API_KEY" }
//! expect = { burst = 100, rate = 50.0 }
//!
//! [[output]]
//! format = "sarif"
//! path = "reports/{target}.sarif"
//!
//! [[suppress]]
//! probe = "RATE-FLOOD"
//! tool = "process_data"
//! reason = "limited by the gateway in front of the server"
//! expires = "2027-03-01"
//! ```
//!
//! Secrets are never in the file: a credential is named by its environment variable, and a
//! variable that is not set is an error that names it. Unknown keys are errors that name the
//! key (`deny_unknown_fields`), so a typo never silently drops a setting.
//!
//! Cost: one TOML parse. Failure: [`ProjectError`], naming the file, the key or the variable.

use crate::probe::{Profile, Severity};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file `certify` reads when given no target and no `--config`.
pub const DEFAULT_FILE: &str = "mcp-harness.toml";

/// Why a project file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("cannot read the project file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("the project file {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("the project file {path}: {reason}")]
    Setting { path: PathBuf, reason: String },
    #[error(
        "the project file {path} names the environment variable {variable} (for {purpose}), which is not set"
    )]
    MissingVariable {
        path: PathBuf,
        variable: String,
        purpose: String,
    },
}

/// The output formats a project file may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Human,
    Json,
    Sarif,
    Junit,
    Markdown,
    Html,
}

/// One report to write: a format, and a path (`{target}` is the target's name); without a
/// path, to stdout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub format: OutputFormat,
    pub path: Option<String>,
}

/// What the user expects of a target's rate limit.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub burst: Option<u32>,
    /// Sustained calls per second.
    pub rate: Option<f64>,
}

/// One target, as written in the file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TargetEntry {
    pub name: Option<String>,
    /// A command line run over stdio (`{sandbox}`, `{canary_url}` are filled in).
    pub stdio: Option<String>,
    /// A Streamable HTTP endpoint.
    pub url: Option<String>,
    /// The stdio target's working directory (relative to the project file).
    pub cwd: Option<PathBuf>,
    /// A directory to adopt as `{sandbox}` (relative to the project file).
    pub sandbox: Option<PathBuf>,
    /// Environment for the stdio target (values are not secrets: name secrets with `*-env`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values the stdio target gets under the same names.
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Headers sent with every HTTP request (not secrets).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers whose values are read from environment variables: header name to variable.
    #[serde(default)]
    pub header_env: BTreeMap<String, String>,
    /// The variable holding the bearer token sent as `Authorization: Bearer ...`.
    pub bearer_env: Option<String>,
    /// The variable holding a second principal's bearer token.
    pub second_bearer_env: Option<String>,
    /// The variable holding a valid bearer token that lacks a scope some tools need.
    pub low_scope_bearer_env: Option<String>,
    /// The variable holding a valid key for a tool's credential argument (stdio).
    pub argument_key_env: Option<String>,
    /// A JWT signing key file the target trusts (relative to the project file).
    pub jwt_signing_key: Option<PathBuf>,
    #[serde(default)]
    pub expect: Expect,
}

/// A finding accepted on purpose: matched by fingerprint, or by probe (and optionally tool and
/// attack point); the reason is required, the expiry date optional (`YYYY-MM-DD`, UTC).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    /// The target it applies to (default: every target).
    pub target: Option<String>,
    pub fingerprint: Option<String>,
    pub probe: Option<String>,
    pub tool: Option<String>,
    pub point: Option<String>,
    pub reason: String,
    pub expires: Option<String>,
}

/// The file as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProjectFile {
    pub fail_on: Option<Severity>,
    pub profile: Option<ProfileName>,
    #[serde(default)]
    pub only: Vec<String>,
    #[serde(default)]
    pub skip: Vec<String>,
    /// Seconds to wait for each reply.
    pub timeout: Option<u64>,
    /// Seconds to wait for a stdio target to start.
    pub startup_timeout: Option<u64>,
    /// Seconds after which no new call is started.
    pub max_duration: Option<u64>,
    /// `negotiate` or `2026-07-28`.
    pub protocol: Option<String>,
    /// A baseline file (relative to the project file).
    pub baseline: Option<PathBuf>,
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetEntry>,
    #[serde(default, rename = "output")]
    pub outputs: Vec<Output>,
    #[serde(default, rename = "suppress")]
    pub suppressions: Vec<Suppression>,
}

/// [`Profile`] as the file spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileName {
    Quick,
    Standard,
    Deep,
}

impl From<ProfileName> for Profile {
    fn from(name: ProfileName) -> Self {
        match name {
            ProfileName::Quick => Profile::Quick,
            ProfileName::Standard => Profile::Standard,
            ProfileName::Deep => Profile::Deep,
        }
    }
}

/// A target ready to certify: every variable read, every path resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub kind: TargetKind,
    pub cwd: Option<PathBuf>,
    pub sandbox: Option<PathBuf>,
    /// The stdio target's extra environment (`env` and `pass-env`).
    pub env: Vec<(String, String)>,
    pub bearer: Option<String>,
    pub second_bearer: Option<String>,
    pub low_scope_bearer: Option<String>,
    pub argument_key: Option<String>,
    pub jwt_signing_key: Option<PathBuf>,
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TargetKind {
    Stdio(String),
    Http {
        url: String,
        /// Headers, credentials from the environment included.
        headers: Vec<(String, String)>,
    },
}

/// A loaded project: the file, where it is, and its targets resolved.
#[derive(Debug, Clone)]
pub struct Project {
    pub path: PathBuf,
    pub file: ProjectFile,
    pub targets: Vec<Target>,
}

impl Project {
    /// Reads and checks `path`, reading credentials with `env` (the process environment in
    /// the binary; a map in tests).
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ProjectError> {
        let text = std::fs::read_to_string(path).map_err(|e| ProjectError::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Self::parse(path, &text, env)
    }

    /// [`Project::load`] from text already read.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ProjectError> {
        let file: ProjectFile = toml::from_str(text).map_err(|e| ProjectError::Invalid {
            path: path.to_owned(),
            reason: e.message().to_owned() + &location(text, e.span()),
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let setting = |reason: String| ProjectError::Setting {
            path: path.to_owned(),
            reason,
        };
        if file.targets.is_empty() {
            return Err(setting("no [[target]] is given".into()));
        }
        if let Some(protocol) = &file.protocol
            && !matches!(protocol.as_str(), "negotiate" | "2026-07-28")
        {
            return Err(setting(format!(
                "protocol is {protocol:?}; it must be \"negotiate\" or \"2026-07-28\""
            )));
        }
        for suppression in &file.suppressions {
            check_suppression(suppression).map_err(&setting)?;
        }
        let several = file.targets.len() > 1;
        let mut targets = Vec::new();
        for (index, entry) in file.targets.iter().enumerate() {
            let name = match (&entry.name, several) {
                (Some(name), _) => name.clone(),
                (None, false) => "target".to_owned(),
                (None, true) => {
                    return Err(setting(format!(
                        "target {} has no name (every target needs one when there are several)",
                        index + 1
                    )));
                }
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(setting(format!(
                    "target name {name:?} must be letters, digits, '-', '_' or '.' (it names report files)"
                )));
            }
            if targets.iter().any(|t: &Target| t.name == name) {
                return Err(setting(format!("two targets are named {name:?}")));
            }
            targets.push(resolve_target(path, &base, name, entry, env)?);
        }
        Ok(Project {
            path: path.to_owned(),
            file,
            targets,
        })
    }

    /// The baseline file, resolved against the project file's directory.
    pub fn baseline(&self) -> Option<PathBuf> {
        let base = self.path.parent().unwrap_or(Path::new("."));
        self.file.baseline.as_ref().map(|b| base.join(b))
    }
}

/// " (line L, column C)" for a TOML error's span.
fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!(" (line {line}, column {column})")
}

fn check_suppression(suppression: &Suppression) -> Result<(), String> {
    if suppression.reason.trim().is_empty() {
        return Err("a [[suppress]] has an empty reason".into());
    }
    if suppression.fingerprint.is_none() && suppression.probe.is_none() {
        return Err(format!(
            "the [[suppress]] with reason {:?} names neither a fingerprint nor a probe",
            suppression.reason
        ));
    }
    if let Some(expires) = &suppression.expires {
        crate::baseline::parse_date(expires).map_err(|reason| {
            format!(
                "the [[suppress]] with reason {:?}: expires {reason}",
                suppression.reason
            )
        })?;
    }
    Ok(())
}

fn resolve_target(
    path: &Path,
    base: &Path,
    name: String,
    entry: &TargetEntry,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Target, ProjectError> {
    let setting = |reason: String| ProjectError::Setting {
        path: path.to_owned(),
        reason: format!("target {name:?}: {reason}"),
    };
    let variable = |variable: &str, purpose: &str| {
        env(variable).ok_or_else(|| ProjectError::MissingVariable {
            path: path.to_owned(),
            variable: variable.to_owned(),
            purpose: format!("target {name:?}'s {purpose}"),
        })
    };
    let read = |name: &Option<String>, purpose: &str| -> Result<Option<String>, ProjectError> {
        match name {
            Some(var) => variable(var, purpose).map(Some),
            None => Ok(None),
        }
    };
    let bearer = read(&entry.bearer_env, "bearer-env")?;
    let second_bearer = read(&entry.second_bearer_env, "second-bearer-env")?;
    let low_scope_bearer = read(&entry.low_scope_bearer_env, "low-scope-bearer-env")?;
    let argument_key = read(&entry.argument_key_env, "argument-key-env")?;
    let kind = match (&entry.stdio, &entry.url) {
        (Some(command), None) => {
            for (key, given) in [
                ("headers", !entry.headers.is_empty()),
                ("header-env", !entry.header_env.is_empty()),
                ("bearer-env", entry.bearer_env.is_some()),
                ("second-bearer-env", entry.second_bearer_env.is_some()),
                ("low-scope-bearer-env", entry.low_scope_bearer_env.is_some()),
                ("jwt-signing-key", entry.jwt_signing_key.is_some()),
            ] {
                if given {
                    return Err(setting(format!("{key} is for an HTTP target (url)")));
                }
            }
            if command.trim().is_empty() {
                return Err(setting("stdio is empty".into()));
            }
            TargetKind::Stdio(command.clone())
        }
        (None, Some(url)) => {
            for (key, given) in [
                ("env", !entry.env.is_empty()),
                ("pass-env", !entry.pass_env.is_empty()),
                ("cwd", entry.cwd.is_some()),
                ("argument-key-env", entry.argument_key_env.is_some()),
            ] {
                if given {
                    return Err(setting(format!("{key} is for a stdio target")));
                }
            }
            let mut headers: Vec<(String, String)> = entry
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            for (header, var) in &entry.header_env {
                headers.push((header.clone(), variable(var, &format!("header {header}"))?));
            }
            if let Some(token) = &bearer {
                headers.push(("Authorization".into(), format!("Bearer {}", token.trim())));
            }
            for (header, _) in &headers {
                if header.is_empty()
                    || !header
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(setting(format!("header name {header:?} is invalid")));
                }
            }
            TargetKind::Http {
                url: url.clone(),
                headers,
            }
        }
        (Some(_), Some(_)) => return Err(setting("give stdio or url, not both".into())),
        (None, None) => return Err(setting("give stdio (a command) or url".into())),
    };
    let mut target_env: Vec<(String, String)> = entry
        .env
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    for var in &entry.pass_env {
        target_env.push((var.clone(), variable(var, "pass-env")?));
    }
    if let Some(rate) = entry.expect.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(setting(format!(
            "expect.rate {rate} must be a positive number"
        )));
    }
    Ok(Target {
        kind,
        cwd: entry.cwd.as_ref().map(|c| base.join(c)),
        sandbox: entry.sandbox.as_ref().map(|s| base.join(s)),
        env: target_env,
        bearer,
        second_bearer,
        low_scope_bearer,
        argument_key,
        jwt_signing_key: entry.jwt_signing_key.as_ref().map(|k| base.join(k)),
        expect: entry.expect.clone(),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "MCP_TOKEN" => Some("primary-token".into()),
            "MCP_TOKEN2" => Some("second-token".into()),
            "MCP_TOKEN_LOW" => Some("low-token".into()),
            "MCP_API_KEY" => Some("api-key-value".into()),
            "FILES_KEY" => Some("argument-key-value".into()),
            "HOME_DIR" => Some("/home/ci".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Project, ProjectError> {
        Project::parse(Path::new("ci/mcp-harness.toml"), text, &env)
    }

    const EVERY_KEY: &str = r#"
fail-on = "medium"
profile = "quick"
only = ["TRAV", "INJ-SQL"]
skip = ["TRAV-WRITE"]
timeout = 5
startup-timeout = 20
max-duration = 120
protocol = "2026-07-28"
baseline = "baseline.json"

[[target]]
name = "files"
stdio = "python server.py --root {sandbox}"
cwd = "servers"
sandbox = "stage"
env = { LOG_LEVEL = "warning" }
pass-env = ["HOME_DIR"]
argument-key-env = "FILES_KEY"
expect = { burst = 10, rate = 5.0 }

[[target]]
name = "api"
url = "http://127.0.0.1:8765/mcp"
headers = { "X-Team" = "ci" }
header-env = { "X-Api-Key" = "MCP_API_KEY" }
bearer-env = "MCP_TOKEN"
second-bearer-env = "MCP_TOKEN2"
low-scope-bearer-env = "MCP_TOKEN_LOW"
jwt-signing-key = "keys/dev-signing-key"

[[output]]
format = "sarif"
path = "reports/{target}.sarif"

[[output]]
format = "human"

[[suppress]]
target = "api"
probe = "RATE-FLOOD"
tool = "process_data"
point = "/data"
reason = "limited by the gateway"
expires = "2027-03-01"

[[suppress]]
fingerprint = "TRANS-ORIGIN"
reason = "behind a proxy that checks Origin"
"#;

    #[test]
    fn every_key_is_read_and_resolved() {
        let project = parse(EVERY_KEY).unwrap();
        let file = &project.file;
        assert_eq!(file.fail_on, Some(Severity::Medium));
        assert_eq!(file.profile, Some(ProfileName::Quick));
        assert_eq!(file.only, ["TRAV", "INJ-SQL"]);
        assert_eq!(file.skip, ["TRAV-WRITE"]);
        assert_eq!(
            (file.timeout, file.startup_timeout, file.max_duration),
            (Some(5), Some(20), Some(120))
        );
        assert_eq!(file.protocol.as_deref(), Some("2026-07-28"));
        assert_eq!(project.baseline(), Some(PathBuf::from("ci/baseline.json")));
        assert_eq!(file.outputs.len(), 2);
        assert_eq!(file.outputs[0].format, OutputFormat::Sarif);
        assert_eq!(
            file.outputs[0].path.as_deref(),
            Some("reports/{target}.sarif")
        );
        assert_eq!(file.outputs[1].path, None);
        assert_eq!(file.suppressions.len(), 2);
        assert_eq!(file.suppressions[0].target.as_deref(), Some("api"));

        let [files, api] = project.targets.as_slice() else {
            panic!("two targets")
        };
        assert_eq!(files.name, "files");
        assert_eq!(
            files.kind,
            TargetKind::Stdio("python server.py --root {sandbox}".into())
        );
        assert_eq!(files.cwd, Some(PathBuf::from("ci/servers")));
        assert_eq!(files.sandbox, Some(PathBuf::from("ci/stage")));
        assert_eq!(
            files.env,
            [
                ("LOG_LEVEL".to_owned(), "warning".to_owned()),
                ("HOME_DIR".to_owned(), "/home/ci".to_owned())
            ]
        );
        assert_eq!(files.argument_key.as_deref(), Some("argument-key-value"));
        assert_eq!(
            files.expect,
            Expect {
                burst: Some(10),
                rate: Some(5.0)
            }
        );

        assert_eq!(api.name, "api");
        let TargetKind::Http { url, headers } = &api.kind else {
            panic!("an HTTP target")
        };
        assert_eq!(url, "http://127.0.0.1:8765/mcp");
        assert!(headers.contains(&("X-Team".into(), "ci".into())));
        assert!(headers.contains(&("X-Api-Key".into(), "api-key-value".into())));
        assert!(headers.contains(&("Authorization".into(), "Bearer primary-token".into())));
        assert_eq!(api.second_bearer.as_deref(), Some("second-token"));
        assert_eq!(api.low_scope_bearer.as_deref(), Some("low-token"));
        assert_eq!(
            api.jwt_signing_key,
            Some(PathBuf::from("ci/keys/dev-signing-key"))
        );
    }

    #[test]
    fn an_unknown_key_is_an_error_that_names_it() {
        for (text, key) in [
            ("fail_on = \"high\"\n[[target]]\nstdio = \"x\"\n", "fail_on"),
            ("[[target]]\nstdio = \"x\"\ncommand = \"y\"\n", "command"),
            (
                "[[target]]\nstdio = \"x\"\nexpect = { bursts = 3 }\n",
                "bursts",
            ),
            (
                "[[target]]\nstdio = \"x\"\n[[output]]\nformat = \"json\"\nfile = \"a\"\n",
                "file",
            ),
            (
                "[[target]]\nstdio = \"x\"\n[[suppress]]\nprobe = \"A\"\nreason = \"r\"\nwhy = \"w\"\n",
                "why",
            ),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(key), "{key}: {error}");
            assert!(error.contains("ci/mcp-harness.toml"), "{error}");
            assert!(error.contains("line"), "{error}");
        }
    }

    #[test]
    fn a_missing_variable_is_an_error_that_names_it() {
        for (text, variable) in [
            (
                "[[target]]\nurl = \"http://127.0.0.1:1/mcp\"\nbearer-env = \"NOT_SET_TOKEN\"\n",
                "NOT_SET_TOKEN",
            ),
            (
                "[[target]]\nurl = \"http://127.0.0.1:1/mcp\"\nheader-env = { \"X-Key\" = \"NO_KEY\" }\n",
                "NO_KEY",
            ),
            (
                "[[target]]\nstdio = \"x\"\npass-env = [\"NO_SUCH_VAR\"]\n",
                "NO_SUCH_VAR",
            ),
            (
                "[[target]]\nstdio = \"x\"\nargument-key-env = \"NO_ARG_KEY\"\n",
                "NO_ARG_KEY",
            ),
        ] {
            match parse(text) {
                Err(ProjectError::MissingVariable {
                    variable: named, ..
                }) => {
                    assert_eq!(named, variable)
                }
                other => panic!("{variable}: {other:?}"),
            }
        }
    }

    #[test]
    fn inconsistent_settings_are_refused_with_the_reason() {
        for (text, says) in [
            ("", "no [[target]]"),
            ("[[target]]\n", "give stdio"),
            (
                "[[target]]\nstdio = \"x\"\nurl = \"http://a\"\n",
                "not both",
            ),
            (
                "[[target]]\nstdio = \"x\"\nheaders = { A = \"b\" }\n",
                "HTTP target",
            ),
            (
                "[[target]]\nurl = \"http://a\"\nenv = { A = \"b\" }\n",
                "stdio target",
            ),
            (
                "[[target]]\nstdio = \"a\"\n[[target]]\nstdio = \"b\"\n",
                "has no name",
            ),
            (
                "[[target]]\nname = \"a\"\nstdio = \"a\"\n[[target]]\nname = \"a\"\nstdio = \"b\"\n",
                "two targets",
            ),
            (
                "[[target]]\nname = \"a b\"\nstdio = \"a\"\n",
                "must be letters",
            ),
            (
                "protocol = \"2025\"\n[[target]]\nstdio = \"x\"\n",
                "protocol",
            ),
            (
                "[[target]]\nstdio = \"x\"\n[[suppress]]\nprobe = \"A\"\nreason = \" \"\n",
                "empty reason",
            ),
            (
                "[[target]]\nstdio = \"x\"\n[[suppress]]\nreason = \"r\"\n",
                "neither a fingerprint",
            ),
            (
                "[[target]]\nstdio = \"x\"\n[[suppress]]\nprobe = \"A\"\nreason = \"r\"\nexpires = \"soon\"\n",
                "expires",
            ),
            (
                "[[target]]\nstdio = \"x\"\n[[suppress]]\nprobe = \"A\"\n",
                "reason",
            ),
            (
                "[[target]]\nstdio = \"x\"\nexpect = { rate = -1.0 }\n",
                "expect.rate",
            ),
            (
                "[[target]]\nurl = \"http://a\"\nheaders = { \"Bad Name\" = \"v\" }\n",
                "header name",
            ),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(says), "{says}: {error}");
        }
    }

    /// The README's example is a valid project file.
    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("### Use in CI")
            .nth(1)
            .expect("the README has a Use in CI section");
        let example = section
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a toml block");
        let env = |name: &str| {
            ["MCP_TOKEN", "MCP_TOKEN2", "PATH"]
                .contains(&name)
                .then(|| "value".to_owned())
        };
        let project = Project::parse(Path::new("mcp-harness.toml"), example, &env).unwrap();
        assert_eq!(project.targets.len(), 2);
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let error = Project::load(Path::new("/nonexistent/mcp-harness.toml"), &env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/mcp-harness.toml"), "{error}");
    }
}
