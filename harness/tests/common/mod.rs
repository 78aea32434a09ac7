//! What the harness's integration tests share: the harness binary and the flawed twins, built
//! once per test binary with the same cargo and profile as the test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// The Python MCP SDK whose FastMCP the fake runs on (the 1.x line, where most servers are).
pub const FASTMCP_SDK: &str = "mcp==1.26.0";

/// A Python with the SDK's FastMCP, in a virtual environment kept under cargo's target
/// directory: created once (pip, from PyPI) when missing, in a staging directory renamed into
/// place, so an interrupted install is never taken for a finished one.
pub fn fastmcp_python() -> PathBuf {
    // The tests of this binary run on threads of one process: one creates, the others wait.
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _only_one = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fastmcp-venv-1.26.0");
    let python = dir.join("bin/python");
    let works = |python: &Path| {
        Command::new(python)
            .args(["-c", "import mcp.server.fastmcp"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works(&python) {
        return python;
    }
    let staging = dir.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&staging)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        created,
        "python3 -m venv failed: the FastMCP rows need python3 with venv"
    );
    let installed = Command::new(staging.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            FASTMCP_SDK,
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        installed,
        "pip install {FASTMCP_SDK} failed (the FastMCP rows need PyPI)"
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir).expect("the virtual environment moves into place");
    assert!(
        works(&python),
        "FastMCP does not import from {}",
        python.display()
    );
    python
}
