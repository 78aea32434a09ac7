//! Resource URIs of the sandbox: which `file://` URI names which sandbox file, and back.
//!
//! The server lists its sandbox files as `file://` URIs under the sandbox directory's own URI
//! (`file:///srv/data/notes.txt`) and offers the template `file:///srv/data/{+path}`. A
//! `resources/read` URI is trusted for nothing: it is parsed as a WHATWG URL (the url crate,
//! which resolves `.` and `..` segments and their percent-encoded forms before anything else
//! sees them), must be a `file:` URL with no host (or `localhost`), no query and no fragment,
//! and its path segments must begin with the sandbox's segments, compared whole and decoded
//! (so `/srv/data_evil/x` is not under `/srv/data`, the seed's `startswith` mistake). What
//! remains is handed to the sandbox as a relative path, which applies its own checks (no `..`,
//! no absolute path, no symlink out, by handle): this module only decides which file a URI
//! *names*; [`crate::guard::sandbox`] decides whether it may be opened.
//!
//! Cost: one URL parse and a segment comparison. Failure: [`UriError`], never a panic.

use percent_encoding::percent_decode_str;
use url::Url;

/// Why a URI names no sandbox file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("the URI is not a valid URL")]
    Unparsable,
    #[error("the URI's scheme is {0:?}, not file")]
    NotAFileUri(String),
    #[error("a file URI with a host, a query or a fragment")]
    NotLocal,
    #[error("the URI is outside the sandbox")]
    OutsideSandbox,
    #[error("a path segment is not UTF-8 once decoded")]
    NotUtf8,
    #[error("an empty path segment (`//`) inside the sandbox's path")]
    EmptySegment,
    #[error("a path segment decodes to a separator or NUL (`%2F`, `%5C`, `%00`)")]
    EncodedSeparator,
}

/// The sandbox's URIs, from the sandbox directory's absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceUris {
    /// `file:///srv/data/`, always with the trailing slash.
    root: Url,
    /// The root's path segments, decoded, without the empty last one.
    root_segments: Vec<String>,
}

impl ResourceUris {
    /// The URIs of the sandbox at `root`, an absolute directory path; `None` for a relative one.
    pub fn new(root: &std::path::Path) -> Option<Self> {
        let root = Url::from_directory_path(root).ok()?;
        let root_segments = decoded_segments(&root).ok()?;
        Some(Self {
            root,
            root_segments,
        })
    }

    /// The sandbox directory's URI, `file:///srv/data/`.
    pub fn root(&self) -> &str {
        self.root.as_str()
    }

    /// The template over every sandbox file: the root's URI and `{+path}` (reserved expansion,
    /// so a client may put `/` in the path).
    pub fn template(&self) -> String {
        format!("{}{{+path}}", self.root)
    }

    /// The URI of the sandbox file at `relative` (`/`-separated), percent-encoded as URLs are.
    pub fn uri_of(&self, relative: &str) -> String {
        self.root
            .join(relative)
            .map(String::from)
            .unwrap_or_else(|_| self.root.to_string())
    }

    /// The sandbox-relative path `uri` names. The sandbox still checks the path it returns.
    pub fn relative_path(&self, uri: &str) -> Result<String, UriError> {
        let url = Url::parse(uri).map_err(|_| UriError::Unparsable)?;
        if url.scheme() != "file" {
            return Err(UriError::NotAFileUri(url.scheme().to_owned()));
        }
        let local_host = url
            .host_str()
            .is_none_or(|h| h.eq_ignore_ascii_case("localhost"));
        if !local_host || url.query().is_some() || url.fragment().is_some() {
            return Err(UriError::NotLocal);
        }
        let segments = decoded_segments(&url)?;
        let rest = segments
            .strip_prefix(self.root_segments.as_slice())
            .ok_or(UriError::OutsideSandbox)?;
        if rest.is_empty() {
            return Err(UriError::OutsideSandbox);
        }
        // One URI per file: `a//b` and `a/` would name what `a/b` and `a` name (or an absolute
        // path, for `root//etc`), so they name nothing.
        if rest.iter().any(String::is_empty) {
            return Err(UriError::EmptySegment);
        }
        // A segment is one path component: an encoded separator would make it several.
        if rest.iter().any(|s| s.contains(['/', '\\', '\0'])) {
            return Err(UriError::EncodedSeparator);
        }
        Ok(rest.join("/"))
    }
}

/// The path segments of `url`, percent-decoded, without a trailing empty segment.
fn decoded_segments(url: &Url) -> Result<Vec<String>, UriError> {
    let mut segments: Vec<String> = url
        .path_segments()
        .ok_or(UriError::NotLocal)?
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|d| d.into_owned())
                .map_err(|_| UriError::NotUtf8)
        })
        .collect::<Result<_, _>>()?;
    if segments.last().is_some_and(String::is_empty) {
        segments.pop();
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn uris() -> ResourceUris {
        ResourceUris::new(std::path::Path::new("/srv/data")).unwrap()
    }

    #[test]
    fn a_listed_uri_names_its_file_and_back() {
        let uris = uris();
        assert_eq!(uris.root(), "file:///srv/data/");
        assert_eq!(uris.template(), "file:///srv/data/{+path}");
        let uri = uris.uri_of("docs/read me.txt");
        assert_eq!(uri, "file:///srv/data/docs/read%20me.txt");
        assert_eq!(uris.relative_path(&uri).unwrap(), "docs/read me.txt");
        assert_eq!(
            uris.relative_path("file://localhost/srv/data/notes.txt")
                .unwrap(),
            "notes.txt"
        );
    }

    #[test]
    fn uris_outside_the_sandbox_name_nothing() {
        let uris = uris();
        for uri in [
            "file:///srv/data_evil/secret.txt",
            "file:///srv/data/../data_evil/secret.txt",
            "file:///srv/data/%2e%2e/data_evil/secret.txt",
            "file:///srv/data/.%2E/.%2e/etc/passwd",
            "file:///etc/passwd",
            "file:///srv/data",
            "file:///srv/data/",
            "file:///srv",
        ] {
            assert_eq!(
                uris.relative_path(uri),
                Err(UriError::OutsideSandbox),
                "{uri}"
            );
        }
        assert_eq!(
            uris.relative_path("file://evil.example/srv/data/x"),
            Err(UriError::NotLocal)
        );
        assert_eq!(
            uris.relative_path("file:///srv/data/x?y"),
            Err(UriError::NotLocal)
        );
        assert_eq!(
            uris.relative_path("http://127.0.0.1/srv/data/x"),
            Err(UriError::NotAFileUri("http".into()))
        );
        assert_eq!(uris.relative_path("no scheme"), Err(UriError::Unparsable));
    }

    #[test]
    fn a_separator_inside_a_segment_or_an_empty_segment_names_nothing() {
        // Plain `..` segments are resolved by the url crate first; an encoded separator would
        // make one segment several, and an empty one (a doubled slash, an absolute remainder)
        // would name what another URI names: both name nothing.
        let uris = uris();
        for uri in [
            "file:///srv/data/a%2F..%2F..%2Fx",
            "file:///srv/data/a%5Cb",
            "file:///srv/data/a%00",
        ] {
            assert_eq!(
                uris.relative_path(uri),
                Err(UriError::EncodedSeparator),
                "{uri}"
            );
        }
        for uri in [
            "file:///srv/data//etc/passwd",
            "file:///srv/data/a//b",
            "file:///srv/data/dir//",
        ] {
            assert_eq!(
                uris.relative_path(uri),
                Err(UriError::EmptySegment),
                "{uri}"
            );
        }
    }

    proptest! {
        /// Whatever the URI, a path it yields is under the root once the sandbox's lexical
        /// check accepts it: never an absolute path, never a `..` component.
        #[test]
        fn an_accepted_path_never_leaves_the_root(uri in "file://(localhost)?/(srv/(data(_evil)?/)?)?([a-z.%2F/]{0,20})") {
            if let Ok(rest) = uris().relative_path(&uri)
                && let Ok(path) = crate::guard::sandbox::check_relative_path(&rest)
            {
                prop_assert!(path.is_relative());
                prop_assert!(!path.components().any(|c| matches!(c, std::path::Component::ParentDir)));
            }
        }
    }
}
