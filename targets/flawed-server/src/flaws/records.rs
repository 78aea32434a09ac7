//! Twins of the records guard (`Guards::records`, the reference `ReadOnlyDb`): SQL built by
//! hand behind a keyword blocklist, the seed's `sanitize_sql_query`.

use super::{Flaw, Transport::Stdio};
use reference_server::guard::db::{DbError, Record};
use reference_server::guards::{Guards, Records};
use std::path::PathBuf;
use std::sync::Arc;

struct ConcatenatedSql {
    name: &'static str,
    database: PathBuf,
    blocklist: &'static [&'static str],
    reference: Arc<dyn Records>,
}

/// The seed's blocklist.
const SEED_BLOCKLIST: &[&str] = &["DROP", "DELETE", "UPDATE", "INSERT", "ALTER", "CREATE"];
/// A broader one that also stops UNION and SELECT (so only the error text shows).
const BROAD_BLOCKLIST: &[&str] = &[
    "UNION", "SELECT", "DROP", "DELETE", "UPDATE", "INSERT", "ALTER", "CREATE", "--",
];

fn concatenated(
    guards: &Guards,
    database: PathBuf,
    name: &'static str,
    blocklist: &'static [&'static str],
) -> Arc<dyn Records> {
    Arc::new(ConcatenatedSql {
        name,
        database,
        blocklist,
        reference: guards.records.clone(),
    })
}

pub const SQL_CONCAT: Flaw = Flaw {
    name: "sql-concat",
    summary: "query_records concatenates SQL behind a keyword blocklist.",
    caught: &[(Stdio, "INJ-SQL")],
    swaps: &["records"],
    harness_args: &[],
    tools: Some(|guards, context| {
        guards.records = concatenated(
            guards,
            context.database.clone(),
            "sql-concat",
            SEED_BLOCKLIST,
        );
    }),
    http: None,
};

pub const LEAK_DB_ERROR: Flaw = Flaw {
    name: "leak-db-error",
    summary: "query_records builds its SQL by hand behind a blocklist that also stops UNION and SELECT, and its failures carry the database's own error text (two guards: the error needs a query that can fail on input and a report that shows it).",
    caught: &[(Stdio, "LEAK-DB-ERROR")],
    swaps: &["records", "errors"],
    harness_args: &[],
    tools: Some(|guards, context| {
        guards.records = concatenated(
            guards,
            context.database.clone(),
            "leak-db-error",
            BROAD_BLOCKLIST,
        );
        guards.errors = super::errors::FlawedErrors::internal_text("leak-db-error");
    }),
    http: None,
};

impl Records for ConcatenatedSql {
    fn name(&self) -> &'static str {
        self.name
    }

    fn search(
        &self,
        needle: &str,
        _category: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, DbError> {
        let upper = needle.to_uppercase();
        if self.blocklist.iter().any(|keyword| upper.contains(keyword)) {
            return Err(DbError::Denied);
        }
        let connection = rusqlite::Connection::open_with_flags(
            &self.database,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .map_err(DbError::Sqlite)?;
        let sql = format!(
            "SELECT id, name, category FROM records WHERE name LIKE '%{needle}%' LIMIT {}",
            limit.min(100)
        );
        let text = |row: &rusqlite::Row, column| -> String {
            match row.get::<_, rusqlite::types::Value>(column) {
                Ok(rusqlite::types::Value::Text(text)) => text,
                Ok(rusqlite::types::Value::Integer(n)) => n.to_string(),
                Ok(other) => format!("{other:?}"),
                Err(_) => String::new(),
            }
        };
        let mut statement = connection.prepare(&sql).map_err(DbError::Sqlite)?;
        let rows = statement
            .query_map([], |row| {
                Ok(Record {
                    id: row.get::<_, i64>(0).unwrap_or_default(),
                    name: text(row, 1),
                    category: text(row, 2),
                })
            })
            .map_err(DbError::Sqlite)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(DbError::Sqlite)
    }

    fn count(&self) -> Result<i64, DbError> {
        self.reference.count()
    }
}
