//! The reader's identity and features as PC/SC reports them: `SCARD_ATTR_*` attributes
//! (`SCardGetAttrib`), the PC/SC part 10 feature list (`CM_IOCTL_GET_FEATURE_REQUEST`), its
//! TLV properties (`FEATURE_GET_TLV_PROPERTIES`) and PIN pad functions. Whatever the reader
//! does not report is marked so, with the reason, never shown as an empty value.

use serde::{Deserialize, Serialize};
use sscard_core::hexfmt::to_hex;
use sscard_transport::backend::ReaderAttribute;
use sscard_transport::{Connection, TransportError};

/// `SCARD_CTL_CODE(3400)` as pcsc-lite defines it (`0x42000000 + 3400`).
pub const CM_IOCTL_GET_FEATURE_REQUEST: u32 = 0x4200_0000 + 3400;
/// PC/SC part 10 feature tag of `FEATURE_VERIFY_PIN_DIRECT`.
pub const FEATURE_VERIFY_PIN_DIRECT: u8 = 0x06;
/// PC/SC part 10 feature tag of `FEATURE_MODIFY_PIN_DIRECT`.
pub const FEATURE_MODIFY_PIN_DIRECT: u8 = 0x07;
/// PC/SC part 10 feature tag of `FEATURE_GET_TLV_PROPERTIES`.
pub const FEATURE_GET_TLV_PROPERTIES: u8 = 0x12;

/// One property: its value, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reported {
    /// The value as text, and the bytes the reader gave (hex) when they are not the text.
    Value { text: String, raw: Option<String> },
    /// The reader did not report it: why (the PC/SC error, or an empty answer).
    NotReported { why: String },
}

impl Reported {
    /// The value, or "not reported by the reader (why)".
    pub fn display(&self) -> String {
        match self {
            Self::Value { text, .. } => text.clone(),
            Self::NotReported { why } => format!("not reported by the reader ({why})"),
        }
    }

    fn value(text: impl Into<String>, raw: Option<&[u8]>) -> Self {
        Self::Value {
            text: text.into(),
            raw: raw.map(to_hex),
        }
    }

    fn not_reported(why: impl Into<String>) -> Self {
        Self::NotReported { why: why.into() }
    }
}

/// One line of the identity table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// Stable key (`vendor_name`).
    pub key: String,
    /// What a reader would call it (`Vendor name (SCARD_ATTR_VENDOR_NAME)`).
    pub label: String,
    pub value: Reported,
}

/// The reader as PC/SC reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderIdentity {
    /// The PC/SC reader name.
    pub name: String,
    pub properties: Vec<Property>,
}

impl ReaderIdentity {
    /// The property `key`.
    pub fn get(&self, key: &str) -> Option<&Reported> {
        self.properties
            .iter()
            .find(|p| p.key == key)
            .map(|p| &p.value)
    }
}

/// How an attribute's bytes read.
#[derive(Clone, Copy)]
enum Shape {
    Text,
    Serial,
    Version,
    Number,
    Protocols,
    Channel,
    Hex,
}

const ATTRIBUTES: &[(&str, &str, ReaderAttribute, Shape)] = &[
    (
        "vendor_name",
        "Vendor name (SCARD_ATTR_VENDOR_NAME)",
        ReaderAttribute::VendorName,
        Shape::Text,
    ),
    (
        "model",
        "Model (SCARD_ATTR_VENDOR_IFD_TYPE)",
        ReaderAttribute::VendorIfdType,
        Shape::Text,
    ),
    (
        "serial_number",
        "Serial number (SCARD_ATTR_VENDOR_IFD_SERIAL_NO)",
        ReaderAttribute::VendorIfdSerialNo,
        Shape::Serial,
    ),
    (
        "firmware_version",
        "Firmware version (SCARD_ATTR_VENDOR_IFD_VERSION)",
        ReaderAttribute::VendorIfdVersion,
        Shape::Version,
    ),
    (
        "channel",
        "Channel (SCARD_ATTR_CHANNEL_ID)",
        ReaderAttribute::ChannelId,
        Shape::Channel,
    ),
    (
        "supported_protocols",
        "Supported protocols (SCARD_ATTR_ASYNC_PROTOCOL_TYPES)",
        ReaderAttribute::AsyncProtocolTypes,
        Shape::Protocols,
    ),
    (
        "current_protocol",
        "Current protocol (SCARD_ATTR_CURRENT_PROTOCOL_TYPE)",
        ReaderAttribute::CurrentProtocolType,
        Shape::Protocols,
    ),
    (
        "default_clock_khz",
        "Default clock, kHz (SCARD_ATTR_DEFAULT_CLK)",
        ReaderAttribute::DefaultClk,
        Shape::Number,
    ),
    (
        "max_clock_khz",
        "Maximum clock, kHz (SCARD_ATTR_MAX_CLK)",
        ReaderAttribute::MaxClk,
        Shape::Number,
    ),
    (
        "default_data_rate_bps",
        "Default data rate, bit/s (SCARD_ATTR_DEFAULT_DATA_RATE)",
        ReaderAttribute::DefaultDataRate,
        Shape::Number,
    ),
    (
        "max_data_rate_bps",
        "Maximum data rate, bit/s (SCARD_ATTR_MAX_DATA_RATE)",
        ReaderAttribute::MaxDataRate,
        Shape::Number,
    ),
    (
        "max_ifsd",
        "Maximum IFSD (SCARD_ATTR_MAX_IFSD)",
        ReaderAttribute::MaxIfsd,
        Shape::Number,
    ),
    (
        "current_ifsc",
        "Current IFSC (SCARD_ATTR_CURRENT_IFSC)",
        ReaderAttribute::CurrentIfsc,
        Shape::Number,
    ),
    (
        "max_input",
        "Longest command, bytes (SCARD_ATTR_MAXINPUT)",
        ReaderAttribute::MaxInput,
        Shape::Number,
    ),
    (
        "atr_attribute",
        "ATR (SCARD_ATTR_ATR_STRING)",
        ReaderAttribute::AtrString,
        Shape::Hex,
    ),
];

/// Why the reader gave nothing.
fn why(e: &TransportError) -> String {
    match e {
        TransportError::Pcsc { code, message } => format!("{message}, 0x{code:08X}"),
        other => other.to_string(),
    }
}

/// Little-endian unsigned number of 1 to 8 bytes (a `DWORD` on every pcsc-lite platform).
fn number(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 8 {
        return None;
    }
    Some(
        raw.iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
    )
}

/// Text up to the first NUL, trailing spaces dropped; `None` when empty or not printable.
fn text(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    let s = std::str::from_utf8(&raw[..end]).ok()?.trim_end();
    (!s.is_empty() && s.chars().all(|c| !c.is_control())).then(|| s.to_string())
}

fn protocols(bits: u64) -> String {
    let names: Vec<&str> = [(1, "T=0"), (2, "T=1"), (0x10000, "raw")]
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        format!("none (0x{bits:X})")
    } else {
        names.join(", ")
    }
}

fn channel(v: u64) -> String {
    let kind = match v >> 16 {
        0x01 => "serial port",
        0x02 => "parallel port",
        0x04 => "PS/2 keyboard port",
        0x08 => "SCSI",
        0x10 => "IDE",
        0x20 => "USB",
        0xF0 => "vendor-defined",
        _ => "unknown bus",
    };
    format!("{kind}, channel {} (0x{v:08X})", v & 0xFFFF)
}

/// One attribute's bytes as a property value.
fn decode(shape: Shape, raw: &[u8]) -> Reported {
    if raw.is_empty() {
        return Reported::not_reported("empty answer");
    }
    let bad = || Reported::not_reported(format!("unreadable value {}", to_hex(raw)));
    match shape {
        Shape::Text => text(raw).map_or_else(bad, |t| Reported::value(t, None)),
        Shape::Serial => sscard_transport::backend::serial_number_text(raw)
            .map_or_else(bad, |s| Reported::value(s, Some(raw))),
        // PC/SC: 0xMMmmbbbb, major, minor and build.
        Shape::Version => number(raw).map_or_else(bad, |v| {
            Reported::value(
                format!("{}.{}.{}", v >> 24 & 0xFF, v >> 16 & 0xFF, v & 0xFFFF),
                Some(raw),
            )
        }),
        Shape::Number => number(raw).map_or_else(bad, |v| Reported::value(v.to_string(), None)),
        Shape::Protocols => {
            number(raw).map_or_else(bad, |v| Reported::value(protocols(v), Some(raw)))
        }
        Shape::Channel => number(raw).map_or_else(bad, |v| Reported::value(channel(v), None)),
        Shape::Hex => Reported::value(to_hex(raw), None),
    }
}

/// The PC/SC part 10 features of the reader: tag and control code of each.
pub fn parse_features(tlv: &[u8]) -> Result<Vec<(u8, u32)>, usize> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < tlv.len() {
        let entry = tlv
            .get(offset..offset + 6)
            .filter(|e| e[1] == 4)
            .ok_or(offset)?;
        out.push((
            entry[0],
            u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]),
        ));
        offset += 6;
    }
    Ok(out)
}

/// The name of a PC/SC part 10 feature tag.
pub fn feature_name(tag: u8) -> String {
    let name = match tag {
        0x01 => "VERIFY_PIN_START",
        0x02 => "VERIFY_PIN_FINISH",
        0x03 => "MODIFY_PIN_START",
        0x04 => "MODIFY_PIN_FINISH",
        0x05 => "GET_KEY_PRESSED",
        0x06 => "VERIFY_PIN_DIRECT",
        0x07 => "MODIFY_PIN_DIRECT",
        0x08 => "MCT_READER_DIRECT",
        0x09 => "MCT_UNIVERSAL",
        0x0A => "IFD_PIN_PROPERTIES",
        0x0B => "ABORT",
        0x0C => "SET_SPE_MESSAGE",
        0x0D => "VERIFY_PIN_DIRECT_APP_ID",
        0x0E => "MODIFY_PIN_DIRECT_APP_ID",
        0x0F => "WRITE_DISPLAY",
        0x10 => "GET_KEY",
        0x11 => "IFD_DISPLAY_PROPERTIES",
        0x12 => "GET_TLV_PROPERTIES",
        0x13 => "CCID_ESC_COMMAND",
        0x20 => "EXECUTE_PACE",
        _ => return format!("feature 0x{tag:02X}"),
    };
    format!("FEATURE_{name}")
}

/// The properties of `FEATURE_GET_TLV_PROPERTIES` (PC/SC part 10, 2.6.14): tag, length,
/// little-endian value; `sFirmwareID` is text.
pub fn parse_tlv_properties(tlv: &[u8]) -> Result<Vec<(String, String)>, usize> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < tlv.len() {
        let (tag, len) = match tlv.get(offset..offset + 2) {
            Some(h) => (h[0], h[1] as usize),
            None => return Err(offset),
        };
        let value = tlv.get(offset + 2..offset + 2 + len).ok_or(offset)?;
        let name = match tag {
            0x01 => "wLcdLayout",
            0x02 => "bEntryValidationCondition",
            0x03 => "bTimeOut2",
            0x04 => "wLcdMaxCharacters",
            0x05 => "wLcdMaxLines",
            0x06 => "bMinPINSize",
            0x07 => "bMaxPINSize",
            0x08 => "sFirmwareID",
            0x09 => "bPPDUSupport",
            0x0A => "dwMaxAPDUDataSize",
            0x0B => "wIdVendor",
            0x0C => "wIdProduct",
            _ => "",
        };
        let shown = match (tag, number(value)) {
            (0x08, _) => text(value).unwrap_or_else(|| to_hex(value)),
            (0x0B | 0x0C, Some(v)) => format!("0x{v:04X}"),
            (_, Some(v)) => v.to_string(),
            (_, None) => to_hex(value),
        };
        let name = if name.is_empty() {
            format!("tag 0x{tag:02X}")
        } else {
            name.to_string()
        };
        out.push((name, shown));
        offset += 2 + len;
    }
    Ok(out)
}

/// Reads the reader's identity and features through `conn` (one transaction for the reader
/// commands). Nothing here fails: what cannot be read is "not reported", with the reason.
pub fn read(conn: &mut Connection) -> ReaderIdentity {
    let mut properties: Vec<Property> = ATTRIBUTES
        .iter()
        .map(|(key, label, attr, shape)| Property {
            key: key.to_string(),
            label: label.to_string(),
            value: match conn.attribute(*attr) {
                Ok(raw) => decode(*shape, &raw),
                Err(e) => Reported::not_reported(why(&e)),
            },
        })
        .collect();
    properties.push(Property {
        key: "connected_protocol".into(),
        label: "Protocol of this connection (SCardStatus)".into(),
        value: match conn.protocol() {
            Some(p) => Reported::value(p.name(), None),
            None => Reported::not_reported("SCardStatus gave no protocol"),
        },
    });
    properties.extend(features(conn));
    ReaderIdentity {
        name: conn.reader().to_string(),
        properties,
    }
}

fn prop(key: &str, label: &str, value: Reported) -> Property {
    Property {
        key: key.into(),
        label: label.into(),
        value,
    }
}

/// The part 10 features, the TLV properties and the two PIN pad functions.
fn features(conn: &mut Connection) -> Vec<Property> {
    const LIST: &str = "PC/SC part 10 features (CM_IOCTL_GET_FEATURE_REQUEST)";
    const TLV: &str = "TLV properties (FEATURE_GET_TLV_PROPERTIES)";
    const VERIFY: &str = "PIN pad verify (FEATURE_VERIFY_PIN_DIRECT)";
    const MODIFY: &str = "PIN pad change (FEATURE_MODIFY_PIN_DIRECT)";
    let answer = conn
        .transaction()
        .and_then(|mut tx| tx.control(CM_IOCTL_GET_FEATURE_REQUEST, &[]));
    // Without a feature list, none of the four is known, for the same reason.
    let all_four = |why: String| {
        [
            ("features", LIST),
            ("tlv_properties", TLV),
            ("pin_verify_direct", VERIFY),
            ("pin_modify_direct", MODIFY),
        ]
        .into_iter()
        .map(|(key, label)| prop(key, label, Reported::not_reported(why.clone())))
        .collect()
    };
    let list = match answer.as_deref().map(parse_features) {
        Ok(Ok(list)) if !list.is_empty() => list,
        Ok(Ok(_)) => return all_four("the reader lists no features".into()),
        Ok(Err(offset)) => {
            return all_four(format!("the feature list is malformed at byte {offset}"))
        }
        Err(e) => return all_four(format!("SCardControl: {}", why(e))),
    };
    let code_of = |tag: u8| list.iter().find(|(t, _)| *t == tag).map(|(_, c)| *c);
    let names: Vec<String> = list.iter().map(|(t, _)| feature_name(*t)).collect();
    let tlv = match code_of(FEATURE_GET_TLV_PROPERTIES) {
        None => Reported::not_reported("FEATURE_GET_TLV_PROPERTIES not in the feature list"),
        Some(code) => match conn
            .transaction()
            .and_then(|mut tx| tx.control(code, &[]))
            .as_deref()
            .map(parse_tlv_properties)
        {
            Ok(Ok(p)) if !p.is_empty() => Reported::value(
                p.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                None,
            ),
            Ok(Ok(_)) => Reported::not_reported("empty answer"),
            Ok(Err(offset)) => Reported::not_reported(format!("malformed answer at byte {offset}")),
            Err(e) => Reported::not_reported(format!("SCardControl: {}", why(e))),
        },
    };
    let pin = |tag: u8| match code_of(tag) {
        Some(code) => Reported::value(format!("yes, control code 0x{code:08X}"), None),
        None => Reported::value("no (not in the feature list)", None),
    };
    vec![
        prop("features", LIST, Reported::value(names.join(", "), None)),
        prop("tlv_properties", TLV, tlv),
        prop("pin_verify_direct", VERIFY, pin(FEATURE_VERIFY_PIN_DIRECT)),
        prop("pin_modify_direct", MODIFY, pin(FEATURE_MODIFY_PIN_DIRECT)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_decode_or_say_why_not() {
        assert_eq!(
            decode(Shape::Version, &[0x34, 0x12, 0x02, 0x01]),
            Reported::value("1.2.4660", Some(&[0x34, 0x12, 0x02, 0x01]))
        );
        assert_eq!(
            decode(Shape::Protocols, &[3, 0, 0, 0]).display(),
            "T=0, T=1"
        );
        assert_eq!(
            decode(Shape::Channel, &[1, 0, 0x20, 0]).display(),
            "USB, channel 1 (0x00200001)"
        );
        assert_eq!(decode(Shape::Text, b"ACME\0\0").display(), "ACME");
        assert_eq!(
            decode(Shape::Text, b"").display(),
            "not reported by the reader (empty answer)"
        );
        assert_eq!(
            decode(Shape::Text, b"\0\0").display(),
            "not reported by the reader (unreadable value 0000)"
        );
        assert_eq!(decode(Shape::Number, &[0x10, 0x0E]).display(), "3600");
    }

    #[test]
    fn part_10_lists_parse() {
        let list = [
            0x06, 4, 0x42, 0x33, 0x00, 0x06, 0x12, 4, 0x42, 0x33, 0x00, 0x12,
        ];
        assert_eq!(
            parse_features(&list),
            Ok(vec![(0x06, 0x4233_0006), (0x12, 0x4233_0012)])
        );
        assert_eq!(parse_features(&list[..8]), Err(6));
        assert_eq!(feature_name(0x06), "FEATURE_VERIFY_PIN_DIRECT");
        let tlv = [
            0x08, 4, b'V', b'1', b'.', b'2', 0x0B, 2, 0xE6, 0x08, 0x06, 1, 4,
        ];
        assert_eq!(
            parse_tlv_properties(&tlv),
            Ok(vec![
                ("sFirmwareID".to_string(), "V1.2".to_string()),
                ("wIdVendor".to_string(), "0x08E6".to_string()),
                ("bMinPINSize".to_string(), "4".to_string()),
            ])
        );
        assert_eq!(parse_tlv_properties(&[0x01, 5, 0]), Err(0));
    }
}
