//! `pCardInfo` (PROFILE section 10): `card identification code|card number|`, the card the
//! caller means. A card in the reader that is another gives −22 before any file beyond EF05 is
//! read or anything is written.

use super::error::{fields, strict_hex, UnifiedError};
use crate::ssc::{CardIdentification, SscError};
use sscard_core::crypto::ct_eq;
use sscard_core::profile::fields::valid_card_number;

/// The longest `pCardInfo` accepted, in bytes (32 + 9 + 2 separators for a valid one).
pub const MAX_CARD_INFO: usize = 128;

/// A parsed `pCardInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardInfo {
    /// The card identification code (EF05 record 01).
    pub card_id: [u8; 16],
    /// The card number (EF05 record 07), 8 characters `0-9A-Z` and its check character.
    pub card_number: String,
}

impl CardInfo {
    /// Parses `card identification code|card number|`: 32 hex digits (either case) and a
    /// card number with a valid check character, each followed by `|`, nothing else (−23).
    pub fn parse(line: &str) -> Result<Self, UnifiedError> {
        const WHAT: &str = "pCardInfo";
        let parts = fields(WHAT, line, MAX_CARD_INFO)?;
        let [id, number] = parts[..] else {
            return Err(UnifiedError::Layout {
                what: WHAT,
                problem: "it is not two fields (card identification code|card number|)",
            });
        };
        let card_id: [u8; 16] =
            strict_hex(id)
                .and_then(|b| b.try_into().ok())
                .ok_or(UnifiedError::BadField {
                    what: WHAT,
                    field: "card identification code",
                    problem: "is not 32 hex digits",
                })?;
        if !valid_card_number(number) {
            return Err(UnifiedError::BadField {
                what: WHAT,
                field: "card number",
                problem: "is not 8 characters 0-9A-Z and a valid check character",
            });
        }
        Ok(Self {
            card_id,
            card_number: number.to_string(),
        })
    }

    /// Whether the card's EF05 is this card's: −22 ([`SscError::CardMismatch`]) otherwise.
    pub fn check(&self, card: &CardIdentification) -> Result<(), SscError> {
        if !ct_eq(&self.card_id, &card.card_id) {
            return Err(SscError::CardMismatch {
                field: "card identification code",
            });
        }
        if !ct_eq(self.card_number.as_bytes(), card.card_number.as_bytes()) {
            return Err(SscError::CardMismatch {
                field: "card number",
            });
        }
        Ok(())
    }
}

impl std::str::FromStr for CardInfo {
    type Err = UnifiedError;
    fn from_str(s: &str) -> Result<Self, UnifiedError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard_core::classify::Classified;

    #[test]
    fn card_info_is_strict() {
        let c = CardInfo::parse("110100d15600000599110145000000A1|A12345674|").unwrap();
        assert_eq!(c.card_id[0], 0x11);
        assert_eq!(c.card_number, "A12345674");
        let cases: &[(&str, UnifiedError)] = &[
            ("", UnifiedError::Empty { what: "pCardInfo" }),
            (
                "110100D15600000599110145000000A1|A12345674",
                UnifiedError::Layout {
                    what: "pCardInfo",
                    problem: "the last field is not followed by '|'",
                },
            ),
            (
                "110100D15600000599110145000000A1|A12345674||",
                UnifiedError::Layout {
                    what: "pCardInfo",
                    problem: "it is not two fields (card identification code|card number|)",
                },
            ),
            (
                "110100D156000005991101450000|A12345674|",
                UnifiedError::BadField {
                    what: "pCardInfo",
                    field: "card identification code",
                    problem: "is not 32 hex digits",
                },
            ),
            (
                "110100D15600000599110145000000A1|A12345675|",
                UnifiedError::BadField {
                    what: "pCardInfo",
                    field: "card number",
                    problem: "is not 8 characters 0-9A-Z and a valid check character",
                },
            ),
        ];
        for (line, want) in cases {
            let e = CardInfo::parse(line).unwrap_err();
            assert_eq!(&e, want, "{line:?}");
            assert_eq!(e.return_code(), -23);
        }
    }
}
