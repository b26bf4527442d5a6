//! Moving APDU bytes to a card and back.
#![forbid(unsafe_code)]

pub mod channel;
pub mod trace;

mod error;
mod in_process;
#[cfg(feature = "pcsc")]
pub mod pcsc;

pub use error::TransportError;
pub use in_process::InProcess;

/// A connection to one card.
pub trait Transport {
    /// Sends one command APDU and returns the response bytes (data ‖ SW1 SW2).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
    /// The card's answer to reset.
    fn atr(&self) -> Vec<u8>;
    /// A name for messages and traces (the reader name).
    fn name(&self) -> String;
    /// Resets the card (security status is lost).
    fn reset(&mut self) -> Result<(), TransportError>;
    /// Runs `f` so that no other process can interleave APDUs (PC/SC transaction).
    fn with_transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Transport) -> Result<(), TransportError>,
    ) -> Result<(), TransportError>;
}

/// Runs a multi-APDU flow in one transaction and returns its result.
pub fn in_transaction<T, E: From<TransportError>>(
    transport: &mut dyn Transport,
    f: impl FnOnce(&mut dyn Transport) -> Result<T, E>,
) -> Result<T, E> {
    let mut f = Some(f);
    let mut out: Option<Result<T, E>> = None;
    transport.with_transaction(&mut |t| {
        let f = f.take().expect("the transaction body runs once");
        out = Some(f(t));
        Ok(())
    })?;
    out.expect("the transaction body ran")
}
