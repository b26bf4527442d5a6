use thiserror::Error;

/// Why bytes are not a valid APDU.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ApduError {
    #[error("an APDU needs at least 4 header bytes, got {len}")]
    TooShort { len: usize },
    #[error("Lc says {lc} data bytes but {available} follow")]
    LcMismatch { lc: usize, available: usize },
    #[error("bad extended length: {0}")]
    BadExtendedLength(&'static str),
    #[error("{len} data bytes: an APDU carries at most 65535")]
    DataTooLong { len: usize },
    #[error("Le {le} is out of range (1..=65536)")]
    BadLe { le: usize },
    #[error("a response needs at least the 2 status bytes, got {len}")]
    ResponseTooShort { len: usize },
}
