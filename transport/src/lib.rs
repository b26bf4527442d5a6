//! `sscard-transport`: APDUs to a card and back.
//!
//! Bottom up: a backend ([`backend::CardBackend`], [`backend::CardTransaction`]) moves bytes —
//! [`pcsc::PcscBackend`] through pcscd, [`InProcess`] to any [`sscard_core::card::Card`] in this
//! process. A [`Connection`] wraps one backend and owns its [`trace::Trace`]. Flows send APDUs
//! only through a [`Transaction`] borrowed from the connection, which is exclusive (PC/SC
//! `SCardBeginTransaction`) and ends when dropped; it answers `61xx` with GET RESPONSE and `6Cxx`
//! with one resend, and resends nothing else. Each transaction is one flow for its
//! [`Budget`] of APDUs and bytes ([`budget`]).
//!
//! ```
//! use sscard_transport::{Connection, InProcess, TransportError};
//! # fn f(card: sscard_core::card::SharedCard) -> Result<(), TransportError> {
//! let mut conn = Connection::new(InProcess::new(card, "model"));
//! let mut tx = conn.transaction()?; // exclusive until dropped
//! let r = tx.transmit_raw(&[0x00, 0xA4, 0x04, 0x00])?;
//! println!("{}", r.sw);
//! # Ok(()) }
//! ```
//!
//! A connection itself sends nothing: a flow cannot run outside a transaction.
//!
//! ```compile_fail
//! # fn f(conn: &mut sscard_transport::Connection) {
//! conn.transmit_raw(&[0x00, 0xA4, 0x04, 0x00]);
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod backend;
pub mod budget;
mod connection;
mod error;
mod in_process;
#[cfg(feature = "pcsc")]
pub mod pcsc;
pub mod trace;

pub use budget::{Budget, Spent};
pub use connection::{Connection, Transaction, MAX_GET_RESPONSE_ROUNDS};

/// How long a PC/SC connection or transaction waits while another application holds the card
/// before it gives up with [`TransportError::SharingViolation`]. A connection refused because
/// another application connected exclusively is tried again after 10 ms, then at doubling
/// intervals up to 200 ms; a connection and a transaction wait for another application's
/// transaction to end (pcsc-lite's own `SCardConnect` and `SCardBeginTransaction` would wait
/// for ever). A connection waits at most this long in all, a transaction too.
pub const SHARING_WAIT: std::time::Duration = std::time::Duration::from_millis(2000);
pub use error::TransportError;
pub use in_process::InProcess;
