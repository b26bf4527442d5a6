//! Key sources: where a terminal's cryptograms and MACs come from. A PSAM, an HSM and software
//! keys give identical results for the same card (PROFILE section 5).

mod card_ref;
pub mod ceremony;
mod error;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
mod psam;
pub mod remote;
mod soft;
mod spec;

pub use card_ref::CardRef;
pub use ceremony::ComponentError;
pub use error::{KeyError, KeyFileProblem, NoPsamReason};
#[cfg(feature = "pkcs11")]
pub use pkcs11::Pkcs11Keys;
pub use psam::PsamKeys;
#[cfg(feature = "remote")]
pub use remote::{RemoteKeys, RemoteTls};
pub use soft::{SoftKeys, TEST_AUDIT_KEY_SEED};
pub use spec::{open, KeySpec};

use sscard_core::crypto::{Algorithm, Key};
use sscard_core::profile::commands::{key_block_plain, INITIAL_PIN_BCD};
use sscard_core::profile::Kid;
use zeroize::Zeroizing;

/// The WRITE KEY plaintext for `kid` (PROFILE section 4): the PIN object carries the initial
/// PIN 123456 (BCD), no key of the hierarchy; any other KID the card key `card_key` gives.
fn load_block_plain(
    alg: Algorithm,
    kid: Kid,
    tries: u8,
    card_key: impl FnOnce() -> Result<Key, KeyError>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    Ok(if kid == Kid::Pin {
        key_block_plain(alg, kid, tries, &INITIAL_PIN_BCD)
    } else {
        key_block_plain(alg, kid, tries, card_key()?.expose())
    })
}

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
    /// The WRITE KEY data fields of `keys` (key id and try limit) for one card, in order: one
    /// round trip for a remote source. By default [`KeySource::key_load_block`] per key.
    fn key_load_blocks(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        keys: &[(Kid, u8)],
    ) -> Result<Vec<Vec<u8>>, KeyError> {
        keys.iter()
            .map(|&(kid, tries)| self.key_load_block(alg, card, kid, tries))
            .collect()
    }
    /// HMAC-SHA256 of `message` under the source's audit key (the key of the journal's audit
    /// chain). A source without one answers [`KeyError::NoAuditKey`].
    fn audit_mac(&mut self, _message: &[u8]) -> Result<[u8; 32], KeyError> {
        Err(KeyError::NoAuditKey {
            source_name: self.describe(),
        })
    }
    /// Whether `mac` is the audit MAC of `message`, compared in constant time.
    fn audit_verify(&mut self, message: &[u8], mac: &[u8]) -> Result<bool, KeyError> {
        Ok(sscard_core::crypto::ct_eq(&self.audit_mac(message)?, mac))
    }
    /// Checks, before the first card, that the source holds every key of `kids` (the PIN
    /// object needs none) in a usable form (a token's masters derive-only) and its audit key.
    /// Sources that cannot tell answer `Ok`.
    fn preflight(&mut self, _kids: &[Kid]) -> Result<(), KeyError> {
        Ok(())
    }
    /// Whether the source can answer now, asked cheaply and without computing anything with a
    /// key: a key service is asked for its description (`GET /v1/info`). A caller that saw
    /// [`KeyError::is_unavailable`] polls this before it starts a flow again. Sources that are
    /// always at hand (key files, a token in this process) answer `Ok`.
    fn available(&mut self) -> Result<(), KeyError> {
        Ok(())
    }
    /// The city region (6 digits, e.g. `110100`) whose cards the source's keys serve, when the
    /// source knows it.
    fn region(&mut self) -> Result<Option<String>, KeyError> {
        Ok(None)
    }
}
