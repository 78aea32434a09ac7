//! Read-only SQL with bound parameters only, behind an SQLite authorizer.
//!
//! The connection is opened `SQLITE_OPEN_READ_ONLY`, and an authorizer is installed that allows
//! `SELECT`, reads of the allowed tables and a short list of pure functions, and denies
//! everything else: writes, `ATTACH`, `PRAGMA`, schema changes, transactions, and reads of
//! any other table (including `sqlite_master`). Queries are fixed statements; user values are
//! only ever bound parameters, never text spliced into SQL (the seed's keyword blocklist
//! rejected `DROP` in a name while letting `' OR 1=1 --` through).
//!
//! Cost: a prepared-statement cache hit plus the query itself; the authorizer runs once per
//! statement preparation, not per row. A progress handler interrupts a statement after
//! `time_limit`; rows beyond `max_rows` are never read.
//!
//! Failure: [`DbError`] separates "the query was refused" from "the database failed"; neither
//! carries SQL text or the database path, so both are safe to map to a public message.

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, OpenFlags, params};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a query was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the query was refused by the database policy")]
    Denied,
    #[error("the query took longer than the time limit")]
    TimedOut,
    #[error("database error")]
    Sqlite(#[source] rusqlite::Error),
}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> Self {
        // A denial at prepare time surfaces as a plain SQLITE_ERROR whose message says so.
        let denied_at_prepare = matches!(&error, rusqlite::Error::SqlInputError { msg, .. } if msg.starts_with("not authorized"))
            || matches!(&error, rusqlite::Error::SqliteFailure(_, Some(msg)) if msg.starts_with("not authorized"));
        if denied_at_prepare {
            return DbError::Denied;
        }
        match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) => DbError::Denied,
            Some(rusqlite::ErrorCode::OperationInterrupted) => DbError::TimedOut,
            _ => DbError::Sqlite(error),
        }
    }
}

/// One row of the demo `records` table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    pub id: i64,
    pub name: String,
    pub category: String,
}

/// A read-only connection to the records database.
pub struct ReadOnlyDb {
    connection: Mutex<Connection>,
    pub max_rows: usize,
    pub time_limit: Duration,
}

const ALLOWED_TABLES: &[&str] = &["records"];
const ALLOWED_FUNCTIONS: &[&str] = &[
    "instr", "lower", "upper", "length", "substr", "coalesce", "count",
];

fn authorize(context: AuthContext<'_>) -> Authorization {
    match context.action {
        AuthAction::Select => Authorization::Allow,
        AuthAction::Read { table_name, .. } if ALLOWED_TABLES.contains(&table_name) => {
            Authorization::Allow
        }
        AuthAction::Function { function_name }
            if ALLOWED_FUNCTIONS.contains(&function_name.to_ascii_lowercase().as_str()) =>
        {
            Authorization::Allow
        }
        _ => Authorization::Deny,
    }
}

impl ReadOnlyDb {
    /// Opens an existing database read-only and installs the authorizer.
    pub fn open(path: &Path, max_rows: usize, time_limit: Duration) -> Result<Self, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let connection = Connection::open_with_flags(path, flags)?;
        // Disable extension loading and limit what a statement may grow to.
        connection.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        connection.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, 1_000_000)?;
        connection.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_SQL_LENGTH, 10_000)?;
        connection.authorizer(Some(authorize));
        Ok(Self {
            connection: Mutex::new(connection),
            max_rows,
            time_limit,
        })
    }

    /// Creates the demo database at `path` if it does not exist (a separate, short-lived
    /// read-write connection; the serving connection stays read-only).
    pub fn create_demo(path: &Path) -> Result<(), DbError> {
        if path.exists() {
            return Ok(());
        }
        let connection = Connection::open(path)?;
        connection.execute_batch(
            "CREATE TABLE records (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL);
             CREATE TABLE secrets (id INTEGER PRIMARY KEY, value TEXT NOT NULL);",
        )?;
        let demo = [
            ("alpha report", "reports"),
            ("beta report", "reports"),
            ("gamma notes", "notes"),
            ("delta notes", "notes"),
            ("epsilon budget", "finance"),
            ("zeta budget", "finance"),
        ];
        for (name, category) in demo {
            connection.execute(
                "INSERT INTO records (name, category) VALUES (?1, ?2)",
                params![name, category],
            )?;
        }
        // A table the authorizer must never let a query read.
        connection.execute("INSERT INTO secrets (value) VALUES ('not-for-clients')", [])?;
        Ok(())
    }

    /// Records whose name contains `needle` (a literal, case-sensitive substring: no character
    /// of it is special), optionally in one category, at most `limit` (capped at `max_rows`).
    pub fn search(
        &self,
        needle: &str,
        category: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, DbError> {
        let limit = limit.min(self.max_rows);
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + self.time_limit;
        connection.progress_handler(1000, Some(move || Instant::now() > deadline));
        let result = (|| {
            let mut statement = connection.prepare_cached(
                "SELECT id, name, category FROM records \
                 WHERE instr(name, ?1) > 0 AND (?2 IS NULL OR category = ?2) \
                 ORDER BY id LIMIT ?3",
            )?;
            let rows = statement.query_map(params![needle, category, limit as i64], |row| {
                Ok(Record {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    category: row.get(2)?,
                })
            })?;
            rows.take(limit).collect::<Result<Vec<_>, _>>()
        })();
        connection.progress_handler(0, None::<fn() -> bool>);
        result.map_err(DbError::from)
    }

    /// Runs arbitrary SQL through the same connection, under the same time limit, and returns
    /// its first 10,000 rows with each column as text (`NULL` and blobs as empty strings): only for tests
    /// and fuzzing of the authorizer.
    #[doc(hidden)]
    pub fn execute_raw_for_tests(&self, sql: &str) -> Result<Vec<Vec<String>>, DbError> {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + self.time_limit;
        connection.progress_handler(1000, Some(move || Instant::now() > deadline));
        let result = (|| {
            let mut statement = connection.prepare(sql)?;
            let columns = statement.column_count();
            let mut rows = statement.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                if out.len() == 10_000 {
                    break;
                }
                out.push(
                    (0..columns)
                        .map(|i| match row.get_ref(i) {
                            Ok(rusqlite::types::ValueRef::Text(text)) => {
                                String::from_utf8_lossy(text).into_owned()
                            }
                            Ok(rusqlite::types::ValueRef::Integer(n)) => n.to_string(),
                            Ok(rusqlite::types::ValueRef::Real(x)) => x.to_string(),
                            _ => String::new(),
                        })
                        .collect(),
                );
            }
            Ok(out)
        })();
        connection.progress_handler(0, None::<fn() -> bool>);
        result.map_err(|e: rusqlite::Error| DbError::from(e))
    }

    /// Number of rows in `records` (for `admin_stats`).
    pub fn count(&self) -> Result<i64, DbError> {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        Ok(connection.query_row("SELECT count(*) FROM records", [], |row| row.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn db() -> (tempfile::TempDir, ReadOnlyDb) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.sqlite");
        ReadOnlyDb::create_demo(&path).unwrap();
        (
            dir,
            ReadOnlyDb::open(&path, 3, Duration::from_secs(1)).unwrap(),
        )
    }

    #[test]
    fn search_binds_values_and_caps_rows() {
        let (_d, db) = db();
        assert_eq!(db.search("report", None, 10).unwrap().len(), 2);
        assert_eq!(
            db.search("", None, 10).unwrap().len(),
            3,
            "max_rows caps the limit"
        );
        assert_eq!(db.search("budget", Some("finance"), 10).unwrap().len(), 2);
        assert!(db.search("' OR 1=1 --", None, 10).unwrap().is_empty());
        assert!(
            db.search("%", None, 10).unwrap().is_empty(),
            "wildcards are literal"
        );
        assert!(
            db.search("x' UNION SELECT 1, value, 'x' FROM secrets --", None, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_authorizer_denies_everything_but_reads_of_records() {
        let (_d, db) = db();
        assert_eq!(
            db.execute_raw_for_tests("SELECT name FROM records")
                .unwrap()
                .len(),
            6
        );
        for sql in [
            "SELECT value FROM secrets",
            "SELECT name FROM sqlite_master",
            "PRAGMA table_info(records)",
            "ATTACH DATABASE ':memory:' AS other",
            "DELETE FROM records",
            "INSERT INTO records (name, category) VALUES ('a','b')",
            "DROP TABLE records",
            "CREATE TABLE t (x)",
            "SELECT load_extension('x')",
            "BEGIN",
        ] {
            let result = db.execute_raw_for_tests(sql);
            assert!(result.is_err(), "{sql} must be refused");
        }
        assert!(matches!(
            db.execute_raw_for_tests("SELECT value FROM secrets"),
            Err(DbError::Denied)
        ));
        assert_eq!(db.count().unwrap(), 6);
    }

    proptest! {
        /// Whatever the needle, the search returns only rows whose name contains it literally.
        #[test]
        fn search_returns_only_literal_matches(needle in "[ -~]{0,24}") {
            let (_d, db) = db();
            for record in db.search(&needle, None, 10).unwrap() {
                prop_assert!(record.name.contains(&needle), "{:?} does not contain {:?}", record.name, needle);
            }
        }
    }
}
