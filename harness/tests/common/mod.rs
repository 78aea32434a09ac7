//! What the harness's integration tests share: the harness binary and the flawed twins, built
//! once per test binary with the same cargo and profile as the test.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The harness binary under test.
pub const HARNESS: &str = env!("CARGO_BIN_EXE_mcp-harness");

/// The directory cargo puts this profile's binaries in.
pub fn binary_dir() -> PathBuf {
    PathBuf::from(HARNESS)
        .parent()
        .expect("the harness binary has a directory")
        .to_path_buf()
}

/// The flawed twins' binary (another package, so built here on first use); panics when the
/// build fails, which fails the test that asked.
pub fn flawed_server() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let dir = binary_dir();
    BUILT.call_once(|| {
        let mut build = Command::new(env!("CARGO"));
        build.args([
            "build",
            "--quiet",
            "-p",
            "flawed-server",
            "--bin",
            "flawed-server",
        ]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the flawed server failed");
    });
    dir.join("flawed-server")
}

/// Starts `command`, which prints `listening on URL` on stderr once it serves, and returns
/// the child and that URL; the rest of stderr is drained so the child never blocks on it.
pub fn start_listening(command: &mut Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = command
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the fake starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let url = lines
        .find_map(|l| l.ok()?.strip_prefix("listening on ").map(str::to_owned))
        .expect("the fake prints its address");
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}
