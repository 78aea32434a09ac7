//! The access oracle: every open, read, create, change or delete of the planted outside paths
//! (the directory outside the sandbox, the `_evil` sibling, their canary files and git
//! repositories) is seen and attributed to the call that preceded it.
//!
//! On Linux it uses inotify, watching every directory of the planted trees (new directories
//! are watched as they appear), so a tool that opens `../outside/canary.txt` and answers only
//! "not a workbook", or that only creates a directory outside, is caught although its reply
//! carries nothing. Where inotify is unavailable (another OS, or no watch can be added) it
//! falls back to snapshots of the trees (paths, sizes, modification times) compared after each
//! call: creations, changes and deletions are still seen, reads are not.
//!
//! The harness itself never touches the planted paths after planting: the probes check proof
//! files with `stat` (which inotify does not report) and remove nothing; a test holds it to
//! that (the reference server's certification ends with no touch at all).
//!
//! Cost: one non-blocking `read` per call with inotify (a snapshot walk of a few dozen entries
//! without it). Bounded: at most [`MAX_WATCHED_DIRECTORIES`] watches, and [`MAX_TOUCHES`]
//! touches kept per drain; a queue overflow falls back to a snapshot comparison for that drain.

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Most directories watched.
pub const MAX_WATCHED_DIRECTORIES: usize = 4096;
/// Most touches one drain returns (the rest are counted, not kept).
pub const MAX_TOUCHES: usize = 64;

/// What the target did to a planted path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TouchKind {
    Opened,
    Read,
    Created,
    Modified,
    Deleted,
    Moved,
    AttributesChanged,
}

impl TouchKind {
    pub fn verb(self) -> &'static str {
        match self {
            TouchKind::Opened => "opened",
            TouchKind::Read => "read",
            TouchKind::Created => "created",
            TouchKind::Modified => "modified",
            TouchKind::Deleted => "deleted",
            TouchKind::Moved => "moved",
            TouchKind::AttributesChanged => "changed the attributes of",
        }
    }

    /// Whether the touch changed the file system (a write escape rather than a read).
    pub fn is_write(self) -> bool {
        !matches!(self, TouchKind::Opened | TouchKind::Read)
    }
}

/// One touch of a planted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    pub path: PathBuf,
    pub kind: TouchKind,
}

impl Touch {
    /// "the target read /tmp/.../outside/canary.txt".
    pub fn describe(&self) -> String {
        format!("the target {} {}", self.kind.verb(), self.path.display())
    }
}

type Snapshot = BTreeMap<PathBuf, (u64, Option<SystemTime>, bool)>;

/// Watches the planted trees (see the module docs).
pub struct AccessWatch {
    inotify: Option<Inotify>,
    watched: HashMap<WatchDescriptor, PathBuf>,
    roots: Vec<PathBuf>,
    snapshot: Snapshot,
    buffer: Vec<u8>,
    /// Touches seen in all, over the whole run.
    pub total: u64,
}

const MASK: WatchMask = WatchMask::ACCESS
    .union(WatchMask::OPEN)
    .union(WatchMask::CREATE)
    .union(WatchMask::MODIFY)
    .union(WatchMask::DELETE)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ATTRIB);

/// Every directory under `root` (itself included), without following symlinks, bounded.
fn directories(root: &Path, out: &mut Vec<PathBuf>) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if out.len() >= MAX_WATCHED_DIRECTORIES {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        out.push(dir);
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
}

fn take_snapshot(roots: &[PathBuf]) -> Snapshot {
    let mut snapshot = Snapshot::new();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if snapshot.len() > 20_000 {
                return snapshot;
            }
            let Ok(metadata) = entry.path().symlink_metadata() else {
                continue;
            };
            let is_dir = metadata.is_dir();
            snapshot.insert(
                entry.path(),
                (metadata.len(), metadata.modified().ok(), is_dir),
            );
            if is_dir {
                stack.push(entry.path());
            }
        }
    }
    snapshot
}

fn compare(before: &Snapshot, after: &Snapshot) -> Vec<Touch> {
    let mut touches = Vec::new();
    for (path, state) in after {
        match before.get(path) {
            None => touches.push(Touch {
                path: path.clone(),
                kind: TouchKind::Created,
            }),
            Some(previous) if previous != state => touches.push(Touch {
                path: path.clone(),
                kind: TouchKind::Modified,
            }),
            Some(_) => {}
        }
    }
    for path in before.keys() {
        if !after.contains_key(path) {
            touches.push(Touch {
                path: path.clone(),
                kind: TouchKind::Deleted,
            });
        }
    }
    touches
}

impl AccessWatch {
    /// Starts watching `roots` (call it after planting, before the target runs anything).
    pub fn start(roots: &[&Path]) -> AccessWatch {
        let roots: Vec<PathBuf> = roots.iter().map(|r| r.to_path_buf()).collect();
        let mut watch = AccessWatch {
            inotify: None,
            watched: HashMap::new(),
            roots: roots.clone(),
            snapshot: Snapshot::new(),
            buffer: vec![0; 64 * 1024],
            total: 0,
        };
        // The snapshot first: listing the trees opens their directories, which a watch would
        // report as touches.
        watch.snapshot = take_snapshot(&watch.roots);
        if let Ok(inotify) = Inotify::init() {
            let mut all = Vec::new();
            for root in &roots {
                directories(root, &mut all);
            }
            let mut watches = inotify.watches();
            let mut ok = !all.is_empty();
            for dir in all {
                match watches.add(&dir, MASK) {
                    Ok(descriptor) => {
                        watch.watched.insert(descriptor, dir);
                    }
                    Err(_) => ok = false,
                }
            }
            if ok {
                watch.inotify = Some(inotify);
            }
        }
        watch
    }

    /// How touches are seen: `inotify` or `snapshot` (no reads).
    pub fn mechanism(&self) -> &'static str {
        if self.inotify.is_some() {
            "inotify"
        } else {
            "snapshot"
        }
    }

    /// The touches since the last drain (at most [`MAX_TOUCHES`]; repeated touches of one
    /// path with one kind are listed once).
    pub fn drain(&mut self) -> Vec<Touch> {
        let mut touches: Vec<Touch> = Vec::new();
        let mut overflowed = false;
        let mut new_directories: Vec<PathBuf> = Vec::new();
        if let Some(inotify) = self.inotify.as_mut() {
            loop {
                let events = match inotify.read_events(&mut self.buffer) {
                    Ok(events) => events,
                    Err(_) => break,
                };
                let mut any = false;
                for event in events {
                    any = true;
                    if event.mask.contains(EventMask::Q_OVERFLOW) {
                        overflowed = true;
                        continue;
                    }
                    if event.mask.contains(EventMask::IGNORED) {
                        continue;
                    }
                    let Some(dir) = self.watched.get(&event.wd) else {
                        continue;
                    };
                    let path = match event.name {
                        Some(name) => dir.join(name),
                        None => dir.clone(),
                    };
                    let mask = event.mask;
                    let kind =
                        if mask.contains(EventMask::CREATE) || mask.contains(EventMask::MOVED_TO) {
                            if mask.contains(EventMask::ISDIR) {
                                new_directories.push(path.clone());
                            }
                            TouchKind::Created
                        } else if mask.contains(EventMask::DELETE)
                            || mask.contains(EventMask::DELETE_SELF)
                        {
                            TouchKind::Deleted
                        } else if mask.contains(EventMask::MOVED_FROM)
                            || mask.contains(EventMask::MOVE_SELF)
                        {
                            TouchKind::Moved
                        } else if mask.contains(EventMask::MODIFY) {
                            TouchKind::Modified
                        } else if mask.contains(EventMask::ATTRIB) {
                            TouchKind::AttributesChanged
                        } else if mask.contains(EventMask::ACCESS) {
                            TouchKind::Read
                        } else {
                            TouchKind::Opened
                        };
                    self.total += 1;
                    let touch = Touch { path, kind };
                    if touches.len() < MAX_TOUCHES && !touches.contains(&touch) {
                        touches.push(touch);
                    }
                }
                if !any {
                    break;
                }
            }
            let mut watches = inotify.watches();
            for dir in new_directories {
                if self.watched.len() < MAX_WATCHED_DIRECTORIES
                    && let Ok(descriptor) = watches.add(&dir, MASK)
                {
                    self.watched.insert(descriptor, dir);
                }
            }
        }
        if self.inotify.is_none() || overflowed {
            let now = take_snapshot(&self.roots);
            for touch in compare(&self.snapshot, &now) {
                if !touches.contains(&touch) && touches.len() < MAX_TOUCHES {
                    self.total += 1;
                    touches.push(touch);
                }
            }
            self.snapshot = now;
            // The snapshot's own directory listings are not the target's touches.
            if let Some(inotify) = self.inotify.as_mut() {
                while inotify
                    .read_events(&mut self.buffer)
                    .is_ok_and(|mut events| events.next().is_some())
                {}
            }
        }
        touches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_creations_and_deletions_are_seen_and_stat_is_not() {
        let base = tempfile::tempdir().unwrap();
        let outside = base.path().join("outside");
        std::fs::create_dir_all(outside.join("deep")).unwrap();
        std::fs::write(outside.join("canary.txt"), "canary").unwrap();
        let mut watch = AccessWatch::start(&[&outside]);
        assert_eq!(watch.mechanism(), "inotify");
        assert!(watch.drain().is_empty(), "starting touches nothing");
        // stat (what the probes use to look for proof files) is not a touch.
        assert!(outside.join("canary.txt").exists());
        assert!(!outside.join("missing").exists());
        assert!(watch.drain().is_empty());
        let _ = std::fs::read_to_string(outside.join("canary.txt")).unwrap();
        let touches = watch.drain();
        assert!(
            touches.contains(&Touch {
                path: outside.join("canary.txt"),
                kind: TouchKind::Read
            }),
            "{touches:?}"
        );
        std::fs::create_dir(outside.join("made")).unwrap();
        assert!(watch.drain().iter().any(|t| t.kind == TouchKind::Created));
        // A directory created outside is watched too.
        std::fs::write(outside.join("made/inner.txt"), "x").unwrap();
        assert!(
            watch
                .drain()
                .iter()
                .any(|t| t.path == outside.join("made/inner.txt"))
        );
        std::fs::write(outside.join("deep/file"), "y").unwrap();
        assert!(watch.drain().iter().any(|t| t.kind == TouchKind::Created));
        std::fs::remove_file(outside.join("canary.txt")).unwrap();
        assert!(watch.drain().iter().any(|t| t.kind == TouchKind::Deleted));
        assert!(watch.total >= 4);
    }

    #[test]
    fn snapshots_see_writes_without_inotify() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().to_path_buf();
        std::fs::write(root.join("a"), "1").unwrap();
        let before = take_snapshot(std::slice::from_ref(&root));
        std::fs::write(root.join("b"), "2").unwrap();
        std::fs::write(root.join("a"), "longer").unwrap();
        let touches = compare(&before, &take_snapshot(std::slice::from_ref(&root)));
        assert!(touches.contains(&Touch {
            path: root.join("b"),
            kind: TouchKind::Created
        }));
        assert!(touches.contains(&Touch {
            path: root.join("a"),
            kind: TouchKind::Modified
        }));
    }
}
