//! Typed views of EF05/EF06/EF07 records.

use super::SscError;
use serde::Serialize;
use sscard_core::hexfmt::to_hex;
use sscard_core::tlv::Record;

fn find(records: &[Record], tag: u8) -> Option<&[u8]> {
    records
        .iter()
        .find(|r| r.tag == tag)
        .map(|r| r.value.as_slice())
}

fn ascii(records: &[Record], tag: u8) -> String {
    find(records, tag)
        .map(|v| {
            String::from_utf8_lossy(v)
                .trim_end_matches('\0')
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// BCD `YYYYMMDD` as `YYYY-MM-DD` (empty when absent or zero).
fn date(records: &[Record], tag: u8) -> String {
    match find(records, tag).map(to_hex) {
        Some(d) if d.len() == 8 && d != "00000000" && d.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])
        }
        _ => String::new(),
    }
}

fn gbk(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    encoding_rs::GBK.decode(&bytes[..end]).0.into_owned()
}

/// EF05: the card's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardIdentification {
    #[serde(serialize_with = "hex_ser")]
    pub card_id: [u8; 16],
    pub region: String,
    pub card_type: String,
    pub spec_version: String,
    pub init_org: String,
    pub issue_date: String,
    pub expiry_date: String,
    pub card_number: String,
}

fn hex_ser<S: serde::Serializer>(v: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_hex(v))
}

impl CardIdentification {
    pub fn from_records(records: &[Record]) -> Result<Self, SscError> {
        let id = find(records, 0x01)
            .ok_or_else(|| SscError::BadCardId("record 01 is missing".into()))?;
        let card_id: [u8; 16] = id
            .try_into()
            .map_err(|_| SscError::BadCardId(format!("{} bytes, expected 16", id.len())))?;
        let region = to_hex(&card_id[..3]);
        if !region.bytes().all(|b| b.is_ascii_digit())
            || card_id[3..8] != [0xD1, 0x56, 0x00, 0x00, 0x05]
        {
            return Err(SscError::BadCardId(to_hex(&card_id)));
        }
        Ok(Self {
            card_id,
            region,
            card_type: ascii(records, 0x02),
            spec_version: ascii(records, 0x03),
            init_org: find(records, 0x04).map(to_hex).unwrap_or_default(),
            issue_date: date(records, 0x05),
            expiry_date: date(records, 0x06),
            card_number: ascii(records, 0x07),
        })
    }
}

/// EF06: the holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HolderInfo {
    pub ssn: String,
    /// Name ‖ name extension, GBK decoded, padding removed.
    pub name: String,
    pub gender: String,
    pub nation: String,
    pub birthplace: String,
    pub birth_date: String,
}

impl HolderInfo {
    pub fn from_records(records: &[Record]) -> Self {
        let mut name_bytes = find(records, 0x09).unwrap_or_default().to_vec();
        let end = name_bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(name_bytes.len());
        name_bytes.truncate(end);
        name_bytes.extend_from_slice(find(records, 0x4E).unwrap_or_default());
        Self {
            ssn: ascii(records, 0x08),
            name: gbk(&name_bytes),
            gender: ascii(records, 0x0A),
            nation: find(records, 0x0B).map(to_hex).unwrap_or_default(),
            birthplace: find(records, 0x0C).map(to_hex).unwrap_or_default(),
            birth_date: date(records, 0x0D),
        }
    }
}
