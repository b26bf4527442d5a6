//! `sscard`: social security cards and PSAMs over PC/SC.
//!
//! Layers, bottom up: `sscard-transport` moves APDUs (a [`Connection`] per card, flows borrow a
//! [`Transaction`]); [`keys`] are the key sources (PSAM, software, PKCS#11 behind the `pkcs11`
//! feature); [`ssc`] runs the social security card flows of PROFILE section 7; [`script`] runs
//! conformance scripts; [`qualify`] qualifies readers; [`unified`] is the host side of the
//! unified reader interface (`pFileAddr`, `pWriteData`, `pCardInfo`, the two-step flow).
//! Every error knows its unified return code and exit class
//! ([`sscard_core::classify::Classified`]).
#![forbid(unsafe_code)]

pub mod keys;
pub mod qualify;
pub mod script;
pub mod ssc;
pub mod unified;

pub use sscard_transport::{Connection, Transaction, TransportError};
