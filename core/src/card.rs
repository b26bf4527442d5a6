//! The interface every simulated card offers to a reader.

use std::sync::{Arc, Mutex};

/// A card as a reader sees it: an ATR, resets, and APDUs in and out.
pub trait Card: Send {
    /// The answer to reset.
    fn atr(&self) -> Vec<u8>;
    /// Cold or warm reset: volatile state is lost, card memory stays.
    fn reset(&mut self);
    /// Power off: like a reset, but the card waits for power on.
    fn power_off(&mut self) {
        self.reset();
    }
    /// Processes one command APDU. `None` means the card went mute (power lost mid-write,
    /// by the tearing hook): the reader sees no answer.
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>>;
    /// Arms the tearing hook: power is cut at the n-th persistent write from now. Cards
    /// without persistent writes answer `false`.
    fn arm_tearing(&mut self, _nth_write: u64) -> bool {
        false
    }
}

impl<C: Card + ?Sized> Card for Box<C> {
    fn atr(&self) -> Vec<u8> {
        (**self).atr()
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn power_off(&mut self) {
        (**self).power_off()
    }
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        (**self).transmit(apdu)
    }
    fn arm_tearing(&mut self, nth_write: u64) -> bool {
        (**self).arm_tearing(nth_write)
    }
}

/// A card shared between a server thread and its controller (or a test).
pub type SharedCard = Arc<Mutex<Box<dyn Card>>>;

/// Wraps a card for sharing.
pub fn shared(card: impl Card + 'static) -> SharedCard {
    Arc::new(Mutex::new(Box::new(card)))
}
