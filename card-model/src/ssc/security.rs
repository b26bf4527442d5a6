//! The security status of the current DF: one struct, cleared in one place.

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
    pub fn grant_pin(&mut self) {
        self.pin_verified = true;
    }
    pub fn pin_verified(&self) -> bool {
        self.pin_verified
    }
}
