//! Qualification of any library exposing the national unified reader interface (PROFILE.md
//! section 10): the library is loaded with `dlopen`, model cards in many states are served
//! through vpcd into the running pcscd, and every case checks a call's return code and its
//! whole output, byte for byte, against what the served card makes correct (sections 7 and 10).
//!
//! Layers: [`loader`] (the only `unsafe`: the C calls, guarded buffers) → [`scene`] (the cards a
//! case serves) and [`expected`] (their correct output) → [`cases`] (the cases as data) →
//! [`mod@bench`] (serving the readers) and [`terminal`] (typing PINs where the library asks on
//! `/dev/tty`) → [`run`] → [`report`] and [`html`].

pub mod bench;
pub mod cases;
pub mod expected;
pub mod html;
pub mod loader;
pub mod report;
pub mod run;
pub mod scene;
pub mod terminal;

pub use loader::{TextEncoding, UnifiedLibrary};
pub use report::{CaseReport, Report, Verdict};
pub use run::{qualify, Options, RunError};
pub use terminal::PinTerminal;
