//! Personalising one blank card, as a sequence of states that the journal mirrors:
//! Blank → Authenticated → KeysLoaded → Written → Verified → Issued.

use sscard::channel::Channel;
use sscard::keys::KeySource;
use sscard::ssc::{EfRef, Session, SscError};
use sscard::trace::Secrecy;
use sscard_core::hexfmt::to_hex;
use sscard_core::holder::{holder_records, record_number, Holder};
use sscard_core::profile::{kid, KEY_TRY_LIMIT, PIN_TRY_LIMIT};
use sscard_core::tlv::Record;

/// Where a card is in its personalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Blank,
    Authenticated,
    KeysLoaded,
    Written,
    Verified,
    Issued,
}

/// Why a card was not personalised.
#[derive(Debug, thiserror::Error)]
pub enum PersoError {
    #[error("{0}")]
    Card(#[from] SscError),
    #[error("the card is not blank (life cycle ISSUED)")]
    NotBlank,
    #[error("the card belongs to region {card}, the key source serves {keys}")]
    OtherRegion { card: String, keys: String },
    #[error("holder data: {0}")]
    Holder(String),
    #[error("read-back of {file} record {tag:02X} differs from what was written")]
    ReadBack { file: &'static str, tag: u8 },
    /// The listener of the stages (the journal) could not record one: personalisation stops
    /// there rather than issue a card the journal does not know of.
    #[error("personalisation stopped at {stage:?}: {reason}")]
    Stopped { stage: Stage, reason: String },
}

/// The card identification code of a card in a reader (and whether it is still blank).
pub fn identify(ch: Channel, keys: &mut dyn KeySource) -> Result<(String, bool), PersoError> {
    let mut s = Session::open(ch, keys)?;
    let id = s.read_identification()?;
    Ok((to_hex(&id.card_id), !s.is_issued()))
}

fn reached(
    stage: &mut dyn FnMut(Stage) -> Result<(), String>,
    at: Stage,
) -> Result<(), PersoError> {
    stage(at).map_err(|reason| PersoError::Stopped { stage: at, reason })
}

/// Try limits written with each key (PROFILE section 3: external-authentication keys count).
fn tries(key_id: u8) -> u8 {
    match key_id {
        kid::RKSSSE | kid::EAK_L => KEY_TRY_LIMIT,
        kid::PIN => PIN_TRY_LIMIT,
        _ => 0,
    }
}

/// Personalises the blank card on `ch` for `holder`; `stage` hears each state reached and may
/// stop the run (an error from it ends personalisation at that point).
pub fn personalise(
    ch: Channel,
    keys: &mut dyn KeySource,
    holder: &Holder,
    region: &str,
    stage: &mut dyn FnMut(Stage) -> Result<(), String>,
) -> Result<String, PersoError> {
    let mut s = Session::open(ch, keys)?;
    if s.is_issued() {
        return Err(PersoError::NotBlank);
    }
    let id = s.read_identification()?;
    if id.region != region {
        return Err(PersoError::OtherRegion {
            card: id.region,
            keys: region.into(),
        });
    }
    reached(stage, Stage::Blank)?;
    s.external_authenticate(kid::TK)?;
    reached(stage, Stage::Authenticated)?;
    let alg = s.algorithm();
    let card = sscard::keys::CardRef::new(id.card_id);
    let write_key = |s: &mut Session, key_id: u8| -> Result<(), PersoError> {
        let block = s
            .key_source()
            .key_load_block(alg, &card, key_id, tries(key_id))
            .map_err(SscError::from)?;
        s.send_with_mac(
            "WRITE KEY",
            kid::TK,
            [0x84, 0xD4, 0x00, key_id],
            &block,
            Secrecy::COMMAND_DATA,
        )?;
        Ok(())
    };
    // PROFILE section 3: a key is written in the DF where it is valid — EAK_L and UK_L in DF01
    // only (6A88 in SSSE); the national and the shared ones in SSSE.
    for key_id in kid::CARD_KEYS.into_iter().chain([kid::PIN]) {
        if !kid::is_local_only(key_id) {
            write_key(&mut s, key_id)?;
        }
    }
    s.select_local()?;
    for key_id in kid::CARD_KEYS
        .into_iter()
        .filter(|k| kid::is_local_only(*k))
    {
        write_key(&mut s, key_id)?;
    }
    // Back in SSSE the TK authentication, lost with the DF change, opens the read-back.
    s.select_application()?;
    s.external_authenticate(kid::TK)?;
    reached(stage, Stage::KeysLoaded)?;
    let files = holder_records(holder).map_err(|e| PersoError::Holder(e.to_string()))?;
    for (file, records) in &files {
        let sfi = match *file {
            "EF05" => 0x05,
            "EF06" => 0x06,
            _ => 0x07,
        };
        for (tag, value) in records {
            let n = record_number(file, *tag).ok_or(PersoError::ReadBack { file, tag: *tag })?;
            let tlv = Record::new(*tag, value.clone())
                .map_err(|e| PersoError::Holder(e.to_string()))?
                .to_bytes();
            s.send_with_mac(
                "UPDATE RECORD",
                kid::TK,
                [0x04, 0xDC, n, sfi << 3 | 0x04],
                &tlv,
                Secrecy::PUBLIC,
            )?;
        }
    }
    reached(stage, Stage::Written)?;
    for (file, records) in &files {
        let ef = match *file {
            "EF05" => EfRef::Ef05,
            "EF06" => EfRef::Ef06,
            _ => EfRef::Ef07,
        };
        let on_card = s.read_records(ef)?;
        for (tag, value) in records {
            if !on_card.iter().any(|r| r.tag == *tag && &r.value == value) {
                return Err(PersoError::ReadBack { file, tag: *tag });
            }
        }
    }
    reached(stage, Stage::Verified)?;
    s.send_with_mac(
        "END PERSONALISATION",
        kid::TK,
        [0x84, 0xEE, 0x00, 0x00],
        &[],
        Secrecy::PUBLIC,
    )?;
    reached(stage, Stage::Issued)?;
    Ok(to_hex(&id.card_id))
}

/// The acceptance test of an issued card: read basic info with mutual authentication.
pub fn accept(ch: Channel, keys: &mut dyn KeySource, holder: &Holder) -> Result<(), PersoError> {
    let mut s = Session::open(ch, keys)?;
    let info = s.read_basic_info()?;
    s.external_authenticate(kid::RKSSSE)?;
    if info.card.card_number != holder.card_number || info.holder.ssn != holder.ssn {
        return Err(PersoError::ReadBack {
            file: "EF05",
            tag: 0x07,
        });
    }
    Ok(())
}
