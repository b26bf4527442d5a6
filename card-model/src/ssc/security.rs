//! The security status of the current DF: one struct, cleared in one place. A failed check
//! revokes what it checks at once (PROFILE section 4, the Java Card `OwnerPIN` rule).

use sscard_core::profile::Kid;
use std::collections::BTreeSet;

/// What the holder and terminal have proven since the last reset or DF change.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SecurityStatus {
    external: BTreeSet<Kid>,
    pin_verified: bool,
}

impl SecurityStatus {
    /// Lost on reset and whenever another DF is selected.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
    pub fn grant_external(&mut self, kid: Kid) {
        self.external.insert(kid);
    }
    pub fn has_external(&self, kid: Kid) -> bool {
        self.external.contains(&kid)
    }
    /// A failed or blocked external authentication with `kid` takes its grant away.
    pub fn revoke_external(&mut self, kid: Kid) {
        self.external.remove(&kid);
    }
    pub fn grant_pin(&mut self) {
        self.pin_verified = true;
    }
    /// A wrong VERIFY or CHANGE PIN (or a blocked PIN) takes the PIN grant away.
    pub fn revoke_pin(&mut self) {
        self.pin_verified = false;
    }
    pub fn pin_verified(&self) -> bool {
        self.pin_verified
    }
}
