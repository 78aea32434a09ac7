//! What the harness's integration tests share: the harness binary and the flawed twins, built
//! once per test binary with the same cargo and profile as the test.

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
