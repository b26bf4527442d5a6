//! `sscard-model`: a software social security card (SSC) and PSAM that follow `PROFILE.md`
//! to the byte, for tests in-process and for real PC/SC stacks through vsmartcard's vpcd.
//!
//! Layers, like a real card: the file layout is fixed in code (the ROM mask: the profile's file
//! table in [`sscard_core::profile::files`], read rules and update keys included), card memory
//! ([`memory`]) is what an EEPROM holds and is written through a [`store::Store`] (atomic on
//! disk, with a tearing hook), and volatile state (current DF, security status, challenge) lives
//! only in the application struct and is lost on reset.
#![forbid(unsafe_code)]

pub mod build;
pub mod control;
pub mod feeder;
pub mod image;
pub mod loopback;
pub mod memory;
pub mod presenter;
pub mod psam;
pub mod reply;
pub mod ssc;
pub mod store;
pub mod t0;
pub mod validate;
pub mod vpcd;

pub use image::Image;
/// The card interface lives in `sscard-core`, where the host's in-process transport finds it too.
pub use sscard_core::card;
pub use sscard_core::card::{Card, SharedCard};
pub use validate::InvalidImage;

use sscard_core::crypto::Algorithm;

/// The default served pair: a personalised test SSC (PIN 123456, sample holder) and a matching
/// city PSAM, both with the profile's test key set.
pub fn test_pair(alg: Algorithm) -> (ssc::Ssc, psam::Psam) {
    let card = build::personalised_ssc(
        alg,
        &build::SAMPLE_CARD_ID,
        &build::Holder::sample(),
        sscard_core::profile::INITIAL_PIN,
    )
    .expect("the sample holder is valid");
    (
        ssc::Ssc::from_image(card, store::Store::in_memory()).expect("an SSC image"),
        psam::Psam::from_image(build::city_psam(alg)).expect("a PSAM image"),
    )
}
