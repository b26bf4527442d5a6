//! Typed views of EF05 and EF06, decoded through the profile's file table: an unwritten field is
//! empty, a field that does not parse is an error naming it — never reported as valid.

use super::SscError;
use serde::Serialize;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::fields;
use sscard_core::profile::files::{ef05, ef06};
use sscard_core::tlv::Record;

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
    /// The identification from EF05's records. The card identification code must be there;
    /// the specification version must be `2.00` or `3.00`.
    pub fn from_records(records: &[Record]) -> Result<Self, SscError> {
        let f = ef05();
        let (_, id) = fields::required(f, "card_id", records)?;
        let card_id: [u8; 16] = id.try_into().expect("length checked");
        let (spec_version, _) = fields::required(f, "spec_version", records)?;
        Ok(Self {
            card_id,
            region: to_hex(&card_id[..3]),
            card_type: fields::text(f, "card_type", records)?,
            spec_version,
            init_org: fields::text(f, "init_org", records)?,
            issue_date: fields::text(f, "issue_date", records)?,
            expiry_date: fields::text(f, "expiry_date", records)?,
            card_number: fields::text(f, "card_number", records)?,
        })
    }
}

/// Longest configured terminal device number, in characters.
pub const MAX_DEVICE_NUMBER: usize = 64;

/// A configured terminal device number (the unified line's last field, when the reader has no
/// serial number): 1 to 64 printable ASCII characters, no `|`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNumber(String);

impl DeviceNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for DeviceNumber {
    type Err = SscError;

    fn from_str(s: &str) -> Result<Self, SscError> {
        let fits = (1..=MAX_DEVICE_NUMBER).contains(&s.len())
            && s.bytes()
                .all(|b| (b.is_ascii_graphic() || b == b' ') && b != b'|');
        if fits {
            Ok(Self(s.to_string()))
        } else {
            Err(SscError::DeviceNumber {
                value: s.chars().take(MAX_DEVICE_NUMBER + 1).collect(),
            })
        }
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
        let f = ef06();
        Ok(Self {
            ssn: fields::text(f, "ssn", records)?,
            name: fields::text(f, "name", records)? + &fields::text(f, "name_extension", records)?,
            gender: fields::text(f, "gender", records)?,
            nation: fields::text(f, "nation", records)?,
            birthplace: fields::text(f, "birthplace", records)?,
            birth_date: fields::text(f, "birth_date", records)?,
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
    fn a_device_number_is_one_field_of_the_line() {
        assert_eq!("T-0042".parse::<DeviceNumber>().unwrap().as_str(), "T-0042");
        assert_eq!(
            "12|34".parse::<DeviceNumber>(),
            Err(SscError::DeviceNumber {
                value: "12|34".into()
            })
        );
        let e = "".parse::<DeviceNumber>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "the terminal device number \"\" is not 1 to 64 printable ASCII characters without `|`"
        );
        use sscard_core::classify::{Classified, ExitClass};
        assert_eq!(
            (e.return_code(), e.exit_class()),
            (-23, ExitClass::BadInput)
        );
        assert!("\u{7}1".parse::<DeviceNumber>().is_err());
        assert!("终端".parse::<DeviceNumber>().is_err());
        assert!("1".repeat(64).parse::<DeviceNumber>().is_ok());
        assert_eq!(
            "1".repeat(1000).parse::<DeviceNumber>(),
            Err(SscError::DeviceNumber {
                value: "1".repeat(65)
            })
        );
    }

    #[test]
    fn impossible_fields_are_errors_not_values() {
        let ok = HolderInfo::from_records(&[
            rec(0x0A, "32"),
            rec(0x09, &format!("D5C5C8FD{}", "00".repeat(26))),
        ])
        .unwrap();
        assert_eq!((ok.name.as_str(), ok.gender.as_str()), ("张三", "2"));
        assert_eq!(
            HolderInfo::from_records(&[rec(0x0A, "33")])
                .unwrap_err()
                .to_string(),
            "EF06 gender is malformed: \"3\" is not 1, 2 or 9"
        );
        let id = CardIdentification::from_records(&[
            rec(0x01, "110100D15600000599110145000000A1"),
            rec(0x03, "322E3030"),
            rec(0x05, "20240230"),
        ]);
        assert_eq!(
            id.unwrap_err().to_string(),
            "EF05 issue date is malformed: 20240230 is not a date"
        );
        use sscard_core::classify::Classified;
        let no_id = CardIdentification::from_records(&[rec(0x03, "322E3030")]).unwrap_err();
        assert_eq!(no_id.return_code(), -20, "{no_id}");
        let bad_version = CardIdentification::from_records(&[
            rec(0x01, "110100D15600000599110145000000A1"),
            rec(0x03, "342E3030"),
        ])
        .unwrap_err();
        assert_eq!(
            bad_version.to_string(),
            "EF05 specification version is malformed: \"4.00\" is not 2.00 or 3.00"
        );
    }
}
