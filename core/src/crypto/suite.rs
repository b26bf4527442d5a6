use super::padding::pad_method2;
use super::{Aes128, CryptoError, Key, Sm4, Tdes};
use zeroize::Zeroize;

/// One block cipher as the profile uses it. Implementations are zero-sized types.
pub trait Suite {
    const BLOCK: usize;
    const ALGORITHM: Algorithm;
    /// Encrypts one block in place (`block.len() == BLOCK`).
    fn encrypt_block(key: &Key, block: &mut [u8]);
    /// Decrypts one block in place.
    fn decrypt_block(key: &Key, block: &mut [u8]);
    /// CBC-MAC of an already padded message; 3DES overrides it with the retail MAC.
    fn cbc_mac(key: &Key, iv: &[u8], padded: &[u8]) -> Vec<u8> {
        let mut state = iv.to_vec();
        for chunk in padded.chunks(Self::BLOCK) {
            state.iter_mut().zip(chunk).for_each(|(s, c)| *s ^= c);
            Self::encrypt_block(key, &mut state);
        }
        state
    }
    /// One-level diversification: `E_K(D ‖ ~D)` for 16-byte blocks; 3DES overrides it.
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

/// The algorithm of a card or PSAM, chosen at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Tdes,
    Sm4,
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
    /// Algorithm id of the FCI and EF15: `01` 3DES, `03` SM4; `04` AES-128 is this project's
    /// choice for later profiles.
    pub fn id(self) -> u8 {
        match self {
            Self::Tdes => 0x01,
            Self::Sm4 => 0x03,
            Self::Aes128 => 0x04,
        }
    }

    /// `02` (SSF33) and unknown ids are refused.
    pub fn from_id(id: u8) -> Result<Self, CryptoError> {
        match id {
            0x01 => Ok(Self::Tdes),
            0x03 => Ok(Self::Sm4),
            0x04 => Ok(Self::Aes128),
            _ => Err(CryptoError::UnsupportedAlgorithm { id }),
        }
    }

    pub fn from_spec_version(v: &str) -> Result<Self, CryptoError> {
        match v {
            "2.00" => Ok(Self::Tdes),
            "3.00" => Ok(Self::Sm4),
            _ => Err(CryptoError::UnknownSpecVersion(v.into())),
        }
    }

    pub fn spec_version(self) -> &'static str {
        match self {
            Self::Tdes => "2.00",
            Self::Sm4 => "3.00",
            Self::Aes128 => "4.00",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Tdes => "3DES",
            Self::Sm4 => "SM4",
            Self::Aes128 => "AES-128",
        }
    }

    pub fn block_size(self) -> usize {
        with_suite!(self, S => S::BLOCK)
    }

    fn ecb(self, key: &Key, data: &[u8], encrypt: bool) -> Result<Vec<u8>, CryptoError> {
        let block = self.block_size();
        if !data.len().is_multiple_of(block) {
            return Err(CryptoError::NotBlockAligned {
                len: data.len(),
                block,
            });
        }
        let mut out = data.to_vec();
        for chunk in out.chunks_mut(block) {
            with_suite!(self, S => if encrypt { S::encrypt_block(key, chunk) } else { S::decrypt_block(key, chunk) });
        }
        Ok(out)
    }

    pub fn encrypt_ecb(self, key: &Key, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.ecb(key, data, true)
    }

    pub fn decrypt_ecb(self, key: &Key, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.ecb(key, data, false)
    }

    pub fn diversify(self, key: &Key, factor: &[u8; 8]) -> Key {
        with_suite!(self, S => S::diversify(key, factor))
    }

    /// Diversifies level by level: national → province → city → card.
    pub fn diversify_chain(self, master: &Key, factors: &[[u8; 8]]) -> Key {
        factors
            .iter()
            .fold(master.clone(), |k, f| self.diversify(&k, f))
    }

    /// `E_K(R ‖ 00…)` over one block.
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

    /// The full-block MAC of `message` (padded, method 2) with `iv` zero-padded to a block.
    pub fn mac(self, key: &Key, iv: &[u8], message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let block = self.block_size();
        if iv.len() > block {
            return Err(CryptoError::TooLong {
                len: iv.len(),
                max: block,
            });
        }
        let mut iv = iv.to_vec();
        iv.resize(block, 0);
        let padded = pad_method2(message, block);
        Ok(with_suite!(self, S => S::cbc_mac(key, &iv, &padded)))
    }

    /// The line-protection MAC of PROFILE section 5: the first 4 bytes, IV = challenge ‖ 00….
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
