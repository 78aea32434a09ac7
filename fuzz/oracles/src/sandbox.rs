//! Sandboxed file access, judged by canary files outside the root.
//!
//! The tree is `mcp_attack::PathTree` (a root with symlinks out, a `root_evil` sibling and an
//! `outside` directory holding canaries), its root rebuilt whenever an input changed it, so
//! each input starts from it.
//!
//! Input: a sequence of reads, writes, deletes and listings, each with a path written raw or
//! joined from tokens (`..`, the link names, encoded dots, backslashes, absolute prefixes...).
//! Writes never name a canary file, and the canary word is random per tree, so any canary seen
//! came from outside.
//!
//! Oracles: no read returns canary content and no listing names a canary file; after the
//! sequence, `root_evil/`, `outside/` and `base/` hold exactly what they held before (nothing
//! written, deleted or created outside the root); and every path the lexical pre-check
//! refuses is refused by the operation too (the real open never admits what the pre-check
//! rejected).

use arbitrary::{Arbitrary, Unstructured};
use mcp_attack::PathTree;
use reference_server::guard::sandbox::{Sandbox, SandboxLimits, check_relative_path};
use std::path::Path;
use std::sync::Mutex;

/// Names of the canary files: a write to a path naming one is skipped, so a listing that
/// names a canary reached outside the root.
const CANARY: &str = "CANARY";

#[derive(Arbitrary, Debug)]
enum PathSpec {
    Raw(String),
    Tokens { absolute: bool, tokens: Vec<u8> },
}

#[derive(Arbitrary, Debug)]
enum Operation {
    Read(PathSpec),
    Write(PathSpec, Vec<u8>),
    Delete(PathSpec),
    List(PathSpec, u8),
}

/// The names of the tree's entries; the climbs and encodings are `mcp_attack`'s path
/// components (see [`path_tokens`]).
const TREE_NAMES: &[&str] = &[
    "a.txt",
    "dir",
    "b.txt",
    "deeper",
    "c.txt",
    "link_in",
    "link_dir_in",
    "link_out",
    "link_abs",
    "link_dir_out",
    "link_dotdot",
    "link_up",
    "root",
    "root_evil",
    "outside",
    "CANARY_OUTSIDE.txt",
    "CANARY_EVIL.txt",
    "sub",
    "new.txt",
];

/// Every token a path is joined from: the tree's names, then the attack crate's components.
fn path_tokens() -> &'static [&'static str] {
    static TOKENS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    TOKENS.get_or_init(|| {
        TREE_NAMES
            .iter()
            .chain(mcp_attack::paths::COMPONENTS)
            .copied()
            .collect()
    })
}

fn render(spec: &PathSpec, base: &Path) -> String {
    match spec {
        PathSpec::Raw(text) => text.clone(),
        PathSpec::Tokens { absolute, tokens } => {
            let joined = tokens
                .iter()
                .map(|&t| path_tokens()[t as usize % path_tokens().len()])
                .collect::<Vec<_>>()
                .join("/");
            if *absolute {
                format!("{}/root/{joined}", base.display())
            } else {
                joined
            }
        }
    }
}

pub fn check(data: &[u8]) {
    let Ok(operations) = Vec::<Operation>::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    static TREE: Mutex<Option<PathTree>> = Mutex::new(None);
    let mut guard = TREE.lock().unwrap_or_else(|poisoned| {
        // A previous input failed the oracle (a replay under cargo test goes on): start afresh.
        let mut guard = poisoned.into_inner();
        *guard = None;
        guard
    });
    let tree = guard.get_or_insert_with(|| PathTree::new().expect("the fuzz tree builds"));
    let base = tree.base().to_path_buf();
    let limits = SandboxLimits {
        max_list_entries: 64,
        ..SandboxLimits::default()
    };
    let sandbox = Sandbox::open(&base.join("root"), limits).expect("the sandbox opens");

    for operation in operations.iter().take(32) {
        let (path, result) = match operation {
            Operation::Read(spec) => {
                let path = render(spec, &base);
                let result = sandbox.read(&path).map(|bytes| {
                    assert!(
                        !tree.reveals(&bytes),
                        "read {path:?} returned a canary from outside the root"
                    );
                });
                (path, result)
            }
            Operation::Write(spec, content) => {
                let path = render(spec, &base);
                if path.contains(CANARY) {
                    continue;
                }
                let result = sandbox.write(&path, content);
                (path, result)
            }
            Operation::Delete(spec) => {
                let path = render(spec, &base);
                let result = sandbox.delete(&path);
                (path, result)
            }
            Operation::List(spec, depth) => {
                let path = render(spec, &base);
                let result = sandbox.list(&path, depth % 4).map(|listing| {
                    for entry in &listing.entries {
                        assert!(
                            !tree.names_a_canary(&entry.path),
                            "listing {path:?} named {:?}, which is outside the root",
                            entry.path
                        );
                    }
                });
                (path, result)
            }
        };
        let listing_root =
            matches!(operation, Operation::List(..)) && (path.is_empty() || path == ".");
        if check_relative_path(&path).is_err() && !listing_root {
            assert!(
                result.is_err(),
                "{operation:?}: the pre-check refuses {path:?} but the operation succeeded"
            );
        }
    }

    let changed = tree.changed_outside();
    assert!(
        changed.is_empty(),
        "something outside the root changed ({changed:?}): {operations:?}"
    );
    tree.restore().expect("the root rebuilds");
}
