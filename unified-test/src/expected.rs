//! The output a correct library gives for a served card, computed from the card's data alone
//! (PROFILE sections 7 and 10): never from the library under test.

use crate::scene::{CardSpec, SceneError};
use sscard_core::atr::Atr;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::{Kid, SSC_ATR};

/// Joins fields, each followed by `|`.
pub fn line<S: AsRef<str>>(fields: &[S]) -> String {
    fields.iter().map(|f| format!("{}|", f.as_ref())).collect()
}

/// The ATR historical bytes of the model SSC, hex.
pub fn historical_bytes() -> String {
    to_hex(&Atr::historical_bytes(&SSC_ATR).unwrap_or_default())
}

/// The `iReadCardBas` line: region | SSN | card number | card identification code | full name |
/// ATR historical bytes | specification version | issue date | expiry date | terminal number |
/// terminal device number |.
pub fn basic_info_line(card: &CardSpec, terminal_number: &str, device_number: &str) -> String {
    let id = card.card_id_hex();
    line(&[
        &id[..6],
        &card.holder.ssn,
        &card.holder.card_number,
        &id,
        &card.holder.name,
        &historical_bytes(),
        card.algorithm.spec_version(),
        &card.holder.issue_date,
        &card.holder.expiry_date,
        terminal_number,
        device_number,
    ])
}

/// The fixed fields of the step-1 line; R and the challenge are the card's and the library's
/// random numbers, so [`step1_line`] fills in the ones the library gave once their form is
/// checked.
pub fn step1_line(card: &CardSpec, random: &str, challenge: &str, terminal: &str) -> String {
    let id = card.card_id_hex();
    line(&[
        &id[..6],
        &historical_bytes(),
        &format!("{:02X}", card.algorithm.id()),
        &id,
        random,
        challenge,
        terminal,
    ])
}

/// Whether `text` is `n` bytes in hex digits.
pub fn is_hex_of(text: &str, n: usize) -> bool {
    text.len() == 2 * n && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The encryption machine's answer to a step-1 line (PROFILE section 10), from the test key
/// set: `internal-auth value|external-auth cryptogram|` — the IRK cryptogram over R, and on
/// `3.00` cards the RKSSSE cryptogram over the card's challenge.
pub fn hsm_key_line(
    card: &CardSpec,
    random: &[u8],
    challenge: &[u8],
) -> Result<String, SceneError> {
    let key = |kid| card.card_key(kid);
    let crypt = |kid, data: &[u8]| -> Result<String, SceneError> {
        Ok(to_hex(
            &card
                .algorithm
                .cryptogram(&key(kid)?, data)
                .map_err(|source| SceneError::Crypto {
                    what: "cryptogram",
                    source,
                })?,
        ))
    };
    let internal = crypt(Kid::Irk, random)?;
    let external = if card.algorithm == Algorithm::Sm4 {
        crypt(Kid::Rkssse, challenge)?
    } else {
        String::new()
    };
    Ok(line(&[internal, external]))
}

/// Masks a PIN for reports: its length in `*`.
pub fn mask(pin: &str) -> String {
    "*".repeat(pin.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::CardSpec;

    #[test]
    fn the_basic_info_line_of_the_sample_card() {
        let card = CardSpec::sample(Algorithm::Sm4);
        assert_eq!(
            basic_info_line(&card, "110100000001", ""),
            "110100|11010519491231002X|A12345674|110100D15600000599110145000000A1|张三|\
             5353434152443031|3.00|20240101|20340101|110100000001||"
        );
    }

    #[test]
    fn the_hsm_answer_matches_the_worked_example() {
        // PROFILE section 9: card RKSSSE's cryptogram of R = 0102030405060708.
        let r = [1, 2, 3, 4, 5, 6, 7, 8];
        let sm4 = hsm_key_line(&CardSpec::sample(Algorithm::Sm4), &r, &r).unwrap();
        assert!(sm4.ends_with("|6C50CAF32F577BE73E1CE3909AB70FC9|"), "{sm4}");
        let tdes = hsm_key_line(&CardSpec::sample(Algorithm::Tdes), &r, &r).unwrap();
        assert!(tdes.ends_with("||") && tdes.len() == 16 + 2, "{tdes}");
    }

    #[test]
    fn the_step1_line_has_the_algorithm_id() {
        let card = CardSpec::sample(Algorithm::Tdes);
        assert_eq!(
            step1_line(&card, "0102030405060708", "", "110100000001"),
            "110100|5353434152443031|01|110100D15600000599110145000000A1|0102030405060708||110100000001|"
        );
        assert!(is_hex_of("0102030405060708", 8));
        assert!(!is_hex_of("01020304050607", 8));
    }
}
