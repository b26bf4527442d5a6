//! Reader qualification with any card: a card holding the social security application (real or
//! served), the model's loopback test application, or both, and a PSAM in a second reader. Each
//! check declares what it needs; what the card or reader cannot offer is "not applicable" with
//! the reason, never a pass. Measured checks are judged against a threshold profile
//! ([`thresholds`]); the reader's identity comes from PC/SC ([`identity`]). One report model
//! ([`report`]) feeds the text, JSON, HTML, JUnit outputs and [`compare`].

mod check;
pub mod compare;
mod exchange;
mod failure;
mod html;
pub mod identity;
mod junit;
mod latency;
mod loopback;
mod properties;
mod psam;
mod removal;
pub mod report;
mod runner;
mod ssse;
mod t1;
pub mod thresholds;

#[cfg(test)]
mod tests;

pub use check::{Check, Needs, Verdict};
pub use failure::{CallbackError, CheckFailure};
pub use html::{esc as html_escape, html};
pub use junit::junit;
pub use latency::{percentile, Latency};
pub use loopback::{LOOPBACK_AID, MAX_ECHO};
pub use removal::{CardWatch, Mover, Removal, Unplug};
pub use report::{CardInfo, Inconclusive, Mode, Overall, Report, Summary};
pub use runner::Reconnect;

use runner::Runner;
use sscard_core::hexfmt::to_hex;
use sscard_transport::Connection;
use std::time::{Instant, SystemTime};

/// The PSAM of the run.
pub enum PsamSlot {
    /// Connected to the card in the PSAM reader.
    Connected(Connection),
    /// None: why (no `--psam-reader`, no card in it).
    Absent(String),
}

/// What to run, and with what.
pub struct Options {
    pub full: bool,
    pub removal: Removal,
    /// Reconnects to the reader after the card came back.
    pub reconnect: Option<Reconnect>,
    /// Asks for the reader to be unplugged and plugged back (`--interactive`).
    pub unplug: Option<Unplug>,
    pub thresholds: thresholds::Profile,
    pub psam: PsamSlot,
    /// The host's name, for the report.
    pub host: String,
}

fn card_info(conn: &Connection, applications: Vec<String>) -> CardInfo {
    CardInfo {
        reader: conn.reader().to_string(),
        atr: to_hex(conn.atr()),
        protocol: conn.protocol().map(|p| p.name().to_string()),
        applications,
    }
}

/// Runs the qualification on the card of `conn`. Each check runs in a transaction of its own.
pub fn run(conn: &mut Connection, mut opts: Options) -> Report {
    let started = report::rfc3339(SystemTime::now());
    let start = Instant::now();
    let reader = identity::read(conn);
    let (psam, no_psam) = match opts.psam {
        PsamSlot::Connected(c) => (Some(c), None),
        PsamSlot::Absent(why) => (None, Some(why)),
    };
    let psam_info = psam.as_ref().map(|c| card_info(c, vec!["PSAM".into()]));
    let mut r = Runner::new(
        conn,
        psam,
        opts.reconnect.take(),
        opts.thresholds.thresholds.clone(),
        opts.full,
    );
    // What the card holds decides which checks run.
    let ssse = ssse::select(&mut r);
    let has_loopback = loopback::select(&mut r);
    let mut applications = Vec::new();
    let fci = match &ssse {
        Ok(Ok(fci)) => {
            applications.push("SSSE".to_string());
            Some(fci.clone())
        }
        _ => None,
    };
    if matches!(has_loopback, Ok(true)) {
        applications.push("loopback".to_string());
    }
    if let (Err(e), _) | (_, Err(e)) = (&ssse, &has_loopback) {
        let e = e.to_string();
        r.check(
            "card.answers",
            "the card answers SELECT",
            Needs::AnyCard,
            "an answer to SELECT by AID",
            |_| {
                Err(CheckFailure::Wrong {
                    command: "SELECT",
                    what: "no answer",
                }
                .within(e))
            },
        );
    }
    let card = card_info(r.conn(), applications);
    properties::run(&mut r, &reader);
    // T=1 with the application the card has.
    if fci.is_some() {
        ssse::select(&mut r).ok();
        t1::run(
            &mut r,
            Some((&ssse::select_with_fci(), &ssse::read_records())),
        );
    } else if matches!(has_loopback, Ok(true)) {
        loopback::select(&mut r).ok();
        let mut echo = vec![0x80, 0x16, 0, 0, 16];
        echo.extend(loopback::pattern(16));
        echo.push(0);
        t1::run(&mut r, Some((&echo, &[0x80, 0x12, 0, 0, 0])));
    } else {
        t1::run(&mut r, None);
    }
    // The SSSE checks.
    let no_ssse = match &ssse {
        Ok(Ok(fci)) => {
            ssse::select(&mut r).ok();
            ssse::run(&mut r, fci);
            None
        }
        Ok(Err(sw)) => Some(format!(
            "the card holds no SSSE application (SELECT by its AID answered {sw})"
        )),
        Err(e) => Some(format!("SELECT SSSE failed: {e}")),
    };
    if let Some(why) = no_ssse {
        r.gate = Some(why);
        ssse::run(&mut r, &[]);
        r.gate = None;
    }
    // The loopback checks.
    match loopback::select(&mut r) {
        Ok(true) => loopback::run(&mut r),
        other => {
            r.gate = Some(match other {
                Ok(_) => {
                    "the card holds no loopback test application (served by sscard-model only)"
                        .into()
                }
                Err(e) => format!("SELECT of the loopback application failed: {e}"),
            });
            loopback::run(&mut r);
            r.gate = None;
        }
    }
    psam::run(&mut r, no_psam.as_deref());
    // Removal, probing with what the card answers.
    if fci.is_some() {
        ssse::select(&mut r).ok();
        let probe = r.app_select.clone();
        removal::removal(&mut r, &mut opts.removal, &probe);
    } else if matches!(has_loopback, Ok(true)) {
        loopback::select(&mut r).ok();
        removal::removal(&mut r, &mut opts.removal, &loopback::NOOP);
    } else {
        let mut none = Removal::Unavailable(
            "the card holds neither the SSSE nor the loopback application: no command to probe with".into(),
        );
        removal::removal(&mut r, &mut none, &[]);
    }
    removal::unplug(&mut r, opts.unplug.as_mut());
    let checks = std::mem::take(&mut r.checks);
    Report {
        schema: report::SCHEMA.into(),
        started,
        sscard_version: env!("CARGO_PKG_VERSION").into(),
        host: opts.host,
        mode: if opts.full { Mode::Full } else { Mode::Quick },
        thresholds: opts.thresholds,
        reader,
        card,
        psam: psam_info,
        summary: Summary::of(&checks),
        checks,
        seconds: start.elapsed().as_secs_f64(),
    }
}
