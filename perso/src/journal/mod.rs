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

mod anchor;
mod audit;
mod db;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use anchor::{default_path as default_anchor_path, Anchor, MAX_ANCHOR_BYTES};
pub use audit::{AuditBreak, Entry, Verified};
#[cfg(feature = "postgres")]
pub use postgres::PgError;

use crate::state::{Stage, State, UnknownState};
use audit::Record;
use db::{in_transaction, Cell, Db, Intent, Param};
use sscard::keys::{KeyError, KeySource};
use sscard_core::classify::{Classified, ExitClass};
use sscard_core::profile::codes;
use sscard_core::profile::holder::Holder;
use std::path::Path;
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
    Postgres(::postgres::Error),
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Pg(#[from] postgres::PgError),
    #[error("journal URL {url:?}: use sqlite:PATH or postgres://… (this build: {built})")]
    Url { url: String, built: &'static str },
    #[error("journal file {path}: {reason}")]
    File { path: String, reason: String },
    /// An anchor file larger than [`MAX_ANCHOR_BYTES`]: not an anchor file.
    #[error("anchor file {path} holds more than {limit} bytes, the most read for an anchor file: it is not one (give --anchor the file perso run writes)")]
    AnchorTooLarge { path: String, limit: u64 },
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
    #[error("line {line}: holder {card_number} is already in the journal with other data ({}); the journal keeps the data first added: correct the line, or take the holder out of this batch", .differences.join("; "))]
    Changed {
        line: usize,
        card_number: String,
        differences: Vec<String>,
    },
    #[error("holder {id} is not {expected} in the journal")]
    NotInState { id: i64, expected: State },
    #[error("no holder {0} in the journal (give a card number, an SSN or a row id)")]
    NoSuchHolder(String),
    #[error(
        "{0} names more than one holder (a card number, an SSN and a row id): give the card number"
    )]
    AmbiguousHolder(String),
    #[error("holder {holder} is {state}: only failed holders, and reviewed or issued holders whose card was spoiled, can be requeued")]
    CannotRequeue { holder: String, state: State },
    #[error("card {card_id} holds holder row {holder} ({state}) in the journal: it cannot be claimed for another holder")]
    CardInUse {
        card_id: String,
        holder: i64,
        state: State,
    },
    #[error("card {card_id} was spoiled ({reason}): it is out of circulation")]
    Spoiled { card_id: String, reason: String },
    #[error("card {card_id} is already spoiled")]
    AlreadySpoiled { card_id: String },
    #[error("audit key: {0}")]
    AuditKey(#[from] KeyError),
    #[error("station {station:?} is running elsewhere ({instance}, last seen {seconds} s ago): give this station its own --station name")]
    StationRunning {
        station: String,
        instance: String,
        seconds: i64,
    },
    #[error("this journal was opened without an audit key: state changes need one (open it with the key source)")]
    NotAudited,
}

#[cfg(feature = "postgres")]
impl From<::postgres::Error> for JournalError {
    // Not `#[from]`: the message already carries the driver's cause (`postgres::detail`), which
    // as a `source` would be printed a second time.
    fn from(e: ::postgres::Error) -> Self {
        JournalError::Postgres(e)
    }
}

impl JournalError {
    /// The key service's error when the journal could not record a change because its audit
    /// key's service is not available right now ([`KeyError::is_unavailable`]); nothing was
    /// recorded (the change and its audit entry commit together), and the same change may be
    /// made again once the service answers.
    pub fn unavailable_key(&self) -> Option<&KeyError> {
        match self {
            Self::AuditKey(k) => k.is_unavailable().then_some(k),
            _ => None,
        }
    }
}

impl Classified for JournalError {
    fn return_code(&self) -> i32 {
        match self {
            // The audit key's own code: a key service that went away is -2301, as for a card key.
            Self::AuditKey(e) => e.return_code(),
            _ => codes::UNKNOWN,
        }
    }
    fn exit_class(&self) -> ExitClass {
        match self {
            Self::Url { .. }
            | Self::Conflict { .. }
            | Self::Changed { .. }
            | Self::NoSuchHolder(_)
            | Self::AmbiguousHolder(_)
            | Self::StationRunning { .. }
            | Self::CannotRequeue { .. }
            | Self::AlreadySpoiled { .. }
            | Self::AnchorTooLarge { .. } => ExitClass::BadInput,
            Self::AuditKey(e) => e.exit_class(),
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

/// A row with a card on its way.
#[derive(Debug, Clone)]
pub struct InFlight {
    pub id: i64,
    pub stage: Stage,
    pub card_id: String,
    pub station: String,
    pub reader: String,
    pub holder: Holder,
}

/// What the journal knows of a card.
#[derive(Debug, Clone)]
pub enum CardStatus {
    /// Never claimed, or only by rows that failed or went to review: free for a claim.
    Free,
    /// Taken out of circulation by an operator.
    Spoiled { reason: String },
    /// A row has it on its way.
    InFlight(Box<InFlight>),
    /// Issued to holder row `holder`.
    Issued { holder: i64 },
    /// Held by a row in review (its card left the reader, or failed its acceptance test): the
    /// station finishes it for that holder when the card is back.
    InReview { holder: i64, data: Box<Holder> },
}

/// A row of `perso list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    pub id: i64,
    pub line: i64,
    pub card_number: String,
    pub state: String,
    pub station: Option<String>,
    pub reader: Option<String>,
    pub card_id: Option<String>,
    pub reason: Option<String>,
}

/// An in-flight row no running worker of this station looks after.
#[derive(Debug, Clone)]
pub struct Orphan {
    pub row: InFlight,
    /// Why nobody looks after it.
    pub why: String,
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

/// Where a journal URL points.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
enum Location<'a> {
    /// `postgres://…` or `postgresql://…`.
    Postgres,
    /// `sqlite:PATH` or a bare path.
    Sqlite(&'a str),
}

/// Whether `url` names a PostgreSQL journal (shared by stations) rather than an SQLite file.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn locate(url: &str) -> Result<Location<'_>, JournalError> {
    if is_postgres(url) {
        return Ok(Location::Postgres);
    }
    match url.split_once(':') {
        Some(("sqlite", path)) => Ok(Location::Sqlite(path)),
        Some((scheme, _)) if scheme.len() > 1 => Err(unsupported(url)),
        _ => Ok(Location::Sqlite(url)),
    }
}

/// A URL this build cannot open.
fn unsupported(url: &str) -> JournalError {
    JournalError::Url {
        url: redacted(url),
        built: BUILT,
    }
}

/// A journal URL as an error may show it: a password in it is replaced by `***`.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.into(),
    }
}

/// This machine's host name (a station's default name, and its instance in `stations`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "station".into())
}

fn holder_of(json: &str) -> Result<Holder, JournalError> {
    Ok(serde_json::from_str(json)?)
}

#[cfg(test)]
#[test]
fn a_password_in_a_journal_url_is_not_shown() {
    assert_eq!(
        redacted("postgress://station:s3cret@db:5432/j?sslmode=require"),
        "postgress://station:***@db:5432/j?sslmode=require"
    );
    assert_eq!(redacted("sqlite:/x/j.db"), "sqlite:/x/j.db");
    assert_eq!(
        Journal::open("postgress://a:pw@h/db").err().unwrap().to_string(),
        format!("journal URL \"postgress://a:***@h/db\": use sqlite:PATH or postgres://… (this build: {BUILT})")
    );
}

fn row<const N: usize>(cells: Vec<Cell>) -> Result<[Cell; N], JournalError> {
    let found = cells.len();
    cells.try_into().map_err(|_| JournalError::Column {
        expected: "a row of the journal's columns",
        found: format!("{found} columns"),
    })
}

/// The stages with a card on its way, as SQL: `'blank', 'authenticated', …`.
fn in_flight_sql() -> String {
    Stage::ALL
        .into_iter()
        .filter(|s| State::Card(*s).in_flight())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn in_flight_row(r: Vec<Cell>) -> Result<InFlight, JournalError> {
    let [id, state, card_id, station, reader, holder] = row(r)?;
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
        station: station.opt_text()?.unwrap_or_default(),
        reader: reader.opt_text()?.unwrap_or_default(),
        holder: holder_of(&holder.text()?)?,
    })
}

const IN_FLIGHT_COLUMNS: &str = "id, state, card_id, station, reader, holder";

/// The journal of one station's worker (each opens its own connection). State changes need
/// the audit key: each is one transaction with its audit entry.
pub struct Journal {
    db: Box<dyn Db + Send>,
    /// The audit key's source; `None` for a journal opened to read.
    key: Option<Box<dyn KeySource>>,
    station: String,
    operator: String,
    /// This process as the `stations` table knows it: `HOST:PID`.
    instance: String,
    /// Time spent in journal calls (the benchmark reports its share of per-card time).
    spent: Duration,
}

impl Journal {
    /// The journal at `sqlite:PATH` (or a bare path) or `postgres://…`, as it is — nothing is
    /// created ([`Journal::init`] does) — to read (counts, lists, reports).
    pub fn open(url: &str) -> Result<Self, JournalError> {
        let db: Box<dyn Db + Send> = match locate(url)? {
            #[cfg(feature = "postgres")]
            Location::Postgres => Box::new(postgres::PgDb::open(url)?),
            #[cfg(feature = "sqlite")]
            Location::Sqlite(path) => Box::new(sqlite::SqliteDb::open(path)?),
            #[allow(unreachable_patterns)]
            _ => return Err(unsupported(url)),
        };
        Ok(Self {
            db,
            key: None,
            station: String::new(),
            operator: String::new(),
            instance: format!("{}:{}", host_name(), std::process::id()),
            spent: Duration::ZERO,
        })
    }

    /// Opens the journal for `station` run by `operator`, with `key` as the audit key's source:
    /// every state change is then recorded in the keyed audit chain.
    pub fn open_audited(
        url: &str,
        key: Box<dyn KeySource>,
        station: &str,
        operator: &str,
    ) -> Result<Self, JournalError> {
        let mut j = Self::open(url)?;
        j.key = Some(key);
        j.station = station.into();
        j.operator = operator.into();
        Ok(j)
    }

    /// Creates the journal's schema: an SQLite file, or, on PostgreSQL as an admin role, the
    /// tables with only what a station needs granted to `station_role`.
    pub fn init(url: &str, station_role: Option<&str>) -> Result<(), JournalError> {
        match locate(url)? {
            #[cfg(feature = "postgres")]
            Location::Postgres => postgres::PgDb::create_schema(url, station_role),
            #[cfg(feature = "sqlite")]
            Location::Sqlite(path) => {
                // One station, no roles.
                let _ = station_role;
                sqlite::SqliteDb::create(path).map(drop)
            }
            #[allow(unreachable_patterns)]
            _ => Err(unsupported(url)),
        }
    }

    /// Whether the audit key's source can answer now ([`KeySource::available`]): a station
    /// whose key service went away polls this before it records again. A journal opened
    /// without an audit key has no service to wait for: `Ok`.
    pub fn audit_key_available(&mut self) -> Result<(), KeyError> {
        match self.key.as_deref_mut() {
            Some(key) => key.available(),
            None => Ok(()),
        }
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

    /// Runs `f` and appends the audit entry it returns, in one transaction: the change and its
    /// record commit together or not at all.
    fn audited<T>(
        &mut self,
        intent: Intent,
        f: impl FnOnce(&mut (dyn Db + Send)) -> Result<(T, AuditNote), JournalError>,
    ) -> Result<T, JournalError> {
        self.audited_many(intent, |db, _| {
            let (v, note) = f(db)?;
            Ok((v, vec![note]))
        })
    }

    /// [`Self::audited`] for a change that writes several entries (and may use the audit key).
    fn audited_many<T>(
        &mut self,
        intent: Intent,
        f: impl FnOnce(
            &mut (dyn Db + Send),
            &mut dyn KeySource,
        ) -> Result<(T, Vec<AuditNote>), JournalError>,
    ) -> Result<T, JournalError> {
        let t = Instant::now();
        let Self {
            db,
            key,
            station,
            operator,
            ..
        } = self;
        let key = key.as_deref_mut().ok_or(JournalError::NotAudited)?;
        let r = in_transaction(db.as_mut(), intent, |db| {
            let (v, notes) = f(db, key)?;
            for note in notes {
                audit::append(
                    db,
                    key,
                    station,
                    operator,
                    &Record {
                        event: &note.event,
                        holder_id: note.holder_id,
                        state: note.state.map(State::as_str),
                        card_id: note.card_id.as_deref(),
                        detail: &note.detail,
                    },
                )?;
            }
            Ok(v)
        });
        self.spent += t.elapsed();
        r
    }

    /// Adds holders as pending. A holder already in the journal with the same data is kept as
    /// it is; with other data it is refused, the differences named; a card number or SSN used
    /// by another holder is refused.
    pub fn add(&mut self, batch: &str, holders: &[(usize, Holder)]) -> Result<usize, JournalError> {
        let lines = holders.len();
        self.audited_many(Intent::AddHolders, |db, key| {
            let mut notes = Vec::new();
            for (line, h) in holders {
                let existing = db.query(
                    "SELECT card_number, ssn, holder FROM holders WHERE card_number = $1 OR ssn = $2",
                    &[Param::Text(&h.card_number), Param::Text(&h.ssn)],
                )?;
                match existing.into_iter().next() {
                    Some(r) => {
                        let [cn, ssn, json] = row(r)?;
                        if cn.text()? != h.card_number || ssn.text()? != h.ssn {
                            return Err(JournalError::Conflict {
                                line: *line,
                                card_number: h.card_number.clone(),
                                ssn: h.ssn.clone(),
                            });
                        }
                        let differences: Vec<String> = holder_of(&json.text()?)?
                            .differences(h)
                            .iter()
                            .map(ToString::to_string)
                            .collect();
                        if !differences.is_empty() {
                            return Err(JournalError::Changed {
                                line: *line,
                                card_number: h.card_number.clone(),
                                differences,
                            });
                        }
                    }
                    None => {
                        let json = serde_json::to_string(h)?;
                        let r = db.query(
                            "INSERT INTO holders (batch, line, card_number, ssn, holder, state) VALUES ($1, $2, $3, $4, $5, 'pending') RETURNING id",
                            &[
                                Param::Text(batch),
                                Param::Int(*line as i64),
                                Param::Text(&h.card_number),
                                Param::Text(&h.ssn),
                                Param::Text(&json),
                            ],
                        )?;
                        let [id] = row(r.into_iter().next().unwrap_or_default())?;
                        let id = id.int()?;
                        // The row's data is chained (keyed digest, no personal data in clear):
                        // a row swapped, edited or inserted later does not verify.
                        let digest = audit::holder_digest(key, &h.card_number, &h.ssn, &json)?;
                        notes.push(AuditNote::change(
                            "added",
                            id,
                            State::Pending,
                            None,
                            format!("batch line {line}, holder digest {digest}"),
                        ));
                    }
                }
            }
            let added = notes.len();
            notes.push(AuditNote::event(
                "batch",
                format!("{lines} valid holder lines, {added} new"),
            ));
            Ok((added, notes))
        })
    }

    /// What the journal knows of card `card_id`.
    pub fn card_status(&mut self, card_id: &str) -> Result<CardStatus, JournalError> {
        self.timed(|db| card_status(db, card_id))
    }

    /// How many audit entries name card `card_id` (1 after its first claim: never written to
    /// before).
    pub fn card_history(&mut self, card_id: &str) -> Result<i64, JournalError> {
        self.timed(|db| {
            let r = db.query(
                "SELECT COUNT(*) FROM audit WHERE card_id = $1",
                &[Param::Text(card_id)],
            )?;
            let [n] = row(r.into_iter().next().unwrap_or_default())?;
            n.int()
        })
    }

    /// Claims the next pending holder for the blank card `card_id` in `reader`: the row moves
    /// to [`Stage::Blank`] bound to the card, durably, before the first APDU that writes to
    /// the card. `None` when no holder is pending. A spoiled card, or one a live row holds, is
    /// refused.
    pub fn claim(&mut self, reader: &str, card_id: &str) -> Result<Option<Claim>, JournalError> {
        let station = self.station.clone();
        let claimed = self.audited(Intent::Claim, |db| {
            match card_status(db, card_id)? {
                CardStatus::Free => {}
                CardStatus::Spoiled { reason } => {
                    return Err(JournalError::Spoiled {
                        card_id: card_id.into(),
                        reason,
                    })
                }
                CardStatus::InFlight(f) => {
                    return Err(JournalError::CardInUse {
                        card_id: card_id.into(),
                        holder: f.id,
                        state: State::Card(f.stage),
                    })
                }
                CardStatus::Issued { holder } => {
                    return Err(JournalError::CardInUse {
                        card_id: card_id.into(),
                        holder,
                        state: State::Card(Stage::Issued),
                    })
                }
                // The card may carry (or be) that holder's card: finished for them, or spoiled.
                CardStatus::InReview { holder, .. } => {
                    return Err(JournalError::CardInUse {
                        card_id: card_id.into(),
                        holder,
                        state: State::Review,
                    })
                }
            }
            let sql = format!(
                "SELECT id, line, holder FROM holders WHERE state = 'pending' ORDER BY id LIMIT 1{}",
                db.skip_locked()
            );
            let Some(r) = db.query(&sql, &[])?.into_iter().next() else {
                return Ok((None, AuditNote::none()));
            };
            let [id, line, json] = row(r)?;
            let (id, line) = (id.int()?, line.int()?);
            let n = db.execute(
                "UPDATE holders SET state = $5, station = $2, reader = $3, card_id = $4, reason = NULL, updated = now() WHERE id = $1 AND state = 'pending'",
                &[
                    Param::Int(id),
                    Param::Text(&station),
                    Param::Text(reader),
                    Param::Text(card_id),
                    Param::Text(Stage::Blank.as_str()),
                ],
            )?;
            if n != 1 {
                return Err(JournalError::NotInState {
                    id,
                    expected: State::Pending,
                });
            }
            Ok((
                Some(Claim {
                    id,
                    line,
                    holder: holder_of(&json.text()?)?,
                }),
                AuditNote::change("claimed", id, State::Card(Stage::Blank), Some(card_id), format!("reader {reader}")),
            ))
        });
        claimed
    }

    /// Records that the card of row `id` reached `to`: the row must be at the stage before.
    /// `detail` says what was done (key ids, never key values).
    pub fn reached(
        &mut self,
        id: i64,
        from: Stage,
        to: Stage,
        detail: &str,
    ) -> Result<(), JournalError> {
        self.audited(Intent::Audit, |db| {
            let card = row_card(db, id)?;
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
            Ok((
                (),
                AuditNote::change(
                    to.as_str(),
                    id,
                    State::Card(to),
                    card.as_deref(),
                    detail.into(),
                ),
            ))
        })
    }

    /// A claim of this station's `reader` whose card was never written to (the row is still at
    /// [`Stage::Blank`]) goes back to pending, its card free again.
    pub fn release(&mut self, id: i64, reader: &str, reason: &str) -> Result<(), JournalError> {
        let station = self.station.clone();
        self.settle(
            id,
            State::Pending,
            "released",
            reason,
            &station,
            reader,
            Some(Stage::Blank),
        )
    }

    /// Marks this station's `reader`'s row failed with the reason; its card is free for another
    /// holder. Only a row with a card on its way can fail.
    pub fn fail(&mut self, id: i64, reader: &str, reason: &str) -> Result<(), JournalError> {
        let station = self.station.clone();
        self.settle(id, State::Failed, "failed", reason, &station, reader, None)
    }

    /// Marks this station's `reader`'s row for operator review. Only a row with a card on its way
    /// goes to review.
    pub fn review(&mut self, id: i64, reader: &str, reason: &str) -> Result<(), JournalError> {
        let station = self.station.clone();
        self.settle(id, State::Review, "review", reason, &station, reader, None)
    }

    /// Ends an in-flight row as `to`, only if it is still the row the caller knows: on its way,
    /// for `station` and `reader` (and at `stage`, when given). A row that moved on meanwhile (an
    /// issued card, another station's take-over) is never overwritten.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &mut self,
        id: i64,
        to: State,
        event: &str,
        reason: &str,
        station: &str,
        reader: &str,
        stage: Option<Stage>,
    ) -> Result<(), JournalError> {
        let sql = format!(
            "UPDATE holders SET state = $2, reason = $3, updated = now(){} WHERE id = $1 AND station = $4 AND reader = $5 AND state IN ({}) AND ($6 = '' OR state = $6)",
            if to == State::Pending {
                ", station = NULL, reader = NULL, card_id = NULL"
            } else {
                ""
            },
            in_flight_sql()
        );
        self.audited(Intent::Audit, |db| {
            let card = row_card(db, id)?;
            let n = db.execute(
                &sql,
                &[
                    Param::Int(id),
                    Param::Text(to.as_str()),
                    Param::Text(reason),
                    Param::Text(station),
                    Param::Text(reader),
                    Param::Text(stage.map_or("", Stage::as_str)),
                ],
            )?;
            if n != 1 {
                return Err(JournalError::NotInState {
                    id,
                    expected: State::Card(stage.unwrap_or(Stage::Blank)),
                });
            }
            let card = if to == State::Pending { None } else { card };
            Ok((
                (),
                AuditNote::change(event, id, to, card.as_deref(), reason.into()),
            ))
        })
    }

    /// A row in review whose card is back in this station's `reader`: a blank card is
    /// personalised for the row's holder again (the row goes back to [`Stage::Blank`]); an
    /// issued one that passed the acceptance test is recorded issued (`issued = true`).
    pub fn resume_review(
        &mut self,
        id: i64,
        card_id: &str,
        reader: &str,
        issued: bool,
    ) -> Result<(), JournalError> {
        let station = self.station.clone();
        let to = if issued { Stage::Issued } else { Stage::Blank };
        self.audited(Intent::Audit, |db| {
            let n = db.execute(
                "UPDATE holders SET state = $2, station = $3, reader = $4, updated = now() WHERE id = $1 AND state = 'review' AND card_id = $5",
                &[
                    Param::Int(id),
                    Param::Text(to.as_str()),
                    Param::Text(&station),
                    Param::Text(reader),
                    Param::Text(card_id),
                ],
            )?;
            if n != 1 {
                return Err(JournalError::NotInState {
                    id,
                    expected: State::Review,
                });
            }
            let detail = if issued {
                "its card came back issued and passed the acceptance test"
            } else {
                "its card came back blank: personalised again"
            };
            Ok((
                (),
                AuditNote::change("resumed from review", id, State::Card(to), Some(card_id), detail.into()),
            ))
        })
    }

    /// Puts a failed or reviewed holder — or an issued one whose card was spoiled — back to
    /// pending. `holder` is a card number, an SSN or a row id.
    pub fn requeue(&mut self, holder: &str, reason: &str) -> Result<i64, JournalError> {
        self.audited(Intent::Audit, |db| {
            let found = db.query(
                "SELECT id, state, card_id FROM holders WHERE card_number = $1 OR ssn = $1 OR CAST(id AS TEXT) = $1",
                &[Param::Text(holder)],
            )?;
            if found.len() > 1 {
                return Err(JournalError::AmbiguousHolder(holder.into()));
            }
            let Some(r) = found.into_iter().next() else {
                return Err(JournalError::NoSuchHolder(holder.into()));
            };
            let [id, state, card_id] = row(r)?;
            let (id, state, card_id) = (id.int()?, state.text()?.parse::<State>()?, card_id.opt_text()?);
            let spoiled = match &card_id {
                Some(c) => matches!(card_status(db, c)?, CardStatus::Spoiled { .. }),
                None => false,
            };
            // A reviewed row's card may be issued: the card is accounted for (spoiled) first.
            let allowed = state == State::Failed
                || (state == State::Review && (card_id.is_none() || spoiled))
                || (state == State::Card(Stage::Issued) && spoiled);
            if !allowed {
                return Err(JournalError::CannotRequeue {
                    holder: holder.into(),
                    state,
                });
            }
            db.execute(
                "UPDATE holders SET state = 'pending', station = NULL, reader = NULL, card_id = NULL, reason = $2, updated = now() WHERE id = $1",
                &[Param::Int(id), Param::Text(reason)],
            )?;
            Ok((id, AuditNote::change("requeued", id, State::Pending, None, format!("was {state}: {reason}"))))
        })
    }

    /// Takes card `card_id` out of circulation: no claim will use it again. The row that holds
    /// it, if any, keeps its state (an operator requeues the holder).
    pub fn spoil(&mut self, card_id: &str, reason: &str) -> Result<Option<i64>, JournalError> {
        let operator = self.operator.clone();
        self.audited(Intent::Audit, |db| {
            let holder = match card_status(db, card_id)? {
                CardStatus::Spoiled { .. } => {
                    return Err(JournalError::AlreadySpoiled {
                        card_id: card_id.into(),
                    })
                }
                CardStatus::InFlight(f) => Some((f.id, State::Card(f.stage))),
                CardStatus::Issued { holder } => Some((holder, State::Card(Stage::Issued))),
                CardStatus::InReview { holder, .. } => Some((holder, State::Review)),
                CardStatus::Free => last_row_of_card(db, card_id)?,
            };
            let at = db.timestamp()?;
            db.execute(
                "INSERT INTO spoiled (card_id, reason, operator, at) VALUES ($1, $2, $3, $4)",
                &[
                    Param::Text(card_id),
                    Param::Text(reason),
                    Param::Text(&operator),
                    Param::Text(&at),
                ],
            )?;
            let note = AuditNote {
                event: "spoiled".into(),
                holder_id: holder.map(|h| h.0),
                state: holder.map(|h| h.1),
                card_id: Some(card_id.into()),
                detail: reason.into(),
            };
            Ok((holder.map(|h| h.0), note))
        })
    }

    /// Records that this station is alive (leases of stations sharing a journal).
    pub fn heartbeat(&mut self) -> Result<(), JournalError> {
        let (station, instance) = (self.station.clone(), self.instance.clone());
        self.timed(|db| {
            let now = db.epoch_millis()?;
            db.execute(
                "INSERT INTO stations (name, heartbeat, instance) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET heartbeat = $2, instance = $3",
                &[Param::Text(&station), Param::Int(now), Param::Text(&instance)],
            )?;
            Ok(())
        })
    }

    /// Refuses to run as a station name that another running process uses: one on this host
    /// whose process is alive, or one on another host whose heartbeat is younger than `lease`.
    /// (Two stations with one name would take each other's rows for their own.)
    pub fn check_station(&mut self, lease: Duration) -> Result<(), JournalError> {
        let (station, me) = (self.station.clone(), self.instance.clone());
        self.timed(|db| {
            let now = db.epoch_millis()?;
            let Some(r) = db
                .query(
                    "SELECT heartbeat, instance FROM stations WHERE name = $1",
                    &[Param::Text(&station)],
                )?
                .into_iter()
                .next()
            else {
                return Ok(());
            };
            let [beat, instance] = row(r)?;
            let (beat, instance) = (beat.int()?, instance.text()?);
            if instance == me {
                return Ok(());
            }
            let (host, pid) = instance.rsplit_once(':').unwrap_or((&instance, ""));
            let (my_host, _) = me.rsplit_once(':').unwrap_or((&me, ""));
            let running = if host == my_host {
                !pid.is_empty() && Path::new("/proc").join(pid).exists()
            } else {
                now - beat < lease.as_millis() as i64
            };
            if running {
                return Err(JournalError::StationRunning {
                    station,
                    instance,
                    seconds: (now - beat) / 1000,
                });
            }
            Ok(())
        })
    }

    /// Rows of this station and reader with a card on its way.
    pub fn in_flight(&mut self, reader: &str) -> Result<Vec<InFlight>, JournalError> {
        let station = self.station.clone();
        let sql = format!(
            "SELECT {IN_FLIGHT_COLUMNS} FROM holders WHERE station = $1 AND reader = $2 AND state IN ({}) ORDER BY id",
            in_flight_sql()
        );
        self.timed(|db| {
            db.query(&sql, &[Param::Text(&station), Param::Text(reader)])?
                .into_iter()
                .map(in_flight_row)
                .collect()
        })
    }

    /// In-flight rows nobody looks after: this station's rows on readers not in `readers`, and
    /// other stations' rows whose lease (last heartbeat + `lease`) expired.
    pub fn orphans(
        &mut self,
        readers: &[String],
        lease: Duration,
    ) -> Result<Vec<Orphan>, JournalError> {
        let station = self.station.clone();
        let sql = format!(
            "SELECT h.id, h.state, h.card_id, h.station, h.reader, h.holder, s.heartbeat FROM holders h LEFT JOIN stations s ON s.name = h.station WHERE h.state IN ({}) ORDER BY h.id",
            in_flight_sql()
        );
        self.timed(|db| {
            let now = db.epoch_millis()?;
            let mut out = Vec::new();
            for mut r in db.query(&sql, &[])? {
                let heartbeat = r.pop().unwrap_or(Cell::Null);
                let f = in_flight_row(r)?;
                let why = if f.station == station {
                    if readers.contains(&f.reader) {
                        continue;
                    }
                    format!("reader {:?} of this station is not in this run", f.reader)
                } else {
                    let last = match heartbeat {
                        Cell::Null => None,
                        c => Some(c.int()?),
                    };
                    match last {
                        Some(t) if now - t < lease.as_millis() as i64 => continue,
                        Some(t) => format!(
                            "station {:?} last seen {} s ago (lease {} s)",
                            f.station,
                            (now - t) / 1000,
                            lease.as_secs()
                        ),
                        None => format!("station {:?} never reported", f.station),
                    }
                };
                out.push(Orphan { row: f, why });
            }
            Ok(out)
        })
    }

    /// Takes over an orphaned row: untouched (still [`Stage::Blank`]) it goes back to pending;
    /// otherwise an operator must find its card, so it goes to review.
    pub fn take_over(&mut self, o: &Orphan) -> Result<State, JournalError> {
        let (to, event) = if o.row.stage == Stage::Blank {
            (State::Pending, "released")
        } else {
            (State::Review, "review")
        };
        let reason = format!("taken over at {}: {}", o.row.stage, o.why);
        // Only the row as it was seen: a row its station moved on meanwhile stays as it is.
        self.settle(
            o.row.id,
            to,
            event,
            &reason,
            &o.row.station,
            &o.row.reader,
            Some(o.row.stage),
        )?;
        Ok(to)
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

    /// Rows not issued: (state, count), for the run's exit status.
    pub fn unresolved(&mut self) -> Result<Vec<(State, i64)>, JournalError> {
        Ok(self
            .counts()?
            .into_iter()
            .filter(|(s, _)| *s != State::Card(Stage::Issued))
            .collect())
    }

    /// Streams the rows in `state` (all rows with `None`) to `each`, in id order.
    pub fn list(
        &mut self,
        state: Option<State>,
        each: &mut dyn FnMut(Listed) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let wanted = state.map(State::as_str);
        self.timed(|db| {
            db.query_each(
                "SELECT id, line, card_number, state, station, reader, card_id, reason FROM holders WHERE ($1 = '' OR state = $1) ORDER BY id",
                &[Param::Text(wanted.unwrap_or(""))],
                &mut |r| {
                    let [id, line, cn, state, station, reader, card_id, reason] = row(r)?;
                    let state = state.text()?;
                    state.parse::<State>()?;
                    each(Listed {
                        id: id.int()?,
                        line: line.int()?,
                        card_number: cn.text()?,
                        state,
                        station: station.opt_text()?,
                        reader: reader.opt_text()?,
                        card_id: card_id.opt_text()?,
                        reason: reason.opt_text()?,
                    })
                },
            )
        })
    }

    /// Streams the issued cards (card number, card identification code) to `each`.
    pub fn issued(
        &mut self,
        each: &mut dyn FnMut(String, String) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        self.timed(|db| {
            db.query_each(
                "SELECT card_number, card_id FROM holders WHERE state = 'issued' ORDER BY id",
                &[],
                &mut |r| {
                    let [cn, id] = row(r)?;
                    each(cn.text()?, id.opt_text()?.unwrap_or_default())
                },
            )
        })
    }

    /// Appends an operator's event (no state change) to the audit chain.
    pub fn audit(&mut self, event: &str, detail: &str) -> Result<(), JournalError> {
        self.audited(Intent::Audit, |_| {
            Ok(((), AuditNote::event(event, detail.into())))
        })
    }

    /// Appends several operator events (`(event, detail)`, no state change) in one
    /// transaction: a service recording many requests commits them together (group commit).
    pub fn audit_all(&mut self, events: &[(&str, &str)]) -> Result<(), JournalError> {
        self.audited_many(Intent::Audit, |_, _| {
            let notes = events
                .iter()
                .map(|(event, detail)| AuditNote::event(event, (*detail).into()))
                .collect();
            Ok(((), notes))
        })
    }

    /// Writes the chain's head to the anchor file at `path`.
    pub fn anchor(&mut self, path: &Path) -> Result<Anchor, JournalError> {
        let Self {
            db, key, station, ..
        } = self;
        let key = key.as_deref_mut().ok_or(JournalError::NotAudited)?;
        anchor::write(db.as_mut(), key, station, path)
    }

    /// Verifies the audit chain under the audit key, every holder row against it, and the
    /// anchor file at `anchor`.
    pub fn audit_verify(
        &mut self,
        anchor: &Path,
    ) -> Result<Result<Verified, AuditBreak>, JournalError> {
        let Self { db, key, .. } = self;
        let key = key.as_deref_mut().ok_or(JournalError::NotAudited)?;
        in_transaction(db.as_mut(), Intent::Read, |db| {
            // The anchor first: entries deleted from the end say so before anything else.
            let anchored = match anchor::check(db, key, anchor)? {
                Some(Err(b)) => return Ok(Err(b)),
                Some(Ok(_)) => true,
                None => false,
            };
            let verified = match audit::verify(db, key)? {
                Ok(v) => v,
                Err(b) => return Ok(Err(b)),
            };
            // Holder rows always have entries (`added`): without an anchor, only an empty
            // journal verifies.
            if anchored || (verified.entries == 0 && verified.holders == 0) {
                Ok(Ok(verified))
            } else {
                Ok(Err(AuditBreak::NoAnchor {
                    entries: verified.entries,
                    path: anchor.display().to_string(),
                }))
            }
        })
    }
}

/// What a state change writes to the audit chain.
struct AuditNote {
    event: String,
    holder_id: Option<i64>,
    state: Option<State>,
    card_id: Option<String>,
    detail: String,
}

impl AuditNote {
    fn event(event: &str, detail: String) -> Self {
        Self {
            event: event.into(),
            holder_id: None,
            state: None,
            card_id: None,
            detail,
        }
    }
    fn none() -> Self {
        Self::event("claim: no holder pending", String::new())
    }
    fn change(event: &str, id: i64, state: State, card_id: Option<&str>, detail: String) -> Self {
        Self {
            event: event.into(),
            holder_id: Some(id),
            state: Some(state),
            card_id: card_id.map(str::to_string),
            detail,
        }
    }
}

fn row_card(db: &mut (dyn Db + Send), id: i64) -> Result<Option<String>, JournalError> {
    match db
        .query(
            "SELECT card_id FROM holders WHERE id = $1",
            &[Param::Int(id)],
        )?
        .into_iter()
        .next()
    {
        Some(r) => {
            let [c] = row(r)?;
            c.opt_text()
        }
        None => Err(JournalError::NoSuchHolder(id.to_string())),
    }
}

fn last_row_of_card(
    db: &mut (dyn Db + Send),
    card_id: &str,
) -> Result<Option<(i64, State)>, JournalError> {
    match db
        .query(
            "SELECT id, state FROM holders WHERE card_id = $1 ORDER BY updated DESC, id DESC LIMIT 1",
            &[Param::Text(card_id)],
        )?
        .into_iter()
        .next()
    {
        Some(r) => {
            let [id, state] = row(r)?;
            Ok(Some((id.int()?, state.text()?.parse()?)))
        }
        None => Ok(None),
    }
}

fn card_status(db: &mut (dyn Db + Send), card_id: &str) -> Result<CardStatus, JournalError> {
    if let Some(r) = db
        .query(
            "SELECT reason FROM spoiled WHERE card_id = $1",
            &[Param::Text(card_id)],
        )?
        .into_iter()
        .next()
    {
        let [reason] = row(r)?;
        return Ok(CardStatus::Spoiled {
            reason: reason.text()?,
        });
    }
    let sql = format!(
        "SELECT {IN_FLIGHT_COLUMNS} FROM holders WHERE card_id = $1 AND state NOT IN ('pending', 'failed', 'review')"
    );
    match db.query(&sql, &[Param::Text(card_id)])?.into_iter().next() {
        None => {
            let review = db.query(
                "SELECT id, holder FROM holders WHERE card_id = $1 AND state = 'review' ORDER BY updated DESC, id DESC LIMIT 1",
                &[Param::Text(card_id)],
            )?;
            match review.into_iter().next() {
                None => Ok(CardStatus::Free),
                Some(r) => {
                    let [id, holder] = row(r)?;
                    Ok(CardStatus::InReview {
                        holder: id.int()?,
                        data: Box::new(holder_of(&holder.text()?)?),
                    })
                }
            }
        }
        Some(r) => {
            let state = r.get(1).cloned().map(Cell::text).transpose()?;
            if state.as_deref() == Some(Stage::Issued.as_str()) {
                let id = r.first().map(Cell::int).transpose()?.unwrap_or(0);
                Ok(CardStatus::Issued { holder: id })
            } else {
                Ok(CardStatus::InFlight(Box::new(in_flight_row(r)?)))
            }
        }
    }
}
