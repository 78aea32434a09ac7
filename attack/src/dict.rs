//! The payload vocabularies in libFuzzer's dictionary format (`"token"` per line), for
//! `cargo fuzz run TARGET -- -dict=FILE`.
//!
//! The files live in this crate's `dict/` directory; [`write_all`] copies them out for a fuzz
//! crate that wants them on disk. Each line is a quoted token with libFuzzer's escapes (`\\`,
//! `\"`, `\xNN`); a test checks every line parses.

use std::io;
use std::path::{Path, PathBuf};

/// Path traversal tokens: climbs, encodings, separators, link names of [`crate::PathTree`].
pub const TRAVERSAL: &str = include_str!("../dict/traversal.dict");
/// URL tokens: schemes, special addresses and their forms, userinfo and IPv6 brackets.
pub const URL: &str = include_str!("../dict/url.dict");
/// SQL tokens: quotes, comments, UNION, SQLite's catalog and functions.
pub const SQL: &str = include_str!("../dict/sql.dict");
/// Shell tokens: separators, substitutions, `$IFS`.
pub const SHELL: &str = include_str!("../dict/shell.dict");
/// JSON-RPC and MCP tokens: members, method names, ids, number forms.
pub const JSONRPC: &str = include_str!("../dict/jsonrpc.dict");

/// Every dictionary, by the file name it is written under.
pub const ALL: &[(&str, &str)] = &[
    ("traversal.dict", TRAVERSAL),
    ("url.dict", URL),
    ("sql.dict", SQL),
    ("shell.dict", SHELL),
    ("jsonrpc.dict", JSONRPC),
];

/// Writes every dictionary into `dir` (created if missing) and returns the paths written.
pub fn write_all(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    ALL.iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        })
        .collect()
}

/// The tokens of a dictionary, unescaped as libFuzzer reads them; an error names the first
/// line that is not a quoted token.
pub fn tokens(dictionary: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut tokens = Vec::new();
    for (number, line) in dictionary.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let quoted = line
            .split_once('"')
            .map(|(_, rest)| rest)
            .and_then(|rest| rest.strip_suffix('"'))
            .ok_or_else(|| format!("line {}: {line:?} is not a quoted token", number + 1))?;
        let mut token = Vec::new();
        let mut bytes = quoted.bytes();
        while let Some(byte) = bytes.next() {
            if byte != b'\\' {
                token.push(byte);
                continue;
            }
            match bytes.next() {
                Some(b'x') => {
                    let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                    let value = std::str::from_utf8(&hex)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| format!("line {}: bad \\x escape", number + 1))?;
                    token.push(value);
                }
                Some(escaped @ (b'\\' | b'"')) => token.push(escaped),
                _ => return Err(format!("line {}: bad escape in {line:?}", number + 1)),
            }
        }
        tokens.push(token);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dictionary_parses_and_is_not_empty() {
        for (name, text) in ALL {
            let tokens = tokens(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(tokens.len() >= 10, "{name}");
        }
        assert!(tokens(TRAVERSAL).unwrap().contains(&b"\x00".to_vec()));
        assert!(tokens("no quotes").is_err());
    }

    #[test]
    fn write_all_writes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(&dir.path().join("dict")).unwrap();
        assert_eq!(written.len(), ALL.len());
        assert_eq!(std::fs::read_to_string(&written[0]).unwrap(), TRAVERSAL);
    }
}
