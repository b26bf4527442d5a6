//! Traces as pcapng files that Wireshark and tshark decode: one interface per card (`card
//! Virtual PCD 00 00`, `psam Virtual PCD 00 01`), link type 264 (LINKTYPE_ISO_14443):
//! `tshark -r FILE -d iso14443.subdissector,iso7816` picks ISO 7816 as the payload.
//!
//! Each packet: a 4-byte pseudo-header (version `00`, event `FA` reader→card or `FB`
//! card→reader, big-endian length of what follows), then an ISO 14443-4 I-block (PCB, APDU).

use super::{Exchange, TraceSink};
use sscard_core::fsutil::create_private;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub const LINKTYPE_ISO_14443: u16 = 264;
const EVENT_TO_CARD: u8 = 0xFA;
const EVENT_FROM_CARD: u8 = 0xFB;

const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 0x0000_0001;
const ENHANCED_PACKET: u32 = 0x0000_0006;
const OPTION_END: u16 = 0;
const OPTION_IF_NAME: u16 = 2;

/// Writes exchanges as pcapng packets, an interface for each card.
pub struct PcapngSink<W: Write + Send> {
    out: W,
    /// Interface names in the order their description blocks were written, and each one's
    /// I-block number.
    interfaces: Vec<(String, u8)>,
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

fn option(code: u16, value: &[u8]) -> Vec<u8> {
    let mut o = Vec::with_capacity(4 + value.len() + 3);
    o.extend_from_slice(&code.to_le_bytes());
    o.extend_from_slice(&(value.len() as u16).to_le_bytes());
    o.extend_from_slice(value);
    o.resize(o.len().div_ceil(4) * 4, 0);
    o
}

impl PcapngSink<BufWriter<File>> {
    /// A pcapng trace file at `path`, created private ([`create_private`]: mode 0600, a
    /// symbolic link at `path` refused), its section header written.
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::new(BufWriter::new(create_private(path)?))
    }
}

impl<W: Write + Send> PcapngSink<W> {
    /// Writes the section header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        out.write_all(&block(SECTION_HEADER, &body))?;
        Ok(Self {
            out,
            interfaces: Vec::new(),
        })
    }

    /// The interface of `name`, described on first use.
    fn interface(&mut self, name: &str) -> io::Result<usize> {
        if let Some(i) = self.interfaces.iter().position(|(n, _)| n == name) {
            return Ok(i);
        }
        let mut body = Vec::new();
        body.extend_from_slice(&LINKTYPE_ISO_14443.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend(option(OPTION_IF_NAME, name.as_bytes()));
        body.extend(option(OPTION_END, &[]));
        self.out.write_all(&block(INTERFACE_DESCRIPTION, &body))?;
        self.interfaces.push((name.to_string(), 0));
        Ok(self.interfaces.len() - 1)
    }

    fn packet(
        &mut self,
        interface: usize,
        at: SystemTime,
        event: u8,
        apdu: &[u8],
    ) -> io::Result<()> {
        let micros = at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as u64;
        let mut data = Vec::with_capacity(5 + apdu.len());
        data.extend_from_slice(&[0x00, event]);
        data.extend_from_slice(&((1 + apdu.len()) as u16).to_be_bytes());
        data.push(0x02 | self.interfaces[interface].1);
        data.extend_from_slice(apdu);
        let mut body = Vec::with_capacity(20 + data.len());
        body.extend_from_slice(&(interface as u32).to_le_bytes());
        body.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(micros as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&data);
        self.out.write_all(&block(ENHANCED_PACKET, &body))
    }

    fn write(&mut self, e: &Exchange) -> io::Result<()> {
        let i = self.interface(&format!("{} {}", e.role, e.reader))?;
        self.packet(i, e.at, EVENT_TO_CARD, &e.command)?;
        self.packet(i, e.at + e.elapsed, EVENT_FROM_CARD, &e.response)?;
        self.interfaces[i].1 ^= 1;
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> TraceSink for PcapngSink<W> {
    fn record(&mut self, e: &Exchange) {
        if let Err(err) = self.write(e) {
            tracing::warn!("pcapng trace: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Secrecy;
    use std::time::Duration;

    #[test]
    fn blocks_are_exact() {
        let mut sink = PcapngSink::new(Vec::new()).unwrap();
        let at = UNIX_EPOCH + Duration::from_micros(0x1_0000_0002);
        sink.record(&Exchange::new(
            "card",
            "R",
            &[0, 0xA4, 4, 0, 0],
            &[0x90, 0],
            Secrecy::PUBLIC,
            at,
            Duration::from_micros(5),
        ));
        let b = sink.into_inner();
        // Section header: 28 bytes, byte-order magic, version 1.0.
        assert_eq!(&b[..4], &SECTION_HEADER.to_le_bytes());
        assert_eq!(&b[4..8], &28u32.to_le_bytes());
        assert_eq!(&b[8..12], &0x1A2B_3C4Du32.to_le_bytes());
        // Interface "card R": link type 264, if_name option, end of options.
        let idb = &b[28..];
        assert_eq!(&idb[..4], &1u32.to_le_bytes());
        assert_eq!(&idb[8..10], &264u16.to_le_bytes());
        assert_eq!(&idb[16..20], &[2, 0, 6, 0]);
        assert_eq!(&idb[20..26], b"card R");
        let idb_len = u32::from_le_bytes(idb[4..8].try_into().unwrap()) as usize;
        assert_eq!(idb_len, 36);
        // The command packet: interface 0, timestamp high/low, lengths, pseudo-header, I-block.
        let epb = &idb[idb_len..];
        assert_eq!(&epb[..4], &6u32.to_le_bytes());
        assert_eq!(&epb[8..12], &0u32.to_le_bytes());
        assert_eq!(&epb[12..16], &1u32.to_le_bytes());
        assert_eq!(&epb[16..20], &2u32.to_le_bytes());
        assert_eq!(&epb[20..24], &10u32.to_le_bytes());
        assert_eq!(
            &epb[28..38],
            &[0x00, 0xFA, 0x00, 0x06, 0x02, 0, 0xA4, 4, 0, 0]
        );
        let epb_len = u32::from_le_bytes(epb[4..8].try_into().unwrap()) as usize;
        assert_eq!(epb_len % 4, 0);
        let resp = &epb[epb_len..];
        assert_eq!(&resp[28..35], &[0x00, 0xFB, 0x00, 0x03, 0x02, 0x90, 0x00]);
    }
}
