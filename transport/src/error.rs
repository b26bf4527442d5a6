use crate::Budget;
use sscard_core::apdu::ApduError;
use sscard_core::classify::{Classified, ExitClass};
use sscard_core::profile::codes;

/// Why bytes did not reach the card or come back. PC/SC error codes map one-to-one where they
/// mean something to a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error("pcscd is not running: start it (e.g. `pcscd` as root, or run scripts/setup.sh)")]
    ServiceNotRunning,
    #[error("no smart card reader is connected")]
    NoReader,
    #[error("no reader matches {wanted:?}; readers: {present}")]
    UnknownReader { wanted: String, present: String },
    #[error("{wanted:?} matches several readers: {matches}; name one exactly or by index")]
    AmbiguousReader { wanted: String, matches: String },
    #[error("no card in reader {reader:?}")]
    NoCard { reader: String },
    #[error("the card was removed")]
    CardRemoved,
    #[error("the card was reset by another application")]
    CardReset,
    /// Another application held the card (an exclusive connection or a transaction) longer than
    /// [`crate::SHARING_WAIT`], the time a connection or transaction waits for it.
    #[error(
        "another application holds the card exclusively and did not let go within {} ms: try again when it is done",
        crate::SHARING_WAIT.as_millis()
    )]
    SharingViolation,
    #[error("timed out waiting for the card")]
    Timeout,
    /// pcscd's own poll of the reader did not see the card leave or arrive in time: the event
    /// count did not move, or the state is not the one awaited (`pcsc::wait_for_card_change`).
    /// (`shown`: what pcscd showed before and last, boxed to keep every result small.)
    #[error("{reader}: pcscd did not see {awaited} within {waited_ms} ms (it showed {shown}): check that the card was really taken out or put in, and for a virtual reader that its card server runs")]
    CardChangeUnseen {
        reader: String,
        awaited: &'static str,
        waited_ms: u64,
        shown: Box<str>,
    },
    #[error("the card does not answer")]
    Unresponsive,
    #[error("malformed response: {len} byte(s), no status word")]
    NoStatusWord { len: usize },
    #[error("{command}: GET RESPONSE did not end after {rounds} rounds")]
    EndlessGetResponse { command: String, rounds: usize },
    #[error("cannot encode the command: {0}")]
    Encode(#[from] ApduError),
    /// A command that changes the card ([`sscard_core::profile::commands::Idempotence::ChangesCard`])
    /// went out and no answer came back: the card may have carried it out or not. It is never
    /// sent again on its own; read the card to learn what happened.
    #[error("{command}: no answer came back ({cause}); the card may or may not have carried it out: read the card to see whether it changed before doing anything again")]
    OutcomeUnknown {
        command: &'static str,
        cause: Box<TransportError>,
    },
    /// A PC/SC error with no meaning of its own to a user (its text and code).
    #[error("PC/SC error: {message} ({code:#010X})")]
    Pcsc { code: u32, message: String },
    /// The flow's transmit budget is spent: `command` (its header) was not sent.
    #[error("{command}: not sent, the flow already exchanged {apdus} APDUs and {bytes} bytes (its budget: {limit}); a card that keeps the host talking this long is broken or hostile — raise the budget (sscard --max-apdus, --max-bytes) only for a flow known to need more")]
    BudgetExceeded {
        command: String,
        apdus: u64,
        bytes: u64,
        limit: Budget,
    },
}

impl Classified for TransportError {
    fn return_code(&self) -> i32 {
        match self {
            Self::NoCard { .. } | Self::CardRemoved => codes::NO_CARD,
            Self::Unresponsive
            | Self::Timeout
            | Self::CardChangeUnseen { .. }
            | Self::NoStatusWord { .. }
            | Self::EndlessGetResponse { .. }
            | Self::BudgetExceeded { .. } => codes::NO_ANSWER,
            Self::ServiceNotRunning
            | Self::NoReader
            | Self::UnknownReader { .. }
            | Self::AmbiguousReader { .. } => codes::READER_CONNECTION,
            Self::SharingViolation | Self::CardReset | Self::Pcsc { .. } => codes::NO_CONNECTION,
            Self::Encode(_) => codes::INVALID_DATA,
            Self::OutcomeUnknown { cause, .. } => cause.return_code(),
        }
    }

    fn exit_class(&self) -> ExitClass {
        match self {
            Self::ServiceNotRunning => ExitClass::NoService,
            Self::NoReader | Self::UnknownReader { .. } | Self::AmbiguousReader { .. } => {
                ExitClass::Reader
            }
            Self::Encode(_) => ExitClass::BadInput,
            Self::OutcomeUnknown { .. } => ExitClass::OutcomeUnknown,
            _ => ExitClass::Card,
        }
    }
}

#[cfg(feature = "pcsc")]
impl From<::pcsc::Error> for TransportError {
    fn from(e: ::pcsc::Error) -> Self {
        use ::pcsc::Error as E;
        match e {
            E::NoService | E::ServiceStopped => Self::ServiceNotRunning,
            E::NoReadersAvailable | E::ReaderUnavailable | E::UnknownReader => Self::NoReader,
            E::NoSmartcard => Self::NoCard {
                reader: String::new(),
            },
            E::RemovedCard => Self::CardRemoved,
            E::ResetCard => Self::CardReset,
            E::SharingViolation => Self::SharingViolation,
            E::Timeout => Self::Timeout,
            E::UnresponsiveCard | E::UnpoweredCard | E::CommError | E::NotTransacted => {
                Self::Unresponsive
            }
            other => Self::Pcsc {
                code: other as u32,
                message: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_classes_are_decided_once() {
        // A bare timeout and the same timeout anywhere else give the same code.
        assert_eq!(TransportError::Timeout.return_code(), -4);
        assert_eq!(TransportError::CardRemoved.return_code(), -2);
        assert_eq!(TransportError::NoReader.return_code(), -11);
        assert_eq!(TransportError::CardReset.return_code(), -12);
        assert_eq!(
            TransportError::ServiceNotRunning.exit_class(),
            ExitClass::NoService
        );
        assert_eq!(TransportError::CardRemoved.exit_class(), ExitClass::Card);
        // A card that never stops talking is a card that does not answer as it should.
        let spent = TransportError::BudgetExceeded {
            command: "00C00000".into(),
            apdus: 256,
            bytes: 1280,
            limit: Budget::new(256, 32768),
        };
        assert_eq!(
            (spent.return_code(), spent.exit_class()),
            (-4, ExitClass::Card)
        );
    }

    #[test]
    fn an_unknown_outcome_keeps_its_cause_code_and_says_the_card_may_have_changed() {
        let e = TransportError::OutcomeUnknown {
            command: "UPDATE RECORD",
            cause: Box::new(TransportError::CardRemoved),
        };
        assert_eq!(e.return_code(), -2);
        assert_eq!(e.exit_class(), ExitClass::OutcomeUnknown);
        assert_eq!(
            e.to_string(),
            "UPDATE RECORD: no answer came back (the card was removed); the card may or may not \
             have carried it out: read the card to see whether it changed before doing anything again"
        );
    }
}
