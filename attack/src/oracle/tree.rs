//! A real directory tree to run a path validator in, and the oracle that says whether it
//! escaped.
//!
//! ```text
//! base/root/          the sandbox: a.txt, dir/b.txt, dir/deeper/c.txt, and symlinks
//!                     link_in -> a.txt, link_dir_in -> dir, link_out -> ../root_evil/CANARY_EVIL.txt,
//!                     link_abs -> base/outside/CANARY_OUTSIDE.txt, link_dir_out -> ../outside,
//!                     link_dotdot -> .., dir/link_up -> ../../outside
//! base/root_evil/     the sibling a string-prefix check admits: CANARY_EVIL.txt
//! base/outside/       CANARY_OUTSIDE.txt, sub/
//! ```
//!
//! Three oracles, each independent of the validator under test: a read that returns
//! [`PathTree::canary`] (a random word in both canary files and nowhere else) read outside the
//! root; a path the validator hands back that resolves, through the real file system, outside
//! the root ([`PathTree::escapes`]); and anything created, changed or deleted outside the root
//! ([`PathTree::changed_outside`]).
//!
//! Cost: building the tree is about twenty system calls in a fresh temporary directory, and a
//! snapshot reads every file in it; reuse one tree across cases and call [`PathTree::restore`]
//! after each case that may have written (it rebuilds only when something changed). Fails: `new` returns the I/O error if the temporary directory
//! cannot be made (it is removed when the tree is dropped).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The test tree. See the module doc for its layout.
pub struct PathTree {
    _temp: tempfile::TempDir,
    base: PathBuf,
    canary: String,
    pristine: BTreeMap<String, String>,
}

impl PathTree {
    /// Builds the tree in a new temporary directory.
    pub fn new() -> io::Result<Self> {
        let temp = tempfile::Builder::new().prefix("mcp-attack-").tempdir()?;
        let base = temp.path().canonicalize()?;
        let canary = format!("MCP_ATTACK_CANARY_{:016x}", random_word(&base));
        build_outside(&base, &canary)?;
        build_root(&base)?;
        let pristine = snapshot(&base);
        Ok(Self {
            _temp: temp,
            base,
            canary,
            pristine,
        })
    }

    /// The sandbox root a validator is given (canonical: no symlink in it).
    pub fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    /// The directory holding the root and its siblings.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The word in every canary file: a read that returns it came from outside the root.
    pub fn canary(&self) -> &str {
        &self.canary
    }

    /// Whether `content` holds the canary.
    pub fn reveals(&self, content: &[u8]) -> bool {
        let needle = self.canary.as_bytes();
        content.windows(needle.len()).any(|w| w == needle)
    }

    /// Whether a listed name is one of the canary files (a listing reached outside).
    pub fn names_a_canary(&self, name: &str) -> bool {
        name.contains("CANARY_")
    }

    /// Paths that leave the root toward the canaries, as a user of the tree would write them
    /// (relative to the root, through the links, absolute): the targets for
    /// [`crate::paths::traversal_paths_around`].
    pub fn targets(&self) -> Vec<String> {
        vec![
            "../outside/CANARY_OUTSIDE.txt".into(),
            "../root_evil/CANARY_EVIL.txt".into(),
            "link_out".into(),
            "link_abs".into(),
            "link_dir_out/CANARY_OUTSIDE.txt".into(),
            "link_dotdot/outside/CANARY_OUTSIDE.txt".into(),
            "dir/link_up/CANARY_OUTSIDE.txt".into(),
            self.base
                .join("outside/CANARY_OUTSIDE.txt")
                .display()
                .to_string(),
            self.base
                .join("root_evil/CANARY_EVIL.txt")
                .display()
                .to_string(),
        ]
    }

    /// Paths outside the root that do not exist yet, for a validator that writes or creates:
    /// the targets for [`crate::paths::traversal_paths_around`] when the oracle is
    /// [`PathTree::changed_outside`].
    pub fn write_targets(&self) -> Vec<String> {
        vec![
            "../outside/new".into(),
            "../root_evil/new".into(),
            "link_dir_out/new".into(),
            "link_dotdot/outside/new".into(),
            "dir/link_up/new".into(),
            self.base.join("outside/new").display().to_string(),
            self.base.join("root_evil/new").display().to_string(),
        ]
    }

    /// Where `path` (a path a validator returned as safe, absolute or relative to the root)
    /// really leads when opened, when that is outside the root: symlinks followed as the
    /// kernel would, components that do not exist yet taken lexically. `None` when it stays
    /// inside.
    pub fn escapes(&self, path: &Path) -> Option<PathBuf> {
        let root = self.root();
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            root.join(path)
        };
        let resolved = resolve(&joined);
        (!resolved.starts_with(&root)).then_some(resolved)
    }

    /// What changed outside the root since the tree was built: the names added, removed or
    /// rewritten. Empty when nothing did.
    pub fn changed_outside(&self) -> Vec<String> {
        let now = snapshot(&self.base);
        let outside = |map: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            map.iter()
                .filter(|(name, _)| !(name.starts_with("root/") || *name == "root"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let (before, after) = (outside(&self.pristine), outside(&now));
        let mut changed: Vec<String> = before
            .keys()
            .chain(after.keys())
            .filter(|name| before.get(*name) != after.get(*name))
            .cloned()
            .collect();
        changed.dedup();
        changed
    }

    /// Puts the whole tree back as it was built, if anything in it changed (inside the root or
    /// out), so the next case starts from it.
    pub fn restore(&self) -> io::Result<()> {
        if snapshot(&self.base) == self.pristine {
            return Ok(());
        }
        for entry in fs::read_dir(&self.base)? {
            let path = entry?.path();
            if path.is_dir() && !path.is_symlink() {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
        build_outside(&self.base, &self.canary)?;
        build_root(&self.base)
    }
}

/// A word no input can know in advance, from the clock and the tree's own path.
fn random_word(base: &Path) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    base.hash(&mut hasher);
    std::time::SystemTime::now().hash(&mut hasher);
    hasher.finish()
}

fn build_outside(base: &Path, canary: &str) -> io::Result<()> {
    fs::create_dir_all(base.join("root_evil"))?;
    fs::create_dir_all(base.join("outside/sub"))?;
    fs::write(
        base.join("root_evil/CANARY_EVIL.txt"),
        format!("{canary} evil sibling"),
    )?;
    fs::write(
        base.join("outside/CANARY_OUTSIDE.txt"),
        format!("{canary} outside"),
    )
}

fn build_root(base: &Path) -> io::Result<()> {
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

/// `path` with every symlink followed and `..` applied to what it really names, as `open`
/// would; the part that does not exist is taken as written. Bounded: at most 40 links, as
/// Linux's own limit.
fn resolve(path: &Path) -> PathBuf {
    let mut pending: Vec<PathBuf> = path
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut resolved = PathBuf::from("/");
    let mut links_followed = 0;
    while let Some(part) = pending.pop() {
        match part.components().next() {
            Some(Component::RootDir) | Some(Component::Prefix(_)) => resolved = PathBuf::from("/"),
            Some(Component::CurDir) | None => {}
            Some(Component::ParentDir) => {
                resolved.pop();
            }
            Some(Component::Normal(name)) => {
                let candidate = resolved.join(name);
                match fs::read_link(&candidate) {
                    Ok(target) if links_followed < 40 => {
                        links_followed += 1;
                        pending.extend(
                            target
                                .components()
                                .rev()
                                .map(|c| PathBuf::from(c.as_os_str())),
                        );
                    }
                    _ => resolved = candidate,
                }
            }
        }
    }
    resolved
}

/// Every name and file content under `dir` (symlinks as their target text), not following
/// links.
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
            let Ok(kind) = entry.file_type() else {
                continue;
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_escapes_and_inside_paths_do_not() {
        let tree = PathTree::new().unwrap();
        for target in tree.write_targets() {
            assert!(tree.escapes(Path::new(&target)).is_some(), "{target}");
        }
        for target in tree.targets() {
            assert!(tree.escapes(Path::new(&target)).is_some(), "{target}");
            let read = fs::read(tree.root().join(&target)).unwrap();
            assert!(tree.reveals(&read), "{target}");
        }
        for inside in [
            "a.txt",
            "link_in",
            "link_dir_in/b.txt",
            "dir/../a.txt",
            "new/file",
            ".",
        ] {
            assert_eq!(tree.escapes(Path::new(inside)), None, "{inside}");
        }
        // A string-prefix check admits the sibling; the oracle does not.
        assert!(tree.escapes(&tree.base().join("root_evil/x")).is_some());
        assert!(!tree.reveals(b"inside a"));
    }

    #[test]
    fn writes_outside_are_seen_and_the_root_restores() {
        let tree = PathTree::new().unwrap();
        assert!(tree.changed_outside().is_empty());
        fs::write(tree.root().join("a.txt"), "changed").unwrap();
        fs::remove_file(tree.root().join("link_out")).unwrap();
        assert!(tree.changed_outside().is_empty());
        tree.restore().unwrap();
        assert_eq!(
            fs::read_to_string(tree.root().join("a.txt")).unwrap(),
            "inside a"
        );
        assert!(tree.root().join("link_out").is_symlink());
        fs::write(tree.base().join("outside/new.txt"), "x").unwrap();
        fs::write(tree.base().join("stray"), "x").unwrap();
        assert_eq!(
            tree.changed_outside(),
            vec!["outside/new.txt".to_owned(), "stray".to_owned()]
        );
        tree.restore().unwrap();
        assert!(tree.changed_outside().is_empty());
    }

    #[test]
    fn symlink_loops_end() {
        let tree = PathTree::new().unwrap();
        std::os::unix::fs::symlink("loop", tree.root().join("loop")).unwrap();
        assert_eq!(tree.escapes(Path::new("loop")), None);
    }
}
