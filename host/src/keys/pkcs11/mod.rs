//! A PKCS#11 token (HSM) as key source, through `cryptoki`. Master keys are secret-key objects
//! found by label (`sscard:IRK`, `sscard:RKSSSE`, …) that must be sensitive, non-extractable and
//! derive-only: a master that can also encrypt gives the level below it in clear
//! (`C_Encrypt(master, factor)` is the province key) to anyone holding the token PIN, so such a
//! master is refused ([`KeyError::Pkcs11ExtraUsage`]).
//!
//! Diversification runs inside the token: each level is a `C_DeriveKey` with
//! CKM_DES3_ECB_ENCRYPT_DATA over `D ‖ ~D` (PROFILE section 5: `3DES_ECB(K, D) ‖ 3DES_ECB(K, ~D)`)
//! into a sensitive, non-extractable session object (derive-only above the card level),
//! destroyed after use. Cryptograms are a `C_Encrypt` (CKM_DES3_ECB) under the card-key object;
//! the retail MAC is CKM_DES3_CBC under a second object derived over `D ‖ D ‖ D`, which is the
//! card key's left half three times (single DES as 3DES, so no single-DES mechanism is needed),
//! then one CKM_DES3_ECB of the last block under the card key, which is exactly
//! `E_K1(D_K2(E_K1(·)))`. No key value leaves the token for authentication or line protection.
//!
//! Key loading: the WRITE KEY block `LEN ‖ KID ‖ ALG ‖ TRIES ‖ VALUE ‖ 80 00…` under the card's
//! TK needs the card key as *data* of an encryption under another key. PKCS#11 can do that with
//! CKM_CONCATENATE_DATA_AND_BASE / CKM_CONCATENATE_BASE_AND_DATA (to build the block as a key
//! object) and `C_WrapKey` with CKM_DES3_ECB; SoftHSM 2.6.1 (Debian 12) has neither (its
//! `C_DeriveKey` knows no concatenation and its `C_WrapKey` only AES-KEY-WRAP(-PAD), AES-CBC and
//! RSA), and no other mechanism it has takes a key as plaintext under a DES3 key. So the smallest
//! exposure left is used: every level above the card stays in the token; the card level of the
//! key being loaded is derived into a short-lived session object that is not sensitive, its
//! value read into zeroized memory, the object destroyed; the block is encrypted under the TK
//! card-key object inside the token (TK never leaves it). See docs/key-file.md.
//!
//! The audit key `sscard:AUDIT` is a generic secret (sign/verify only) for CKM_SHA256_HMAC; the
//! city region the masters serve is a data object `sscard:REGION`.
//!
//! A token without a mechanism, or any SM4 request, is refused with "mechanism … not supported
//! by token" — never a silent software fallback. The library is initialised once per process
//! (see `context`).

mod context;
mod import;

pub use import::AuditKeyOrigin;

use super::{CardRef, KeyError, KeySource};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use sscard_core::crypto::padding::pad_method2;
use sscard_core::crypto::{Algorithm, Key};
use sscard_core::profile::Kid;
use std::path::Path;
use zeroize::Zeroizing;

/// Label prefix of the master keys in the token.
pub const LABEL_PREFIX: &str = "sscard:";
/// Label of the audit key (HMAC-SHA256, sign/verify only).
pub const AUDIT_LABEL: &str = "sscard:AUDIT";
/// Label of the data object holding the city region (6 ASCII digits).
pub const REGION_LABEL: &str = "sscard:REGION";

fn err(operation: &'static str, e: cryptoki::error::Error) -> KeyError {
    KeyError::Pkcs11 {
        operation,
        detail: e.to_string(),
    }
}

/// An open, logged-in session on a token.
pub struct Pkcs11Keys {
    session: Session,
    token: String,
    has_des3: bool,
    has_des3_cbc: bool,
    /// CKM_DES3_ECB_ENCRYPT_DATA, when the token has it.
    derive: Option<MechanismType>,
}

/// A derived session key object, destroyed when dropped.
struct SessionKey<'s> {
    session: &'s Session,
    handle: ObjectHandle,
}

impl Drop for SessionKey<'_> {
    fn drop(&mut self) {
        let _ = self.session.destroy_object(self.handle);
    }
}

/// The two objects a card key takes in the token.
struct CardKeyObjects<'s> {
    /// The two-key TDEA card key.
    key: SessionKey<'s>,
    /// Its left half three times: single DES as 3DES, for the CBC part of the retail MAC;
    /// derived only for MACs.
    left: Option<SessionKey<'s>>,
}

/// What a derived object may do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// A level above the card: derive only.
    Derive,
    /// A card key: encrypt only.
    Encrypt,
    /// A card key for key loading: no usage, readable (see the module documentation).
    Export,
}

/// What a token key is for, and so which usages it must and may have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Master,
    Audit,
}

/// The usage attributes a secret key can carry, as pkcs11-tool names them.
const USAGES: [(AttributeType, &str); 7] = [
    (AttributeType::Encrypt, "encrypt"),
    (AttributeType::Decrypt, "decrypt"),
    (AttributeType::Wrap, "wrap"),
    (AttributeType::Unwrap, "unwrap"),
    (AttributeType::Sign, "sign"),
    (AttributeType::Verify, "verify"),
    (AttributeType::Derive, "derive"),
];

impl Role {
    fn allowed(self) -> &'static [&'static str] {
        match self {
            Role::Master => &["derive"],
            Role::Audit => &["sign", "verify"],
        }
    }
    fn allowed_text(self) -> &'static str {
        match self {
            Role::Master => "derive",
            Role::Audit => "sign, verify",
        }
    }
    fn needed(self) -> &'static str {
        match self {
            Role::Master => "derive",
            Role::Audit => "sign",
        }
    }
}

/// The value of a boolean attribute.
fn bool_value(a: &Attribute) -> Option<bool> {
    match a {
        Attribute::Sensitive(b)
        | Attribute::Extractable(b)
        | Attribute::Encrypt(b)
        | Attribute::Decrypt(b)
        | Attribute::Wrap(b)
        | Attribute::Unwrap(b)
        | Attribute::Sign(b)
        | Attribute::Verify(b)
        | Attribute::Derive(b) => Some(*b),
        _ => None,
    }
}

fn complement(d: &[u8; 8]) -> [u8; 8] {
    d.map(|b| !b)
}

/// Every usage attribute of `purpose`'s derived object, all given so the token adds none.
fn usage_template(purpose: Purpose) -> [Attribute; 7] {
    [
        Attribute::Encrypt(purpose == Purpose::Encrypt),
        Attribute::Decrypt(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(purpose == Purpose::Derive),
    ]
}

impl Pkcs11Keys {
    /// Finds the token labelled `token` in `module` (loaded and initialised once per process),
    /// opens a session of its own and logs in with `pin`.
    pub fn open(module: &Path, token: &str, pin: &str, read_write: bool) -> Result<Self, KeyError> {
        let m = context::context(module)?;
        let ctx = &m.ctx;
        let slot = context::slot(&m, module, token)?;
        // Asked one by one: cryptoki leaves out of C_GetMechanismList what it cannot name.
        let supported = |m: MechanismType| ctx.get_mechanism_info(slot, m).is_ok();
        let has_des3 = supported(MechanismType::DES3_ECB);
        let has_des3_cbc = supported(sscard_pkcs11_ext::des3_cbc());
        let derive = Some(sscard_pkcs11_ext::des3_ecb_encrypt_data()).filter(|m| supported(*m));
        let session = if read_write {
            ctx.open_rw_session(slot)
        } else {
            ctx.open_ro_session(slot)
        }
        .map_err(|e| err("C_OpenSession", e))?;
        context::login(&m, token, &session, pin)?;
        Ok(Self {
            session,
            token: token.into(),
            has_des3,
            has_des3_cbc,
            derive,
        })
    }

    fn unsupported(&self, mechanism: &str) -> KeyError {
        KeyError::Pkcs11Mechanism {
            mechanism: mechanism.into(),
            token: self.token.clone(),
        }
    }

    /// The objects of `class` labelled `label`.
    fn find(&self, class: ObjectClass, label: &str) -> Result<Vec<ObjectHandle>, KeyError> {
        self.session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(|e| err("C_FindObjects", e))
    }

    /// The one secret key labelled `label`, checked for `role`; `None` when there is none.
    fn key_for(&self, label: &str, role: Role) -> Result<Option<ObjectHandle>, KeyError> {
        let found = self.find(ObjectClass::SECRET_KEY, label)?;
        let handle = match found[..] {
            [] => return Ok(None),
            [h] => h,
            _ => {
                return Err(KeyError::Pkcs11Duplicate {
                    key: label.into(),
                    count: found.len(),
                })
            }
        };
        self.check_key(handle, label, role)?;
        Ok(Some(handle))
    }

    /// Refuses a key that can leave the token or do more (or other) than its role.
    fn check_key(&self, handle: ObjectHandle, label: &str, role: Role) -> Result<(), KeyError> {
        let mut wanted = vec![AttributeType::Sensitive, AttributeType::Extractable];
        wanted.extend(USAGES.iter().map(|(t, _)| *t));
        let attrs = self
            .session
            .get_attributes(handle, &wanted)
            .map_err(|e| err("C_GetAttributeValue", e))?;
        // An attribute the token does not report counts as false.
        let flag = |t: AttributeType| {
            attrs
                .iter()
                .any(|a| a.attribute_type() == t && bool_value(a) == Some(true))
        };
        let extra: Vec<&'static str> = USAGES
            .iter()
            .filter(|(t, name)| flag(*t) && !role.allowed().contains(name))
            .map(|(_, name)| *name)
            .collect();
        if !extra.is_empty() {
            return Err(KeyError::Pkcs11ExtraUsage {
                key: label.into(),
                extra,
                allowed: role.allowed_text(),
            });
        }
        let needed = role.needed();
        let has_needed = USAGES.iter().any(|(t, name)| *name == needed && flag(*t));
        if !has_needed {
            return Err(KeyError::Pkcs11MissingUsage {
                key: label.into(),
                usage: needed,
            });
        }
        if !flag(AttributeType::Sensitive) {
            return Err(KeyError::Pkcs11Exposed {
                key: label.into(),
                attribute: "CKA_SENSITIVE is false",
            });
        }
        if flag(AttributeType::Extractable) {
            return Err(KeyError::Pkcs11Exposed {
                key: label.into(),
                attribute: "CKA_EXTRACTABLE is true",
            });
        }
        Ok(())
    }

    /// The master of `key_id`, checked: sensitive, non-extractable, derive-only.
    fn master(&self, key_id: Kid) -> Result<ObjectHandle, KeyError> {
        self.key_for(&format!("{LABEL_PREFIX}{key_id}"), Role::Master)?
            .ok_or(KeyError::MissingKey { kid: key_id })
    }

    /// The audit key, checked: sensitive, non-extractable, sign/verify only.
    fn audit_key(&self) -> Result<ObjectHandle, KeyError> {
        self.key_for(AUDIT_LABEL, Role::Audit)?
            .ok_or_else(|| KeyError::NoAuditKey {
                source_name: self.describe(),
            })
    }

    /// Whether the token lets anyone read a master's value (it must not).
    pub fn master_value_readable(&self, key_id: Kid) -> Result<bool, KeyError> {
        let h = self.master(key_id)?;
        Ok(matches!(
            self.session
                .get_attributes(h, &[AttributeType::Value])
                .as_deref(),
            Ok([Attribute::Value(_)])
        ))
    }

    fn check_mechanisms(&self, alg: Algorithm) -> Result<MechanismType, KeyError> {
        if alg != Algorithm::Tdes {
            return Err(self.unsupported(&format!("{}-ECB", alg.name())));
        }
        if !self.has_des3 {
            return Err(self.unsupported("DES3-ECB"));
        }
        if !self.has_des3_cbc {
            return Err(self.unsupported("DES3-CBC"));
        }
        self.derive
            .ok_or_else(|| self.unsupported("DES3-ECB-ENCRYPT-DATA"))
    }

    /// `C_DeriveKey` with CKM_DES3_ECB_ENCRYPT_DATA: the new key's value is `base` encrypting
    /// `data` (16 or 24 bytes for DES2, DES3), kept in the token with the usages of `purpose`.
    fn derive_key<'s>(
        &'s self,
        mechanism: MechanismType,
        base: ObjectHandle,
        data: &[u8],
        purpose: Purpose,
    ) -> Result<SessionKey<'s>, KeyError> {
        let mut data = Zeroizing::new(data.to_vec());
        let exported = purpose == Purpose::Export;
        // SoftHSM sets odd parity on every DES-type key it derives. The profile's card keys
        // keep the cipher's output bits as they are; DES ignores parity, so objects used in
        // the token work either way, but a value read out must be a generic secret.
        let key_type = if exported {
            KeyType::GENERIC_SECRET
        } else if data.len() == 24 {
            KeyType::DES3
        } else {
            KeyType::DES2
        };
        let params = cryptoki_sys::CK_KEY_DERIVATION_STRING_DATA {
            pData: data.as_mut_ptr(),
            ulLen: data.len() as cryptoki_sys::CK_ULONG,
        };
        let mechanism =
            Mechanism::VendorDefined(VendorDefinedMechanism::new(mechanism, Some(&params)));
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(!exported),
            Attribute::Extractable(exported),
        ];
        if exported {
            template.push(Attribute::ValueLen((data.len() as u64).into()));
        }
        template.extend(usage_template(purpose));
        let handle = self
            .session
            .derive_key(&mechanism, base, &template)
            .map_err(|e| err("C_DeriveKey (DES3-ECB-ENCRYPT-DATA)", e))?;
        Ok(SessionKey {
            session: &self.session,
            handle,
        })
    }

    /// The level just above the card for `key_id` (the city key of a national key, the master
    /// of the others), every level derived in the token; `None` means the master itself.
    fn above_card<'s>(
        &'s self,
        derive: MechanismType,
        master: ObjectHandle,
        factors_above: &[[u8; 8]],
    ) -> Result<Option<SessionKey<'s>>, KeyError> {
        let mut parent: Option<SessionKey> = None;
        for f in factors_above {
            let base = parent.as_ref().map_or(master, |k| k.handle);
            parent = Some(self.derive_key(
                derive,
                base,
                &[*f, complement(f)].concat(),
                Purpose::Derive,
            )?);
        }
        Ok(parent)
    }

    /// The card key of `key_id` for `card` as token objects, every level derived in the token;
    /// with `for_mac`, its left half too.
    fn card_key_objects(
        &self,
        alg: Algorithm,
        card: &CardRef,
        key_id: Kid,
        for_mac: bool,
    ) -> Result<CardKeyObjects<'_>, KeyError> {
        let derive = self.check_mechanisms(alg)?;
        let master = self.master(key_id)?;
        let factors = card.factors_for(key_id)?;
        let (card_factor, above) = factors.split_last().expect("at least the card factor");
        let parent = self.above_card(derive, master, above)?;
        let base = parent.as_ref().map_or(master, |k| k.handle);
        Ok(CardKeyObjects {
            key: self.derive_key(
                derive,
                base,
                &[*card_factor, complement(card_factor)].concat(),
                Purpose::Encrypt,
            )?,
            left: if for_mac {
                Some(self.derive_key(derive, base, &card_factor.repeat(3), Purpose::Encrypt)?)
            } else {
                None
            },
        })
    }

    /// The card key's value, for key loading only: every level above the card in the token,
    /// the card level read from a non-sensitive session object destroyed right after (see the
    /// module documentation for why SoftHSM leaves no other way).
    fn card_key_value(&self, alg: Algorithm, card: &CardRef, key_id: Kid) -> Result<Key, KeyError> {
        let derive = self.check_mechanisms(alg)?;
        let master = self.master(key_id)?;
        let factors = card.factors_for(key_id)?;
        let (card_factor, above) = factors.split_last().expect("at least the card factor");
        let parent = self.above_card(derive, master, above)?;
        let base = parent.as_ref().map_or(master, |k| k.handle);
        let card_key = self.derive_key(
            derive,
            base,
            &[*card_factor, complement(card_factor)].concat(),
            Purpose::Export,
        )?;
        let value = match self
            .session
            .get_attributes(card_key.handle, &[AttributeType::Value])
            .map_err(|e| err("C_GetAttributeValue", e))?
            .pop()
        {
            Some(Attribute::Value(v)) => Zeroizing::new(v),
            _ => {
                return Err(KeyError::Pkcs11 {
                    operation: "C_GetAttributeValue",
                    detail: "the derived card key's value was not returned".into(),
                })
            }
        };
        Ok(Key::from_slice(&value)?)
    }

    fn encrypt(
        &self,
        mechanism: &Mechanism,
        key: &SessionKey,
        data: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        self.session
            .encrypt(mechanism, key.handle, data)
            .map_err(|e| err("C_Encrypt", e))
    }

    /// The `sscard:REGION` data object's value, if there is one.
    fn region_object(&self) -> Result<Option<String>, KeyError> {
        let Some(handle) = self.find(ObjectClass::DATA, REGION_LABEL)?.first().copied() else {
            return Ok(None);
        };
        let value = match self
            .session
            .get_attributes(handle, &[AttributeType::Value])
            .map_err(|e| err("C_GetAttributeValue", e))?
            .pop()
        {
            Some(Attribute::Value(v)) => v,
            _ => Vec::new(),
        };
        match String::from_utf8(value) {
            Ok(s) if super::soft::is_region(&s) => Ok(Some(s)),
            Ok(s) => Err(KeyError::TokenRegion {
                token: self.token.clone(),
                value: s,
            }),
            Err(e) => Err(KeyError::TokenRegion {
                token: self.token.clone(),
                value: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }),
        }
    }
}

impl KeySource for Pkcs11Keys {
    fn describe(&self) -> String {
        format!("PKCS#11 token {:?}", self.token)
    }

    fn cryptogram(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        key_id: Kid,
        random: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let keys = self.card_key_objects(alg, card, key_id, false)?;
        let mut block = Zeroizing::new(random.to_vec());
        block.resize(alg.block_size(), 0);
        self.encrypt(&Mechanism::Des3Ecb, &keys.key, &block)
    }

    /// ISO/IEC 9797-1 MAC algorithm 3 in the token: single-DES CBC under the left half over all
    /// but the last block, then `E_K1(D_K2(E_K1(last ⊕ chain)))` = 3DES-ECB under the card key.
    fn mac(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        key_id: Kid,
        challenge: &[u8],
        message: &[u8],
    ) -> Result<[u8; 4], KeyError> {
        let keys = self.card_key_objects(alg, card, key_id, true)?;
        let mut iv = [0u8; 8];
        let n = challenge.len().min(8);
        iv[..n].copy_from_slice(&challenge[..n]);
        let padded = pad_method2(message, 8);
        let (head, last) = padded.split_at(padded.len() - 8);
        let chain: [u8; 8] = if head.is_empty() {
            iv
        } else {
            let left = keys.left.as_ref().expect("derived for a MAC");
            let cbc = self.encrypt(&Mechanism::Des3Cbc(iv), left, head)?;
            cbc[cbc.len() - 8..].try_into().expect("a whole block")
        };
        let x: Vec<u8> = last.iter().zip(chain).map(|(a, b)| a ^ b).collect();
        let mac = self.encrypt(&Mechanism::Des3Ecb, &keys.key, &x)?;
        Ok(mac[..4].try_into().expect("8 bytes"))
    }

    fn key_load_block(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        key_id: Kid,
        tries: u8,
    ) -> Result<Vec<u8>, KeyError> {
        let plain = super::load_block_plain(alg, key_id, tries, || {
            self.card_key_value(alg, card, key_id)
        })?;
        let tk = self.card_key_objects(alg, card, Kid::Tk, false)?;
        self.encrypt(&Mechanism::Des3Ecb, &tk.key, &plain)
    }

    /// CKM_SHA256_HMAC (`C_Sign`) under `sscard:AUDIT`.
    fn audit_mac(&mut self, message: &[u8]) -> Result<[u8; 32], KeyError> {
        let key = self.audit_key()?;
        let mac = self
            .session
            .sign(&Mechanism::Sha256Hmac, key, message)
            .map_err(|e| err("C_Sign (SHA256-HMAC)", e))?;
        mac[..].try_into().map_err(|_| KeyError::Pkcs11 {
            operation: "C_Sign (SHA256-HMAC)",
            detail: format!("{} bytes returned, 32 expected", mac.len()),
        })
    }

    fn preflight(&mut self, kids: &[Kid]) -> Result<(), KeyError> {
        for kid in kids.iter().filter(|k| **k != Kid::Pin) {
            self.master(*kid)?;
        }
        self.audit_key()?;
        Ok(())
    }

    fn region(&mut self) -> Result<Option<String>, KeyError> {
        self.region_object()
    }
}
