/// Why bytes did not reach the card or come back. PC/SC error codes map one-to-one where
/// they mean something to a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    #[error("another application uses the card exclusively")]
    SharingViolation,
    #[error("timed out waiting for the card")]
    Timeout,
    #[error("the card does not answer")]
    Unresponsive,
    #[error("malformed response: {0}")]
    MalformedResponse(String),
    #[error("PC/SC error: {0}")]
    Pcsc(String),
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
            other => Self::Pcsc(other.to_string()),
        }
    }
}
