use super::KeyError;
use sscard_core::crypto::{card_factor, city_factor, province_factor};
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::Kid;

/// The card a key is wanted for: its identification code and the region it was issued in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRef {
    pub card_id: [u8; 16],
}

impl CardRef {
    pub fn new(card_id: [u8; 16]) -> Self {
        Self { card_id }
    }
    /// The issuing city: the first 3 bytes of the identification code in BCD.
    pub fn city(&self) -> String {
        to_hex(&self.card_id[..3])
    }
    /// The province: the city's first two digits and `0000`.
    pub fn province(&self) -> String {
        format!("{}0000", &self.city()[..2])
    }
    /// Factors from the national level down to the card.
    pub fn national_factors(&self) -> Result<[[u8; 8]; 3], KeyError> {
        Ok([
            province_factor(&self.province())?,
            city_factor(&self.city())?,
            card_factor(&self.card_id)?,
        ])
    }
    pub fn card_factor(&self) -> [u8; 8] {
        card_factor(&self.card_id).expect("16 bytes")
    }
    /// The factors from `key_id`'s master down to this card (PROFILE section 5): national keys
    /// through province and city, local keys and TK the card level only.
    pub fn factors_for(&self, key_id: Kid) -> Result<Vec<[u8; 8]>, KeyError> {
        Ok(if key_id.is_national() {
            self.national_factors()?.to_vec()
        } else {
            vec![self.card_factor()]
        })
    }
}
