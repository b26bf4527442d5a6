//! The little a journal needs from a database, so that the journal's statements and logic are
//! written once for SQLite and PostgreSQL. Statements are written with PostgreSQL's `$1`
//! placeholders and `now()`; the SQLite side rewrites them. What really differs between the
//! two (locking, timestamps, the schema) is a method of [`Db`].

use super::JournalError;

/// A parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    Int(i64),
    Text(&'a str),
}

/// A column of a result row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cell {
    Int(i64),
    Text(String),
    Null,
}

impl Cell {
    pub(crate) fn int(&self) -> Result<i64, JournalError> {
        match self {
            Cell::Int(i) => Ok(*i),
            other => Err(JournalError::Column {
                expected: "an integer",
                found: format!("{other:?}"),
            }),
        }
    }

    pub(crate) fn text(self) -> Result<String, JournalError> {
        match self {
            Cell::Text(t) => Ok(t),
            other => Err(JournalError::Column {
                expected: "text",
                found: format!("{other:?}"),
            }),
        }
    }

    pub(crate) fn opt_text(self) -> Result<Option<String>, JournalError> {
        match self {
            Cell::Null => Ok(None),
            c => c.text().map(Some),
        }
    }
}

/// What a write transaction is for: each database locks its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Adding a batch of holders: one station at a time.
    AddHolders,
    /// Claiming a pending holder.
    Claim,
    /// Extending the audit chain: one writer at a time.
    Audit,
}

/// A database connection as the journal uses it.
pub(crate) trait Db {
    /// Begins a write transaction for `intent`.
    fn begin(&mut self, intent: Intent) -> Result<(), JournalError>;
    fn commit(&mut self) -> Result<(), JournalError>;
    fn rollback(&mut self) -> Result<(), JournalError>;
    /// Runs a statement, returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, JournalError>;
    /// Runs a query, returns its rows.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Cell>>, JournalError>;
    /// `FOR UPDATE SKIP LOCKED` where the database has it (a claim by one station must not
    /// wait for another's).
    fn skip_locked(&self) -> &'static str;
    /// The current time as ISO 8601 UTC with milliseconds, from the database.
    fn timestamp(&mut self) -> Result<String, JournalError>;
}

/// Runs `f` in a write transaction: committed when it returns `Ok`, rolled back otherwise.
pub(crate) fn in_transaction<D: Db + ?Sized, T>(
    db: &mut D,
    intent: Intent,
    f: impl FnOnce(&mut D) -> Result<T, JournalError>,
) -> Result<T, JournalError> {
    db.begin(intent)?;
    match f(db) {
        Ok(v) => {
            db.commit()?;
            Ok(v)
        }
        Err(e) => {
            // The error that made us roll back says more than a failed rollback.
            let _ = db.rollback();
            Err(e)
        }
    }
}
