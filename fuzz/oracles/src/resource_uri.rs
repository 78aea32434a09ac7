//! Resource URIs of the sandbox (`guard::resource_uri`), judged by a model of URL path
//! resolution written here by hand.
//!
//! Input: a URI built from a prefix (the sandbox's URI, with or without `localhost`, its
//! `_evil` sibling, the parent, another scheme) and path tokens (`..`, `.`, their percent-encoded
//! spellings, `%2f`, a backslash, names, `?`, `#`), or raw bytes.
//!
//! The model: everything after `file://` and the host, cut at `?` or `#`, split on `/` and `\`
//! (WHATWG treats both as separators in a file URL), each segment decoded when it is a dot
//! segment (`.`, `%2e`, `..`, `.%2E`...), dot segments resolved. Oracles: a path the guard
//! yields and the sandbox's lexical check accepts is always one the model puts under
//! `/srv/data` (never the sibling, never above it); and a listed URI (`uri_of`) of an accepted
//! path names that path again (the round trip the listing relies on).

use arbitrary::{Arbitrary, Unstructured};
use reference_server::guard::resource_uri::ResourceUris;
use reference_server::guard::sandbox::check_relative_path;

const PREFIXES: &[&str] = &[
    "file:///srv/data/",
    "file://localhost/srv/data/",
    "file:///srv/data_evil/",
    "file:///srv/",
    "file:///srv/data",
    "file://evil.example/srv/data/",
    "http://127.0.0.1/srv/data/",
    "FILE:///srv/data/",
];

const TOKENS: &[&str] = &[
    "..",
    ".",
    "%2e%2e",
    "%2E%2e",
    ".%2e",
    "%2e",
    "%2f",
    "%2F",
    "\\",
    "/",
    "a",
    "data",
    "data_evil",
    "srv",
    "notes.txt",
    "?q",
    "#f",
    "%00",
    "%41",
];

#[derive(Arbitrary, Debug)]
enum UriSpec {
    Raw(String),
    Built { prefix: u8, tokens: Vec<u8> },
}

/// The path segments the model resolves `uri` to, for a file URI; `None` for anything else.
fn model_segments(uri: &str) -> Option<Vec<String>> {
    let lower = uri.to_ascii_lowercase();
    let rest = lower.strip_prefix("file://")?;
    let path_start = rest.find(['/', '\\'])?;
    let path = &rest[path_start..];
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    let segments: Vec<&str> = path.split(['/', '\\']).skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (index, segment) in segments.iter().enumerate() {
        let dots = segment.replace("%2e", ".");
        match dots.as_str() {
            "." => {}
            ".." => {
                out.pop();
            }
            _ if index == last && segment.is_empty() => {}
            _ => out.push((*segment).to_owned()),
        }
    }
    Some(out)
}

pub fn check(data: &[u8]) {
    let Ok(spec) = UriSpec::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let uri = match spec {
        UriSpec::Raw(raw) => raw,
        UriSpec::Built { prefix, tokens } => {
            let mut uri = PREFIXES[prefix as usize % PREFIXES.len()].to_owned();
            for (i, token) in tokens.iter().take(24).enumerate() {
                if i > 0 && token % 3 == 0 {
                    uri.push('/');
                }
                uri.push_str(TOKENS[*token as usize % TOKENS.len()]);
            }
            uri
        }
    };
    let uris = ResourceUris::new(std::path::Path::new("/srv/data")).expect("an absolute root");
    let Ok(relative) = uris.relative_path(&uri) else {
        return;
    };
    if check_relative_path(&relative).is_err() {
        return;
    }
    if let Some(segments) = model_segments(&uri) {
        assert!(
            segments.len() > 2 && segments[0] == "srv" && segments[1] == "data",
            "{uri:?} was accepted as {relative:?}, but it resolves to /{}",
            segments.join("/")
        );
    } else {
        panic!("{uri:?} is no file URI, yet was accepted as {relative:?}");
    }
    let listed = uris.uri_of(&relative);
    assert_eq!(
        uris.relative_path(&listed).as_deref(),
        Ok(relative.as_str()),
        "{relative:?} listed as {listed:?} does not name itself again"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_resolves_dot_segments_and_both_separators() {
        let resolved = |uri: &str| model_segments(uri).map(|s| s.join("/"));
        assert_eq!(
            resolved("file:///srv/data/a/../b").as_deref(),
            Some("srv/data/b")
        );
        assert_eq!(
            resolved("file:///srv/data/%2e%2e/x").as_deref(),
            Some("srv/x")
        );
        assert_eq!(
            resolved("file:///srv/data\\..\\x").as_deref(),
            Some("srv/x")
        );
        assert_eq!(
            resolved("file://localhost/srv/data/x?y/../..").as_deref(),
            Some("srv/data/x")
        );
        assert_eq!(resolved("http://x/srv"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// Random inputs, on stable Rust: the oracle holds for every URI they build.
        #[test]
        fn random_inputs_keep_the_promise(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96)) {
            check(&data);
        }
    }
}
