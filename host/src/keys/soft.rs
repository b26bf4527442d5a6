//! Software keys: master keys in memory, from the profile's test key set or a key file.
//! For development only; commands warn when they use them.

use super::{CardKeys, CardRef, KeyError, KeyFileProblem};
use sscard_core::crypto::{Algorithm, Key};
use sscard_core::hexfmt::parse_hex;
use sscard_core::profile::{test_keys, Kid};
use std::collections::BTreeMap;
use std::path::Path;

/// Master keys: national masters for IRK/RKSSSE/UK_N, city masters for the local keys, the
/// manufacturer's transport master for TK.
pub struct SoftKeys {
    masters: BTreeMap<Kid, Key>,
    label: String,
}

impl SoftKeys {
    /// The public test key set of PROFILE section 8.
    pub fn test_set() -> Self {
        let masters = Kid::ALL
            .into_iter()
            .filter_map(|k| test_keys::master(k).map(|m| (k, Key::new(m))))
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
        let err = |problem: KeyFileProblem| KeyError::KeyFile {
            path: shown.clone(),
            problem,
        };
        let unreadable = |e: std::io::Error| {
            err(KeyFileProblem::Unreadable {
                reason: e.to_string(),
            })
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::KeyFileTooOpen { path: shown, mode });
        }
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(unreadable)?);
        let mut masters = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| err(KeyFileProblem::NotAnAssignment { line: line_no }))?;
            let name = name.trim();
            let key_id = Kid::from_name(name)
                .filter(|k| *k != Kid::Pin)
                .ok_or_else(|| {
                    err(KeyFileProblem::UnknownName {
                        line: line_no,
                        name: name.into(),
                    })
                })?;
            let bytes = zeroize::Zeroizing::new(parse_hex(value).map_err(|source| {
                err(KeyFileProblem::BadHex {
                    line: line_no,
                    source,
                })
            })?);
            let key = Key::from_slice(&bytes).map_err(|source| {
                err(KeyFileProblem::BadKey {
                    line: line_no,
                    source,
                })
            })?;
            masters.insert(key_id, key);
        }
        Ok(Self {
            masters,
            label: format!("software keys from {shown}"),
        })
    }

    /// The master of a key, if the set has it.
    pub fn master(&self, key_id: Kid) -> Option<&Key> {
        self.masters.get(&key_id)
    }

    /// The card key of `key_id` for `card` (national keys through province and city).
    pub fn card_key(&self, alg: Algorithm, card: &CardRef, key_id: Kid) -> Result<Key, KeyError> {
        let master = self
            .masters
            .get(&key_id)
            .ok_or(KeyError::MissingKey { kid: key_id })?;
        Ok(alg.diversify_chain(master, &card.factors_for(key_id)?))
    }
}

impl CardKeys for SoftKeys {
    fn describe(&self) -> String {
        self.label.clone()
    }
    fn card_key(&self, alg: Algorithm, card: &CardRef, key_id: Kid) -> Result<Key, KeyError> {
        SoftKeys::card_key(self, alg, card, key_id)
    }
}
