//! The file system of the social security card (PROFILE section 2), declared once: DFs, EFs with
//! their FIDs and SFIs, the records of each EF (number, tag, length, field, encoding) and the
//! access rules per algorithm. The card model enforces it, the host decodes and builds APDUs with
//! it, the personalisation station writes holders through it. Adding a record is one line here.

use super::Kid;
use crate::crypto::Algorithm;

/// The dedicated files of the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Df {
    /// The master file `3F00`.
    Mf,
    /// The SSSE application (selected by AID).
    Ssse,
    /// The city's local extension `DF01` under SSSE.
    Df01,
}

/// How a record's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// Raw bytes, shown as hex.
    Binary,
    /// Printable ASCII, right-padded with `00`.
    Ascii,
    /// Packed BCD digits.
    Bcd,
    /// A calendar date, BCD `YYYYMMDD`.
    Date,
    /// GBK text, right-padded with `00`.
    Gbk,
}

/// A rule a field's value obeys beyond its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// Nothing more.
    None,
    /// The card identification code: BCD region ‖ `D156000005` ‖ serial.
    CardId,
    /// 8 characters `0-9A-Z` and the check character of PROFILE section 2.
    CardNumber,
    /// A citizen ID number with its ISO 7064 MOD 11-2 check character.
    CitizenId,
    /// One of these values.
    OneOf(&'static [&'static str]),
}

/// One record of a linear TLV file: created at manufacture with its tag and length.
#[derive(Debug, PartialEq, Eq)]
pub struct RecordDef {
    /// Record number (1-based).
    pub number: u8,
    pub tag: u8,
    /// Value length in bytes.
    pub len: u8,
    /// What the field is, for people (`card number`).
    pub name: &'static str,
    /// The field's key in holder data, reports and JSON (`card_number`).
    pub key: &'static str,
    pub encoding: Encoding,
    pub rule: Rule,
}

/// The structure of an EF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structure {
    /// Linear TLV records, all created at manufacture.
    Records(&'static [RecordDef]),
    /// Transparent, of this size.
    Binary(usize),
}

/// What opens a file for reading once the card is issued. (In PERSONALISATION, external
/// authentication with TK opens every file.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Free reading.
    Always,
    /// External authentication with this key.
    ExtAuth(Kid),
    /// PIN verification, or external authentication with this key.
    PinOrExtAuth(Kid),
}

/// One elementary file.
#[derive(Debug, PartialEq, Eq)]
pub struct FileDef {
    /// The file's name in commands, messages and card images: `EF05`, `DF01/EF01`.
    pub name: &'static str,
    pub df: Df,
    pub fid: u16,
    pub sfi: u8,
    pub structure: Structure,
    /// Read access on `2.00` (3DES) cards.
    pub read_tdes: Access,
    /// Read access on `3.00` (SM4) cards.
    pub read_sm4: Access,
    /// The key whose line-protection MAC updates the file once issued (TK before).
    pub update: Kid,
}

const fn rec(
    number: u8,
    tag: u8,
    len: u8,
    name: &'static str,
    key: &'static str,
    encoding: Encoding,
    rule: Rule,
) -> RecordDef {
    RecordDef {
        number,
        tag,
        len,
        name,
        key,
        encoding,
        rule,
    }
}

use Encoding::{Ascii, Bcd, Binary, Date, Gbk};

/// EF05, card identification: record number = tag.
pub const EF05_RECORDS: &[RecordDef] = &[
    rec(
        1,
        0x01,
        16,
        "card identification code",
        "card_id",
        Binary,
        Rule::CardId,
    ),
    rec(2, 0x02, 1, "card type", "card_type", Ascii, Rule::None),
    rec(
        3,
        0x03,
        4,
        "specification version",
        "spec_version",
        Ascii,
        Rule::OneOf(&["2.00", "3.00"]),
    ),
    rec(
        4,
        0x04,
        12,
        "initialisation organisation",
        "init_org",
        Bcd,
        Rule::None,
    ),
    rec(5, 0x05, 4, "issue date", "issue_date", Date, Rule::None),
    rec(6, 0x06, 4, "expiry date", "expiry_date", Date, Rule::None),
    rec(
        7,
        0x07,
        9,
        "card number",
        "card_number",
        Ascii,
        Rule::CardNumber,
    ),
];

/// EF06, holder basic info: record numbers differ from tags.
pub const EF06_RECORDS: &[RecordDef] = &[
    rec(
        1,
        0x08,
        18,
        "social security number",
        "ssn",
        Ascii,
        Rule::CitizenId,
    ),
    rec(2, 0x09, 30, "name", "name", Gbk, Rule::None),
    rec(
        3,
        0x4E,
        20,
        "name extension",
        "name_extension",
        Gbk,
        Rule::None,
    ),
    rec(
        4,
        0x0A,
        1,
        "gender",
        "gender",
        Ascii,
        Rule::OneOf(&["1", "2", "9"]),
    ),
    rec(5, 0x0B, 1, "ethnic group", "nation", Bcd, Rule::None),
    rec(6, 0x0C, 3, "birthplace", "birthplace", Bcd, Rule::None),
    rec(7, 0x0D, 4, "birth date", "birth_date", Date, Rule::None),
];

const STATUS: Rule = Rule::OneOf(&["00", "01", "02"]);

/// EF07 *(profile)*, social insurance status.
pub const EF07_RECORDS: &[RecordDef] = &[
    rec(
        1,
        0x20,
        1,
        "pension insurance status",
        "pension",
        Bcd,
        STATUS,
    ),
    rec(
        2,
        0x21,
        1,
        "medical insurance status",
        "medical",
        Bcd,
        STATUS,
    ),
    rec(
        3,
        0x22,
        8,
        "medical insurance account",
        "medical_account",
        Bcd,
        Rule::None,
    ),
];

/// DF01/EF01 *(profile)*, the city's local records.
pub const DF01_EF01_RECORDS: &[RecordDef] = &[
    rec(
        1,
        0x40,
        8,
        "local record 40",
        "local_40",
        Binary,
        Rule::None,
    ),
    rec(
        2,
        0x41,
        16,
        "local record 41",
        "local_41",
        Binary,
        Rule::None,
    ),
    rec(
        3,
        0x42,
        32,
        "local record 42",
        "local_42",
        Binary,
        Rule::None,
    ),
];

/// DF01/EF02 *(profile)*: 256 bytes transparent.
pub const DF01_EF02_SIZE: usize = 256;

/// Every EF of the card.
pub static FILES: [FileDef; 5] = [
    FileDef {
        name: "EF05",
        df: Df::Ssse,
        fid: 0xEF05,
        sfi: 0x05,
        structure: Structure::Records(EF05_RECORDS),
        read_tdes: Access::Always,
        read_sm4: Access::Always,
        update: Kid::UkN,
    },
    FileDef {
        name: "EF06",
        df: Df::Ssse,
        fid: 0xEF06,
        sfi: 0x06,
        structure: Structure::Records(EF06_RECORDS),
        read_tdes: Access::Always,
        read_sm4: Access::ExtAuth(Kid::Rkssse),
        update: Kid::UkN,
    },
    FileDef {
        name: "EF07",
        df: Df::Ssse,
        fid: 0xEF07,
        sfi: 0x07,
        structure: Structure::Records(EF07_RECORDS),
        read_tdes: Access::ExtAuth(Kid::Rkssse),
        read_sm4: Access::ExtAuth(Kid::Rkssse),
        update: Kid::UkN,
    },
    FileDef {
        name: "DF01/EF01",
        df: Df::Df01,
        fid: 0xEF01,
        sfi: 0x01,
        structure: Structure::Records(DF01_EF01_RECORDS),
        read_tdes: Access::PinOrExtAuth(Kid::EakL),
        read_sm4: Access::PinOrExtAuth(Kid::EakL),
        update: Kid::UkL,
    },
    FileDef {
        name: "DF01/EF02",
        df: Df::Df01,
        fid: 0xEF02,
        sfi: 0x02,
        structure: Structure::Binary(DF01_EF02_SIZE),
        read_tdes: Access::PinOrExtAuth(Kid::EakL),
        read_sm4: Access::PinOrExtAuth(Kid::EakL),
        update: Kid::UkL,
    },
];

/// The files holder data goes to, in the order a station writes them.
pub fn holder_files() -> [&'static FileDef; 3] {
    [&FILES[0], &FILES[1], &FILES[2]]
}

/// EF05, the card identification.
pub fn ef05() -> &'static FileDef {
    &FILES[0]
}

/// EF06, the holder's basic information.
pub fn ef06() -> &'static FileDef {
    &FILES[1]
}

/// EF07, the social insurance status.
pub fn ef07() -> &'static FileDef {
    &FILES[2]
}

/// A file by its name (`EF05`, `DF01/EF01`, case-insensitive).
pub fn by_name(name: &str) -> Option<&'static FileDef> {
    FILES.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// The names of every file, for messages (`EF05, EF06, EF07, DF01/EF01 or DF01/EF02`).
pub fn names() -> String {
    let names: Vec<&str> = FILES.iter().map(|f| f.name).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

impl Df {
    /// The DF's file identifier: `3F00` for the MF, `DF01`; SSSE has none (selected by AID).
    pub fn fid(self) -> Option<u16> {
        match self {
            Df::Mf => Some(super::fid::MF),
            Df::Df01 => Some(super::fid::DF01),
            _ => None,
        }
    }

    /// The DF with this FID directly under `self` (SELECT by path walks these): DF01 under
    /// SSSE. SSSE, having no FID, is no child of the MF by path.
    pub fn child(self, fid: u16) -> Option<Df> {
        [Df::Df01]
            .into_iter()
            .find(|c| c.parent() == Some(self) && c.fid() == Some(fid))
    }

    /// The DF directly above `self`.
    pub fn parent(self) -> Option<Df> {
        match self {
            Df::Ssse => Some(Df::Mf),
            Df::Df01 => Some(Df::Ssse),
            _ => None,
        }
    }
}

/// The EF with this FID directly under `df`.
pub fn by_fid(df: Df, fid: u16) -> Option<&'static FileDef> {
    FILES.iter().find(|e| e.df == df && e.fid == fid)
}

/// The EF with this SFI directly under `df`.
pub fn by_sfi(df: Df, sfi: u8) -> Option<&'static FileDef> {
    FILES.iter().find(|e| e.df == df && e.sfi == sfi)
}

impl FileDef {
    /// What opens the file for reading on a card of `alg`.
    pub fn read_access(&self, alg: Algorithm) -> Access {
        match alg {
            Algorithm::Tdes => self.read_tdes,
            _ => self.read_sm4,
        }
    }

    /// In the city's local DF01 (local keys) rather than national.
    pub fn is_local(&self) -> bool {
        self.df == Df::Df01
    }

    /// The record definitions (empty for a transparent file).
    pub fn records(&self) -> &'static [RecordDef] {
        match self.structure {
            Structure::Records(r) => r,
            Structure::Binary(_) => &[],
        }
    }

    /// Whether the file is transparent.
    pub fn is_binary(&self) -> bool {
        matches!(self.structure, Structure::Binary(_))
    }

    /// The record with this tag.
    pub fn record_by_tag(&self, tag: u8) -> Option<&'static RecordDef> {
        self.records().iter().find(|r| r.tag == tag)
    }

    /// The record with this key (`card_number`).
    pub fn record_by_key(&self, key: &str) -> Option<&'static RecordDef> {
        self.records().iter().find(|r| r.key == key)
    }
}

/// A record by its key in any file (`ssn` → EF06 record 1).
pub fn record_by_key(key: &str) -> Option<(&'static FileDef, &'static RecordDef)> {
    FILES
        .iter()
        .find_map(|f| f.record_by_key(key).map(|r| (f, r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_consistent() {
        for f in &FILES {
            for (i, r) in f.records().iter().enumerate() {
                assert_eq!(r.number as usize, i + 1, "{} {}", f.name, r.name);
            }
            assert_eq!(by_sfi(f.df, f.sfi).map(|g| g.name), Some(f.name));
            assert_eq!(by_fid(f.df, f.fid).map(|g| g.name), Some(f.name));
            assert_eq!(
                by_name(&f.name.to_lowercase()).map(|g| g.name),
                Some(f.name)
            );
        }
        // EF05 numbers equal tags; EF06 does not.
        assert!(EF05_RECORDS.iter().all(|r| r.number == r.tag));
        assert_eq!(ef06().record_by_tag(0x4E).map(|r| r.number), Some(3));
        assert_eq!(
            record_by_key("ssn").map(|(f, r)| (f.name, r.tag)),
            Some(("EF06", 0x08))
        );
        assert_eq!(names(), "EF05, EF06, EF07, DF01/EF01 or DF01/EF02");
        assert_eq!(Df::Ssse.child(0xDF01), Some(Df::Df01));
        assert_eq!(Df::Mf.child(0xDF01), None, "DF01 lies under SSSE");
        assert_eq!(Df::Df01.fid(), Some(0xDF01));
        assert_eq!(Df::Ssse.fid(), None);
    }

    #[test]
    fn read_rules_per_algorithm() {
        assert_eq!(ef06().read_access(Algorithm::Tdes), Access::Always);
        assert_eq!(
            ef06().read_access(Algorithm::Sm4),
            Access::ExtAuth(Kid::Rkssse)
        );
        assert_eq!(
            ef07().read_access(Algorithm::Tdes),
            Access::ExtAuth(Kid::Rkssse)
        );
        assert!(by_name("DF01/EF02").is_some_and(|f| f.is_local() && f.is_binary()));
    }
}
