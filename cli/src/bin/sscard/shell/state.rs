//! What the shell keeps between commands: the connection to one card, the key source (opened
//! at its first use), what is selected, and the trace switch. Each command borrows a
//! transaction for its own duration only, so other applications may use the card between
//! commands; a card pulled or pcscd gone ends the connection, not the shell.

use super::trace::Switch;
use crate::connect;
use crate::exit::BadInput;
use anyhow::Result;
use sscard::keys::{KeySource, KeySpec};
use sscard::ssc::{Session, SscError};
use sscard_core::crypto::Algorithm;
use sscard_core::profile::{Df, FileDef};
use sscard_transport::backend::Disposition;
use sscard_transport::trace::Trace;
use sscard_transport::{Connection, TransportError};

/// The SSSE application as the card's FCI described it at `connect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct App {
    pub algorithm: Algorithm,
    pub issued: bool,
}

/// The card the shell talks to.
pub struct Card {
    pub conn: Connection,
    /// `None`: the card has no SSSE application (a PSAM, another card).
    pub app: Option<App>,
    /// The card is a PSAM (DF01 with EF15 of the profile): `ls` and `read` show its files.
    pub psam: bool,
}

pub struct State {
    pub card: Option<Card>,
    keys: Option<Box<dyn KeySource>>,
    spec: KeySpec,
    pub switch: Switch,
    pub trace: Trace,
    /// The DF the card has selected, as far as the shell knows (`None`: unknown, after a
    /// SELECT of another application).
    pub df: Option<Df>,
    /// The EF `read` and `write` use when none is named.
    pub file: Option<&'static FileDef>,
}

impl State {
    pub fn new(spec: KeySpec) -> Self {
        let switch = Switch::default();
        let trace = switch.trace();
        Self {
            card: None,
            keys: None,
            spec,
            switch,
            trace,
            df: Some(Df::Ssse),
            file: None,
        }
    }

    /// The connected card, or why there is none.
    pub fn card(&mut self) -> Result<&mut Card, BadInput> {
        self.card.as_mut().ok_or_else(|| {
            BadInput("not connected: `connect READER` first (`readers` lists them)".into())
        })
    }

    /// Whether the connected card is a PSAM.
    pub fn is_psam(&self) -> bool {
        self.card.as_ref().is_some_and(|c| c.psam)
    }

    /// The algorithm of the connected card's SSSE application.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.card.as_ref().and_then(|c| c.app).map(|a| a.algorithm)
    }

    /// Replaces the connection (the previous one is left as it is, not reset).
    pub fn attach(&mut self, card: Card) {
        self.detach();
        self.df = card.app.map(|_| Df::Ssse);
        self.file = None;
        self.card = Some(card);
    }

    /// Drops the connection, leaving the card as it is; the reader's name, if there was one.
    pub fn detach(&mut self) -> Option<String> {
        let card = self.card.take()?;
        let reader = card.conn.reader().to_string();
        // A card already gone cannot be left any other way: nothing to report.
        let _ = card.conn.disconnect(Disposition::Leave);
        Some(reader)
    }

    /// Runs `f` on a session over the connected card in one transaction: the SSSE application
    /// selected afresh, keys from the key source (opened at the first use, its PSAM APDUs in
    /// the same trace).
    pub fn with_session<T>(
        &mut self,
        f: impl FnOnce(&mut Session<'_, '_>) -> Result<T, SscError>,
    ) -> Result<T> {
        let card = self.card()?;
        if card.app.is_none() {
            let what = match card.psam {
                true => "the card is a PSAM: `ls`, `read EF15`, `read EF16`, `select` and `apdu` talk to it",
                false => "the card has no SSSE application: only `apdu` talks to it",
            };
            return Err(BadInput(what.into()).into());
        }
        if self.keys.is_none() {
            self.keys = Some(connect::open_keys(&self.spec, &self.trace)?);
        }
        let (Some(card), Some(keys)) = (self.card.as_mut(), self.keys.as_mut()) else {
            unreachable!("both set above");
        };
        let mut tx = card.conn.transaction()?;
        let mut s = Session::open(&mut tx, keys.as_mut())?;
        let result = f(&mut s);
        // The session selected SSSE; a flow in DF01 says so itself.
        self.df = Some(Df::Ssse);
        Ok(result?)
    }

    /// After an error: a card gone (pulled, mute, pcscd stopped) ends the connection; the
    /// reader it was in, when it did.
    pub fn after_error(&mut self, e: &anyhow::Error) -> Option<String> {
        match card_gone(e) {
            true => self.detach(),
            false => None,
        }
    }
}

/// Whether `e` says the connection is of no more use: the card pulled or mute, or pcscd gone.
pub fn card_gone(e: &anyhow::Error) -> bool {
    let gone = |t: &TransportError| {
        matches!(
            t,
            TransportError::CardRemoved
                | TransportError::NoCard { .. }
                | TransportError::ServiceNotRunning
                | TransportError::Unresponsive
        )
    };
    e.chain().any(|c| {
        c.downcast_ref::<TransportError>().is_some_and(gone)
            || matches!(c.downcast_ref::<SscError>(), Some(SscError::Transport(t)) if gone(t))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_pulled_or_pcscd_gone_ends_the_connection_other_errors_do_not() {
        assert!(card_gone(&TransportError::ServiceNotRunning.into()));
        assert!(card_gone(
            &anyhow::Error::from(SscError::Transport(TransportError::CardRemoved))
                .context("read EF05")
        ));
        assert!(!card_gone(&SscError::WrongPin { tries_left: 2 }.into()));
        assert!(!card_gone(&TransportError::SharingViolation.into()));
        assert!(!card_gone(&BadInput("x".into()).into()));
    }
}
