//! The two traits a card backend implements (the shape of openpgp-card's `card-backend`): a
//! connection to one card ([`CardBackend`]) that hands out exclusive transactions
//! ([`CardTransaction`]). PC/SC ([`crate::pcsc`]) and in-process cards ([`crate::InProcess`])
//! are backends; so is anything a test or an application writes. Flows never see a backend:
//! they borrow a [`crate::Transaction`] of a [`crate::Connection`].

use crate::TransportError;

/// A connection to the card in one reader.
pub trait CardBackend: Send {
    /// The reader's name.
    fn reader(&self) -> &str;
    /// The card's answer to reset, as of the connection or the last reset.
    fn atr(&self) -> Vec<u8>;
    /// Starts an exclusive transaction: no other application's APDU comes between the ones
    /// sent through it, until it is dropped.
    fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError>;
}

/// An exclusive transaction on a card.
pub trait CardTransaction {
    /// Sends one command APDU, returns the response bytes (data ‖ SW1 SW2) as the card sent
    /// them.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
    /// Whether the card was reset since the previous transaction of this connection (by another
    /// application, a power glitch, or a warm reset): its volatile state (selected application,
    /// security status) is gone, so a flow that relies on it starts over (selects again).
    fn was_reset(&self) -> bool;
    /// Warm-resets the card and returns its answer to reset; the transaction goes on.
    fn reset(&mut self) -> Result<Vec<u8>, TransportError>;
}
