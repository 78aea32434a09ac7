//! Path traversal payloads: a climb out of a root, written the ways string checks miss.
//!
//! A payload starts from a *target*: a path that leaves the root, relative (`../outside/x`) or
//! absolute (`/etc/passwd`). [`encodings`] writes one target in every form a validator is
//! known to get wrong: percent-encoded once or twice, backslashes, the `....//` that survives
//! a single strip of `../`, full-width dots, overlong UTF-8, a NUL that truncates in C,
//! absolute paths as `file://` URLs or after a climb past `/`. Each form is one function of
//! the target, so a caller can tell which one got through.
//!
//! Cost: building the forms of a target is a few string replacements; nothing here touches the
//! file system (the oracle that judges a path is [`crate::oracle::tree`]).

/// One way of writing a target, by name.
#[derive(Clone, Copy)]
pub struct Encoding {
    /// A short name for reports ("percent-encoded dots").
    pub name: &'static str,
    /// Writes `target` in this form.
    pub write: fn(&str) -> String,
}

impl std::fmt::Debug for Encoding {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name)
    }
}

/// The forms of a relative climb (`../a/b`).
pub const RELATIVE_ENCODINGS: &[Encoding] = &[
    Encoding {
        name: "as written",
        write: |t| t.to_owned(),
    },
    Encoding {
        name: "behind ./",
        write: |t| format!("./{t}"),
    },
    Encoding {
        name: "after a detour through a subdirectory",
        write: |t| format!("sub/../{t}"),
    },
    Encoding {
        name: "climbing further than needed",
        write: |t| format!("../../../../../../../../{t}"),
    },
    Encoding {
        name: "percent-encoded dots",
        write: |t| t.replace("..", "%2e%2e"),
    },
    Encoding {
        name: "percent-encoded slashes",
        write: |t| t.replace('/', "%2f"),
    },
    Encoding {
        name: "percent-encoded twice",
        write: |t| t.replace("..", "%252e%252e").replace('/', "%252f"),
    },
    Encoding {
        name: "backslashes",
        write: |t| t.replace('/', "\\"),
    },
    Encoding {
        name: "percent-encoded backslashes",
        write: |t| t.replace('/', "%5c"),
    },
    Encoding {
        name: "doubled for a single strip of ../",
        write: |t| t.replace("../", "....//"),
    },
    Encoding {
        name: "nested for a single strip of ../",
        write: |t| t.replace("../", "..././"),
    },
    Encoding {
        name: "doubled with a backslash",
        write: |t| t.replace("../", "....\\/"),
    },
    Encoding {
        name: "full-width dots and slash",
        write: |t| t.replace("../", "\u{ff0e}\u{ff0e}\u{ff0f}"),
    },
    Encoding {
        name: "overlong UTF-8",
        write: |t| t.replace("..", "%c0%ae%c0%ae").replace('/', "%c0%af"),
    },
    Encoding {
        name: "after a NUL",
        write: |t| format!("a.txt\u{0}/{t}"),
    },
    Encoding {
        name: "doubled slashes",
        write: |t| t.replace('/', "//"),
    },
];

/// The forms of an absolute target (`/etc/passwd`).
pub const ABSOLUTE_ENCODINGS: &[Encoding] = &[
    Encoding {
        name: "as written",
        write: |t| t.to_owned(),
    },
    Encoding {
        name: "as a file:// URL",
        write: |t| format!("file://{t}"),
    },
    Encoding {
        name: "behind a second slash",
        write: |t| format!("/{t}"),
    },
    Encoding {
        name: "after a climb past /",
        write: |t| format!("../../../../../../../../..{t}"),
    },
    Encoding {
        name: "percent-encoded slashes",
        write: |t| t.replace('/', "%2f"),
    },
    Encoding {
        name: "backslashes",
        write: |t| t.replace('/', "\\"),
    },
];

/// Targets when the caller names none: files every Unix host has, reached by a climb and
/// directly.
pub const DEFAULT_TARGETS: &[&str] = &[
    "../../../../../../../../etc/passwd",
    "../secret.txt",
    "/etc/passwd",
    "/proc/self/environ",
];

/// The encodings that apply to `target`: absolute or relative.
pub fn encodings_for(target: &str) -> &'static [Encoding] {
    if target.starts_with('/') {
        ABSOLUTE_ENCODINGS
    } else {
        RELATIVE_ENCODINGS
    }
}

/// Every form of `target`, with the encoding that wrote it, duplicates removed.
pub fn encodings(target: &str) -> Vec<(Encoding, String)> {
    let mut forms: Vec<(Encoding, String)> = Vec::new();
    for encoding in encodings_for(target) {
        let written = (encoding.write)(target);
        if !forms.iter().any(|(_, seen)| *seen == written) {
            forms.push((*encoding, written));
        }
    }
    forms
}

/// Path components a traversal is assembled from when no target is known: climbs, their
/// encodings, separators and names a sandbox test tree uses.
pub const COMPONENTS: &[&str] = &[
    "..",
    ".",
    "",
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
    "etc",
    "passwd",
    "secret.txt",
];

#[cfg(feature = "proptest")]
pub use strategies::*;

#[cfg(feature = "proptest")]
mod strategies {
    use super::*;
    use proptest::prelude::*;

    /// Traversal payloads toward the [`DEFAULT_TARGETS`], and paths joined from
    /// [`COMPONENTS`].
    pub fn traversal_paths() -> BoxedStrategy<String> {
        let targets: Vec<String> = DEFAULT_TARGETS.iter().map(|t| (*t).to_owned()).collect();
        prop_oneof![
            3 => traversal_paths_around(targets),
            1 => component_paths(COMPONENTS.iter().map(|c| (*c).to_owned()).collect()),
        ]
        .boxed()
    }

    /// Every form of every one of `targets` (paths that leave the root: relative from the
    /// root, or absolute), in [`encodings`]. Shrinks toward the first target written as is.
    pub fn traversal_paths_around(targets: Vec<String>) -> BoxedStrategy<String> {
        assert!(!targets.is_empty(), "traversal_paths_around needs a target");
        let forms: Vec<String> = targets
            .iter()
            .flat_map(|target| encodings(target).into_iter().map(|(_, form)| form))
            .collect();
        // Cycling through targets first keeps every target reachable in few cases.
        (0..forms.len()).prop_map(move |i| forms[i].clone()).boxed()
    }

    /// Paths of one to six `components` joined by `/`, sometimes absolute.
    pub fn component_paths(components: Vec<String>) -> BoxedStrategy<String> {
        assert!(!components.is_empty(), "component_paths needs a component");
        (
            proptest::collection::vec(proptest::sample::select(components), 1..6),
            any::<bool>(),
        )
            .prop_map(|(parts, absolute)| {
                let joined = parts.join("/");
                if absolute {
                    format!("/{joined}")
                } else {
                    joined
                }
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_relative_form_differs_and_keeps_the_target_recognisable() {
        let forms = encodings("../outside/secret.txt");
        assert_eq!(forms.len(), RELATIVE_ENCODINGS.len());
        assert!(forms.iter().all(|(_, form)| form.contains("secret.txt")));
        let stripped = forms
            .iter()
            .find(|(e, _)| e.name == "doubled for a single strip of ../")
            .map(|(_, form)| form.replace("../", ""))
            .unwrap();
        assert_eq!(stripped, "../outside/secret.txt");
    }

    #[test]
    fn absolute_targets_get_absolute_forms() {
        let forms = encodings("/etc/passwd");
        assert!(forms.iter().any(|(_, f)| f == "file:///etc/passwd"));
        assert!(forms.iter().all(|(_, f)| !f.starts_with("sub/")));
    }
}
