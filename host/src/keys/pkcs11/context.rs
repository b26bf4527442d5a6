//! One PKCS#11 context per module and process. `C_Initialize` and `C_Finalize` act on the whole
//! process, not on a handle: a worker that finalised "its" context ended every other worker's
//! sessions (and a worker initialising while another finalised crashed the library). So each
//! module is loaded and initialised once, on first use, kept in a process-wide table and never
//! finalised; every `Pkcs11Keys` opens its own session on it.
//!
//! Logging in is per application and token too: a second `C_Login` answers
//! CKR_USER_ALREADY_LOGGED_IN whatever PIN it carries. The table remembers the PIN a token was
//! logged in with, so a later open with another PIN is refused as the token would refuse it.

use crate::keys::KeyError;
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use zeroize::Zeroizing;

struct Module {
    ctx: Pkcs11,
    /// Token label → the user PIN this process logged in with.
    pins: HashMap<String, Zeroizing<String>>,
    /// Token label → its slot, found once: SoftHSM rescans its token directory on every
    /// C_GetSlotList, and a token looked up by one thread while another rescans may be missed.
    slots: HashMap<String, Slot>,
}

static MODULES: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();

fn modules() -> MutexGuard<'static, HashMap<PathBuf, Module>> {
    MODULES
        .get_or_init(Default::default)
        .lock()
        // A panic elsewhere while holding the table leaves it consistent: every entry is
        // inserted whole.
        .unwrap_or_else(|e| e.into_inner())
}

/// A module as the table knows it.
pub(super) struct ModuleRef {
    /// The table key: the module's canonical path, so two names of one library share a context.
    key: PathBuf,
    pub ctx: Pkcs11,
}

/// The process's context for `module`, loaded and initialised on first use.
pub(super) fn context(module: &Path) -> Result<ModuleRef, KeyError> {
    let key = std::fs::canonicalize(module).unwrap_or_else(|_| module.to_path_buf());
    let mut table = modules();
    if let Some(m) = table.get(&key) {
        return Ok(ModuleRef {
            key,
            ctx: m.ctx.clone(),
        });
    }
    let ctx = Pkcs11::new(&key).map_err(|e| KeyError::Pkcs11 {
        operation: "loading the module",
        detail: format!("{}: {e}", module.display()),
    })?;
    match ctx.initialize(CInitializeArgs::OsThreads) {
        // Code outside sscard in this process initialised the library already: fine, it is
        // shared the same way.
        Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) | Ok(()) => {}
        Err(e) => {
            return Err(KeyError::Pkcs11 {
                operation: "C_Initialize",
                detail: e.to_string(),
            })
        }
    }
    table.insert(
        key.clone(),
        Module {
            ctx: ctx.clone(),
            pins: HashMap::new(),
            slots: HashMap::new(),
        },
    );
    Ok(ModuleRef { key, ctx })
}

/// The slot of the token labelled `token`, looked up once per process, one lookup at a time.
pub(super) fn slot(m: &ModuleRef, module: &Path, token: &str) -> Result<Slot, KeyError> {
    let mut table = modules();
    let entry = table.get_mut(&m.key).expect("the module is in the table");
    if let Some(slot) = entry.slots.get(token) {
        return Ok(*slot);
    }
    let ctx = &entry.ctx;
    let slots = ctx.get_slots_with_token().map_err(|e| KeyError::Pkcs11 {
        operation: "C_GetSlotList",
        detail: e.to_string(),
    })?;
    let mut found = None;
    for s in slots {
        let info = ctx.get_token_info(s).map_err(|e| KeyError::Pkcs11 {
            operation: "C_GetTokenInfo",
            detail: e.to_string(),
        })?;
        if info.label().trim_end() == token {
            found = Some(s);
            break;
        }
    }
    let slot = found.ok_or_else(|| KeyError::Pkcs11NoToken {
        module: module.display().to_string(),
        token: token.into(),
    })?;
    entry.slots.insert(token.into(), slot);
    Ok(slot)
}

fn login_error(detail: String) -> KeyError {
    KeyError::Pkcs11 {
        operation: "C_Login",
        detail,
    }
}

/// Logs the application in to `token` as user through `session`, or checks `pin` against the
/// PIN it is logged in with already.
pub(super) fn login(
    module: &ModuleRef,
    token: &str,
    session: &Session,
    pin: &str,
) -> Result<(), KeyError> {
    let mut table = modules();
    let entry = table
        .get_mut(&module.key)
        .expect("the module was entered by context()");
    match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
        Ok(()) => {
            entry
                .pins
                .insert(token.into(), Zeroizing::new(pin.to_string()));
            Ok(())
        }
        Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => match entry.pins.get(token) {
            Some(known) if sscard_core::crypto::ct_eq(known.as_bytes(), pin.as_bytes()) => Ok(()),
            Some(_) => Err(login_error(
                "the PIN differs from the one this process logged in with (CKR_PIN_INCORRECT)"
                    .into(),
            )),
            None => Err(login_error(
                "the token was logged in by other code in this process; cannot check the PIN"
                    .into(),
            )),
        },
        Err(e) => Err(login_error(e.to_string())),
    }
}
