//! Why a check failed: what the reader or card did that it should not have.

use sscard_core::classify::{Classified, ExitClass};
use sscard_core::profile::codes;
use sscard_core::status::StatusWord;
use sscard_transport::TransportError;

/// The longest piece of a file's content an error message quotes.
const QUOTE_CHARS: usize = 200;

/// `text` cut to [`QUOTE_CHARS`] characters, `…` marking the cut: what an error message quotes
/// of a file it could not read (a key or value of a malformed file may be megabytes long).
pub(super) fn clip(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// An error of a callback the caller gives (the model's control socket, an operator prompt).
pub type CallbackError = Box<dyn std::error::Error + Send + Sync>;

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckFailure {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("answered {0}")]
    Answered(StatusWord),
    #[error("{command}: answered {got}, {expected} expected")]
    Status {
        command: &'static str,
        expected: StatusWord,
        got: StatusWord,
    },
    #[error("{got} bytes back, {expected} expected; first difference at byte {at}")]
    Data {
        got: usize,
        expected: usize,
        at: usize,
    },
    #[error("{command}: {got} bytes back, {expected} expected")]
    Length {
        command: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("{command}: {what}")]
    Wrong {
        command: &'static str,
        what: &'static str,
    },
    #[error("{context}: {source}")]
    In {
        context: String,
        source: Box<CheckFailure>,
    },
    #[error("no extended APDU works (256-byte ECHO failed)")]
    NoExtended,
    #[error("got {len} bytes, SW {sw}")]
    Response { len: usize, sw: StatusWord },
    #[error("{ms} ms delay answered after {took} ms")]
    TooFast { ms: u16, took: u128 },
    #[error("the card went away and there is no way to reconnect")]
    NoReconnect,
    #[error("no PSAM is connected (--psam-reader)")]
    NoPsam,
    #[error("could not {what} the card: {source}")]
    Callback {
        what: &'static str,
        source: CallbackError,
    },
    #[error("the removed card kept answering for 2000 APDUs")]
    KeptAnswering,
    #[error("{0}")]
    Unplug(CallbackError),
    #[error("{reported} reported by the reader, {actual} by the connection")]
    PropertyDiffers { reported: String, actual: String },
}

impl CheckFailure {
    /// This failure with where it happened.
    pub fn within(self, context: impl Into<String>) -> Self {
        Self::In {
            context: context.into(),
            source: Box::new(self),
        }
    }
}

impl Classified for CheckFailure {
    fn return_code(&self) -> i32 {
        match self {
            Self::Transport(e) => e.return_code(),
            Self::Answered(sw) | Self::Status { got: sw, .. } => codes::from_status_word(*sw),
            Self::In { source, .. } => source.return_code(),
            _ => codes::UNKNOWN,
        }
    }
    fn exit_class(&self) -> ExitClass {
        match self {
            Self::Transport(e) => e.exit_class(),
            Self::In { source, .. } => source.exit_class(),
            Self::Callback { .. } | Self::Unplug(_) | Self::NoReconnect | Self::NoPsam => {
                ExitClass::Other
            }
            _ => ExitClass::UnexpectedStatus,
        }
    }
}
