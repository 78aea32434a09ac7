//! File access confined to one directory, held as a capability ([`cap_std::fs::Dir`]).
//!
//! Every operation resolves its path *relative to an open directory handle*, one component at a
//! time (openat2 `RESOLVE_BENEATH` where the kernel has it, cap-std's own walk elsewhere). A
//! `..`, an absolute path or a symlink that would lead outside fails inside the open call
//! itself, so there is no window between a check and the use of its result (the seed resolved
//! the path, checked it with `str.startswith`, then opened it by name again: a prefix sibling
//! such as `/data_evil` passed, and a symlink swapped in between check and open escaped).
//!
//! Before touching the filesystem a cheap lexical pre-check refuses what is never legitimate:
//! an empty or over-long path, an absolute path, a `..` component, NUL or other control bytes,
//! and backslashes. The pre-check is not what keeps access inside (the handle is); it gives a
//! clear error early and keeps odd bytes out of logs.
//!
//! Cost: a path resolution through a directory handle is one `openat2` (or one `openat` per
//! component), within a small factor of a plain `openat`; see benches/. Sizes are checked on
//! the *opened* handle (`fstat`), and reads stop at the limit even if the file grows meanwhile.
//!
//! Failure: every refusal is a [`SandboxError`]; its `Display` never contains the sandbox's
//! absolute location, only the caller's relative path at most. Writes go to a temporary file in
//! the same directory and are renamed into place, so a failed write leaves the old file intact.

use cap_std::fs::{Dir, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Component, Path};

/// Longest relative path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Longest single path component accepted, in bytes.
pub const MAX_COMPONENT_LEN: usize = 255;

/// Why a path or a file operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid path: {0}")]
    InvalidPath(&'static str),
    #[error("the path leads outside the sandbox")]
    Escape,
    #[error("no such file or directory")]
    NotFound,
    #[error("the path is not a regular file")]
    NotAFile,
    #[error("the path is not a directory")]
    NotADirectory,
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the file is not valid UTF-8 text")]
    NotText,
    #[error("the path already exists")]
    AlreadyExists,
    #[error("file system error: {0}")]
    Io(io::ErrorKind),
}

impl From<io::Error> for SandboxError {
    fn from(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::NotFound => SandboxError::NotFound,
            io::ErrorKind::PermissionDenied => SandboxError::Escape,
            io::ErrorKind::NotADirectory => SandboxError::NotFound,
            io::ErrorKind::IsADirectory => SandboxError::NotAFile,
            kind => {
                // cap-std reports a symlink loop or an escape through a symlink as ELOOP/EXDEV
                // on some kernels; both mean "not reachable inside the sandbox".
                match error.raw_os_error() {
                    Some(40) | Some(18) => SandboxError::Escape,
                    _ => SandboxError::Io(kind),
                }
            }
        }
    }
}

/// Limits that bound what one operation may read, write or list.
#[derive(Clone, Copy, Debug)]
pub struct SandboxLimits {
    pub max_read_bytes: u64,
    pub max_write_bytes: u64,
    pub max_list_entries: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            max_read_bytes: 1024 * 1024,
            max_write_bytes: 1024 * 1024,
            max_list_entries: 1000,
        }
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListedEntry {
    /// Path relative to the sandbox root, `/`-separated.
    pub path: String,
    /// `file`, `directory`, `symlink` or `other`.
    pub kind: &'static str,
    /// Size in bytes for regular files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// A directory listing, possibly cut short at the entry limit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listing {
    pub entries: Vec<ListedEntry>,
    pub truncated: bool,
}

/// The only way the server touches files: a handle to the root and the limits.
pub struct Sandbox {
    root: Dir,
    limits: SandboxLimits,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The lexical pre-check: refuses paths that are never legitimate before any system call.
pub fn check_relative_path(path: &str) -> Result<&Path, SandboxError> {
    if path.is_empty() {
        return Err(SandboxError::InvalidPath("empty path"));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(SandboxError::InvalidPath("path too long"));
    }
    if path.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(SandboxError::InvalidPath("control character in path"));
    }
    if path.contains('\\') {
        return Err(SandboxError::InvalidPath("backslash in path"));
    }
    let as_path = Path::new(path);
    for component in as_path.components() {
        match component {
            Component::Normal(part) if part.len() > MAX_COMPONENT_LEN => {
                return Err(SandboxError::InvalidPath("path component too long"));
            }
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(SandboxError::InvalidPath("'..' in path")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(SandboxError::InvalidPath("absolute path"));
            }
        }
    }
    Ok(as_path)
}

impl Sandbox {
    /// Opens `root` as the sandbox. The path is used once, here; afterwards only the handle is.
    pub fn open(root: &Path, limits: SandboxLimits) -> io::Result<Self> {
        let root = Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
        Ok(Self { root, limits })
    }

    pub fn limits(&self) -> SandboxLimits {
        self.limits
    }

    /// Reads a UTF-8 text file of at most `max_read_bytes`.
    pub fn read_to_string(&self, path: &str) -> Result<String, SandboxError> {
        let bytes = self.read(path)?;
        String::from_utf8(bytes).map_err(|_| SandboxError::NotText)
    }

    /// Reads a file of at most `max_read_bytes`; the size is checked on the opened handle.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        let path = check_relative_path(path)?;
        let file = self.root.open(path)?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(SandboxError::NotAFile);
        }
        let limit = self.limits.max_read_bytes;
        if metadata.len() > limit {
            return Err(SandboxError::TooLarge { limit });
        }
        let mut bytes = Vec::with_capacity(metadata.len() as usize);
        // Read one byte past the limit to notice a file that grew after the fstat.
        file.take(limit + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            return Err(SandboxError::TooLarge { limit });
        }
        Ok(bytes)
    }

    /// Writes a whole file atomically: a temporary sibling is written, synced and renamed over
    /// the target, so readers see the old or the new content, never a part.
    pub fn write(&self, path: &str, content: &[u8]) -> Result<(), SandboxError> {
        let limit = self.limits.max_write_bytes;
        if content.len() as u64 > limit {
            return Err(SandboxError::TooLarge { limit });
        }
        let path = check_relative_path(path)?;
        let file_name = path
            .file_name()
            .ok_or(SandboxError::InvalidPath("no file name"))?;
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => self.root.open_dir(parent)?,
            _ => self.root.try_clone()?,
        };
        if let Ok(existing) = parent.symlink_metadata(file_name)
            && !existing.is_file()
        {
            return Err(SandboxError::NotAFile);
        }
        let temp_name = format!(
            ".{}.{:016x}.tmp",
            file_name.to_string_lossy(),
            rand::random::<u64>()
        );
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        let mut temp = parent.open_with(&temp_name, &options)?;
        let written = temp.write_all(content).and_then(|()| temp.sync_all());
        drop(temp);
        if let Err(error) = written.and_then(|()| parent.rename(&temp_name, &parent, file_name)) {
            let _ = parent.remove_file(&temp_name);
            return Err(error.into());
        }
        Ok(())
    }

    /// Creates one directory (its parent must exist). An existing name is refused, whatever
    /// it is; a parent reached through a symlink that leads out fails inside the open.
    pub fn create_dir(&self, path: &str) -> Result<(), SandboxError> {
        let path = check_relative_path(path)?;
        match self.root.create_dir(path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                Err(SandboxError::AlreadyExists)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes a regular file (never a directory, never through a final symlink).
    pub fn delete(&self, path: &str) -> Result<(), SandboxError> {
        let path = check_relative_path(path)?;
        let metadata = self.root.symlink_metadata(path)?;
        if !metadata.is_file() && !metadata.is_symlink() {
            return Err(SandboxError::NotAFile);
        }
        // remove_file unlinks the name itself, never the target of a symlink.
        self.root.remove_file(path)?;
        Ok(())
    }

    /// Lists a directory down to `max_depth` levels (1 = its own entries). Symlinks are
    /// reported, never followed.
    pub fn list(&self, path: &str, max_depth: u8) -> Result<Listing, SandboxError> {
        let start = if path.is_empty() || path == "." {
            self.root.try_clone()?
        } else {
            let checked = check_relative_path(path)?;
            let metadata = self.root.metadata(checked)?;
            if !metadata.is_dir() {
                return Err(SandboxError::NotADirectory);
            }
            self.root.open_dir(checked)?
        };
        let prefix = if path.is_empty() || path == "." {
            String::new()
        } else {
            path.trim_end_matches('/').to_owned()
        };
        let mut listing = Listing {
            entries: Vec::new(),
            truncated: false,
        };
        self.walk(&start, &prefix, max_depth.max(1), &mut listing)?;
        listing.entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(listing)
    }

    fn walk(
        &self,
        dir: &Dir,
        prefix: &str,
        depth_left: u8,
        listing: &mut Listing,
    ) -> Result<(), SandboxError> {
        for entry in dir.entries()? {
            if listing.entries.len() >= self.limits.max_list_entries {
                listing.truncated = true;
                return Ok(());
            }
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let file_type = entry.file_type()?;
            let (kind, size) = if file_type.is_symlink() {
                ("symlink", None)
            } else if file_type.is_dir() {
                ("directory", None)
            } else if file_type.is_file() {
                ("file", Some(entry.metadata()?.len()))
            } else {
                ("other", None)
            };
            listing.entries.push(ListedEntry {
                path: relative.clone(),
                kind,
                size,
            });
            if kind == "directory" && depth_left > 1 {
                let child = entry.open_dir()?;
                self.walk(&child, &relative, depth_left - 1, listing)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fs;

    /// A root with a file, a subdirectory, an inner symlink, a symlink out, and a `_evil` sibling.
    fn stage() -> (tempfile::TempDir, std::path::PathBuf, Sandbox) {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("root");
        let evil = temp.path().join("root_evil");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::create_dir_all(&evil).unwrap();
        fs::write(root.join("hello.txt"), "hello").unwrap();
        fs::write(root.join("sub/inner.txt"), "inner").unwrap();
        fs::write(evil.join("secret.txt"), "CANARY-EVIL").unwrap();
        fs::write(temp.path().join("outside.txt"), "CANARY-OUTSIDE").unwrap();
        std::os::unix::fs::symlink("hello.txt", root.join("inner-link")).unwrap();
        std::os::unix::fs::symlink(temp.path().join("outside.txt"), root.join("abs-link")).unwrap();
        std::os::unix::fs::symlink("../outside.txt", root.join("rel-link")).unwrap();
        std::os::unix::fs::symlink("../root_evil", root.join("evil-dir-link")).unwrap();
        let sandbox = Sandbox::open(&root, SandboxLimits::default()).unwrap();
        (temp, root, sandbox)
    }

    #[test]
    fn reads_inside_work_and_inner_symlinks_are_followed() {
        let (_t, _root, sandbox) = stage();
        assert_eq!(sandbox.read_to_string("hello.txt").unwrap(), "hello");
        assert_eq!(sandbox.read_to_string("./sub/inner.txt").unwrap(), "inner");
        assert_eq!(sandbox.read_to_string("inner-link").unwrap(), "hello");
    }

    #[test]
    fn every_escape_is_refused() {
        let (_t, _root, sandbox) = stage();
        for path in [
            "../outside.txt",
            "/etc/passwd",
            "../root_evil/secret.txt",
            "sub/../../outside.txt",
            "abs-link",
            "rel-link",
            "evil-dir-link/secret.txt",
            "..\\outside.txt",
            "hello.txt\0",
            "",
            "....//outside.txt",
        ] {
            let result = sandbox.read(path);
            assert!(result.is_err(), "{path:?} must be refused, got {result:?}");
        }
        assert!(matches!(
            sandbox.read("abs-link"),
            Err(SandboxError::Escape)
        ));
        assert!(matches!(
            sandbox.read("rel-link"),
            Err(SandboxError::Escape)
        ));
    }

    #[test]
    fn directories_are_created_inside_only() {
        let (temp, root, sandbox) = stage();
        sandbox.create_dir("made").unwrap();
        sandbox.create_dir("sub/made").unwrap();
        assert!(root.join("made").is_dir() && root.join("sub/made").is_dir());
        assert!(matches!(
            sandbox.create_dir("made"),
            Err(SandboxError::AlreadyExists)
        ));
        for path in [
            "../made-outside",
            "/tmp/made-outside",
            "evil-dir-link/made",
            "....//made-outside",
            "",
        ] {
            assert!(sandbox.create_dir(path).is_err(), "{path:?}");
        }
        assert!(!temp.path().join("made-outside").exists());
        assert!(!temp.path().join("root_evil/made").exists());
    }

    #[test]
    fn size_is_checked_on_the_open_file() {
        let (_t, root, _) = stage();
        fs::write(root.join("big.bin"), vec![b'x'; 100]).unwrap();
        let limits = SandboxLimits {
            max_read_bytes: 99,
            ..SandboxLimits::default()
        };
        let sandbox = Sandbox::open(&root, limits).unwrap();
        assert!(matches!(
            sandbox.read("big.bin"),
            Err(SandboxError::TooLarge { limit: 99 })
        ));
        assert!(matches!(sandbox.read("sub"), Err(SandboxError::NotAFile)));
    }

    #[test]
    fn writes_are_atomic_and_confined() {
        let (temp, root, sandbox) = stage();
        sandbox.write("new.txt", b"one").unwrap();
        sandbox.write("new.txt", b"two").unwrap();
        assert_eq!(fs::read(root.join("new.txt")).unwrap(), b"two");
        sandbox.write("sub/deeper.txt", b"x").unwrap();
        assert!(sandbox.write("../escape.txt", b"x").is_err());
        assert!(sandbox.write("evil-dir-link/planted.txt", b"x").is_err());
        assert!(!temp.path().join("root_evil/planted.txt").exists());
        // Writing through a symlink that points out must not touch the target.
        assert!(sandbox.write("abs-link", b"overwritten").is_err());
        assert_eq!(
            fs::read(temp.path().join("outside.txt")).unwrap(),
            b"CANARY-OUTSIDE"
        );
        // No temporary files left behind.
        let leftovers: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        let limits = SandboxLimits {
            max_write_bytes: 2,
            ..SandboxLimits::default()
        };
        let small = Sandbox::open(&root, limits).unwrap();
        assert!(matches!(
            small.write("new.txt", b"abc"),
            Err(SandboxError::TooLarge { .. })
        ));
        assert_eq!(fs::read(root.join("new.txt")).unwrap(), b"two");
    }

    #[test]
    fn delete_removes_links_not_their_targets() {
        let (temp, root, sandbox) = stage();
        sandbox.delete("abs-link").unwrap();
        assert!(temp.path().join("outside.txt").exists());
        assert!(matches!(sandbox.delete("sub"), Err(SandboxError::NotAFile)));
        assert!(sandbox.delete("../outside.txt").is_err());
        sandbox.delete("hello.txt").unwrap();
        assert!(!root.join("hello.txt").exists());
    }

    #[test]
    fn listing_reports_symlinks_without_following_them() {
        let (_t, _root, sandbox) = stage();
        let listing = sandbox.list(".", 2).unwrap();
        let paths: Vec<_> = listing
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.kind))
            .collect();
        assert!(paths.contains(&("sub/inner.txt", "file")));
        assert!(paths.contains(&("evil-dir-link", "symlink")));
        assert!(!paths.iter().any(|(p, _)| p.contains("secret")));
        let shallow = sandbox.list(".", 1).unwrap();
        assert!(!shallow.entries.iter().any(|e| e.path.contains('/')));
        assert!(sandbox.list("../root_evil", 1).is_err());
        assert!(sandbox.list("evil-dir-link", 1).is_err());
    }

    #[test]
    fn errors_never_name_the_root() {
        let (_t, root, sandbox) = stage();
        let root_text = root.to_string_lossy().into_owned();
        for path in ["missing.txt", "abs-link", "../x", "sub"] {
            let message = sandbox.read(path).unwrap_err().to_string();
            assert!(!message.contains(&root_text), "{message}");
        }
    }

    /// The tree the attack crate's path strategies aim at, and the sandbox opened on its root.
    fn attack_stage() -> &'static (mcp_attack::PathTree, Sandbox) {
        static STAGE: std::sync::OnceLock<(mcp_attack::PathTree, Sandbox)> =
            std::sync::OnceLock::new();
        STAGE.get_or_init(|| {
            let tree = mcp_attack::PathTree::new().unwrap();
            let sandbox = Sandbox::open(&tree.root(), SandboxLimits::default()).unwrap();
            (tree, sandbox)
        })
    }

    proptest! {
        /// The attack crate's traversals toward the tree's canaries, in every encoding, never
        /// read one, and reads, listings and directory creation never touch outside the root.
        #[test]
        fn no_attack_path_reads_or_changes_outside_the_root(
            path in prop_oneof![
                mcp_attack::traversal_paths_around(attack_stage().0.targets()),
                mcp_attack::traversal_paths(),
            ],
        ) {
            let (tree, sandbox) = attack_stage();
            if let Ok(bytes) = sandbox.read(&path) {
                prop_assert!(!tree.reveals(&bytes), "{:?} read a canary", path);
            }
            if let Ok(listing) = sandbox.list(&path, 2) {
                prop_assert!(
                    !listing.entries.iter().any(|e| tree.names_a_canary(&e.path)),
                    "{:?} listed a canary", path
                );
            }
            let _ = sandbox.create_dir(&format!("{path}/new"));
            let changed = tree.changed_outside();
            prop_assert!(changed.is_empty(), "{:?} changed {:?}", path, changed);
            tree.restore().unwrap();
        }
    }

    proptest! {
        /// No path the guard accepts reads a canary that lives outside the root, whatever the
        /// mix of components, symlinks and separators.
        #[test]
        fn no_accepted_path_reads_outside_the_root(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("..".to_string()), Just(".".to_string()), Just("sub".to_string()),
                    Just("abs-link".to_string()), Just("rel-link".to_string()),
                    Just("evil-dir-link".to_string()), Just("secret.txt".to_string()),
                    Just("outside.txt".to_string()), Just("root_evil".to_string()),
                    Just("hello.txt".to_string()), Just("".to_string()), "[a-z._]{1,6}",
                ],
                1..6),
            leading_slash in any::<bool>(),
        ) {
            let (_t, _root, sandbox) = stage();
            let mut path = parts.join("/");
            if leading_slash { path.insert(0, '/'); }
            if let Ok(bytes) = sandbox.read(&path) {
                let text = String::from_utf8_lossy(&bytes);
                prop_assert!(!text.contains("CANARY"), "{} escaped", path);
            }
        }
    }
}
