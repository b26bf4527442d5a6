//! The exactly-once journal: every holder's state, claimed by one station and reader at a
//! time. Unique constraints — not just code — keep a holder from being issued twice and a card
//! number or card from being used twice. SQLite for one station, PostgreSQL for several
//! stations sharing one journal (rows claimed with `FOR UPDATE SKIP LOCKED`).

mod postgres;
mod sqlite;

pub use self::postgres::PgJournal;
pub use self::sqlite::SqliteJournal;
use sscard_core::holder::Holder;
use std::time::Duration;

/// States of a holder's row.
pub mod state {
    pub const PENDING: &str = "pending";
    pub const CLAIMED: &str = "claimed";
    pub const WRITTEN: &str = "written";
    pub const VERIFIED: &str = "verified";
    pub const ISSUED: &str = "issued";
    pub const FAILED: &str = "failed";
    /// Found in an unclear state after a crash: an operator decides.
    pub const REVIEW: &str = "review";
}

/// Why the journal refused.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("journal URL {0:?}: use sqlite:PATH or postgres://…")]
    Url(String),
    #[error("journal: {}", pg_detail(.0))]
    Postgres(#[from] ::postgres::Error),
    #[error("journal: {0}")]
    Data(String),
}

/// A claimed holder.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: i64,
    pub line: i64,
    pub holder: Holder,
}

pub(crate) fn audit_hash(
    prev: &str,
    seq: i64,
    at: &str,
    station: &str,
    actor: &str,
    event: &str,
    detail: &str,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [prev, &seq.to_string(), at, station, actor, event, detail] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    sscard_core::hexfmt::to_hex(&h.finalize())
}

/// One audit-log row as stored: `hash` chains it to `prev`.
pub(crate) struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub station: String,
    pub actor: String,
    pub event: String,
    pub detail: String,
    pub prev: String,
    pub hash: String,
}

/// Walks the audit log in `seq` order: `Ok(n)` when all `n` entries are there and chained,
/// else the first entry that is missing or was changed.
pub(crate) fn verify_chain(
    entries: impl IntoIterator<Item = Result<AuditEntry, JournalError>>,
) -> Result<Result<usize, String>, JournalError> {
    let mut prev_hash = "0".repeat(64);
    let mut n = 0;
    for e in entries {
        let e = e?;
        n += 1;
        if e.seq != n as i64 {
            return Ok(Err(format!("entry {n} is missing (found {})", e.seq)));
        }
        if e.prev != prev_hash
            || audit_hash(
                &e.prev, e.seq, &e.at, &e.station, &e.actor, &e.event, &e.detail,
            ) != e.hash
        {
            return Ok(Err(format!(
                "entry {} ({}) does not verify: the log was changed",
                e.seq, e.event
            )));
        }
        prev_hash = e.hash;
    }
    Ok(Ok(n))
}

/// The server's message, not just "db error".
fn pg_detail(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// A journal of either kind.
pub enum Journal {
    Sqlite(SqliteJournal),
    Postgres(PgJournal),
}

macro_rules! delegate {
    ($self:ident, $j:ident => $e:expr) => {
        match $self {
            Journal::Sqlite($j) => $e,
            Journal::Postgres($j) => $e,
        }
    };
}

impl Journal {
    /// `sqlite:PATH` (or a bare path) or `postgres://…`.
    pub fn open(url: &str) -> Result<Self, JournalError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(PgJournal::open(url)?))
        } else {
            Ok(Self::Sqlite(SqliteJournal::open(url)?))
        }
    }
    /// Time spent in journal calls so far.
    pub fn spent(&self) -> Duration {
        delegate!(self, j => j.spent())
    }
    pub fn add(&mut self, batch: &str, holders: &[(usize, Holder)]) -> Result<usize, JournalError> {
        delegate!(self, j => j.add(batch, holders))
    }
    pub fn claim(
        &mut self,
        station: &str,
        reader: &str,
        card_id: &str,
    ) -> Result<Option<Claim>, JournalError> {
        delegate!(self, j => j.claim(station, reader, card_id))
    }
    pub fn advance(&mut self, id: i64, to: &str) -> Result<(), JournalError> {
        delegate!(self, j => j.advance(id, to))
    }
    pub fn fail(
        &mut self,
        id: i64,
        reason: &str,
        nothing_written: bool,
    ) -> Result<(), JournalError> {
        delegate!(self, j => j.fail(id, reason, nothing_written))
    }
    pub fn review(&mut self, id: i64, reason: &str) -> Result<(), JournalError> {
        delegate!(self, j => j.review(id, reason))
    }
    pub fn in_flight(
        &mut self,
        station: &str,
        reader: &str,
    ) -> Result<Vec<(i64, String, String, Holder)>, JournalError> {
        delegate!(self, j => j.in_flight(station, reader))
    }
    pub fn counts(&mut self) -> Result<Vec<(String, i64)>, JournalError> {
        delegate!(self, j => j.counts())
    }
    pub fn issued(&mut self) -> Result<Vec<(String, String)>, JournalError> {
        delegate!(self, j => j.issued())
    }
    pub fn audit(&mut self, station: &str, event: &str, detail: &str) -> Result<(), JournalError> {
        delegate!(self, j => j.audit(station, event, detail))
    }
    pub fn audit_verify(&mut self) -> Result<Result<usize, String>, JournalError> {
        delegate!(self, j => j.audit_verify())
    }
}

/// The previous state a row must be in to move to `to`.
pub(crate) fn previous(to: &str) -> Result<&'static str, JournalError> {
    match to {
        state::WRITTEN => Ok(state::CLAIMED),
        state::VERIFIED => Ok(state::WRITTEN),
        state::ISSUED => Ok(state::VERIFIED),
        other => Err(JournalError::Data(format!("no transition to {other}"))),
    }
}
