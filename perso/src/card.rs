//! Personalising one blank card as a typed state machine, rustls style: each state is a type,
//! each transition consumes the old state, so an illegal sequence (writing records before the
//! keys, ending personalisation unverified) does not compile. The states are the journal's
//! [`Stage`]s: Blank → Authenticated → KeysLoaded → Written → Verified → Issued.
//!
//! Every state holds the [`Session`] over the one transaction the card's personalisation
//! borrows, so no other application's APDU comes between two of its own.

use crate::journal::JournalError;
use crate::state::Stage;
use sscard::keys::{CardRef, KeyError, KeySource};
use sscard::ssc::{CardIdentification, Session, SscError};
use sscard::Transaction;
use sscard_core::classify::{Classified, ExitClass};
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::commands;
use sscard_core::profile::files::FileDef;
use sscard_core::profile::holder::{Holder, HolderError};
use sscard_core::profile::{codes, KeyScope, Kid};
use sscard_core::tlv::{Record, TlvError};

/// A listener's refusal to record a stage (the journal could not write it).
pub type ListenerError = Box<dyn std::error::Error + Send + Sync>;

/// Why a card was not personalised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersoError {
    #[error("{0}")]
    Card(#[from] SscError),
    #[error("the card is not blank (life cycle ISSUED)")]
    NotBlank,
    #[error("the card belongs to region {card}, the key source serves {keys}")]
    OtherRegion { card: String, keys: String },
    #[error("holder data: {0}")]
    Holder(#[from] HolderError),
    #[error("holder data: {0}")]
    Record(#[from] TlvError),
    #[error("read-back of {file} record {tag:02X} differs from what was written")]
    ReadBack { file: &'static str, tag: u8 },
    /// The listener of the stages (the journal) could not record one: personalisation stops
    /// there rather than issue a card the journal does not know of. `cause` is the listener's
    /// own error, kept typed (a station asks it whether the audit key's service went away);
    /// the message carries it, so it is not also this error's `source` (it would be printed
    /// twice in a chain).
    #[error("personalisation stopped at {stage:?}: {cause}")]
    Stopped { stage: Stage, cause: ListenerError },
}

impl PersoError {
    /// The key service's error when the card was not personalised because a key service is
    /// not available right now ([`KeyError::is_unavailable`]): the card keys' source, or the
    /// journal's audit key that could not record a stage. `None` when a card, a key source or
    /// the journal said no.
    pub fn unavailable_key(&self) -> Option<&KeyError> {
        match self {
            Self::Card(SscError::Keys(k)) => k.is_unavailable().then_some(k),
            Self::Stopped { cause, .. } => cause
                .downcast_ref::<JournalError>()
                .and_then(JournalError::unavailable_key),
            _ => None,
        }
    }

    /// The journal's error behind a stage it could not record.
    fn journal(&self) -> Option<&JournalError> {
        match self {
            Self::Stopped { cause, .. } => cause.downcast_ref::<JournalError>(),
            _ => None,
        }
    }
}

impl Classified for PersoError {
    fn return_code(&self) -> i32 {
        match self {
            Self::Card(e) => e.return_code(),
            Self::NotBlank | Self::OtherRegion { .. } => codes::WRONG_CARD,
            Self::Holder(_) | Self::Record(_) => codes::INVALID_DATA,
            Self::ReadBack { .. } => codes::DATA_MISMATCH,
            Self::Stopped { .. } => self.journal().map_or(codes::UNKNOWN, |j| j.return_code()),
        }
    }

    fn exit_class(&self) -> ExitClass {
        match self {
            Self::Card(e) => e.exit_class(),
            Self::NotBlank | Self::OtherRegion { .. } | Self::ReadBack { .. } => ExitClass::Card,
            Self::Holder(_) | Self::Record(_) => ExitClass::BadInput,
            // A journal whose audit key's service went away: no service (5), as the journal's
            // own error says.
            Self::Stopped { .. } => self.journal().map_or(ExitClass::Other, |j| j.exit_class()),
        }
    }
}

/// The card identification code of the card in `tx` (hex) and whether it is still blank.
pub fn identify(
    tx: &mut Transaction<'_>,
    keys: &mut dyn KeySource,
) -> Result<(String, bool), PersoError> {
    let mut s = Session::open(tx, keys)?;
    let id = s.read_identification()?;
    Ok((to_hex(&id.card_id), !s.is_issued()))
}

/// One card's personalisation in state `S`: the session over the card's transaction and the
/// card's identification. Each transition consumes it and returns it in the next state.
pub struct Personalisation<'a, 'c, S> {
    s: Session<'a, 'c>,
    id: CardIdentification,
    state: S,
}

/// A blank card of the station's region, claimed for a holder.
#[derive(Debug)]
pub struct Blank;
/// Authenticated with TK.
#[derive(Debug)]
pub struct Authenticated;
/// Every key and the PIN object loaded.
#[derive(Debug)]
pub struct KeysLoaded;
/// The holder's records written (kept for the read-back).
#[derive(Debug)]
pub struct Written(Vec<(&'static FileDef, Vec<Record>)>);
/// The records read back equal to what was written.
#[derive(Debug)]
pub struct Verified;

/// END PERSONALISATION done: the card is issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The card identification code, hex.
    pub card_id: String,
}

/// The journal's name of a state.
pub trait InStage {
    const STAGE: Stage;
}

impl InStage for Blank {
    const STAGE: Stage = Stage::Blank;
}
impl InStage for Authenticated {
    const STAGE: Stage = Stage::Authenticated;
}
impl InStage for KeysLoaded {
    const STAGE: Stage = Stage::KeysLoaded;
}
impl InStage for Written {
    const STAGE: Stage = Stage::Written;
}
impl InStage for Verified {
    const STAGE: Stage = Stage::Verified;
}

impl<'a, 'c, S: InStage> Personalisation<'a, 'c, S> {
    /// The stage the card is at, as the journal stores it.
    pub fn stage(&self) -> Stage {
        S::STAGE
    }

    /// The card identification code, hex.
    pub fn card_id(&self) -> String {
        to_hex(&self.id.card_id)
    }

    fn into_state<T>(self, state: T) -> Personalisation<'a, 'c, T> {
        Personalisation {
            s: self.s,
            id: self.id,
            state,
        }
    }
}

impl<'a, 'c> Personalisation<'a, 'c, Blank> {
    /// Opens the card in `tx`: it must be blank (life cycle PERSONALISATION) and of `region`.
    pub fn open(
        tx: &'a mut Transaction<'c>,
        keys: &'a mut dyn KeySource,
        region: &str,
    ) -> Result<Self, PersoError> {
        let mut s = Session::open(tx, keys)?;
        let id = s.read_identification()?;
        Self::start(s, id, region)
    }

    /// Starts on a card the station has already opened and identified (`id`, read in the same
    /// session): it must be blank (life cycle PERSONALISATION) and of `region`.
    pub fn start(
        s: Session<'a, 'c>,
        id: CardIdentification,
        region: &str,
    ) -> Result<Self, PersoError> {
        if s.is_issued() {
            return Err(PersoError::NotBlank);
        }
        if id.region != region {
            return Err(PersoError::OtherRegion {
                card: id.region,
                keys: region.into(),
            });
        }
        Ok(Self {
            s,
            id,
            state: Blank,
        })
    }

    /// The session, to give back when personalisation stops early.
    pub fn into_session(self) -> Session<'a, 'c> {
        self.s
    }

    /// External authentication with the card's transport key.
    pub fn authenticate(mut self) -> Result<Personalisation<'a, 'c, Authenticated>, PersoError> {
        self.s.external_authenticate(Kid::Tk)?;
        Ok(self.into_state(Authenticated))
    }
}

impl<'a, 'c> Personalisation<'a, 'c, Authenticated> {
    fn write_key(&mut self, key: Kid, block: Vec<u8>) -> Result<(), PersoError> {
        self.s
            .send_protected(commands::write_key(key, block), Kid::Tk)?;
        Ok(())
    }

    /// Loads every key and the PIN object under TK, each in the DF where it is valid (PROFILE
    /// section 3): EAK_L and UK_L in DF01 only (`6A88` in SSSE), the others in SSSE. The key
    /// source gives every block in one call (one round trip to a key service per card).
    pub fn load_keys(mut self) -> Result<Personalisation<'a, 'c, KeysLoaded>, PersoError> {
        let all = Kid::CARD_KEYS.into_iter().chain([Kid::Pin]);
        let (local, here): (Vec<Kid>, Vec<Kid>) = all.partition(|k| k.scope() == KeyScope::Df01);
        let card = CardRef::new(self.id.card_id);
        let alg = self.s.algorithm();
        let wanted: Vec<(Kid, u8)> = here
            .iter()
            .chain(&local)
            .map(|&k| (k, k.try_limit()))
            .collect();
        let mut blocks = self
            .s
            .key_source()
            .key_load_blocks(alg, &card, &wanted)
            .map_err(SscError::from)?
            .into_iter();
        for &key in &here {
            let block = blocks
                .next()
                .ok_or_else(|| SscError::from(KeyError::MissingKey { kid: key }))?;
            self.write_key(key, block)?;
        }
        self.s.select_local()?;
        for &key in &local {
            let block = blocks
                .next()
                .ok_or_else(|| SscError::from(KeyError::MissingKey { kid: key }))?;
            self.write_key(key, block)?;
        }
        // Back in SSSE the TK authentication, lost with the DF change, opens the read-back.
        self.s.select_application()?;
        self.s.external_authenticate(Kid::Tk)?;
        Ok(self.into_state(KeysLoaded))
    }
}

impl<'a, 'c> Personalisation<'a, 'c, KeysLoaded> {
    /// Writes the holder's records of EF05, EF06 and EF07 under TK. On a `fresh` card (never
    /// written to before) a record whose value is all zeros is already on the card as
    /// manufactured (PROFILE section 4, "Records") and is not written; the read-back still
    /// checks it.
    pub fn write(
        mut self,
        holder: &Holder,
        fresh: bool,
    ) -> Result<Personalisation<'a, 'c, Written>, PersoError> {
        let mut written = Vec::new();
        for (file, records) in holder.records()? {
            let mut on_file = Vec::new();
            for (rec, value) in records {
                let unwritten = fresh && value.iter().all(|b| *b == 0);
                let record = Record::new(rec.tag, value)?;
                if unwritten {
                    on_file.push(record);
                    continue;
                }
                self.s.send_protected(
                    commands::update_record(file, rec.number, record.to_bytes()),
                    Kid::Tk,
                )?;
                on_file.push(record);
            }
            written.push((file, on_file));
        }
        Ok(self.into_state(Written(written)))
    }
}

impl<'a, 'c> Personalisation<'a, 'c, Written> {
    /// Reads every written file back and compares it with what was written.
    pub fn verify(mut self) -> Result<Personalisation<'a, 'c, Verified>, PersoError> {
        for (file, records) in &self.state.0 {
            let on_card = self.s.read_records(file)?;
            for r in records {
                if !on_card.contains(r) {
                    return Err(PersoError::ReadBack {
                        file: file.name,
                        tag: r.tag,
                    });
                }
            }
        }
        Ok(self.into_state(Verified))
    }
}

impl<'a, 'c> Personalisation<'a, 'c, Verified> {
    /// END PERSONALISATION under TK: PERSONALISATION → ISSUED. The session comes back for the
    /// acceptance test.
    pub fn issue(mut self) -> Result<(Issued, Session<'a, 'c>), PersoError> {
        self.s
            .send_protected(commands::end_personalisation(), Kid::Tk)?;
        // The card's 9000 to END PERSONALISATION is its word that it is ISSUED now.
        self.s.personalisation_ended();
        Ok((
            Issued {
                card_id: to_hex(&self.id.card_id),
            },
            self.s,
        ))
    }
}

fn reached(
    on_stage: &mut dyn FnMut(Stage) -> Result<(), ListenerError>,
    stage: Stage,
) -> Result<(), PersoError> {
    on_stage(stage).map_err(|cause| PersoError::Stopped { stage, cause })
}

/// Personalises the blank card of session `s` (identified as `id`) for `holder` through every
/// state; `on_stage` hears each state reached and may stop the run: a stage it cannot record
/// (the journal is durable before the card moves on) ends personalisation there, before END
/// PERSONALISATION. The session stays open for the acceptance test.
pub fn personalise<'a, 'c>(
    s: Session<'a, 'c>,
    id: CardIdentification,
    holder: &Holder,
    region: &str,
    fresh: bool,
    on_stage: &mut dyn FnMut(Stage) -> Result<(), ListenerError>,
) -> Result<(Issued, Session<'a, 'c>), PersoError> {
    let card = Personalisation::start(s, id, region)?;
    reached(on_stage, card.stage())?;
    let card = card.authenticate()?;
    reached(on_stage, card.stage())?;
    let card = card.load_keys()?;
    reached(on_stage, card.stage())?;
    let card = card.write(holder, fresh)?;
    reached(on_stage, card.stage())?;
    let card = card.verify()?;
    reached(on_stage, card.stage())?;
    let (issued, s) = card.issue()?;
    Ok((issued, s))
}

/// The acceptance test of an issued card, as a terminal reads it: read basic info with
/// internal authentication (and, on a 3.00 card, external authentication with RKSSSE to open
/// EF06), and the card must carry the holder's card number and SSN. A 2.00 card opens EF06
/// without authentication, so RKSSSE is proven by one more external authentication.
pub fn accept(s: &mut Session<'_, '_>, holder: &Holder) -> Result<(), PersoError> {
    let info = s.read_basic_info()?;
    if s.algorithm() == sscard_core::crypto::Algorithm::Tdes {
        s.external_authenticate(Kid::Rkssse)?;
    }
    if info.card.card_number != holder.card_number || info.holder.ssn != holder.ssn {
        return Err(PersoError::ReadBack {
            file: "EF05",
            tag: 0x07,
        });
    }
    Ok(())
}
