//! Key sources: where a terminal's cryptograms and MACs come from. A PSAM, an HSM and software
//! keys give identical results for the same card (PROFILE section 5).

mod card_ref;
mod error;
pub mod pkcs11;
mod psam;
mod soft;
mod spec;

pub use card_ref::CardRef;
pub use error::KeyError;
pub use pkcs11::Pkcs11Keys;
pub use psam::PsamKeys;
pub use soft::SoftKeys;
pub use spec::{open, token_pin as spec_token_pin, KeySpec};

use sscard_core::crypto::Algorithm;

/// Everything a flow needs from the key hierarchy, for one card and key id. Keys never leave
/// a source that can keep them (PSAM, HSM); only results do.
pub trait KeySource {
    /// A name for messages (`software test keys`, `PSAM in …`).
    fn describe(&self) -> String;
    /// The algorithm the source serves, when it serves only one (a PSAM).
    fn algorithm(&self) -> Option<Algorithm> {
        None
    }
    /// The terminal number (PSAM EF16), when the source has one.
    fn terminal_number(&mut self) -> Result<Option<String>, KeyError> {
        Ok(None)
    }
    /// `E_K(R ‖ 00…)` under the card key `kid` of `card`: internal-authentication check and
    /// external-authentication cryptogram.
    fn cryptogram(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        kid: u8,
        random: &[u8],
    ) -> Result<Vec<u8>, KeyError>;
    /// The 4-byte line-protection MAC under the card key `kid`, IV = challenge ‖ 00….
    fn mac(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        kid: u8,
        challenge: &[u8],
        message: &[u8],
    ) -> Result<[u8; 4], KeyError>;
    /// The WRITE KEY data field for card key `kid` (or the initial PIN for KID `30`):
    /// `LEN ‖ KID ‖ ALG ‖ TRIES ‖ VALUE`, method-2 padded and encrypted under the card's TK
    /// (PROFILE section 4). Sources that cannot export a key under another refuse.
    fn key_load_block(
        &mut self,
        _alg: Algorithm,
        _card: &CardRef,
        kid: u8,
        _tries: u8,
    ) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::Unsupported(format!(
            "{} cannot load key {kid:02X} under TK",
            self.describe()
        )))
    }
}
