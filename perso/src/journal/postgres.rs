//! The PostgreSQL journal, for several stations sharing one journal: a claim takes the next
//! pending row with `FOR UPDATE SKIP LOCKED`, so stations never wait for, or take, each
//! other's rows.

use super::{audit_hash, previous, verify_chain, AuditEntry, Claim, JournalError};
use postgres::{Client, NoTls};
use sscard_core::holder::Holder;
use std::time::{Duration, Instant};

/// A PostgreSQL journal.
pub struct PgJournal {
    db: Client,
    spent: Duration,
}

fn holder(json: &str) -> Result<Holder, JournalError> {
    serde_json::from_str(json).map_err(|e| JournalError::Data(format!("holder row: {e}")))
}

impl PgJournal {
    pub fn open(url: &str) -> Result<Self, JournalError> {
        let mut db = Client::connect(url, NoTls)?;
        // Every worker of every station opens the journal: the schema is made under an advisory
        // lock, since concurrent DDL on the same catalog rows fails.
        db.batch_execute(
            "BEGIN;
            SELECT pg_advisory_xact_lock(7378312);
            CREATE TABLE IF NOT EXISTS holders (
                id BIGSERIAL PRIMARY KEY,
                batch TEXT NOT NULL,
                line BIGINT NOT NULL,
                card_number TEXT NOT NULL UNIQUE,
                ssn TEXT NOT NULL UNIQUE,
                holder TEXT NOT NULL,
                state TEXT NOT NULL,
                station TEXT,
                reader TEXT,
                card_id TEXT UNIQUE,
                reason TEXT,
                updated TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            CREATE INDEX IF NOT EXISTS holders_state ON holders(state);
            CREATE TABLE IF NOT EXISTS audit (
                seq BIGINT PRIMARY KEY,
                at TEXT NOT NULL,
                station TEXT NOT NULL,
                actor TEXT NOT NULL,
                event TEXT NOT NULL,
                detail TEXT NOT NULL,
                prev TEXT NOT NULL,
                hash TEXT NOT NULL
            );
            CREATE OR REPLACE FUNCTION sscard_audit_append_only() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$ LANGUAGE plpgsql;
            CREATE OR REPLACE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
                FOR EACH ROW EXECUTE FUNCTION sscard_audit_append_only();
            COMMIT;",
        )?;
        Ok(Self {
            db,
            spent: Duration::ZERO,
        })
    }

    pub fn spent(&self) -> Duration {
        self.spent
    }

    fn timed<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let t = Instant::now();
        let r = f(&mut self.db);
        self.spent += t.elapsed();
        r
    }

    pub fn add(&mut self, batch: &str, holders: &[(usize, Holder)]) -> Result<usize, JournalError> {
        self.timed(|db| {
            let mut tx = db.transaction()?;
            // Stations adding the same batch at once would both see a holder missing; one at a
            // time (claims and updates of other rows go on).
            tx.batch_execute("LOCK TABLE holders IN SHARE ROW EXCLUSIVE MODE")?;
            let mut added = 0;
            for (line, h) in holders {
                let existing = tx.query_opt("SELECT card_number, ssn FROM holders WHERE card_number = $1 OR ssn = $2", &[&h.card_number, &h.ssn])?;
                match existing {
                    Some(row) if row.get::<_, String>(0) == h.card_number && row.get::<_, String>(1) == h.ssn => {}
                    Some(_) => {
                        return Err(JournalError::Data(format!(
                            "line {line}: card number {} or SSN {} is already in the journal for another holder",
                            h.card_number, h.ssn
                        )))
                    }
                    None => {
                        let json = serde_json::to_string(h).map_err(|e| JournalError::Data(e.to_string()))?;
                        tx.execute(
                            "INSERT INTO holders (batch, line, card_number, ssn, holder, state) VALUES ($1, $2, $3, $4, $5, 'pending')",
                            &[&batch, &(*line as i64), &h.card_number, &h.ssn, &json],
                        )?;
                        added += 1;
                    }
                }
            }
            tx.commit()?;
            Ok(added)
        })
    }

    pub fn claim(
        &mut self,
        station: &str,
        reader: &str,
        card_id: &str,
    ) -> Result<Option<Claim>, JournalError> {
        self.timed(|db| {
            let mut tx = db.transaction()?;
            let row = tx.query_opt("SELECT id, line, holder FROM holders WHERE state = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED", &[])?;
            let Some(row) = row else {
                tx.commit()?;
                return Ok(None);
            };
            let (id, line, json): (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
            tx.execute(
                "UPDATE holders SET state = 'claimed', station = $2, reader = $3, card_id = $4, reason = NULL, updated = now() WHERE id = $1 AND state = 'pending'",
                &[&id, &station, &reader, &card_id],
            )?;
            tx.commit()?;
            Ok(Some(Claim { id, line, holder: holder(&json)? }))
        })
    }

    pub fn advance(&mut self, id: i64, to: &str) -> Result<(), JournalError> {
        let from = previous(to)?;
        self.timed(|db| {
            let n = db.execute(
                "UPDATE holders SET state = $2, updated = now() WHERE id = $1 AND state = $3",
                &[&id, &to, &from],
            )?;
            if n != 1 {
                return Err(JournalError::Data(format!("holder {id} is not {from}")));
            }
            Ok(())
        })
    }

    pub fn fail(
        &mut self,
        id: i64,
        reason: &str,
        nothing_written: bool,
    ) -> Result<(), JournalError> {
        self.timed(|db| {
            if nothing_written {
                db.execute("UPDATE holders SET state = 'pending', station = NULL, reader = NULL, card_id = NULL, reason = $2, updated = now() WHERE id = $1", &[&id, &reason])?;
            } else {
                db.execute("UPDATE holders SET state = 'failed', reason = $2, updated = now() WHERE id = $1", &[&id, &reason])?;
            }
            Ok(())
        })
    }

    pub fn review(&mut self, id: i64, reason: &str) -> Result<(), JournalError> {
        self.timed(|db| {
            db.execute(
                "UPDATE holders SET state = 'review', reason = $2, updated = now() WHERE id = $1",
                &[&id, &reason],
            )?;
            Ok(())
        })
    }

    pub fn in_flight(
        &mut self,
        station: &str,
        reader: &str,
    ) -> Result<Vec<(i64, String, String, Holder)>, JournalError> {
        self.timed(|db| {
            db.query("SELECT id, state, card_id, holder FROM holders WHERE station = $1 AND reader = $2 AND state IN ('claimed', 'written', 'verified') ORDER BY id", &[&station, &reader])?
                .iter()
                .map(|r| Ok((r.get(0), r.get(1), r.get::<_, Option<String>>(2).unwrap_or_default(), holder(r.get(3))?)))
                .collect()
        })
    }

    pub fn counts(&mut self) -> Result<Vec<(String, i64)>, JournalError> {
        self.timed(|db| {
            Ok(db
                .query(
                    "SELECT state, COUNT(*) FROM holders GROUP BY state ORDER BY state",
                    &[],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
    }

    pub fn issued(&mut self) -> Result<Vec<(String, String)>, JournalError> {
        self.timed(|db| {
            Ok(db
                .query(
                    "SELECT card_number, card_id FROM holders WHERE state = 'issued' ORDER BY id",
                    &[],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
    }

    pub fn audit(&mut self, station: &str, event: &str, detail: &str) -> Result<(), JournalError> {
        let actor = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into());
        self.timed(|db| {
            let mut tx = db.transaction()?;
            // One writer at a time extends the chain.
            tx.batch_execute("LOCK TABLE audit IN EXCLUSIVE MODE")?;
            let (seq, prev): (i64, String) = match tx.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])? {
                Some(r) => (r.get(0), r.get(1)),
                None => (0, "0".repeat(64)),
            };
            let at: String = tx.query_one("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')", &[])?.get(0);
            let seq = seq + 1;
            let hash = audit_hash(&prev, seq, &at, station, &actor, event, detail);
            tx.execute(
                "INSERT INTO audit (seq, at, station, actor, event, detail, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&seq, &at, &station, &actor, &event, &detail, &prev, &hash],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    pub fn audit_verify(&mut self) -> Result<Result<usize, String>, JournalError> {
        let rows = self.db.query(
            "SELECT seq, at, station, actor, event, detail, prev, hash FROM audit ORDER BY seq",
            &[],
        )?;
        verify_chain(rows.iter().map(|r| {
            Ok(AuditEntry {
                seq: r.get(0),
                at: r.get(1),
                station: r.get(2),
                actor: r.get(3),
                event: r.get(4),
                detail: r.get(5),
                prev: r.get(6),
                hash: r.get(7),
            })
        }))
    }
}
