//! The flags that name and reach a target, shared by `load` and `fuzz` (`certify` has its own,
//! with the project file and client configurations around them).

use super::target_of;
use clap::Args;
use harness::connection::Budget;
use harness::{StageOptions, TargetOptions};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct TargetFlags {
    /// The target as a command line run over stdio; {sandbox} and {canary_url} are filled in.
    /// Default: the bundled reference server.
    #[arg(long, value_name = "COMMAND", conflicts_with = "url")]
    pub stdio: Option<String>,
    /// The target's Streamable HTTP (or legacy SSE) endpoint, on loopback.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// A header sent with every HTTP request (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE", requires = "url")]
    pub headers: Vec<String>,
    /// Seconds to wait for each reply.
    #[arg(long, default_value = "10")]
    pub timeout: u64,
    /// Seconds to wait for a stdio target to start.
    #[arg(long, default_value = "30")]
    pub startup_timeout: u64,
    /// Adopt this directory as {sandbox} instead of a fresh temporary one.
    #[arg(long, value_name = "DIR")]
    pub sandbox: Option<PathBuf>,
}

impl TargetFlags {
    pub fn target(&self) -> Result<TargetOptions, String> {
        target_of(&self.stdio, &self.url, &self.headers)
    }

    pub fn stage(&self) -> StageOptions {
        StageOptions {
            sandbox: self.sandbox.clone(),
            ..StageOptions::default()
        }
    }

    pub fn budget(&self) -> Budget {
        Budget {
            request_timeout: Duration::from_secs(self.timeout.max(1)),
            startup_timeout: Duration::from_secs(self.startup_timeout.max(1)),
            ..Budget::default()
        }
    }
}
