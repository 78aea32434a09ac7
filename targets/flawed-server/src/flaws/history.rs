//! Twins of the history program (`Guards::history`, the reference `FixedProgram` running
//! `git log` with the user's path after `--`).

use super::{Flaw, Transport::Stdio};
use futures::future::BoxFuture;
use reference_server::guard::program::{ProgramError, ProgramOutput};
use reference_server::guards::{Guards, History};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Copy)]
enum Mistake {
    /// `sh -c` with the path interpolated into the script.
    Shell,
    /// `git log` with the path as an argument but no `--` before it.
    NoEndOfOptions,
}

struct FlawedHistory {
    name: &'static str,
    mistake: Mistake,
    root: PathBuf,
}

fn swap(guards: &mut Guards, root: PathBuf, name: &'static str, mistake: Mistake) {
    guards.history = Arc::new(FlawedHistory {
        name,
        mistake,
        root,
    });
}

pub const CMD_SHELL: Flaw = Flaw {
    name: "cmd-shell",
    summary: "file_history runs git through `sh -c` with the path interpolated.",
    caught: &[(Stdio, "INJ-CMD")],
    swaps: &["history"],
    harness_args: &[],
    tools: Some(|guards, context| swap(guards, context.root.clone(), "cmd-shell", Mistake::Shell)),
    http: None,
};

pub const ARG_INJECTION: Flaw = Flaw {
    name: "arg-injection",
    summary: "file_history passes the path to git without `--` (an option if it starts with `-`).",
    caught: &[(Stdio, "INJ-ARG")],
    swaps: &["history"],
    harness_args: &[],
    tools: Some(|guards, context| {
        swap(
            guards,
            context.root.clone(),
            "arg-injection",
            Mistake::NoEndOfOptions,
        )
    }),
    http: None,
};

impl History for FlawedHistory {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run<'a>(
        &'a self,
        options: &'a [String],
        operands: &'a [&'a str],
    ) -> BoxFuture<'a, Result<ProgramOutput, ProgramError>> {
        Box::pin(async move {
            let mut command = match self.mistake {
                Mistake::Shell => {
                    let script = format!(
                        "git log --no-color --format='%h %s' {} -- \"{}\"",
                        options.join(" "),
                        operands.join("\" \"")
                    );
                    let mut command = tokio::process::Command::new("sh");
                    command.arg("-c").arg(script);
                    command
                }
                Mistake::NoEndOfOptions => {
                    let mut command = tokio::process::Command::new("git");
                    command
                        .args(["log", "--no-color", "--format=%h %s"])
                        .args(options)
                        .args(operands);
                    command
                }
            };
            let output = command
                .current_dir(&self.root)
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .map_err(ProgramError::Spawn)?;
            Ok(ProgramOutput {
                success: output.status.success(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                truncated: false,
            })
        })
    }
}
