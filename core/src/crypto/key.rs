//! The 16-byte secret key every suite takes.

use super::CryptoError;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 16-byte secret key (two-key TDEA, SM4 or AES-128). Zeroized on drop; `Debug` prints no
/// bytes, there is no `Display`, and equality runs in constant time, so a key leaks neither
/// through logs nor through timing by accident. The bytes are reachable only via
/// [`Key::expose`], which makes every use easy to find.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; 16]);

impl Key {
    /// Takes the bytes; the caller should zeroize its own copy.
    pub fn new(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// For keys parsed from hex or read from a file or token: anything but 16 bytes is
    /// [`CryptoError::BadKeyLength`].
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

    /// K1 of a two-key TDEA key (the first 8 bytes).
    pub fn left(&self) -> &[u8] {
        &self.0[..8]
    }

    /// K2 of a two-key TDEA key (the last 8 bytes).
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
