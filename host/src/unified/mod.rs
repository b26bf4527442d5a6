//! The host side of the national unified reader interface (PROFILE sections 7 and 10), in safe
//! Rust: what `iReadCard`, `iWriteCard` and the two-step `iReadCardBas_HSM_Step1/2` need beyond
//! the card flows of [`crate::ssc`]. Text is Rust `String` here; a C front end converts GBK or
//! UTF-8 at its boundary.
//!
//! - [`FileAddr`]: `pFileAddr` (`SSSEEF05|01|07|$SSSEEF06|08|09|4E|$`); record identifiers are
//!   the records' tags.
//! - [`WriteData`]: `pWriteData`, parsed against its `FileAddr`, each value encoded through the
//!   profile's file table; [`values`] turns record bytes into the line's text and back.
//! - [`CardInfo`]: `pCardInfo` (`card identification code|card number|`), −22 on another card.
//! - [`AuthType`] and `Session::read_items` / `Session::write_items` ([`crate::ssc::Session`]).
//! - [`Step1`], [`Step1Line`], [`PKey`], [`hsm_step2_key`], `Session::hsm_step1`,
//!   `Session::resume` and `Session::hsm_step2`: two-step reading without a PSAM.
//!
//! Every malformed line is a typed [`UnifiedError`] with return code −23.

mod card_info;
mod error;
mod file_addr;
mod items;
mod two_step;
pub mod values;

pub use card_info::{CardInfo, MAX_CARD_INFO};
pub use error::UnifiedError;
pub use file_addr::{path_of, FileAddr, FileItems, PathSpelling, MAX_FILE_ADDR};
pub use items::AuthType;
pub use two_step::{hsm_step2_key, needs_external_auth, PKey, Step1, Step1Line, MAX_STEP_LINE};
pub use values::{WriteData, MAX_WRITE_DATA};

#[cfg(test)]
mod tests;
