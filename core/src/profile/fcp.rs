//! The FCP template a SELECT with Le returns for an EF, and for the PSAM's application DF
//! (PROFILE section 4, "Field-terminal shapes"), so generic explorers (`opensc-explorer`) can
//! browse the file system. Card model and host build and read it here, from the file table.
//!
//! The encodings, after ISO/IEC 7816-4 (tag `82`, file descriptor and data coding bytes):
//!
//! | file | FCP |
//! |---|---|
//! | transparent EF | `62 0B  82 01 01  83 02 <FID>  80 02 <size>` |
//! | linear TLV-record EF | `62 0B  82 05 04 41 <max record length, 2 bytes> <records>  83 02 <FID>` |
//! | DF (the PSAM's DF01) | `62 07  82 01 38  83 02 <FID>` |
//!
//! - File descriptor byte: `01` = working EF, transparent; `04` = working EF, linear structure,
//!   variable-size records; `38` = DF. ISO 7816-4 codes a transparent EF `01` (`02` is linear
//!   fixed); PROFILE v3 writes `02`, which a generic tool reads as a record file, so this
//!   follows ISO.
//! - Data coding byte `41`: write functions behave as "write OR", data unit one byte.
//! - The maximum record length counts the whole record as READ RECORD returns it: tag, length
//!   and value. The record count is one byte.
//! - `80` (data bytes in the file) only for transparent files, two bytes.
//! - `83` is the FID the file was selected by (the PSAM's EF15 also answers to `0015`).

use super::files::{FileDef, Structure};
use crate::hexfmt::to_hex;

/// File descriptor bytes (ISO/IEC 7816-4 tag `82`, first byte).
pub mod descriptor {
    /// Working EF, transparent.
    pub const TRANSPARENT: u8 = 0x01;
    /// Working EF, linear structure, variable-size records.
    pub const LINEAR_VARIABLE: u8 = 0x04;
    /// Dedicated file.
    pub const DF: u8 = 0x38;
    /// Data coding byte following the descriptor of a record file: "write OR", one-byte units.
    pub const DATA_CODING: u8 = 0x41;
}

/// What an FCP says about a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileShape {
    /// A transparent EF of this many bytes.
    Transparent { size: u16 },
    /// A linear EF of variable-size records: the longest record (tag, length and value) and how
    /// many records it holds.
    Records { max_len: u16, count: u8 },
    /// A dedicated file.
    Df,
}

/// The FCP template `62` of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fcp {
    pub fid: u16,
    pub shape: FileShape,
}

/// Why bytes are not an FCP of this profile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FcpError {
    #[error("FCP {hex} is not a 62 template with short lengths")]
    NotATemplate { hex: String },
    #[error("FCP {hex} lacks {what}")]
    Missing { hex: String, what: &'static str },
    #[error("FCP {hex} gives file descriptor {descriptor:02X}; this profile's files are 01 (transparent), 04 (linear variable records) or 38 (DF)")]
    Descriptor { hex: String, descriptor: u8 },
}

/// Splits simple TLVs (one-byte tags and lengths below `80`): `None` when malformed.
fn simple_tlvs(mut bytes: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while let [tag, len, rest @ ..] = bytes {
        let len = *len as usize;
        if len >= 0x80 || rest.len() < len {
            return None;
        }
        out.push((*tag, &rest[..len]));
        bytes = &rest[len..];
    }
    bytes.is_empty().then_some(out)
}

fn tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

impl Fcp {
    /// The FCP of a transparent EF.
    pub fn transparent(fid: u16, size: usize) -> Self {
        Self {
            fid,
            shape: FileShape::Transparent {
                size: u16::try_from(size).unwrap_or(u16::MAX),
            },
        }
    }

    /// The FCP of a DF.
    pub fn df(fid: u16) -> Self {
        Self {
            fid,
            shape: FileShape::Df,
        }
    }

    /// `62 L { 82 …, 83 02 FID [, 80 02 size] }`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(16);
        match self.shape {
            FileShape::Transparent { .. } => tlv(&mut body, 0x82, &[descriptor::TRANSPARENT]),
            FileShape::Records { max_len, count } => {
                let [hi, lo] = max_len.to_be_bytes();
                tlv(
                    &mut body,
                    0x82,
                    &[
                        descriptor::LINEAR_VARIABLE,
                        descriptor::DATA_CODING,
                        hi,
                        lo,
                        count,
                    ],
                )
            }
            FileShape::Df => tlv(&mut body, 0x82, &[descriptor::DF]),
        }
        tlv(&mut body, 0x83, &self.fid.to_be_bytes());
        if let FileShape::Transparent { size } = self.shape {
            tlv(&mut body, 0x80, &size.to_be_bytes());
        }
        let mut out = Vec::with_capacity(body.len() + 2);
        tlv(&mut out, 0x62, &body);
        out
    }

    /// Reads an FCP built by [`Fcp::to_bytes`] (tags in any order; unknown tags ignored).
    pub fn parse(bytes: &[u8]) -> Result<Self, FcpError> {
        let hex = || to_hex(bytes);
        let body = match simple_tlvs(bytes).as_deref() {
            Some([(0x62, body)]) => *body,
            _ => return Err(FcpError::NotATemplate { hex: hex() }),
        };
        let fields = simple_tlvs(body).ok_or_else(|| FcpError::NotATemplate { hex: hex() })?;
        let field = |tag: u8| fields.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
        let missing = |what| FcpError::Missing { hex: hex(), what };
        let fid = match field(0x83) {
            Some([hi, lo]) => u16::from_be_bytes([*hi, *lo]),
            _ => return Err(missing("a two-byte file identifier (83)")),
        };
        let shape = match field(0x82) {
            Some([descriptor::TRANSPARENT]) => match field(0x80) {
                Some([hi, lo]) => FileShape::Transparent {
                    size: u16::from_be_bytes([*hi, *lo]),
                },
                _ => return Err(missing("the two-byte size (80) of a transparent file")),
            },
            Some([descriptor::LINEAR_VARIABLE, descriptor::DATA_CODING, hi, lo, count]) => {
                FileShape::Records {
                    max_len: u16::from_be_bytes([*hi, *lo]),
                    count: *count,
                }
            }
            Some([descriptor::DF]) => FileShape::Df,
            Some([d, ..]) => {
                return Err(FcpError::Descriptor {
                    hex: hex(),
                    descriptor: *d,
                })
            }
            _ => return Err(missing("the file descriptor (82)")),
        };
        Ok(Self { fid, shape })
    }
}

impl FileDef {
    /// The FCP a SELECT of this EF with Le returns.
    pub fn fcp(&self) -> Fcp {
        let shape = match self.structure {
            Structure::Binary(size) => FileShape::Transparent {
                size: u16::try_from(size).unwrap_or(u16::MAX),
            },
            Structure::Records(records) => FileShape::Records {
                max_len: records
                    .iter()
                    .map(|r| u16::from(r.len) + 2)
                    .max()
                    .unwrap_or(0),
                count: u8::try_from(records.len()).unwrap_or(u8::MAX),
            },
        };
        Fcp {
            fid: self.fid,
            shape,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hexfmt::{parse_hex, to_hex};
    use crate::profile::files::{by_name, ef05, ef06, ef07};

    #[test]
    fn every_ef_has_its_fcp_to_the_byte() {
        // EF05: records of 18, 3, 6, 14, 6, 6 and 11 bytes.
        assert_eq!(
            to_hex(&ef05().fcp().to_bytes()),
            "620B820504410012078302EF05"
        );
        // EF06: the name record (tag 09, 30 bytes) is the longest, 32 bytes; 7 records.
        assert_eq!(
            to_hex(&ef06().fcp().to_bytes()),
            "620B820504410020078302EF06"
        );
        // EF07: 3 records, the longest 10 bytes.
        assert_eq!(
            to_hex(&ef07().fcp().to_bytes()),
            "620B82050441000A038302EF07"
        );
        let ef01 = by_name("DF01/EF01").unwrap();
        assert_eq!(to_hex(&ef01.fcp().to_bytes()), "620B820504410022038302EF01");
        let ef02 = by_name("DF01/EF02").unwrap();
        assert_eq!(to_hex(&ef02.fcp().to_bytes()), "620B8201018302EF0280020100");
        assert_eq!(
            to_hex(&Fcp::transparent(0x0015, 24).to_bytes()),
            "620B8201018302001580020018"
        );
        assert_eq!(to_hex(&Fcp::df(0xDF01).to_bytes()), "62078201388302DF01");
    }

    #[test]
    fn fcps_parse_back_and_malformed_ones_are_refused() {
        for fcp in [
            ef05().fcp(),
            by_name("DF01/EF02").unwrap().fcp(),
            Fcp::df(0xDF01),
        ] {
            assert_eq!(Fcp::parse(&fcp.to_bytes()), Ok(fcp));
        }
        let hex = "6F038301AA".to_string();
        assert_eq!(
            Fcp::parse(&parse_hex(&hex).unwrap()),
            Err(FcpError::NotATemplate { hex })
        );
        assert_eq!(
            Fcp::parse(&parse_hex("6203820102").unwrap()),
            Err(FcpError::Missing {
                hex: "6203820102".into(),
                what: "a two-byte file identifier (83)"
            })
        );
        assert_eq!(
            Fcp::parse(&parse_hex("62078201028302EF05").unwrap()),
            Err(FcpError::Descriptor {
                hex: "62078201028302EF05".into(),
                descriptor: 2
            })
        );
    }
}
