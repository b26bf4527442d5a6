use super::CryptoError;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 16-byte secret key. Zeroized on drop; `Debug` prints no bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; 16]);

impl Key {
    pub fn new(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 16] = bytes
            .try_into()
            .map_err(|_| CryptoError::BadKeyLength { len: bytes.len() })?;
        Ok(Self(arr))
    }
    /// The key bytes, for a cipher or for loading into a card under encryption.
    pub fn expose(&self) -> &[u8; 16] {
        &self.0
    }
    /// K1 of a two-key TDEA key.
    pub fn left(&self) -> &[u8] {
        &self.0[..8]
    }
    /// K2 of a two-key TDEA key.
    pub fn right(&self) -> &[u8] {
        &self.0[8..]
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(**)")
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        super::ct_eq(&self.0, &other.0)
    }
}
impl Eq for Key {}
