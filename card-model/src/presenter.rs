//! A card presenter for read-back runs: holds a stack of card images (say, what a
//! personalisation station's feeder stored) and presents them one after another in one reader.
//! When the terminal has talked to a card and powers it off (it disconnects), the next image
//! comes in; after the last one the slot answers `6A82` to every command. The images are read,
//! never written back: the presenter is an inspection bench, not a card store.

use crate::card::Card;
use crate::image::ImageError;
use crate::ssc::Ssc;
use crate::store::Store;
use crate::validate::InvalidImage;
use crate::Image;
use std::path::{Path, PathBuf};

/// Why a stack of images cannot be presented.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PresenterError {
    #[error("cannot read the image directory {}: {source}", dir.display())]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Image { path: PathBuf, source: ImageError },
    #[error("{}: {source}", path.display())]
    Card { path: PathBuf, source: InvalidImage },
}

/// Images presented one after another.
pub struct Presenter {
    cards: std::vec::IntoIter<Ssc>,
    current: Option<Ssc>,
    used: bool,
}

impl Presenter {
    /// Every `*.json` SSC image in `dir`, in file-name order. Any image that does not load is an
    /// error naming its file: a bench that silently skipped a card would hide it.
    pub fn from_dir(dir: &Path) -> Result<Self, PresenterError> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|source| PresenterError::ReadDir {
                dir: dir.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let cards = paths
            .into_iter()
            .map(|path| {
                let image = match Image::load(&path) {
                    Ok(image) => image,
                    Err(source) => return Err(PresenterError::Image { path, source }),
                };
                Ssc::from_image(image, Store::in_memory())
                    .map_err(|source| PresenterError::Card { path, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(cards))
    }

    pub fn new(cards: Vec<Ssc>) -> Self {
        let mut cards = cards.into_iter();
        let current = cards.next();
        Self {
            cards,
            current,
            used: false,
        }
    }

    /// Cards not yet presented, the one in the slot included.
    pub fn remaining(&self) -> usize {
        self.cards.len() + usize::from(self.current.is_some())
    }
}

impl Card for Presenter {
    fn atr(&self) -> Vec<u8> {
        sscard_core::profile::SSC_ATR.to_vec()
    }
    fn reset(&mut self) {
        if let Some(c) = &mut self.current {
            c.reset();
        }
    }
    fn power_off(&mut self) {
        // pcscd powers an idle card on and off by itself: only a card that was talked to is done.
        if self.used {
            self.current = self.cards.next();
            self.used = false;
        }
        self.reset();
    }
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        match &mut self.current {
            Some(c) => {
                self.used = true;
                c.transmit(apdu)
            }
            None => Some(vec![0x6A, 0x82]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{self, Holder};
    use sscard_core::crypto::Algorithm;

    fn card(serial: u8) -> Ssc {
        let mut id = build::SAMPLE_CARD_ID;
        id[15] = serial;
        let image = build::personalised_ssc(Algorithm::Tdes, &id, &Holder::sample(), "123456")
            .expect("valid");
        Ssc::from_image(image, Store::in_memory()).expect("an SSC")
    }

    fn card_id(p: &mut Presenter) -> Vec<u8> {
        p.transmit(&hex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF"));
        p.transmit(&hex("00B2012C00")).expect("an answer")
    }

    fn hex(s: &str) -> Vec<u8> {
        sscard_core::hexfmt::parse_hex(s).expect("hex")
    }

    #[test]
    fn presents_the_next_card_after_a_used_card_is_powered_off() {
        let mut p = Presenter::new(vec![card(1), card(2)]);
        assert_eq!(p.remaining(), 2);
        p.power_off();
        assert_eq!(card_id(&mut p)[17], 1, "an unused card stays");
        p.reset();
        assert_eq!(card_id(&mut p)[17], 1, "a warm reset keeps the card");
        p.power_off();
        assert_eq!(card_id(&mut p)[17], 2);
        p.power_off();
        assert_eq!(p.remaining(), 0);
        assert_eq!(p.transmit(&hex("00A4040000")), Some(vec![0x6A, 0x82]));
    }

    #[test]
    fn a_directory_with_a_bad_image_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("sscard-presenter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("A1.json"), "{").unwrap();
        let e = Presenter::from_dir(&dir)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.starts_with(&format!("{}: ", dir.join("A1.json").display())),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
