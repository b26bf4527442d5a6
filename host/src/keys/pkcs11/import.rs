//! Writing sscard's objects into a token (`sscard keys hsm-import`): derive-only masters, the
//! audit key and the region. Every usage attribute is given explicitly — a token adds its own
//! defaults otherwise (SoftHSM gives a secret key encrypt, decrypt, sign, verify, wrap and
//! unwrap) — and the keys are not modifiable, so no usage can be switched on later.

use super::{err, usage_template, Pkcs11Keys, Purpose, AUDIT_LABEL, LABEL_PREFIX, REGION_LABEL};
use crate::keys::KeyError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use sscard_core::crypto::Key;
use sscard_core::profile::Kid;
use zeroize::Zeroizing;

/// Where the token's audit key came from in an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditKeyOrigin {
    /// Generated inside the token (`C_GenerateKey`, CKM_GENERIC_SECRET_KEY_GEN, 32 bytes).
    Generated,
    /// Imported from a key file's `AUDIT` line (or the test set).
    Imported,
    /// The token had one already; it was kept, so existing audit chains still verify.
    Kept,
}

impl AuditKeyOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generated => "generated in the token",
            Self::Imported => "imported",
            Self::Kept => "kept",
        }
    }
}

/// The attributes every sscard key object shares: a private token object that never leaves
/// the token and cannot be changed.
fn kept_in_token(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Modifiable(false),
    ]
}

/// The audit key's usages: HMAC sign and verify, nothing else.
fn audit_usages() -> [Attribute; 7] {
    [
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Derive(false),
    ]
}

impl Pkcs11Keys {
    /// Destroys every object of `class` labelled `label`.
    fn destroy_all(&self, class: ObjectClass, label: &str) -> Result<(), KeyError> {
        for old in self.find(class, label)? {
            self.session
                .destroy_object(old)
                .map_err(|e| err("C_DestroyObject", e))?;
        }
        Ok(())
    }

    /// Imports master keys as sensitive, non-extractable, derive-only token objects, replacing
    /// any of the same label.
    pub fn import(&self, masters: &[(Kid, Key)]) -> Result<usize, KeyError> {
        for (key_id, key) in masters {
            let label = format!("{LABEL_PREFIX}{key_id}");
            self.destroy_all(ObjectClass::SECRET_KEY, &label)?;
            // Two-key TDEA as a DES3 object: K1 ‖ K2 ‖ K1.
            let mut value = Zeroizing::new(key.expose().to_vec());
            value.extend_from_slice(key.left());
            let mut template = kept_in_token(&label);
            template.push(Attribute::KeyType(KeyType::DES3));
            template.push(Attribute::Value(value.to_vec()));
            template.extend(usage_template(Purpose::Derive));
            let created = self.session.create_object(&template);
            // The template's copy of the value.
            for a in &mut template {
                if let Attribute::Value(v) = a {
                    zeroize::Zeroize::zeroize(v);
                }
            }
            created.map_err(|e| err("C_CreateObject", e))?;
        }
        Ok(masters.len())
    }

    /// Makes sure the token has an audit key: `value` replaces it (a key file's `AUDIT`);
    /// without one an existing key is kept (checked) and a missing one generated in the token.
    pub fn ensure_audit_key(&self, value: Option<&[u8; 32]>) -> Result<AuditKeyOrigin, KeyError> {
        let mut template = kept_in_token(AUDIT_LABEL);
        template.push(Attribute::KeyType(KeyType::GENERIC_SECRET));
        template.extend(audit_usages());
        match value {
            Some(v) => {
                self.destroy_all(ObjectClass::SECRET_KEY, AUDIT_LABEL)?;
                template.push(Attribute::Value(v.to_vec()));
                let created = self.session.create_object(&template);
                for a in &mut template {
                    if let Attribute::Value(v) = a {
                        zeroize::Zeroize::zeroize(v);
                    }
                }
                created.map_err(|e| err("C_CreateObject", e))?;
                Ok(AuditKeyOrigin::Imported)
            }
            None => {
                if self.audit_key_present()? {
                    return Ok(AuditKeyOrigin::Kept);
                }
                template.push(Attribute::ValueLen(32.into()));
                self.session
                    .generate_key(&Mechanism::GenericSecretKeyGen, &template)
                    .map_err(|e| err("C_GenerateKey (GENERIC-SECRET-KEY-GEN)", e))?;
                Ok(AuditKeyOrigin::Generated)
            }
        }
    }

    /// Whether the token has an audit key, checked for its role when it has one.
    fn audit_key_present(&self) -> Result<bool, KeyError> {
        match self.audit_key() {
            Ok(_) => Ok(true),
            Err(KeyError::NoAuditKey { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes the city region (6 digits) the token's masters serve, replacing any earlier one.
    pub fn write_region(&self, region: &str) -> Result<(), KeyError> {
        if !crate::keys::soft::is_region(region) {
            return Err(KeyError::TokenRegion {
                token: self.token.clone(),
                value: region.into(),
            });
        }
        self.destroy_all(ObjectClass::DATA, REGION_LABEL)?;
        self.session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Label(REGION_LABEL.as_bytes().to_vec()),
                Attribute::Application(b"sscard".to_vec()),
                Attribute::Value(region.as_bytes().to_vec()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Modifiable(false),
            ])
            .map_err(|e| err("C_CreateObject", e))?;
        Ok(())
    }
}
