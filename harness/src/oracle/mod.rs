//! Oracles: things only an exploit could cause. Canary values planted around the target
//! ([`Canaries`]), a loopback listener that records every hit ([`listener`]), and the leak
//! scanner that reads every reply ([`leak`]).

pub mod access;
pub mod exception;
pub mod leak;
pub mod listener;
pub mod refusal;

/// Random values planted for one run. Each is unique, so finding one in a reply, on disk or
/// in a listener hit can only mean the target read, wrote or fetched what it should not have.
#[derive(Clone, Debug)]
pub struct Canaries {
    /// The content of the files planted outside the sandbox.
    pub file_text: String,
    /// The secret planted in the target's environment (`MCP_HARNESS_CANARY_SECRET`, `API_KEY`).
    pub env_secret: String,
    /// The password inside `DATABASE_URL` in the target's environment.
    pub env_db_password: String,
    /// The commit message of the planted git repositories.
    pub commit_message: String,
}

impl Canaries {
    pub fn new() -> Self {
        let token = || format!("{:016x}", rand::random::<u64>());
        Self {
            file_text: format!("MCPCANARY-FILE-{}", token()),
            env_secret: format!("mcpcanary-secret-{}", token()),
            env_db_password: format!("mcpcanarypw{}", token()),
            commit_message: format!("MCPCANARY-COMMIT-{}", token()),
        }
    }

    /// Environment variables given to a stdio target.
    pub fn environment(&self) -> Vec<(String, String)> {
        vec![
            ("MCP_HARNESS_CANARY_SECRET".into(), self.env_secret.clone()),
            ("API_KEY".into(), self.env_secret.clone()),
            (
                "DATABASE_URL".into(),
                format!(
                    "postgres://mcp_app:{}@127.0.0.1:5432/app",
                    self.env_db_password
                ),
            ),
        ]
    }

    /// The secret values, any of which in a reply is a leak.
    pub fn secrets(&self) -> [&str; 2] {
        [&self.env_secret, &self.env_db_password]
    }
}

impl Default for Canaries {
    fn default() -> Self {
        Self::new()
    }
}
