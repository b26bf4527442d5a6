//! Card removal and reinsertion in the middle of a loop of APDUs, and the reader unplugged and
//! plugged back: how long the reader takes to report each, and whether the card answers again.

use super::check::{Finding, Needs};
use super::failure::{CallbackError, CheckFailure};
use super::runner::Runner;
use std::time::Instant;

/// How to take the card out and put it back during the removal check.
pub enum Removal {
    /// Not possible here: the check is reported not applicable with the reason.
    Unavailable(String),
    /// Remove (`false`) and insert (`true`) through a callback (the model's control socket, or
    /// an operator).
    Callback(Box<dyn FnMut(bool) -> Result<(), CallbackError>>),
}

/// Asks for the reader to be unplugged and plugged back; reports what the PnP notification
/// saw.
pub type Unplug = Box<dyn FnMut() -> Result<String, CallbackError>>;

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
        Removal::Callback(cb) => {
            let cb = cb.as_mut();
            r.check(ID, NAME, Needs::Removal, &threshold, |r| {
                for i in 0..10 {
                    r.raw(probe)
                        .map_err(|e| e.within(format!("before the removal, APDU {i}")))?;
                }
                cb(false).map_err(|source| CheckFailure::Callback {
                    what: "remove",
                    source,
                })?;
                let removed = Instant::now();
                let mut seen = None;
                for i in 1..=2000 {
                    if let Err(e) = r.raw(probe) {
                        seen = Some((i, e, removed.elapsed()));
                        break;
                    }
                }
                cb(true).map_err(|source| CheckFailure::Callback {
                    what: "insert",
                    source,
                })?;
                let inserted = Instant::now();
                let (n, e, seen_after) = seen.ok_or(CheckFailure::KeptAnswering)?;
                r.recover().map_err(|e| e.within("after reinsertion"))?;
                r.raw(probe).map_err(|e| e.within("the reinserted card"))?;
                let back_after = inserted.elapsed();
                let figure = format!(
                    "removal seen at APDU {n} after {:.0} ms ({e}); card answering {:.0} ms after insertion",
                    seen_after.as_secs_f64() * 1000.0,
                    back_after.as_secs_f64() * 1000.0
                );
                let mut over = Vec::new();
                if seen_after.as_millis() > u128::from(seen_max) {
                    over.push(format!("removal seen after {} ms, over {seen_max} ms", seen_after.as_millis()));
                }
                if back_after.as_millis() > u128::from(back_max) {
                    over.push(format!("card back after {} ms, over {back_max} ms", back_after.as_millis()));
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
