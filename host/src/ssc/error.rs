use crate::keys::KeyError;
use crate::unified::UnifiedError;
use sscard_core::atr::AtrError;
use sscard_core::classify::{Classified, ExitClass};
use sscard_core::profile::codes;
use sscard_core::profile::commands::CommandError;
use sscard_core::profile::fields::FieldError;
use sscard_core::status::StatusWord;
use sscard_core::tlv::TlvError;
use sscard_transport::TransportError;

/// Why a social security card operation failed. Each knows its unified-interface return code
/// and exit class ([`Classified`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SscError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("{command} answered {sw} ({meaning})", meaning = sw.meaning())]
    Card {
        command: &'static str,
        sw: StatusWord,
    },
    /// SELECT of the application failed: 6A82 on a card without it; a PSAM or another card may
    /// answer 6A86, 6D00, 6E00 … All mean "not a social security card".
    #[error("not a social security card: SELECT of the SSSE application answered {sw} ({meaning})", meaning = sw.meaning())]
    WrongCard { sw: StatusWord },
    #[error("the SSSE FCI is malformed: {0}")]
    BadFci(TlvError),
    #[error("the card's algorithm {id:02X} is not supported (02 = SSF33)")]
    AlgorithmNotSupported { id: u8 },
    /// A file's records are not TLV.
    #[error("{file} is malformed: {source}")]
    Records {
        file: &'static str,
        source: TlvError,
    },
    /// A field does not hold what the profile says.
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("the card is not issued (life cycle PERSONALISATION): personalise it first")]
    NotIssued,
    #[error("internal authentication failed: the card is not genuine")]
    NotGenuine,
    #[error("wrong PIN, {tries_left} tries left")]
    WrongPin { tries_left: u8 },
    #[error("the PIN is locked")]
    PinLocked,
    #[error("PIN entry cancelled")]
    PinCancelled,
    #[error("a PIN has 2 to 6 digits")]
    PinLength,
    #[error("the PIN cannot be changed to the initial PIN 123456")]
    NewPinIsInitial,
    #[error("the new PIN is too weak ({0})")]
    WeakPin(&'static str),
    #[error("the two new PIN entries differ")]
    PinsDiffer,
    /// A command that cannot be built from the data given (too long for line protection).
    #[error("invalid data: {0}")]
    Command(#[from] CommandError),
    /// The card's answer to reset is not ISO/IEC 7816-3: no historical bytes to report.
    #[error("the card's answer to reset is malformed: {0}")]
    Atr(AtrError),
    /// A line handed to the unified interface was refused ([`UnifiedError`]: -23).
    #[error(transparent)]
    Unified(#[from] UnifiedError),
    /// `pCardInfo` names another card than the one in the reader (-22). Neither value is
    /// quoted: the card number is personal data.
    #[error(
        "the {field} given does not match the card's: check that the right card is in the reader"
    )]
    CardMismatch { field: &'static str },
    /// The two-step flow's encryption machine computed another internal-authentication value
    /// than the card answered (-25): the card is not genuine, or the machine holds other keys,
    /// or the step-1 line it was given is not this card's.
    #[error("the internal-authentication value from the encryption machine differs from the card's answer: the card is not genuine or the machine's keys are not this card's")]
    HsmDisagrees,
    /// The card answered a command with data of the wrong length.
    #[error("{command} returned {len} bytes, {expected} expected")]
    ShortAnswer {
        command: &'static str,
        len: usize,
        expected: usize,
    },
    /// A configured terminal device number that would not fit one field of the unified line.
    #[error("the terminal device number {value:?} is not 1 to {max} printable ASCII characters without `|`", max = super::info::MAX_DEVICE_NUMBER)]
    DeviceNumber { value: String },
}

/// Turns a status word into success or a typed error for `command`.
pub fn expect_ok(command: &'static str, sw: StatusWord) -> Result<(), SscError> {
    if sw.is_success() {
        Ok(())
    } else {
        Err(SscError::Card { command, sw })
    }
}

impl Classified for SscError {
    fn return_code(&self) -> i32 {
        match self {
            Self::Transport(t) => t.return_code(),
            Self::Keys(k) => k.return_code(),
            Self::Unified(u) => u.return_code(),
            Self::CardMismatch { .. } => codes::DATA_MISMATCH,
            Self::HsmDisagrees => codes::HSM_DISAGREES,
            Self::ShortAnswer { .. } => codes::UNKNOWN,
            Self::Card { sw, .. } => codes::from_status_word(*sw),
            Self::WrongCard { .. }
            | Self::AlgorithmNotSupported { .. }
            | Self::NotIssued
            | Self::Atr(_) => codes::WRONG_CARD,
            Self::Field(f) if f.is_card_id() => codes::BAD_CARD_ID,
            Self::Field(_) | Self::BadFci(_) | Self::Records { .. } => codes::UNKNOWN,
            Self::NotGenuine => codes::NOT_GENUINE,
            Self::WrongPin { .. } => codes::WRONG_PIN,
            Self::PinLocked => codes::PIN_LOCKED,
            Self::PinLength => codes::PIN_LENGTH,
            Self::PinCancelled => codes::PIN_CANCELLED,
            Self::NewPinIsInitial => codes::NEW_PIN_IS_INITIAL,
            Self::PinsDiffer => codes::PINS_DIFFER,
            Self::WeakPin(_) | Self::Command(_) | Self::DeviceNumber { .. } => codes::INVALID_DATA,
        }
    }

    fn exit_class(&self) -> ExitClass {
        match self {
            Self::Transport(t) => t.exit_class(),
            Self::Keys(k) => k.exit_class(),
            Self::Unified(u) => u.exit_class(),
            Self::CardMismatch { .. } | Self::HsmDisagrees | Self::ShortAnswer { .. } => {
                ExitClass::Card
            }
            Self::WrongCard { .. }
            | Self::BadFci(_)
            | Self::AlgorithmNotSupported { .. }
            | Self::Records { .. }
            | Self::Field(_)
            | Self::NotIssued
            | Self::NotGenuine
            | Self::Atr(_) => ExitClass::Card,
            Self::PinLength
            | Self::PinCancelled
            | Self::NewPinIsInitial
            | Self::WeakPin(_)
            | Self::PinsDiffer
            | Self::Command(_)
            | Self::DeviceNumber { .. } => ExitClass::BadInput,
            Self::Card { .. } | Self::WrongPin { .. } | Self::PinLocked => {
                ExitClass::UnexpectedStatus
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_classes() {
        assert_eq!(SscError::WrongPin { tries_left: 2 }.return_code(), -51);
        assert_eq!(
            SscError::Card {
                command: "READ RECORD",
                sw: StatusWord(0x6A82)
            }
            .return_code(),
            -27266
        );
        // A timeout is -4 whether it comes bare or inside a card error.
        assert_eq!(
            SscError::Transport(TransportError::Timeout).return_code(),
            -4
        );
        assert_eq!(
            SscError::Keys(KeyError::PsamTransport(TransportError::CardRemoved)).return_code(),
            -2201
        );
        assert_eq!(SscError::PinsDiffer.exit_class(), ExitClass::BadInput);
        assert_eq!(
            SscError::PinLocked.exit_class(),
            ExitClass::UnexpectedStatus
        );
    }
}
