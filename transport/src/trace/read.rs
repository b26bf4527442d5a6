//! Reading traces back (`sscard trace decode`): sscard's pcapng (link type 264 with its 4-byte
//! pseudo-header, an interface per card role and reader), sscard's JSON lines, and other tools'
//! ISO 7816 traffic in classic pcap or pcapng. The format is told by the first bytes.
//!
//! No link type of the tcpdump registry is ISO 7816 itself (Wireshark's ISO 7816 dissector has
//! no link type of its own): APDUs reach pcap files inside ISO 14443-4 I-blocks
//! (LINKTYPE_ISO_14443, 264), as sscard writes them and as NFC tools (NFCGate) do. That is what
//! is read here, with or without the CRC (events `FE`/`FF` carry it, `FA`/`FB` do not), with
//! a CID or NAD byte, and chained I-blocks joined. Other frames (R- and S-blocks, field
//! on/off) are skipped; commands and responses are paired in order per interface. The other
//! common capture of a contact reader's APDUs, USB CCID on Linux usbmon or Windows USBPcap, is
//! read by the `ccid` module.
//!
//! Memory is bounded: a trace is read up to [`MAX_TRACE_BYTES`], a block or line up to
//! [`MAX_BLOCK_BYTES`]; past either a typed error names the offset. Nothing here panics on any
//! input.

use super::ccid::{Ccid, UsbHeader};
use super::MASK_BYTE;
use sscard_core::classify::{Classified, ExitClass};
use sscard_core::profile::codes;
use std::io::Read;

/// The most a trace file may hold.
pub const MAX_TRACE_BYTES: usize = 256 * 1024 * 1024;
/// The most one pcap block or record, or one JSON line, may hold (an extended APDU is at most
/// 65 544 bytes).
pub const MAX_BLOCK_BYTES: usize = 1024 * 1024;

/// LINKTYPE_ISO_14443 (tcpdump's link-layer header types).
pub const LINKTYPE_ISO_14443: u32 = 264;

/// One command and its response as a trace recorded them, with the bytes the trace masked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedPair {
    /// `card`, `psam`, or `card` for a foreign trace that names no role.
    pub role: String,
    /// The reader (an interface's name after the role), empty when unknown.
    pub reader: String,
    pub command: Vec<u8>,
    pub command_masked: Vec<bool>,
    /// The response with its status word (empty when the trace ends before it).
    pub response: Vec<u8>,
    pub response_masked: Vec<bool>,
}

/// The formats [`read_trace`] knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    Pcapng,
    Pcap,
    JsonLines,
}

/// Why a trace cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceReadError {
    #[error("reading the trace: {0}")]
    Io(#[from] std::io::Error),
    #[error("the trace is larger than {MAX_TRACE_BYTES} bytes: split it (editcap -c) and decode the parts")]
    TooLarge,
    #[error("the trace is empty")]
    Empty,
    #[error("not a trace sscard reads (it starts {start}): give a pcapng or pcap file, or sscard's JSON lines (--trace-json)")]
    UnknownFormat { start: String },
    #[error("{format} at offset {offset}: {what}")]
    Truncated {
        format: &'static str,
        offset: usize,
        what: &'static str,
    },
    #[error(
        "{format} at offset {offset}: a block of {len} bytes, more than the {MAX_BLOCK_BYTES} read"
    )]
    BlockTooLarge {
        format: &'static str,
        offset: usize,
        len: usize,
    },
    #[error("pcapng at offset {offset}: block length {len} is not a multiple of 4 of at least 12")]
    BadBlockLength { offset: usize, len: usize },
    #[error("pcapng at offset {offset}: section header with byte-order magic {magic:08X}")]
    BadByteOrder { offset: usize, magic: u32 },
    #[error("{format} at offset {offset}: link type {linktype}; sscard reads ISO 7816 APDUs in ISO 14443 frames (link type 264) and in USB CCID (189, 220: Linux usbmon; 249: USBPcap)")]
    LinkType {
        format: &'static str,
        offset: usize,
        linktype: u32,
    },
    #[error("pcapng at offset {offset}: a packet of interface {interface}, which no interface description block declared")]
    NoInterface { offset: usize, interface: u32 },
    #[error("{format} at offset {offset}: the ISO 14443 pseudo-header says {declared} bytes but {available} follow")]
    PseudoHeader {
        format: &'static str,
        offset: usize,
        declared: usize,
        available: usize,
    },
    #[error("JSON trace line {line}: {problem}")]
    Json { line: usize, problem: String },
}

impl Classified for TraceReadError {
    /// A trace that cannot be read is bad input (−23, invalid data); a read failure of the file
    /// itself is another error.
    fn return_code(&self) -> i32 {
        codes::INVALID_DATA
    }

    fn exit_class(&self) -> ExitClass {
        match self {
            Self::Io(_) => ExitClass::Other,
            _ => ExitClass::BadInput,
        }
    }
}

/// Reads a whole trace (at most [`MAX_TRACE_BYTES`]) and pairs its APDUs.
pub fn read_trace(input: impl Read) -> Result<(TraceFormat, Vec<RecordedPair>), TraceReadError> {
    let mut bytes = Vec::new();
    input
        .take(MAX_TRACE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_TRACE_BYTES {
        return Err(TraceReadError::TooLarge);
    }
    parse_trace(&bytes)
}

/// The format of a trace by its first bytes.
pub fn detect(bytes: &[u8]) -> Result<TraceFormat, TraceReadError> {
    match bytes {
        [] => Err(TraceReadError::Empty),
        [0x0A, 0x0D, 0x0D, 0x0A, ..] => Ok(TraceFormat::Pcapng),
        [0xD4, 0xC3, 0xB2, 0xA1, ..]
        | [0xA1, 0xB2, 0xC3, 0xD4, ..]
        | [0x4D, 0x3C, 0xB2, 0xA1, ..]
        | [0xA1, 0xB2, 0x3C, 0x4D, ..] => Ok(TraceFormat::Pcap),
        _ if bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{') =>
        {
            Ok(TraceFormat::JsonLines)
        }
        _ => Err(TraceReadError::UnknownFormat {
            start: sscard_core::hexfmt::to_hex(&bytes[..bytes.len().min(8)]),
        }),
    }
}

/// Pairs the APDUs of a trace held in memory.
pub fn parse_trace(bytes: &[u8]) -> Result<(TraceFormat, Vec<RecordedPair>), TraceReadError> {
    let format = detect(bytes)?;
    let pairs = match format {
        TraceFormat::Pcapng => pcapng(bytes)?,
        TraceFormat::Pcap => pcap(bytes)?,
        TraceFormat::JsonLines => json_lines(bytes)?,
    };
    Ok((format, pairs))
}

/// Little- or big-endian reads at offsets that were checked.
#[derive(Clone, Copy)]
pub(super) struct Endian(pub(super) bool);

impl Endian {
    pub(super) fn u16(self, b: &[u8], at: usize) -> u16 {
        let a = [b[at], b[at + 1]];
        if self.0 {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }
    pub(super) fn u32(self, b: &[u8], at: usize) -> u32 {
        let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.0 {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }
}

/// What a capture's interface carries.
#[derive(Clone, Copy)]
enum Interface {
    /// ISO 14443 frames, paired on this index of [`Pairing::links`].
    Iso14443(usize),
    /// USB packets behind this capture header.
    Usb(UsbHeader),
}

/// Commands waiting for their responses, and chained I-blocks being joined, per interface.
#[derive(Default)]
struct Pairing {
    /// Per interface: (role, reader, pending command, chain being joined, its direction).
    links: Vec<Link>,
    /// The USB CCID readers of a USB capture.
    ccid: Ccid,
    out: Vec<RecordedPair>,
}

#[derive(Default)]
struct Link {
    role: String,
    reader: String,
    command: Option<Vec<u8>>,
    chain: Vec<u8>,
}

impl Link {
    fn named(name: &str) -> Self {
        let (role, reader) = match name.split_once(' ') {
            Some((r @ ("card" | "psam"), rest)) => (r.to_string(), rest.to_string()),
            _ if name == "card" || name == "psam" => (name.to_string(), String::new()),
            _ => ("card".to_string(), name.to_string()),
        };
        Self {
            role,
            reader,
            ..Self::default()
        }
    }
}

/// Which bytes of a command in a binary trace were masked. A pcap has no mask of its own, but
/// sscard masks whole ranges with [`MASK_BYTE`] (`*`): a command's data and what follows it
/// (or everything after the header of one that does not parse), a response's data. Such a range
/// made of `*` alone is taken as masked, so a secret a flow marked (a script's MAC macro) shows
/// as `**`, never as `2A2A…`; real data of `*` alone is shown masked too, which hides nothing.
pub(super) fn command_masks(bytes: &[u8]) -> Vec<bool> {
    let mut masked = vec![false; bytes.len()];
    let start = match sscard_core::apdu::Command::parse(bytes) {
        Ok(c) if !c.data.is_empty() => {
            if bytes[4] == 0 {
                7
            } else {
                5
            }
        }
        Ok(_) => return masked,
        Err(_) => 4,
    };
    if bytes.len() > start && bytes[start..].iter().all(|b| *b == MASK_BYTE) {
        masked[start..].fill(true);
    }
    masked
}

/// Which bytes of a response (data and status word) in a binary trace were masked: its data
/// when made of `*` alone (see [`command_masks`]).
pub(super) fn response_masks(bytes: &[u8]) -> Vec<bool> {
    let mut masked = vec![false; bytes.len()];
    let end = bytes.len().saturating_sub(2);
    if end > 0 && bytes[..end].iter().all(|b| *b == MASK_BYTE) {
        masked[..end].fill(true);
    }
    masked
}

impl Pairing {
    /// One ISO 14443 packet (pseudo-header and frame) on interface `link`.
    fn packet(
        &mut self,
        link: usize,
        data: &[u8],
        format: &'static str,
        offset: usize,
    ) -> Result<(), TraceReadError> {
        let [_version, event, hi, lo, rest @ ..] = data else {
            return Err(TraceReadError::Truncated {
                format,
                offset,
                what: "a packet shorter than the 4-byte ISO 14443 pseudo-header",
            });
        };
        let declared = usize::from(u16::from_be_bytes([*hi, *lo]));
        if declared > rest.len() {
            return Err(TraceReadError::PseudoHeader {
                format,
                offset,
                declared,
                available: rest.len(),
            });
        }
        let frame = &rest[..declared];
        // FA/FB: without CRC; FE/FF: with the 2 CRC bytes at the end; FC/FD: field on/off.
        let (to_card, frame) = match event {
            0xFA => (true, frame),
            0xFB => (false, frame),
            0xFE => (true, &frame[..frame.len().saturating_sub(2)]),
            0xFF => (false, &frame[..frame.len().saturating_sub(2)]),
            _ => return Ok(()),
        };
        let Some((&pcb, mut apdu)) = frame.split_first() else {
            return Ok(());
        };
        if pcb & 0xE2 != 0x02 {
            // Not an I-block (R-, S-block, or a frame of activation).
            return Ok(());
        }
        if pcb & 0x08 != 0 {
            apdu = apdu.get(1..).unwrap_or(&[]);
        }
        if pcb & 0x04 != 0 {
            apdu = apdu.get(1..).unwrap_or(&[]);
        }
        let l = &mut self.links[link];
        if l.chain.len() + apdu.len() > MAX_BLOCK_BYTES {
            return Err(TraceReadError::BlockTooLarge {
                format,
                offset,
                len: l.chain.len() + apdu.len(),
            });
        }
        l.chain.extend_from_slice(apdu);
        if pcb & 0x10 != 0 {
            return Ok(());
        }
        let whole = std::mem::take(&mut l.chain);
        if to_card {
            if let Some(unanswered) = l.command.replace(whole) {
                let pair = RecordedPair {
                    role: l.role.clone(),
                    reader: l.reader.clone(),
                    command_masked: command_masks(&unanswered),
                    command: unanswered,
                    response: Vec::new(),
                    response_masked: Vec::new(),
                };
                self.out.push(pair);
            }
        } else if let Some(command) = l.command.take() {
            let pair = RecordedPair {
                role: l.role.clone(),
                reader: l.reader.clone(),
                command_masked: command_masks(&command),
                command,
                response_masked: response_masks(&whole),
                response: whole,
            };
            self.out.push(pair);
        }
        // A response without a command (a trace that starts mid-exchange) is skipped.
        Ok(())
    }

    /// One packet of an interface, in the byte order `e` of its file or section.
    fn any(
        &mut self,
        interface: Interface,
        e: Endian,
        data: &[u8],
        format: &'static str,
        offset: usize,
    ) -> Result<(), TraceReadError> {
        match interface {
            Interface::Iso14443(link) => self.packet(link, data, format, offset),
            Interface::Usb(header) => self.usb(header, e, data, format, offset),
        }
    }

    /// One USB packet (a capture header and its data).
    fn usb(
        &mut self,
        header: UsbHeader,
        e: Endian,
        data: &[u8],
        format: &'static str,
        offset: usize,
    ) -> Result<(), TraceReadError> {
        self.ccid
            .packet(header, e, data, format, offset, &mut self.out)
    }

    fn finish(mut self) -> Vec<RecordedPair> {
        std::mem::take(&mut self.ccid).finish(&mut self.out);
        for l in &mut self.links {
            if let Some(command) = l.command.take() {
                self.out.push(RecordedPair {
                    role: l.role.clone(),
                    reader: l.reader.clone(),
                    command_masked: command_masks(&command),
                    command,
                    response: Vec::new(),
                    response_masked: Vec::new(),
                });
            }
        }
        self.out
    }
}

const PCAPNG: &str = "pcapng";
const PCAP: &str = "pcap";

fn pcapng(b: &[u8]) -> Result<Vec<RecordedPair>, TraceReadError> {
    let mut at = 0;
    let mut e = Endian(false);
    let mut p = Pairing::default();
    // The interfaces of this section.
    let mut interfaces: Vec<Interface> = Vec::new();
    let truncated = |offset, what| TraceReadError::Truncated {
        format: PCAPNG,
        offset,
        what,
    };
    while at < b.len() {
        if b.len() - at < 12 {
            return Err(truncated(at, "a block shorter than 12 bytes"));
        }
        let kind = e.u32(b, at);
        if kind == 0x0A0D_0D0A {
            // The section header sets the byte order of what follows.
            if b.len() - at < 28 {
                return Err(truncated(at, "a section header shorter than 28 bytes"));
            }
            let magic = u32::from_le_bytes([b[at + 8], b[at + 9], b[at + 10], b[at + 11]]);
            e = match magic {
                0x1A2B_3C4D => Endian(false),
                0x4D3C_2B1A => Endian(true),
                _ => return Err(TraceReadError::BadByteOrder { offset: at, magic }),
            };
            interfaces.clear();
        }
        let len = e.u32(b, at + 4) as usize;
        if len > MAX_BLOCK_BYTES {
            return Err(TraceReadError::BlockTooLarge {
                format: PCAPNG,
                offset: at,
                len,
            });
        }
        if len < 12 || !len.is_multiple_of(4) {
            return Err(TraceReadError::BadBlockLength { offset: at, len });
        }
        if b.len() - at < len {
            return Err(truncated(at, "a block longer than the rest of the file"));
        }
        let body = &b[at + 8..at + len - 4];
        match e.u32(b, at) {
            1 => {
                if body.len() < 8 {
                    return Err(truncated(
                        at,
                        "an interface description shorter than 8 bytes",
                    ));
                }
                let linktype = u32::from(e.u16(body, 0));
                if let Some(header) = UsbHeader::of(linktype) {
                    interfaces.push(Interface::Usb(header));
                } else if linktype == LINKTYPE_ISO_14443 {
                    let name = if_name(e, &body[8..]).unwrap_or_default();
                    p.links.push(Link::named(&name));
                    interfaces.push(Interface::Iso14443(p.links.len() - 1));
                } else {
                    return Err(TraceReadError::LinkType {
                        format: PCAPNG,
                        offset: at,
                        linktype,
                    });
                }
            }
            6 => {
                if body.len() < 20 {
                    return Err(truncated(at, "an enhanced packet shorter than 20 bytes"));
                }
                let interface = e.u32(body, 0);
                let captured = e.u32(body, 12) as usize;
                if captured > body.len() - 20 {
                    return Err(truncated(
                        at,
                        "an enhanced packet whose captured length passes its block",
                    ));
                }
                let Some(link) = interfaces.get(interface as usize).copied() else {
                    return Err(TraceReadError::NoInterface {
                        offset: at,
                        interface,
                    });
                };
                p.any(link, e, &body[20..20 + captured], PCAPNG, at)?;
            }
            3 => {
                if body.len() < 4 {
                    return Err(truncated(at, "a simple packet shorter than 4 bytes"));
                }
                let Some(link) = interfaces.first().copied() else {
                    return Err(TraceReadError::NoInterface {
                        offset: at,
                        interface: 0,
                    });
                };
                let orig = e.u32(body, 0) as usize;
                let data = &body[4..];
                p.any(link, e, &data[..orig.min(data.len())], PCAPNG, at)?;
            }
            _ => {}
        }
        at += len;
    }
    Ok(p.finish())
}

/// The `if_name` option (code 2) among an interface description's options.
fn if_name(e: Endian, mut options: &[u8]) -> Option<String> {
    while options.len() >= 4 {
        let code = e.u16(options, 0);
        let len = usize::from(e.u16(options, 2));
        let padded = len.div_ceil(4) * 4;
        let value = options.get(4..4 + len)?;
        if code == 0 {
            return None;
        }
        if code == 2 {
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        options = options.get(4 + padded..)?;
    }
    None
}

fn pcap(b: &[u8]) -> Result<Vec<RecordedPair>, TraceReadError> {
    let truncated = |offset, what| TraceReadError::Truncated {
        format: PCAP,
        offset,
        what,
    };
    if b.len() < 24 {
        return Err(truncated(0, "a file header shorter than 24 bytes"));
    }
    let e = Endian(matches!(b[..4], [0xA1, 0xB2, ..]));
    // The link type is the low 16 bits; the upper ones may carry FCS information.
    let linktype = e.u32(b, 20) & 0xFFFF;
    let mut p = Pairing::default();
    let link = if let Some(header) = UsbHeader::of(linktype) {
        Interface::Usb(header)
    } else if linktype == LINKTYPE_ISO_14443 {
        p.links.push(Link::named("card"));
        Interface::Iso14443(0)
    } else {
        return Err(TraceReadError::LinkType {
            format: PCAP,
            offset: 20,
            linktype,
        });
    };
    let mut at = 24;
    while at < b.len() {
        if b.len() - at < 16 {
            return Err(truncated(at, "a record header shorter than 16 bytes"));
        }
        let captured = e.u32(b, at + 8) as usize;
        if captured > MAX_BLOCK_BYTES {
            return Err(TraceReadError::BlockTooLarge {
                format: PCAP,
                offset: at,
                len: captured,
            });
        }
        if b.len() - at - 16 < captured {
            return Err(truncated(at, "a record longer than the rest of the file"));
        }
        p.any(link, e, &b[at + 16..at + 16 + captured], PCAP, at)?;
        at += 16 + captured;
    }
    Ok(p.finish())
}

/// Hex where `**` is a masked byte.
fn masked_hex(text: &str) -> Option<(Vec<u8>, Vec<bool>)> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(2) {
        return None;
    }
    let mut bytes = Vec::with_capacity(t.len() / 2);
    let mut masked = Vec::with_capacity(t.len() / 2);
    for pair in t.chunks(2) {
        if pair == b"**" {
            bytes.push(MASK_BYTE);
            masked.push(true);
        } else {
            let s = std::str::from_utf8(pair).ok()?;
            bytes.push(u8::from_str_radix(s, 16).ok()?);
            masked.push(false);
        }
    }
    Some((bytes, masked))
}

fn json_lines(b: &[u8]) -> Result<Vec<RecordedPair>, TraceReadError> {
    let mut out = Vec::new();
    for (i, line) in b.split(|c| *c == b'\n').enumerate() {
        let n = i + 1;
        let bad = |problem: String| TraceReadError::Json { line: n, problem };
        if line.len() > MAX_BLOCK_BYTES {
            return Err(bad(format!(
                "{} bytes, more than the {MAX_BLOCK_BYTES} read",
                line.len()
            )));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        let text = |key: &str| {
            v.get(key)
                .and_then(|x| x.as_str())
                .ok_or_else(|| bad(format!("no \"{key}\" string")))
        };
        let hex = |key: &str| {
            let t = text(key)?;
            masked_hex(t)
                .ok_or_else(|| bad(format!("\"{key}\" is not hex (with ** for masked bytes)")))
        };
        let (command, command_masked) = hex("command")?;
        let (mut response, mut response_masked) = hex("response")?;
        let (sw, _) = hex("sw")?;
        if sw.len() != 2 {
            return Err(bad("\"sw\" is not 4 hex digits".into()));
        }
        response.extend_from_slice(&sw);
        response_masked.extend([false, false]);
        out.push(RecordedPair {
            role: text("role")?.to_string(),
            reader: v
                .get("reader")
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string(),
            command,
            command_masked,
            response,
            response_masked,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Exchange, JsonSink, PcapngSink, Secrecy, TraceSink};
    use proptest::prelude::*;
    use std::time::{Duration, SystemTime};

    fn exchanges() -> Vec<Exchange> {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut out = vec![
            Exchange::new(
                "card",
                "Virtual PCD 00 00",
                &[0, 0xB2, 1, 0x2C, 0],
                &[0x02, 0x01, 0x33, 0x90, 0x00],
                Secrecy::PUBLIC,
                at,
                Duration::from_micros(3),
            ),
            Exchange::new(
                "card",
                "Virtual PCD 00 00",
                &[0, 0x20, 0, 0, 3, 0x12, 0x34, 0x56],
                &[0x63, 0xC2],
                Secrecy::PUBLIC,
                at,
                Duration::from_micros(3),
            ),
        ];
        out.insert(
            1,
            Exchange::new(
                "psam",
                "Virtual PCD 00 01",
                &[0, 0xB0, 0x96, 0, 6],
                &[0x11, 0x01, 0, 0, 0, 1, 0x90, 0],
                Secrecy::PUBLIC,
                at,
                Duration::from_micros(3),
            ),
        );
        out
    }

    fn pcapng_bytes() -> Vec<u8> {
        let mut sink = PcapngSink::new(Vec::new()).unwrap();
        for e in exchanges() {
            sink.record(&e);
        }
        sink.into_inner()
    }

    #[test]
    fn sscard_pcapng_and_json_lines_read_back_alike() {
        let (format, pairs) = parse_trace(&pcapng_bytes()).unwrap();
        assert_eq!(format, TraceFormat::Pcapng);
        let summary: Vec<(String, String, String, String)> = pairs
            .iter()
            .map(|p| {
                (
                    p.role.clone(),
                    p.reader.clone(),
                    sscard_core::hexfmt::to_hex(&p.command),
                    sscard_core::hexfmt::to_hex(&p.response),
                )
            })
            .collect();
        let s = |a: &str, b: &str, c: &str, d: &str| {
            (a.to_string(), b.to_string(), c.to_string(), d.to_string())
        };
        assert_eq!(
            summary,
            [
                s("card", "Virtual PCD 00 00", "00B2012C00", "0201339000"),
                s(
                    "psam",
                    "Virtual PCD 00 01",
                    "00B0960006",
                    "1101000000019000"
                ),
                // The pcapng holds the PIN masked with `*`.
                s("card", "Virtual PCD 00 00", "00200000032A2A2A", "63C2"),
            ]
        );
        let mut json = Vec::new();
        let mut sink = JsonSink::new(&mut json);
        for e in exchanges() {
            sink.record(&e);
        }
        let (format, from_json) = parse_trace(&json).unwrap();
        assert_eq!(format, TraceFormat::JsonLines);
        assert_eq!(from_json.len(), 3);
        for (a, b) in pairs.iter().zip(&from_json) {
            assert_eq!(
                (&a.role, &a.reader, &a.command, &a.response),
                (&b.role, &b.reader, &b.command, &b.response)
            );
        }
        assert_eq!(
            from_json[2].command_masked,
            [false, false, false, false, false, true, true, true]
        );
        // The pcapng's `*` ranges are the same masks.
        for (a, b) in pairs.iter().zip(&from_json) {
            assert_eq!(
                (&a.command_masked, &a.response_masked),
                (&b.command_masked, &b.response_masked)
            );
        }
        assert_eq!(
            response_masks(&[0x2A, 0x2A, 0x90, 0x00]),
            [true, true, false, false]
        );
        assert_eq!(response_masks(&[0x2A, 0x01, 0x90, 0x00]), [false; 4]);
        assert_eq!(
            command_masks(&[0, 0x20, 0, 0, 0x2A, 0x2A]),
            [false, false, false, false, true, true]
        );
    }

    /// A classic pcap, little-endian, LINKTYPE_ISO_14443, frames with CRC (`FE`/`FF`), a CID
    /// byte, a chained command, an R-block and field events between.
    #[test]
    fn foreign_classic_pcap_with_crc_cid_and_chaining() {
        let mut b = Vec::new();
        b.extend(0xA1B2_C3D4u32.to_le_bytes());
        b.extend(2u16.to_le_bytes());
        b.extend(4u16.to_le_bytes());
        b.extend([0; 8]);
        b.extend(65535u32.to_le_bytes());
        b.extend(264u32.to_le_bytes());
        let mut record = |event: u8, frame: &[u8]| {
            let mut data = vec![0, event];
            data.extend((frame.len() as u16).to_be_bytes());
            data.extend(frame);
            b.extend([0; 8]);
            b.extend((data.len() as u32).to_le_bytes());
            b.extend((data.len() as u32).to_le_bytes());
            b.extend(data);
        };
        record(0xFC, &[]);
        // I-block with chaining and CID 01: 00 A4 04 00; then the rest; CRC bytes at the end.
        record(0xFE, &[0x1A, 0x01, 0x00, 0xA4, 0xAA, 0xBB]);
        record(0xFF, &[0xA2, 0x01, 0xCC, 0xDD]);
        record(0xFE, &[0x0B, 0x01, 0x04, 0x00, 0xAA, 0xBB]);
        record(0xFF, &[0x0B, 0x01, 0x90, 0x00, 0xCC, 0xDD]);
        let (format, pairs) = parse_trace(&b).unwrap();
        assert_eq!(format, TraceFormat::Pcap);
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].command, [0x00, 0xA4, 0x04, 0x00]);
        assert_eq!(pairs[0].response, [0x90, 0x00]);
        assert_eq!(
            (pairs[0].role.as_str(), pairs[0].reader.as_str()),
            ("card", "")
        );
    }

    #[test]
    fn malformed_traces_give_typed_errors_naming_the_offset() {
        let good = pcapng_bytes();
        let e = parse_trace(&good[..good.len() - 3]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "pcapng at offset {}: a block longer than the rest of the file",
                good.len() - 40
            )
        );
        let mut big = good.clone();
        big[4..8].copy_from_slice(&(64u32 << 20).to_le_bytes());
        assert_eq!(
            parse_trace(&big).unwrap_err().to_string(),
            "pcapng at offset 0: a block of 67108864 bytes, more than the 1048576 read"
        );
        assert!(matches!(
            parse_trace(b"GIF89a"),
            Err(TraceReadError::UnknownFormat { start }) if start == "474946383961"
        ));
        assert!(matches!(parse_trace(b""), Err(TraceReadError::Empty)));
        let e = parse_trace(b"{\"role\":\"card\"}\n").unwrap_err();
        assert_eq!(e.to_string(), "JSON trace line 1: no \"command\" string");
        assert_eq!(e.return_code(), -23);
        assert_eq!(e.exit_class(), ExitClass::BadInput);
        let mut eth = good.clone();
        eth[28 + 8..28 + 10].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(
            parse_trace(&eth).unwrap_err().to_string(),
            "pcapng at offset 28: link type 1; sscard reads ISO 7816 APDUs in ISO 14443 frames (link type 264) and in USB CCID (189, 220: Linux usbmon; 249: USBPcap)"
        );
    }

    proptest! {
        #[test]
        fn garbage_and_truncations_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..400) {
            let _ = parse_trace(&bytes);
            let mut good = pcapng_bytes();
            let n = cut.min(good.len());
            let _ = parse_trace(&good[..n]);
            let len = good.len();
            for (i, b) in bytes.iter().enumerate().take(len) {
                good[(i * 7) % len] ^= b;
            }
            let _ = parse_trace(&good);
            let mut pcap = vec![0xD4, 0xC3, 0xB2, 0xA1];
            pcap.extend(&bytes);
            let _ = parse_trace(&pcap);
            let mut json = b"{".to_vec();
            json.extend(&bytes);
            let _ = parse_trace(&json);
        }

        #[test]
        fn every_truncation_of_a_trace_is_an_error_or_a_prefix(cut in 0usize..300) {
            let good = pcapng_bytes();
            let n = cut.min(good.len());
            match parse_trace(&good[..n]) {
                Ok((_, pairs)) => prop_assert!(pairs.len() <= 3),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
