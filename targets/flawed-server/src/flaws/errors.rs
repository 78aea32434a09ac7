//! Twins of the error report (`Guards::errors`, the reference `PublicErrors`): what a client is
//! told when a tool fails.

use super::{Flaw, Transport::Stdio};
use reference_server::guard::public_error::{self, FailureKind, PublicError};
use reference_server::guards::{ErrorReport, Guards};
use std::sync::Arc;

#[derive(Clone, Copy)]
enum Mistake {
    /// The raw error, the location and a backtrace, as an unhandled exception page would.
    Details,
    /// The database connection string, as `f"storage error ({DATABASE_URL})"` would.
    Config,
    /// An internal failure's own text (its source chain), as `f"query failed: {e}"` would.
    InternalText,
}

pub(crate) struct FlawedErrors {
    name: &'static str,
    mistake: Mistake,
}

impl FlawedErrors {
    /// The leak-db-error twin's report: internal failures carry their own text.
    pub(crate) fn internal_text(name: &'static str) -> Arc<dyn ErrorReport> {
        Arc::new(FlawedErrors {
            name,
            mistake: Mistake::InternalText,
        })
    }
}

fn swap(guards: &mut Guards, name: &'static str, mistake: Mistake) {
    guards.errors = Arc::new(FlawedErrors { name, mistake });
}

pub const LEAK_DETAILS: Flaw = Flaw {
    name: "leak-details",
    summary: "Tool errors carry the raw error, the location and a backtrace.",
    caught: &[(Stdio, "LEAK-STACK-TRACE")],
    swaps: &["errors"],
    harness_args: &[],
    tools: Some(|guards, _| swap(guards, "leak-details", Mistake::Details)),
    http: None,
};

pub const LEAK_CONFIG: Flaw = Flaw {
    name: "leak-config",
    summary: "Tool errors carry the database connection string.",
    caught: &[(Stdio, "LEAK-SECRET")],
    swaps: &["errors"],
    harness_args: &[],
    tools: Some(|guards, _| swap(guards, "leak-config", Mistake::Config)),
    http: None,
};

impl ErrorReport for FlawedErrors {
    fn name(&self) -> &'static str {
        self.name
    }

    fn report(
        &self,
        kind: FailureKind,
        operation: &str,
        detail: &dyn std::fmt::Display,
    ) -> PublicError {
        let mut public = public_error::report(kind, operation, detail);
        let extra = match self.mistake {
            Mistake::Details => format!(
                ": {detail}\nthread 'tokio-runtime-worker' panicked at {}\n{}",
                std::panic::Location::caller(),
                std::backtrace::Backtrace::force_capture()
            ),
            Mistake::Config => {
                let url = std::env::var("DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://mcp_app:s3cret-demo@127.0.0.1:5432/app".into());
                format!(" (storage: {url})")
            }
            Mistake::InternalText if kind == FailureKind::Internal => format!(": {detail}"),
            Mistake::InternalText => return public,
        };
        public.message = format!("{}{extra}", public.message).into();
        public
    }
}
