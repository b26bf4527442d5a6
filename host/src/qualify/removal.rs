//! Card removal and reinsertion in the middle of a loop of APDUs, and the reader unplugged and
//! plugged back: how long the reader takes to report each, and whether the card answers again.
//!
//! The card is put back only once the reader has reported it gone, and the card is connected
//! to again only once the reader has reported it back ([`CardWatch`]). A card pulled and pushed
//! back between two of the reader's polls is a real event of its own (a contact bounce), but
//! not what this check measures: with pcsc-lite it leaves the reader showing no card while its
//! event thread believes the old one still in, and the new card is never powered up ("after
//! reinsertion: the card does not answer", a few runs in a hundred under load before the
//! waits, and sometimes the card left invisible to pcscd for good).

use super::check::{Finding, Needs};
use super::failure::{CallbackError, CheckFailure};
use super::runner::Runner;
use sscard_transport::TransportError;
use std::time::{Duration, Instant};

/// Takes the card out (`false`) or puts it back (`true`): the model's control socket, or an
/// operator.
pub type Mover = Box<dyn FnMut(bool) -> Result<(), CallbackError>>;

/// The reader's own report of the card leaving and arriving (through PC/SC: pcscd's event
/// count and state, `sscard_transport::pcsc::ReaderWatch`).
pub trait CardWatch {
    /// Notes the reader's state before the card is moved.
    fn mark(&mut self) -> Result<(), TransportError>;
    /// Waits, within a bound of its own, until the reader has reported the card gone
    /// (`present` false) or back (`true`) since the last mark or wait.
    fn wait(&mut self, present: bool) -> Result<(), TransportError>;
}

/// How to take the card out and put it back during the removal check.
pub enum Removal {
    /// Not possible here: the check is reported not applicable with the reason.
    Unavailable(String),
    /// Moved by `mover`; `watch` waits for the reader to report each move.
    Driven {
        mover: Mover,
        watch: Box<dyn CardWatch>,
    },
}

/// Asks for the reader to be unplugged and plugged back; reports what the PnP notification
/// saw.
pub type Unplug = Box<dyn FnMut() -> Result<String, CallbackError>>;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The removal check; `probe` is a command the card answers (`9000` or not, any answer counts).
pub(super) fn removal(r: &mut Runner<'_>, removal: &mut Removal, probe: &[u8]) {
    const ID: &str = "card.removal";
    const NAME: &str = "card removal and reinsertion during a loop";
    let t = &r.thresholds;
    let threshold = format!(
        "removal reported within {} ms; the card answers again within {} ms of its insertion",
        t.removal_seen_within_ms, t.reinsertion_within_ms
    );
    let (seen_max, back_max) = (t.removal_seen_within_ms, t.reinsertion_within_ms);
    match removal {
        Removal::Unavailable(why) => {
            let why = why.clone();
            r.not_applicable(ID, NAME, Needs::Removal, &threshold, &why);
        }
        Removal::Driven { mover, watch } => {
            let (mover, watch) = (mover.as_mut(), watch.as_mut());
            r.check(ID, NAME, Needs::Removal, &threshold, |r| {
                for i in 0..10 {
                    r.raw(probe)
                        .map_err(|e| e.within(format!("before the removal, APDU {i}")))?;
                }
                watch
                    .mark()
                    .map_err(|e| CheckFailure::from(e).within("before the removal"))?;
                mover(false).map_err(|source| CheckFailure::Callback {
                    what: "remove",
                    source,
                })?;
                let removed = Instant::now();
                let out = out_and_back(r, mover, watch, probe, removed);
                if out.is_err() {
                    // Whatever failed, the card goes back in: the checks of a next run, or of
                    // another program, find it where they left it.
                    let _ = mover(true);
                }
                let m = out?;
                let figure = format!(
                    "removal seen at APDU {} after {:.0} ms ({}); pcscd counted it after {:.0} ms; \
                     the insertion after {:.0} ms; card answering {:.0} ms after insertion",
                    m.apdu,
                    ms(m.failed_after),
                    m.error,
                    ms(m.removal_reported),
                    ms(m.insertion_reported),
                    ms(m.answering_after)
                );
                let mut over = Vec::new();
                if m.failed_after.as_millis() > u128::from(seen_max) {
                    over.push(format!(
                        "removal seen after {} ms, over {seen_max} ms",
                        m.failed_after.as_millis()
                    ));
                }
                if m.answering_after.as_millis() > u128::from(back_max) {
                    over.push(format!(
                        "card back after {} ms, over {back_max} ms",
                        m.answering_after.as_millis()
                    ));
                }
                Ok(if over.is_empty() {
                    Finding::Pass(figure)
                } else {
                    Finding::OverThreshold {
                        figure,
                        why: over.join("; "),
                    }
                })
            });
        }
    }
}

/// What the removal check measured.
struct Moves {
    /// The first APDU that failed after the removal, and how.
    apdu: usize,
    error: CheckFailure,
    failed_after: Duration,
    /// From the removal to the reader's report of it.
    removal_reported: Duration,
    /// From the insertion to the reader's report of it.
    insertion_reported: Duration,
    /// From the insertion to the card's first answer on a new connection.
    answering_after: Duration,
}

/// With the card just taken out: probes until an APDU fails, waits for the reader to report
/// the removal, puts the card back, waits for the reader to report it, and connects again.
fn out_and_back(
    r: &mut Runner<'_>,
    mover: &mut dyn FnMut(bool) -> Result<(), CallbackError>,
    watch: &mut dyn CardWatch,
    probe: &[u8],
    removed: Instant,
) -> Result<Moves, CheckFailure> {
    let mut failed = None;
    for i in 1..=2000 {
        if let Err(e) = r.raw(probe) {
            failed = Some((i, e, removed.elapsed()));
            break;
        }
    }
    let (apdu, error, failed_after) = failed.ok_or(CheckFailure::KeptAnswering)?;
    watch
        .wait(false)
        .map_err(|e| CheckFailure::from(e).within("after the removal"))?;
    let removal_reported = removed.elapsed();
    mover(true).map_err(|source| CheckFailure::Callback {
        what: "insert",
        source,
    })?;
    let inserted = Instant::now();
    watch
        .wait(true)
        .map_err(|e| CheckFailure::from(e).within("after the reinsertion"))?;
    let insertion_reported = inserted.elapsed();
    r.recover().map_err(|e| e.within("after reinsertion"))?;
    r.raw(probe).map_err(|e| e.within("the reinserted card"))?;
    Ok(Moves {
        apdu,
        error,
        failed_after,
        removal_reported,
        insertion_reported,
        answering_after: inserted.elapsed(),
    })
}

/// The reader unplug check.
pub(super) fn unplug(r: &mut Runner<'_>, unplug: Option<&mut Unplug>) {
    const ID: &str = "reader.unplug";
    const NAME: &str = "reader unplug and replug seen by the PnP notification";
    const THRESHOLD: &str = "the reader leaves and comes back within 60 s each";
    match unplug {
        None => r.not_applicable(
            ID,
            NAME,
            Needs::Unplug,
            THRESHOLD,
            "needs --interactive and a reader that can be unplugged (a vpcd reader cannot)",
        ),
        Some(watch) => r.check(ID, NAME, Needs::Unplug, THRESHOLD, |_| {
            watch().map(Finding::Pass).map_err(CheckFailure::Unplug)
        }),
    }
}
