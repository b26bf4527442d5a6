//! The SQLite journal (WAL), the default for a single station.

use super::db::{tables, Cell, ColumnTypes, Db, Intent, Param};
use super::JournalError;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;
use std::path::Path;

/// An SQLite journal database.
pub(crate) struct SqliteDb {
    db: Connection,
}

const TYPES: ColumnTypes = ColumnTypes {
    row_id: "INTEGER PRIMARY KEY",
    int: "INTEGER",
    updated: "TEXT NOT NULL DEFAULT (datetime('now'))",
};

const APPEND_ONLY: &str = "
    CREATE TRIGGER IF NOT EXISTS audit_append_only_u BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER IF NOT EXISTS audit_append_only_d BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;";

/// The journal's statements are written for PostgreSQL: `$N` → `?N`, `now()` →
/// `datetime('now')`.
fn dialect(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out.replace("now()", "datetime('now')")
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Int(i) => ToSqlOutput::from(*i),
            Param::Text(t) => ToSqlOutput::from(*t),
        })
    }
}

impl SqliteDb {
    /// Opens (and creates) the journal at `path`.
    pub(crate) fn open(path: &str) -> Result<Self, JournalError> {
        let db = Connection::open(Path::new(path))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL: every commit survives a crash of the station (kill -9); a power cut may
        // lose the last commits, which the resume recovers from the card in the reader.
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.execute_batch(&(tables(&TYPES) + APPEND_ONLY))?;
        Ok(Self { db })
    }
}

impl Db for SqliteDb {
    fn begin(&mut self, _intent: Intent) -> Result<(), JournalError> {
        // IMMEDIATE takes the write lock at once: two workers never both read "pending".
        Ok(self.db.execute_batch("BEGIN IMMEDIATE")?)
    }
    fn commit(&mut self) -> Result<(), JournalError> {
        Ok(self.db.execute_batch("COMMIT")?)
    }
    fn rollback(&mut self) -> Result<(), JournalError> {
        Ok(self.db.execute_batch("ROLLBACK")?)
    }
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, JournalError> {
        let mut stmt = self.db.prepare_cached(&dialect(sql))?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Cell>>, JournalError> {
        let mut stmt = self.db.prepare_cached(&dialect(sql))?;
        let n = stmt.column_count();
        let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        ValueRef::Null => Cell::Null,
                        ValueRef::Integer(v) => Cell::Int(v),
                        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Real(v) => Cell::Text(v.to_string()),
                        ValueRef::Blob(b) => Cell::Text(String::from_utf8_lossy(b).into_owned()),
                    })
                })
                .collect::<rusqlite::Result<Vec<Cell>>>()
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
    fn skip_locked(&self) -> &'static str {
        // One writer at a time (BEGIN IMMEDIATE): nothing to skip.
        ""
    }
    fn timestamp(&mut self) -> Result<String, JournalError> {
        Ok(self
            .db
            .query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
                r.get(0)
            })?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Journal, JournalError};
    use super::*;
    use crate::state::{Stage, State};
    use sscard_core::profile::holder::Holder;

    fn temp(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("sscard-{name}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn statements_are_rewritten_for_sqlite() {
        assert_eq!(
            dialect("UPDATE t SET a = $2, u = now() WHERE id = $1 AND p = '$x'"),
            "UPDATE t SET a = ?2, u = datetime('now') WHERE id = ?1 AND p = '$x'"
        );
    }

    #[test]
    fn exactly_once_by_constraint() {
        let path = temp("journal");
        let mut j = Journal::open(&format!("sqlite:{}", path.display())).unwrap();
        let h = Holder::sample();
        assert_eq!(j.add("b", &[(2, h.clone())]).unwrap(), 1);
        assert_eq!(
            j.add("b", &[(2, h.clone())]).unwrap(),
            0,
            "the same holder again is kept once"
        );
        let c = j.claim("st", "r0", "CARD1").unwrap().unwrap();
        assert!(
            j.claim("st", "r1", "CARD2").unwrap().is_none(),
            "nothing else pending"
        );
        for (from, to) in [
            (Stage::Blank, Stage::Authenticated),
            (Stage::Authenticated, Stage::KeysLoaded),
            (Stage::KeysLoaded, Stage::Written),
        ] {
            j.reached(c.id, from, to).unwrap();
        }
        assert!(
            matches!(
                j.reached(c.id, Stage::Verified, Stage::Issued),
                Err(JournalError::NotInState {
                    expected: State::Card(Stage::Verified),
                    ..
                })
            ),
            "no skipping verified"
        );
        j.reached(c.id, Stage::Written, Stage::Verified).unwrap();
        j.reached(c.id, Stage::Verified, Stage::Issued).unwrap();
        assert_eq!(j.counts().unwrap(), vec![(State::Card(Stage::Issued), 1)]);
        // The database itself refuses a second row with the same card number.
        let raw = Connection::open(&path).unwrap();
        let dup = raw.execute("INSERT INTO holders (batch, line, card_number, ssn, holder, state) VALUES ('x', 1, ?1, 'other', '{}', 'pending')", [&h.card_number]);
        assert!(dup.is_err());
        // A state this version does not know is an error, not a default.
        raw.execute("UPDATE holders SET state = 'claimd'", [])
            .unwrap();
        assert!(matches!(j.counts(), Err(JournalError::UnknownState(_))));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn the_audit_chain_catches_a_change() {
        let path = temp("audit");
        let mut j = Journal::open(&format!("sqlite:{}", path.display())).unwrap();
        for e in ["batch", "issued", "issued"] {
            j.audit("st", e, "card 1: key ids 08 0A 03 11 12 21 22 30")
                .unwrap();
        }
        assert_eq!(j.audit_verify().unwrap(), Ok(3));
        let raw = Connection::open(&path).unwrap();
        assert!(
            raw.execute("UPDATE audit SET detail = 'x' WHERE seq = 2", [])
                .is_err(),
            "append-only"
        );
        raw.execute_batch(
            "DROP TRIGGER audit_append_only_u; UPDATE audit SET detail = 'x' WHERE seq = 2;",
        )
        .unwrap();
        assert_eq!(
            j.audit_verify().unwrap().unwrap_err().to_string(),
            "entry 2 (issued) does not verify: the log was changed"
        );
        let _ = std::fs::remove_file(&path);
    }
}
