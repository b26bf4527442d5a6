//! How the library lets go of a card. Dropping a PC/SC card disconnects with
//! `SCARD_RESET_CARD`, which clears the card's security state (a verified PIN, step 1's
//! authentication) and makes every other connection to that card fail its next transaction
//! (−12). PC/SC applications that share a reader leave the card instead: its security state
//! lasts until it is reset or removed, which is what lets `iVerifyPIN` be followed by another
//! call, and step 1 by step 2 while other calls come between. Every connection the library
//! opens is therefore wrapped in [`Ending`], which disconnects with its disposition when the
//! connection ends, however it ends (a flow's result, an error, a replaced step 1): the
//! configured `card_disposition` for the social security card, always
//! [`Disposition::Leave`] for discovery probes and the PSAM.

use sscard_transport::backend::{CardBackend, CardTransaction, Disposition};
use sscard_transport::TransportError;

/// A card connection that disconnects with `disposition` when dropped.
pub struct Ending {
    inner: Option<Box<dyn CardBackend>>,
    disposition: Disposition,
}

impl Ending {
    pub fn new(backend: impl CardBackend + 'static, disposition: Disposition) -> Self {
        Self {
            inner: Some(Box::new(backend)),
            disposition,
        }
    }
}

impl CardBackend for Ending {
    // Only `disconnect` and `drop` take the backend out, and both consume `self`: the `None`
    // arms are never reached.
    fn reader(&self) -> &str {
        self.inner.as_deref().map_or("", |b| b.reader())
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.as_deref().map_or_else(Vec::new, |b| b.atr())
    }
    fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
        match self.inner.as_deref_mut() {
            Some(b) => b.transaction(),
            None => Err(TransportError::CardRemoved),
        }
    }
    fn disconnect(mut self: Box<Self>, disposition: Disposition) -> Result<(), TransportError> {
        match self.inner.take() {
            Some(b) => b.disconnect(disposition),
            None => Ok(()),
        }
    }
    fn reader_serial(&self) -> Option<String> {
        self.inner.as_deref().and_then(|b| b.reader_serial())
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        if let Some(b) = self.inner.take() {
            // Nothing to tell anyone: the card was removed, or pcscd went away, and the card's
            // state is gone either way.
            let _ = b.disconnect(self.disposition);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard_transport::Connection;
    use std::sync::{Arc, Mutex};

    /// A backend that records how it was disconnected.
    struct Recording(Arc<Mutex<Vec<Disposition>>>);

    impl CardBackend for Recording {
        fn reader(&self) -> &str {
            "recording"
        }
        fn atr(&self) -> Vec<u8> {
            vec![0x3B, 0x00]
        }
        fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
            Err(TransportError::CardRemoved)
        }
        fn disconnect(self: Box<Self>, d: Disposition) -> Result<(), TransportError> {
            self.0.lock().unwrap().push(d);
            Ok(())
        }
    }

    fn connection(d: Disposition) -> (Connection, Arc<Mutex<Vec<Disposition>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        (Connection::new(Ending::new(Recording(log.clone()), d)), log)
    }

    #[test]
    fn a_dropped_connection_ends_with_its_disposition_once() {
        for d in [Disposition::Leave, Disposition::Reset] {
            let (conn, log) = connection(d);
            assert_eq!(conn.reader(), "recording");
            drop(conn);
            assert_eq!(*log.lock().unwrap(), [d]);
        }
        // An explicit disconnect wins, and the drop after it does nothing more.
        let (conn, log) = connection(Disposition::Leave);
        conn.disconnect(Disposition::Reset).unwrap();
        assert_eq!(*log.lock().unwrap(), [Disposition::Reset]);
    }
}
