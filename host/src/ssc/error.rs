use crate::channel::ChannelError;
use crate::keys::KeyError;
use sscard_core::status::StatusWord;

/// Why a social security card operation failed. Each maps to a unified-interface return code
/// ([`crate::unified::return_code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SscError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("{command} answered {sw} ({meaning})", meaning = sw.meaning())]
    Card {
        command: &'static str,
        sw: StatusWord,
    },
    #[error("not a social security card: {0}")]
    WrongCard(String),
    #[error("the card's algorithm {id:02X} is not supported (02 = SSF33)")]
    AlgorithmNotSupported { id: u8 },
    #[error("card identification code is malformed: {0}")]
    BadCardId(String),
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
    #[error("invalid data: {0}")]
    InvalidData(String),
    #[error("{what} is malformed: {detail}")]
    Malformed { what: &'static str, detail: String },
}

/// Turns a status word into success or a typed error for `command`.
pub fn expect_ok(command: &'static str, sw: StatusWord) -> Result<(), SscError> {
    if sw.is_success() {
        Ok(())
    } else {
        Err(SscError::Card { command, sw })
    }
}

impl From<crate::transport::TransportError> for SscError {
    fn from(e: crate::transport::TransportError) -> Self {
        SscError::Channel(ChannelError::Transport(e))
    }
}
