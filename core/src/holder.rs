//! The holder data a card carries and its encoding into EF05/EF06/EF07 records (PROFILE
//! section 2). The card model, the personalisation station and the tests share it.

use crate::hexfmt::parse_hex;
use crate::profile::{card_number_check, citizen_id_check};
use serde::{Deserialize, Serialize};

/// Why holder data cannot be written to a card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HolderError {
    #[error("{field}: {detail}")]
    Field { field: &'static str, detail: String },
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

/// The records of one file: its memory path and (tag, value) pairs.
pub type FileRecords = (&'static str, Vec<(u8, Vec<u8>)>);

/// The file records of a holder.
pub fn holder_records(holder: &Holder) -> Result<Vec<FileRecords>, HolderError> {
    let (name, ext) = gbk_name(&holder.name)?;
    Ok(vec![
        (
            "EF05",
            vec![
                (0x02, b"3".to_vec()),
                (0x05, bcd("issue_date", &holder.issue_date, 4)?),
                (0x06, bcd("expiry_date", &holder.expiry_date, 4)?),
                (0x07, ascii("card_number", &holder.card_number, 9)?),
            ],
        ),
        (
            "EF06",
            vec![
                (0x08, ascii("ssn", &holder.ssn, 18)?),
                (0x09, name),
                (0x4E, ext),
                (0x0A, ascii("gender", &holder.gender, 1)?),
                (0x0B, bcd("nation", &holder.nation, 1)?),
                (0x0C, bcd("birthplace", &holder.birthplace, 3)?),
                (0x0D, bcd("birth_date", &holder.birth_date, 4)?),
            ],
        ),
        (
            "EF07",
            vec![
                (0x20, bcd("pension", &holder.pension, 1)?),
                (0x21, bcd("medical", &holder.medical, 1)?),
                (0x22, bcd("medical_account", &holder.medical_account, 8)?),
            ],
        ),
    ])
}

/// Whether `d` is a calendar date written `YYYYMMDD`.
pub fn valid_date(d: &str) -> bool {
    if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (y, m, day): (u32, u32, u32) = (
        d[..4].parse().unwrap_or(0),
        d[4..6].parse().unwrap_or(0),
        d[6..].parse().unwrap_or(0),
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    (1900..=2199).contains(&y) && (1..=days).contains(&day)
}

fn digits(field: &'static str, value: &str, n: usize) -> Result<(), HolderError> {
    if value.len() == n && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(bad(field, format!("{value:?} is not {n} digits")))
    }
}

impl Holder {
    /// Checks every field before a card is touched: check characters (card number, citizen ID
    /// ISO 7064 MOD 11-2), dates, region and status codes, a GBK name of at most 50 bytes.
    pub fn validate(&self) -> Result<(), HolderError> {
        let cn = &self.card_number;
        let cn_ok = cn.len() == 9
            && cn
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            && card_number_check(&cn[..8]) == cn.chars().nth(8);
        if !cn_ok {
            return Err(bad(
                "card_number",
                format!("{cn:?} is not 8 characters 0-9A-Z and a valid check character"),
            ));
        }
        let id = &self.ssn;
        let id_ok =
            id.len() == 18 && id.is_ascii() && citizen_id_check(&id[..17]) == id.chars().nth(17);
        if !id_ok {
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

/// The record number of `tag` in EF05, EF06 or EF07 (PROFILE section 2: EF05 numbers equal
/// tags; EF06 and EF07 records are in profile order).
pub fn record_number(file: &str, tag: u8) -> Option<u8> {
    let order: &[u8] = match file {
        "EF05" => &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07],
        "EF06" => &[0x08, 0x09, 0x4E, 0x0A, 0x0B, 0x0C, 0x0D],
        "EF07" => &[0x20, 0x21, 0x22],
        _ => return None,
    };
    order.iter().position(|t| *t == tag).map(|i| i as u8 + 1)
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
        assert!(valid_date("20240229") && !valid_date("20230229"));
    }
}
