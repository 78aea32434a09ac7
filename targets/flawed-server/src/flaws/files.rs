//! Twins of the file guard (`Guards::files`, the reference `Sandbox`): each replaces one
//! operation with a path check from the seed document or a common mistake, and delegates every
//! other operation to the reference sandbox.

use super::{Flaw, Transport::Stdio};
use reference_server::cli::BuildContext;
use reference_server::guard::sandbox::{Listing, SandboxError};
use reference_server::guards::{Files, Guards};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which operation a twin gets wrong, and how.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mistake {
    /// read: canonicalize, then a string-prefix containment check.
    ReadPrefix,
    /// read: refuses `..` and absolute paths lexically, then follows symlinks out.
    ReadLexical,
    /// read: removes `../` once.
    ReadStripOnce,
    /// read: joins with no check at all.
    ReadUnchecked,
    /// read: refuses `..` in the raw path, then percent-decodes it.
    ReadDecodeAfterCheck,
    /// write: joins with no check at all.
    WriteUnchecked,
    /// create_dir: normalizes lexically, then a string-prefix check.
    MkdirPrefix,
    /// read of bytes (file_info): joins with no check at all.
    InfoUnchecked,
}

struct FlawedFiles {
    name: &'static str,
    mistake: Mistake,
    root: PathBuf,
    reference: Arc<dyn Files>,
}

fn swap(guards: &mut Guards, context: &BuildContext, name: &'static str, mistake: Mistake) {
    guards.files = Arc::new(FlawedFiles {
        name,
        mistake,
        root: context.root.clone(),
        reference: guards.files.clone(),
    });
}

macro_rules! file_flaw {
    ($constant:ident, $name:literal, $mistake:ident, $probe:literal, $summary:literal) => {
        pub const $constant: Flaw = Flaw {
            name: $name,
            summary: $summary,
            caught: &[(Stdio, $probe)],
            swaps: &["files"],
            harness_args: &[],
            tools: Some(|guards, context| swap(guards, context, $name, Mistake::$mistake)),
            http: None,
        };
    };
}

file_flaw!(
    PATH_PREFIX,
    "path-prefix",
    ReadPrefix,
    "TRAV-PREFIX",
    "read_file checks containment with a string prefix (`/data` admits `/data_evil`)."
);
file_flaw!(
    PATH_SYMLINK,
    "path-symlink",
    ReadLexical,
    "TRAV-SYMLINK",
    "read_file checks the path lexically, then follows symlinks out."
);
file_flaw!(
    FILENAME_STRIP,
    "filename-strip",
    ReadStripOnce,
    "TRAV-STRIP",
    "read_file removes `../` once (`....//` becomes `../`)."
);
file_flaw!(
    PATH_UNCHECKED,
    "path-unchecked",
    ReadUnchecked,
    "TRAV-DOTDOT",
    "read_file joins the path to the root with no check at all."
);
file_flaw!(
    PATH_DECODE,
    "path-decode",
    ReadDecodeAfterCheck,
    "TRAV-ENCODED",
    "read_file refuses `..` in the raw path, then percent-decodes it."
);
file_flaw!(
    WRITE_UNCHECKED,
    "write-unchecked",
    WriteUnchecked,
    "TRAV-WRITE",
    "write_file joins the path to the root with no check at all."
);
file_flaw!(
    MKDIR_PREFIX,
    "mkdir-prefix",
    MkdirPrefix,
    "TRAV-WRITE",
    "create_directory normalizes the path and checks it with a string prefix (the seed's `abspath(join(base, p)).startswith(base)`): `/data` admits `/data_evil/new`."
);
file_flaw!(
    INFO_UNCHECKED,
    "info-unchecked",
    InfoUnchecked,
    "TRAV-DOTDOT",
    "file_info joins the path to the root with no check, reads the file and answers only its size, line count and digest: an escape whose reply carries nothing of the file."
);

impl FlawedFiles {
    fn starts_with_root(&self, path: &Path) -> bool {
        path.to_string_lossy()
            .starts_with(&*self.root.to_string_lossy())
    }

    /// The flawed read, for the read mistakes; `None` for the others.
    fn flawed_read_to_string(&self, path: &str) -> Option<Result<String, SandboxError>> {
        let relative_or_absolute = |path: &str| {
            if path.starts_with('/') {
                Err(SandboxError::InvalidPath("absolute path"))
            } else {
                Ok(())
            }
        };
        let target = match self.mistake {
            Mistake::ReadPrefix => {
                // The seed: (base / requested).resolve(), then str.startswith(base).
                let resolved = match std::fs::canonicalize(self.root.join(path)) {
                    Ok(resolved) => resolved,
                    Err(error) => return Some(Err(error.into())),
                };
                if !self.starts_with_root(&resolved) {
                    return Some(Err(SandboxError::Escape));
                }
                resolved
            }
            Mistake::ReadLexical => {
                if path.contains("..") {
                    return Some(Err(SandboxError::InvalidPath("'..' in path")));
                }
                if let Err(error) = relative_or_absolute(path) {
                    return Some(Err(error));
                }
                self.root.join(path)
            }
            Mistake::ReadStripOnce => {
                if let Err(error) = relative_or_absolute(path) {
                    return Some(Err(error));
                }
                self.root.join(path.replace("../", ""))
            }
            Mistake::ReadUnchecked => self.root.join(path),
            Mistake::ReadDecodeAfterCheck => {
                if path.contains("..") {
                    return Some(Err(SandboxError::InvalidPath("'..' in path")));
                }
                if let Err(error) = relative_or_absolute(path) {
                    return Some(Err(error));
                }
                self.root.join(percent_decode(path))
            }
            _ => return None,
        };
        Some(std::fs::read_to_string(target).map_err(SandboxError::from))
    }
}

impl Files for FlawedFiles {
    fn name(&self) -> &'static str {
        self.name
    }

    fn read_to_string(&self, path: &str) -> Result<String, SandboxError> {
        match self.flawed_read_to_string(path) {
            Some(result) => result,
            None => self.reference.read_to_string(path),
        }
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        if self.mistake == Mistake::InfoUnchecked {
            return std::fs::read(self.root.join(path)).map_err(SandboxError::from);
        }
        self.reference.read(path)
    }

    fn write(&self, path: &str, content: &[u8]) -> Result<(), SandboxError> {
        if self.mistake == Mistake::WriteUnchecked {
            return std::fs::write(self.root.join(path), content).map_err(SandboxError::from);
        }
        self.reference.write(path, content)
    }

    fn create_dir(&self, path: &str) -> Result<(), SandboxError> {
        if self.mistake == Mistake::MkdirPrefix {
            let resolved = normalize(&self.root.join(path));
            if !self.starts_with_root(&resolved) {
                return Err(SandboxError::Escape);
            }
            return std::fs::create_dir(&resolved).map_err(SandboxError::from);
        }
        self.reference.create_dir(path)
    }

    fn delete(&self, path: &str) -> Result<(), SandboxError> {
        self.reference.delete(path)
    }

    fn list(&self, path: &str, max_depth: u8) -> Result<Listing, SandboxError> {
        self.reference.list(path, max_depth)
    }
}

/// `..` and `.` removed lexically, as Python's `os.path.abspath` does (symlinks untouched).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Decodes `%XX` escapes (once), as a web framework would before the handler sees the value.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(value) = u8::from_str_radix(hex, 16)
        {
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    //! The attack crate's path strategies against each twin's guard: within proptest's default
    //! case count they find the mistake (a canary read, or something changed outside the root),
    //! and against the reference sandbox they find nothing. The tree is put back after each case.

    use super::*;
    use mcp_attack::{PathTree, traversal_paths_around};
    use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
    use reference_server::guard::sandbox::{Sandbox, SandboxLimits};

    /// The guard under test on `tree`: the reference sandbox, or a twin making `mistake`.
    fn guard(tree: &PathTree, mistake: Option<Mistake>) -> Arc<dyn Files> {
        let sandbox: Arc<dyn Files> =
            Arc::new(Sandbox::open(&tree.root(), SandboxLimits::default()).unwrap());
        match mistake {
            None => sandbox,
            Some(mistake) => Arc::new(FlawedFiles {
                name: "twin",
                mistake,
                root: tree.root(),
                reference: sandbox,
            }),
        }
    }

    /// What one attack did that the oracle forbids, if anything.
    fn attack(tree: &PathTree, files: &dyn Files, path: &str, writes: bool) -> Option<String> {
        if writes {
            let _ = files.write(path, b"x");
            let _ = files.create_dir(path);
            let changed = tree.changed_outside();
            return (!changed.is_empty()).then(|| format!("{path:?} changed {changed:?}"));
        }
        let read = files.read_to_string(path).map(String::into_bytes);
        let bytes = files.read(path);
        [read, bytes]
            .into_iter()
            .flatten()
            .any(|content| tree.reveals(&content))
            .then(|| format!("{path:?} read a canary"))
    }

    /// The smallest failing path a default-sized proptest run finds, or `None`.
    fn first_escape(mistake: Option<Mistake>, writes: bool) -> Option<String> {
        let tree = PathTree::new().unwrap();
        let targets = if writes {
            tree.write_targets()
        } else {
            tree.targets()
        };
        let files = guard(&tree, mistake);
        let mut runner = TestRunner::new(Config {
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&traversal_paths_around(targets), |path| {
            let escape = attack(&tree, &*files, &path, writes);
            tree.restore().unwrap();
            match escape {
                Some(escape) => Err(TestCaseError::fail(escape)),
                None => Ok(()),
            }
        });
        match result {
            Ok(()) => None,
            Err(TestError::Fail(reason, _)) => Some(reason.to_string()),
            Err(other) => panic!("the run stopped: {other}"),
        }
    }

    #[test]
    fn the_traversal_strategies_find_every_file_twin_and_nothing_on_the_reference() {
        for (mistake, writes) in [
            (Mistake::ReadPrefix, false),
            (Mistake::ReadLexical, false),
            (Mistake::ReadStripOnce, false),
            (Mistake::ReadUnchecked, false),
            (Mistake::ReadDecodeAfterCheck, false),
            (Mistake::InfoUnchecked, false),
            (Mistake::WriteUnchecked, true),
            (Mistake::MkdirPrefix, true),
        ] {
            let found = first_escape(Some(mistake), writes);
            assert!(found.is_some(), "{mistake:?}: the strategies found nothing");
            eprintln!("{mistake:?}: {}", found.unwrap_or_default());
        }
        for writes in [false, true] {
            assert_eq!(first_escape(None, writes), None, "the reference escaped");
        }
    }
}
