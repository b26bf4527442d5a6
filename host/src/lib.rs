//! `sscard`: social security cards and PSAMs over PC/SC.
//!
//! Layers, bottom up: [`transport`] moves bytes (PC/SC or an in-process model), [`channel`]
//! speaks APDUs over it (T=0 GET RESPONSE, 6Cxx, tracing with secrets masked), [`keys`] are the
//! key sources (PSAM, software; PKCS#11 next), and [`ssc`] runs the social security card flows
//! of PROFILE section 7 on top.
#![forbid(unsafe_code)]

pub mod keys;
pub mod prompt;
pub mod qualify;
pub mod script;
pub mod ssc;
pub mod unified;

pub use sscard_transport as transport;
pub use sscard_transport::{channel, trace};
