//! The cards a case puts in the readers: a personalised SSC in a given state and a PSAM, both
//! built from the profile's test key set, and the facts about them a case computes its expected
//! output from.

use sscard_core::crypto::Algorithm;
use sscard_core::crypto::Key;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::holder::{Holder, HolderError};
use sscard_core::profile::{Kid, INITIAL_PIN, TEST_CITY};
use sscard_model::build;
use sscard_model::image::Memory;
use sscard_model::memory::{kid_name, HexBytes, LifeCycle};
use sscard_model::Image;

/// A holder name of 34 GBK bytes: the first 30 fill the name record (tag `09`), the rest
/// continue in the name extension (tag `4E`).
pub const LONG_NAME: &str = "阿卜杜热合曼·买买提明·艾力克木江";

/// The card identification code of a card issued by another city (120100) than the test
/// PSAM's (110100).
pub const OTHER_CITY_CARD_ID: &str = "120100D15600000599110145000000B2";

/// Why a scene could not be built (a harness defect: the fixed test data is valid).
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    #[error("the test holder cannot be written: {0}")]
    Holder(#[from] HolderError),
    #[error("the card image has no {0}")]
    Image(&'static str),
    #[error("cannot compute the card's {what}: {source}")]
    Crypto {
        what: &'static str,
        source: sscard_core::crypto::CryptoError,
    },
}

impl sscard_core::classify::Classified for SceneError {
    fn return_code(&self) -> i32 {
        sscard_core::profile::codes::UNKNOWN
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        sscard_core::classify::ExitClass::Other
    }
}

/// An SSC to serve, with what the harness knows about it.
#[derive(Clone, Debug)]
pub struct CardSpec {
    pub algorithm: Algorithm,
    pub card_id: [u8; 16],
    pub holder: Holder,
    pub pin: String,
    /// PIN tries left; `None` = the full limit.
    pub pin_tries: Option<u8>,
    /// Issued (END PERSONALISATION done) or still in personalisation.
    pub issued: bool,
}

impl CardSpec {
    /// The sample holder's card with the initial PIN: `2.00` for 3DES, `3.00` for SM4.
    pub fn sample(algorithm: Algorithm) -> Self {
        Self {
            algorithm,
            card_id: build::SAMPLE_CARD_ID,
            holder: Holder::sample(),
            pin: INITIAL_PIN.into(),
            pin_tries: None,
            issued: true,
        }
    }

    pub fn with_name(mut self, name: &str) -> Self {
        self.holder.name = name.into();
        self
    }

    pub fn with_pin(mut self, pin: &str) -> Self {
        self.pin = pin.into();
        self
    }

    pub fn with_pin_tries(mut self, tries: u8) -> Self {
        self.pin_tries = Some(tries);
        self
    }

    pub fn with_card_id(mut self, card_id: [u8; 16]) -> Self {
        self.card_id = card_id;
        self
    }

    /// Personalised, keys and data written, but END PERSONALISATION never sent.
    pub fn not_issued(mut self) -> Self {
        self.issued = false;
        self
    }

    /// The image the model serves.
    pub fn image(&self) -> Result<Image, SceneError> {
        let mut image =
            build::personalised_ssc(self.algorithm, &self.card_id, &self.holder, &self.pin)?;
        let Memory::Ssc(mem) = &mut image.memory else {
            return Err(SceneError::Image("SSC memory"));
        };
        if self.city() != TEST_CITY {
            // personalised_ssc derives the national keys through the test city; a card of
            // another city has its own city's keys, which the test city's PSAM cannot reach.
            for kid in Kid::CARD_KEYS.into_iter().filter(|k| k.is_national()) {
                let key = self.card_key(kid)?;
                mem.key_mut(kid)
                    .ok_or(SceneError::Image("national key"))?
                    .value = HexBytes(key.expose().to_vec());
            }
        }
        if let Some(tries) = self.pin_tries {
            mem.key_mut(Kid::Pin)
                .ok_or(SceneError::Image("PIN"))?
                .tries_left = tries;
        }
        if !self.issued {
            mem.life_cycle = LifeCycle::Personalisation;
        }
        Ok(image)
    }

    /// The issuing city: the first 6 digits of the card identification code.
    pub fn city(&self) -> String {
        self.card_id_hex()[..6].to_string()
    }

    /// The card key of `kid`, national keys diversified through the card's own province and
    /// city (PROFILE section 5).
    pub fn card_key(&self, kid: Kid) -> Result<Key, SceneError> {
        let city = self.city();
        let province = format!("{}0000", &city[..2]);
        build::test_card_key(self.algorithm, kid, &self.card_id, &province, &city).map_err(
            |source| SceneError::Crypto {
                what: "card key",
                source,
            },
        )
    }

    /// The card identification code in hex, as the unified lines carry it.
    pub fn card_id_hex(&self) -> String {
        to_hex(&self.card_id)
    }

    /// `pCardInfo` of this card: `card identification code|card number|`.
    pub fn card_info(&self) -> String {
        format!("{}|{}|", self.card_id_hex(), self.holder.card_number)
    }
}

/// A PSAM to serve.
#[derive(Clone, Debug)]
pub struct PsamSpec {
    pub algorithm: Algorithm,
    /// The city whose keys it holds.
    pub city: String,
    /// Keys taken out of it.
    pub without: Vec<Kid>,
}

impl PsamSpec {
    /// The test city's PSAM with every key.
    pub fn city(algorithm: Algorithm) -> Self {
        Self {
            algorithm,
            city: TEST_CITY.into(),
            without: Vec::new(),
        }
    }

    pub fn without(mut self, kid: Kid) -> Self {
        self.without.push(kid);
        self
    }

    pub fn image(&self) -> Result<Image, SceneError> {
        let mut image = build::city_psam_for(self.algorithm, &self.city)?;
        let Memory::Psam(mem) = &mut image.memory else {
            return Err(SceneError::Image("PSAM memory"));
        };
        for kid in &self.without {
            let prefix = format!("{}/", kid_name(*kid));
            mem.keys.retain(|name, _| !name.starts_with(&prefix));
        }
        Ok(image)
    }

    /// EF16: the terminal number the PSAM gives, hex.
    pub fn terminal_number(&self) -> Result<String, SceneError> {
        match self.image()?.memory {
            Memory::Psam(mem) => Ok(to_hex(&mem.ef16.0)),
            Memory::Ssc(_) => Err(SceneError::Image("PSAM memory")),
        }
    }
}

/// What is in the two readers during one case.
#[derive(Clone, Debug)]
pub struct Scene {
    pub card: Option<CardSpec>,
    pub psam: Option<PsamSpec>,
}

impl Scene {
    /// The sample card and the city PSAM of one algorithm.
    pub fn sample(algorithm: Algorithm) -> Self {
        Self {
            card: Some(CardSpec::sample(algorithm)),
            psam: Some(PsamSpec::city(algorithm)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard_core::profile::holder::gbk_name;

    #[test]
    fn the_long_name_needs_the_extension_record() {
        let (name, extension) = gbk_name(LONG_NAME).unwrap();
        assert_eq!(name.iter().filter(|&&b| b != 0).count(), 30);
        assert_eq!(extension.iter().filter(|&&b| b != 0).count(), 4);
    }

    #[test]
    fn a_psam_without_rkssse_keeps_its_other_keys() {
        let spec = PsamSpec::city(Algorithm::Sm4).without(Kid::Rkssse);
        let Memory::Psam(mem) = spec.image().unwrap().memory else {
            panic!("a PSAM")
        };
        assert!(!mem.keys.contains_key("0A/01"));
        assert!(mem.keys.contains_key("08/01"));
        assert_eq!(spec.terminal_number().unwrap(), "110100000001");
    }

    #[test]
    fn a_card_of_another_city_has_that_citys_national_keys() {
        let id: [u8; 16] = sscard_core::hexfmt::parse_hex(OTHER_CITY_CARD_ID)
            .unwrap()
            .try_into()
            .unwrap();
        let ours = CardSpec::sample(Algorithm::Sm4).with_card_id(id);
        let Memory::Ssc(mem) = ours.image().unwrap().memory else {
            panic!("an SSC")
        };
        let irk = mem.key(Kid::Irk).unwrap().value.0.clone();
        assert_eq!(irk, ours.card_key(Kid::Irk).unwrap().expose().to_vec());
        let via_test_city =
            build::test_card_key(Algorithm::Sm4, Kid::Irk, &id, "110000", TEST_CITY).unwrap();
        assert_ne!(irk, via_test_city.expose().to_vec());
    }

    #[test]
    fn a_card_state_is_written_into_its_image() {
        let spec = CardSpec::sample(Algorithm::Tdes)
            .with_pin_tries(0)
            .not_issued();
        let Memory::Ssc(mem) = spec.image().unwrap().memory else {
            panic!("an SSC")
        };
        assert_eq!(mem.key(Kid::Pin).unwrap().tries_left, 0);
        assert_eq!(mem.life_cycle, LifeCycle::Personalisation);
        assert_eq!(spec.city(), "110100");
        assert_eq!(
            spec.card_info(),
            "110100D15600000599110145000000A1|A12345674|"
        );
    }
}
