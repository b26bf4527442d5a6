//! `sscard-core`: what the sscard host and the card model share.
//!
//! - [`apdu`]: ISO/IEC 7816-4 command and response codec (short and extended lengths).
//! - [`status`]: status words and their meanings.
//! - [`atr`]: answer-to-reset parser and explainer.
//! - [`tlv`]: the one-byte-tag, one-byte-length records of the profile and the FCI.
//! - [`crypto`]: block-cipher suites (3DES, SM4, AES-128), diversification, cryptograms, MACs.
//! - [`profile`]: `PROFILE.md` in one place: key ids, the file table, field encodings, holder
//!   data, every APDU of the profile, PSAM files, unified return codes, the test key set.
//! - [`classify`]: the error taxonomy (unified return code and exit class of an error).
//! - [`hexfmt`]: hex parsing and printing used by every command line.
//! - [`card`]: the interface a simulated card offers a reader (the model implements it).
//! - [`fsutil`]: private files (0600, never through a planted symbolic link) and atomic
//!   replacement, for everything that holds keys, PINs, personal data or traces.
#![forbid(unsafe_code)]

pub mod apdu;
pub mod atr;
pub mod card;
pub mod classify;
pub mod crypto;
pub mod fsutil;
pub mod hexfmt;
pub mod profile;
pub mod status;
pub mod tlv;
