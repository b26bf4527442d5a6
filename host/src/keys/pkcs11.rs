//! A PKCS#11 token (HSM) as key source, through `cryptoki`. Master keys are non-extractable,
//! sensitive secret-key objects found by label (`sscard:IRK`, `sscard:RKSSSE`, …).
//!
//! The token encrypts with the master key: the first diversification level,
//! `3DES_ECB(master, D) ‖ 3DES_ECB(master, ~D)`, is one `C_Encrypt` inside the token, so master
//! keys never leave it. The levels below and the cryptograms/MACs under the card key run on
//! the host with zeroized keys: SoftHSM offers CKM_DES3_ECB_ENCRYPT_DATA to keep them in the
//! token, but `cryptoki` 0.10 has no `Mechanism` for it (its `MechanismType` cannot be built for
//! that value without `unsafe`). A token without 3DES, or any SM4 request, is refused with
//! "mechanism not supported by token" — never a silent software fallback.

use super::{CardKeys, CardRef, KeyError, KEY_NAMES};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use sscard_core::crypto::{Algorithm, Key};
use sscard_core::profile::kid;
use std::path::Path;
use zeroize::Zeroizing;

/// Label prefix of the master keys in the token.
pub const LABEL_PREFIX: &str = "sscard:";

fn err(what: &str, e: cryptoki::error::Error) -> KeyError {
    KeyError::Unsupported(format!("PKCS#11: {what}: {e}"))
}

/// An open, logged-in session on a token.
pub struct Pkcs11Keys {
    _ctx: Pkcs11,
    session: Session,
    token: String,
    has_des3: bool,
}

impl Pkcs11Keys {
    /// Loads `module`, finds the token labelled `token`, logs in with `pin`.
    pub fn open(module: &Path, token: &str, pin: &str, read_write: bool) -> Result<Self, KeyError> {
        let ctx =
            Pkcs11::new(module).map_err(|e| err(&format!("loading {}", module.display()), e))?;
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
            .ok_or_else(|| {
                KeyError::Unsupported(format!(
                    "PKCS#11: no token labelled {token:?} in {}",
                    module.display()
                ))
            })?;
        let has_des3 = ctx
            .get_mechanism_list(slot)
            .map_err(|e| err("C_GetMechanismList", e))?
            .contains(&MechanismType::DES3_ECB);
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
        })
    }

    fn unsupported(&self, mechanism: &str) -> KeyError {
        KeyError::Unsupported(format!(
            "mechanism {mechanism} not supported by token {:?}",
            self.token
        ))
    }

    fn master(&self, key_id: u8) -> Result<ObjectHandle, KeyError> {
        let name = KEY_NAMES
            .iter()
            .find(|(_, k)| *k == key_id)
            .map(|(n, _)| *n)
            .unwrap_or("?");
        let label = format!("{LABEL_PREFIX}{name}");
        let found = self
            .session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(label.into_bytes()),
            ])
            .map_err(|e| err("C_FindObjects", e))?;
        found.first().copied().ok_or(KeyError::MissingKey {
            kid: key_id,
            name: kid::name(key_id),
        })
    }

    /// Imports master keys as non-extractable, sensitive token objects (test benches).
    pub fn import(&self, masters: &[(u8, Key)]) -> Result<usize, KeyError> {
        for (key_id, key) in masters {
            let name = KEY_NAMES
                .iter()
                .find(|(_, k)| k == key_id)
                .map(|(n, _)| *n)
                .ok_or(KeyError::MissingKey {
                    kid: *key_id,
                    name: "?",
                })?;
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
                    Attribute::Label(format!("{LABEL_PREFIX}{name}").into_bytes()),
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
    pub fn master_value_readable(&self, key_id: u8) -> Result<bool, KeyError> {
        let h = self.master(key_id)?;
        Ok(matches!(
            self.session
                .get_attributes(h, &[AttributeType::Value])
                .as_deref(),
            Ok([Attribute::Value(_)])
        ))
    }

    /// The card key: the master level inside the token, the rest on the host.
    pub fn card_key(&self, alg: Algorithm, card: &CardRef, key_id: u8) -> Result<Key, KeyError> {
        if alg != Algorithm::Tdes {
            return Err(self.unsupported(&format!("{}-ECB", alg.name())));
        }
        if !self.has_des3 {
            return Err(self.unsupported("DES3-ECB"));
        }
        let master = self.master(key_id)?;
        let factors: Vec<[u8; 8]> = if kid::is_national(key_id) {
            card.national_factors()?.to_vec()
        } else {
            vec![card.card_factor()]
        };
        let mut block = Zeroizing::new([0u8; 16]);
        block[..8].copy_from_slice(&factors[0]);
        for (b, f) in block[8..].iter_mut().zip(factors[0]) {
            *b = !f;
        }
        let first = Zeroizing::new(
            self.session
                .encrypt(&Mechanism::Des3Ecb, master, &block[..])
                .map_err(|e| err("C_Encrypt", e))?,
        );
        let first = Key::from_slice(&first)?;
        Ok(alg.diversify_chain(&first, &factors[1..]))
    }
}

impl CardKeys for Pkcs11Keys {
    fn describe(&self) -> String {
        format!("PKCS#11 token {:?}", self.token)
    }
    fn card_key(&self, alg: Algorithm, card: &CardRef, key_id: u8) -> Result<Key, KeyError> {
        Pkcs11Keys::card_key(self, alg, card, key_id)
    }
}
