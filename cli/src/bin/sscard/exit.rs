//! Exit codes and unified return codes of errors (documented in `sscard --help`). Every library
//! error knows both ([`Classified`]); this file only finds the library error inside an
//! `anyhow` chain and adds the few errors of the command line itself.

use sscard_core::classify::{Classified, ExitClass};
use sscard_core::profile::codes;

/// Bad input found before any card was touched.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// A failure already reported in the command's output (e.g. failed test cases): exit non-zero
/// without a second message in `--json` mode.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reported(pub String);

/// The card answered, but not what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnexpectedStatus(pub String);

impl Classified for BadInput {
    fn return_code(&self) -> i32 {
        codes::INVALID_DATA
    }
    fn exit_class(&self) -> ExitClass {
        ExitClass::BadInput
    }
}

impl Classified for Reported {
    fn return_code(&self) -> i32 {
        codes::UNKNOWN
    }
    fn exit_class(&self) -> ExitClass {
        ExitClass::UnexpectedStatus
    }
}

impl Classified for UnexpectedStatus {
    fn return_code(&self) -> i32 {
        codes::UNKNOWN
    }
    fn exit_class(&self) -> ExitClass {
        ExitClass::UnexpectedStatus
    }
}

/// The library error behind `e`, if any: the first cause in the chain that knows its codes.
fn classified<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e dyn Classified> {
    macro_rules! try_types {
        ($($t:ty),* $(,)?) => {
            $(if let Some(c) = e.downcast_ref::<$t>() { return Some(c); })*
        };
    }
    try_types!(
        sscard::TransportError,
        sscard::keys::KeyError,
        sscard::ssc::SscError,
        sscard::script::ParseError,
        sscard::qualify::thresholds::ThresholdsError,
        sscard::qualify::compare::CompareError,
        sscard::qualify::Inconclusive,
        sscard_perso::card::PersoError,
        sscard_perso::journal::JournalError,
        sscard_perso::station::IssueError,
        sscard_unified_test::RunError,
        sscard_keyd::TlsError,
        sscard_keyd::PolicyError,
        sscard_keyd::AuditError,
        BadInput,
        Reported,
        UnexpectedStatus,
    );
    None
}

/// (exit code, unified return code) of an error.
pub fn classify(e: &anyhow::Error) -> (i32, i32) {
    if let Some(c) = e.chain().find_map(classified) {
        return (c.exit_class().exit_code(), c.return_code());
    }
    if e.chain().any(|c| c.downcast_ref::<clap::Error>().is_some()) {
        return (ExitClass::BadInput.exit_code(), codes::INVALID_DATA);
    }
    (ExitClass::Other.exit_code(), codes::UNKNOWN)
}

pub const BAD_INPUT: i32 = ExitClass::BadInput.exit_code();
