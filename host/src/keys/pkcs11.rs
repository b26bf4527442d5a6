//! A PKCS#11 token (HSM) as key source, through `cryptoki`. Master keys are non-extractable,
//! sensitive secret-key objects found by label (`sscard:IRK`, `sscard:RKSSSE`, …).
//!
//! Diversification runs inside the token: each level is a `C_DeriveKey` with
//! CKM_DES3_ECB_ENCRYPT_DATA over `D ‖ ~D` (PROFILE section 5: `3DES_ECB(K, D) ‖ 3DES_ECB(K, ~D)`)
//! into a sensitive, non-extractable session object, destroyed after use. Cryptograms are a
//! `C_Encrypt` (CKM_DES3_ECB) under the card-key object; the retail MAC is CKM_DES3_CBC under a
//! second object derived over `D ‖ D ‖ D`, which is the card key's left half three times (single
//! DES as 3DES, so no single-DES mechanism is needed), then one CKM_DES3_ECB of the last block
//! under the card key, which is exactly `E_K1(D_K2(E_K1(·)))`. No key value leaves the token for
//! authentication or line protection.
//!
//! Key loading for personalisation is the exception: the WRITE KEY block puts the card key's
//! value between header bytes, a layout no PKCS#11 wrap produces, so the card key is assembled on
//! the host in zeroized memory (the master level still a `C_Encrypt` inside the token) and only
//! the TK encryption runs in the token. A token without a mechanism, or any SM4 request, is
//! refused with "mechanism … not supported by token" — never a silent software fallback.

use super::{CardRef, KeyError, KeySource};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use sscard_core::crypto::padding::pad_method2;
use sscard_core::crypto::{Algorithm, Key};
use sscard_core::profile::commands::{key_block_plain, INITIAL_PIN_BCD};
use sscard_core::profile::Kid;
use std::path::Path;
use zeroize::Zeroizing;

/// Label prefix of the master keys in the token.
pub const LABEL_PREFIX: &str = "sscard:";

fn err(operation: &'static str, e: cryptoki::error::Error) -> KeyError {
    KeyError::Pkcs11 {
        operation,
        detail: e.to_string(),
    }
}

/// An open, logged-in session on a token.
pub struct Pkcs11Keys {
    _ctx: Pkcs11,
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

fn complement(d: &[u8; 8]) -> [u8; 8] {
    d.map(|b| !b)
}

impl Pkcs11Keys {
    /// Loads `module`, finds the token labelled `token`, logs in with `pin`.
    pub fn open(module: &Path, token: &str, pin: &str, read_write: bool) -> Result<Self, KeyError> {
        let ctx = Pkcs11::new(module).map_err(|e| KeyError::Pkcs11 {
            operation: "loading the module",
            detail: format!("{}: {e}", module.display()),
        })?;
        match ctx.initialize(CInitializeArgs::OsThreads) {
            // Another handle in this process initialised the module already: fine.
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::CryptokiAlreadyInitialized,
                _,
            ))
            | Ok(()) => {}
            Err(e) => return Err(err("C_Initialize", e)),
        }
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| err("C_GetSlotList", e))?;
        let slot = slots
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .map(|i| i.label().trim_end() == token)
                    .unwrap_or(false)
            })
            .ok_or_else(|| KeyError::Pkcs11NoToken {
                module: module.display().to_string(),
                token: token.into(),
            })?;
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
        session
            .login(UserType::User, Some(&AuthPin::new(pin.into())))
            .map_err(|e| err("C_Login", e))?;
        Ok(Self {
            _ctx: ctx,
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

    fn master(&self, key_id: Kid) -> Result<ObjectHandle, KeyError> {
        let label = format!("{LABEL_PREFIX}{key_id}");
        let found = self
            .session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(label.into_bytes()),
                // Only a key the token keeps to itself is a master key.
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
            ])
            .map_err(|e| err("C_FindObjects", e))?;
        found
            .first()
            .copied()
            .ok_or(KeyError::MissingKey { kid: key_id })
    }

    /// Imports master keys as non-extractable, sensitive token objects (test benches).
    pub fn import(&self, masters: &[(Kid, Key)]) -> Result<usize, KeyError> {
        for (key_id, key) in masters {
            if let Ok(old) = self.master(*key_id) {
                self.session
                    .destroy_object(old)
                    .map_err(|e| err("C_DestroyObject", e))?;
            }
            // Two-key TDEA as a DES3 object: K1 ‖ K2 ‖ K1.
            let mut value = Zeroizing::new(key.expose().to_vec());
            value.extend_from_slice(key.left());
            self.session
                .create_object(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::DES3),
                    Attribute::Label(format!("{LABEL_PREFIX}{key_id}").into_bytes()),
                    Attribute::Value(value.to_vec()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Derive(true),
                ])
                .map_err(|e| err("C_CreateObject", e))?;
        }
        Ok(masters.len())
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
    /// `data` (8, 16 or 24 bytes for DES, DES2, DES3), kept in the token.
    fn derive_key<'s>(
        &'s self,
        mechanism: MechanismType,
        base: ObjectHandle,
        data: &[u8],
    ) -> Result<SessionKey<'s>, KeyError> {
        let mut data = Zeroizing::new(data.to_vec());
        let key_type = if data.len() == 24 {
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
        let handle = self
            .session
            .derive_key(
                &mechanism,
                base,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(key_type),
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Derive(true),
                ],
            )
            .map_err(|e| err("C_DeriveKey (DES3-ECB-ENCRYPT-DATA)", e))?;
        Ok(SessionKey {
            session: &self.session,
            handle,
        })
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
        let mut parent: Option<SessionKey> = None;
        for f in above {
            let base = parent.as_ref().map_or(master, |k| k.handle);
            parent = Some(self.derive_key(derive, base, &[*f, complement(f)].concat())?);
        }
        let base = parent.as_ref().map_or(master, |k| k.handle);
        Ok(CardKeyObjects {
            key: self.derive_key(
                derive,
                base,
                &[*card_factor, complement(card_factor)].concat(),
            )?,
            left: if for_mac {
                Some(self.derive_key(derive, base, &card_factor.repeat(3))?)
            } else {
                None
            },
        })
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

    /// The card key's value for key loading only: the master level inside the token, the rest
    /// on the host in zeroized memory (see the module documentation).
    fn card_key_value(&self, alg: Algorithm, card: &CardRef, key_id: Kid) -> Result<Key, KeyError> {
        self.check_mechanisms(alg)?;
        let master = self.master(key_id)?;
        let factors = card.factors_for(key_id)?;
        let block = Zeroizing::new([factors[0], complement(&factors[0])].concat());
        let first = Zeroizing::new(
            self.session
                .encrypt(&Mechanism::Des3Ecb, master, &block[..])
                .map_err(|e| err("C_Encrypt", e))?,
        );
        let first = Key::from_slice(&first)?;
        Ok(alg.diversify_chain(&first, &factors[1..]))
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
        let value = if key_id == Kid::Pin {
            // The PIN object carries the initial PIN 123456 (BCD).
            Zeroizing::new(INITIAL_PIN_BCD.to_vec())
        } else {
            Zeroizing::new(self.card_key_value(alg, card, key_id)?.expose().to_vec())
        };
        let padded = key_block_plain(alg, key_id, tries, &value);
        let tk = self.card_key_objects(alg, card, Kid::Tk, false)?;
        self.encrypt(&Mechanism::Des3Ecb, &tk.key, &padded)
    }
}
