//! Why a call of the C interface failed, with its return code (PROFILE section 7) through
//! [`Classified`], like every library error of sscard; the C boundary only renders it.

use crate::config::ConfigError;
use crate::encoding::EncodingError;
use crate::pinpad::{EntryOutcome, FeaturesMalformed};
use crate::tty::EntryError;
use sscard::keys::KeyError;
use sscard::ssc::SscError;
use sscard_core::classify::{Classified, ExitClass};
use sscard_core::profile::codes;
use sscard_transport::TransportError;

/// The largest output a call writes: the 2048-byte buffer of PROFILE section 10 less its NUL.
pub const MAX_OUTPUT: usize = 2047;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnifiedError {
    #[error(transparent)]
    Ssc(#[from] SscError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A line given by the caller (`pFileAddr`, `pWriteData`, `pCardInfo`, `pKey`, a step-1
    /// line) or `iAuthType` is malformed (−23).
    #[error(transparent)]
    Line(#[from] sscard::unified::UnifiedError),
    /// `iReadCardBas_HSM_Step2` without a step 1 to continue: none on this thread, and not
    /// exactly one in the process.
    #[error("no step 1 to continue: call iReadCardBas_HSM_Step1 first (each step 1 serves one step 2; a step 2 continues its own thread's step 1, else the process's only one)")]
    NoStep1,
    /// `iReadCardBas_HSM_Step2` found its card reset since step 1, which lost the card's
    /// authentication. `by_library`: this library is configured to reset the card after each
    /// call, so any call on the card between the two steps does it.
    #[error("the card was reset since step 1 ({}): call iReadCardBas_HSM_Step1 again", match .by_library {
        true => "card_disposition = \"reset\" in this library's configuration resets it after every other call on it, or another application did",
        false => "by another application, or the card was removed",
    })]
    ResetSinceStep1 { by_library: bool },
    /// A later step 1 on the same card (another thread's) replaced the card's challenge.
    #[error("step 1 on {reader} was superseded by a later step 1 on the same card (the card keeps one challenge): call iReadCardBas_HSM_Step1 again")]
    Superseded { reader: String },
    /// The key source is a PKCS#11 token and its PIN is not in the environment.
    #[error("the PKCS#11 token's PIN is not set: set SSCARD_PKCS11_PIN in the environment of the process that calls the library (it has no prompt)")]
    NoTokenPin,
    /// The PKCS#11 module the configuration names is not there.
    #[error("the PKCS#11 module {} does not exist (keys = \"pkcs11:MODULE:TOKEN-LABEL\" in the configuration)", .path.display())]
    NoModule { path: std::path::PathBuf },
    /// The configuration file is missing, not TOML, or holds an unknown key or a bad value.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    /// A pointer argument the call needs is NULL: nothing was read or written.
    #[error("{argument} is NULL")]
    Null { argument: &'static str },
    /// `pCardInfo` is NULL or empty (C# and JNA pass "" for a null string) where the call
    /// needs it.
    #[error("pCardInfo is NULL or empty: this call checks the card against it")]
    NoCardInfo,
    /// An input string is longer than its argument's limit: no NUL within the limit's bytes
    /// and one more (the library reads no further).
    #[error("{argument} is longer than {limit} bytes")]
    Unterminated {
        argument: &'static str,
        limit: usize,
    },
    /// The answer does not fit its buffer's contract.
    #[error("the output of {len} bytes does not fit {argument} ({max} bytes and the NUL); ask for less at a time")]
    OutputTooLong {
        argument: &'static str,
        len: usize,
        max: usize,
    },
    /// `iType` is not 1 to 4.
    #[error("iType {0} is not 1 (contact), 2 (contactless), 3 (both, contact first) or 4 (both, contactless first)")]
    BadType(i32),
    /// No reader of the kind `iType` asks for holds a social security card.
    #[error("no {wanted} reader holds a social security card")]
    NoCard { wanted: &'static str },
    /// The PIN was not entered on the terminal.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// The PIN pad itself reported the entry's outcome.
    #[error("PIN pad: {}", match .0 {
        EntryOutcome::Timeout => "PIN entry timed out",
        EntryOutcome::Cancelled => "PIN entry cancelled",
        EntryOutcome::Differ => "the two new PIN entries differ",
        EntryOutcome::Length => "a PIN of the wrong length was entered",
    })]
    PinPad(EntryOutcome),
    #[error(transparent)]
    PinPadFeatures(#[from] FeaturesMalformed),
    /// The PIN pad answered without a status word.
    #[error("the PIN pad answered {len} byte(s), no status word")]
    PinPadAnswer { len: usize },
    /// VERIFY succeeded with the initial PIN 123456, which must be changed before transactions.
    #[error("the PIN is the initial PIN 123456: change it before any transaction")]
    InitialPin,
    /// A panic inside the library, caught at the C boundary.
    #[error("internal error in libsscard_unified (a bug): the call was abandoned")]
    Panic,
}

impl Classified for UnifiedError {
    fn return_code(&self) -> i32 {
        match self {
            Self::Ssc(e) => e.return_code(),
            Self::Keys(e) => e.return_code(),
            Self::Transport(e) => e.return_code(),
            Self::Line(e) => e.return_code(),
            Self::NoStep1 | Self::ResetSinceStep1 { .. } | Self::Superseded { .. } => {
                codes::NO_CONNECTION
            }
            Self::Config(_) | Self::Panic | Self::NoTokenPin | Self::NoModule { .. } => {
                codes::UNKNOWN
            }
            // What a card holds but the output cannot carry is the library's failure, not the
            // caller's.
            Self::Encoding(EncodingError::SeparatorInOutput { .. }) => codes::UNKNOWN,
            Self::Encoding(_)
            | Self::Null { .. }
            | Self::NoCardInfo
            | Self::Unterminated { .. }
            | Self::OutputTooLong { .. } => codes::INVALID_DATA,
            Self::BadType(_) => codes::WRONG_CARD,
            Self::NoCard { .. } => codes::NO_CARD,
            Self::Entry(EntryError::Timeout { .. }) | Self::PinPad(EntryOutcome::Timeout) => {
                codes::PIN_TIMEOUT
            }
            Self::Entry(EntryError::TooLong) | Self::PinPad(EntryOutcome::Length) => {
                codes::PIN_LENGTH
            }
            Self::Entry(_) | Self::PinPad(EntryOutcome::Cancelled) => codes::PIN_CANCELLED,
            Self::PinPad(EntryOutcome::Differ) => codes::PINS_DIFFER,
            Self::PinPadFeatures(_) => codes::READER_CONNECTION,
            Self::PinPadAnswer { .. } => codes::NO_ANSWER,
            Self::InitialPin => codes::INITIAL_PIN,
        }
    }

    fn exit_class(&self) -> ExitClass {
        match self {
            Self::Ssc(e) => e.exit_class(),
            Self::Keys(e) => e.exit_class(),
            Self::Transport(e) => e.exit_class(),
            Self::Line(e) => e.exit_class(),
            Self::NoStep1 | Self::ResetSinceStep1 { .. } | Self::Superseded { .. } => {
                ExitClass::Card
            }
            Self::NoTokenPin | Self::NoModule { .. } => ExitClass::BadInput,
            Self::Config(_)
            | Self::Encoding(_)
            | Self::Null { .. }
            | Self::NoCardInfo
            | Self::Unterminated { .. }
            | Self::OutputTooLong { .. }
            | Self::BadType(_)
            | Self::Entry(_)
            | Self::PinPad(_) => ExitClass::BadInput,
            Self::NoCard { .. } | Self::PinPadAnswer { .. } => ExitClass::Card,
            Self::PinPadFeatures(_) => ExitClass::Reader,
            Self::InitialPin => ExitClass::UnexpectedStatus,
            Self::Panic => ExitClass::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_codes() {
        let cases: [(UnifiedError, i32); 17] = [
            (
                UnifiedError::Null {
                    argument: "pOutInfo",
                },
                -23,
            ),
            (
                UnifiedError::OutputTooLong {
                    argument: "pOutInfo",
                    len: 3000,
                    max: MAX_OUTPUT,
                },
                -23,
            ),
            (UnifiedError::BadType(0), -1),
            (UnifiedError::NoCard { wanted: "contact" }, -2),
            (UnifiedError::Entry(EntryError::NoTerminal), -31),
            (UnifiedError::Entry(EntryError::Cancelled), -31),
            (UnifiedError::Entry(EntryError::Timeout { secs: 30 }), -32),
            (UnifiedError::Entry(EntryError::TooLong), -33),
            (UnifiedError::PinPad(EntryOutcome::Timeout), -32),
            (UnifiedError::PinPad(EntryOutcome::Cancelled), -31),
            (UnifiedError::PinPad(EntryOutcome::Length), -33),
            (UnifiedError::PinPad(EntryOutcome::Differ), -34),
            (UnifiedError::InitialPin, -35),
            (UnifiedError::Panic, -999),
            (UnifiedError::NoStep1, -12),
            (UnifiedError::ResetSinceStep1 { by_library: true }, -12),
            (
                UnifiedError::Encoding(EncodingError::SeparatorInOutput { character: '亅' }),
                -999,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.return_code(), code, "{e}");
        }
        assert_eq!(
            UnifiedError::Ssc(SscError::NewPinIsInitial).return_code(),
            -36
        );
        assert_eq!(UnifiedError::Ssc(SscError::PinsDiffer).return_code(), -34);
        assert_eq!(UnifiedError::Ssc(SscError::PinLength).return_code(), -33);
        // The library's own reset is named when it may be the cause, never only "another
        // application".
        assert_eq!(
            UnifiedError::ResetSinceStep1 { by_library: true }.to_string(),
            "the card was reset since step 1 (card_disposition = \"reset\" in this library's configuration resets it after every other call on it, or another application did): call iReadCardBas_HSM_Step1 again"
        );
        assert!(!UnifiedError::NoTokenPin.to_string().contains("prompt:"));
        assert_eq!(
            UnifiedError::NoTokenPin.to_string(),
            "the PKCS#11 token's PIN is not set: set SSCARD_PKCS11_PIN in the environment of the process that calls the library (it has no prompt)"
        );
        assert_eq!(
            UnifiedError::BadType(5).to_string(),
            "iType 5 is not 1 (contact), 2 (contactless), 3 (both, contact first) or 4 (both, contactless first)"
        );
    }
}
