//! The attack payloads and oracles of `mcp-harness`, for your own validators.
//!
//! `mcp-harness` attacks a running MCP server from outside. This crate hands the same
//! payloads, and the oracles that decide whether one got through, to the unit tests and fuzz
//! targets of the validators inside a server: a path check, a URL allowlist, a query builder,
//! a command runner.
//!
//! - Payloads: [`paths`] (traversal in every encoding), [`urls`] (special addresses in every
//!   form, userinfo and fragment tricks), [`injection`] (SQL and shell fragments), as plain
//!   lists and, with the default `proptest` feature, as proptest strategies:
//!   [`traversal_paths`], [`ssrf_urls`], [`sql_fragments`], [`shell_fragments`], each with an
//!   `_around` form that builds on a value your validator accepts.
//! - Oracles: [`PathTree`], a real temporary tree with symlinks out and a `root_evil` sibling,
//!   which says whether a read revealed its canary, a returned path resolves outside the root,
//!   or anything outside changed; [`AcceptedUrlOracle`], which judges a URL your validator
//!   accepted against the IANA special-address tables and your allowlist.
//! - Dictionaries in libFuzzer format: [`dict`].
//!
//! A path validator under proptest, in five lines:
//!
//! ```
//! # fn my_safe_join(root: &std::path::Path, p: &str) -> Option<std::path::PathBuf> {
//! #     (!p.contains("..") && !p.contains('%') && !p.starts_with('/') && !p.contains('\\')
//! #         && !p.contains('\u{ff0e}') && !p.contains("link")).then(|| root.join(p))
//! # }
//! use mcp_attack::{PathTree, traversal_paths_around};
//! let tree = PathTree::new().unwrap();
//! proptest::proptest!(|(path in traversal_paths_around(tree.targets()))| {
//!     if let Some(joined) = my_safe_join(&tree.root(), &path) {
//!         proptest::prop_assert!(tree.escapes(&joined).is_none(), "{path} escaped");
//!     }
//! });
//! ```
//!
//! A URL allowlist in a cargo-fuzz target (`fuzz_target!(|data: &[u8]| { ... })`), with
//! `-dict=` pointing at a file [`dict::write_all`] wrote:
//!
//! ```
//! # fn my_url_check(u: &str) -> Result<(), ()> { if u == "https://example.com/" { Ok(()) } else { Err(()) } }
//! # let data: &[u8] = b"https://example.com/";
//! let oracle = mcp_attack::AcceptedUrlOracle::new(["example.com"]);
//! let raw = String::from_utf8_lossy(data);
//! if my_url_check(&raw).is_ok() {
//!     oracle.judge(&raw).expect("the check accepted a URL a safe fetch refuses");
//! }
//! ```
//!
//! Cost: the payloads are built from static tables when a strategy is made (microseconds);
//! [`PathTree::new`] makes a temporary directory of about twenty entries, so build one per test
//! and reuse it across cases.

pub mod dict;
pub mod injection;
pub mod oracle;
pub mod paths;
pub mod urls;

pub use oracle::{AcceptedUrlOracle, PathTree};

#[cfg(feature = "proptest")]
pub use injection::{shell_fragments, shell_fragments_around, sql_fragments, sql_fragments_around};
#[cfg(feature = "proptest")]
pub use paths::{traversal_paths, traversal_paths_around};
#[cfg(feature = "proptest")]
pub use urls::{ssrf_urls, ssrf_urls_around};
