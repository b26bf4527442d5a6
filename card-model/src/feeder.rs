//! A card feeder for stations without hands: presents a blank card (random card identification
//! code of a region, TK and the manufacture records of EF05) in each of its readers, and takes a
//! card out only when the station tells it to, as a physical feeder does: with the CT-BCS
//! command EJECT ICC ([`EJECT`], `20 15 01 00 00`, the command pcsc-lite hands a reader driver
//! for `SCardDisconnect(SCARD_EJECT_CARD)`).
//!
//! An ejected issued card is stored as `DIR/<card identification code>.json` (hex, as the
//! journal names the card), so two cards of one holder are two files; any other card (blank,
//! or personalisation stopped half-way) goes to the reject bin, `DIR/rejected/<id>.json`. Then
//! the next blank card comes in, until N have been used.
//!
//! Resets and power-offs never move a card: pcscd resets a card when a station dies inside a
//! transaction and powers every card off that nobody has used for about a second (pcsc-lite
//! 1.9.9 with vpcd, measured), so a power cut of the station leaves the card in the reader,
//! where the restarted station finds it.

use crate::card::Card;
use crate::image::{Image, Memory};
use crate::ssc::Ssc;
use crate::store::Store;
use crate::{build, memory::EfContent, memory::LifeCycle};
use rand::RngCore;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::files;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Blank cards left, shared by every reader of one feeder.
pub type Stock = Arc<AtomicUsize>;

/// The CT-BCS command EJECT ICC for the reader's first slot (CLA `20`, INS `15`, functional
/// unit 1): the feeder takes the card out. Any P2 and trailing bytes are accepted.
pub const EJECT: [u8; 5] = [0x20, 0x15, 0x01, 0x00, 0x00];

/// The reject bin under the feeder's directory.
pub const REJECTED: &str = "rejected";

/// EJECT ICC done: the card left the reader.
const SW_EJECTED: [u8; 2] = [0x90, 0x00];
/// EJECT ICC with no card in the slot (CT-BCS: error, nothing done).
const SW_NO_CARD: [u8; 2] = [0x64, 0x00];
/// EJECT ICC of a card the feeder could not store: it stays in the reader.
const SW_NOT_STORED: [u8; 2] = [0x64, 0x01];

/// Why a feeder cannot start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FeederError {
    #[error("region {region:?} is not 6 digits: give the issuing city's region code, e.g. 110100")]
    Region { region: String },
}

/// One reader's slot of the feeder.
pub struct Feeder {
    alg: Algorithm,
    region: [u8; 3],
    dir: PathBuf,
    stock: Stock,
    card: Option<Ssc>,
}

impl Feeder {
    pub fn new(
        alg: Algorithm,
        region: &str,
        dir: PathBuf,
        stock: Stock,
    ) -> Result<Self, FeederError> {
        let r = parse_hex(region)
            .ok()
            .filter(|b| b.len() == 3 && region.bytes().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| FeederError::Region {
                region: region.into(),
            })?;
        let mut f = Self {
            alg,
            region: [r[0], r[1], r[2]],
            dir,
            stock,
            card: None,
        };
        f.next_card();
        Ok(f)
    }

    fn next_card(&mut self) {
        let took = self
            .stock
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        self.card = took.then(|| {
            let mut id = [0u8; 16];
            id[..3].copy_from_slice(&self.region);
            id[3..8].copy_from_slice(&[0xD1, 0x56, 0x00, 0x00, 0x05]);
            rand::thread_rng().fill_bytes(&mut id[8..]);
            Ssc::from_image(build::blank_ssc(self.alg, &id), Store::in_memory())
                .expect("a blank image is valid")
        });
    }

    /// EJECT ICC: the card leaves the reader, issued cards into the output directory, others
    /// into the reject bin, and the next blank card comes in. Answers the command's status.
    fn eject(&mut self) -> [u8; 2] {
        let Some(card) = &self.card else {
            return SW_NO_CARD;
        };
        let image = card.image();
        let id = card_id(&image).unwrap_or_else(|| "unknown".into());
        let dir = if card.memory().life_cycle == LifeCycle::Issued {
            self.dir.clone()
        } else {
            self.dir.join(REJECTED)
        };
        if let Err(e) = store(&dir, &id, &image) {
            // A card the feeder cannot put down stays where it is: the station sees it again.
            tracing::error!("feeder: cannot store card {id} in {}: {e}", dir.display());
            return SW_NOT_STORED;
        }
        self.next_card();
        SW_EJECTED
    }
}

fn store(dir: &Path, id: &str, image: &Image) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::store::write_atomic(&dir.join(format!("{id}.json")), image.to_json().as_bytes())
}

/// A record of EF05 of an SSC image, by its field name.
fn ef05_record<'a>(image: &'a Image, field: &str) -> Option<&'a [u8]> {
    let Memory::Ssc(m) = &image.memory else {
        return None;
    };
    let ef05 = files::ef05();
    let def = ef05.record_by_key(field)?;
    match m.files.get(ef05.name) {
        Some(EfContent::Records(r)) => r
            .get(usize::from(def.number).checked_sub(1)?)
            .map(|r| &r.value.0[..]),
        _ => None,
    }
}

/// The card identification code in EF05 of an SSC image, hex (the name of its stored file).
pub fn card_id(image: &Image) -> Option<String> {
    ef05_record(image, "card_id").map(to_hex)
}

/// The card number in EF05 of an SSC image; `None` on a blank card (whose record is zeros).
pub fn card_number(image: &Image) -> Option<String> {
    ef05_record(image, "card_number")
        .filter(|v| v.iter().any(|&b| b != 0))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

impl Card for Feeder {
    fn atr(&self) -> Vec<u8> {
        sscard_core::profile::SSC_ATR.to_vec()
    }
    fn reset(&mut self) {
        if let Some(c) = &mut self.card {
            c.reset();
        }
    }
    fn power_off(&mut self) {
        if let Some(c) = &mut self.card {
            c.power_off();
        }
    }
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        if let [0x20, 0x15, 0x01, ..] = apdu {
            return Some(self.eject().to_vec());
        }
        match &mut self.card {
            Some(c) => c.transmit(apdu),
            // The feeder is empty: an empty slot answers nothing a station would take.
            None => Some(vec![0x6A, 0x82]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::Holder;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sscard-feeder-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn feeder(dir: &Path, blank: usize) -> Feeder {
        let stock = Arc::new(AtomicUsize::new(blank));
        Feeder::new(Algorithm::Tdes, "110100", dir.to_path_buf(), stock).expect("a feeder")
    }

    /// The card in the slot, as an image.
    fn slot(f: &Feeder) -> Image {
        f.card.as_ref().expect("a card in the slot").image()
    }

    /// Puts an issued card of the sample holder with serial `serial` into the slot, as if the
    /// station had personalised the blank one.
    fn issue(f: &mut Feeder, serial: u8) -> String {
        let mut id = build::SAMPLE_CARD_ID;
        id[15] = serial;
        let image = build::personalised_ssc(Algorithm::Tdes, &id, &Holder::sample(), "123456")
            .expect("valid");
        f.card = Some(Ssc::from_image(image, Store::in_memory()).expect("an SSC"));
        to_hex(&id)
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn resets_and_power_offs_leave_an_issued_card_in_the_reader() {
        let d = dir("stays");
        let mut f = feeder(&d, 3);
        let id = issue(&mut f, 1);
        f.reset();
        f.power_off();
        f.reset();
        assert_eq!(card_id(&slot(&f)), Some(id));
        assert_eq!(
            f.card.as_ref().map(|c| c.memory().life_cycle),
            Some(LifeCycle::Issued)
        );
        assert!(files(&d).is_empty(), "nothing stored: {:?}", files(&d));
        assert_eq!(f.stock.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn eject_stores_an_issued_card_by_its_id_and_presents_the_next_blank_card() {
        let d = dir("eject");
        let mut f = feeder(&d, 3);
        let id = issue(&mut f, 1);
        assert_eq!(f.transmit(&EJECT), Some(vec![0x90, 0x00]));
        assert_eq!(files(&d), vec![format!("{id}.json")]);
        let stored = Image::load(&d.join(format!("{id}.json"))).expect("an image");
        assert_eq!(card_id(&stored), Some(id.clone()));
        assert_eq!(
            card_number(&stored).as_deref(),
            Some(Holder::sample().card_number.as_str())
        );
        let next = card_id(&slot(&f)).expect("a blank card");
        assert_ne!(next, id);
        assert!(next.starts_with("110100D156000005"), "{next}");
        assert_eq!(card_number(&slot(&f)), None);
        assert_eq!(f.stock.load(Ordering::SeqCst), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn two_cards_of_one_holder_are_two_files() {
        let d = dir("twice");
        let mut f = feeder(&d, 3);
        let first = issue(&mut f, 1);
        assert_eq!(f.transmit(&EJECT), Some(vec![0x90, 0x00]));
        let second = issue(&mut f, 2);
        assert_eq!(
            f.transmit(&[0x20, 0x15, 0x01, 0x00]),
            Some(vec![0x90, 0x00])
        );
        assert_eq!(
            files(&d),
            vec![format!("{first}.json"), format!("{second}.json")]
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_card_that_is_not_issued_goes_to_the_reject_bin() {
        let d = dir("reject");
        let mut f = feeder(&d, 2);
        let blank = card_id(&slot(&f)).expect("a blank card");
        assert_eq!(f.transmit(&EJECT), Some(vec![0x90, 0x00]));
        assert_eq!(files(&d), vec![REJECTED.to_string()]);
        assert_eq!(files(&d.join(REJECTED)), vec![format!("{blank}.json")]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_empty_feeder_ejects_nothing() {
        let d = dir("empty");
        let mut f = feeder(&d, 1);
        assert_eq!(f.transmit(&EJECT), Some(vec![0x90, 0x00]));
        assert!(f.card.is_none(), "the only blank card is gone");
        assert_eq!(f.transmit(&EJECT), Some(vec![0x64, 0x00]));
        assert_eq!(
            f.transmit(&[0x00, 0xA4, 0x04, 0x00]),
            Some(vec![0x6A, 0x82])
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
