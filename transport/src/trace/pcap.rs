//! Traces as pcap files (link type 264, LINKTYPE_ISO_14443), so Wireshark and tshark decode the
//! APDUs: `tshark -r FILE -d iso14443.subdissector,iso7816` (pick ISO 7816 as the payload).
//!
//! Each packet: a 4-byte pseudo-header (version `00`, event `FA` reader→card or `FB`
//! card→reader, big-endian length of what follows), then an ISO 14443-4 I-block (PCB, APDU).

use super::{Exchange, TraceSink};
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

pub const LINKTYPE_ISO_14443: u32 = 264;
const EVENT_TO_CARD: u8 = 0xFA;
const EVENT_FROM_CARD: u8 = 0xFB;

/// Writes exchanges as pcap packets.
pub struct PcapSink<W: Write> {
    out: W,
    block: u8,
}

impl<W: Write> PcapSink<W> {
    /// Writes the pcap global header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xA1B2C3D4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&65_535u32.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ISO_14443.to_le_bytes());
        out.write_all(&h)?;
        Ok(Self { out, block: 0 })
    }

    fn packet(&mut self, at: SystemTime, event: u8, apdu: &[u8]) -> io::Result<()> {
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let payload_len = 1 + apdu.len();
        let mut p = Vec::with_capacity(16 + 4 + payload_len);
        let total = (4 + payload_len) as u32;
        p.extend_from_slice(&(since.as_secs() as u32).to_le_bytes());
        p.extend_from_slice(&since.subsec_micros().to_le_bytes());
        p.extend_from_slice(&total.to_le_bytes());
        p.extend_from_slice(&total.to_le_bytes());
        p.extend_from_slice(&[0x00, event]);
        p.extend_from_slice(&(payload_len as u16).to_be_bytes());
        p.push(0x02 | self.block);
        p.extend_from_slice(apdu);
        self.out.write_all(&p)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> TraceSink for PcapSink<W> {
    fn record(&mut self, e: &Exchange) {
        let _ = self.packet(e.at, EVENT_TO_CARD, &e.command);
        let _ = self.packet(e.at + e.elapsed, EVENT_FROM_CARD, &e.response);
        self.block ^= 1;
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Secrecy;
    use std::time::Duration;

    #[test]
    fn packet_bytes_are_exact() {
        let mut sink = PcapSink::new(Vec::new()).unwrap();
        let at = UNIX_EPOCH + Duration::from_micros(1_000_002);
        sink.record(&Exchange::new(
            &[0, 0xA4, 4, 0, 0],
            &[0x90, 0],
            Secrecy::PUBLIC,
            at,
            Duration::from_micros(5),
        ));
        let b = sink.into_inner();
        assert_eq!(b.len(), 24 + (16 + 4 + 6) + (16 + 4 + 3));
        assert_eq!(&b[20..24], &264u32.to_le_bytes());
        assert_eq!(&b[24..32], &[1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(
            &b[40..50],
            &[0x00, 0xFA, 0x00, 0x06, 0x02, 0, 0xA4, 4, 0, 0]
        );
        assert_eq!(&b[66..73], &[0x00, 0xFB, 0x00, 0x03, 0x02, 0x90, 0x00]);
    }
}
