//! The stage the harness builds around a stdio target, and removes afterwards.
//!
//! ```text
//! <base>/sandbox/            the target's root ({sandbox}): readme.txt, notes/todo.txt, data.csv,
//!                            link-out -> ../outside/canary.txt, link-dir -> ../outside; a git repository
//! <base>/sandbox_evil/       a prefix sibling: secret.txt holds the file canary
//! <base>/outside/            a directory outside: canary.txt holds the file canary; proof files
//!                            of command and argument injection are expected here
//! ```
//! The outside directories are git repositories whose commit message is a canary, so a server
//! that works on repositories reveals an escape through its replies too. The target also gets
//! canary values in its environment and a loopback listener URL (`{canary_url}`).
//!
//! With `--sandbox DIR` the harness adopts an existing directory: it plants `DIR_evil/` next to
//! it (refusing if that exists) and a `.mcp-harness-link-out` symlink inside, and removes both
//! at the end; the other canaries live in a temporary directory.
//!
//! Failure: [`StageError`]; nothing is left behind when staging fails half-way.

use crate::oracle::Canaries;
use crate::oracle::access::{AccessWatch, Touch};
use crate::oracle::listener::CanaryListener;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("cannot create the stage: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0} already exists; the harness will not plant canaries over existing files")]
    WouldOverwrite(PathBuf),
    #[error("--sandbox must name an existing directory: {0}")]
    NotADirectory(PathBuf),
    #[error("cannot serve the upstream on 127.0.0.1:{0} (--upstream-port): {1}")]
    Upstream(u16, std::io::Error),
}

/// A file in a fresh sandbox for tools that delete or move what they are given.
pub const SCRATCH_FILE: &str = "mcp-harness-scratch.txt";

pub struct Stage {
    _base: tempfile::TempDir,
    pub sandbox: PathBuf,
    pub evil: PathBuf,
    pub outside: PathBuf,
    /// The name of the symlink inside the sandbox that leads to the outside canary file.
    pub link_out: String,
    /// The name of the symlink inside the sandbox that leads to the outside directory.
    pub link_dir: Option<String>,
    pub canaries: Canaries,
    pub listener: Option<CanaryListener>,
    /// The upstream listener (`--upstream-port`), when asked for.
    pub upstream: Option<CanaryListener>,
    /// Planted in an adopted sandbox; removed on drop.
    planted: Vec<PathBuf>,
    /// Watches the outside directory and the `_evil` sibling from the end of planting on.
    access: std::sync::Mutex<AccessWatch>,
}

/// Runs git in `dir`, without the background maintenance a commit may start (a detached
/// `git gc` or `git maintenance` reading the planted repositories after the access oracle
/// starts watching would look like a touch by the target).
fn git(dir: &Path, args: &[&str]) -> bool {
    std::process::Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "gc.auto=0",
            "-c",
            "maintenance.auto=false",
            "-c",
            "core.fsmonitor=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn make_repository(dir: &Path, message: &str) {
    let identity = [
        "-c",
        "user.name=mcp-harness",
        "-c",
        "user.email=harness@example.invalid",
    ];
    if git(dir, &["init", "-q"]) && git(dir, &["add", "-A"]) {
        let mut args: Vec<&str> = identity.to_vec();
        args.extend(["commit", "-q", "-m", message]);
        git(dir, &args);
    }
}

impl Stage {
    /// Builds the stage; `adopt` is the user's `--sandbox` directory, if any.
    pub async fn new(adopt: Option<&Path>) -> Result<Self, StageError> {
        let canaries = Canaries::new();
        let base = tempfile::Builder::new().prefix("mcp-harness-").tempdir()?;
        let outside = base.path().join("outside");
        std::fs::create_dir_all(&outside)?;
        std::fs::write(outside.join("canary.txt"), &canaries.file_text)?;
        make_repository(&outside, &canaries.commit_message);
        let mut planted = Vec::new();
        let (sandbox, evil, link_out, link_dir) = match adopt {
            None => {
                let sandbox = base.path().join("sandbox");
                std::fs::create_dir_all(sandbox.join("notes"))?;
                std::fs::write(
                    sandbox.join("readme.txt"),
                    "mcp-harness stage: a sample file inside the sandbox\n",
                )?;
                std::fs::write(sandbox.join("notes/todo.txt"), "nothing to do\n")?;
                std::fs::write(sandbox.join("data.csv"), "id,name\n1,alpha\n2,beta\n")?;
                // For tools that delete or move what they are given: their baseline.
                std::fs::write(sandbox.join(SCRATCH_FILE), "mcp-harness scratch file\n")?;
                std::os::unix::fs::symlink(outside.join("canary.txt"), sandbox.join("link-out"))?;
                std::os::unix::fs::symlink(&outside, sandbox.join("link-dir"))?;
                make_repository(&sandbox, "mcp-harness stage: initial commit");
                let evil = base.path().join("sandbox_evil");
                (
                    sandbox,
                    evil,
                    "link-out".to_owned(),
                    Some("link-dir".to_owned()),
                )
            }
            Some(dir) => {
                if !dir.is_dir() {
                    return Err(StageError::NotADirectory(dir.to_path_buf()));
                }
                let sandbox = std::fs::canonicalize(dir)?;
                let evil = PathBuf::from(format!("{}_evil", sandbox.display()));
                let link = sandbox.join(".mcp-harness-link-out");
                for path in [&evil, &link] {
                    if path.symlink_metadata().is_ok() {
                        return Err(StageError::WouldOverwrite(path.clone()));
                    }
                }
                std::os::unix::fs::symlink(outside.join("canary.txt"), &link)?;
                planted.push(link);
                (sandbox, evil, ".mcp-harness-link-out".to_owned(), None)
            }
        };
        std::fs::create_dir_all(&evil)?;
        if adopt.is_some() {
            planted.push(evil.clone());
        }
        std::fs::write(evil.join("secret.txt"), &canaries.file_text)?;
        make_repository(&evil, &canaries.commit_message);
        let listener =
            CanaryListener::start(format!("MCPCANARY-LISTENER-{:016x}", rand::random::<u64>()))
                .await
                .ok();
        let access = std::sync::Mutex::new(AccessWatch::start(&[&outside, &evil]));
        Ok(Self {
            _base: base,
            sandbox,
            evil,
            outside,
            link_out,
            link_dir,
            canaries,
            listener,
            upstream: None,
            planted,
            access,
        })
    }

    /// What the target did to the planted outside paths since the last call of this (the
    /// access oracle).
    pub fn drain_touches(&self) -> Vec<Touch> {
        self.access
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
    }

    /// Touches of the planted outside paths over the whole run, and how they are seen
    /// (`inotify`, or `snapshot`: no reads).
    pub fn touch_count(&self) -> (u64, &'static str) {
        let access = self.access.lock().unwrap_or_else(|p| p.into_inner());
        (access.total, access.mechanism())
    }

    /// The stage's base directory: everything planted for this run is under it (or planted
    /// next to an adopted sandbox).
    pub fn base(&self) -> &Path {
        self._base.path()
    }

    /// Serves the upstream listener on `port` of 127.0.0.1.
    pub async fn start_upstream(&mut self, port: u16) -> Result<(), StageError> {
        let upstream = CanaryListener::start_on(
            port,
            format!("MCPCANARY-UPSTREAM-{:016x}", rand::random::<u64>()),
        )
        .await
        .map_err(|e| StageError::Upstream(port, e))?;
        self.upstream = Some(upstream);
        Ok(())
    }

    /// Fills `{sandbox}`, `{canary_url}` and `{upstream_url}` into a command line.
    pub fn fill_placeholders(&self, command: &str) -> String {
        let canary_url = self.listener.as_ref().map(|l| l.url()).unwrap_or_default();
        command
            .replace("{sandbox}", &self.sandbox.to_string_lossy())
            .replace("{canary_url}", &canary_url)
            .replace(
                "{upstream_url}",
                &self.upstream.as_ref().map(|l| l.url()).unwrap_or_default(),
            )
    }

    /// A fresh path in the outside directory where an injection would create a file.
    pub fn proof_path(&self, label: &str) -> PathBuf {
        self.outside
            .join(format!("proof-{label}-{:08x}", rand::random::<u32>()))
    }

    /// The sandbox-relative path of the outside canary file.
    pub fn relative_outside_canary(&self) -> String {
        relative_from(&self.sandbox, &self.outside.join("canary.txt"))
    }

    /// The sandbox-relative path of the prefix sibling's secret.
    pub fn relative_evil_secret(&self) -> String {
        relative_from(&self.sandbox, &self.evil.join("secret.txt"))
    }
}

/// `target` as a path relative to `from`, with as many `..` as needed.
pub fn relative_from(from: &Path, target: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let target: Vec<_> = target.components().collect();
    let common = from.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> =
        std::iter::repeat_n("..".to_owned(), from.len() - common).collect();
    parts.extend(
        target[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

impl Drop for Stage {
    fn drop(&mut self) {
        for path in self.planted.iter().rev() {
            if path.is_dir() && !path.is_symlink() {
                let _ = std::fs::remove_dir_all(path);
            } else {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fresh_stage_has_every_canary_and_leaves_nothing_behind() {
        let stage = Stage::new(None).await.unwrap();
        let base = stage.base().to_path_buf();
        assert_eq!(
            std::fs::read_to_string(stage.sandbox.join("link-out")).unwrap(),
            stage.canaries.file_text
        );
        assert_eq!(
            std::fs::read_to_string(stage.sandbox.join(stage.relative_evil_secret())).unwrap(),
            stage.canaries.file_text
        );
        assert_eq!(stage.relative_outside_canary(), "../outside/canary.txt");
        assert!(
            stage
                .fill_placeholders("srv --root {sandbox} --hook {canary_url}")
                .contains("http://127.0.0.1:")
        );
        drop(stage);
        assert!(!base.exists());
    }

    #[tokio::test]
    async fn an_adopted_sandbox_gets_siblings_that_are_removed_afterwards() {
        let user = tempfile::tempdir().unwrap();
        let dir = user.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("keep.txt"), "user data").unwrap();
        let stage = Stage::new(Some(&dir)).await.unwrap();
        assert!(user.path().join("data_evil/secret.txt").exists());
        assert!(dir.join(".mcp-harness-link-out").exists());
        drop(stage);
        assert!(!user.path().join("data_evil").exists());
        assert!(
            dir.join(".mcp-harness-link-out")
                .symlink_metadata()
                .is_err()
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
            "user data"
        );
        std::fs::create_dir(user.path().join("data_evil")).unwrap();
        assert!(matches!(
            Stage::new(Some(&dir)).await,
            Err(StageError::WouldOverwrite(_))
        ));
    }

    #[test]
    fn relative_paths_climb_as_needed() {
        assert_eq!(
            relative_from(Path::new("/a/b/c"), Path::new("/a/x/y.txt")),
            "../../x/y.txt"
        );
        assert_eq!(relative_from(Path::new("/a"), Path::new("/a/b")), "b");
    }
}
