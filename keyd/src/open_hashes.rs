//! The hashes of keyd's own audit entries since its last anchor, the anchored head included:
//! an entry chained onto one of them would extend keyd's log where the anchor does not reach,
//! so `/v1/audit-mac` refuses an entry message whose `prev` is one of them (together with
//! `own_log`'s refusal of entries naming keyd). Entries up to the anchored head cannot be
//! replaced without the anchor check noticing; these few (at most [`ANCHOR_EVERY`] + 1) can.
//!
//! [`Recording`] is keyd's own journal's audit key: it records the hash of every entry it MACs,
//! before the entry commits and so before anyone could read it.
//!
//! [`ANCHOR_EVERY`]: crate::audit_log::ANCHOR_EVERY

use crate::own_log::ENTRY_TAG;
use sscard::keys::{CardRef, KeyError, KeySource};
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::Kid;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Entry hashes (hex, as the journal stores them) since the last anchor.
#[derive(Debug, Default)]
pub struct OpenHashes {
    inner: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    hashes: HashSet<String>,
    last: Option<String>,
}

impl OpenHashes {
    fn record(&self, hash: String) {
        if let Ok(mut o) = self.inner.lock() {
            o.hashes.insert(hash.clone());
            o.last = Some(hash);
        }
    }

    /// The chain was anchored at its newest entry: only that one stays open.
    pub fn anchored(&self) {
        if let Ok(mut o) = self.inner.lock() {
            o.hashes.clear();
            if let Some(last) = o.last.clone() {
                o.hashes.insert(last);
            }
        }
    }

    /// Whether `hash` (hex text) is an open hash of keyd's chain. A poisoned lock answers
    /// yes: refusing is the safe side.
    pub fn contains(&self, hash: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(hash) else {
            return false;
        };
        self.inner
            .lock()
            .map(|o| o.hashes.contains(text))
            .unwrap_or(true)
    }
}

/// The audit key of keyd's own journal: `inner`'s, recording each entry's hash in `open`.
pub struct Recording {
    inner: Box<dyn KeySource>,
    open: Arc<OpenHashes>,
}

impl Recording {
    pub fn new(inner: Box<dyn KeySource>, open: Arc<OpenHashes>) -> Self {
        Self { inner, open }
    }
}

impl KeySource for Recording {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn algorithm(&self) -> Option<Algorithm> {
        self.inner.algorithm()
    }
    fn cryptogram(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        kid: Kid,
        random: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        self.inner.cryptogram(alg, card, kid, random)
    }
    fn mac(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        kid: Kid,
        challenge: &[u8],
        message: &[u8],
    ) -> Result<[u8; 4], KeyError> {
        self.inner.mac(alg, card, kid, challenge, message)
    }
    fn key_load_block(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        kid: Kid,
        tries: u8,
    ) -> Result<Vec<u8>, KeyError> {
        self.inner.key_load_block(alg, card, kid, tries)
    }
    fn audit_mac(&mut self, message: &[u8]) -> Result<[u8; 32], KeyError> {
        let mac = self.inner.audit_mac(message)?;
        if message.starts_with(ENTRY_TAG) {
            self.open.record(to_hex(&mac));
        }
        Ok(mac)
    }
    fn preflight(&mut self, kids: &[Kid]) -> Result<(), KeyError> {
        self.inner.preflight(kids)
    }
    fn region(&mut self) -> Result<Option<String>, KeyError> {
        self.inner.region()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::own_log::chains_onto;
    use sscard::keys::SoftKeys;

    fn entry(prev: &str, n: u32) -> Vec<u8> {
        let mut m = ENTRY_TAG.to_vec();
        let seq = n.to_string();
        for f in [
            prev, &seq, "at", "keyd@h", "keyd", "keyd mac", "", "", "", "d",
        ] {
            m.extend_from_slice(&(f.len() as u64).to_be_bytes());
            m.extend_from_slice(f.as_bytes());
        }
        m
    }

    #[test]
    fn entries_chained_onto_open_hashes_are_refused_until_anchored_past() {
        let open = Arc::new(OpenHashes::default());
        let mut key = Recording::new(Box::new(SoftKeys::test_set()), Arc::clone(&open));
        let h1 = to_hex(&key.audit_mac(&entry("00", 1)).unwrap());
        // An anchor's MAC is not an entry's hash.
        key.audit_mac(b"sscard anchor v1").unwrap();
        // The hash is what the test key set's HMAC gives.
        assert_eq!(
            h1,
            to_hex(&SoftKeys::test_set().audit_mac(&entry("00", 1)).unwrap())
        );
        let station_entry = |prev: &str| {
            let mut m = ENTRY_TAG.to_vec();
            for f in [prev, "9", "at", "plant-2", "op", "claimed", "", "", "", "d"] {
                m.extend_from_slice(&(f.len() as u64).to_be_bytes());
                m.extend_from_slice(f.as_bytes());
            }
            m
        };
        assert!(chains_onto(&station_entry(&h1), &open));
        let h2 = to_hex(&key.audit_mac(&entry(&h1, 2)).unwrap());
        assert!(chains_onto(&station_entry(&h1), &open));
        assert!(chains_onto(&station_entry(&h2), &open));
        open.anchored();
        // h1 is below the anchor now; h2, the anchored head, stays open.
        assert!(!chains_onto(&station_entry(&h1), &open));
        assert!(chains_onto(&station_entry(&h2), &open));
        assert!(!chains_onto(&station_entry("00"), &open));
    }
}
