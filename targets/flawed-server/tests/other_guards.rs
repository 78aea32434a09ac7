//! The twin contract, by behaviour: a twin's mistake is in the guard it names and nowhere else,
//! so every other guard still answers as the reference's does. Each test runs the twin binary
//! over stdio, shows its own mistake, then shows one guard it did not swap still holding.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

const FLAWED: &str = env!("CARGO_BIN_EXE_flawed-server");

/// A stdio session with a twin, initialized.
struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    _dir: tempfile::TempDir,
}

impl Session {
    /// Starts `flaw` over a sandbox holding `inside.txt` next to `sandbox_evil/secret.txt`,
    /// with the rate limit `burst` (refilled once a minute) and the stdio principal's `scopes`.
    fn start(flaw: &str, burst: u32, scopes: &str) -> Session {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("sandbox");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("inside.txt"), "inside").unwrap();
        std::fs::create_dir_all(dir.path().join("sandbox_evil")).unwrap();
        std::fs::write(dir.path().join("sandbox_evil/secret.txt"), "SECRET-OUTSIDE").unwrap();
        let config = dir.path().join("server.toml");
        std::fs::write(
            &config,
            format!("[rate_limit]\nburst = {burst}\nper_second = 0.0166\n"),
        )
        .unwrap();
        let mut child = Command::new(FLAWED)
            .args(["--flaw", flaw, "--stdio", "--root"])
            .arg(&root)
            .arg("--config")
            .arg(&config)
            .env("MCP_SERVER_TOKEN_SCOPES", scopes)
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the flawed server starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut session = Session {
            child,
            stdin,
            stdout,
            next_id: 1,
            _dir: dir,
        };
        session.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "twin-contract", "version": "0"}}),
        );
        session.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        session
    }

    fn send(&mut self, message: &Value) {
        writeln!(self.stdin, "{message}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a request and returns its response (notifications in between are skipped).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "the twin closed stdout"
            );
            let message: Value = serde_json::from_str(&line).expect("a JSON-RPC line");
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(response: &Value) -> String {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_traversal_twin_still_rate_limits_and_checks_argument_shape() {
    let mut session = Session::start("path-prefix", 4, "files:write admin");
    // Its mistake: a string-prefix check admits the sibling directory.
    let escaped = session.call("read_file", json!({"path": "../sandbox_evil/secret.txt"}));
    assert_eq!(text(&escaped), "SECRET-OUTSIDE", "{escaped}");
    // The reference's argument shape check: 40 levels of nesting are refused before the tool.
    let mut deep = json!("x");
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let refused_shape = session.call(
        "process_data",
        json!({"data": deep, "operation": "reverse"}),
    );
    assert_eq!(
        refused_shape["result"]["isError"],
        json!(true),
        "{refused_shape}"
    );
    // The reference's rate limit (burst 4, a token a minute): the next calls are refused.
    let codes: Vec<Value> = (0..4)
        .map(|_| session.call("read_file", json!({"path": "inside.txt"}))["error"]["code"].clone())
        .collect();
    assert!(
        codes.contains(&json!(-32029)),
        "no rate-limit refusal: {codes:?}"
    );
}

#[test]
fn a_write_twin_still_checks_the_write_scope() {
    // With the files:write scope, its mistake shows: a write lands outside the sandbox.
    let mut writer = Session::start("write-unchecked", 50, "files:write");
    let written = writer.call(
        "write_file",
        json!({"path": "../sandbox_evil/planted.txt", "content": "x"}),
    );
    assert_ne!(written["result"]["isError"], json!(true), "{written}");
    // Without it, the reference's scope check refuses before the flawed guard runs.
    let mut reader = Session::start("write-unchecked", 50, "");
    let refused = reader.call(
        "write_file",
        json!({"path": "../sandbox_evil/planted-2.txt", "content": "x"}),
    );
    assert_eq!(refused["result"]["isError"], json!(true), "{refused}");
    assert!(text(&refused).contains("not permitted"), "{refused}");
}
