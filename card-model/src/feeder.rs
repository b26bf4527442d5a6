//! A card feeder for stations without hands: presents a blank card (random card identification
//! code of a region, TK and the manufacture records of EF05); when an issued card is released
//! (reset or power off, as when the station disconnects), stores it as `DIR/<card number>.json`
//! and presents the next blank card, until N have been used.

use crate::card::Card;
use crate::image::{Image, Memory};
use crate::ssc::Ssc;
use crate::store::Store;
use crate::{build, memory::EfContent, memory::LifeCycle};
use rand::RngCore;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::parse_hex;
use sscard_core::profile::files;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Blank cards left, shared by every reader of one feeder.
pub type Stock = Arc<AtomicUsize>;

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

    /// An issued card leaves the feeder into the output directory.
    fn release(&mut self) {
        let issued = self
            .card
            .as_ref()
            .is_some_and(|c| c.memory().life_cycle == LifeCycle::Issued);
        if !issued {
            return;
        }
        let card = self.card.take().expect("checked");
        let image = card.image();
        let number = card_number(&image);
        let path = self.dir.join(format!("{number}.json"));
        if let Err(e) = crate::store::write_atomic(&path, image.to_json().as_bytes()) {
            tracing::error!("feeder: cannot store {}: {e}", path.display());
        }
        self.next_card();
    }
}

/// The card number in EF05 of an image, which names the stored file.
fn card_number(image: &Image) -> String {
    let Memory::Ssc(m) = &image.memory else {
        return "psam".into();
    };
    let ef05 = files::ef05();
    let record = ef05
        .record_by_key("card_number")
        .and_then(|def| match m.files.get(ef05.name) {
            Some(EfContent::Records(r)) => r.get(usize::from(def.number) - 1),
            _ => None,
        });
    record.map_or_else(
        || "unknown".into(),
        |r| String::from_utf8_lossy(&r.value.0).into_owned(),
    )
}

impl Card for Feeder {
    fn atr(&self) -> Vec<u8> {
        sscard_core::profile::SSC_ATR.to_vec()
    }
    fn reset(&mut self) {
        self.release();
        if let Some(c) = &mut self.card {
            c.reset();
        }
    }
    fn power_off(&mut self) {
        self.reset();
    }
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        match &mut self.card {
            Some(c) => c.transmit(apdu),
            // The feeder is empty: an empty slot answers nothing a station would take.
            None => Some(vec![0x6A, 0x82]),
        }
    }
}
