//! The first run (`mcp-harness certify` with no target and no project file): the bundled
//! reference server over stdio, then the probes stdio could not apply against it over
//! Streamable HTTP, in one report ([`OverHttp::join`]). A module of the binary, not of the
//! library: the library never links the server it attacks.
//!
//! The HTTP half runs twice at most: first with the operator's JWT (so the OAuth probes run),
//! then, for what a JWT leaves not applicable (TIME-CREDENTIAL-COMPARE times API keys), with
//! the operator's API key. Each part runs only the probes still not applicable, so no probe
//! is judged twice and the whole first run stays under a minute in a debug build.
//!
//! [`BundledHttpServer::start`] runs this binary's hidden `__reference-server` on a free
//! loopback port with its development authorization server (signing with a fresh development
//! key, which a JWT for the operator, with every scope, is minted with) and with two fresh random API keys (a second
//! principal's with every scope, and a key with none), in a temporary directory that holds its
//! keys file, signing key, configuration and the sandbox the harness adopts as its stage. The
//! API keys live in this process and in the child's environment only; the keys file holds
//! their SHA-256.
//!
//! Cost: one process, up to `startup` to print its address. Failure: an error naming what went
//! wrong (the server's own message when it exits first); dropping the value kills the server,
//! so no run leaves one behind.

use harness::report::Report;
use harness::{CertifyOptions, EventFn, TargetOptions};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running bundled reference server over HTTP, and the credentials to reach it.
pub struct BundledHttpServer {
    child: Child,
    /// Holds the keys file, the configuration and the sandbox; removed after the child stops.
    directory: tempfile::TempDir,
    pub url: String,
    /// The operator's JWT (every scope), signed with [`BundledHttpServer::signing_key`].
    pub operator_token: String,
    /// The operator's API key (every scope).
    pub operator_key: String,
    /// A second principal with every scope (RATE-SECOND-PRINCIPAL, AUTH-SESSION-BINDING).
    pub second_key: String,
    /// A principal with no scope (AUTH-SCOPE).
    pub low_scope_key: String,
    /// The port of 127.0.0.1 the server's egress policy allows as an internal upstream, where
    /// the harness serves its upstream listener (AUTH-TOKEN-PASSTHROUGH).
    pub upstream_port: u16,
}

/// A fresh random key, long enough for the server's minimum.
fn random_key(label: &str) -> String {
    format!("{label}-{:032x}", rand::random::<u128>())
}

fn hex_digest(key: &str) -> String {
    reference_server::guard::api_keys::key_digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl BundledHttpServer {
    /// Starts `exe __reference-server --http 127.0.0.1:0` and waits up to `startup` for the
    /// address it prints.
    pub fn start(exe: &Path, startup: Duration) -> Result<Self, String> {
        let directory = tempfile::Builder::new()
            .prefix("mcp-harness-first-run-")
            .tempdir()
            .map_err(|e| format!("cannot create a directory for the HTTP server: {e}"))?;
        // The token's audience is the server's URL, so the port is chosen first (bound, then
        // released: another process taking it in between makes the start fail, said plainly).
        let free_port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map(|address| address.port())
                .map_err(|e| format!("cannot find a free loopback port: {e}"))
        };
        let port = free_port()?;
        let upstream_port = free_port()?;
        let public_url = format!("http://127.0.0.1:{port}/mcp");
        // The server's own development authorization server is the issuer (the AUTH-AS probes
        // audit it), signing with the key the operator's token is minted with.
        let issuer = format!("http://127.0.0.1:{port}");
        let oauth = directory.path().join("oauth");
        let minted = Command::new(exe)
            .args(["__reference-server", "dev-token", "--out"])
            .arg(&oauth)
            .args(["--issuer", &issuer, "--resource", &public_url])
            .args(["--subject", "operator"])
            .args(
                reference_server::guard::scopes::ALL_SCOPES
                    .iter()
                    .flat_map(|scope| ["--scope", scope]),
            )
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot mint the operator's token: {e}"))?;
        if !minted.status.success() {
            return Err(format!(
                "minting the operator's token failed: {}",
                String::from_utf8_lossy(&minted.stderr).trim()
            ));
        }
        let operator_token = String::from_utf8_lossy(&minted.stdout).trim().to_owned();
        let operator_key = random_key("operator");
        let second_key = random_key("second");
        let low_scope_key = random_key("low-scope");
        let scopes = reference_server::guard::scopes::ALL_SCOPES
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let keys = directory.path().join("keys.toml");
        let config = directory.path().join("server.toml");
        let sandbox = directory.path().join("sandbox");
        let written = std::fs::write(
            &keys,
            format!(
                "[[principal]]\nname = \"second\"\nkey_sha256 = \"{}\"\nscopes = [{scopes}]\n\n\
                 [[principal]]\nname = \"low-scope\"\nkey_sha256 = \"{}\"\nscopes = []\n",
                hex_digest(&second_key),
                hex_digest(&low_scope_key)
            ),
        )
        .and_then(|()| {
            std::fs::write(
                &config,
                format!(
                    "keys_file = {:?}\n[http]\npublic_url = {public_url:?}\n\
                     [egress]\nallowed_hosts = [\"127.0.0.1\"]\n\
                     allowed_ports = [{upstream_port}]\n\
                     allowed_internal = [\"127.0.0.1:{upstream_port}\"]\n",
                    keys.to_string_lossy(),
                ),
            )
        })
        .and_then(|()| std::fs::create_dir(&sandbox));
        written.map_err(|e| format!("cannot prepare the HTTP server's files: {e}"))?;
        let mut child = Command::new(exe)
            .args([
                "__reference-server",
                "--http",
                &format!("127.0.0.1:{port}"),
                "--dev-authorization-server",
                "--dev-authorization-key",
            ])
            .arg(oauth.join("dev-signing-key"))
            .arg("--root")
            .arg(&sandbox)
            .arg("--config")
            .arg(&config)
            .env(reference_server::config::TOKEN_VAR, &operator_key)
            .env_remove(reference_server::config::TOKEN_SCOPES_VAR)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the bundled reference server over HTTP: {e}"))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (found, address) = std::sync::mpsc::channel();
        // Reads the server's log until it names its address, then keeps draining it so the
        // server never blocks on a full pipe; what came before is kept for an error message.
        std::thread::spawn(move || {
            let mut before = Vec::new();
            let mut lines = std::io::BufReader::new(stderr).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = found.send(Ok(url.trim().to_owned()));
                    for _ in lines {}
                    return;
                }
                if before.len() < 20 {
                    before.push(line);
                }
            }
            let _ = found.send(Err(before.join("\n")));
        });
        let mut server = Self {
            child,
            directory,
            url: String::new(),
            operator_token,
            operator_key,
            second_key,
            low_scope_key,
            upstream_port,
        };
        server.url = match address.recv_timeout(startup) {
            Ok(Ok(url)) => url,
            Ok(Err(log)) => {
                return Err(format!(
                    "the bundled reference server over HTTP exited before it listened: {log}"
                ));
            }
            Err(_) => {
                return Err(format!(
                    "the bundled reference server over HTTP did not say its address within {} s",
                    startup.as_secs()
                ));
            }
        };
        Ok(server)
    }

    /// The development signing key the server trusts (for AUTH-JWT-CLAIMS).
    pub fn signing_key(&self) -> PathBuf {
        self.directory.path().join("oauth").join("dev-signing-key")
    }

    /// The sandbox the server serves, for the harness to adopt as its stage.
    pub fn sandbox(&self) -> PathBuf {
        self.directory.path().join("sandbox")
    }
}

impl Drop for BundledHttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP half of the first run: what it copies of the stdio half's options.
pub struct OverHttp {
    selection: harness::Selection,
    fail_on: harness::probe::Severity,
    budget: harness::connection::Budget,
    max_duration: Duration,
    expect: harness::probe::rate::Expectations,
    quiet: bool,
    events: fn(bool) -> EventFn,
}

impl OverHttp {
    /// The HTTP half of a first run whose stdio half is `stdio`; `events(quiet)` gives each
    /// part its progress line.
    pub fn after(stdio: &CertifyOptions, quiet: bool, events: fn(bool) -> EventFn) -> Self {
        Self {
            selection: harness::Selection {
                only: Vec::new(),
                skip: stdio.selection.skip.clone(),
                profile: stdio.selection.profile,
            },
            fail_on: stdio.fail_on,
            budget: stdio.budget,
            max_duration: stdio.max_duration,
            expect: stdio.expect,
            quiet,
            events,
        }
    }

    /// Runs the probes `report` has as not applicable against the bundled reference server
    /// over HTTP and joins the reports; with none, `report` comes back as it was, and when the
    /// server will not start or a part cannot run, with a warning saying so.
    pub fn join(self, runtime: &tokio::runtime::Runtime, mut report: Report) -> Report {
        if not_applicable(&report).is_empty() {
            return report;
        }
        let server = match std::env::current_exe()
            .map_err(|e| format!("cannot find the harness binary: {e}"))
            .and_then(|exe| BundledHttpServer::start(&exe, self.budget.startup_timeout))
        {
            Ok(server) => server,
            Err(message) => {
                report
                    .warnings
                    .push(format!("the probes that need HTTP did not run: {message}"));
                return report;
            }
        };
        let signing_key = harness::probe::auth::SigningKey::load(&server.signing_key());
        let parts = [
            (server.operator_token.as_str(), signing_key.ok()),
            (server.operator_key.as_str(), None),
        ];
        for (credential, jwt_signing_key) in parts {
            let only = not_applicable(&report);
            if only.is_empty() {
                break;
            }
            if !self.quiet {
                eprintln!(
                    "mcp-harness: {} probe(s) stdio could not apply, over HTTP at {}",
                    only.len(),
                    server.url
                );
            }
            let spent = Duration::from_millis(report.duration_ms);
            let bearer = |key: &str| Some(format!("Bearer {key}"));
            let options = CertifyOptions {
                target: TargetOptions::Http {
                    url: server.url.clone(),
                    headers: vec![("Authorization".to_owned(), format!("Bearer {credential}"))],
                },
                stage: harness::StageOptions {
                    sandbox: Some(server.sandbox()),
                    upstream_port: Some(server.upstream_port),
                    ..Default::default()
                },
                selection: harness::Selection {
                    only,
                    ..self.selection.clone()
                },
                fail_on: self.fail_on,
                budget: self.budget,
                max_duration: self
                    .max_duration
                    .saturating_sub(spent)
                    .max(Duration::from_secs(1)),
                credentials: harness::probe::Credentials {
                    jwt_signing_key,
                    second: bearer(&server.second_key),
                    low_scope: bearer(&server.low_scope_key),
                    ..Default::default()
                },
                expect: self.expect,
                events: Some((self.events)(self.quiet)),
            };
            match runtime.block_on(harness::certify(options)) {
                Ok(http) => report = report.joined(http),
                Err(error) => {
                    report
                        .warnings
                        .push(format!("the probes that need HTTP did not run: {error}"));
                    break;
                }
            }
        }
        report
    }
}

/// The ids of the probes `report` has as not applicable.
fn not_applicable(report: &Report) -> Vec<String> {
    report
        .probes
        .iter()
        .filter(|p| p.verdict == harness::probe::Verdict::NotApplicable)
        .map(|p| p.id.to_owned())
        .collect()
}
