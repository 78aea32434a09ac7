//! The notes server certifies itself in `cargo test`: no process to spawn. The harness builds
//! the server on its stage's sandbox, serves it over an in-memory pipe in this test's runtime,
//! runs its probes and returns the same report `mcp-harness certify` prints.

use harness::probe::Verdict;
use harness::report::RunVerdict;
use harness::{CertifyOptions, Selection, certify_service};
use in_process_example::NotesServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notes_server_is_certified() {
    let options = CertifyOptions {
        selection: Selection {
            // A toy with no rate limit: a real server would keep the RATE family.
            skip: vec!["RATE".into()],
            ..Selection::default()
        },
        ..CertifyOptions::default()
    };
    let report = certify_service(|sandbox| NotesServer::new(sandbox.to_path_buf()), options)
        .await
        .expect("the run completes");
    let failed: Vec<_> = report
        .probes
        .iter()
        .filter(|p| p.verdict == Verdict::Fail)
        .map(|p| format!("{}: {}", p.id, p.summary))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // The path probes reached `read_note`'s name: they passed, they were not skipped.
    let traversal = report
        .probes
        .iter()
        .find(|p| p.id == "TRAV-DOTDOT")
        .unwrap();
    assert_eq!(traversal.verdict, Verdict::Pass, "{}", traversal.summary);
    assert_eq!(
        report.summary.verdict,
        RunVerdict::Certified,
        "{:?}",
        report.summary
    );
}
