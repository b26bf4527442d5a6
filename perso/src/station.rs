//! One worker per reader: wait for a blank card, claim a holder, personalise, verify, issue,
//! and resume after a crash from what the journal and the card in the reader say. The whole
//! personalisation of one card, acceptance test included, runs in one transaction.

use crate::card::{accept, identify, personalise, ListenerError, PersoError};
use crate::journal::{Journal, JournalError};
use crate::state::Stage;
use sscard::keys::KeySource;
use sscard_core::profile::holder::Holder;
use sscard_core::profile::Kid;
use sscard_transport::pcsc::{establish, PcscBackend};
use sscard_transport::trace::Trace;
use sscard_transport::{Connection, TransportError};
use std::collections::HashSet;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// Something a worker did, for progress lines and `--json` events.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Event {
    pub reader: String,
    pub event: String,
    pub card_id: Option<String>,
    pub card_number: Option<String>,
    pub detail: Option<String>,
    pub millis: u64,
}

/// A worker's settings.
#[derive(Debug)]
pub struct Worker {
    pub station: String,
    pub reader: String,
    pub region: String,
    pub journal: String,
    /// How long to wait for the next blank card before giving up.
    pub idle: Duration,
    /// Where the card's exchanges go (`--trace`, `--pcap`, `--trace-json`).
    pub trace: Trace,
}

/// Why one card was not issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Perso(#[from] PersoError),
    #[error("acceptance test: {0}")]
    Acceptance(PersoError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

fn ev(
    w: &Worker,
    event: &str,
    card_id: Option<&str>,
    holder: Option<&Holder>,
    detail: Option<String>,
    t0: Instant,
) -> Event {
    Event {
        reader: w.reader.clone(),
        event: event.into(),
        card_id: card_id.map(str::to_string),
        card_number: holder.map(|h| h.card_number.clone()),
        detail,
        millis: t0.elapsed().as_millis() as u64,
    }
}

fn connect(w: &Worker) -> Option<Connection> {
    let ctx = establish().ok()?;
    let backend = PcscBackend::connect_named(&ctx, &w.reader, false).ok()?;
    Some(Connection::new(backend).traced(&w.trace, "card"))
}

/// The identification code of the card in `conn` and whether it is blank, in a transaction of
/// its own.
fn identify_card(
    conn: &mut Connection,
    keys: &mut dyn KeySource,
) -> Result<(String, bool), IssueError> {
    let mut tx = conn.transaction()?;
    Ok(identify(&mut tx, keys)?)
}

/// Moves the journal row from `at` up to `to`, stage by stage, each on disk before the next.
fn record_up_to(
    journal: &mut Journal,
    id: i64,
    at: &mut Stage,
    to: Stage,
) -> Result<(), JournalError> {
    while *at < to {
        let next = at.next().unwrap_or(Stage::Issued);
        journal.reached(id, *at, next)?;
        *at = next;
    }
    Ok(())
}

/// Personalises (or finishes) the card in the reader for one claimed row, whose card is at
/// stage `at` in the journal.
fn issue(
    w: &Worker,
    conn: &mut Connection,
    keys: &mut dyn KeySource,
    journal: &mut Journal,
    id: i64,
    mut at: Stage,
    holder: &Holder,
) -> Result<(), IssueError> {
    let mut tx = conn.transaction()?;
    let (_, blank) = identify(&mut tx, keys)?;
    if blank {
        personalise(&mut tx, keys, holder, &w.region, &mut |stage| {
            // Issued is recorded once the acceptance test passed. A stage the journal cannot
            // record stops the card before END PERSONALISATION.
            if stage == Stage::Issued {
                return Ok(());
            }
            record_up_to(journal, id, &mut at, stage).map_err(|e| Box::new(e) as ListenerError)
        })?;
    }
    // Issued on the card: the acceptance test decides the journal's last step. No reset here:
    // a card feeder takes a reset of an issued card as its release.
    accept(&mut tx, keys, holder).map_err(IssueError::Acceptance)?;
    record_up_to(journal, id, &mut at, Stage::Issued)?;
    Ok(())
}

/// What a worker did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub issued: usize,
    /// Time spent in the journal.
    pub journal: Duration,
}

/// Runs one reader's worker until no holder is pending or no blank card comes within `idle`.
pub fn run(
    w: &Worker,
    keys: &mut dyn KeySource,
    events: &Sender<Event>,
) -> Result<Stats, JournalError> {
    let mut journal = Journal::open(&w.journal)?;
    let t0 = Instant::now();
    let mut issued = 0;
    // Resume what a crash left in flight on this reader.
    for f in journal.in_flight(&w.station, &w.reader)? {
        let here = connect(w).and_then(|mut c| {
            identify_card(&mut c, keys)
                .ok()
                .map(|(card_id, _)| (c, card_id))
        });
        match here {
            Some((mut conn, c)) if c == f.card_id => {
                match issue(w, &mut conn, keys, &mut journal, f.id, f.stage, &f.holder) {
                    Ok(()) => {
                        issued += 1;
                        journal.audit(
                            &w.station,
                            "issued after resume",
                            &audit_detail(&f.card_id, &f.holder, keys),
                        )?;
                        let _ = events.send(ev(
                            w,
                            "resumed_issued",
                            Some(&f.card_id),
                            Some(&f.holder),
                            None,
                            t0,
                        ));
                        drop(conn);
                        wait_for_release(w, &f.card_id, keys);
                    }
                    Err(e) => {
                        journal.review(f.id, &format!("resume: {e}"))?;
                        let _ = events.send(ev(
                            w,
                            "review",
                            Some(&f.card_id),
                            Some(&f.holder),
                            Some(e.to_string()),
                            t0,
                        ));
                    }
                }
            }
            _ => {
                journal.review(f.id, "after a restart the card was no longer in the reader")?;
                let _ = events.send(ev(
                    w,
                    "review",
                    Some(&f.card_id),
                    Some(&f.holder),
                    Some("card gone".into()),
                    t0,
                ));
            }
        }
    }
    // Cards refused here stay refused: the operator takes them out.
    let mut refused = HashSet::new();
    loop {
        let Some((mut conn, card_id)) = wait_for_blank(w, keys, &refused) else {
            let _ = events.send(ev(
                w,
                "idle",
                None,
                None,
                Some(format!("no blank card within {} s", w.idle.as_secs())),
                t0,
            ));
            return Ok(Stats {
                issued,
                journal: journal.spent(),
            });
        };
        // A blank card of another city is refused before a holder is claimed for it: the key
        // source could not make its keys, and the holder stays pending for the next card.
        if !card_id.starts_with(&w.region) {
            let _ = events.send(ev(
                w,
                "refused",
                Some(&card_id),
                None,
                Some(format!(
                    "a blank card of region {}, the key source serves {}",
                    &card_id[..6.min(card_id.len())],
                    w.region
                )),
                t0,
            ));
            refused.insert(card_id);
            continue;
        }
        let Some(claim) = journal.claim(&w.station, &w.reader, &card_id)? else {
            let _ = events.send(ev(
                w,
                "done",
                None,
                None,
                Some("no holder pending".into()),
                t0,
            ));
            return Ok(Stats {
                issued,
                journal: journal.spent(),
            });
        };
        let _ = events.send(ev(
            w,
            "claimed",
            Some(&card_id),
            Some(&claim.holder),
            Some(format!("batch line {}", claim.line)),
            t0,
        ));
        match issue(
            w,
            &mut conn,
            keys,
            &mut journal,
            claim.id,
            Stage::Blank,
            &claim.holder,
        ) {
            Ok(()) => {
                issued += 1;
                journal.audit(
                    &w.station,
                    "issued",
                    &audit_detail(&card_id, &claim.holder, keys),
                )?;
                let _ = events.send(ev(
                    w,
                    "issued",
                    Some(&card_id),
                    Some(&claim.holder),
                    None,
                    t0,
                ));
            }
            Err(e) => {
                journal.fail(claim.id, &e.to_string(), false)?;
                let _ = events.send(ev(
                    w,
                    "failed",
                    Some(&card_id),
                    Some(&claim.holder),
                    Some(e.to_string()),
                    t0,
                ));
            }
        }
        drop(conn);
        wait_for_release(w, &card_id, keys);
    }
}

/// What the audit log records of an issued card: the card, the holder and the key ids loaded,
/// never key values.
fn audit_detail(card_id: &str, holder: &Holder, keys: &dyn KeySource) -> String {
    let ids: Vec<String> = Kid::CARD_KEYS
        .iter()
        .map(|k| format!("{:02X}", k.id()))
        .collect();
    format!(
        "card {card_id} holder {}: key ids {} and the PIN object loaded under TK {:02X}, from {}",
        holder.card_number,
        ids.join(" "),
        Kid::Tk.id(),
        keys.describe()
    )
}

/// The next blank card in the reader (not one refused before): its connection and
/// identification code.
fn wait_for_blank(
    w: &Worker,
    keys: &mut dyn KeySource,
    refused: &HashSet<String>,
) -> Option<(Connection, String)> {
    let deadline = Instant::now() + w.idle;
    while Instant::now() < deadline {
        if let Some(mut c) = connect(w) {
            match identify_card(&mut c, keys) {
                Ok((card_id, true)) if !refused.contains(&card_id) => return Some((c, card_id)),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Waits until the card `card_id` has left the reader (or been replaced by a feeder).
fn wait_for_release(w: &Worker, card_id: &str, keys: &mut dyn KeySource) {
    let deadline = Instant::now() + w.idle;
    while Instant::now() < deadline {
        match connect(w).and_then(|mut c| identify_card(&mut c, keys).ok()) {
            Some((c, _)) if c == card_id => std::thread::sleep(Duration::from_millis(100)),
            _ => return,
        }
    }
}

impl sscard_core::classify::Classified for IssueError {
    fn return_code(&self) -> i32 {
        match self {
            Self::Transport(e) => e.return_code(),
            Self::Perso(e) | Self::Acceptance(e) => e.return_code(),
            Self::Journal(e) => e.return_code(),
        }
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        match self {
            Self::Transport(e) => e.exit_class(),
            Self::Perso(e) | Self::Acceptance(e) => e.exit_class(),
            Self::Journal(e) => e.exit_class(),
        }
    }
}
