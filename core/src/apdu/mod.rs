//! ISO/IEC 7816-4 APDUs: a pure codec, no I/O.
//!
//! [`Command::parse`] and [`Command::to_bytes`] are inverse for every well-formed command;
//! every malformed byte string is an [`ApduError`], never a panic.

mod command;
mod error;
mod response;

pub use command::{Case, Command};
pub use error::ApduError;
pub use response::Response;

/// Most data bytes an extended command can carry.
pub const MAX_DATA: usize = 65_535;
/// Largest Le: extended `0000` means 65 536.
pub const MAX_LE: usize = 65_536;
/// Most data bytes in a short command.
pub const MAX_SHORT_DATA: usize = 255;
/// Largest short Le: `00` means 256.
pub const MAX_SHORT_LE: usize = 256;
