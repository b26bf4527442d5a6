//! The in-process backend: any [`Card`] implementation (the sscard card model, a test's
//! hostile card) reached directly, no pcscd, no reader. A transaction holds the card's lock, so
//! it is exclusive here as it is through PC/SC.

use crate::backend::{CardBackend, CardTransaction};
use crate::TransportError;
use sscard_core::card::{Card, SharedCard};
use std::sync::MutexGuard;

/// A card in this process.
pub struct InProcess {
    card: SharedCard,
    name: String,
    removed: bool,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("name", &self.name)
            .finish()
    }
}

impl InProcess {
    /// The card `card`, shown as the reader `name`.
    pub fn new(card: SharedCard, name: impl Into<String>) -> Self {
        Self {
            card,
            name: name.into(),
            removed: false,
        }
    }

    /// The card, e.g. to reset it or arm its tearing hook between transactions.
    pub fn card(&self) -> &SharedCard {
        &self.card
    }

    /// Puts a card that lost power back: it is reset and answers again.
    pub fn insert(&mut self) {
        self.removed = false;
        self.lock().reset();
    }

    fn lock(&self) -> MutexGuard<'_, Box<dyn Card>> {
        // A test that panicked while holding the card poisoned the lock; the card is still a
        // card.
        self.card.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CardBackend for InProcess {
    fn reader(&self) -> &str {
        &self.name
    }

    fn atr(&self) -> Vec<u8> {
        self.lock().atr()
    }

    fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
        if self.removed {
            return Err(TransportError::CardRemoved);
        }
        let card = self.card.lock().unwrap_or_else(|p| p.into_inner());
        Ok(Box::new(InProcessTransaction {
            card,
            removed: &mut self.removed,
        }))
    }
}

struct InProcessTransaction<'a> {
    card: MutexGuard<'a, Box<dyn Card>>,
    removed: &'a mut bool,
}

impl CardTransaction for InProcessTransaction<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if *self.removed {
            return Err(TransportError::CardRemoved);
        }
        match self.card.transmit(apdu) {
            Some(r) => Ok(r),
            None => {
                // The card lost power mid-command: like a card pulled from the reader.
                *self.removed = true;
                Err(TransportError::CardRemoved)
            }
        }
    }

    fn was_reset(&self) -> bool {
        false
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.card.reset();
        Ok(self.card.atr())
    }
}
