//! The [`Suite`] trait (cipher chosen at compile time) and [`Algorithm`] (chosen at run time).

use super::padding::pad_method2;
use super::{Aes128, CryptoError, Key, Sm4, Tdes};
use zeroize::Zeroize;

/// Start state of a CBC-MAC: `iv` zero-padded to `block` bytes. Panics when `iv` is longer or
/// `padded` is not block aligned, which [`Algorithm::mac`] rules out before calling a suite.
pub(crate) fn mac_start(iv: &[u8], padded: &[u8], block: usize) -> Vec<u8> {
    assert!(iv.len() <= block, "IV longer than a block");
    assert!(
        padded.chunks_exact(block).remainder().is_empty(),
        "MAC input is not padded"
    );
    let mut state = iv.to_vec();
    state.resize(block, 0);
    state
}

/// One block cipher as the profile uses it. Implementations are zero-sized types, so code fixed
/// to one algorithm (a card model of one specification version) pays no run-time dispatch.
pub trait Suite {
    /// Block size in bytes: 8 for 3DES, 16 for SM4 and AES-128.
    const BLOCK: usize;
    /// The run-time counterpart of this suite.
    const ALGORITHM: Algorithm;
    /// Encrypts one block in place. Panics unless `block.len() == BLOCK` (internal use).
    fn encrypt_block(key: &Key, block: &mut [u8]);
    /// Decrypts one block in place. Panics unless `block.len() == BLOCK` (internal use).
    fn decrypt_block(key: &Key, block: &mut [u8]);
    /// Full-block MAC of an already padded message, `iv` zero-padded to a block. Plain CBC-MAC
    /// (SM4, AES-128); 3DES overrides it with ISO/IEC 9797-1 MAC algorithm 3.
    fn cbc_mac(key: &Key, iv: &[u8], padded: &[u8]) -> Vec<u8> {
        let mut state = mac_start(iv, padded, Self::BLOCK);
        for chunk in padded.chunks(Self::BLOCK) {
            state.iter_mut().zip(chunk).for_each(|(s, c)| *s ^= c);
            Self::encrypt_block(key, &mut state);
        }
        state
    }
    /// One level of diversification by an 8-byte factor D: `E_K(D ‖ ~D)` for 16-byte blocks;
    /// 3DES overrides it with `E_K(D) ‖ E_K(~D)`.
    fn diversify(key: &Key, factor: &[u8; 8]) -> Key {
        let mut block = [0u8; 16];
        block[..8].copy_from_slice(factor);
        block[8..].iter_mut().zip(factor).for_each(|(b, f)| *b = !f);
        Self::encrypt_block(key, &mut block);
        let k = Key::new(block);
        block.zeroize();
        k
    }
}

/// The algorithm of a card or PSAM, chosen at run time (from the FCI, EF15 or the
/// specification version); every method dispatches to the matching [`Suite`].
///
/// Deliberately not `#[non_exhaustive]`: an algorithm added to the profile must be handled by
/// every `match` over suites, which the compiler then points out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Two-key TDEA, specification version `2.00`.
    Tdes,
    /// SM4 (GB/T 32907), specification version `3.00`.
    Sm4,
    /// AES-128: in no profile yet, kept ready for a later one.
    Aes128,
}

macro_rules! with_suite {
    ($alg:expr, $s:ident => $body:expr) => {
        match $alg {
            Algorithm::Tdes => {
                type $s = Tdes;
                $body
            }
            Algorithm::Sm4 => {
                type $s = Sm4;
                $body
            }
            Algorithm::Aes128 => {
                type $s = Aes128;
                $body
            }
        }
    };
}

impl Algorithm {
    /// Algorithm id of the FCI, EF15 and the PSAM: `01` 3DES, `03` SM4. `04` for AES-128 is
    /// this project's choice (no profile defines it).
    pub fn id(self) -> u8 {
        match self {
            Self::Tdes => 0x01,
            Self::Sm4 => 0x03,
            Self::Aes128 => 0x04,
        }
    }

    /// Inverse of [`Algorithm::id`]. `02` (SSF33, which has no public specification) and
    /// unknown ids are refused with [`CryptoError::UnsupportedAlgorithm`].
    pub fn from_id(id: u8) -> Result<Self, CryptoError> {
        match id {
            0x01 => Ok(Self::Tdes),
            0x03 => Ok(Self::Sm4),
            0x04 => Ok(Self::Aes128),
            _ => Err(CryptoError::UnsupportedAlgorithm { id }),
        }
    }

    /// `2.00` → 3DES, `3.00` → SM4 (PROFILE section 5). Anything else is refused, AES-128's
    /// placeholder `4.00` included, since no profile defines it.
    pub fn from_spec_version(v: &str) -> Result<Self, CryptoError> {
        match v {
            "2.00" => Ok(Self::Tdes),
            "3.00" => Ok(Self::Sm4),
            _ => Err(CryptoError::UnknownSpecVersion(v.into())),
        }
    }

    /// The specification version a card of this algorithm reports; `4.00` for AES-128 is a
    /// placeholder of this project.
    pub fn spec_version(self) -> &'static str {
        match self {
            Self::Tdes => "2.00",
            Self::Sm4 => "3.00",
            Self::Aes128 => "4.00",
        }
    }

    /// Name for logs and command lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tdes => "3DES",
            Self::Sm4 => "SM4",
            Self::Aes128 => "AES-128",
        }
    }

    /// Block size in bytes (8 or 16); cryptogram, MAC and padding sizes follow from it.
    pub fn block_size(self) -> usize {
        with_suite!(self, S => S::BLOCK)
    }

    fn ecb(self, key: &Key, data: &[u8], encrypt: bool) -> Result<Vec<u8>, CryptoError> {
        let block = self.block_size();
        // Not `is_multiple_of`: the workspace MSRV (1.80) predates it.
        if !data.chunks_exact(block).remainder().is_empty() {
            return Err(CryptoError::NotBlockAligned {
                len: data.len(),
                block,
            });
        }
        let mut out = data.to_vec();
        for chunk in out.chunks_mut(block) {
            with_suite!(self, S => if encrypt {
                S::encrypt_block(key, chunk)
            } else {
                S::decrypt_block(key, chunk)
            });
        }
        Ok(out)
    }

    /// ECB over whole blocks (key loading, diversification); data that is not block aligned is
    /// refused rather than padded silently.
    pub fn encrypt_ecb(self, key: &Key, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.ecb(key, data, true)
    }

    /// Inverse of [`Algorithm::encrypt_ecb`].
    pub fn decrypt_ecb(self, key: &Key, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.ecb(key, data, false)
    }

    /// One level of PROFILE section 5 diversification of `key` by an 8-byte factor.
    pub fn diversify(self, key: &Key, factor: &[u8; 8]) -> Key {
        with_suite!(self, S => S::diversify(key, factor))
    }

    /// Diversifies level by level (national → province → city → card); intermediate keys are
    /// zeroized as they drop. No factors gives a copy of `master`.
    pub fn diversify_chain(self, master: &Key, factors: &[[u8; 8]]) -> Key {
        factors
            .iter()
            .fold(master.clone(), |k, f| self.diversify(&k, f))
    }

    /// The authentication cryptogram `E_K(R ‖ 00…)` over one block; `random` longer than a
    /// block is refused with [`CryptoError::TooLong`].
    pub fn cryptogram(self, key: &Key, random: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let block = self.block_size();
        if random.len() > block {
            return Err(CryptoError::TooLong {
                len: random.len(),
                max: block,
            });
        }
        let mut b = random.to_vec();
        b.resize(block, 0);
        self.encrypt_ecb(key, &b)
    }

    /// The full-block MAC of `message`, padded with ISO/IEC 9797-1 method 2, with `iv` (a
    /// 4-byte challenge or a whole block) zero-padded to a block; a longer `iv` is refused.
    pub fn mac(self, key: &Key, iv: &[u8], message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let block = self.block_size();
        if iv.len() > block {
            return Err(CryptoError::TooLong {
                len: iv.len(),
                max: block,
            });
        }
        let padded = pad_method2(message, block);
        Ok(with_suite!(self, S => S::cbc_mac(key, iv, &padded)))
    }

    /// The line-protection MAC of PROFILE section 5: the first 4 bytes of [`Algorithm::mac`]
    /// with IV = challenge ‖ 00….
    pub fn line_mac(
        self,
        key: &Key,
        challenge: &[u8],
        message: &[u8],
    ) -> Result<[u8; 4], CryptoError> {
        let mac = self.mac(key, challenge, message)?;
        Ok(mac[..4].try_into().expect("blocks have at least 4 bytes"))
    }
}
