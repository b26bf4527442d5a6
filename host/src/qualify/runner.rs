//! The runner every check goes through: one transaction per check on the card's connection
//! (or the PSAM's), the check's APDUs counted and timed, its verdict recorded.

use super::check::{Check, Finding, Needs, Verdict};
use super::failure::CheckFailure;
use super::latency::Latency;
use super::thresholds::Thresholds;
use sscard_transport::{Budget, Connection, Transaction, TransportError};
use std::time::Instant;

/// The transmit budget of one check: up to 510 APDUs (case 3, `--full`, twice that on a T=0
/// reader), 300 latency samples, or one 64 KiB echo, never the few of a card flow.
const QUALIFY_BUDGET: Budget = Budget::new(2048, 1 << 20);

/// Connects to the reader again after the card came back.
pub type Reconnect = Box<dyn FnMut() -> Result<Connection, TransportError>>;

pub(super) struct Runner<'a> {
    conn: &'a mut Connection,
    /// A new connection after the card went away (binary search past the reader's limit,
    /// removal check).
    replacement: Option<Connection>,
    reconnect: Option<Reconnect>,
    pub psam: Option<Connection>,
    /// The SELECT of the application the checks under way talk to, sent again after a
    /// reconnect.
    pub app_select: Vec<u8>,
    pub checks: Vec<Check>,
    pub thresholds: Thresholds,
    /// Latency samples per command.
    pub samples: usize,
    pub full: bool,
    /// Why the checks declared from now on cannot run (the card lacks their application):
    /// each is recorded not applicable with this reason instead of running.
    pub gate: Option<String>,
    latency: Option<Latency>,
}

impl<'a> Runner<'a> {
    pub fn new(
        conn: &'a mut Connection,
        psam: Option<Connection>,
        reconnect: Option<Reconnect>,
        thresholds: Thresholds,
        full: bool,
    ) -> Self {
        Self {
            conn,
            replacement: None,
            reconnect,
            psam,
            app_select: Vec::new(),
            checks: Vec::new(),
            thresholds,
            samples: if full { 300 } else { 50 },
            full,
            gate: None,
            latency: None,
        }
    }

    /// The card's connection (the replacement after a reconnect).
    pub fn conn(&mut self) -> &mut Connection {
        match &mut self.replacement {
            Some(c) => c,
            None => self.conn,
        }
    }

    fn apdus(&self) -> u64 {
        self.conn.apdu_count()
            + self.replacement.as_ref().map_or(0, |c| c.apdu_count())
            + self.psam.as_ref().map_or(0, |c| c.apdu_count())
    }

    /// Runs `f` in one transaction on the card's connection.
    pub fn in_tx<T>(
        &mut self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, CheckFailure>,
    ) -> Result<T, CheckFailure> {
        let mut tx = self.conn().transaction()?;
        tx.set_budget(QUALIFY_BUDGET);
        f(&mut tx)
    }

    /// Runs `f` in one transaction on the PSAM's connection.
    pub fn in_psam_tx<T>(
        &mut self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, CheckFailure>,
    ) -> Result<T, CheckFailure> {
        let conn = self.psam.as_mut().ok_or(CheckFailure::NoPsam)?;
        let mut tx = conn.transaction()?;
        tx.set_budget(QUALIFY_BUDGET);
        f(&mut tx)
    }

    /// One APDU in a transaction of its own (where the card may go away between two).
    pub fn raw(&mut self, apdu: &[u8]) -> Result<(), CheckFailure> {
        self.in_tx(|tx| tx.transmit_raw(apdu).map(drop).map_err(Into::into))
    }

    /// After a transport error: connect again and select the application again.
    pub fn recover(&mut self) -> Result<(), CheckFailure> {
        let f = self.reconnect.as_mut().ok_or(CheckFailure::NoReconnect)?;
        let mut c = f()?;
        if !self.app_select.is_empty() {
            c.transaction()?.transmit_raw(&self.app_select)?;
        }
        self.replacement = Some(c);
        Ok(())
    }

    /// Runs one check and records its verdict.
    pub fn check(
        &mut self,
        id: &str,
        name: &str,
        needs: Needs,
        threshold: &str,
        f: impl FnOnce(&mut Self) -> Result<Finding, CheckFailure>,
    ) {
        let (start, before) = (Instant::now(), self.apdus());
        self.latency = None;
        let found = match self.gate.clone() {
            Some(why) => Ok(Finding::NotApplicable(why)),
            None => f(self),
        };
        let (verdict, reason, figure) = match found {
            Ok(Finding::Pass(fig)) => (Verdict::Pass, None, fig),
            Ok(Finding::OverThreshold { figure, why }) => (Verdict::Fail, Some(why), figure),
            Ok(Finding::NotApplicable(why)) => (Verdict::NotApplicable, Some(why.clone()), why),
            Err(e) => (Verdict::Fail, Some(e.to_string()), e.to_string()),
        };
        let apdus = self.apdus() - before;
        self.checks.push(Check {
            id: id.into(),
            name: name.into(),
            needs,
            verdict,
            reason,
            figure,
            threshold: threshold.into(),
            apdus,
            seconds: start.elapsed().as_secs_f64(),
            latency: self.latency.take(),
        });
    }

    /// Records a check that cannot run here.
    pub fn not_applicable(
        &mut self,
        id: &str,
        name: &str,
        needs: Needs,
        threshold: &str,
        why: &str,
    ) {
        self.check(id, name, needs, threshold, |_| {
            Ok(Finding::NotApplicable(why.into()))
        });
    }

    /// A latency check of `command`: `measure` gives the figures, the threshold profile's
    /// limits for the command say whether they pass.
    pub fn latency_check(
        &mut self,
        id: &str,
        command: &str,
        needs: Needs,
        measure: impl FnOnce(&mut Self) -> Result<Latency, CheckFailure>,
    ) {
        let limits = self.thresholds.latency_for(command);
        let threshold = format!("p95 ≤ {} ms, p99 ≤ {} ms", limits.p95_ms, limits.p99_ms);
        self.check(id, &format!("latency {command}"), needs, &threshold, |r| {
            let l = measure(r)?;
            let figure = l.figure();
            let over: Vec<String> = [
                ("p95", l.p95_ms, limits.p95_ms),
                ("p99", l.p99_ms, limits.p99_ms),
            ]
            .iter()
            .filter(|(_, v, max)| v > max)
            .map(|(n, v, max)| format!("{n} {v:.3} ms over {max} ms"))
            .collect();
            r.latency = Some(l);
            Ok(if over.is_empty() {
                Finding::Pass(figure)
            } else {
                Finding::OverThreshold {
                    figure,
                    why: over.join(", "),
                }
            })
        });
    }
}
