//! The SQLite journal (WAL), the default for a single station.

use super::{audit_hash, verify_chain, AuditEntry, Claim, JournalError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sscard_core::holder::Holder;
use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

/// An SQLite journal.
pub struct SqliteJournal {
    db: Connection,
    /// Time spent in journal calls (the benchmark reports its share of per-card time).
    spent: std::rc::Rc<Cell<Duration>>,
}

/// Adds the time until it is dropped to a journal's total.
struct Timer(std::rc::Rc<Cell<Duration>>, Instant);

impl Drop for Timer {
    fn drop(&mut self) {
        self.0.set(self.0.get() + self.1.elapsed());
    }
}

impl SqliteJournal {
    /// Time spent in journal calls so far.
    pub fn spent(&self) -> Duration {
        self.spent.get()
    }

    fn timer(&self) -> Timer {
        Timer(self.spent.clone(), Instant::now())
    }

    /// Opens `sqlite:PATH` (or a bare path), creating the schema.
    pub fn open(url: &str) -> Result<Self, JournalError> {
        let path = match url.split_once(':') {
            Some(("sqlite", p)) => p,
            Some((scheme, _)) if scheme.len() > 1 => return Err(JournalError::Url(url.into())),
            _ => url,
        };
        let db = Connection::open(Path::new(path))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL: every commit survives a crash of the station (kill -9); a power cut may
        // lose the last commits, which the resume recovers from the card in the reader.
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS holders (
                id INTEGER PRIMARY KEY,
                batch TEXT NOT NULL,
                line INTEGER NOT NULL,
                card_number TEXT NOT NULL UNIQUE,
                ssn TEXT NOT NULL UNIQUE,
                holder TEXT NOT NULL,
                state TEXT NOT NULL,
                station TEXT,
                reader TEXT,
                card_id TEXT UNIQUE,
                reason TEXT,
                updated TEXT NOT NULL DEFAULT (datetime('now'))
            );
            CREATE INDEX IF NOT EXISTS holders_state ON holders(state);
            CREATE TABLE IF NOT EXISTS audit (
                seq INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                station TEXT NOT NULL,
                actor TEXT NOT NULL,
                event TEXT NOT NULL,
                detail TEXT NOT NULL,
                prev TEXT NOT NULL,
                hash TEXT NOT NULL
            );
            CREATE TRIGGER IF NOT EXISTS audit_append_only_u BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
            CREATE TRIGGER IF NOT EXISTS audit_append_only_d BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
        )?;
        Ok(Self {
            db,
            spent: Default::default(),
        })
    }

    /// Adds holders as pending. A holder already in the journal (same card number and SSN) is
    /// kept as it is; a card number or SSN already used by another holder is an error.
    pub fn add(&mut self, batch: &str, holders: &[(usize, Holder)]) -> Result<usize, JournalError> {
        let _t = self.timer();
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut added = 0;
        for (line, h) in holders {
            let existing: Option<(String, String)> = tx
                .query_row(
                    "SELECT card_number, ssn FROM holders WHERE card_number = ?1 OR ssn = ?2",
                    params![h.card_number, h.ssn],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match existing {
                Some((cn, ssn)) if cn == h.card_number && ssn == h.ssn => {}
                Some(_) => {
                    return Err(JournalError::Data(format!("line {line}: card number {} or SSN {} is already in the journal for another holder", h.card_number, h.ssn)))
                }
                None => {
                    let json = serde_json::to_string(h).map_err(|e| JournalError::Data(e.to_string()))?;
                    tx.execute(
                        "INSERT INTO holders (batch, line, card_number, ssn, holder, state) VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
                        params![batch, *line as i64, h.card_number, h.ssn, json],
                    )?;
                    added += 1;
                }
            }
        }
        tx.commit()?;
        Ok(added)
    }

    fn holder(json: String) -> Result<Holder, rusqlite::Error> {
        serde_json::from_str(&json).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
    }

    /// Claims the next pending holder for a card in `reader` of `station`, atomically.
    pub fn claim(
        &mut self,
        station: &str,
        reader: &str,
        card_id: &str,
    ) -> Result<Option<Claim>, JournalError> {
        let _t = self.timer();
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(i64, i64, String)> = tx
            .query_row(
                "SELECT id, line, holder FROM holders WHERE state = 'pending' ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((id, line, json)) = row else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE holders SET state = 'claimed', station = ?2, reader = ?3, card_id = ?4, reason = NULL, updated = datetime('now') WHERE id = ?1 AND state = 'pending'",
            params![id, station, reader, card_id],
        )?;
        tx.commit()?;
        Ok(Some(Claim {
            id,
            line,
            holder: Self::holder(json)?,
        }))
    }

    /// Moves a claimed row on (claimed → written → verified → issued).
    pub fn advance(&mut self, id: i64, to: &str) -> Result<(), JournalError> {
        let _t = self.timer();
        let from = super::previous(to)?;
        let n = self.db.execute(
            "UPDATE holders SET state = ?2, updated = datetime('now') WHERE id = ?1 AND state = ?3",
            params![id, to, from],
        )?;
        if n != 1 {
            return Err(JournalError::Data(format!("holder {id} is not {from}")));
        }
        Ok(())
    }

    /// A claim that failed before anything was written goes back to pending (another card
    /// will take it); otherwise the row is marked failed with the reason.
    pub fn fail(
        &mut self,
        id: i64,
        reason: &str,
        nothing_written: bool,
    ) -> Result<(), JournalError> {
        let _t = self.timer();
        if nothing_written {
            self.db.execute("UPDATE holders SET state = 'pending', station = NULL, reader = NULL, card_id = NULL, reason = ?2, updated = datetime('now') WHERE id = ?1", params![id, reason])?;
        } else {
            self.db.execute("UPDATE holders SET state = 'failed', reason = ?2, updated = datetime('now') WHERE id = ?1", params![id, reason])?;
        }
        Ok(())
    }

    /// Marks a row for operator review.
    pub fn review(&mut self, id: i64, reason: &str) -> Result<(), JournalError> {
        let _t = self.timer();
        self.db.execute("UPDATE holders SET state = 'review', reason = ?2, updated = datetime('now') WHERE id = ?1", params![id, reason])?;
        Ok(())
    }

    /// Rows of this station and reader left in flight by a crash.
    pub fn in_flight(
        &self,
        station: &str,
        reader: &str,
    ) -> Result<Vec<(i64, String, String, Holder)>, JournalError> {
        let _t = self.timer();
        let mut q = self.db.prepare("SELECT id, state, card_id, holder FROM holders WHERE station = ?1 AND reader = ?2 AND state IN ('claimed', 'written', 'verified') ORDER BY id")?;
        let rows = q.query_map(params![station, reader], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                Self::holder(r.get(3)?)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Appends to the audit log: who did what with which key ids (never key values). Each entry's
    /// hash covers the previous entry's hash, so any later change breaks the chain.
    pub fn audit(&mut self, station: &str, event: &str, detail: &str) -> Result<(), JournalError> {
        let _t = self.timer();
        let actor = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into());
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, prev): (i64, String) = tx
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, "0".repeat(64)));
        let at: String = tx.query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
            r.get(0)
        })?;
        let seq = seq + 1;
        let hash = audit_hash(&prev, seq, &at, station, &actor, event, detail);
        tx.execute(
            "INSERT INTO audit (seq, at, station, actor, event, detail, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![seq, at, station, actor, event, detail, prev, hash],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Walks the audit chain: the number of entries, or the first entry that does not verify.
    pub fn audit_verify(&self) -> Result<Result<usize, String>, JournalError> {
        let mut q = self.db.prepare(
            "SELECT seq, at, station, actor, event, detail, prev, hash FROM audit ORDER BY seq",
        )?;
        let rows = q.query_map([], |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                station: r.get(2)?,
                actor: r.get(3)?,
                event: r.get(4)?,
                detail: r.get(5)?,
                prev: r.get(6)?,
                hash: r.get(7)?,
            })
        })?;
        verify_chain(rows.map(|r| r.map_err(JournalError::from)))
    }

    /// Rows per state.
    pub fn counts(&self) -> Result<Vec<(String, i64)>, JournalError> {
        let _t = self.timer();
        let mut q = self
            .db
            .prepare("SELECT state, COUNT(*) FROM holders GROUP BY state ORDER BY state")?;
        let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Issued cards: (card number, card identification code).
    pub fn issued(&self) -> Result<Vec<(String, String)>, JournalError> {
        let _t = self.timer();
        let mut q = self.db.prepare(
            "SELECT card_number, card_id FROM holders WHERE state = 'issued' ORDER BY id",
        )?;
        let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::state;
    use super::*;

    #[test]
    fn exactly_once_by_constraint() {
        let path = std::env::temp_dir().join(format!("sscard-journal-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut j = SqliteJournal::open(&format!("sqlite:{}", path.display())).unwrap();
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
        j.advance(c.id, state::WRITTEN).unwrap();
        assert!(
            j.advance(c.id, state::ISSUED).is_err(),
            "no skipping verified"
        );
        j.advance(c.id, state::VERIFIED).unwrap();
        j.advance(c.id, state::ISSUED).unwrap();
        assert_eq!(j.counts().unwrap(), vec![("issued".into(), 1)]);
        // The database itself refuses a second row with the same card number.
        let dup = j.db.execute("INSERT INTO holders (batch, line, card_number, ssn, holder, state) VALUES ('x', 1, ?1, 'other', '{}', 'pending')", params![h.card_number]);
        assert!(dup.is_err());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn the_audit_chain_catches_a_change() {
        let path = std::env::temp_dir().join(format!("sscard-audit-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut j = SqliteJournal::open(&format!("sqlite:{}", path.display())).unwrap();
        for e in ["batch", "issued", "issued"] {
            j.audit("st", e, "card 1: key ids 08 0A 03 11 12 21 22 30")
                .unwrap();
        }
        assert_eq!(j.audit_verify().unwrap(), Ok(3));
        assert!(
            j.db.execute("UPDATE audit SET detail = 'x' WHERE seq = 2", [])
                .is_err(),
            "append-only"
        );
        j.db.execute_batch(
            "DROP TRIGGER audit_append_only_u; UPDATE audit SET detail = 'x' WHERE seq = 2;",
        )
        .unwrap();
        assert_eq!(
            j.audit_verify().unwrap(),
            Err("entry 2 (issued) does not verify: the log was changed".into())
        );
        let _ = std::fs::remove_file(&path);
    }
}
