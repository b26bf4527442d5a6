//! The little a journal needs from a database, so that the journal's statements and logic are
//! written once for SQLite and PostgreSQL. Statements are written with PostgreSQL's `$1`
//! placeholders and `now()`; the SQLite side rewrites them. What really differs between the
//! two (locking, timestamps, the schema) is a method of [`Db`].

use super::JournalError;

/// The journal's tables, once: `types` names the database's column types for the row id, a
/// 64-bit integer and the update time with its default. The append-only triggers of the audit
/// table are each database's own.
///
/// A card id is unique among the rows that hold a card on its way or issued
/// (`holders_card_live`); a failed or reviewed row keeps its card id for the record without
/// blocking the card, which a later claim may personalise for another holder.
pub(crate) fn tables(types: &ColumnTypes) -> String {
    let ColumnTypes {
        row_id,
        int,
        updated,
    } = types;
    format!(
        "CREATE TABLE IF NOT EXISTS holders (
            id {row_id},
            batch TEXT NOT NULL,
            line {int} NOT NULL,
            card_number TEXT NOT NULL UNIQUE,
            ssn TEXT NOT NULL UNIQUE,
            holder TEXT NOT NULL,
            state TEXT NOT NULL,
            station TEXT,
            reader TEXT,
            card_id TEXT,
            reason TEXT,
            updated {updated}
        );
        CREATE INDEX IF NOT EXISTS holders_state ON holders(state);
        CREATE INDEX IF NOT EXISTS holders_card ON holders(card_id);
        CREATE UNIQUE INDEX IF NOT EXISTS holders_card_live ON holders(card_id)
            WHERE card_id IS NOT NULL AND state NOT IN ('pending', 'failed', 'review');
        CREATE TABLE IF NOT EXISTS spoiled (
            card_id TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            operator TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS stations (
            name TEXT PRIMARY KEY,
            heartbeat {int} NOT NULL,
            instance TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS audit (
            seq {int} PRIMARY KEY,
            at TEXT NOT NULL,
            station TEXT NOT NULL,
            actor TEXT NOT NULL,
            event TEXT NOT NULL,
            holder_id {int},
            state TEXT,
            card_id TEXT,
            detail TEXT NOT NULL,
            prev TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS audit_card ON audit(card_id);"
    )
}

/// A database's column types for [`tables`].
pub(crate) struct ColumnTypes {
    pub row_id: &'static str,
    pub int: &'static str,
    pub updated: &'static str,
}

/// A parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    Int(i64),
    Text(&'a str),
    OptInt(Option<i64>),
    OptText(Option<&'a str>),
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
    /// A holder's state change with its audit entry, or an audit entry alone: one writer of
    /// the audit chain at a time.
    Audit,
    /// Reading several tables as of one moment (verifying the audit log); writes nothing.
    Read,
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
    /// Runs a query and hands each row to `each` as it comes, never holding every row.
    fn query_each(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(Vec<Cell>) -> Result<(), JournalError>,
    ) -> Result<(), JournalError>;
    /// `FOR UPDATE SKIP LOCKED` where the database has it (a claim by one station must not
    /// wait for another's).
    fn skip_locked(&self) -> &'static str;
    /// The current time as ISO 8601 UTC with milliseconds, from the database.
    fn timestamp(&mut self) -> Result<String, JournalError>;
    /// The current time in milliseconds since 1970, from the database's clock (leases of
    /// stations sharing one journal are compared on one clock).
    fn epoch_millis(&mut self) -> Result<i64, JournalError>;
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
