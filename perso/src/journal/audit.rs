//! The keyed audit chain. Every holder state change, and every operator action, appends one
//! entry in the same database transaction as the change itself. An entry's hash is an
//! HMAC-SHA256, under the key source's audit key (non-extractable in a token), over the previous
//! entry's hash and every column of the entry: without the key nobody can rewrite an entry and
//! recompute the chain. Deleting the newest entries or emptying the table is caught by the
//! anchor (`anchor.rs`), kept outside the journal; editing a holder's state is caught because
//! the chain records each row's states and the last one must be the row's.

use super::db::{Cell, Db, Param};
use super::{row, JournalError};
use sscard::keys::KeySource;
use sscard_core::hexfmt::to_hex;
use std::collections::HashMap;

/// The `prev` of the first entry.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a MAC of the audit log covers: a domain tag, then each part prefixed with its length,
/// so that no two different lists of parts give the same bytes.
pub(crate) fn message(tag: &[u8], parts: &[&str]) -> Vec<u8> {
    let mut m = tag.to_vec();
    for part in parts {
        m.extend_from_slice(&(part.len() as u64).to_be_bytes());
        m.extend_from_slice(part.as_bytes());
    }
    m
}

/// One entry as it is chained (everything but its own hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub at: String,
    pub station: String,
    /// The operator (`--operator`).
    pub actor: String,
    pub event: String,
    /// The holder row whose state changed, if any.
    pub holder_id: Option<i64>,
    /// The row's state after the change.
    pub state: Option<String>,
    /// The card the row holds after the change.
    pub card_id: Option<String>,
    /// Key ids, reasons, counts: never key values, never personal data.
    pub detail: String,
    pub prev: String,
}

impl Entry {
    /// The bytes the HMAC covers: each field length-prefixed, so no two entries share them.
    fn message(&self) -> Vec<u8> {
        let seq = self.seq.to_string();
        let holder = self.holder_id.map(|h| h.to_string()).unwrap_or_default();
        message(
            b"sscard audit v2",
            &[
                self.prev.as_str(),
                &seq,
                &self.at,
                &self.station,
                &self.actor,
                &self.event,
                &holder,
                self.state.as_deref().unwrap_or(""),
                self.card_id.as_deref().unwrap_or(""),
                &self.detail,
            ],
        )
    }

    /// The entry's hash under the audit key.
    pub(crate) fn hash(&self, key: &mut dyn KeySource) -> Result<String, JournalError> {
        Ok(to_hex(&key.audit_mac(&self.message())?))
    }
}

/// The keyed digest of a holder row's data (card number, SSN and the stored holder record), as
/// the `added` entry chains it: a digest under the audit key, so the log holds no personal data
/// a dictionary of ID numbers could recover.
pub(crate) fn holder_digest(
    key: &mut dyn KeySource,
    card_number: &str,
    ssn: &str,
    holder_json: &str,
) -> Result<String, JournalError> {
    let m = message(b"sscard holder v1", &[card_number, ssn, holder_json]);
    Ok(to_hex(&key.audit_mac(&m)?[..16]))
}

/// The digest an `added` entry's detail carries.
fn digest_of(detail: &str) -> Option<&str> {
    detail.rsplit_once("holder digest ").map(|(_, d)| d)
}

/// What the station or operator records: the event and, for a state change, the row.
#[derive(Clone, Debug, Default)]
pub struct Record<'a> {
    pub event: &'a str,
    pub holder_id: Option<i64>,
    pub state: Option<&'a str>,
    pub card_id: Option<&'a str>,
    pub detail: &'a str,
}

/// Appends one entry inside the caller's transaction (which holds the audit lock).
pub(crate) fn append(
    db: &mut (dyn Db + Send),
    key: &mut dyn KeySource,
    station: &str,
    actor: &str,
    rec: &Record<'_>,
) -> Result<(), JournalError> {
    let (seq, prev) = match db
        .query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?
        .into_iter()
        .next()
    {
        Some(r) => {
            let [seq, hash] = row(r)?;
            (seq.int()?, hash.text()?)
        }
        None => (0, GENESIS.to_string()),
    };
    let entry = Entry {
        seq: seq + 1,
        at: db.timestamp()?,
        station: station.into(),
        actor: actor.into(),
        event: rec.event.into(),
        holder_id: rec.holder_id,
        state: rec.state.map(str::to_string),
        card_id: rec.card_id.map(str::to_string),
        detail: rec.detail.into(),
        prev,
    };
    let hash = entry.hash(key)?;
    db.execute(
        "INSERT INTO audit (seq, at, station, actor, event, holder_id, state, card_id, detail, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            Param::Int(entry.seq),
            Param::Text(&entry.at),
            Param::Text(&entry.station),
            Param::Text(&entry.actor),
            Param::Text(&entry.event),
            Param::OptInt(entry.holder_id),
            Param::OptText(entry.state.as_deref()),
            Param::OptText(entry.card_id.as_deref()),
            Param::Text(&entry.detail),
            Param::Text(&entry.prev),
            Param::Text(&hash),
        ],
    )?;
    Ok(())
}

/// Where the audit log stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditBreak {
    #[error("entry {entry} is missing (found {found} in its place)")]
    Missing { entry: i64, found: i64 },
    #[error("entry {entry} ({event}) does not verify under the audit key: the log was changed")]
    Changed { entry: i64, event: String },
    #[error("holder row {holder} is {row} in the journal, but the audit log last recorded {audited}: the row was edited")]
    HolderEdited {
        holder: i64,
        row: String,
        audited: String,
    },
    #[error("holder row {holder} is recorded in the audit log but missing from the journal")]
    HolderDeleted { holder: i64 },
    #[error("holder row {holder} was never added through the audit log: the row was inserted")]
    HolderNotAdded { holder: i64 },
    #[error("holder row {holder}'s data is not what was added: the row was edited")]
    HolderDataChanged { holder: i64 },
    #[error("the spoiled cards in the journal ({journal}) are not the ones the audit log spoiled ({audited}): the table was edited")]
    SpoiledChanged { journal: usize, audited: usize },
    #[error(
        "the anchor records {anchored} entries, the journal holds {found}: entries were deleted"
    )]
    Truncated { anchored: i64, found: i64 },
    #[error("entry {entry} is not the one anchored at {at}: the log was rewritten")]
    AnchorMismatch { entry: i64, at: String },
    #[error("anchor line {line} does not verify under the audit key: the anchor file was changed, or this is not the key the journal was written with")]
    AnchorChanged { line: usize },
    #[error("the journal holds {entries} audit entries but there is no anchor file {path}: deleted entries could not be detected")]
    NoAnchor { entries: i64, path: String },
}

/// What a verified audit log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: i64,
    /// The newest entry's hash.
    pub head: String,
    /// Holder rows checked against their last audited state.
    pub holders: i64,
}

/// Walks the chain in `seq` order, checking every hash under the key, then compares each
/// holder row with the state the chain last recorded for it. Streams: memory grows with the
/// number of holders, not of entries.
pub(crate) fn verify(
    db: &mut (dyn Db + Send),
    key: &mut dyn KeySource,
) -> Result<Result<Verified, AuditBreak>, JournalError> {
    let mut expected_seq = 0i64;
    let mut prev_hash = GENESIS.to_string();
    let mut last_state: HashMap<i64, (String, Option<String>)> = HashMap::new();
    let mut added: HashMap<i64, String> = HashMap::new();
    let mut spoiled = std::collections::BTreeSet::new();
    let mut broken: Option<AuditBreak> = None;
    db.query_each(
        "SELECT seq, at, station, actor, event, holder_id, state, card_id, detail, prev, hash FROM audit ORDER BY seq",
        &[],
        &mut |r| {
            if broken.is_some() {
                return Ok(());
            }
            let [seq, at, station, actor, event, holder_id, state, card_id, detail, prev, hash] =
                row(r)?;
            expected_seq += 1;
            let entry = Entry {
                seq: seq.int()?,
                at: at.text()?,
                station: station.text()?,
                actor: actor.text()?,
                event: event.text()?,
                holder_id: match holder_id {
                    Cell::Null => None,
                    c => Some(c.int()?),
                },
                state: state.opt_text()?,
                card_id: card_id.opt_text()?,
                detail: detail.text()?,
                prev: prev.text()?,
            };
            let hash = hash.text()?;
            if entry.seq != expected_seq {
                broken = Some(AuditBreak::Missing {
                    entry: expected_seq,
                    found: entry.seq,
                });
                return Ok(());
            }
            let mac = entry.hash(key)?;
            let same = bool::from(subtle::ConstantTimeEq::ct_eq(
                mac.as_bytes(),
                hash.as_bytes(),
            ));
            if entry.prev != prev_hash || !same {
                broken = Some(AuditBreak::Changed {
                    entry: entry.seq,
                    event: entry.event,
                });
                return Ok(());
            }
            if let (Some(h), Some(s)) = (entry.holder_id, &entry.state) {
                last_state.insert(h, (s.clone(), entry.card_id.clone()));
            }
            match entry.event.as_str() {
                "added" => {
                    if let (Some(h), Some(d)) = (entry.holder_id, digest_of(&entry.detail)) {
                        added.insert(h, d.to_string());
                    }
                }
                "spoiled" => spoiled.extend(entry.card_id.clone()),
                _ => {}
            }
            prev_hash = hash;
            Ok(())
        },
    )?;
    if let Some(b) = broken {
        return Ok(Err(b));
    }
    // Every holder row against the chain: a row the chain never saw change must be pending.
    let mut holders = 0i64;
    let mut seen = 0usize;
    db.query_each(
        "SELECT id, state, card_id, card_number, ssn, holder FROM holders ORDER BY id",
        &[],
        &mut |r| {
            if broken.is_some() {
                return Ok(());
            }
            let [id, state, card_id, card_number, ssn, holder] = row(r)?;
            let (id, state, card_id) = (id.int()?, state.text()?, card_id.opt_text()?);
            holders += 1;
            let Some(digest) = added.get(&id) else {
                broken = Some(AuditBreak::HolderNotAdded { holder: id });
                return Ok(());
            };
            let now = holder_digest(key, &card_number.text()?, &ssn.text()?, &holder.text()?)?;
            if !bool::from(subtle::ConstantTimeEq::ct_eq(
                now.as_bytes(),
                digest.as_bytes(),
            )) {
                broken = Some(AuditBreak::HolderDataChanged { holder: id });
                return Ok(());
            }
            let (audited, audited_card) = match last_state.get(&id) {
                Some((s, c)) => {
                    seen += 1;
                    (s.as_str(), c.clone())
                }
                None => ("pending", None),
            };
            // A pending row keeps no card; any other row holds the card the chain recorded.
            let card_ok = state == "pending" || card_id == audited_card;
            if audited != state || !card_ok {
                broken = Some(AuditBreak::HolderEdited {
                    holder: id,
                    row: match &card_id {
                        Some(c) if state != "pending" => format!("{state} on card {c}"),
                        _ => state.clone(),
                    },
                    audited: match &audited_card {
                        Some(c) if audited != "pending" => format!("{audited} on card {c}"),
                        _ => audited.to_string(),
                    },
                });
            }
            Ok(())
        },
    )?;
    if let Some(b) = broken {
        return Ok(Err(b));
    }
    if seen < last_state.len() {
        // Some holder the chain knows has no row any more.
        let mut ids: Vec<i64> = last_state.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let n = db.query(
                "SELECT COUNT(*) FROM holders WHERE id = $1",
                &[Param::Int(id)],
            )?;
            let [count] = row(n.into_iter().next().unwrap_or_default())?;
            if count.int()? == 0 {
                return Ok(Err(AuditBreak::HolderDeleted { holder: id }));
            }
        }
    }
    // The spoiled cards are exactly those the chain spoiled.
    let mut in_table = std::collections::BTreeSet::new();
    db.query_each("SELECT card_id FROM spoiled", &[], &mut |r| {
        let [c] = row(r)?;
        in_table.insert(c.text()?);
        Ok(())
    })?;
    if in_table != spoiled {
        return Ok(Err(AuditBreak::SpoiledChanged {
            journal: in_table.len(),
            audited: spoiled.len(),
        }));
    }
    Ok(Ok(Verified {
        entries: expected_seq,
        head: prev_hash,
        holders,
    }))
}
