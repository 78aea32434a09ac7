//! Running a fixed program with user-supplied operands, safely.
//!
//! The program and its leading arguments are fixed at construction; user values are only ever
//! *operands*, placed after `--` so that a value such as `--output=/tmp/x` is a file name to the
//! program, never an option (argument injection, CWE-88). There is no shell, so `$(...)`,
//! backticks, `;` and `|` are just bytes (command injection, CWE-78). The child gets a cleared
//! environment (only `PATH` and settings that keep git from reading user configuration), so the
//! server's secrets are not inherited, and it runs in the sandbox root.
//!
//! Cost: one fork/exec per call (about 1 ms for git), bounded by `timeout`; output beyond
//! `max_output_bytes` is discarded and reported as truncated.
//!
//! Failure: [`ProgramError`]; a timed-out child is killed (the handle is dropped with
//! `kill_on_drop`). A non-zero exit status is not an error here: the caller decides.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Longest operand accepted, in bytes.
pub const MAX_OPERAND_LEN: usize = 1024;

/// Why a program could not be run.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("invalid operand: {0}")]
    InvalidOperand(&'static str),
    #[error("the program could not be started")]
    Spawn(#[source] std::io::Error),
    #[error("the program took longer than {} ms", .0.as_millis())]
    TimedOut(Duration),
    #[error("reading the program's output failed")]
    Output(#[source] std::io::Error),
}

/// What a run produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProgramOutput {
    pub success: bool,
    pub stdout: String,
    pub truncated: bool,
}

/// A program with fixed leading arguments, run in a fixed directory.
#[derive(Debug, Clone)]
pub struct FixedProgram {
    program: String,
    leading_args: Vec<String>,
    working_dir: PathBuf,
    pub timeout: Duration,
    pub max_output_bytes: usize,
}

impl FixedProgram {
    pub fn new(
        program: impl Into<String>,
        leading_args: impl IntoIterator<Item = impl Into<String>>,
        working_dir: PathBuf,
    ) -> Self {
        Self {
            program: program.into(),
            leading_args: leading_args.into_iter().map(Into::into).collect(),
            working_dir,
            timeout: Duration::from_secs(10),
            max_output_bytes: 64 * 1024,
        }
    }

    /// Runs the program with `extra_options` (fixed by the caller, e.g. `--max-count=5`) and
    /// the user's `operands` after `--`.
    pub async fn run(
        &self,
        extra_options: &[String],
        operands: &[&str],
    ) -> Result<ProgramOutput, ProgramError> {
        for operand in operands {
            if operand.len() > MAX_OPERAND_LEN {
                return Err(ProgramError::InvalidOperand("too long"));
            }
            if operand.bytes().any(|b| b == 0) {
                return Err(ProgramError::InvalidOperand("NUL byte"));
            }
        }
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.leading_args)
            .args(extra_options)
            .arg("--")
            .args(operands)
            .current_dir(&self.working_dir)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("HOME", &self.working_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(ProgramError::Spawn)?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let limit = self.max_output_bytes;
        let work = async {
            let mut buffer = Vec::new();
            (&mut stdout)
                .take(limit as u64 + 1)
                .read_to_end(&mut buffer)
                .await
                .map_err(ProgramError::Output)?;
            let truncated = buffer.len() > limit;
            buffer.truncate(limit);
            // Drain the rest so the child is never blocked on a full pipe.
            tokio::io::copy(&mut stdout, &mut tokio::io::sink())
                .await
                .map_err(ProgramError::Output)?;
            let status = child.wait().await.map_err(ProgramError::Output)?;
            Ok(ProgramOutput {
                success: status.success(),
                stdout: String::from_utf8_lossy(&buffer).into_owned(),
                truncated,
            })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| ProgramError::TimedOut(self.timeout))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn operands_are_never_options_and_never_shell() {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("created-by-injection");
        // `printf` prints its operands: an option-looking operand is printed, not obeyed.
        let printf = FixedProgram::new("printf", ["%s\\n"], dir.path().to_path_buf());
        let out = printf
            .run(
                &[],
                &[
                    &format!("--output={}", canary.display()),
                    "$(touch x)",
                    "`touch y`; touch z",
                ],
            )
            .await
            .unwrap();
        assert!(out.stdout.contains("--output="), "{}", out.stdout);
        assert!(out.stdout.contains("$(touch x)"));
        for name in ["x", "y", "z"] {
            assert!(
                !dir.path().join(name).exists(),
                "{name} was created: a shell ran"
            );
        }
        // `touch` with an operand that looks like an option creates a file of that name.
        let touch = FixedProgram::new("touch", Vec::<String>::new(), dir.path().to_path_buf());
        touch.run(&[], &["-r"]).await.unwrap();
        assert!(dir.path().join("-r").exists());
    }

    #[tokio::test]
    async fn the_environment_is_not_inherited() {
        let dir = tempfile::tempdir().unwrap();
        let env = FixedProgram::new("env", Vec::<String>::new(), dir.path().to_path_buf());
        // `env -- ` with no operand prints the environment.
        let out = env.run(&[], &[]).await.unwrap();
        assert!(!out.stdout.contains("MCP_SERVER_TOKEN"), "{}", out.stdout);
        assert!(out.stdout.contains("PATH="));
    }

    #[tokio::test]
    async fn output_is_capped_and_slow_programs_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let mut yes = FixedProgram::new("head", ["-c", "100000"], dir.path().to_path_buf());
        yes.max_output_bytes = 1000;
        let out = yes.run(&[], &["/dev/zero"]).await.unwrap();
        assert!(out.truncated && out.stdout.len() == 1000);
        let mut sleep = FixedProgram::new("sleep", Vec::<String>::new(), dir.path().to_path_buf());
        sleep.timeout = Duration::from_millis(100);
        assert!(matches!(
            sleep.run(&[], &["5"]).await,
            Err(ProgramError::TimedOut(_))
        ));
        assert!(matches!(
            sleep.run(&[], &["a\0b"]).await,
            Err(ProgramError::InvalidOperand(_))
        ));
    }
}
