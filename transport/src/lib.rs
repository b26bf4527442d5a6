//! `sscard-transport`: APDUs to a card and back.
//!
//! Bottom up: a backend ([`backend::CardBackend`], [`backend::CardTransaction`]) moves bytes —
//! [`pcsc::PcscBackend`] through pcscd, [`InProcess`] to any [`sscard_core::card::Card`] in this
//! process. A [`Connection`] wraps one backend and owns its [`trace::Trace`]. Flows send APDUs
//! only through a [`Transaction`] borrowed from the connection, which is exclusive (PC/SC
//! `SCardBeginTransaction`) and ends when dropped; it answers `61xx` with GET RESPONSE and `6Cxx`
//! with one resend, and resends nothing else.
#![forbid(unsafe_code)]

pub mod backend;
mod connection;
mod error;
mod in_process;
#[cfg(feature = "pcsc")]
pub mod pcsc;
pub mod trace;

pub use connection::{Connection, Transaction, MAX_GET_RESPONSE_ROUNDS};
pub use error::TransportError;
pub use in_process::InProcess;
