//! The holder data a card carries and its encoding into EF05/EF06/EF07 records through the file
//! table (PROFILE section 2). The card model, the personalisation station and the tests share
//! it.

use super::fields::{self, valid_card_number, valid_citizen_id, valid_date};
use super::files::{holder_files, Encoding, FileDef, RecordDef};
use crate::hexfmt::parse_hex;
use serde::{Deserialize, Serialize};

/// Why holder data cannot be written to a card. Every variant names the field at fault
/// ([`HolderError::field`]) and says what is wrong ([`HolderError::detail`]); the messages
/// quote values escaped (`{:?}`), so a control character in a batch never reaches a terminal
/// raw. Holder data is personal: show these to the operator, never log them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HolderError {
    /// A field does not have the profile's form (length, digits, check character, code list).
    Field { field: &'static str, detail: String },
    /// A text field holds a control character (NUL included), which the card's read-back
    /// refuses. `position` counts characters from 1.
    ControlCharacter {
        field: &'static str,
        position: usize,
        code: u32,
    },
    /// The gender contradicts the 17th digit of the citizen ID number (odd: male `1`, even:
    /// female `2`).
    GenderMismatch { gender: String, digit: char },
    /// The birth date differs from the one in the citizen ID number (its digits 7 to 14).
    BirthDateMismatch { birth_date: String, in_id: String },
    /// The record written for the field would not pass the card's read-back (the decoding the
    /// acceptance test applies), or would read back as something else.
    ReadBack { field: &'static str, detail: String },
}

impl HolderError {
    /// The field at fault (`card_number`).
    pub fn field(&self) -> &'static str {
        match self {
            Self::Field { field, .. }
            | Self::ControlCharacter { field, .. }
            | Self::ReadBack { field, .. } => field,
            Self::GenderMismatch { .. } => "gender",
            Self::BirthDateMismatch { .. } => "birth_date",
        }
    }

    /// What is wrong with it.
    pub fn detail(&self) -> String {
        match self {
            Self::Field { detail, .. } => detail.clone(),
            Self::ControlCharacter { position, code, .. } => format!(
                "control character U+{code:04X} at character {position}; the card refuses \
                 control characters and NUL in text"
            ),
            Self::GenderMismatch { gender, digit } => {
                let (id_parity, id_gender) = match digit.to_digit(10).map(|d| d % 2) {
                    Some(1) => ("odd", "1 (male)"),
                    _ => ("even", "2 (female)"),
                };
                let given = match gender.as_str() {
                    "1" => "1 (male)",
                    "2" => "2 (female)",
                    _ => gender.as_str(),
                };
                format!(
                    "{given} contradicts the citizen ID, whose 17th digit {digit} is {id_parity}: \
                     use {id_gender}, or 9 for unspecified"
                )
            }
            Self::BirthDateMismatch { birth_date, in_id } => format!(
                "{birth_date:?} differs from {in_id:?}, the birth date in the citizen ID (its \
                 digits 7 to 14)"
            ),
            Self::ReadBack { detail, .. } => detail.clone(),
        }
    }
}

impl std::fmt::Display for HolderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field(), self.detail())
    }
}

impl std::error::Error for HolderError {}

pub fn bad(field: &'static str, detail: impl Into<String>) -> HolderError {
    HolderError::Field {
        field,
        detail: detail.into(),
    }
}

/// One field whose value differs between two holder records (a batch re-run that changes a
/// holder already in the journal). The values are personal data: show them to the operator,
/// never log them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDifference {
    /// The field's key, as in [`Holder::FIELDS`].
    pub field: &'static str,
    pub old: String,
    pub new: String,
}

impl std::fmt::Display for FieldDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {:?} -> {:?}", self.field, self.old, self.new)
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
    /// The keys of the holder's fields, in the order of the batch columns.
    pub const FIELDS: [&'static str; 12] = [
        "card_number",
        "ssn",
        "name",
        "gender",
        "nation",
        "birthplace",
        "birth_date",
        "issue_date",
        "expiry_date",
        "pension",
        "medical",
        "medical_account",
    ];

    /// A sample holder for tests and the demo: the GB 11643 example ID number, whose 17th
    /// digit (2) makes her female.
    pub fn sample() -> Self {
        Self {
            card_number: "A12345674".into(),
            ssn: "11010519491231002X".into(),
            name: "张三".into(),
            gender: "2".into(),
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
    no_control("name", name)?;
    if name.contains('|') {
        // It would shift every field after the name in the unified output (PROFILE section 7).
        return Err(bad(
            "name",
            "holds '|', the unified interface's field separator",
        ));
    }
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
    /// Checks every field before a card is touched, with the rules the card's own read-back
    /// applies: no control character or NUL in any field; check characters (card number,
    /// citizen ID ISO 7064 MOD 11-2); dates, region and status codes; a name GBK can write in
    /// the name and name extension records (30 + 20 bytes, cut at a character boundary); a
    /// gender and a birth date that agree with the citizen ID; and every record, once encoded,
    /// decodes under the profile's rules to the value given.
    pub fn validate(&self) -> Result<(), HolderError> {
        for field in Self::FIELDS {
            no_control(field, self.value(field).unwrap_or_default())?;
        }
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
        if self.name.trim().is_empty() {
            return Err(bad("name", "is empty"));
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
        self.agrees_with_citizen_id()?;
        self.reads_back()
    }

    /// The gender and birth date against the citizen ID number: digits 7 to 14 are the birth
    /// date, the 17th digit is odd for a man and even for a woman. Gender `9` (unspecified)
    /// agrees with any ID. Call after the ID's check character is known good.
    fn agrees_with_citizen_id(&self) -> Result<(), HolderError> {
        let (Some(in_id), Some(digit)) = (self.ssn.get(6..14), self.ssn.chars().nth(16)) else {
            return Err(bad("ssn", "is not 18 characters"));
        };
        if self.birth_date != in_id {
            return Err(HolderError::BirthDateMismatch {
                birth_date: self.birth_date.clone(),
                in_id: in_id.to_string(),
            });
        }
        let id_gender = match digit.to_digit(10) {
            Some(d) if d % 2 == 1 => "1",
            Some(_) => "2",
            None => {
                return Err(bad(
                    "ssn",
                    format!("17th character {digit:?} is not a digit"),
                ))
            }
        };
        if self.gender != "9" && self.gender != id_gender {
            return Err(HolderError::GenderMismatch {
                gender: self.gender.clone(),
                digit,
            });
        }
        Ok(())
    }

    /// Every record as the station would write it, decoded as the acceptance read-back decodes
    /// it ([`fields::decode`]): a value the card would refuse, or a name that would read back
    /// differently, is refused now rather than after the card is issued.
    fn reads_back(&self) -> Result<(), HolderError> {
        let mut name = String::new();
        for (file, records) in self.records()? {
            for (rec, value) in records {
                if value.iter().all(|&b| b == 0) {
                    // An unwritten record (an empty name extension) reads back as nothing.
                    continue;
                }
                let text =
                    fields::decode(file, rec, &value).map_err(|e| HolderError::ReadBack {
                        field: rec.key,
                        detail: format!("the card's read-back would refuse it: {}", e.problem),
                    })?;
                if matches!(rec.key, "name" | "name_extension") {
                    name += &text;
                }
            }
        }
        if name != self.name {
            return Err(HolderError::ReadBack {
                field: "name",
                detail: format!("would read back from the card as {name:?}"),
            });
        }
        Ok(())
    }

    /// The fields whose values differ from `other`'s, in [`Holder::FIELDS`] order: `old` is
    /// this holder's value, `new` the other's. Empty when both carry the same data.
    pub fn differences(&self, other: &Holder) -> Vec<FieldDifference> {
        Self::FIELDS
            .into_iter()
            .filter_map(|field| {
                let (old, new) = (self.value(field)?, other.value(field)?);
                (old != new).then(|| FieldDifference {
                    field,
                    old: old.to_string(),
                    new: new.to_string(),
                })
            })
            .collect()
    }
}

/// Refuses a control character (NUL, CR, LF, ESC, DEL, C1 …) anywhere in `value`: the card's
/// read-back refuses them in GBK and ASCII records, and they would reach a terminal raw.
fn no_control(field: &'static str, value: &str) -> Result<(), HolderError> {
    match value.chars().enumerate().find(|(_, c)| c.is_control()) {
        Some((i, c)) => Err(HolderError::ControlCharacter {
            field,
            position: i + 1,
            code: c as u32,
        }),
        None => Ok(()),
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

    #[test]
    fn control_characters_are_refused_in_every_field_with_their_position() {
        let mut h = Holder::sample();
        h.name = "张\0三".into();
        let e = h.validate().unwrap_err();
        assert_eq!(
            e,
            HolderError::ControlCharacter {
                field: "name",
                position: 2,
                code: 0
            }
        );
        assert_eq!(
            e.to_string(),
            "name: control character U+0000 at character 2; the card refuses control characters \
             and NUL in text"
        );
        h.name = "张三\u{1b}[2J".into();
        assert_eq!(
            h.validate().unwrap_err().to_string(),
            "name: control character U+001B at character 3; the card refuses control characters \
             and NUL in text"
        );
        // records() refuses it as well, so nothing builds a card from such a name.
        assert_eq!(h.records().unwrap_err().field(), "name");
        let mut h = Holder::sample();
        h.medical_account = "1101000000012345\r".into();
        assert_eq!(
            h.validate(),
            Err(HolderError::ControlCharacter {
                field: "medical_account",
                position: 17,
                code: 13
            })
        );
        let mut h = Holder::sample();
        h.name = " ".into();
        assert_eq!(h.validate(), Err(bad("name", "is empty")));
    }

    #[test]
    fn gender_and_birth_date_must_agree_with_the_citizen_id() {
        // 11010519491231002X: born 1949-12-31, 17th digit 2 (even, female).
        let mut h = Holder::sample();
        h.gender = "1".into();
        let e = h.validate().unwrap_err();
        assert_eq!(
            e,
            HolderError::GenderMismatch {
                gender: "1".into(),
                digit: '2'
            }
        );
        assert_eq!(
            e.to_string(),
            "gender: 1 (male) contradicts the citizen ID, whose 17th digit 2 is even: use 2 \
             (female), or 9 for unspecified"
        );
        h.gender = "9".into();
        assert_eq!(h.validate(), Ok(()));
        // 17th digit 1: male.
        let id17 = "11010519850307001";
        let mut h = Holder {
            ssn: format!("{id17}{}", super::super::citizen_id_check(id17).unwrap()),
            birth_date: "19850307".into(),
            gender: "1".into(),
            ..Holder::sample()
        };
        assert_eq!(h.validate(), Ok(()));
        h.gender = "2".into();
        assert_eq!(
            h.validate().unwrap_err().to_string(),
            "gender: 2 (female) contradicts the citizen ID, whose 17th digit 1 is odd: use 1 \
             (male), or 9 for unspecified"
        );
        let mut h = Holder::sample();
        h.birth_date = "19491230".into();
        let e = h.validate().unwrap_err();
        assert_eq!(
            e,
            HolderError::BirthDateMismatch {
                birth_date: "19491230".into(),
                in_id: "19491231".into()
            }
        );
        assert_eq!(e.field(), "birth_date");
        assert_eq!(
            e.to_string(),
            "birth_date: \"19491230\" differs from \"19491231\", the birth date in the citizen \
             ID (its digits 7 to 14)"
        );
    }

    #[test]
    fn names_fit_the_name_and_extension_records_at_a_character_boundary() {
        let with = |name: String| Holder {
            name,
            ..Holder::sample()
        };
        // 50 GBK bytes: 15 characters in the name record, 10 in the extension.
        assert_eq!(with("王".repeat(25)).validate(), Ok(()));
        // 49 bytes: the cut falls at byte 29, the extension takes 20.
        assert_eq!(with(format!("a{}", "王".repeat(24))).validate(), Ok(()));
        // 50 bytes, but the cut at byte 29 leaves 21 for the 20-byte extension.
        assert_eq!(
            with(format!("a{}b", "王".repeat(24))).validate(),
            Err(bad(
                "name",
                "too long for the name and name extension records"
            ))
        );
        assert_eq!(
            with("王".repeat(26)).validate(),
            Err(bad("name", "52 GBK bytes; a name has 1 to 50"))
        );
        assert_eq!(
            with("吉𠮷".into()).validate(),
            Err(bad("name", "\"吉𠮷\" cannot be written in GBK"))
        );
        assert_eq!(
            with("张三|X|3B00|".into()).validate(),
            Err(bad(
                "name",
                "holds '|', the unified interface's field separator"
            ))
        );
        // Names of minorities carry a middle dot, which GBK writes as A1A4 and reads back.
        let h = with("阿依古丽·买买提".into());
        assert_eq!(h.validate(), Ok(()));
        let (name, _) = gbk_name(&h.name).unwrap();
        assert_eq!(&name[8..10], &[0xA1, 0xA4]);
    }

    #[test]
    fn differences_name_each_changed_field_with_both_values() {
        let old = Holder::sample();
        assert_eq!(old.differences(&old.clone()), []);
        let new = Holder {
            name: "李四".into(),
            medical_account: "1101000000099999".into(),
            ..old.clone()
        };
        let d = old.differences(&new);
        assert_eq!(
            d,
            [
                FieldDifference {
                    field: "name",
                    old: "张三".into(),
                    new: "李四".into()
                },
                FieldDifference {
                    field: "medical_account",
                    old: "1101000000012345".into(),
                    new: "1101000000099999".into()
                }
            ]
        );
        assert_eq!(d[0].to_string(), "name: \"张三\" -> \"李四\"");
    }
}
