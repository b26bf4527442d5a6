//! The holder data a card carries and its encoding into EF05/EF06/EF07 records through the file
//! table (PROFILE section 2). The card model, the personalisation station and the tests share
//! it.

use super::fields::{valid_card_number, valid_citizen_id, valid_date};
use super::files::{holder_files, Encoding, FileDef, RecordDef};
use crate::hexfmt::parse_hex;
use serde::{Deserialize, Serialize};

/// Why holder data cannot be written to a card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HolderError {
    #[error("{field}: {detail}")]
    Field { field: &'static str, detail: String },
}

impl HolderError {
    /// The field at fault (`card_number`).
    pub fn field(&self) -> &'static str {
        match self {
            Self::Field { field, .. } => field,
        }
    }

    /// What is wrong with it.
    pub fn detail(&self) -> &str {
        match self {
            Self::Field { detail, .. } => detail,
        }
    }
}

pub fn bad(field: &'static str, detail: impl Into<String>) -> HolderError {
    HolderError::Field {
        field,
        detail: detail.into(),
    }
}

/// The holder data a personalised card carries (PROFILE section 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub card_number: String,
    pub ssn: String,
    pub name: String,
    pub gender: String,
    pub nation: String,
    pub birthplace: String,
    pub birth_date: String,
    pub issue_date: String,
    pub expiry_date: String,
    pub pension: String,
    pub medical: String,
    pub medical_account: String,
}

impl Holder {
    /// A sample holder for tests and the demo.
    pub fn sample() -> Self {
        Self {
            card_number: "A12345674".into(),
            ssn: "11010519491231002X".into(),
            name: "张三".into(),
            gender: "1".into(),
            nation: "01".into(),
            birthplace: "110105".into(),
            birth_date: "19491231".into(),
            issue_date: "20240101".into(),
            expiry_date: "20340101".into(),
            pension: "01".into(),
            medical: "01".into(),
            medical_account: "1101000000012345".into(),
        }
    }
}

/// BCD of a digit string of exactly `len` bytes.
pub fn bcd(field: &'static str, digits: &str, len: usize) -> Result<Vec<u8>, HolderError> {
    if digits.len() != 2 * len || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(field, format!("{digits:?} is not {} digits", 2 * len)));
    }
    Ok(parse_hex(digits).expect("digits are hex"))
}

fn ascii(field: &'static str, text: &str, len: usize) -> Result<Vec<u8>, HolderError> {
    if text.len() != len || !text.is_ascii() {
        return Err(bad(
            field,
            format!("{text:?} is not {len} ASCII characters"),
        ));
    }
    Ok(text.as_bytes().to_vec())
}

/// Splits a GBK name into the 30-byte name and 20-byte extension records, zero padded.
pub fn gbk_name(name: &str) -> Result<(Vec<u8>, Vec<u8>), HolderError> {
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(name);
    if unmappable {
        return Err(bad("name", format!("{name:?} cannot be written in GBK")));
    }
    if gbk.len() > 50 || name.is_empty() {
        return Err(bad(
            "name",
            format!("{} GBK bytes; a name has 1 to 50", gbk.len()),
        ));
    }
    // Cut at a character boundary at or before byte 30.
    let mut cut = 0;
    for ch in name.chars() {
        let n = encoding_rs::GBK.encode(ch.encode_utf8(&mut [0; 4])).0.len();
        if cut + n > 30 {
            break;
        }
        cut += n;
    }
    let (mut first, mut rest) = (gbk[..cut].to_vec(), gbk[cut..].to_vec());
    if rest.len() > 20 {
        return Err(bad(
            "name",
            "too long for the name and name extension records",
        ));
    }
    first.resize(30, 0);
    rest.resize(20, 0);
    Ok((first, rest))
}

/// The card type a station writes into EF05 record 2.
pub const CARD_TYPE: &str = "3";

/// The records of one holder file, as a station writes them.
pub type FileRecords = (&'static FileDef, Vec<(&'static RecordDef, Vec<u8>)>);

impl Holder {
    /// The text of a field by its key in the file table (`card_number`), if the holder
    /// supplies it. Manufacture fields (card identification code, specification version,
    /// initialisation organisation) are not the holder's.
    pub fn value(&self, key: &str) -> Option<&str> {
        Some(match key {
            "card_type" => CARD_TYPE,
            "card_number" => &self.card_number,
            "ssn" => &self.ssn,
            "name" | "name_extension" => &self.name,
            "gender" => &self.gender,
            "nation" => &self.nation,
            "birthplace" => &self.birthplace,
            "birth_date" => &self.birth_date,
            "issue_date" => &self.issue_date,
            "expiry_date" => &self.expiry_date,
            "pension" => &self.pension,
            "medical" => &self.medical,
            "medical_account" => &self.medical_account,
            _ => return None,
        })
    }

    /// The holder's records of EF05, EF06 and EF07, each encoded as the file table says.
    pub fn records(&self) -> Result<Vec<FileRecords>, HolderError> {
        let (name, extension) = gbk_name(&self.name)?;
        holder_files()
            .into_iter()
            .map(|file| {
                let mut out = Vec::new();
                for rec in file.records() {
                    let Some(text) = self.value(rec.key) else {
                        continue;
                    };
                    let len = rec.len as usize;
                    let value =
                        match (rec.key, rec.encoding) {
                            ("name", _) => name.clone(),
                            ("name_extension", _) => extension.clone(),
                            (_, Encoding::Ascii) => ascii(rec.key, text, len)?,
                            (_, Encoding::Bcd | Encoding::Date) => bcd(rec.key, text, len)?,
                            (_, _) => parse_hex(text).ok().filter(|v| v.len() == len).ok_or_else(
                                || bad(rec.key, format!("{text:?} is not {len} bytes of hex")),
                            )?,
                        };
                    out.push((rec, value));
                }
                Ok((file, out))
            })
            .collect()
    }
}

impl Holder {
    /// Checks every field before a card is touched: check characters (card number, citizen ID
    /// ISO 7064 MOD 11-2), dates, region and status codes, a GBK name of at most 50 bytes.
    pub fn validate(&self) -> Result<(), HolderError> {
        let cn = &self.card_number;
        if !valid_card_number(cn) {
            return Err(bad(
                "card_number",
                format!("{cn:?} is not 8 characters 0-9A-Z and a valid check character"),
            ));
        }
        let id = &self.ssn;
        if !valid_citizen_id(id) {
            return Err(bad(
                "ssn",
                format!("{id:?} is not a citizen ID with a valid check character"),
            ));
        }
        gbk_name(&self.name)?;
        if !matches!(self.gender.as_str(), "1" | "2" | "9") {
            return Err(bad("gender", format!("{:?} is not 1, 2 or 9", self.gender)));
        }
        digits("nation", &self.nation, 2)?;
        digits("birthplace", &self.birthplace, 6)?;
        for (field, d) in [
            ("birth_date", &self.birth_date),
            ("issue_date", &self.issue_date),
            ("expiry_date", &self.expiry_date),
        ] {
            if !valid_date(d) {
                return Err(bad(field, format!("{d:?} is not a date YYYYMMDD")));
            }
        }
        if self.expiry_date <= self.issue_date {
            return Err(bad("expiry_date", "is not after issue_date"));
        }
        for (field, v) in [("pension", &self.pension), ("medical", &self.medical)] {
            if !matches!(v.as_str(), "00" | "01" | "02") {
                return Err(bad(field, format!("{v:?} is not 00, 01 or 02")));
            }
        }
        digits("medical_account", &self.medical_account, 16)?;
        Ok(())
    }
}

fn digits(field: &'static str, value: &str, n: usize) -> Result<(), HolderError> {
    if value.len() == n && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(bad(field, format!("{value:?} is not {n} digits")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_holder_is_valid_and_errors_name_the_field() {
        assert_eq!(Holder::sample().validate(), Ok(()));
        let mut h = Holder::sample();
        h.ssn = "110105194912310021".into();
        assert_eq!(
            h.validate(),
            Err(bad(
                "ssn",
                "\"110105194912310021\" is not a citizen ID with a valid check character"
            ))
        );
        let mut h = Holder::sample();
        h.card_number = "A12345675".into();
        assert_eq!(
            h.validate().unwrap_err().to_string(),
            "card_number: \"A12345675\" is not 8 characters 0-9A-Z and a valid check character"
        );
        let mut h = Holder::sample();
        h.birth_date = "19490230".into();
        assert_eq!(
            h.validate().unwrap_err().to_string(),
            "birth_date: \"19490230\" is not a date YYYYMMDD"
        );
        let records = Holder::sample().records().unwrap();
        let ef06: Vec<(u8, usize)> = records[1].1.iter().map(|(r, v)| (r.tag, v.len())).collect();
        assert_eq!(
            ef06,
            [
                (0x08, 18),
                (0x09, 30),
                (0x4E, 20),
                (0x0A, 1),
                (0x0B, 1),
                (0x0C, 3),
                (0x0D, 4)
            ]
        );
        let ef05: Vec<u8> = records[0].1.iter().map(|(r, _)| r.tag).collect();
        assert_eq!(ef05, [0x02, 0x05, 0x06, 0x07]);
    }
}
