//! Software keys: master keys in memory, from the profile's test key set or a key file.
//! For development only; commands warn when they use them.

use super::{CardKeys, CardRef, KeyError, KEY_NAMES};
use sscard_core::crypto::{Algorithm, Key};
use sscard_core::hexfmt::parse_hex;
use sscard_core::profile::{kid, test_keys};
use std::collections::BTreeMap;
use std::path::Path;

/// Master keys: national masters for IRK/RKSSSE/UK_N, city masters for the local keys, the
/// manufacturer's transport master for TK.
pub struct SoftKeys {
    masters: BTreeMap<u8, Key>,
    label: String,
}

impl SoftKeys {
    /// The public test key set of PROFILE section 8.
    pub fn test_set() -> Self {
        let masters = KEY_NAMES
            .iter()
            .map(|(_, k)| {
                (
                    *k,
                    Key::new(test_keys::master(*k).expect("every key id has a test master")),
                )
            })
            .collect();
        Self {
            masters,
            label: "software keys (PROFILE test key set — never for production)".into(),
        }
    }

    /// Reads a key file: `NAME = HEX` lines (NAME one of IRK RKSSSE UK_N EAK_L UK_L RPK UPK TK),
    /// `#` comments. Refuses files that group or others can read.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let err = |detail: String| KeyError::KeyFile {
            path: shown.clone(),
            detail,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::KeyFileTooOpen { path: shown, mode });
        }
        let text =
            zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
        let mut masters = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| err(format!("line {}: expected NAME = HEX", n + 1)))?;
            let name = name.trim();
            let key_id = KEY_NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, k)| *k)
                .ok_or_else(|| err(format!("line {}: unknown key name {name:?}", n + 1)))?;
            let bytes = zeroize::Zeroizing::new(
                parse_hex(value).map_err(|e| err(format!("line {}: {e}", n + 1)))?,
            );
            let key = Key::from_slice(&bytes).map_err(|e| err(format!("line {}: {e}", n + 1)))?;
            masters.insert(key_id, key);
        }
        Ok(Self {
            masters,
            label: format!("software keys from {shown}"),
        })
    }

    /// The master of a key id, if the set has it.
    pub fn master(&self, key_id: u8) -> Option<&Key> {
        self.masters.get(&key_id)
    }

    /// The card key of `kid` for `card` (national keys through province and city).
    pub fn card_key(&self, alg: Algorithm, card: &CardRef, key_id: u8) -> Result<Key, KeyError> {
        let master = self.masters.get(&key_id).ok_or(KeyError::MissingKey {
            kid: key_id,
            name: kid::name(key_id),
        })?;
        Ok(alg.diversify_chain(master, &card.factors_for(key_id)?))
    }
}

/// The WRITE KEY data field: `LEN ‖ KID ‖ ALG ‖ TRIES ‖ VALUE`, padded (method 2), encrypted
/// under TK. The PIN object (KID `30`) carries the initial PIN 123456.
pub fn key_load_block(
    alg: Algorithm,
    tk: &Key,
    key_id: u8,
    tries: u8,
    value: &[u8],
) -> Result<Vec<u8>, KeyError> {
    Ok(alg.encrypt_ecb(tk, &key_block_plain(alg, key_id, tries, value))?)
}

/// The WRITE KEY plaintext before encryption under TK: `LEN ‖ KID ‖ ALG ‖ TRIES ‖ VALUE`,
/// method-2 padded (PROFILE section 4).
pub(crate) fn key_block_plain(
    alg: Algorithm,
    key_id: u8,
    tries: u8,
    value: &[u8],
) -> zeroize::Zeroizing<Vec<u8>> {
    let mut plain = zeroize::Zeroizing::new(vec![0, key_id, alg.id(), tries]);
    plain.extend_from_slice(value);
    plain[0] = (plain.len() - 1) as u8;
    zeroize::Zeroizing::new(sscard_core::crypto::padding::pad_method2(
        &plain,
        alg.block_size(),
    ))
}

impl CardKeys for SoftKeys {
    fn describe(&self) -> String {
        self.label.clone()
    }
    fn card_key(&self, alg: Algorithm, card: &CardRef, key_id: u8) -> Result<Key, KeyError> {
        SoftKeys::card_key(self, alg, card, key_id)
    }
}
