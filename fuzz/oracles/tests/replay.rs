//! Replays every committed corpus file and every regression file through its target's oracle,
//! on stable Rust, in plain `cargo test`: a bug a fuzzer once found stays fixed.
//!
//! Layout: `fuzz/corpus/<target>/*` (inputs the fuzzers kept for coverage) and
//! `fuzz/regressions/<target>/*` (inputs that once broke an oracle, named after the bug).

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(kind: &str) -> usize {
    let mut replayed = 0;
    for (target, oracle) in fuzz_oracles::TARGETS {
        for file in inputs(kind, target) {
            let data = std::fs::read(&file).expect("a readable input file");
            let outcome = std::panic::catch_unwind(|| oracle(&data));
            assert!(
                outcome.is_ok(),
                "{} broke the {target} oracle",
                file.display()
            );
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn every_corpus_input_passes_its_oracle() {
    let replayed = replay("corpus");
    // Each target ships a corpus; an empty one would make this test vacuous.
    for (target, _) in fuzz_oracles::TARGETS {
        assert!(
            !inputs("corpus", target).is_empty(),
            "fuzz/corpus/{target} is empty"
        );
    }
    eprintln!("replayed {replayed} corpus inputs");
}

#[test]
fn every_regression_stays_fixed() {
    eprintln!("replayed {} regression inputs", replay("regressions"));
}
