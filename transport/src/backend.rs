//! The two traits a card backend implements (the shape of openpgp-card's `card-backend`): a
//! connection to one card ([`CardBackend`]) that hands out exclusive transactions
//! ([`CardTransaction`]). PC/SC ([`crate::pcsc`]) and in-process cards ([`crate::InProcess`])
//! are backends; so is anything a test or an application writes. Flows never see a backend:
//! they borrow a [`crate::Transaction`] of a [`crate::Connection`].

use crate::TransportError;
use sscard_core::status::StatusWord;

/// A connection to the card in one reader.
pub trait CardBackend: Send {
    /// The reader's name.
    fn reader(&self) -> &str;
    /// The card's answer to reset, as of the connection or the last reset.
    fn atr(&self) -> Vec<u8>;
    /// Starts an exclusive transaction: no other application's APDU comes between the ones
    /// sent through it, until it is dropped.
    fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError>;
    /// Ends the connection, leaving the card as `disposition` says. A backend with nothing to
    /// do on disconnect (an in-process card) just drops the connection.
    fn disconnect(self: Box<Self>, disposition: Disposition) -> Result<(), TransportError> {
        let _ = disposition;
        Ok(())
    }
    /// The reader's serial number (PC/SC `SCARD_ATTR_VENDOR_IFD_SERIAL_NO`), as
    /// [`serial_number_text`] writes it, when the reader reports one. The unified interface
    /// prints it as the terminal device number (PROFILE section 7). A reader with none, and a
    /// backend without readers, answers `None`.
    fn reader_serial(&self) -> Option<String> {
        None
    }
    /// A reader attribute (PC/SC `SCardGetAttrib`) as the reader reports it. A reader that does
    /// not report it answers an error (PC/SC `SCARD_E_UNSUPPORTED_FEATURE` or another code);
    /// a backend without readers answers [`unsupported_feature`].
    fn attribute(&self, attribute: ReaderAttribute) -> Result<Vec<u8>, TransportError> {
        let _ = attribute;
        Err(unsupported_feature())
    }
    /// The protocol the card was connected with (PC/SC `SCardStatus`), when the backend knows.
    fn protocol(&self) -> Option<ActiveProtocol> {
        None
    }
}

/// The reader attributes (`SCARD_ATTR_*`) a reader qualification asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReaderAttribute {
    /// `SCARD_ATTR_VENDOR_NAME`
    VendorName,
    /// `SCARD_ATTR_VENDOR_IFD_TYPE` (the reader model)
    VendorIfdType,
    /// `SCARD_ATTR_VENDOR_IFD_VERSION` (firmware version, `0xMMmmbbbb`)
    VendorIfdVersion,
    /// `SCARD_ATTR_VENDOR_IFD_SERIAL_NO`
    VendorIfdSerialNo,
    /// `SCARD_ATTR_CHANNEL_ID` (bus type and address)
    ChannelId,
    /// `SCARD_ATTR_ASYNC_PROTOCOL_TYPES` (supported protocols, bit 0 T=0, bit 1 T=1)
    AsyncProtocolTypes,
    /// `SCARD_ATTR_DEFAULT_CLK` (kHz)
    DefaultClk,
    /// `SCARD_ATTR_MAX_CLK` (kHz)
    MaxClk,
    /// `SCARD_ATTR_DEFAULT_DATA_RATE` (bps)
    DefaultDataRate,
    /// `SCARD_ATTR_MAX_DATA_RATE` (bps)
    MaxDataRate,
    /// `SCARD_ATTR_MAX_IFSD`
    MaxIfsd,
    /// `SCARD_ATTR_CURRENT_PROTOCOL_TYPE`
    CurrentProtocolType,
    /// `SCARD_ATTR_CURRENT_IFSC`
    CurrentIfsc,
    /// `SCARD_ATTR_CURRENT_IFSD`
    CurrentIfsd,
    /// `SCARD_ATTR_ATR_STRING`
    AtrString,
    /// `SCARD_ATTR_MAXINPUT` (the longest command the reader takes)
    MaxInput,
    /// `SCARD_ATTR_DEVICE_FRIENDLY_NAME`
    DeviceFriendlyName,
}

/// The protocol of a card connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActiveProtocol {
    T0,
    T1,
    /// A raw connection (no card protocol).
    Raw,
}

impl ActiveProtocol {
    /// `T=0`, `T=1`, `raw`.
    pub fn name(self) -> &'static str {
        match self {
            Self::T0 => "T=0",
            Self::T1 => "T=1",
            Self::Raw => "raw",
        }
    }
}

/// Longest reader serial number taken, in bytes.
pub const MAX_SERIAL_LEN: usize = 64;

/// A reader's serial number as text for one `|`-terminated field: printable ASCII other than
/// `|` as it is (trailing NULs and spaces dropped, as drivers pad it), anything else as hex.
/// Empty or longer than [`MAX_SERIAL_LEN`] bytes is no serial number.
pub fn serial_number_text(raw: &[u8]) -> Option<String> {
    let end = raw
        .iter()
        .rposition(|b| *b != 0 && *b != b' ')
        .map_or(0, |i| i + 1);
    let raw = &raw[..end];
    if raw.is_empty() || raw.len() > MAX_SERIAL_LEN {
        return None;
    }
    Some(
        if raw
            .iter()
            .all(|b| b.is_ascii_graphic() && *b != b'|' || *b == b' ')
        {
            String::from_utf8_lossy(raw).into_owned()
        } else {
            sscard_core::hexfmt::to_hex(raw)
        },
    )
}

/// What happens to the card when a connection ends (PC/SC's dispositions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Nothing: the card stays powered with its state (the reader may power it off when idle).
    Leave,
    /// Warm reset: the card's volatile state is gone.
    Reset,
    /// Power off.
    Unpower,
    /// Eject, for readers with a mechanism; others leave the card where it is.
    Eject,
}

/// An exclusive transaction on a card.
pub trait CardTransaction {
    /// Sends one command APDU, returns the response bytes (data ‖ SW1 SW2) as the card sent
    /// them.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
    /// Whether the card was reset since the previous transaction of this connection (by another
    /// application, a power glitch, or a warm reset): its volatile state (selected application,
    /// security status) is gone, so a flow that relies on it starts over (selects again).
    fn was_reset(&self) -> bool;
    /// Warm-resets the card and returns its answer to reset; the transaction goes on.
    fn reset(&mut self) -> Result<Vec<u8>, TransportError>;
    /// A command to the reader itself (PC/SC `SCardControl`): `code` is the control code,
    /// `input` its data; returns the reader's answer. PIN pads take their commands this way
    /// (PC/SC part 10). A backend without a reader to talk to answers
    /// [`TransportError::Pcsc`] with `SCARD_E_UNSUPPORTED_FEATURE`.
    fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        let _ = (code, input);
        Err(unsupported_feature())
    }
}

/// PC/SC's `SCARD_E_UNSUPPORTED_FEATURE`, for backends without reader commands.
pub const SCARD_E_UNSUPPORTED_FEATURE: u32 = 0x8010_0022;

/// The error of a reader command a backend does not have.
pub fn unsupported_feature() -> TransportError {
    TransportError::Pcsc {
        code: SCARD_E_UNSUPPORTED_FEATURE,
        message: "this reader does not support this function".into(),
    }
}

/// The CT-BCS command EJECT ICC for the reader's first slot (CLA `20`, INS `15`, functional unit
/// 1, Le `00`): the command pcsc-lite hands a reader driver for `SCardDisconnect(SCARD_EJECT_CARD)`.
/// [`crate::Connection::eject`] sends it in-band, where a card feeder on a virtual reader (which
/// sees APDUs and power events only) takes it; an ordinary card refuses its CLA.
pub const EJECT_ICC: [u8; 5] = [0x20, 0x15, 0x01, 0x00, 0x00];

/// What became of a card the station ejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ejection {
    /// The feeder took the card out of the reader (EJECT ICC answered `9000`).
    Ejected,
    /// Nothing took it (a reader without a feeder passed EJECT ICC to the card, which refused
    /// it, or the feeder could not store it): the card is still in the reader.
    Refused { sw: StatusWord },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serial_number_becomes_one_field() {
        assert_eq!(
            serial_number_text(b"0123456789\0\0").as_deref(),
            Some("0123456789")
        );
        assert_eq!(serial_number_text(b"SN 42  ").as_deref(), Some("SN 42"));
        // A byte that could break the line or the terminal is shown as hex.
        assert_eq!(serial_number_text(b"12|34").as_deref(), Some("31327C3334"));
        assert_eq!(serial_number_text(&[0x01, 0xFF]).as_deref(), Some("01FF"));
        assert_eq!(serial_number_text(b"\0\0"), None);
        assert_eq!(serial_number_text(b""), None);
        assert_eq!(serial_number_text(&[b'1'; 65]), None);
        assert_eq!(serial_number_text(&[b'1'; 64]).map(|s| s.len()), Some(64));
    }
}
