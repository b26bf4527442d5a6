//! The PSAM's files (PROFILE section 6): EF15 (serial, algorithm, region, level, dates) and EF16
//! (the terminal number), and how many diversification factors a PSAM of a level takes.

use super::fields::valid_date;
use super::{codes, Kid};
use crate::classify::{Classified, ExitClass};
use crate::crypto::Algorithm;
use crate::hexfmt::to_hex;

/// Bytes of EF15: serial BCD(10) ‖ version ‖ algorithm ‖ region BCD(3) ‖ level ‖ start BCD(4) ‖
/// expiry BCD(4).
pub const EF15_LEN: usize = 24;
/// Bytes of EF16, the terminal number BCD(6).
pub const EF16_LEN: usize = 6;

/// The second FIDs of EF15 and EF16 that field tools select (PROFILE section 4): `0015`, `0016`.
pub const EF15_SHORT_FID: u16 = 0x0015;
pub const EF16_SHORT_FID: u16 = 0x0016;

/// Key levels of a PSAM.
pub mod level {
    pub const NATIONAL: u8 = 0;
    pub const PROVINCE: u8 = 1;
    pub const CITY: u8 = 2;

    /// The level's name (`city` for [`CITY`] and any deeper level).
    pub fn name(level: u8) -> &'static str {
        match level {
            NATIONAL => "national",
            PROVINCE => "province",
            _ => "city",
        }
    }
}

/// What EF15 says about a PSAM, every field checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsamInfo {
    /// The serial number: its 10 BCD bytes as 20 digits.
    pub serial: String,
    pub version: u8,
    /// `01` 3DES or `03` SM4.
    pub algorithm: Algorithm,
    /// The issuer's region code (6 digits).
    pub region: String,
    /// [`level::NATIONAL`], [`level::PROVINCE`] or [`level::CITY`].
    pub level: u8,
    /// `YYYYMMDD`.
    pub start_date: String,
    /// `YYYYMMDD`.
    pub expiry_date: String,
}

/// Why EF15 or EF16 does not describe a PSAM of the profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PsamInfoError {
    #[error("PSAM EF15 has {len} bytes, the profile has {EF15_LEN}")]
    Length { len: usize },
    #[error("PSAM EF15 gives key level {level}; levels are 0 national, 1 province, 2 city")]
    Level { level: u8 },
    /// `02` (SSF33) is a national algorithm this host does not implement.
    #[error(
        "the PSAM's algorithm {id:02X} (SSF33) is not supported: use a 3DES (01) or SM4 (03) PSAM"
    )]
    AlgorithmNotSupported { id: u8 },
    #[error("PSAM EF15 gives algorithm {id:02X}; the profile has 01 (3DES) and 03 (SM4)")]
    Algorithm { id: u8 },
    /// A BCD field holds a nibble above 9.
    #[error("PSAM {field} is not BCD: {hex}")]
    NotBcd { field: &'static str, hex: String },
    #[error("PSAM {field} {date} is not a date")]
    Date { field: &'static str, date: String },
    /// The terminal number is exactly 6 BCD bytes (12 digits).
    #[error(
        "PSAM EF16 (terminal number) has {len} bytes, the profile has {EF16_LEN} (12 BCD digits)"
    )]
    TerminalLength { len: usize },
}

impl Classified for PsamInfoError {
    /// The PSAM's own algorithm is -2202; any other malformed field makes the card in the
    /// reader no PSAM of the profile (-2201).
    fn return_code(&self) -> i32 {
        match self {
            Self::AlgorithmNotSupported { .. } => codes::PSAM_ALGORITHM,
            _ => codes::NO_PSAM,
        }
    }

    fn exit_class(&self) -> ExitClass {
        ExitClass::Other
    }
}

/// `bytes` as digits when every nibble is BCD.
fn bcd(field: &'static str, bytes: &[u8]) -> Result<String, PsamInfoError> {
    let hex = to_hex(bytes);
    if hex.bytes().all(|b| b.is_ascii_digit()) {
        Ok(hex)
    } else {
        Err(PsamInfoError::NotBcd { field, hex })
    }
}

fn date(field: &'static str, bytes: &[u8]) -> Result<String, PsamInfoError> {
    let date = bcd(field, bytes)?;
    if valid_date(&date) {
        Ok(date)
    } else {
        Err(PsamInfoError::Date { field, date })
    }
}

impl PsamInfo {
    /// Parses EF15: exactly [`EF15_LEN`] bytes, BCD where the profile says BCD, a level of
    /// 0 to 2, algorithm `01` or `03`, real dates.
    pub fn parse(ef15: &[u8]) -> Result<Self, PsamInfoError> {
        if ef15.len() != EF15_LEN {
            return Err(PsamInfoError::Length { len: ef15.len() });
        }
        let level = ef15[15];
        if level > level::CITY {
            return Err(PsamInfoError::Level { level });
        }
        let algorithm = match ef15[11] {
            0x01 => Algorithm::Tdes,
            0x03 => Algorithm::Sm4,
            0x02 => return Err(PsamInfoError::AlgorithmNotSupported { id: 0x02 }),
            id => return Err(PsamInfoError::Algorithm { id }),
        };
        Ok(Self {
            serial: bcd("EF15 serial number", &ef15[..10])?,
            version: ef15[10],
            algorithm,
            region: bcd("EF15 issuer region", &ef15[12..15])?,
            level,
            start_date: date("EF15 start date", &ef15[16..20])?,
            expiry_date: date("EF15 expiry date", &ef15[20..24])?,
        })
    }
}

/// Parses EF16, the terminal number: exactly [`EF16_LEN`] BCD bytes, returned as 12 digits.
pub fn parse_terminal_number(ef16: &[u8]) -> Result<String, PsamInfoError> {
    if ef16.len() != EF16_LEN {
        return Err(PsamInfoError::TerminalLength { len: ef16.len() });
    }
    bcd("EF16 terminal number", ef16)
}

/// How many factors DES INIT takes on a PSAM of `level` holding masters at its level: one per
/// level between the PSAM and the card (a city PSAM: the card factor alone).
pub fn factor_count(level: u8) -> usize {
    3usize.saturating_sub(level as usize).max(1)
}

/// How many factors DES INIT takes for `kid`: national keys descend from the PSAM's level, the
/// local keys have a city master and the card level only.
pub fn factor_count_for(level: u8, kid: Kid) -> usize {
    if kid.is_national() {
        factor_count(level)
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hexfmt::parse_hex;

    const EF15: &str = "110100000000000000010101110100022024010120340101";

    fn with(i: usize, byte: u8) -> Vec<u8> {
        let mut ef15 = parse_hex(EF15).unwrap();
        ef15[i] = byte;
        ef15
    }

    #[test]
    fn ef15_and_levels() {
        let ef15 = parse_hex(EF15).unwrap();
        let info = PsamInfo::parse(&ef15).unwrap();
        assert_eq!(
            info,
            PsamInfo {
                serial: "11010000000000000001".into(),
                version: 1,
                algorithm: Algorithm::Tdes,
                region: "110100".into(),
                level: 2,
                start_date: "20240101".into(),
                expiry_date: "20340101".into(),
            }
        );
        assert_eq!(
            PsamInfo::parse(&ef15[..20]),
            Err(PsamInfoError::Length { len: 20 })
        );
        assert_eq!(
            PsamInfo::parse(&[ef15.clone(), vec![0]].concat()),
            Err(PsamInfoError::Length { len: 25 })
        );
        assert_eq!(
            (factor_count(0), factor_count(1), factor_count(2)),
            (3, 2, 1)
        );
        assert_eq!(factor_count_for(1, Kid::EakL), 1);
        assert_eq!(factor_count_for(1, Kid::Rkssse), 2);
    }

    #[test]
    fn every_field_of_ef15_is_checked() {
        for level in [0, 1, 2] {
            assert_eq!(PsamInfo::parse(&with(15, level)).unwrap().level, level);
        }
        let e = PsamInfo::parse(&with(15, 0xFF)).unwrap_err();
        assert_eq!(e, PsamInfoError::Level { level: 255 });
        assert_eq!(
            e.to_string(),
            "PSAM EF15 gives key level 255; levels are 0 national, 1 province, 2 city"
        );
        assert_eq!(
            PsamInfo::parse(&with(15, 3)),
            Err(PsamInfoError::Level { level: 3 })
        );
        assert_eq!(
            PsamInfo::parse(&with(11, 0x03)).unwrap().algorithm,
            Algorithm::Sm4
        );
        let ssf33 = PsamInfo::parse(&with(11, 0x02)).unwrap_err();
        assert_eq!(ssf33, PsamInfoError::AlgorithmNotSupported { id: 2 });
        assert_eq!(
            ssf33.to_string(),
            "the PSAM's algorithm 02 (SSF33) is not supported: use a 3DES (01) or SM4 (03) PSAM"
        );
        assert_eq!(ssf33.return_code(), -2202);
        for id in [0x00, 0x04, 0xFF] {
            let e = PsamInfo::parse(&with(11, id)).unwrap_err();
            assert_eq!(e, PsamInfoError::Algorithm { id });
            assert_eq!(e.return_code(), -2201);
        }
        assert_eq!(
            PsamInfo::parse(&with(9, 0x1A)),
            Err(PsamInfoError::NotBcd {
                field: "EF15 serial number",
                hex: "1101000000000000001A".into()
            })
        );
        assert_eq!(
            PsamInfo::parse(&with(12, 0xF1)).unwrap_err().to_string(),
            "PSAM EF15 issuer region is not BCD: F10100"
        );
        assert_eq!(
            PsamInfo::parse(&with(17, 0x2F)),
            Err(PsamInfoError::NotBcd {
                field: "EF15 start date",
                hex: "202F0101".into()
            })
        );
        assert_eq!(
            PsamInfo::parse(&with(18, 0x13)),
            Err(PsamInfoError::Date {
                field: "EF15 start date",
                date: "20241301".into()
            })
        );
        let feb30 =
            PsamInfo::parse(&[&parse_hex(EF15).unwrap()[..20], &[0x20, 0x34, 0x02, 0x30]].concat())
                .unwrap_err();
        assert_eq!(
            feb30.to_string(),
            "PSAM EF15 expiry date 20340230 is not a date"
        );
    }

    #[test]
    fn the_terminal_number_is_six_bcd_bytes() {
        assert_eq!(
            parse_terminal_number(&parse_hex("110100000001").unwrap()).as_deref(),
            Ok("110100000001")
        );
        assert_eq!(
            parse_terminal_number(&[0x31; 4000]),
            Err(PsamInfoError::TerminalLength { len: 4000 })
        );
        assert_eq!(
            parse_terminal_number(&[0x11; 5]).unwrap_err().to_string(),
            "PSAM EF16 (terminal number) has 5 bytes, the profile has 6 (12 BCD digits)"
        );
        assert_eq!(
            parse_terminal_number(&parse_hex("1101000000AB").unwrap()),
            Err(PsamInfoError::NotBcd {
                field: "EF16 terminal number",
                hex: "1101000000AB".into()
            })
        );
    }
}
