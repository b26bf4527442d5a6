//! Errors of the crypto module.

/// Why a cryptographic operation was refused: always a caller mistake (a wrong length, an
/// unknown algorithm), never a condition that depends on secret data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key that is not 16 bytes.
    #[error("a key has 16 bytes, not {len}")]
    BadKeyLength { len: usize },
    /// ECB input that is not a whole number of blocks.
    #[error("{len} bytes are not a multiple of the {block}-byte block")]
    NotBlockAligned { len: usize, block: usize },
    /// A random number or IV longer than one block.
    #[error("{len} bytes given where at most {max} fit")]
    TooLong { len: usize, max: usize },
    /// An algorithm id of the FCI or EF15 that this project does not implement.
    #[error("algorithm id {id:02X} is not supported (01 = 3DES, 03 = SM4, 04 = AES-128)")]
    UnsupportedAlgorithm { id: u8 },
    /// A specification version other than `2.00` or `3.00`.
    #[error("specification version {0:?} is unknown (2.00 = 3DES, 3.00 = SM4)")]
    UnknownSpecVersion(String),
    /// Data that does not end in ISO/IEC 9797-1 method 2 padding.
    #[error("padding is not ISO/IEC 9797-1 method 2")]
    BadPadding,
    /// A province or city code that is not 6 ASCII digits.
    #[error("region code {0:?} is not 6 digits")]
    BadRegionCode(String),
    /// A card identification code that is not 16 bytes.
    #[error("a card identification code has 16 bytes, not {len}")]
    BadCardId { len: usize },
}
