/// Why a cryptographic operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("a key has 16 bytes, not {len}")]
    BadKeyLength { len: usize },
    #[error("{len} bytes are not a multiple of the {block}-byte block")]
    NotBlockAligned { len: usize, block: usize },
    #[error("{len} bytes given where at most {max} fit")]
    TooLong { len: usize, max: usize },
    #[error("algorithm id {id:02X} is not supported (01 = 3DES, 03 = SM4, 04 = AES-128)")]
    UnsupportedAlgorithm { id: u8 },
    #[error("specification version {0:?} is unknown (2.00 = 3DES, 3.00 = SM4)")]
    UnknownSpecVersion(String),
    #[error("padding is not ISO/IEC 9797-1 method 2")]
    BadPadding,
    #[error("region code {0:?} is not 6 digits")]
    BadRegionCode(String),
    #[error("a card identification code has 16 bytes, not {len}")]
    BadCardId { len: usize },
}
