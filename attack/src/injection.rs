//! SQL and shell injection fragments, alone or spliced into a value a validator accepts.
//!
//! The SQL fragments close a string or a number and add a clause (`OR 1=1`, `UNION SELECT`,
//! a second statement, a comment that cuts the rest); the shell fragments end the command and
//! run [`SHELL_CANARY_COMMAND`] (or a caller's command) through every separator and
//! substitution `sh` knows. A fragment spliced into a base value keeps the base recognisable,
//! so a validator that only checks a prefix or a pattern match on part of the value is tested
//! too.
//!
//! Cost: string formatting only. The oracle is the caller's: a row it must not see, the canary
//! in a command's output, a file the proof command creates.

/// Ways out of an SQL literal or number, each followed by a clause that changes the result.
pub const SQL_FRAGMENTS: &[&str] = &[
    "' OR '1'='1",
    "' OR 1=1 --",
    "\" OR \"1\"=\"1",
    "1 OR 1=1",
    "1) OR (1=1",
    "' UNION SELECT name, sql FROM sqlite_master --",
    "' UNION SELECT NULL, NULL, NULL --",
    "'; DROP TABLE users; --",
    "1; SELECT 1",
    "' AND 1=0 UNION SELECT 1 --",
    "'/**/OR/**/1=1/**/--",
    "' || (SELECT 1) || '",
    "%' OR 1=1 --",
    "admin'--",
    "1' ORDER BY 99 --",
];

/// A harmless command whose output a test can look for: it prints a word no input contains.
pub const SHELL_CANARY_COMMAND: &str = "echo MCP_ATTACK_SHELL_CANARY";

/// The word [`SHELL_CANARY_COMMAND`] prints.
pub const SHELL_CANARY: &str = "MCP_ATTACK_SHELL_CANARY";

/// Ways to run `command` after or inside a value passed to a shell.
pub fn shell_fragments_with(command: &str) -> Vec<String> {
    let c = command;
    let spaced = command.replace(' ', "${IFS}");
    vec![
        format!("; {c}"),
        format!("| {c}"),
        format!("|| {c}"),
        format!("&& {c}"),
        format!("& {c}"),
        format!("$({c})"),
        format!("`{c}`"),
        format!("\n{c}"),
        format!("'; {c}; '"),
        format!("\"; {c}; \""),
        format!(";{spaced}"),
        format!("$({spaced})"),
    ]
}

/// `fragment` appended to `base`, and put in its middle.
pub fn splice(base: &str, fragment: &str) -> Vec<String> {
    let middle = base
        .char_indices()
        .nth(base.chars().count() / 2)
        .map_or(base.len(), |(i, _)| i);
    let mut spliced = vec![
        format!("{base}{fragment}"),
        format!("{}{fragment}{}", &base[..middle], &base[middle..]),
    ];
    spliced.dedup();
    spliced
}

#[cfg(feature = "proptest")]
pub use strategies::*;

#[cfg(feature = "proptest")]
mod strategies {
    use super::*;
    use proptest::prelude::*;

    /// The [`SQL_FRAGMENTS`], alone.
    pub fn sql_fragments() -> BoxedStrategy<String> {
        proptest::sample::select(
            SQL_FRAGMENTS
                .iter()
                .map(|f| (*f).to_owned())
                .collect::<Vec<_>>(),
        )
        .boxed()
    }

    /// The [`SQL_FRAGMENTS`] spliced into `base` (a value the validator accepts).
    pub fn sql_fragments_around(base: &str) -> BoxedStrategy<String> {
        let values: Vec<String> = SQL_FRAGMENTS.iter().flat_map(|f| splice(base, f)).collect();
        proptest::sample::select(values).boxed()
    }

    /// [`shell_fragments_with`] the [`SHELL_CANARY_COMMAND`].
    pub fn shell_fragments() -> BoxedStrategy<String> {
        proptest::sample::select(shell_fragments_with(SHELL_CANARY_COMMAND)).boxed()
    }

    /// The shell fragments running `command`, spliced into `base`.
    pub fn shell_fragments_around(base: &str, command: &str) -> BoxedStrategy<String> {
        let values: Vec<String> = shell_fragments_with(command)
            .iter()
            .flat_map(|f| splice(base, f))
            .collect();
        proptest::sample::select(values).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each fragment runs its command in at least one of the places a value lands in a shell
    /// line: bare (after a command that succeeds or fails), in single quotes, in double quotes.
    #[test]
    fn every_shell_fragment_runs_its_command_in_sh() {
        let dir = tempfile::tempdir().unwrap();
        let proof = dir.path().join("proof");
        let command = format!("touch {}", proof.display());
        for fragment in shell_fragments_with(&command) {
            let ran = ["true X", "false X", "true 'X'", "true \"X\""]
                .iter()
                .any(|line| {
                    let _ = std::fs::remove_file(&proof);
                    let script = line.replace('X', &fragment);
                    std::process::Command::new("sh")
                        .arg("-c")
                        .arg(&script)
                        .output()
                        .unwrap();
                    proof.exists()
                });
            assert!(ran, "{fragment:?} ran nowhere");
        }
    }

    #[test]
    fn splicing_keeps_the_base_around_the_fragment() {
        assert_eq!(splice("abcd", "X"), vec!["abcdX", "abXcd"]);
        assert_eq!(splice("", "X"), vec!["X"]);
        assert_eq!(splice("é", "X"), vec!["éX", "Xé"]);
    }
}
