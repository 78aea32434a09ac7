//! Certifying an rmcp server from its own tests: no process to spawn, the same stage, probes
//! and report as `mcp-harness certify --stdio`.
//!
//! [`certify_service`] builds the server with the stage's sandbox (so its file tools work in
//! the directory the probes plant canaries around), serves it with rmcp's own transport over an
//! in-memory pipe inside the caller's tokio runtime, and runs [`crate::certify`] against it.
//! A probe that kills the server (a crash, a wedged pipe) gets a new instance on a new pipe, as
//! a stdio target gets a new process.
//!
//! What differs from a process: the server shares the harness's memory, so the probes that
//! sample a target's resident memory (RES-ARGUMENT-SIZE, RES-KEY-GROWTH) are inconclusive, and a
//! panic in a tool handler is a task that ended, not a process exit. Servers whose own stdio
//! transport differs from rmcp's (a line cap, a custom codec) should pass their own
//! [`crate::TargetOptions::InProcess`] built with [`InProcessTarget::new`], as the reference
//! server's tests do.
//!
//! Cost: the run's own calls and nothing else; the pipe buffers 1 MiB each way.

use crate::connection::stdio::InProcessTarget;
use crate::{CertifyOptions, HarnessError, TargetOptions, certify, report::Report};
use std::path::Path;

/// An in-process target serving `make(sandbox)` with rmcp's async read/write transport.
pub fn service_target<S, F>(name: impl Into<String>, make: F) -> InProcessTarget
where
    S: rmcp::ServerHandler,
    F: Fn(&Path) -> S + Send + Sync + 'static,
{
    InProcessTarget::new(name, move |sandbox, pipe| {
        let server = make(&sandbox);
        async move {
            if let Ok(running) = rmcp::ServiceExt::serve(server, pipe).await {
                let _ = running.waiting().await;
            }
        }
    })
}

/// Certifies the server `make` builds (given the stage's sandbox directory) in this process,
/// with `options` for everything but the target. The report names the server's type.
pub async fn certify_service<S, F>(
    make: F,
    mut options: CertifyOptions,
) -> Result<Report, HarnessError>
where
    S: rmcp::ServerHandler,
    F: Fn(&Path) -> S + Send + Sync + 'static,
{
    options.target = TargetOptions::InProcess(service_target(std::any::type_name::<S>(), make));
    certify(options).await
}
