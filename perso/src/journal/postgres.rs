//! The PostgreSQL journal, for several stations sharing one journal: a claim takes the next
//! pending row with `FOR UPDATE SKIP LOCKED`, so stations never wait for, or take, each
//! other's rows.

use super::db::{tables, Cell, ColumnTypes, Db, Intent, Param};
use super::JournalError;
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};

/// A PostgreSQL journal database.
pub(crate) struct PgDb {
    db: Client,
}

/// The server's message, not just "db error".
pub(crate) fn detail(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

impl PgDb {
    pub(crate) fn open(url: &str) -> Result<Self, JournalError> {
        let mut db = Client::connect(url, NoTls)?;
        // Every worker of every station opens the journal: the schema is made under an advisory
        // lock, since concurrent DDL on the same catalog rows fails.
        let types = ColumnTypes {
            row_id: "BIGSERIAL PRIMARY KEY",
            int: "BIGINT",
            updated: "TIMESTAMPTZ NOT NULL DEFAULT now()",
        };
        db.batch_execute(&format!(
            "BEGIN;
            SELECT pg_advisory_xact_lock(7378312);
            {}
            CREATE OR REPLACE FUNCTION sscard_audit_append_only() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$ LANGUAGE plpgsql;
            CREATE OR REPLACE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
                FOR EACH ROW EXECUTE FUNCTION sscard_audit_append_only();
            COMMIT;",
            tables(&types)
        ))?;
        Ok(Self { db })
    }
}

impl PgDb {
    /// TEMPORARY (the PostgreSQL roles work replaces it): the schema as the connecting role.
    pub(crate) fn create_schema(
        url: &str,
        _station_role: Option<&str>,
    ) -> Result<(), JournalError> {
        Self::open(url).map(drop)
    }
}

fn params<'p>(params: &'p [Param<'p>]) -> Vec<Box<dyn ToSql + Sync + 'p>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync> {
            match *p {
                Param::Int(i) => Box::new(i),
                Param::Text(t) => Box::new(t),
                Param::OptInt(i) => Box::new(i),
                Param::OptText(t) => Box::new(t),
            }
        })
        .collect()
}

fn cells(r: &postgres::Row) -> Result<Vec<Cell>, JournalError> {
    (0..r.len())
        .map(|i| {
            let ty = r.columns()[i].type_();
            Ok(if *ty == Type::INT8 {
                r.try_get::<_, Option<i64>>(i)?
                    .map_or(Cell::Null, Cell::Int)
            } else if *ty == Type::INT4 {
                r.try_get::<_, Option<i32>>(i)?
                    .map_or(Cell::Null, |v| Cell::Int(v.into()))
            } else {
                r.try_get::<_, Option<String>>(i)?
                    .map_or(Cell::Null, Cell::Text)
            })
        })
        .collect()
}

impl Db for PgDb {
    fn begin(&mut self, intent: Intent) -> Result<(), JournalError> {
        // Every write transaction extends the audit chain: one writer of the chain at a time.
        let lock = match intent {
            // Stations adding the same batch at once would both see a holder missing; one at a
            // time.
            Intent::AddHolders => {
                "LOCK TABLE audit IN EXCLUSIVE MODE; LOCK TABLE holders IN SHARE ROW EXCLUSIVE MODE;"
            }
            Intent::Audit | Intent::Claim => "LOCK TABLE audit IN EXCLUSIVE MODE;",
        };
        Ok(self.db.batch_execute(&format!("BEGIN;{lock}"))?)
    }
    fn commit(&mut self) -> Result<(), JournalError> {
        Ok(self.db.batch_execute("COMMIT")?)
    }
    fn rollback(&mut self) -> Result<(), JournalError> {
        Ok(self.db.batch_execute("ROLLBACK")?)
    }
    fn execute(&mut self, sql: &str, p: &[Param<'_>]) -> Result<u64, JournalError> {
        let boxed = params(p);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        Ok(self.db.execute(sql, &refs)?)
    }
    fn query(&mut self, sql: &str, p: &[Param<'_>]) -> Result<Vec<Vec<Cell>>, JournalError> {
        let boxed = params(p);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        let rows = self.db.query(sql, &refs)?;
        rows.iter().map(cells).collect()
    }
    fn query_each(
        &mut self,
        sql: &str,
        p: &[Param<'_>],
        each: &mut dyn FnMut(Vec<Cell>) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        use postgres::fallible_iterator::FallibleIterator;
        let boxed = params(p);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        let mut rows = self.db.query_raw(sql, refs)?;
        while let Some(r) = rows.next()? {
            each(cells(&r)?)?;
        }
        Ok(())
    }
    fn skip_locked(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }
    fn epoch_millis(&mut self) -> Result<i64, JournalError> {
        Ok(self
            .db
            .query_one("SELECT (extract(epoch FROM now()) * 1000)::BIGINT", &[])?
            .get(0))
    }
    fn timestamp(&mut self) -> Result<String, JournalError> {
        Ok(self
            .db
            .query_one(
                "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
                &[],
            )?
            .get(0))
    }
}
