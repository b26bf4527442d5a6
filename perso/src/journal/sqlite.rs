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
            Param::OptInt(i) => {
                i.map_or(ToSqlOutput::from(rusqlite::types::Null), ToSqlOutput::from)
            }
            Param::OptText(t) => {
                t.map_or(ToSqlOutput::from(rusqlite::types::Null), ToSqlOutput::from)
            }
        })
    }
}

impl SqliteDb {
    /// Creates the journal at `path` (or opens the one there) with its schema: `perso run` and
    /// `perso journal-init`.
    pub(crate) fn create(path: &str) -> Result<Self, JournalError> {
        create_private(Path::new(path))?;
        let db = Self::connect(path)?;
        db.db.execute_batch(&(tables(&TYPES) + APPEND_ONLY))?;
        Ok(db)
    }

    /// Opens the journal that is at `path`, as it is: no file is created and no schema
    /// statement runs (a mistyped path is an error, not a new, empty journal that "verifies").
    pub(crate) fn open(path: &str) -> Result<Self, JournalError> {
        let meta = std::fs::symlink_metadata(path).map_err(|e| JournalError::File {
            path: path.into(),
            reason: match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "no journal here (perso run or perso journal-init creates one)".into()
                }
                _ => e.to_string(),
            },
        })?;
        if !meta.is_file() {
            return Err(JournalError::File {
                path: path.into(),
                reason: "is not a regular file (a symbolic link is not followed)".into(),
            });
        }
        Self::connect(path)
    }

    fn connect(path: &str) -> Result<Self, JournalError> {
        use rusqlite::OpenFlags;
        let db = Connection::open_with_flags(
            Path::new(path),
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + FULL: the WAL is fsynced at every commit, so a state change is on disk before
        // the card moves on, power cut included. (NORMAL may roll back the last commits after a
        // power loss: a lost claim sent its holder back to pending while the card was issued.)
        db.pragma_update(None, "synchronous", "FULL")?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(Self { db })
    }
}

/// Creates the journal file readable by its owner only (it holds personal data), refusing a
/// symbolic link in its place; SQLite gives its `-wal` and `-shm` files the same mode.
fn create_private(path: &Path) -> Result<(), JournalError> {
    sscard_core::fsutil::open_private_append(path)
        .map(drop)
        .map_err(|e| JournalError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

fn cell(v: ValueRef<'_>) -> Cell {
    match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(v) => Cell::Int(v),
        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Real(v) => Cell::Text(v.to_string()),
        ValueRef::Blob(b) => Cell::Text(String::from_utf8_lossy(b).into_owned()),
    }
}

impl Db for SqliteDb {
    fn begin(&mut self, intent: Intent) -> Result<(), JournalError> {
        Ok(self.db.execute_batch(match intent {
            // A read transaction sees one snapshot of the WAL.
            Intent::Read => "BEGIN DEFERRED",
            // IMMEDIATE takes the write lock at once: two workers never both read "pending".
            _ => "BEGIN IMMEDIATE",
        })?)
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
                .map(|i| Ok(cell(r.get_ref(i)?)))
                .collect::<rusqlite::Result<Vec<Cell>>>()
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
    fn query_each(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(Vec<Cell>) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let mut stmt = self.db.prepare_cached(&dialect(sql))?;
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        while let Some(r) = rows.next()? {
            let cells = (0..n)
                .map(|i| Ok(cell(r.get_ref(i)?)))
                .collect::<rusqlite::Result<Vec<Cell>>>()?;
            each(cells)?;
        }
        Ok(())
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
    fn epoch_millis(&mut self) -> Result<i64, JournalError> {
        // One station per SQLite journal: its own clock is the journal's clock.
        Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Journal, JournalError};
    use super::*;
    use crate::state::{Stage, State};
    use sscard_core::profile::holder::Holder;
    use std::time::Duration;

    fn temp(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("sscard-{name}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn bundled_sqlite_has_the_2025_security_fixes() {
        // CVE-2025-29087 (concat_ws) and CVE-2025-6965 (aggregate terms) are fixed in 3.50.2.
        assert!(
            rusqlite::version_number() >= 3_050_002,
            "bundled SQLite {} predates 3.50.2",
            rusqlite::version()
        );
    }

    #[test]
    fn statements_are_rewritten_for_sqlite() {
        assert_eq!(
            dialect("UPDATE t SET a = $2, u = now() WHERE id = $1 AND p = '$x'"),
            "UPDATE t SET a = ?2, u = datetime('now') WHERE id = ?1 AND p = '$x'"
        );
    }

    fn audited(path: &std::path::Path) -> Journal {
        Journal::init(&format!("sqlite:{}", path.display()), None).unwrap();
        Journal::open_audited(
            &format!("sqlite:{}", path.display()),
            Box::new(sscard::keys::SoftKeys::test_set()),
            "st",
            "tester",
        )
        .unwrap()
    }

    fn to_issued(j: &mut Journal, id: i64) {
        for (from, to) in [
            (Stage::Blank, Stage::Authenticated),
            (Stage::Authenticated, Stage::KeysLoaded),
            (Stage::KeysLoaded, Stage::Written),
            (Stage::Written, Stage::Verified),
            (Stage::Verified, Stage::Issued),
        ] {
            j.reached(id, from, to, "test").unwrap();
        }
    }

    #[test]
    fn exactly_once_by_constraint() {
        let path = temp("journal");
        let mut j = audited(&path);
        let h = Holder::sample();
        assert_eq!(j.add("b", &[(2, h.clone())]).unwrap(), 1);
        assert_eq!(
            j.add("b", &[(2, h.clone())]).unwrap(),
            0,
            "the same holder again is kept once"
        );
        let mut changed = h.clone();
        changed.name = "李四".into();
        assert_eq!(
            j.add("b", &[(7, changed)]).unwrap_err().to_string(),
            format!("line 7: holder {} is already in the journal with other data (name: \"{}\" -> \"李四\"); the journal keeps the data first added: correct the line, or take the holder out of this batch", h.card_number, h.name)
        );
        let c = j.claim("r0", "CARD1").unwrap().unwrap();
        assert!(
            j.claim("r1", "CARD2").unwrap().is_none(),
            "nothing else pending"
        );
        for (from, to) in [
            (Stage::Blank, Stage::Authenticated),
            (Stage::Authenticated, Stage::KeysLoaded),
            (Stage::KeysLoaded, Stage::Written),
        ] {
            j.reached(c.id, from, to, "test").unwrap();
        }
        assert!(
            matches!(
                j.reached(c.id, Stage::Verified, Stage::Issued, "test"),
                Err(JournalError::NotInState {
                    expected: State::Card(Stage::Verified),
                    ..
                })
            ),
            "no skipping verified"
        );
        j.reached(c.id, Stage::Written, Stage::Verified, "test")
            .unwrap();
        j.reached(c.id, Stage::Verified, Stage::Issued, "test")
            .unwrap();
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
    fn the_journal_is_private_and_fully_synchronous() {
        let path = temp("private");
        let _ = audited(&path);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let db = SqliteDb::create(path.to_str().unwrap()).unwrap();
        let sync: i64 = db
            .db
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        let link = temp("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(
            SqliteDb::create(link.to_str().unwrap())
                .err()
                .unwrap()
                .to_string(),
            format!(
                "journal file {0}: {0} is a symbolic link; a private file is not written through one (remove it or name the file it points to)",
                link.display()
            )
        );
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&link);
    }

    #[test]
    fn a_failed_holder_never_blocks_its_card_and_a_spoiled_card_is_never_claimed() {
        let path = temp("reuse");
        let mut j = audited(&path);
        let holders = crate::batch::synthetic(3, 'R');
        j.add("b", &holders).unwrap();
        let first = j.claim("r0", "CARD1").unwrap().unwrap();
        j.reached(first.id, Stage::Blank, Stage::Authenticated, "t")
            .unwrap();
        // Only the reader's own row on its way can fail.
        assert!(matches!(
            j.fail(first.id, "r1", "wrong transport key"),
            Err(JournalError::NotInState { .. })
        ));
        j.fail(first.id, "r0", "wrong transport key").unwrap();
        // The same blank card offered again is claimed for the next holder.
        let second = j.claim("r0", "CARD1").unwrap().unwrap();
        assert_ne!(second.id, first.id);
        // A live claim holds its card.
        assert_eq!(
            j.claim("r1", "CARD1").unwrap_err().to_string(),
            format!("card CARD1 holds holder row {} (blank) in the journal: it cannot be claimed for another holder", second.id)
        );
        // Untouched, the claim goes back to pending and the card is free.
        j.release(second.id, "r0", "card pulled").unwrap();
        assert!(matches!(
            j.card_status("CARD1").unwrap(),
            crate::journal::CardStatus::Free
        ));
        // Spoiled: never claimed again.
        // The row that last held it is the failed one (a released claim keeps no card).
        assert_eq!(j.spoil("CARD1", "bent").unwrap(), Some(first.id));
        assert_eq!(
            j.claim("r0", "CARD1").unwrap_err().to_string(),
            "card CARD1 was spoiled (bent): it is out of circulation"
        );
        assert_eq!(
            j.spoil("CARD1", "again").unwrap_err().to_string(),
            "card CARD1 is already spoiled"
        );
        // The failed holder is requeued by an operator; an issued one only if its card is spoiled.
        assert_eq!(
            j.requeue(&holders[0].1.card_number, "retry").unwrap(),
            first.id
        );
        let c = j.claim("r0", "CARD2").unwrap().unwrap();
        to_issued(&mut j, c.id);
        // An issued row is never sent to review or failed afterwards.
        assert!(matches!(
            j.review(c.id, "r0", "late"),
            Err(JournalError::NotInState { .. })
        ));
        assert_eq!(
            j.requeue(&c.id.to_string(), "lost").unwrap_err().to_string(),
            format!("holder {} is issued: only failed holders, and reviewed or issued holders whose card was spoiled, can be requeued", c.id)
        );
        j.spoil("CARD2", "lost in the post").unwrap();
        assert_eq!(j.requeue(&c.id.to_string(), "reissue").unwrap(), c.id);
        let anchor = path.with_extension("anchor");
        j.anchor(&anchor).unwrap();
        assert!(j.audit_verify(&anchor).unwrap().is_ok());
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&anchor);
    }

    #[test]
    fn rows_nobody_looks_after_are_reported_and_taken_over() {
        let path = temp("orphans");
        let url = format!("sqlite:{}", path.display());
        let mut j = audited(&path);
        j.add("b", &crate::batch::synthetic(3, 'O')).unwrap();
        let untouched = j.claim("r0", "CARD0").unwrap().unwrap();
        let written = j.claim("r1", "CARD1").unwrap().unwrap();
        j.reached(written.id, Stage::Blank, Stage::Authenticated, "t")
            .unwrap();
        j.heartbeat().unwrap();
        // This station runs again with reader r0 only: r1's row has nobody.
        let orphans = j.orphans(&["r0".into()], Duration::from_secs(60)).unwrap();
        assert_eq!(orphans.len(), 1);
        assert_eq!(orphans[0].row.id, written.id);
        assert_eq!(
            orphans[0].why,
            "reader \"r1\" of this station is not in this run"
        );
        // Another station sees both once this one's lease expired (it never reported: no row
        // in `stations` for a name is the same as expired).
        let mut other = Journal::open_audited(
            &url,
            Box::new(sscard::keys::SoftKeys::test_set()),
            "st-2",
            "tester",
        )
        .unwrap();
        assert!(
            other
                .orphans(&[], Duration::from_secs(60))
                .unwrap()
                .is_empty(),
            "lease alive"
        );
        let expired = other.orphans(&[], Duration::ZERO).unwrap();
        assert_eq!(expired.len(), 2);
        assert!(
            expired[0].why.starts_with("station \"st\" last seen "),
            "{}",
            expired[0].why
        );
        // Taken over: untouched goes back to pending, the other to review.
        assert_eq!(other.take_over(&expired[0]).unwrap(), State::Pending);
        assert_eq!(other.take_over(&expired[1]).unwrap(), State::Review);
        assert_eq!(untouched.id, expired[0].row.id);
        let mut counts = other.counts().unwrap();
        counts.sort_by_key(|(s, _)| s.to_string());
        assert_eq!(counts, vec![(State::Pending, 2), (State::Review, 1)]);
        let anchor = path.with_extension("anchor");
        other.anchor(&anchor).unwrap();
        assert!(other.audit_verify(&anchor).unwrap().is_ok());
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&anchor);
    }

    #[test]
    fn one_station_name_runs_once() {
        let path = temp("stations");
        let mut a = audited(&path);
        a.check_station(Duration::from_secs(60)).unwrap();
        a.heartbeat().unwrap();
        // Another process of this host with the name while the first lives (pid 1 does).
        let mut b = audited(&path);
        let host = super::super::host_name();
        a.instance = format!("{host}:1");
        a.heartbeat().unwrap();
        assert_eq!(
            b.check_station(Duration::from_secs(60)).unwrap_err().to_string(),
            format!("station \"st\" is running elsewhere ({host}:1, last seen 0 s ago): give this station its own --station name")
        );
        // A process of this host that died: its name is free again.
        a.instance = format!("{host}:{}", u32::MAX);
        a.heartbeat().unwrap();
        b.check_station(Duration::from_secs(60)).unwrap();
        // Another host: free once its lease expired.
        a.instance = "elsewhere:7".into();
        a.heartbeat().unwrap();
        assert!(b.check_station(Duration::from_secs(60)).is_err());
        b.check_station(Duration::ZERO).unwrap();
        let _ = std::fs::remove_file(&path);
    }

    /// Each way of doctoring the log, done with the database's own tools (no audit key), is
    /// detected.
    #[test]
    fn the_tamper_matrix() {
        let setup = |name: &str| {
            let path = temp(name);
            let anchor = path.with_extension("anchor");
            let _ = std::fs::remove_file(&anchor);
            let mut j = audited(&path);
            j.add("b", &crate::batch::synthetic(2, 'T')).unwrap();
            for card in ["CARD1", "CARD2"] {
                let c = j.claim("r0", card).unwrap().unwrap();
                to_issued(&mut j, c.id);
            }
            j.anchor(&anchor).unwrap();
            assert!(
                matches!(j.audit_verify(&anchor).unwrap(), Ok(v) if v.entries == 15 && v.holders == 2)
            );
            (path, anchor, j)
        };
        let raw = |p: &std::path::Path, sql: &str| {
            Connection::open(p).unwrap().execute_batch(sql).unwrap();
        };
        let unlock = "DROP TRIGGER audit_append_only_u; DROP TRIGGER audit_append_only_d;";
        // Deleting the newest entries.
        let (p, a, mut j) = setup("t-delete");
        raw(&p, &format!("{unlock} DELETE FROM audit WHERE seq > 12;"));
        raw(&p, "UPDATE holders SET state = 'keys_loaded' WHERE id = 2;");
        assert_eq!(
            j.audit_verify(&a).unwrap().unwrap_err().to_string(),
            "the anchor records 15 entries, the journal holds 12: entries were deleted"
        );
        // Rewriting an entry and recomputing the chain with an unkeyed hash.
        let (p, a, mut j) = setup("t-rewrite");
        raw(&p, &format!("{unlock} UPDATE audit SET detail = 'nothing happened', hash = '00' || substr(hash, 3) WHERE seq = 7;"));
        assert_eq!(
            j.audit_verify(&a).unwrap().unwrap_err().to_string(),
            "entry 7 (written) does not verify under the audit key: the log was changed"
        );
        // Setting an issued holder back to pending.
        let (p, a, mut j) = setup("t-state");
        raw(
            &p,
            "UPDATE holders SET state = 'pending', card_id = NULL WHERE id = 1;",
        );
        assert_eq!(
            j.audit_verify(&a).unwrap().unwrap_err().to_string(),
            "holder row 1 is pending in the journal, but the audit log last recorded issued on card CARD1: the row was edited"
        );
        // Emptying the log and the holders' states with it.
        let (p, a, mut j) = setup("t-truncate");
        raw(
            &p,
            &format!(
                "{unlock} DELETE FROM audit; UPDATE holders SET state = 'pending', card_id = NULL;"
            ),
        );
        assert_eq!(
            j.audit_verify(&a).unwrap().unwrap_err().to_string(),
            "the anchor records 15 entries, the journal holds 0: entries were deleted"
        );
        // Swapping two holders' data (the issued card's holder becomes pending again).
        let (p, a, mut j) = setup("t-swap");
        raw(
            &p,
            "UPDATE holders SET card_number = 'x' || card_number, ssn = 'x' || ssn WHERE id = 1;
             UPDATE holders SET card_number = (SELECT substr(card_number, 2) FROM holders WHERE id = 1), ssn = (SELECT substr(ssn, 2) FROM holders WHERE id = 1) WHERE id = 2;",
        );
        assert_eq!(
            j.audit_verify(&a).unwrap().unwrap_err().to_string(),
            "holder row 1's data is not what was added: the row was edited"
        );
        // A holder row inserted behind the station's back.
        let (p, a, mut j) = setup("t-insert");
        raw(&p, "INSERT INTO holders (batch, line, card_number, ssn, holder, state) SELECT batch, 99, 'Z' || card_number, 'Z' || ssn, holder, 'pending' FROM holders WHERE id = 1;");
        assert_eq!(
            j.audit_verify(&a).unwrap().unwrap_err().to_string(),
            "holder row 3 was never added through the audit log: the row was inserted"
        );
        // A spoiled card put back into circulation.
        let (p, a, mut j) = setup("t-spoiled");
        j.spoil("CARD9", "dropped").unwrap();
        j.anchor(&a).unwrap();
        raw(&p, "DELETE FROM spoiled;");
        assert_eq!(
            j.audit_verify(&a).unwrap().unwrap_err().to_string(),
            "the spoiled cards in the journal (0) are not the ones the audit log spoiled (1): the table was edited"
        );
        // The anchor file itself edited.
        let (_p, a, mut j) = setup("t-anchor");
        let text = std::fs::read_to_string(&a)
            .unwrap()
            .replace("\"count\":15", "\"count\":14");
        std::fs::write(&a, text).unwrap();
        assert_eq!(
            j.audit_verify(&a).unwrap().unwrap_err().to_string(),
            "anchor line 1 does not verify under the audit key: the anchor file was changed, or this is not the key the journal was written with"
        );
        // The anchor file deleted.
        std::fs::remove_file(&a).unwrap();
        assert_eq!(
            j.audit_verify(&a).unwrap().unwrap_err().to_string(),
            format!("the journal holds 15 audit entries but there is no anchor file {}: deleted entries could not be detected", a.display())
        );
    }
}
