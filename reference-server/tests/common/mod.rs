//! Shared helpers for the integration tests: a staged sandbox with canaries around it, the
//! server binary over stdio or HTTP, and small JSON helpers. Everything binds to loopback.
#![allow(dead_code)]

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, JsonObject, ProtocolVersion,
};
use rmcp::service::{RoleClient, RunningService, ServiceExt};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const BINARY: &str = env!("CARGO_BIN_EXE_mcp-reference-server");
pub const TOKEN: &str = "integration-test-token-0123456789";
pub const CANARY: &str = "CANARY-7f3a9c-OUTSIDE";

/// A temporary tree: `root/` (the sandbox, with seed files and a symlink out), `root_evil/`
/// and `outside.txt` holding the canary.
pub struct Stage {
    pub dir: tempfile::TempDir,
}

impl Stage {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir_all(dir.path().join("root_evil")).unwrap();
        std::fs::write(root.join("hello.txt"), "hello from the sandbox").unwrap();
        std::fs::write(root.join("docs/readme.md"), "# docs").unwrap();
        std::fs::write(dir.path().join("root_evil/secret.txt"), CANARY).unwrap();
        std::fs::write(dir.path().join("outside.txt"), CANARY).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("link-out")).unwrap();
        git(&root, &["init", "-q"]);
        git(&root, &["add", "hello.txt", "docs"]);
        git(
            &root,
            &[
                "-c",
                "user.name=stage",
                "-c",
                "user.email=stage@example.invalid",
                "commit",
                "-q",
                "-m",
                "first commit",
            ],
        );
        Self { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a configuration file and returns its path.
    pub fn config(&self, toml: &str) -> PathBuf {
        let path = self.dir.path().join("server.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .status()
        .expect("git is installed");
    assert!(status.success(), "git {args:?}");
}

pub type Client = RunningService<RoleClient, ClientConfig>;

pub fn client_info(version: ProtocolVersion) -> ClientConfig {
    ClientConfig::default().with_protocol_version(version)
}

/// Starts the server over stdio with `extra` arguments and connects an rmcp client.
pub async fn stdio_client(stage: &Stage, extra: &[&str], envs: &[(&str, &str)]) -> Client {
    let root = stage.root();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let command = tokio::process::Command::new(BINARY).configure(|cmd| {
        cmd.arg("--stdio")
            .arg("--root")
            .arg(&root)
            .args(&extra)
            .env("RUST_LOG", "warn");
        for (k, v) in &envs {
            cmd.env(k, v);
        }
    });
    let (transport, _stderr) = TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    client_info(ProtocolVersion::V_2025_11_25)
        .serve(transport)
        .await
        .expect("the stdio server starts")
}

/// A running HTTP server child; killed on drop.
pub struct HttpServer {
    pub child: tokio::process::Child,
    pub url: String,
    pub origin: String,
}

/// Starts the server over HTTP on an ephemeral loopback port and waits until it listens.
pub async fn http_server(root: &Path, extra: &[&str], envs: &[(&str, &str)]) -> HttpServer {
    http_server_on("127.0.0.1:0", root, extra, envs).await
}

/// A port on loopback that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// [`http_server`] on the address `bind`.
pub async fn http_server_on(
    bind: &str,
    root: &Path,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> HttpServer {
    // reqwest is built without a default TLS provider; the tests' clients need one too.
    reference_server::guard::egress::ensure_crypto_provider();
    let mut command = tokio::process::Command::new(BINARY);
    command
        .arg("--http")
        .arg(bind)
        .arg("--root")
        .arg(root)
        .args(extra)
        .env_remove("MCP_SERVER_TOKEN")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("listening on ") {
                return url.to_owned();
            }
        }
        panic!("the HTTP server exited before listening");
    })
    .await
    .expect("the HTTP server starts within 20 s");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let origin = url.trim_end_matches("/mcp").to_owned();
    HttpServer { child, url, origin }
}

pub fn args(value: serde_json::Value) -> JsonObject {
    value.as_object().cloned().expect("arguments are an object")
}

pub fn call(name: &'static str, arguments: serde_json::Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name).with_arguments(args(arguments))
}

/// The text of a tool result's first content block.
pub fn text(result: &CallToolResult) -> String {
    serde_json::to_value(&result.content)
        .ok()
        .and_then(|v| {
            v.pointer("/0/text")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// Replaces correlation ids with a placeholder so error payloads can be snapshotted.
pub fn stable(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("correlation id ") {
        let (head, tail) = rest.split_at(i + "correlation id ".len());
        out.push_str(head);
        out.push_str("[id]");
        rest = &tail[tail
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(tail.len())..];
    }
    out.push_str(rest);
    out
}
