//! Typed views of EF05/EF06 records. Every field is checked: an unwritten field (absent or all
//! zero) is empty, a field that does not parse is an error naming it — never reported as valid.

use super::SscError;
use serde::Serialize;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::{card_number_check, citizen_id_check};
use sscard_core::tlv::Record;

/// A record's value if present, written (not all zero) and of the profile's length.
fn field<'a>(
    records: &'a [Record],
    tag: u8,
    len: usize,
    what: &'static str,
) -> Result<Option<&'a [u8]>, SscError> {
    match records.iter().find(|r| r.tag == tag) {
        None => Ok(None),
        Some(r) if r.value.len() != len => Err(SscError::Malformed {
            what,
            detail: format!("{} bytes, the profile has {len}", r.value.len()),
        }),
        Some(r) if r.value.iter().all(|&b| b == 0) => Ok(None),
        Some(r) => Ok(Some(&r.value)),
    }
}

fn bad(what: &'static str, detail: impl Into<String>) -> SscError {
    SscError::Malformed {
        what,
        detail: detail.into(),
    }
}

/// Printable ASCII, zero padding removed.
fn ascii(v: Option<&[u8]>, what: &'static str) -> Result<String, SscError> {
    let Some(v) = v else { return Ok(String::new()) };
    let end = v.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let text = &v[..end];
    if !text.iter().all(|b| (0x20..0x7F).contains(b)) {
        return Err(bad(what, format!("{} is not printable ASCII", to_hex(v))));
    }
    Ok(String::from_utf8_lossy(text).into_owned())
}

/// BCD digits.
fn bcd(v: Option<&[u8]>, what: &'static str) -> Result<String, SscError> {
    let Some(v) = v else { return Ok(String::new()) };
    let digits = to_hex(v);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(what, format!("{digits} is not BCD")));
    }
    Ok(digits)
}

/// BCD `YYYYMMDD` as `YYYY-MM-DD`, checked against the calendar.
fn date(v: Option<&[u8]>, what: &'static str) -> Result<String, SscError> {
    let d = bcd(v, what)?;
    if d.is_empty() {
        return Ok(d);
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
    if !(1900..=2199).contains(&y) || day == 0 || day > days {
        return Err(bad(what, format!("{d} is not a date")));
    }
    Ok(format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]))
}

/// GBK text, zero padding removed; undecodable bytes or control characters are an error.
fn gbk(bytes: &[u8], what: &'static str) -> Result<String, SscError> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    if bytes[end..].iter().any(|&b| b != 0) {
        return Err(bad(what, "text after the zero padding"));
    }
    let (text, _, errors) = encoding_rs::GBK.decode(&bytes[..end]);
    if errors || text.chars().any(char::is_control) {
        return Err(bad(
            what,
            format!("{} is not GBK text", to_hex(&bytes[..end])),
        ));
    }
    Ok(text.into_owned())
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
        let id = field(records, 0x01, 16, "EF05 card identification code")
            .map_err(|e| SscError::BadCardId(e.to_string()))?
            .ok_or_else(|| SscError::BadCardId("record 01 is missing or empty".into()))?;
        let card_id: [u8; 16] = id.try_into().expect("length checked");
        let region = to_hex(&card_id[..3]);
        if !region.bytes().all(|b| b.is_ascii_digit())
            || card_id[3..8] != [0xD1, 0x56, 0x00, 0x00, 0x05]
        {
            return Err(SscError::BadCardId(to_hex(&card_id)));
        }
        let spec_version = ascii(
            field(records, 0x03, 4, "EF05 specification version")?,
            "EF05 specification version",
        )?;
        if !matches!(spec_version.as_str(), "2.00" | "3.00") {
            return Err(bad(
                "EF05 specification version",
                format!("{spec_version:?} is neither 2.00 nor 3.00"),
            ));
        }
        let card_number = ascii(
            field(records, 0x07, 9, "EF05 card number")?,
            "EF05 card number",
        )?;
        if !card_number.is_empty() {
            let valid = card_number.len() == 9
                && card_number
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
                && card_number_check(&card_number[..8]) == card_number.chars().nth(8);
            if !valid {
                return Err(bad(
                    "EF05 card number",
                    format!("{card_number:?} fails its check character"),
                ));
            }
        }
        Ok(Self {
            card_id,
            region,
            card_type: ascii(field(records, 0x02, 1, "EF05 card type")?, "EF05 card type")?,
            spec_version,
            init_org: bcd(
                field(records, 0x04, 12, "EF05 initialisation organisation")?,
                "EF05 initialisation organisation",
            )?,
            issue_date: date(
                field(records, 0x05, 4, "EF05 issue date")?,
                "EF05 issue date",
            )?,
            expiry_date: date(
                field(records, 0x06, 4, "EF05 expiry date")?,
                "EF05 expiry date",
            )?,
            card_number,
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
    pub fn from_records(records: &[Record]) -> Result<Self, SscError> {
        let ssn = ascii(
            field(records, 0x08, 18, "EF06 social security number")?,
            "EF06 social security number",
        )?;
        if !ssn.is_empty() && citizen_id_check(&ssn[..17.min(ssn.len())]) != ssn.chars().nth(17) {
            return Err(bad(
                "EF06 social security number",
                format!("{ssn:?} fails its check character"),
            ));
        }
        let mut name = gbk(
            field(records, 0x09, 30, "EF06 name")?.unwrap_or_default(),
            "EF06 name",
        )?;
        name += &gbk(
            field(records, 0x4E, 20, "EF06 name extension")?.unwrap_or_default(),
            "EF06 name extension",
        )?;
        let gender = ascii(field(records, 0x0A, 1, "EF06 gender")?, "EF06 gender")?;
        if !matches!(gender.as_str(), "" | "1" | "2" | "9") {
            return Err(bad("EF06 gender", format!("{gender:?} is not 1, 2 or 9")));
        }
        Ok(Self {
            ssn,
            name,
            gender,
            nation: bcd(
                field(records, 0x0B, 1, "EF06 ethnic group")?,
                "EF06 ethnic group",
            )?,
            birthplace: bcd(
                field(records, 0x0C, 3, "EF06 birthplace")?,
                "EF06 birthplace",
            )?,
            birth_date: date(
                field(records, 0x0D, 4, "EF06 birth date")?,
                "EF06 birth date",
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(tag: u8, hex: &str) -> Record {
        Record::new(tag, sscard_core::hexfmt::parse_hex(hex).unwrap()).unwrap()
    }

    #[test]
    fn impossible_fields_are_errors_not_values() {
        assert_eq!(
            date(Some(&[0x20, 0x24, 0x02, 0x30]), "d"),
            Err(bad("d", "20240230 is not a date"))
        );
        assert_eq!(
            date(Some(&[0x20, 0x24, 0x02, 0x29]), "d").unwrap(),
            "2024-02-29"
        );
        assert_eq!(
            date(Some(&[0x20, 0x2A, 0x01, 0x01]), "d"),
            Err(bad("d", "202A0101 is not BCD"))
        );
        assert_eq!(
            gbk(&[0xD5, 0xC5, 0xFF, 0xFF], "n"),
            Err(bad("n", "D5C5FFFF is not GBK text"))
        );
        let ok = HolderInfo::from_records(&[
            rec(0x0A, "32"),
            rec(0x09, &format!("D5C5C8FD{}", "00".repeat(26))),
        ])
        .unwrap();
        assert_eq!((ok.name.as_str(), ok.gender.as_str()), ("张三", "2"));
        assert_eq!(
            HolderInfo::from_records(&[rec(0x0A, "33")]),
            Err(bad("EF06 gender", "\"3\" is not 1, 2 or 9"))
        );
        assert_eq!(
            HolderInfo::from_records(&[rec(
                0x08,
                &sscard_core::hexfmt::to_hex(b"110105194912310021")
            )]),
            Err(bad(
                "EF06 social security number",
                "\"110105194912310021\" fails its check character"
            ))
        );
    }
}
