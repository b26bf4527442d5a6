//! The exactly-once journal: every holder's state, claimed by one station and reader at a
//! time. Unique constraints — not just code — keep a holder from being issued twice and a card
//! number or card from being used twice. SQLite for one station, PostgreSQL for several
//! stations sharing one journal (rows claimed with `FOR UPDATE SKIP LOCKED`). The statements
//! and the logic are written once (`db.rs`); each database adds its connection and schema.
// Built without any database, the journal can only refuse to open.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unreachable_code, unused_variables)
)]

mod db;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PgError;

use crate::state::{Stage, State, UnknownState};
use db::{in_transaction, Cell, Db, Intent, Param};
use sscard_core::classify::{Classified, ExitClass};
use sscard_core::profile::codes;
use sscard_core::profile::holder::Holder;
use std::time::{Duration, Instant};

/// Why the journal refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    #[cfg(feature = "sqlite")]
    #[error("journal: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[cfg(feature = "postgres")]
    #[error("journal: {}", postgres::detail(.0))]
    Postgres(#[from] ::postgres::Error),
    // Added by the PostgreSQL TLS/roles branch (the lead may move it).
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Pg(#[from] postgres::PgError),
    #[error("journal URL {url:?}: use sqlite:PATH or postgres://… (this build: {built})")]
    Url { url: String, built: &'static str },
    #[error("journal: {0}")]
    UnknownState(#[from] UnknownState),
    #[error("journal: a holder row does not hold a holder: {0}")]
    HolderJson(#[from] serde_json::Error),
    #[error("journal: a column holds {found} where {expected} belongs")]
    Column {
        expected: &'static str,
        found: String,
    },
    #[error("line {line}: card number {card_number} or SSN {ssn} is already in the journal for another holder")]
    Conflict {
        line: usize,
        card_number: String,
        ssn: String,
    },
    #[error("holder {id} is not {expected} in the journal")]
    NotInState { id: i64, expected: State },
}

impl Classified for JournalError {
    fn return_code(&self) -> i32 {
        codes::UNKNOWN
    }
    fn exit_class(&self) -> ExitClass {
        match self {
            Self::Url { .. } | Self::Conflict { .. } => ExitClass::BadInput,
            #[cfg(feature = "postgres")]
            Self::Pg(e) if e.is_bad_input() => ExitClass::BadInput,
            _ => ExitClass::Other,
        }
    }
}

/// A claimed holder.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: i64,
    pub line: i64,
    pub holder: Holder,
}

/// A row a crash left with a card on its way.
#[derive(Debug, Clone)]
pub struct InFlight {
    pub id: i64,
    pub stage: Stage,
    pub card_id: String,
    pub holder: Holder,
}

/// The databases this build can open.
const BUILT: &str = if cfg!(all(feature = "sqlite", feature = "postgres")) {
    "SQLite and PostgreSQL"
} else if cfg!(feature = "sqlite") {
    "SQLite only"
} else if cfg!(feature = "postgres") {
    "PostgreSQL only"
} else {
    "no database"
};

fn audit_hash(
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

fn holder_of(json: &str) -> Result<Holder, JournalError> {
    Ok(serde_json::from_str(json)?)
}

fn row<const N: usize>(cells: Vec<Cell>) -> Result<[Cell; N], JournalError> {
    let found = cells.len();
    cells.try_into().map_err(|_| JournalError::Column {
        expected: "a row of the journal's columns",
        found: format!("{found} columns"),
    })
}

/// The journal of one station's worker (each opens its own connection).
pub struct Journal {
    db: Box<dyn Db + Send>,
    /// Time spent in journal calls (the benchmark reports its share of per-card time).
    spent: Duration,
}

impl Journal {
    /// `sqlite:PATH` (or a bare path) or `postgres://…`.
    pub fn open(url: &str) -> Result<Self, JournalError> {
        let bad = || JournalError::Url {
            url: url.into(),
            built: BUILT,
        };
        let db: Box<dyn Db + Send> =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                #[cfg(feature = "postgres")]
                {
                    Box::new(postgres::PgDb::open(url)?)
                }
                #[cfg(not(feature = "postgres"))]
                return Err(bad());
            } else {
                let path = match url.split_once(':') {
                    Some(("sqlite", p)) => p,
                    Some((scheme, _)) if scheme.len() > 1 => return Err(bad()),
                    _ => url,
                };
                #[cfg(feature = "sqlite")]
                {
                    Box::new(sqlite::SqliteDb::open(path)?)
                }
                #[cfg(not(feature = "sqlite"))]
                {
                    let _ = path;
                    return Err(bad());
                }
            };
        Ok(Self {
            db,
            spent: Duration::ZERO,
        })
    }

    /// Time spent in journal calls so far.
    pub fn spent(&self) -> Duration {
        self.spent
    }

    fn timed<T>(
        &mut self,
        f: impl FnOnce(&mut (dyn Db + Send)) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let t = Instant::now();
        let r = f(self.db.as_mut());
        self.spent += t.elapsed();
        r
    }

    /// Adds holders as pending. A holder already in the journal (same card number and SSN) is
    /// kept as it is; a card number or SSN already used by another holder is an error.
    pub fn add(&mut self, batch: &str, holders: &[(usize, Holder)]) -> Result<usize, JournalError> {
        self.timed(|db| {
            in_transaction(db, Intent::AddHolders, |db| {
                let mut added = 0;
                for (line, h) in holders {
                    let existing = db.query(
                        "SELECT card_number, ssn FROM holders WHERE card_number = $1 OR ssn = $2",
                        &[Param::Text(&h.card_number), Param::Text(&h.ssn)],
                    )?;
                    match existing.into_iter().next() {
                        Some(r) => {
                            let [cn, ssn] = row(r)?;
                            if cn.text()? != h.card_number || ssn.text()? != h.ssn {
                                return Err(JournalError::Conflict {
                                    line: *line,
                                    card_number: h.card_number.clone(),
                                    ssn: h.ssn.clone(),
                                });
                            }
                        }
                        None => {
                            let json = serde_json::to_string(h)?;
                            db.execute(
                                "INSERT INTO holders (batch, line, card_number, ssn, holder, state) VALUES ($1, $2, $3, $4, $5, 'pending')",
                                &[
                                    Param::Text(batch),
                                    Param::Int(*line as i64),
                                    Param::Text(&h.card_number),
                                    Param::Text(&h.ssn),
                                    Param::Text(&json),
                                ],
                            )?;
                            added += 1;
                        }
                    }
                }
                Ok(added)
            })
        })
    }

    /// Claims the next pending holder for the blank card `card_id` in `reader` of `station`,
    /// atomically: the row moves to [`Stage::Blank`].
    pub fn claim(
        &mut self,
        station: &str,
        reader: &str,
        card_id: &str,
    ) -> Result<Option<Claim>, JournalError> {
        self.timed(|db| {
            in_transaction(db, Intent::Claim, |db| {
                let sql = format!(
                    "SELECT id, line, holder FROM holders WHERE state = 'pending' ORDER BY id LIMIT 1{}",
                    db.skip_locked()
                );
                let Some(r) = db.query(&sql, &[])?.into_iter().next() else {
                    return Ok(None);
                };
                let [id, line, json] = row(r)?;
                let (id, line) = (id.int()?, line.int()?);
                db.execute(
                    "UPDATE holders SET state = $5, station = $2, reader = $3, card_id = $4, reason = NULL, updated = now() WHERE id = $1 AND state = 'pending'",
                    &[
                        Param::Int(id),
                        Param::Text(station),
                        Param::Text(reader),
                        Param::Text(card_id),
                        Param::Text(Stage::Blank.as_str()),
                    ],
                )?;
                Ok(Some(Claim {
                    id,
                    line,
                    holder: holder_of(&json.text()?)?,
                }))
            })
        })
    }

    /// Records that the card of row `id` reached `to`: the row must be at the stage before.
    pub fn reached(&mut self, id: i64, from: Stage, to: Stage) -> Result<(), JournalError> {
        self.timed(|db| {
            let n = db.execute(
                "UPDATE holders SET state = $2, updated = now() WHERE id = $1 AND state = $3",
                &[
                    Param::Int(id),
                    Param::Text(to.as_str()),
                    Param::Text(from.as_str()),
                ],
            )?;
            if n != 1 {
                return Err(JournalError::NotInState {
                    id,
                    expected: State::Card(from),
                });
            }
            Ok(())
        })
    }

    /// A claim that failed before anything was written goes back to pending (another card
    /// will take it); otherwise the row is marked failed with the reason.
    pub fn fail(
        &mut self,
        id: i64,
        reason: &str,
        nothing_written: bool,
    ) -> Result<(), JournalError> {
        self.timed(|db| {
            if nothing_written {
                db.execute("UPDATE holders SET state = 'pending', station = NULL, reader = NULL, card_id = NULL, reason = $2, updated = now() WHERE id = $1", &[Param::Int(id), Param::Text(reason)])?;
            } else {
                db.execute(
                    "UPDATE holders SET state = 'failed', reason = $2, updated = now() WHERE id = $1",
                    &[Param::Int(id), Param::Text(reason)],
                )?;
            }
            Ok(())
        })
    }

    /// Marks a row for operator review.
    pub fn review(&mut self, id: i64, reason: &str) -> Result<(), JournalError> {
        self.timed(|db| {
            db.execute(
                "UPDATE holders SET state = 'review', reason = $2, updated = now() WHERE id = $1",
                &[Param::Int(id), Param::Text(reason)],
            )?;
            Ok(())
        })
    }

    /// Rows of this station and reader left with a card on its way by a crash.
    pub fn in_flight(
        &mut self,
        station: &str,
        reader: &str,
    ) -> Result<Vec<InFlight>, JournalError> {
        let stages: Vec<String> = Stage::ALL
            .into_iter()
            .filter(|s| State::Card(*s).in_flight())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let sql = format!(
            "SELECT id, state, card_id, holder FROM holders WHERE station = $1 AND reader = $2 AND state IN ({}) ORDER BY id",
            stages.join(", ")
        );
        self.timed(|db| {
            db.query(&sql, &[Param::Text(station), Param::Text(reader)])?
                .into_iter()
                .map(|r| {
                    let [id, state, card_id, holder] = row(r)?;
                    let stage = match state.text()?.parse::<State>()? {
                        State::Card(s) => s,
                        other => {
                            return Err(JournalError::Column {
                                expected: "a card stage",
                                found: other.to_string(),
                            })
                        }
                    };
                    Ok(InFlight {
                        id: id.int()?,
                        stage,
                        card_id: card_id.opt_text()?.unwrap_or_default(),
                        holder: holder_of(&holder.text()?)?,
                    })
                })
                .collect()
        })
    }

    /// Rows per state; a state this version does not know is an error.
    pub fn counts(&mut self) -> Result<Vec<(State, i64)>, JournalError> {
        self.timed(|db| {
            db.query(
                "SELECT state, COUNT(*) FROM holders GROUP BY state ORDER BY state",
                &[],
            )?
            .into_iter()
            .map(|r| {
                let [state, n] = row(r)?;
                Ok((state.text()?.parse()?, n.int()?))
            })
            .collect()
        })
    }

    /// Issued cards: (card number, card identification code).
    pub fn issued(&mut self) -> Result<Vec<(String, String)>, JournalError> {
        self.timed(|db| {
            db.query(
                "SELECT card_number, card_id FROM holders WHERE state = 'issued' ORDER BY id",
                &[],
            )?
            .into_iter()
            .map(|r| {
                let [cn, id] = row(r)?;
                Ok((cn.text()?, id.opt_text()?.unwrap_or_default()))
            })
            .collect()
        })
    }

    /// Appends to the audit log: who did what with which key ids (never key values). Each
    /// entry's hash covers the previous entry's hash, so any later change breaks the chain.
    pub fn audit(&mut self, station: &str, event: &str, detail: &str) -> Result<(), JournalError> {
        let actor = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into());
        self.timed(|db| {
            in_transaction(db, Intent::Audit, |db| {
                let (seq, prev) = match db
                    .query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?
                    .into_iter()
                    .next()
                {
                    Some(r) => {
                        let [seq, hash] = row(r)?;
                        (seq.int()?, hash.text()?)
                    }
                    None => (0, "0".repeat(64)),
                };
                let at = db.timestamp()?;
                let seq = seq + 1;
                let hash = audit_hash(&prev, seq, &at, station, &actor, event, detail);
                db.execute(
                    "INSERT INTO audit (seq, at, station, actor, event, detail, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        Param::Int(seq),
                        Param::Text(&at),
                        Param::Text(station),
                        Param::Text(&actor),
                        Param::Text(event),
                        Param::Text(detail),
                        Param::Text(&prev),
                        Param::Text(&hash),
                    ],
                )?;
                Ok(())
            })
        })
    }

    /// Walks the audit log in `seq` order: `Ok(n)` when all `n` entries are there and chained,
    /// else the first entry that is missing or was changed.
    pub fn audit_verify(&mut self) -> Result<Result<usize, AuditBreak>, JournalError> {
        let rows = self.db.query(
            "SELECT seq, at, station, actor, event, detail, prev, hash FROM audit ORDER BY seq",
            &[],
        )?;
        let count = rows.len();
        let mut prev_hash = "0".repeat(64);
        for (i, r) in rows.into_iter().enumerate() {
            let n = i as i64 + 1;
            let [seq, at, station, actor, event, detail, prev, hash] = row(r)?;
            let seq = seq.int()?;
            let (event, prev, hash) = (event.text()?, prev.text()?, hash.text()?);
            if seq != n {
                return Ok(Err(AuditBreak::Missing {
                    entry: n,
                    found: seq,
                }));
            }
            let expected = audit_hash(
                &prev,
                seq,
                &at.text()?,
                &station.text()?,
                &actor.text()?,
                &event,
                &detail.text()?,
            );
            if prev != prev_hash || expected != hash {
                return Ok(Err(AuditBreak::Changed { entry: seq, event }));
            }
            prev_hash = hash;
        }
        Ok(Ok(count))
    }

    /// Creates the journal's schema (minimal version from the PostgreSQL TLS/roles branch; the
    /// lead's mod.rs replaces it). PostgreSQL: as the administrator `admin_url`, granting
    /// `station_role` only what a station needs (`postgres::PgDb::create_schema`). SQLite:
    /// opening creates the schema; there are no roles.
    pub fn init(admin_url: &str, station_role: Option<&str>) -> Result<(), JournalError> {
        if admin_url.starts_with("postgres://") || admin_url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return postgres::PgDb::create_schema(admin_url, station_role);
        }
        let _ = station_role;
        Self::open(admin_url).map(drop)
    }
}

/// Where the audit chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditBreak {
    #[error("entry {entry} is missing (found {found})")]
    Missing { entry: i64, found: i64 },
    #[error("entry {entry} ({event}) does not verify: the log was changed")]
    Changed { entry: i64, event: String },
}
