//! Software keys: master keys in memory, from the profile's test key set or a key file.
//! For development only; commands warn when they use them.

use super::{CardRef, KeyError, KeyFileProblem, KeySource};
use hmac::{Hmac, KeyInit, Mac};
use sha2_v011::{Digest, Sha256};
use sscard_core::crypto::{Algorithm, Key};
use sscard_core::fsutil::{read_secret_file_bounded, Limit, ReadError};
use sscard_core::hexfmt::{parse_hex, HexError};
use sscard_core::profile::{test_keys, Kid};
use std::collections::BTreeMap;
use std::path::Path;
use zeroize::Zeroizing;

/// The test set's audit key is SHA-256 of this text: public, for tests and benches only.
pub const TEST_AUDIT_KEY_SEED: &str = "sscard test audit key";

/// The most a key file may hold: 64 KiB (a full key file is under 1 KiB).
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

const KEY_FILE_LIMIT: Limit = Limit::new("a key file", MAX_KEY_FILE_BYTES);

/// The city region of the PROFILE test key set (section 8).
const TEST_REGION: &str = "110100";

/// Master keys: national masters for IRK/RKSSSE/UK_N, city masters for the local keys, the
/// manufacturer's transport master for TK; and the audit key of the journal's audit chain.
pub struct SoftKeys {
    masters: BTreeMap<Kid, Key>,
    audit: Option<Zeroizing<[u8; 32]>>,
    region: Option<String>,
    label: String,
}

/// Whether `text` is a 6-digit city code.
pub(crate) fn is_region(text: &str) -> bool {
    text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit())
}

impl SoftKeys {
    /// The public test key set of PROFILE section 8, with the test audit key
    /// (SHA-256 of [`TEST_AUDIT_KEY_SEED`]) and region `110100`.
    pub fn test_set() -> Self {
        let masters = Kid::ALL
            .into_iter()
            .filter_map(|k| test_keys::master(k).map(|m| (k, Key::new(m))))
            .collect();
        Self {
            masters,
            audit: Some(Zeroizing::new(
                Sha256::digest(TEST_AUDIT_KEY_SEED.as_bytes()).into(),
            )),
            region: Some(TEST_REGION.into()),
            label: "software keys (PROFILE test key set — never for production)".into(),
        }
    }

    /// Reads a key file: `NAME = HEX` lines (NAME one of IRK RKSSSE UK_N EAK_L UK_L RPK UPK TK,
    /// or AUDIT for the 32-byte audit key), an optional `REGION = 110100`, `#` comments.
    /// Refuses files that group or others can read.
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
        // Bounded, and read into one zeroized buffer: a FIFO fed from /dev/zero fails at once.
        let bytes = read_secret_file_bounded(path, KEY_FILE_LIMIT).map_err(|e| match e {
            ReadError::Io { source, .. } => unreadable(source),
            ReadError::TooLarge { limit, what, .. } => err(KeyFileProblem::Unreadable {
                reason: format!("holds more than {limit} bytes, the most read for {what}"),
            }),
            e => err(KeyFileProblem::Unreadable {
                reason: e.to_string(),
            }),
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            err(KeyFileProblem::Unreadable {
                reason: "not UTF-8 text".into(),
            })
        })?;
        let mut masters = BTreeMap::new();
        let mut audit = None;
        let mut region = None;
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| err(KeyFileProblem::NotAnAssignment { line: line_no }))?;
            let name = name.trim();
            if name.eq_ignore_ascii_case("REGION") {
                let value = value.trim();
                if !is_region(value) {
                    return Err(err(KeyFileProblem::BadRegion { line: line_no }));
                }
                region = Some(value.to_string());
                continue;
            }
            let key_id = Kid::from_name(name).filter(|k| *k != Kid::Pin);
            if key_id.is_none() && !name.eq_ignore_ascii_case("AUDIT") {
                return Err(err(KeyFileProblem::UnknownName {
                    line: line_no,
                    name: name.into(),
                }));
            }
            let bytes = Zeroizing::new(parse_hex(value).map_err(|e| {
                err(match e {
                    // Where the character is, never what it is: it is key material.
                    HexError::InvalidChar { column, .. } => KeyFileProblem::BadHex {
                        line: line_no,
                        column: raw[..offset_in(raw, value)].chars().count() + column,
                    },
                    HexError::OddLength { digits } => KeyFileProblem::OddHex {
                        line: line_no,
                        digits,
                    },
                    _ => KeyFileProblem::NotHex { line: line_no },
                })
            })?);
            let Some(key_id) = key_id else {
                let key: [u8; 32] = bytes[..].try_into().map_err(|_| {
                    err(KeyFileProblem::BadAuditKey {
                        line: line_no,
                        len: bytes.len(),
                    })
                })?;
                audit = Some(Zeroizing::new(key));
                continue;
            };
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
            audit,
            region,
            label: format!("software keys from {shown}"),
        })
    }

    /// The master of a key, if the set has it.
    pub fn master(&self, key_id: Kid) -> Option<&Key> {
        self.masters.get(&key_id)
    }

    /// The audit key, if the set has one (for importing it into a token).
    pub fn audit_key(&self) -> Option<&[u8; 32]> {
        self.audit.as_deref()
    }

    /// The `REGION` of the key file (`110100` for the test set), if given.
    pub fn region_code(&self) -> Option<&str> {
        self.region.as_deref()
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

impl KeySource for SoftKeys {
    fn describe(&self) -> String {
        self.label.clone()
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
        let plain =
            super::load_block_plain(alg, key_id, tries, || self.card_key(alg, card, key_id))?;
        Ok(alg.encrypt_ecb(&tk, &plain)?)
    }

    fn audit_mac(&mut self, message: &[u8]) -> Result<[u8; 32], KeyError> {
        let key = self.audit.as_ref().ok_or_else(|| KeyError::NoAuditKey {
            source_name: self.label.clone(),
        })?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key[..])
            .expect("HMAC takes a key of any length");
        mac.update(message);
        Ok(mac.finalize().into_bytes().into())
    }

    fn preflight(&mut self, kids: &[Kid]) -> Result<(), KeyError> {
        for kid in kids.iter().filter(|k| **k != Kid::Pin) {
            if !self.masters.contains_key(kid) {
                return Err(KeyError::MissingKey { kid: *kid });
            }
        }
        if self.audit.is_none() {
            return Err(KeyError::NoAuditKey {
                source_name: self.label.clone(),
            });
        }
        Ok(())
    }

    fn region(&mut self) -> Result<Option<String>, KeyError> {
        Ok(self.region.clone())
    }
}

/// The byte offset of `part`, a sub-slice of `whole`, inside it.
fn offset_in(whole: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard_core::hexfmt::to_hex;

    #[test]
    fn a_key_file_past_the_limit_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("sscard-big-keys-{}", std::process::id()));
        std::fs::write(&path, "# padding\n".repeat(7000)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = SoftKeys::from_file(&path).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "key file {}: holds more than 65536 bytes, the most read for a key file",
                path.display()
            )
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn bad_hex_in_a_key_value_is_located_never_quoted() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("sscard-bad-keys-{}", std::process::id()));
        for (text, problem, message) in [
            (
                "# test\nIRK = 00112233445566778899AABBCCDDEEFQ\n",
                KeyFileProblem::BadHex {
                    line: 2,
                    column: 38,
                },
                "line 2: the character at column 38 is not a hex digit (key material, not shown)",
            ),
            (
                "  UK_N=0011 2233 4455 66Z7 8899AABBCCDDEEFF\n",
                KeyFileProblem::BadHex {
                    line: 1,
                    column: 25,
                },
                "line 1: the character at column 25 is not a hex digit (key material, not shown)",
            ),
            (
                "IRK = 00112233445566778899AABBCCDDEEF\n",
                KeyFileProblem::OddHex {
                    line: 1,
                    digits: 31,
                },
                "line 1: the value has an odd number of hex digits (31): every byte needs two",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let e = SoftKeys::from_file(&path).err().unwrap();
            assert_eq!(
                e.to_string(),
                format!("key file {}: {message}", path.display())
            );
            let KeyError::KeyFile { problem: got, .. } = &e else {
                panic!("{e:?}")
            };
            assert_eq!(got, &problem);
            // Nor in Debug: no digit of the value, no offending character.
            let debug = format!("{e:?}");
            assert!(
                !debug.contains("EEF") && !debug.contains('Q') && !debug.contains("Z7"),
                "{debug}"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn the_test_audit_key_is_the_documented_one() {
        let mut keys = SoftKeys::test_set();
        assert_eq!(
            to_hex(keys.audit_key().unwrap()),
            "546C479A12FEB681602B7E7156B21B1B91D31C9134F524981056F89787CFA659"
        );
        assert_eq!(keys.region().unwrap().as_deref(), Some("110100"));
        keys.preflight(&Kid::ALL).unwrap();
    }

    #[test]
    fn audit_macs_are_hmac_sha256() {
        // Values from `openssl dgst -sha256 -mac HMAC` (and Python's hmac module).
        let mut keys = SoftKeys::test_set();
        assert_eq!(
            to_hex(&keys.audit_mac(b"sscard audit").unwrap()),
            "4C1503E1C1D118F7EBE02B877A6E14EE021BAF1FABB2A13F9DE90F2701DFB481"
        );
        keys.audit = Some(Zeroizing::new([0x0b; 32]));
        let mac = keys.audit_mac(b"Hi There").unwrap();
        assert_eq!(
            to_hex(&mac),
            "198A607EB44BFBC69903A0F1CF2BBDC5BA0AA3F3D9AE3C1C7A3B1696A0B68CF7"
        );
        assert!(keys.audit_verify(b"Hi There", &mac).unwrap());
        let mut wrong = mac;
        wrong[31] ^= 1;
        assert!(!keys.audit_verify(b"Hi There", &wrong).unwrap());
        assert!(!keys.audit_verify(b"Hi There", &mac[..31]).unwrap());
    }
}
