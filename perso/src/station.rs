//! One worker per reader: wait for a blank card, claim a holder, personalise, verify, issue,
//! and resume after a crash from what the journal and the card in the reader say.

use crate::card::{accept, identify, personalise, Stage};
use crate::journal::{state, Journal, JournalError};
use sscard::channel::Channel;
use sscard::keys::KeySource;
use sscard::transport::pcsc::{establish, PcscTransport};
use sscard_core::holder::Holder;
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
pub struct Worker {
    pub station: String,
    pub reader: String,
    pub region: String,
    pub journal: String,
    /// How long to wait for the next blank card before giving up.
    pub idle: Duration,
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

fn connect(reader: &str) -> Option<PcscTransport> {
    let ctx = establish().ok()?;
    PcscTransport::connect_named(&ctx, reader, false).ok()
}

/// Advances the journal row to `to`, through the states in between.
fn advance_to(
    journal: &mut Journal,
    id: i64,
    from: &mut &'static str,
    to: &'static str,
) -> Result<(), JournalError> {
    let order = [
        state::CLAIMED,
        state::WRITTEN,
        state::VERIFIED,
        state::ISSUED,
    ];
    let (a, b) = (
        order.iter().position(|s| s == from).unwrap_or(0),
        order.iter().position(|s| *s == to).unwrap_or(0),
    );
    for s in &order[a + 1..=b.max(a)] {
        journal.advance(id, s)?;
        *from = s;
    }
    Ok(())
}

/// Personalises (or finishes) the card in the reader for one claimed row.
fn issue(
    w: &Worker,
    t: &mut PcscTransport,
    keys: &mut dyn KeySource,
    journal: &mut Journal,
    id: i64,
    mut at: &'static str,
    holder: &Holder,
) -> Result<(), String> {
    let (_, blank) = identify(Channel::new(t), keys).map_err(|e| e.to_string())?;
    if blank {
        personalise(Channel::new(t), keys, holder, &w.region, &mut |stage| {
            let to = match stage {
                Stage::Written => state::WRITTEN,
                Stage::Verified => state::VERIFIED,
                _ => return Ok(()),
            };
            // A step the journal cannot record stops the card before END PERSONALISATION.
            advance_to(journal, id, &mut at, to).map_err(|e| e.to_string())
        })
        .map_err(|e| e.to_string())?;
    }
    // Issued on the card: the acceptance test decides the journal's last step. No reset here:
    // a card feeder takes a reset of an issued card as its release.
    accept(Channel::new(t), keys, holder).map_err(|e| format!("acceptance test: {e}"))?;
    advance_to(journal, id, &mut at, state::VERIFIED).map_err(|e| e.to_string())?;
    advance_to(journal, id, &mut at, state::ISSUED).map_err(|e| e.to_string())
}

fn as_static(s: &str) -> &'static str {
    match s {
        "written" => state::WRITTEN,
        "verified" => state::VERIFIED,
        _ => state::CLAIMED,
    }
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
    for (id, st, card_id, holder) in journal.in_flight(&w.station, &w.reader)? {
        let here = connect(&w.reader).and_then(|mut t| {
            identify(Channel::new(&mut t), keys)
                .ok()
                .map(|(c, _)| (t, c))
        });
        match here {
            Some((mut t, c)) if c == card_id => {
                match issue(w, &mut t, keys, &mut journal, id, as_static(&st), &holder) {
                    Ok(()) => {
                        issued += 1;
                        journal.audit(
                            &w.station,
                            "issued after resume",
                            &audit_detail(&card_id, &holder, keys),
                        )?;
                        let _ = events.send(ev(
                            w,
                            "resumed_issued",
                            Some(&card_id),
                            Some(&holder),
                            None,
                            t0,
                        ));
                        wait_for_release(w, &card_id, keys);
                    }
                    Err(e) => {
                        journal.review(id, &format!("resume: {e}"))?;
                        let _ = events.send(ev(
                            w,
                            "review",
                            Some(&card_id),
                            Some(&holder),
                            Some(e),
                            t0,
                        ));
                    }
                }
            }
            _ => {
                journal.review(id, "after a restart the card was no longer in the reader")?;
                let _ = events.send(ev(
                    w,
                    "review",
                    Some(&card_id),
                    Some(&holder),
                    Some("card gone".into()),
                    t0,
                ));
            }
        }
    }
    // Cards refused here stay refused: the operator takes them out.
    let mut refused = std::collections::HashSet::new();
    loop {
        let Some((mut t, card_id)) = wait_for_blank(w, keys, &refused) else {
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
            &mut t,
            keys,
            &mut journal,
            claim.id,
            state::CLAIMED,
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
                journal.fail(claim.id, &e, false)?;
                let _ = events.send(ev(
                    w,
                    "failed",
                    Some(&card_id),
                    Some(&claim.holder),
                    Some(e),
                    t0,
                ));
            }
        }
        drop(t);
        wait_for_release(w, &card_id, keys);
    }
}

/// What the audit log records of an issued card: the card, the holder and the key ids loaded,
/// never key values.
fn audit_detail(card_id: &str, holder: &Holder, keys: &dyn KeySource) -> String {
    format!(
        "card {card_id} holder {}: key ids 08 0A 03 11 12 21 22 and the PIN object loaded under TK 00, from {}",
        holder.card_number,
        keys.describe()
    )
}

/// The next blank card in the reader (not one refused before): its transport and
/// identification code.
fn wait_for_blank(
    w: &Worker,
    keys: &mut dyn KeySource,
    refused: &std::collections::HashSet<String>,
) -> Option<(PcscTransport, String)> {
    let deadline = Instant::now() + w.idle;
    while Instant::now() < deadline {
        if let Some(mut t) = connect(&w.reader) {
            match identify(Channel::new(&mut t), keys) {
                Ok((card_id, true)) if !refused.contains(&card_id) => return Some((t, card_id)),
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
        match connect(&w.reader).and_then(|mut t| identify(Channel::new(&mut t), keys).ok()) {
            Some((c, _)) if c == card_id => std::thread::sleep(Duration::from_millis(100)),
            _ => return,
        }
    }
}
