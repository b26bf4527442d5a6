//! APDU scripts: a readable line language with expectations and secure macros, a runner with
//! real pass/fail, reports (JUnit, JSON) and import of pcsc-tools `scriptor` files.

mod error;
pub mod import;
pub mod parse;
pub mod pattern;
pub mod report;
pub mod run;

pub use error::{CardFactsError, ParseError, ScriptProblem, StepError, StepProblem};
pub use parse::{load, parse, Script};
pub use run::{run_script, run_script_decoded, CaseResult, FileResult, Outcome};
