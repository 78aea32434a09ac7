//! The SQL parameter path and the read-only authorizer, judged by a plain re-implementation of
//! the search and by the database file itself.
//!
//! Input: the first byte picks the mode. Search mode passes a needle, an optional category and
//! a limit to `ReadOnlyDb::search`. Raw mode runs SQL (written raw, or joined from SQL tokens:
//! `UNION`, `ATTACH`, `PRAGMA`, `secrets`, comments, quotes...) through the same connection
//! and authorizer with `execute_raw_for_tests`.
//!
//! Oracles: a search returns exactly the records whose name contains the needle as a literal
//! substring (in the category, if one was given), in id order, at most `min(limit, max_rows)`
//! of them, as computed here in Rust from the rows read once through a separate connection.
//! Raw SQL never returns the `secrets` table's value (a random canary planted per process):
//! when a reply holds it, the same SQL runs on a twin database whose secret differs, and a reply
//! that changes with the table's content came from the table (the fuzzer learns the canary from
//! comparisons and writes it as a literal; the twin tells the two apart). Afterwards the database
//! file is byte for byte what it was and its directory holds no new file (no write, no ATTACH).

use arbitrary::{Arbitrary, Unstructured};
use reference_server::guard::db::ReadOnlyDb;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

const MAX_ROWS: usize = 4;

/// A demo database opened through the guard, with its own random secret.
struct Planted {
    file: PathBuf,
    original: Vec<u8>,
    secret: String,
    db: ReadOnlyDb,
}

struct Fixture {
    _dir: tempfile::TempDir,
    /// The database under test and its twin, which differs only in the secret.
    planted: Planted,
    twin: Planted,
    directory: PathBuf,
    /// `(id, name, category)` in id order, read without the guard.
    records: Vec<(i64, String, String)>,
}

fn plant(file: PathBuf, salt: u8) -> Planted {
    ReadOnlyDb::create_demo(&file).expect("the demo database");
    let secret = {
        use std::hash::{BuildHasher, RandomState};
        format!("canary-{:016x}", RandomState::new().hash_one(salt))
    };
    rusqlite::Connection::open(&file)
        .expect("a plain connection")
        .execute("UPDATE secrets SET value = ?1", [&secret])
        .expect("the secret is planted");
    let original = std::fs::read(&file).expect("the database file");
    let db =
        ReadOnlyDb::open(&file, MAX_ROWS, Duration::from_millis(200)).expect("opens read-only");
    Planted {
        file,
        original,
        secret,
        db,
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let planted = plant(dir.path().join("demo.sqlite"), 0);
        let twin = plant(dir.path().join("twin.sqlite"), 1);
        let records = {
            let plain = rusqlite::Connection::open(&planted.file).expect("a plain connection");
            let mut statement = plain
                .prepare("SELECT id, name, category FROM records ORDER BY id")
                .expect("the records query");
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .expect("the records")
                .collect::<Result<Vec<_>, _>>()
                .expect("the records")
        };
        Fixture {
            directory: dir.path().to_path_buf(),
            planted,
            twin,
            records,
            _dir: dir,
        }
    })
}

#[derive(Arbitrary, Debug)]
struct Search {
    needle: String,
    category: Option<String>,
    limit: u8,
}

#[derive(Arbitrary, Debug)]
enum Raw {
    Text(String),
    Tokens(Vec<u8>),
}

const SQL_TOKENS: &[&str] = &[
    "SELECT",
    "name",
    "value",
    "FROM",
    "records",
    "secrets",
    "sqlite_master",
    "WHERE",
    "UNION",
    "ALL",
    "ATTACH",
    "DATABASE",
    "'x.db'",
    "AS",
    "x",
    "PRAGMA",
    "writable_schema",
    "=",
    "1",
    "INSERT",
    "INTO",
    "VALUES",
    "(",
    ")",
    ",",
    "'",
    "\"",
    "--",
    "/*",
    "*/",
    ";",
    "*",
    "DELETE",
    "UPDATE",
    "SET",
    "DROP",
    "TABLE",
    "CREATE",
    "VIEW",
    "TEMP",
    "TRIGGER",
    "WITH",
    "RECURSIVE",
    "load_extension",
    "readfile",
    "writefile",
    "char(39)",
    "instr",
    "lower",
    "||",
    "?1",
    ":a",
    "VACUUM",
    "INTO",
    "main.",
    "temp.",
    "sqlite_temp_master",
    "JOIN",
    "ON",
    "LIMIT",
    "-1",
    "ORDER",
    "BY",
    "0x",
    "X'00'",
    "NULL",
    "CAST",
    "randomblob(1000000)",
    "zeroblob(1e9)",
];

pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    if mode % 2 == 0 {
        let Ok(search) = Search::arbitrary_take_rest(Unstructured::new(rest)) else {
            return;
        };
        let limit = usize::from(search.limit);
        let Ok(found) =
            fixture
                .planted
                .db
                .search(&search.needle, search.category.as_deref(), limit)
        else {
            // Only the time limit may refuse a search; the demo table is far below it.
            panic!("search {search:?} failed");
        };
        let expected: Vec<i64> = fixture
            .records
            .iter()
            .filter(|(_, name, category)| {
                name.contains(&search.needle)
                    && search
                        .category
                        .as_deref()
                        .is_none_or(|wanted| wanted == category)
            })
            .take(limit.min(MAX_ROWS))
            .map(|(id, _, _)| *id)
            .collect();
        let got: Vec<i64> = found.iter().map(|record| record.id).collect();
        assert_eq!(got, expected, "search {search:?}");
        return;
    }
    let Ok(raw) = Raw::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let sql = match raw {
        Raw::Text(text) => text,
        Raw::Tokens(tokens) => tokens
            .iter()
            .map(|&t| SQL_TOKENS[t as usize % SQL_TOKENS.len()])
            .collect::<Vec<_>>()
            .join(" "),
    };
    let holds = |rows: &[Vec<String>], secret: &str| {
        rows.iter()
            .any(|row| row.iter().any(|cell| cell.contains(secret)))
    };
    if let Ok(rows) = fixture.planted.db.execute_raw_for_tests(&sql)
        && holds(&rows, &fixture.planted.secret)
    {
        // The same SQL on the twin: a literal gives the same canary, a read of the table gives
        // the twin's.
        let twin_rows = fixture
            .twin
            .db
            .execute_raw_for_tests(&sql)
            .unwrap_or_default();
        assert!(
            holds(&twin_rows, &fixture.planted.secret),
            "{sql:?} read the secrets table: {rows:?}"
        );
    }
    for planted in [&fixture.planted, &fixture.twin] {
        let now = std::fs::read(&planted.file).expect("the database file");
        assert!(now == planted.original, "{sql:?} changed the database file");
    }
    let entries = std::fs::read_dir(&fixture.directory)
        .expect("the directory")
        .count();
    assert_eq!(entries, 2, "{sql:?} created a file beside the databases");
}
