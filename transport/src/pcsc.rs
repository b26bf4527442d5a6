//! PC/SC through pcscd (crate `pcsc`).

use crate::{Transport, TransportError};
use pcsc::{Card, Context, Disposition, Protocols, Scope, ShareMode};
use std::ffi::{CStr, CString};

/// Connects to pcscd.
pub fn establish() -> Result<Context, TransportError> {
    Context::establish(Scope::User).map_err(TransportError::from)
}

/// Reader names as pcscd reports them.
pub fn list_readers(ctx: &Context) -> Result<Vec<String>, TransportError> {
    match ctx.list_readers_owned() {
        Ok(r) => Ok(r
            .into_iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect()),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Finds a reader by index (`0`, `1`, …), exact name, or unique name substring.
pub fn resolve_reader(readers: &[String], wanted: &str) -> Result<String, TransportError> {
    if readers.is_empty() {
        return Err(TransportError::NoReader);
    }
    if let Ok(i) = wanted.parse::<usize>() {
        if let Some(r) = readers.get(i) {
            return Ok(r.clone());
        }
    }
    if let Some(r) = readers.iter().find(|r| *r == wanted) {
        return Ok(r.clone());
    }
    let matches: Vec<&String> = readers.iter().filter(|r| r.contains(wanted)).collect();
    match matches[..] {
        [one] => Ok(one.clone()),
        [] => Err(TransportError::UnknownReader {
            wanted: wanted.into(),
            present: readers.join(", "),
        }),
        _ => Err(TransportError::AmbiguousReader {
            wanted: wanted.into(),
            matches: matches
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// A card in a PC/SC reader.
pub struct PcscTransport {
    card: Card,
    reader: String,
    share: ShareMode,
    atr: Vec<u8>,
    buf: Vec<u8>,
}

impl PcscTransport {
    /// Connects to the card in `reader` (index, name or substring; `None` = the first reader
    /// with a card).
    pub fn connect(
        ctx: &Context,
        reader: Option<&str>,
        exclusive: bool,
    ) -> Result<Self, TransportError> {
        let readers = list_readers(ctx)?;
        let name = match reader {
            Some(w) => resolve_reader(&readers, w)?,
            // The first reader holding a card; with none, the first reader (whose error then
            // says there is no card).
            None => readers
                .iter()
                .find(|r| {
                    wait_for_card_state(ctx, r, true, std::time::Duration::ZERO).unwrap_or(false)
                })
                .or(readers.first())
                .cloned()
                .ok_or(TransportError::NoReader)?,
        };
        Self::connect_named(ctx, &name, exclusive)
    }

    pub fn connect_named(
        ctx: &Context,
        reader: &str,
        exclusive: bool,
    ) -> Result<Self, TransportError> {
        let share = if exclusive {
            ShareMode::Exclusive
        } else {
            ShareMode::Shared
        };
        let cname = CString::new(reader).map_err(|_| TransportError::UnknownReader {
            wanted: reader.into(),
            present: String::new(),
        })?;
        let card = ctx
            .connect(&cname, share, Protocols::ANY)
            .map_err(|e| match e {
                pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => TransportError::NoCard {
                    reader: reader.into(),
                },
                e => e.into(),
            })?;
        let atr = card
            .status2_owned()
            .map(|s| s.atr().to_vec())
            .unwrap_or_default();
        Ok(Self {
            card,
            reader: reader.into(),
            share,
            atr,
            buf: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        })
    }

    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The underlying card, e.g. for the benchmark's bare-pcsc side.
    pub fn raw_card(&self) -> &Card {
        &self.card
    }
}

fn transmit_on(card: &Card, buf: &mut [u8], apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
    let r = card.transmit(apdu, buf)?;
    if r.len() < 2 {
        // A card pulled mid-command can come back as an empty answer: ask pcscd what happened.
        for _ in 0..20 {
            match card.status2_owned() {
                Err(e) => return Err(e.into()),
                Ok(s) if !s.status().contains(pcsc::Status::PRESENT) => {
                    return Err(TransportError::CardRemoved)
                }
                Ok(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        return Err(TransportError::MalformedResponse(format!(
            "{} byte(s), no status word",
            r.len()
        )));
    }
    Ok(r.to_vec())
}

impl Transport for PcscTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        match transmit_on(&self.card, &mut self.buf, apdu) {
            Err(TransportError::CardReset) => {
                // Another application reset the card: reconnect and report it, so the flow
                // (whose security status is gone) can start over.
                self.card
                    .reconnect(self.share, Protocols::ANY, Disposition::LeaveCard)?;
                Err(TransportError::CardReset)
            }
            r => r,
        }
    }
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }
    fn name(&self) -> String {
        self.reader.clone()
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        self.card
            .reconnect(self.share, Protocols::ANY, Disposition::ResetCard)?;
        Ok(())
    }
    fn with_transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Transport) -> Result<(), TransportError>,
    ) -> Result<(), TransportError> {
        let result = self.in_transaction(f);
        if matches!(result, Err(TransportError::CardReset)) {
            // Reset by another application, at SCardBeginTransaction or inside: reconnect, as
            // `transmit` does, so the caller can start its flow over.
            self.card
                .reconnect(self.share, Protocols::ANY, Disposition::LeaveCard)?;
        }
        result
    }
}

impl PcscTransport {
    fn in_transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Transport) -> Result<(), TransportError>,
    ) -> Result<(), TransportError> {
        let tx = self.card.transaction()?;
        let mut view = InTransaction {
            card: &tx,
            reader: &self.reader,
            atr: &self.atr,
            buf: &mut self.buf,
        };
        let result = f(&mut view);
        // Ending can fail when the card went away; the body's error says more.
        let _ = tx.end(Disposition::LeaveCard);
        result
    }
}

/// The transport as seen inside a PC/SC transaction.
struct InTransaction<'a> {
    card: &'a Card,
    reader: &'a str,
    atr: &'a [u8],
    buf: &'a mut Vec<u8>,
}

impl Transport for InTransaction<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        transmit_on(self.card, self.buf, apdu)
    }
    fn atr(&self) -> Vec<u8> {
        self.atr.to_vec()
    }
    fn name(&self) -> String {
        self.reader.to_string()
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        Err(TransportError::Pcsc(
            "cannot reset inside a transaction".into(),
        ))
    }
    fn with_transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Transport) -> Result<(), TransportError>,
    ) -> Result<(), TransportError> {
        f(self)
    }
}

/// The PnP pseudo-reader name that reports readers coming and going.
pub fn pnp_notification() -> &'static CStr {
    pcsc::PNP_NOTIFICATION()
}

/// Waits until pcscd reports a card in `reader` (`present`) or an empty reader (`!present`).
/// Returns whether that state came within `timeout`.
pub fn wait_for_card_state(
    ctx: &Context,
    reader: &str,
    present: bool,
    timeout: std::time::Duration,
) -> Result<bool, TransportError> {
    let name = CString::new(reader).map_err(|_| TransportError::UnknownReader {
        wanted: reader.into(),
        present: String::new(),
    })?;
    let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        match ctx.get_status_change(remaining, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        if states[0].event_state().contains(pcsc::State::PRESENT) == present {
            return Ok(true);
        }
        states[0].sync_current_state();
    }
}
