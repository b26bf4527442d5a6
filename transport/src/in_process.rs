//! A card model in the same process: no pcscd, no reader.

use crate::{Transport, TransportError};
use sscard_core::card::SharedCard;

/// An `sscard-model` card reached directly.
pub struct InProcess {
    card: SharedCard,
    name: String,
    removed: bool,
}

impl InProcess {
    pub fn new(card: SharedCard, name: impl Into<String>) -> Self {
        Self {
            card,
            name: name.into(),
            removed: false,
        }
    }
    pub fn card(&self) -> &SharedCard {
        &self.card
    }
    /// Simulates pulling the card out.
    pub fn remove(&mut self) {
        self.removed = true;
    }
    pub fn insert(&mut self) {
        self.removed = false;
        self.card.lock().expect("card lock").reset();
    }
}

impl Transport for InProcess {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.removed {
            return Err(TransportError::CardRemoved);
        }
        match self.card.lock().expect("card lock").transmit(apdu) {
            Some(r) => Ok(r),
            None => {
                // The card lost power mid-command: like a card pulled from the reader.
                self.removed = true;
                Err(TransportError::CardRemoved)
            }
        }
    }
    fn atr(&self) -> Vec<u8> {
        self.card.lock().expect("card lock").atr()
    }
    fn name(&self) -> String {
        self.name.clone()
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        self.card.lock().expect("card lock").reset();
        Ok(())
    }
    fn with_transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Transport) -> Result<(), TransportError>,
    ) -> Result<(), TransportError> {
        f(self)
    }
}
