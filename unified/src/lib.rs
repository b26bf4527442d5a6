//! `libsscard_unified.so`: the national unified reader interface (`iReadCardBas`,
//! `iVerifyPIN`, …; PROFILE sections 7 and 10) as a C library over the sscard host crate.
//! `include/sscard_unified.h` declares the exports; `README.md` and `docs/unified.md` say how
//! it is configured and what each call does. The Rust side is usable too: the functions
//! re-exported at the crate root take Rust arguments, [`ffi`] is the C boundary (the crate's
//! only `unsafe`).

mod calls;
pub mod config;
pub mod encoding;
pub mod ending;
pub mod error;
pub mod ffi;
pub mod pinpad;
pub mod readers;
pub mod tty;
mod two_step;

pub use calls::*;
pub use error::UnifiedError;
