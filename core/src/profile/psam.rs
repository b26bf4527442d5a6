//! The PSAM's files (PROFILE section 6): EF15 (serial, algorithm, region, level, dates) and EF16
//! (the terminal number), and how many diversification factors a PSAM of a level takes.

use super::Kid;
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
}

/// What EF15 says about a PSAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsamInfo {
    /// The serial number, hex of its 10 BCD bytes.
    pub serial: String,
    pub algorithm_id: u8,
    /// The issuer's region code.
    pub region: String,
    /// [`level::NATIONAL`], [`level::PROVINCE`] or [`level::CITY`].
    pub level: u8,
}

/// Why EF15 does not describe a PSAM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PsamInfoError {
    #[error("PSAM EF15 has {len} bytes, the profile has {EF15_LEN}")]
    Length { len: usize },
    #[error("PSAM EF15 gives key level {level}; levels are 0 national, 1 province, 2 city")]
    Level { level: u8 },
}

impl PsamInfo {
    /// Parses EF15.
    pub fn parse(ef15: &[u8]) -> Result<Self, PsamInfoError> {
        if ef15.len() < EF15_LEN {
            return Err(PsamInfoError::Length { len: ef15.len() });
        }
        let level = ef15[15];
        if level > level::CITY {
            return Err(PsamInfoError::Level { level });
        }
        Ok(Self {
            serial: to_hex(&ef15[..10]),
            algorithm_id: ef15[11],
            region: to_hex(&ef15[12..15]),
            level,
        })
    }
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

    #[test]
    fn ef15_and_levels() {
        let ef15 = parse_hex("110100000000000000010101110100022024010120340101").unwrap();
        let info = PsamInfo::parse(&ef15).unwrap();
        assert_eq!(
            (info.algorithm_id, info.region.as_str(), info.level),
            (1, "110100", 2)
        );
        assert_eq!(
            PsamInfo::parse(&ef15[..20]),
            Err(PsamInfoError::Length { len: 20 })
        );
        let mut bad = ef15.clone();
        bad[15] = 0xFF;
        assert_eq!(
            PsamInfo::parse(&bad),
            Err(PsamInfoError::Level { level: 255 })
        );
        assert_eq!(
            (factor_count(0), factor_count(1), factor_count(2)),
            (3, 2, 1)
        );
        assert_eq!(factor_count_for(1, Kid::EakL), 1);
        assert_eq!(factor_count_for(1, Kid::Rkssse), 2);
    }
}
