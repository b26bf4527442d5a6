//! The PC/SC backend: readers and cards through pcscd (crate `pcsc`). The reader level is the
//! PC/SC context ([`establish`], [`list_readers`], [`resolve_reader`]); a card in a reader is a
//! [`PcscBackend`]; its transactions are `SCardBeginTransaction` … `SCardEndTransaction`.
//!
//! Faults are typed, and none of them hangs: another application holding the card is waited
//! for up to [`crate::SHARING_WAIT`] (connect and begin-transaction), then
//! [`TransportError::SharingViolation`]; pcscd stopping under a command is
//! [`TransportError::ServiceNotRunning`] (pcsc-lite reports a broken socket as an internal
//! communication error, so the service is asked whether it is still there).

use crate::backend::{
    ActiveProtocol, CardBackend, CardTransaction, Disposition as Leaving, ReaderAttribute,
};
use crate::{TransportError, SHARING_WAIT};
/// A PC/SC context (one per worker, kept while pcscd answers).
pub use pcsc::Context;
use pcsc::{Card, Disposition, Protocols, Scope, ShareMode};
use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

mod wait;
pub use wait::{reader_view, wait_for_card_change, CardChange, ReaderView, ReaderWatch};

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
pub struct PcscBackend {
    card: Card,
    /// The context the card was connected on, for the helper of [`others_let_go`].
    ctx: Context,
    reader: String,
    share: ShareMode,
    atr: Vec<u8>,
    buf: Vec<u8>,
    /// The card was reset and reconnected inside a transaction: the next one reports it.
    reset_seen: bool,
}

impl std::fmt::Debug for PcscBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscBackend")
            .field("reader", &self.reader)
            .finish()
    }
}

fn atr_of(card: &Card) -> Vec<u8> {
    card.status2_owned()
        .map(|s| s.atr().to_vec())
        .unwrap_or_default()
}

impl PcscBackend {
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
                .find(|r| wait_for_card_state(ctx, r, true, Duration::ZERO).unwrap_or(false))
                .or(readers.first())
                .cloned()
                .ok_or(TransportError::NoReader)?,
        };
        Self::connect_named(ctx, &name, exclusive)
    }

    /// Connects to the card in the reader with exactly this name.
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
        // pcscd holds a connection back while another application's transaction lasts, and
        // refuses one while another application is connected exclusively: both are waited
        // for within one bound.
        let deadline = Instant::now() + SHARING_WAIT;
        let card = waiting_for_others(deadline, || {
            others_let_go(ctx, reader, deadline)?;
            ctx.connect(&cname, share, Protocols::ANY)
                .map_err(|e| match e {
                    pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => TransportError::NoCard {
                        reader: reader.into(),
                    },
                    e => checked(e),
                })
        })?;
        Ok(Self {
            atr: atr_of(&card),
            card,
            ctx: ctx.clone(),
            reader: reader.into(),
            share,
            buf: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
            reset_seen: false,
        })
    }

    /// The underlying card, e.g. for the benchmark's bare-pcsc side.
    pub fn raw_card(&self) -> &Card {
        &self.card
    }
}

/// Runs `attempt` again while another application holds the card, until `deadline`: after
/// 10 ms, then at doubling intervals up to 200 ms.
fn waiting_for_others<T>(
    deadline: Instant,
    mut attempt: impl FnMut() -> Result<T, TransportError>,
) -> Result<T, TransportError> {
    let mut pause = Duration::from_millis(10);
    loop {
        match attempt() {
            Err(TransportError::SharingViolation) if Instant::now() < deadline => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            r => return r,
        }
    }
}

/// Waits until `deadline` for another application's transaction on `reader` to end.
///
/// pcsc-lite tells nothing of another application's transaction at once: `SCardConnect` and
/// `SCardBeginTransaction` wait while it lasts, for ever if need be (`SCardStatus` and
/// `SCardTransmit` too; `SCardGetAttrib` and `SCardControl` do not look, pcsc-lite 1.9.9).
/// So a helper thread begins and at once ends a transaction on a connection of its own, and
/// this side waits for that within the bound. A helper the bound ran out on stays blocked in
/// pcsc-lite until the other application lets go, then only ends and disconnects; the next
/// wait on that reader waits for the same helper rather than start another, so a card held
/// for hours costs one thread and one connection, not one per attempt. (A transaction the
/// other application begins in the instant between the helper's and ours is waited for as
/// pcsc-lite does: it began, so it ends.)
fn others_let_go(ctx: &Context, reader: &str, deadline: Instant) -> Result<(), TransportError> {
    use std::sync::mpsc::{Receiver, RecvTimeoutError};
    use std::sync::Mutex;
    /// Helpers still blocked behind another application, by reader.
    static BLOCKED: Mutex<Vec<(String, Receiver<()>)>> = Mutex::new(Vec::new());
    let take_blocked = || {
        let mut blocked = BLOCKED.lock().unwrap_or_else(|e| e.into_inner());
        let i = blocked.iter().position(|(r, _)| r == reader)?;
        Some(blocked.swap_remove(i).1)
    };
    let spawn_helper = || -> Option<Receiver<()>> {
        let (done, rx) = std::sync::mpsc::channel();
        let (ctx, name) = (ctx.clone(), CString::new(reader).ok()?);
        std::thread::Builder::new()
            .name("pcsc-sharing-wait".into())
            .spawn(move || {
                if let Ok(mut card) = ctx.connect(&name, ShareMode::Shared, Protocols::ANY) {
                    drop(card.transaction());
                    let _ = card.disconnect(Disposition::LeaveCard);
                }
                let _ = done.send(());
            })
            .ok()?;
        Some(rx)
    };
    let mut earlier = take_blocked();
    loop {
        let (rx, fresh) = match earlier.take() {
            Some(rx) => (rx, false),
            // Without a helper (no thread to be had), pcsc-lite's own wait it is.
            None => match spawn_helper() {
                Some(rx) => (rx, true),
                None => return Ok(()),
            },
        };
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {
                BLOCKED
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((reader.to_string(), rx));
                return Err(TransportError::SharingViolation);
            }
            // Whatever the helper met (the card gone, say), our own transaction meets and
            // reports.
            _ if fresh => return Ok(()),
            // An earlier helper got through: the card was free then. Look again, now.
            _ => {}
        }
    }
}

/// A PC/SC error, typed; an internal communication error is pcscd gone when it no longer
/// gives a context ([`TransportError::ServiceNotRunning`]: a pcscd that is dying may still
/// accept the connection and then drop it), else a card that does not answer.
fn checked(e: pcsc::Error) -> TransportError {
    if e == pcsc::Error::CommError && establish().is_err() {
        return TransportError::ServiceNotRunning;
    }
    e.into()
}

fn transmit_on(card: &Card, buf: &mut [u8], apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
    let r = card.transmit(apdu, buf).map_err(checked)?;
    if r.len() < 2 {
        // A card pulled mid-command can come back as an empty answer: ask pcscd what happened.
        for _ in 0..20 {
            match card.status2_owned() {
                Err(e) => return Err(checked(e)),
                Ok(s) if !s.status().contains(pcsc::Status::PRESENT) => {
                    return Err(TransportError::CardRemoved)
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        return Err(TransportError::NoStatusWord { len: r.len() });
    }
    Ok(r.to_vec())
}

impl CardBackend for PcscBackend {
    fn reader(&self) -> &str {
        &self.reader
    }

    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
        let Self {
            card,
            ctx,
            reader,
            share,
            atr,
            buf,
            reset_seen,
            ..
        } = self;
        let share = *share;
        let mut was_reset = std::mem::take(reset_seen);
        // Another application's transaction is waited for within the bound; pcsc-lite's
        // SCardBeginTransaction would wait for ever. (An exclusive connection has no others.)
        if share == ShareMode::Shared {
            others_let_go(ctx, reader, Instant::now() + SHARING_WAIT)?;
        }
        let tx = match card.transaction2() {
            Ok(tx) => tx,
            // Reset by another application since our last transaction: reconnect (which
            // acknowledges the reset), begin again, and tell the flow.
            Err((card, pcsc::Error::ResetCard)) => {
                card.reconnect(share, Protocols::ANY, Disposition::LeaveCard)
                    .map_err(checked)?;
                *atr = atr_of(card);
                was_reset = true;
                card.transaction().map_err(checked)?
            }
            Err((_, e)) => return Err(checked(e)),
        };
        Ok(Box::new(PcscTransaction {
            tx,
            share,
            buf,
            reset_seen,
            was_reset,
        }))
    }

    /// `SCardDisconnect` with the disposition. (Dropping the card instead disconnects with
    /// `SCARD_RESET_CARD`.)
    fn disconnect(self: Box<Self>, disposition: Leaving) -> Result<(), TransportError> {
        let d = match disposition {
            Leaving::Leave => Disposition::LeaveCard,
            Leaving::Reset => Disposition::ResetCard,
            Leaving::Unpower => Disposition::UnpowerCard,
            Leaving::Eject => Disposition::EjectCard,
        };
        self.card.disconnect(d).map_err(|(_, e)| e.into())
    }

    /// `SCardGetAttrib(SCARD_ATTR_VENDOR_IFD_SERIAL_NO)` into a bounded buffer; a driver that
    /// does not support the attribute (or fails) gives `None`.
    fn reader_serial(&self) -> Option<String> {
        let mut buf = [0u8; crate::backend::MAX_SERIAL_LEN + 8];
        let raw = self
            .card
            .get_attribute(pcsc::Attribute::VendorIfdSerialNo, &mut buf)
            .ok()?;
        crate::backend::serial_number_text(raw)
    }

    /// `SCardGetAttrib` into a buffer of the largest attribute PC/SC defines (`MAX_BUFFER_SIZE`).
    fn attribute(&self, attribute: ReaderAttribute) -> Result<Vec<u8>, TransportError> {
        use pcsc::Attribute as A;
        let id = match attribute {
            ReaderAttribute::VendorName => A::VendorName,
            ReaderAttribute::VendorIfdType => A::VendorIfdType,
            ReaderAttribute::VendorIfdVersion => A::VendorIfdVersion,
            ReaderAttribute::VendorIfdSerialNo => A::VendorIfdSerialNo,
            ReaderAttribute::ChannelId => A::ChannelId,
            ReaderAttribute::AsyncProtocolTypes => A::AsyncProtocolTypes,
            ReaderAttribute::DefaultClk => A::DefaultClk,
            ReaderAttribute::MaxClk => A::MaxClk,
            ReaderAttribute::DefaultDataRate => A::DefaultDataRate,
            ReaderAttribute::MaxDataRate => A::MaxDataRate,
            ReaderAttribute::MaxIfsd => A::MaxIfsd,
            ReaderAttribute::CurrentProtocolType => A::CurrentProtocolType,
            ReaderAttribute::CurrentIfsc => A::CurrentIfsc,
            ReaderAttribute::CurrentIfsd => A::CurrentIfsd,
            ReaderAttribute::AtrString => A::AtrString,
            ReaderAttribute::MaxInput => A::Maxinput,
            ReaderAttribute::DeviceFriendlyName => A::DeviceFriendlyName,
        };
        let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE];
        let raw = self.card.get_attribute(id, &mut buf).map_err(checked)?;
        Ok(raw.to_vec())
    }

    fn protocol(&self) -> Option<ActiveProtocol> {
        let status = self.card.status2_owned().ok()?;
        Some(match status.protocol2()? {
            pcsc::Protocol::T0 => ActiveProtocol::T0,
            pcsc::Protocol::T1 => ActiveProtocol::T1,
            pcsc::Protocol::RAW => ActiveProtocol::Raw,
        })
    }
}

/// An open `SCardBeginTransaction`; dropping it ends the transaction.
struct PcscTransaction<'a> {
    tx: pcsc::Transaction<'a>,
    share: ShareMode,
    buf: &'a mut Vec<u8>,
    reset_seen: &'a mut bool,
    was_reset: bool,
}

impl CardTransaction for PcscTransaction<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        match transmit_on(&self.tx, self.buf, apdu) {
            Err(TransportError::CardReset) => {
                // Reset under us (a power glitch, a reader that resets on its own): reconnect
                // and report it, so the flow, whose security status is gone, can start over.
                self.tx
                    .reconnect(self.share, Protocols::ANY, Disposition::LeaveCard)?;
                *self.reset_seen = true;
                Err(TransportError::CardReset)
            }
            r => r,
        }
    }

    fn was_reset(&self) -> bool {
        self.was_reset
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.tx
            .reconnect(self.share, Protocols::ANY, Disposition::ResetCard)?;
        Ok(atr_of(&self.tx))
    }

    /// `SCardControl` on the card's connection, inside the transaction; the answer goes into
    /// the connection's buffer (the largest extended APDU), so it is bounded.
    fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        let answer = self
            .tx
            .control(code.into(), input, self.buf)
            .map_err(checked)?;
        Ok(answer.to_vec())
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
    timeout: Duration,
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
