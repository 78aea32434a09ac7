//! The HTML report in a real browser: headless Chromium loads the page of a failing twin,
//! must log no error, must render the verdict and the evidence, and leaves a screenshot in
//! cargo's target directory (`CARGO_TARGET_TMPDIR/html-report.png`) as the run's artifact.
//!
//! Chromium is a Debian package `.ci/run` installs. Without it the test says so and passes,
//! unless `MCP_HARNESS_REQUIRE_BROWSER` is set (as `.ci/run` sets it), when it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{HARNESS, flawed_server};

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            found
                .status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()))
        })
}

fn browse(browser: &Path, page: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs")
}

#[test]
fn the_html_report_renders_in_headless_chromium_without_errors() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("MCP_HARNESS_REQUIRE_BROWSER").is_none(),
            "MCP_HARNESS_REQUIRE_BROWSER is set but no chromium is installed"
        );
        eprintln!("skipped: no chromium on this machine (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let command = format!(
        "{} --flaw path-prefix --stdio --root {{sandbox}}",
        flawed_server().display()
    );
    let certified = Command::new(HARNESS)
        .args([
            "certify",
            "--stdio",
            &command,
            "--only",
            "TRAV-PREFIX",
            // Two probes that keep a figure: the page draws the flood and the memory.
            "--only",
            "RATE-FLOOD",
            "--only",
            "RES-KEY-GROWTH",
            "--fail-on",
            "low",
        ])
        .args(["--format", "html", "--output"])
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(certified.status.code(), Some(1));

    let dom = browse(&browser, &page, &["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let rendered = String::from_utf8_lossy(&dom.stdout);
    for expected in [
        "NOT CERTIFIED",
        "TRAV-PREFIX",
        "Proof at read_file at /path",
        "<svg",
        "What the probes measured",
        "calls served and refused over time",
        "resident memory over time",
    ] {
        assert!(rendered.contains(expected), "{expected} not rendered");
    }
    let log = String::from_utf8_lossy(&dom.stderr);
    for error in ["Uncaught", "CONSOLE(", "Refused to", "ERR_FILE_NOT_FOUND"] {
        assert!(!log.contains(error), "the browser logged {error}:\n{log}");
    }

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("html-report.png");
    let _ = std::fs::remove_file(&screenshot);
    let shot = browse(
        &browser,
        &page,
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,1600",
        ],
    );
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    eprintln!("screenshot: {}", screenshot.display());
}
