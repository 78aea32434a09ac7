//! The reference server certifies itself in process: `harness::certify` with an in-process
//! target that serves exactly what `mcp-reference-server --stdio` serves
//! (`cli::serve_stdio_on`), inside this test's runtime, and gets the verdicts the same server
//! gets as a child process over stdio.

use harness::probe::Verdict;
use harness::{CertifyOptions, InProcessTarget, TargetOptions};
use reference_server::cli::serve_stdio_on;
use std::collections::BTreeMap;

/// The server's arguments for a run (the bundled target's limits: burst 100, 100 a second).
fn arguments(sandbox: &str) -> Vec<String> {
    [
        "mcp-reference-server",
        "--stdio",
        "--root",
        sandbox,
        "--rate-burst",
        "100",
        "--rate-per-second",
        "100",
    ]
    .map(String::from)
    .to_vec()
}

/// The probes that sample a target process's resident memory: in process, the server shares
/// the harness's, so they are inconclusive there by design (see `harness::in_process`).
const MEMORY_PROBES: &[&str] = &["RES-ARGUMENT-SIZE", "RES-KEY-GROWTH"];

async fn verdicts(target: TargetOptions) -> (BTreeMap<&'static str, Verdict>, String) {
    let report = harness::certify(CertifyOptions {
        target,
        ..CertifyOptions::default()
    })
    .await
    .expect("the run completes");
    let verdicts = report.probes.iter().map(|p| (p.id, p.verdict)).collect();
    (verdicts, report.target.transport.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_certifies_itself_in_process_with_the_verdicts_it_gets_over_stdio() {
    let in_process = InProcessTarget::new("reference-server", |sandbox, pipe| async move {
        let (input, output) = tokio::io::split(pipe);
        let args = arguments(&sandbox.display().to_string());
        if let Err(error) = serve_stdio_on(args, input, output).await {
            eprintln!("the in-process server stopped: {error}");
        }
    });
    let (inside, transport) = verdicts(TargetOptions::InProcess(in_process)).await;
    assert_eq!(transport, "in-process");

    let binary = env!("CARGO_BIN_EXE_mcp-reference-server");
    let command = arguments("{sandbox}")
        .iter()
        .skip(1)
        .fold(binary.to_owned(), |line, word| format!("{line} {word}"));
    let (outside, transport) = verdicts(TargetOptions::Stdio { command }).await;
    assert_eq!(transport, "stdio");

    assert_eq!(
        inside.keys().collect::<Vec<_>>(),
        outside.keys().collect::<Vec<_>>()
    );
    let mut differences = Vec::new();
    for (id, verdict) in &outside {
        let in_process = inside[id];
        if MEMORY_PROBES.contains(id) {
            assert_eq!(in_process, Verdict::Inconclusive, "{id} in process");
        } else if in_process != *verdict {
            differences.push(format!(
                "{id}: {in_process:?} in process, {verdict:?} over stdio"
            ));
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
    assert!(
        outside.values().all(|v| *v != Verdict::Fail),
        "the reference fails over stdio: {outside:?}"
    );
}
