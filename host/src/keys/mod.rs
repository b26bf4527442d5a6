//! Key sources: where a terminal's cryptograms and MACs come from. A PSAM, an HSM and software
//! keys give identical results for the same card (PROFILE section 5).

mod card_ref;
mod error;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
mod psam;
mod soft;
mod spec;

pub use card_ref::CardRef;
pub use error::{KeyError, KeyFileProblem, NoPsamReason};
#[cfg(feature = "pkcs11")]
pub use pkcs11::Pkcs11Keys;
pub use psam::PsamKeys;
pub use soft::SoftKeys;
pub use spec::{open, KeySpec};

use sscard_core::crypto::{Algorithm, Key};
use sscard_core::profile::commands::{key_block_plain, INITIAL_PIN_BCD};
use sscard_core::profile::Kid;

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
        kid: Kid,
        random: &[u8],
    ) -> Result<Vec<u8>, KeyError>;
    /// The 4-byte line-protection MAC under the card key `kid`, IV = challenge ‖ 00….
    fn mac(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        kid: Kid,
        challenge: &[u8],
        message: &[u8],
    ) -> Result<[u8; 4], KeyError>;
    /// HMAC-SHA256 of `message` under the source's audit key (the keyed audit chain).
    fn audit_mac(&mut self, _message: &[u8]) -> Result<[u8; 32], KeyError> {
        Err(KeyError::NoAuditKey {
            source_name: self.describe(),
        })
    }
    /// The WRITE KEY data field for card key `kid` (or the initial PIN for KID `30`):
    /// `LEN ‖ KID ‖ ALG ‖ TRIES ‖ VALUE`, method-2 padded and encrypted under the card's TK
    /// (PROFILE section 4). Sources that cannot export a key under another refuse.
    fn key_load_block(
        &mut self,
        _alg: Algorithm,
        _card: &CardRef,
        kid: Kid,
        _tries: u8,
    ) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::CannotLoadKeys {
            source_name: self.describe(),
            kid,
        })
    }
}

/// A source that holds (or derives) the card key itself: cryptograms, MACs and key loading
/// follow from the card key, the same way for every such source.
pub trait CardKeys {
    fn describe(&self) -> String;
    /// The card key of `key_id` for `card`.
    fn card_key(&self, alg: Algorithm, card: &CardRef, key_id: Kid) -> Result<Key, KeyError>;
}

impl<T: CardKeys> KeySource for T {
    fn describe(&self) -> String {
        CardKeys::describe(self)
    }
    // TEMPORARY (lead's branch, replaced by the key-custody work): a fixed test audit key.
    fn audit_mac(&mut self, message: &[u8]) -> Result<[u8; 32], KeyError> {
        use sha2::{Digest, Sha256};
        let key: [u8; 32] = Sha256::digest(b"sscard test audit key").into();
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for i in 0..32 {
            ipad[i] ^= key[i];
            opad[i] ^= key[i];
        }
        let inner = Sha256::new()
            .chain_update(ipad)
            .chain_update(message)
            .finalize();
        Ok(Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize()
            .into())
    }
    fn cryptogram(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        key_id: Kid,
        random: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        Ok(alg.cryptogram(&self.card_key(alg, card, key_id)?, random)?)
    }
    fn mac(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        key_id: Kid,
        challenge: &[u8],
        message: &[u8],
    ) -> Result<[u8; 4], KeyError> {
        Ok(alg.line_mac(&self.card_key(alg, card, key_id)?, challenge, message)?)
    }
    fn key_load_block(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        key_id: Kid,
        tries: u8,
    ) -> Result<Vec<u8>, KeyError> {
        let tk = self.card_key(alg, card, Kid::Tk)?;
        let plain = if key_id == Kid::Pin {
            // The PIN object carries the initial PIN 123456 (BCD).
            key_block_plain(alg, key_id, tries, &INITIAL_PIN_BCD)
        } else {
            key_block_plain(
                alg,
                key_id,
                tries,
                self.card_key(alg, card, key_id)?.expose(),
            )
        };
        Ok(alg.encrypt_ecb(&tk, &plain)?)
    }
}
