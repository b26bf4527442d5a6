//! TLV as the profile uses it: one-byte-tag, one-byte-length records in the EFs, and the
//! BER-TLV FCI returned by SELECT (parsed with `iso7816-tlv`).

use iso7816_tlv::ber::{Tag, Tlv, Value};

/// Why bytes are not the TLV the profile expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvError {
    #[error("TLV ends after {len} byte(s): a record needs a tag and a length")]
    Truncated { len: usize },
    #[error("TLV tag {tag:02X} says {declared} value bytes but {available} follow")]
    LengthMismatch {
        tag: u8,
        declared: usize,
        available: usize,
    },
    #[error("TLV value of {len} bytes does not fit a one-byte length")]
    TooLong { len: usize },
    #[error("FCI is not valid BER-TLV: {0}")]
    BadFci(String),
    #[error("FCI lacks {0}")]
    FciMissing(&'static str),
}

/// One record of a profile EF: tag (1 byte), length (1 byte), value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub tag: u8,
    pub value: Vec<u8>,
}

impl Record {
    pub fn new(tag: u8, value: impl Into<Vec<u8>>) -> Result<Self, TlvError> {
        let value = value.into();
        if value.len() > 255 {
            return Err(TlvError::TooLong { len: value.len() });
        }
        Ok(Self { tag, value })
    }

    /// Parses exactly one record; trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, TlvError> {
        let (rec, rest) = Self::parse_prefix(bytes)?;
        if !rest.is_empty() {
            return Err(TlvError::LengthMismatch {
                tag: rec.tag,
                declared: rec.value.len(),
                available: bytes.len() - 2,
            });
        }
        Ok(rec)
    }

    /// Parses one record at the start of `bytes`, returning the rest.
    pub fn parse_prefix(bytes: &[u8]) -> Result<(Self, &[u8]), TlvError> {
        if bytes.len() < 2 {
            return Err(TlvError::Truncated { len: bytes.len() });
        }
        let (tag, len) = (bytes[0], bytes[1] as usize);
        let body = &bytes[2..];
        if body.len() < len {
            return Err(TlvError::LengthMismatch {
                tag,
                declared: len,
                available: body.len(),
            });
        }
        Ok((
            Self {
                tag,
                value: body[..len].to_vec(),
            },
            &body[len..],
        ))
    }

    /// Parses records concatenated by a "P1 to last" READ RECORDS.
    pub fn parse_all(mut bytes: &[u8]) -> Result<Vec<Self>, TlvError> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (rec, rest) = Self::parse_prefix(bytes)?;
            out.push(rec);
            bytes = rest;
        }
        Ok(out)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(2 + self.value.len());
        v.push(self.tag);
        v.push(self.value.len() as u8);
        v.extend_from_slice(&self.value);
        v
    }
}

/// The FCI of the SSSE application or of DF01 (PROFILE section 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fci {
    pub df_name: Vec<u8>,
    /// `01` 3DES, `02` SSF33 (unsupported), `03` SM4.
    pub algorithm_id: u8,
    /// `01` PERSONALISATION, `02` ISSUED.
    pub life_cycle: u8,
}

fn tag(v: u16) -> Tag {
    Tag::try_from(v).expect("profile tags are valid BER tags")
}

fn prim(t: u16, v: Vec<u8>) -> Tlv {
    Tlv::new(tag(t), Value::Primitive(v)).expect("primitive tag with primitive value")
}

impl Fci {
    /// `6F { 84 name, A5 { 9F0C 03 { 86 01 alg }, C0 01 life cycle } }`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let prop = Tlv::new(
            tag(0xA5),
            Value::Constructed(vec![
                prim(0x9F0C, vec![0x86, 0x01, self.algorithm_id]),
                prim(0xC0, vec![self.life_cycle]),
            ]),
        )
        .expect("A5 is constructed");
        Tlv::new(
            tag(0x6F),
            Value::Constructed(vec![prim(0x84, self.df_name.clone()), prop]),
        )
        .expect("6F is constructed")
        .to_vec()
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, TlvError> {
        let fci = Tlv::from_bytes(bytes).map_err(|e| TlvError::BadFci(format!("{e:?}")))?;
        if fci.tag() != &tag(0x6F) {
            return Err(TlvError::FciMissing("the 6F template"));
        }
        let primitive = |t: u16, what: &'static str| -> Result<Vec<u8>, TlvError> {
            match fci.find(&tag(t)).map(Tlv::value) {
                Some(Value::Primitive(v)) => Ok(v.clone()),
                _ => Err(TlvError::FciMissing(what)),
            }
        };
        let df_name = primitive(0x84, "the DF name (84)")?;
        let disc = primitive(0x9F0C, "the issuer discretionary data (9F0C)")?;
        let algorithm_id = match Record::parse(&disc) {
            Ok(Record { tag: 0x86, value }) if value.len() == 1 => value[0],
            _ => return Err(TlvError::FciMissing("the algorithm id (86 01) in 9F0C")),
        };
        let life_cycle = match primitive(0xC0, "the life cycle (C0)")?.as_slice() {
            [b] => *b,
            _ => return Err(TlvError::FciMissing("a one-byte life cycle (C0)")),
        };
        Ok(Self {
            df_name,
            algorithm_id,
            life_cycle,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hexfmt::{parse_hex, to_hex};
    use crate::profile::SSSE_AID;

    #[test]
    fn fci_bytes_follow_the_profile() {
        let fci = Fci {
            df_name: SSSE_AID.to_vec(),
            algorithm_id: 1,
            life_cycle: 2,
        };
        let b = fci.to_bytes();
        assert_eq!(
            to_hex(&b),
            "6F1C840F7378312E73682EC9E7BBE1B1A3D5CFA5099F0C03860101C00102"
        );
        assert_eq!(Fci::parse(&b).unwrap(), fci);
    }

    #[test]
    fn records_parse_strictly() {
        let recs = Record::parse_all(&parse_hex("0A01310B0101").unwrap()).unwrap();
        assert_eq!(
            recs,
            vec![
                Record {
                    tag: 0x0A,
                    value: vec![0x31]
                },
                Record {
                    tag: 0x0B,
                    value: vec![1]
                }
            ]
        );
        assert_eq!(
            Record::parse(&parse_hex("0A0231").unwrap()),
            Err(TlvError::LengthMismatch {
                tag: 0x0A,
                declared: 2,
                available: 1
            })
        );
        assert_eq!(Record::parse(&[0x0A]), Err(TlvError::Truncated { len: 1 }));
        assert!(Fci::parse(&parse_hex("6F03840100").unwrap()).is_err());
    }
}
