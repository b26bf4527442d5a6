//! The security status of the current DF: one struct, cleared in one place.

use std::collections::BTreeSet;

/// What the holder and terminal have proven since the last reset or DF change.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SecurityStatus {
    external: BTreeSet<u8>,
    pin_verified: bool,
}

impl SecurityStatus {
    /// Lost on reset and whenever another DF is selected.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
    pub fn grant_external(&mut self, key_id: u8) {
        self.external.insert(key_id);
    }
    pub fn has_external(&self, key_id: u8) -> bool {
        self.external.contains(&key_id)
    }
    pub fn grant_pin(&mut self) {
        self.pin_verified = true;
    }
    pub fn pin_verified(&self) -> bool {
        self.pin_verified
    }
}
