//! APDUs in USB CCID traffic, as Wireshark or tcpdump capture a contact reader's exchanges:
//! Linux usbmon (LINKTYPE_USB_LINUX, 189, a 48-byte header; LINKTYPE_USB_LINUX_MMAPPED, 220,
//! a 64-byte header; both in the capturing host's byte order, which is the pcap file's or the
//! pcapng section's) and Windows USBPcap (LINKTYPE_USBPCAP, 249, little-endian).
//!
//! Bulk transfers carry CCID messages: a `PC_to_RDR_XfrBlock` (`6F`) is a command APDU and the
//! `RDR_to_PC_DataBlock` (`80`) of the same device, slot and `bSeq` its response. The data is
//! on the submission of a transfer to the reader (usbmon `S`, USBPcap going down) and on the
//! completion of one from it (usbmon `C`, USBPcap coming back) with a success status (usbmon
//! also `-EREMOTEIO`, a short packet that ends a transfer libusb split).
//! Extended APDUs chained over several messages (`wLevelParameter` / `bChainParameter` 1, 3, 2,
//! 10) are joined. A power-on answer (the ATR), slot status, parameters and any other message
//! are skipped, and so is every other transfer (control, interrupt, isochronous, another
//! device's bulk traffic, a message the capture cut): a capture of a whole bus reads.
//!
//! A reader exchanging TPDUs carries T=1 blocks ([`super::t1`]): a slot whose message is a
//! block with a good LRC and no APDU, or a supervisory block, exchanges blocks from then on
//! (until the next power-on); the APDUs are taken out of its I-blocks (chains joined), and its
//! receive-ready and supervisory blocks (IFS, WTX) skipped. A message that is neither an APDU
//! nor such a block is kept as it is: the decoder's malformed line, never a failure here.

use super::read::MAX_BLOCK_BYTES;
use super::read::{command_masks, response_masks, Endian, RecordedPair, TraceReadError};
use super::t1;
use std::collections::BTreeMap;

/// LINKTYPE_USB_LINUX: usbmon's first 48 header bytes, then the data.
pub const LINKTYPE_USB_LINUX: u32 = 189;
/// LINKTYPE_USB_LINUX_MMAPPED: usbmon's whole 64-byte header, then the data.
pub const LINKTYPE_USB_LINUX_MMAPPED: u32 = 220;
/// LINKTYPE_USBPCAP: Windows USBPcap's header (its own length first), then the data.
pub const LINKTYPE_USBPCAP: u32 = 249;

/// Which USB capture header precedes a packet's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum UsbHeader {
    Linux,
    LinuxMmapped,
    UsbPcap,
}

impl UsbHeader {
    /// The header of a link type, if it is a USB one sscard reads.
    pub(super) fn of(linktype: u32) -> Option<Self> {
        match linktype {
            LINKTYPE_USB_LINUX => Some(Self::Linux),
            LINKTYPE_USB_LINUX_MMAPPED => Some(Self::LinuxMmapped),
            LINKTYPE_USBPCAP => Some(Self::UsbPcap),
            _ => None,
        }
    }
}

/// A bulk transfer's data that carries it: to the reader (a submission) or from it (a
/// successful completion).
struct Bulk<'a> {
    bus: u16,
    device: u16,
    to_reader: bool,
    data: &'a [u8],
}

const XFR_BLOCK: u8 = 0x6F;
const DATA_BLOCK: u8 = 0x80;
const ICC_POWER_ON: u8 = 0x62;
const ICC_POWER_OFF: u8 = 0x63;

/// One slot of one reader: the command being joined, the command waiting for its response,
/// the response being joined, the `bSeq` of the last `XfrBlock`, and whether the reader
/// exchanges T=1 blocks with this card.
#[derive(Default)]
struct Slot {
    chain: Vec<u8>,
    command: Option<Vec<u8>>,
    response: Vec<u8>,
    seq: Option<u8>,
    t1: bool,
}

impl Slot {
    /// A whole command: the one still waiting is left unanswered.
    fn command(&mut self, key: (u16, u16, u8), whole: Vec<u8>, out: &mut Vec<RecordedPair>) {
        self.response.clear();
        if let Some(unanswered) = self.command.replace(whole) {
            out.push(pair(key, unanswered, Vec::new()));
        }
    }

    /// A T=1 block sent to the card, if the slot exchanges blocks: a message that is a block
    /// and no APDU (or a supervisory block, which opens a T=1 session) sets the slot so.
    fn t1_block<'a>(&mut self, data: &'a [u8]) -> Option<t1::Block<'a>> {
        let b = t1::block(data)?;
        if !self.t1 {
            let apdu = sscard_core::apdu::Command::parse(data).is_ok();
            if apdu && b != t1::Block::Supervisory {
                return None;
            }
            self.t1 = true;
        }
        Some(b)
    }
}

/// Pairs the CCID exchanges of every reader (bus, device, slot) of a capture.
#[derive(Default)]
pub(super) struct Ccid {
    slots: BTreeMap<(u16, u16, u8), Slot>,
}

fn reader_name((bus, device, slot): (u16, u16, u8)) -> String {
    format!("USB bus {bus} device {device} slot {slot}")
}

fn pair(key: (u16, u16, u8), command: Vec<u8>, response: Vec<u8>) -> RecordedPair {
    RecordedPair {
        role: "card".to_string(),
        reader: reader_name(key),
        command_masked: command_masks(&command),
        command,
        response_masked: if response.is_empty() {
            Vec::new()
        } else {
            response_masks(&response)
        },
        response,
    }
}

impl Ccid {
    /// One captured USB packet (its capture header and data).
    pub(super) fn packet(
        &mut self,
        header: UsbHeader,
        e: Endian,
        packet: &[u8],
        format: &'static str,
        offset: usize,
        out: &mut Vec<RecordedPair>,
    ) -> Result<(), TraceReadError> {
        let bulk = match header {
            UsbHeader::Linux => usbmon(e, packet, 48, format, offset)?,
            UsbHeader::LinuxMmapped => usbmon(e, packet, 64, format, offset)?,
            UsbHeader::UsbPcap => usbpcap(packet, format, offset)?,
        };
        let Some(bulk) = bulk else {
            return Ok(());
        };
        self.message(bulk, format, offset, out)
    }

    fn message(
        &mut self,
        bulk: Bulk<'_>,
        format: &'static str,
        offset: usize,
        out: &mut Vec<RecordedPair>,
    ) -> Result<(), TraceReadError> {
        let m = bulk.data;
        let [kind, l0, l1, l2, l3, slot, seq, p7, p8, p9, rest @ ..] = m else {
            return Ok(());
        };
        let len = u32::from_le_bytes([*l0, *l1, *l2, *l3]) as usize;
        let Some(data) = rest.get(..len) else {
            // Not CCID, or a message the capture cut: skipped.
            return Ok(());
        };
        let key = (bulk.bus, bulk.device, *slot);
        match (bulk.to_reader, *kind) {
            (true, XFR_BLOCK) => {
                let s = self.slots.entry(key).or_default();
                s.seq = Some(*seq);
                let level = u16::from_le_bytes([*p8, *p9]);
                if level == 0 {
                    if let Some(block) = s.t1_block(data) {
                        // Receive-ready and supervisory blocks carry no command.
                        if let t1::Block::Information { data, more } = block {
                            if s.chain.len() + data.len() > MAX_BLOCK_BYTES {
                                return Err(TraceReadError::BlockTooLarge {
                                    format,
                                    offset,
                                    len: s.chain.len() + data.len(),
                                });
                            }
                            s.chain.extend_from_slice(data);
                            if !more {
                                let whole = std::mem::take(&mut s.chain);
                                s.command(key, whole, out);
                            }
                        }
                        return Ok(());
                    }
                }
                match level {
                    // The whole command, or the first part of a chained one.
                    0x0000 | 0x0001 => s.chain = data.to_vec(),
                    // A further part.
                    0x0002 | 0x0003 => {
                        if s.chain.len() + data.len() > MAX_BLOCK_BYTES {
                            return Err(TraceReadError::BlockTooLarge {
                                format,
                                offset,
                                len: s.chain.len() + data.len(),
                            });
                        }
                        s.chain.extend_from_slice(data);
                    }
                    // An empty message asking for the response's next part.
                    _ => return Ok(()),
                }
                if level == 0x0000 || level == 0x0002 {
                    let whole = std::mem::take(&mut s.chain);
                    s.command(key, whole, out);
                }
            }
            (true, ICC_POWER_ON | ICC_POWER_OFF) => {
                // The card is reset or off: a command still waiting is left unanswered.
                if let Some(s) = self.slots.get_mut(&key) {
                    if let Some(unanswered) = s.command.take() {
                        out.push(pair(key, unanswered, Vec::new()));
                    }
                    *s = Slot::default();
                }
            }
            (false, DATA_BLOCK) => {
                let Some(s) = self.slots.get_mut(&key) else {
                    return Ok(());
                };
                if s.seq != Some(*seq) || s.command.is_none() {
                    // The ATR of a power-on, or an answer whose command the capture missed.
                    return Ok(());
                }
                match p7 >> 6 {
                    // The command failed (the card is mute, or was removed): no status word.
                    1 => {
                        if let Some(command) = s.command.take() {
                            s.response.clear();
                            out.push(pair(key, command, Vec::new()));
                        }
                        return Ok(());
                    }
                    // A time extension: the answer follows.
                    2 | 3 => return Ok(()),
                    _ => {}
                }
                let mut data = data;
                let mut p9 = *p9;
                if s.t1 {
                    match t1::block(data) {
                        Some(t1::Block::Information { data: inf, more }) => {
                            data = inf;
                            p9 = if more { 0x03 } else { 0x02 };
                        }
                        // An acknowledgement of a chained command's block, or a WTX request.
                        Some(_) => return Ok(()),
                        // Not a block: the answer as it is.
                        None => {}
                    }
                }
                if s.response.len() + data.len() > MAX_BLOCK_BYTES {
                    return Err(TraceReadError::BlockTooLarge {
                        format,
                        offset,
                        len: s.response.len() + data.len(),
                    });
                }
                match p9 {
                    0x00 | 0x02 => {
                        s.response.extend_from_slice(data);
                        let response = std::mem::take(&mut s.response);
                        if let Some(command) = s.command.take() {
                            out.push(pair(key, command, response));
                        }
                    }
                    0x01 => s.response = data.to_vec(),
                    0x03 => s.response.extend_from_slice(data),
                    // 10: an empty answer to a chained command's part.
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Commands the capture ends before answering, with no response.
    pub(super) fn finish(self, out: &mut Vec<RecordedPair>) {
        for (key, slot) in self.slots {
            if let Some(command) = slot.command {
                out.push(pair(key, command, Vec::new()));
            }
        }
    }
}

/// The bulk data of a usbmon packet (`header` bytes of header in the host's order `e`).
fn usbmon<'a>(
    e: Endian,
    p: &'a [u8],
    header: usize,
    format: &'static str,
    offset: usize,
) -> Result<Option<Bulk<'a>>, TraceReadError> {
    if p.len() < header {
        return Err(TraceReadError::Truncated {
            format,
            offset,
            what: if header == 48 {
                "a USB packet shorter than its 48-byte usbmon header"
            } else {
                "a USB packet shorter than its 64-byte usbmon header"
            },
        });
    }
    let (event, transfer, endpoint, device) = (p[8], p[9], p[10], p[11]);
    let bus = e.u16(p, 12);
    let data_present = p[15] == 0;
    let status = e.u32(p, 28) as i32;
    let captured = e.u32(p, 36) as usize;
    if transfer != 3 || !data_present || captured == 0 {
        return Ok(None);
    }
    let to_reader = endpoint & 0x80 == 0;
    let carries = match (to_reader, event) {
        (true, b'S') => true,
        // -EREMOTEIO: a short packet ended a transfer that libusb split into several URBs
        // (URB_SHORT_NOT_OK); its data is whole.
        (false, b'C') => status == 0 || status == -121,
        _ => false,
    };
    if !carries {
        return Ok(None);
    }
    let data = &p[header..];
    Ok(Some(Bulk {
        bus,
        device: u16::from(device),
        to_reader,
        data: &data[..captured.min(data.len())],
    }))
}

/// The bulk data of a USBPcap packet (its header is little-endian and says its own length).
fn usbpcap<'a>(
    p: &'a [u8],
    format: &'static str,
    offset: usize,
) -> Result<Option<Bulk<'a>>, TraceReadError> {
    let truncated = |what| TraceReadError::Truncated {
        format,
        offset,
        what,
    };
    if p.len() < 27 {
        return Err(truncated(
            "a USB packet shorter than the 27-byte USBPcap header",
        ));
    }
    let e = Endian(false);
    let header = usize::from(e.u16(p, 0));
    if header < 27 || header > p.len() {
        return Err(truncated(
            "a USBPcap header length below 27 or past the packet",
        ));
    }
    let status = e.u32(p, 10);
    let completion = p[16] & 1 != 0;
    let bus = e.u16(p, 17);
    let device = e.u16(p, 19);
    let endpoint = p[21];
    let transfer = p[22];
    let length = e.u32(p, 23) as usize;
    let to_reader = endpoint & 0x80 == 0;
    let carries = match (to_reader, completion) {
        (true, false) => true,
        (false, true) => status == 0,
        _ => false,
    };
    if transfer != 3 || !carries || length == 0 {
        return Ok(None);
    }
    let data = &p[header..];
    Ok(Some(Bulk {
        bus,
        device,
        to_reader,
        data: &data[..length.min(data.len())],
    }))
}

#[cfg(test)]
mod tests {
    use crate::trace::read::{parse_trace, TraceFormat};
    use proptest::prelude::*;
    use sscard_core::hexfmt::{parse_hex, to_hex};

    /// A usbmon packet: `header` 48 or 64 bytes in big- or little-endian order, then `data`.
    #[allow(clippy::too_many_arguments)]
    fn usbmon_packet(
        be: bool,
        header: usize,
        event: u8,
        transfer: u8,
        endpoint: u8,
        device: u8,
        status: i32,
        data: &[u8],
    ) -> Vec<u8> {
        let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut p = Vec::new();
        p.extend([0x11; 8]); // URB id
        p.extend([event, transfer, endpoint, device]);
        p.extend(u16b(3)); // bus
        p.push(b'-'); // no setup packet
        p.push(if data.is_empty() { b'<' } else { 0 });
        p.extend([0; 12]); // timestamp
        p.extend(u32b(status as u32));
        p.extend(u32b(data.len() as u32 + 5)); // the URB's buffer, larger than the data
        p.extend(u32b(data.len() as u32));
        p.extend([0; 8]); // setup
        p.resize(header, 0);
        p.extend(data);
        p
    }

    /// A CCID message.
    fn ccid(kind: u8, slot: u8, seq: u8, p: [u8; 3], data: &str) -> Vec<u8> {
        let data = parse_hex(data).unwrap();
        let mut m = vec![kind];
        m.extend((data.len() as u32).to_le_bytes());
        m.extend([slot, seq]);
        m.extend(p);
        m.extend(data);
        m
    }

    fn classic_pcap(be: bool, linktype: u32, packets: &[Vec<u8>]) -> Vec<u8> {
        let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut b = Vec::new();
        b.extend(u32b(0xA1B2_C3D4));
        b.extend(if be { [0, 2, 0, 4] } else { [2, 0, 4, 0] });
        b.extend([0; 8]);
        b.extend(u32b(262_144));
        b.extend(u32b(linktype));
        for p in packets {
            b.extend([0; 8]);
            b.extend(u32b(p.len() as u32));
            b.extend(u32b(p.len() as u32));
            b.extend(p);
        }
        b
    }

    /// A reader's session on bulk endpoints 02 (out) and 82 (in) of device 5: power-on and
    /// ATR, a SELECT with a time extension, a slot status, another device's bulk traffic, a
    /// control transfer, a VERIFY, and a command the capture ends before answering.
    fn session(be: bool, header: usize) -> Vec<Vec<u8>> {
        let out = |m: Vec<u8>| usbmon_packet(be, header, b'S', 3, 0x02, 5, -115, &m);
        let out_done = usbmon_packet(be, header, b'C', 3, 0x02, 5, 0, &[]);
        let in_req = usbmon_packet(be, header, b'S', 3, 0x82, 5, -115, &[]);
        let inp = |m: Vec<u8>| usbmon_packet(be, header, b'C', 3, 0x82, 5, 0, &m);
        vec![
            out(ccid(0x62, 0, 0, [1, 0, 0], "")),
            in_req.clone(),
            inp(ccid(0x80, 0, 0, [0, 0, 0], "3B6800000073C84013009000")),
            out(ccid(0x6F, 0, 1, [4, 0, 0], "00A4040000")),
            out_done.clone(),
            usbmon_packet(be, header, b'C', 2, 0x80, 5, 0, &[0x12, 1, 0, 2]),
            inp(ccid(0x80, 0, 1, [0x80, 1, 0], "")),
            // Another device's bulk data that looks like a DataBlock of the same slot and seq.
            usbmon_packet(
                be,
                header,
                b'C',
                3,
                0x81,
                7,
                0,
                &ccid(0x80, 0, 1, [0, 0, 0], "6A82"),
            ),
            inp(ccid(0x80, 0, 1, [0, 0, 0], "6F0A840853535345")),
            out(ccid(0x65, 0, 2, [0, 0, 0], "")),
            inp(ccid(0x81, 0, 2, [0, 0, 0], "")),
            out(ccid(0x6F, 0, 3, [4, 0, 0], "0020000003123456")),
            // A failed completion carries no answer.
            usbmon_packet(
                be,
                header,
                b'C',
                3,
                0x82,
                5,
                -71,
                &ccid(0x80, 0, 3, [0, 0, 0], "9000"),
            ),
            usbmon_packet(
                be,
                header,
                b'C',
                3,
                0x82,
                5,
                -121,
                &ccid(0x80, 0, 3, [0, 0, 0], "63C2"),
            ),
            out(ccid(0x6F, 0, 4, [4, 0, 0], "00B2012C00")),
        ]
    }

    fn summary(b: &[u8]) -> Vec<(String, String, String)> {
        let (format, pairs) = parse_trace(b).unwrap();
        assert_eq!(format, TraceFormat::Pcap);
        pairs
            .iter()
            .map(|p| (p.reader.clone(), to_hex(&p.command), to_hex(&p.response)))
            .collect()
    }

    fn expected() -> Vec<(String, String, String)> {
        let r = "USB bus 3 device 5 slot 0".to_string();
        vec![
            (r.clone(), "00A4040000".into(), "6F0A840853535345".into()),
            (r.clone(), "0020000003123456".into(), "63C2".into()),
            (r, "00B2012C00".into(), String::new()),
        ]
    }

    #[test]
    fn usbmon_in_either_byte_order_and_header_size() {
        for be in [false, true] {
            assert_eq!(
                summary(&classic_pcap(be, 189, &session(be, 48))),
                expected()
            );
            assert_eq!(
                summary(&classic_pcap(be, 220, &session(be, 64))),
                expected()
            );
        }
    }

    #[test]
    fn chained_extended_apdus_and_tpdus() {
        let out = |m: Vec<u8>| usbmon_packet(false, 48, b'S', 3, 0x01, 2, -115, &m);
        let inp = |m: Vec<u8>| usbmon_packet(false, 48, b'C', 3, 0x82, 2, 0, &m);
        let b = classic_pcap(
            false,
            189,
            &[
                // A command in two parts, the response in two.
                out(ccid(0x6F, 1, 7, [0, 1, 0], "00D6000000")),
                inp(ccid(0x80, 1, 7, [0, 0, 0x10], "")),
                out(ccid(0x6F, 1, 8, [0, 2, 0], "0003AABBCC")),
                inp(ccid(0x80, 1, 8, [0, 0, 1], "0102")),
                out(ccid(0x6F, 1, 9, [0, 0x10, 0], "")),
                inp(ccid(0x80, 1, 9, [0, 0, 3], "03")),
                out(ccid(0x6F, 1, 10, [0, 0x10, 0], "")),
                inp(ccid(0x80, 1, 10, [0, 0, 2], "9000")),
                // Neither an APDU nor a whole T=1 block (its LEN says 5, none follow): kept as
                // bytes; the decoder calls it malformed.
                out(ccid(0x6F, 1, 11, [0, 0, 0], "000005")),
                inp(ccid(0x80, 1, 11, [0, 0, 0], "0000029000")),
                // A mute card: the command failed, no status word.
                out(ccid(0x6F, 1, 12, [0, 0, 0], "0084000008")),
                inp(ccid(0x80, 1, 12, [0x41, 0xFE, 0], "")),
            ],
        );
        let (_, pairs) = parse_trace(&b).unwrap();
        let got: Vec<(String, String)> = pairs
            .iter()
            .map(|p| (to_hex(&p.command), to_hex(&p.response)))
            .collect();
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            got,
            [
                s("00D60000000003AABBCC", "0102039000"),
                s("000005", "0000029000"),
                s("0084000008", ""),
            ]
        );
        assert_eq!(pairs[0].reader, "USB bus 3 device 2 slot 1");
    }

    /// A T=1 block (NAD 00) with its LRC.
    fn block(pcb: u8, inf: &str) -> String {
        let inf = parse_hex(inf).unwrap();
        let mut b = vec![0, pcb, inf.len() as u8];
        b.extend(inf);
        b.push(b.iter().fold(0, |a, x| a ^ x));
        to_hex(&b)
    }

    /// A TPDU-level slot: an IFS exchange opens it; a command chained over two I-blocks (the
    /// card acknowledging the first with an R-block), a WTX between, the answer in one block.
    /// A power-on ends it: an APDU that happens to be a block with a good LRC is an APDU again.
    fn t1_session() -> Vec<Vec<u8>> {
        let out = |m: Vec<u8>| usbmon_packet(false, 48, b'S', 3, 0x02, 5, -115, &m);
        let inp = |m: Vec<u8>| usbmon_packet(false, 48, b'C', 3, 0x82, 5, 0, &m);
        let x = |seq: u8, c: &str, r: &str| {
            [
                out(ccid(0x6F, 0, seq, [4, 0, 0], c)),
                inp(ccid(0x80, 0, seq, [0, 0, 0], r)),
            ]
        };
        let mut p = Vec::new();
        p.extend(x(1, &block(0xC1, "FE"), &block(0xE1, "FE")));
        p.extend(x(2, &block(0x20, "00D6000003"), &block(0x80, "")));
        p.extend(x(3, &block(0x40, "AABBCC"), &block(0xC3, "02")));
        p.extend(x(4, &block(0xE3, "02"), &block(0x00, "9000")));
        p.push(out(ccid(0x62, 0, 5, [0, 0, 0], "")));
        // 00 00 01 00 01: LEN 1, one byte, LRC 00^00^01^00 = 01; but a whole case-2 APDU.
        p.extend(x(6, "0000010001", "9000"));
        p
    }

    #[test]
    fn tpdu_level_slots_give_their_apdus() {
        let (_, pairs) = parse_trace(&classic_pcap(false, 189, &t1_session())).unwrap();
        let got: Vec<(String, String)> = pairs
            .iter()
            .map(|p| (to_hex(&p.command), to_hex(&p.response)))
            .collect();
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            got,
            [s("00D6000003AABBCC", "9000"), s("0000010001", "9000")]
        );
    }

    /// A USBPcap packet: the 27-byte header (little-endian), then `data`.
    fn usbpcap_packet(completion: bool, endpoint: u8, status: u32, data: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend(27u16.to_le_bytes());
        p.extend([0x22; 8]); // IRP id
        p.extend(status.to_le_bytes());
        p.extend(9u16.to_le_bytes()); // URB_FUNCTION_BULK_OR_INTERRUPT_TRANSFER
        p.push(u8::from(completion));
        p.extend(1u16.to_le_bytes()); // bus
        p.extend(4u16.to_le_bytes()); // device
        p.extend([endpoint, 3]);
        p.extend((data.len() as u32).to_le_bytes());
        p.extend(data);
        p
    }

    /// A pcapng (little-endian) of one interface of `linktype`.
    fn pcapng(linktype: u16, packets: &[Vec<u8>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(0x0A0D_0D0Au32.to_le_bytes());
        b.extend(28u32.to_le_bytes());
        b.extend(0x1A2B_3C4Du32.to_le_bytes());
        b.extend([1, 0, 0, 0]);
        b.extend(u64::MAX.to_le_bytes());
        b.extend(28u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend(20u32.to_le_bytes());
        b.extend(linktype.to_le_bytes());
        b.extend([0, 0, 0, 0, 4, 0]);
        b.extend(20u32.to_le_bytes());
        for p in packets {
            let padded = p.len().div_ceil(4) * 4;
            let len = 32 + padded as u32;
            b.extend(6u32.to_le_bytes());
            b.extend(len.to_le_bytes());
            b.extend([0; 12]);
            b.extend((p.len() as u32).to_le_bytes());
            b.extend((p.len() as u32).to_le_bytes());
            b.extend(p);
            b.resize(b.len() + padded - p.len(), 0);
            b.extend(len.to_le_bytes());
        }
        b
    }

    #[test]
    fn usbpcap_and_usbmon_in_pcapng() {
        let b = pcapng(
            249,
            &[
                usbpcap_packet(false, 0x02, 0, &ccid(0x6F, 0, 1, [4, 0, 0], "00B2012C00")),
                usbpcap_packet(true, 0x02, 0, &[]),
                usbpcap_packet(false, 0x82, 0, &[]),
                usbpcap_packet(true, 0x82, 0, &ccid(0x80, 0, 1, [0, 0, 0], "0201339000")),
            ],
        );
        let (format, pairs) = parse_trace(&b).unwrap();
        assert_eq!(format, TraceFormat::Pcapng);
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            (to_hex(&pairs[0].command), to_hex(&pairs[0].response)),
            ("00B2012C00".to_string(), "0201339000".to_string())
        );
        assert_eq!(pairs[0].reader, "USB bus 1 device 4 slot 0");
        let b = pcapng(220, &session(false, 64));
        let (_, pairs) = parse_trace(&b).unwrap();
        assert_eq!(pairs.len(), 3);
    }

    #[test]
    fn cut_usb_headers_give_typed_errors_naming_the_offset() {
        let mut packets = session(false, 48);
        packets.insert(1, vec![0; 20]);
        let b = classic_pcap(false, 189, &packets);
        let first = 24 + 16 + packets[0].len();
        assert_eq!(
            parse_trace(&b).unwrap_err().to_string(),
            format!("pcap at offset {first}: a USB packet shorter than its 48-byte usbmon header")
        );
        let b = classic_pcap(false, 220, &[vec![0; 50]]);
        assert_eq!(
            parse_trace(&b).unwrap_err().to_string(),
            "pcap at offset 24: a USB packet shorter than its 64-byte usbmon header"
        );
        let mut bad = usbpcap_packet(false, 2, 0, &[1, 2, 3]);
        bad[0] = 200;
        let b = classic_pcap(false, 249, &[bad]);
        assert_eq!(
            parse_trace(&b).unwrap_err().to_string(),
            "pcap at offset 24: a USBPcap header length below 27 or past the packet"
        );
        let e = parse_trace(&classic_pcap(false, 1, &[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pcap at offset 20: link type 1; sscard reads ISO 7816 APDUs in ISO 14443 frames (link type 264) and in USB CCID (189, 220: Linux usbmon; 249: USBPcap)"
        );
    }

    proptest! {
        #[test]
        fn garbage_and_truncations_of_usb_captures_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            cut in 0usize..1200,
            linktype in prop::sample::select(vec![189u32, 220, 249]),
        ) {
            for good in [
                classic_pcap(false, 189, &session(false, 48)),
                classic_pcap(false, 189, &t1_session()),
            ] {
                let _ = parse_trace(&good[..cut.min(good.len())]);
                let mut flipped = good.clone();
                let len = flipped.len();
                for (i, b) in bytes.iter().enumerate() {
                    flipped[24 + (i * 13) % (len - 24)] ^= b;
                }
                let _ = parse_trace(&flipped);
            }
            let _ = parse_trace(&classic_pcap(true, linktype, &[bytes.clone(), bytes[..bytes.len() / 2].to_vec()]));
            let ng = pcapng(linktype as u16, std::slice::from_ref(&bytes));
            let _ = parse_trace(&ng[..cut.min(ng.len())]);
        }
    }
}
