//! Sandboxed file access, judged by canary files outside the root.
//!
//! The tree (rebuilt whenever an input changed it, so each input starts from it):
//!
//! ```text
//! base/root/            the sandbox: a.txt, dir/b.txt, dir/deeper/c.txt, and symlinks
//!                       link_in -> a.txt, link_dir_in -> dir, link_out -> ../root_evil/...,
//!                       link_abs -> /abs/base/outside/..., link_dir_out -> ../outside,
//!                       link_dotdot -> .., dir/link_up -> ../../outside
//! base/root_evil/       the sibling a string-prefix check admits: CANARY_EVIL.txt
//! base/outside/         CANARY_OUTSIDE.txt, sub/
//! ```
//!
//! Input: a sequence of reads, writes, deletes and listings, each with a path written raw or
//! joined from tokens (`..`, the link names, encoded dots, backslashes, absolute prefixes...).
//! Writes never name a canary and never write the word, so any canary seen came from outside.
//!
//! Oracles: no read returns canary content and no listing names a canary file; after the
//! sequence, `root_evil/`, `outside/` and `base/` hold exactly what they held before (nothing
//! written, deleted or created outside the root); and every path the lexical pre-check
//! refuses is refused by the operation too (the real open never admits what the pre-check
//! rejected).

use arbitrary::{Arbitrary, Unstructured};
use reference_server::guard::sandbox::{Sandbox, SandboxLimits, check_relative_path};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

const TOKENS: &[&str] = &[
    "..",
    ".",
    "",
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
    "%2e%2e",
    "..%2f",
    "....",
    "....//",
    "..\\..",
    "\\",
    "~",
    "..\u{0}",
    "\u{2025}",
    "%252e%252e",
    ".. ",
    " ..",
];

fn render(spec: &PathSpec, base: &Path) -> String {
    match spec {
        PathSpec::Raw(text) => text.clone(),
        PathSpec::Tokens { absolute, tokens } => {
            let joined = tokens
                .iter()
                .map(|&t| TOKENS[t as usize % TOKENS.len()])
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

fn build_tree(base: &Path) -> std::io::Result<()> {
    fs::create_dir_all(base.join("root_evil"))?;
    fs::create_dir_all(base.join("outside/sub"))?;
    fs::write(
        base.join("root_evil/CANARY_EVIL.txt"),
        "CANARY evil sibling",
    )?;
    fs::write(base.join("outside/CANARY_OUTSIDE.txt"), "CANARY outside")?;
    build_root(base)
}

fn build_root(base: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::symlink;
    let root = base.join("root");
    fs::create_dir_all(root.join("dir/deeper"))?;
    fs::write(root.join("a.txt"), "inside a")?;
    fs::write(root.join("dir/b.txt"), "inside b")?;
    fs::write(root.join("dir/deeper/c.txt"), "inside c")?;
    symlink("a.txt", root.join("link_in"))?;
    symlink("dir", root.join("link_dir_in"))?;
    symlink("../root_evil/CANARY_EVIL.txt", root.join("link_out"))?;
    symlink(
        base.join("outside/CANARY_OUTSIDE.txt"),
        root.join("link_abs"),
    )?;
    symlink("../outside", root.join("link_dir_out"))?;
    symlink("..", root.join("link_dotdot"))?;
    symlink("../../outside", root.join("dir/link_up"))?;
    Ok(())
}

/// Every name and file content under `dir` (symlinks as their target text), not following links.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            let kind = entry.file_type().expect("file type of a listed entry");
            let content = if kind.is_symlink() {
                format!(
                    "-> {}",
                    fs::read_link(&path)
                        .map(|t| t.display().to_string())
                        .unwrap_or_default()
                )
            } else if kind.is_dir() {
                pending.push(path);
                "dir".into()
            } else {
                String::from_utf8_lossy(&fs::read(&path).unwrap_or_default()).into_owned()
            };
            found.insert(name, content);
        }
    }
    found
}

/// The tree, built once per process and rebuilt whenever an input changed it.
struct Fixture {
    _temp: tempfile::TempDir,
    base: PathBuf,
    pristine: BTreeMap<String, String>,
}

impl Fixture {
    fn new() -> Self {
        let temp = tempfile::tempdir().expect("a temporary directory");
        let base = temp
            .path()
            .canonicalize()
            .expect("the temporary directory resolves");
        build_tree(&base).expect("the fuzz tree builds");
        let pristine = snapshot(&base);
        Self {
            _temp: temp,
            base,
            pristine,
        }
    }

    /// Puts the sandbox back as it was (only the root can have changed, or the oracle failed).
    fn restore(&self, now: &BTreeMap<String, String>) {
        if *now != self.pristine {
            fs::remove_dir_all(self.base.join("root")).expect("the root is removable");
            build_root(&self.base).expect("the root rebuilds");
        }
    }
}

fn outside_root(snapshot: &BTreeMap<String, String>) -> BTreeMap<&String, &String> {
    snapshot
        .iter()
        .filter(|(name, _)| !name.starts_with("root/") && *name != "root")
        .collect()
}

pub fn check(data: &[u8]) {
    let Ok(operations) = Vec::<Operation>::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);
    let mut guard = FIXTURE.lock().unwrap_or_else(|poisoned| {
        // A previous input failed the oracle (a replay under cargo test goes on): start afresh.
        let mut guard = poisoned.into_inner();
        *guard = None;
        guard
    });
    let fixture = guard.get_or_insert_with(Fixture::new);
    let base = fixture.base.clone();
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
                        !String::from_utf8_lossy(&bytes).contains(CANARY),
                        "read {path:?} returned a canary from outside the root"
                    );
                });
                (path, result)
            }
            Operation::Write(spec, content) => {
                let path = render(spec, &base);
                let content = String::from_utf8_lossy(content).replace(CANARY, "");
                if path.contains(CANARY) {
                    continue;
                }
                let result = sandbox.write(&path, content.as_bytes());
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
                            !entry.path.contains(CANARY),
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

    let after = snapshot(&base);
    assert_eq!(
        outside_root(&fixture.pristine),
        outside_root(&after),
        "something outside the root changed: {operations:?}"
    );
    fixture.restore(&after);
}
