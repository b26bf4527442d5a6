//! The social security card application (PROFILE sections 2–5).

mod auth;
mod files;
mod perso;
mod pin;
mod security;
mod select;

use crate::card::Card;
use crate::image::{Image, Memory};
use crate::memory::{LifeCycle, SscMemory};
use crate::reply::{finish, Fail, Reply};
use crate::store::{Store, StoreError};
use crate::validate::InvalidImage;
pub use security::SecurityStatus;
use sscard_core::apdu::Command;
use sscard_core::crypto::{ct_eq, Algorithm, Key};
use sscard_core::profile::commands::{describe, LineProtected};
use sscard_core::profile::{Df, FileDef, KeyScope, Kid};
use sscard_core::status::StatusWord;

/// Volatile state: lost on reset, like the card's RAM.
#[derive(Debug, Default)]
struct Volatile {
    df: Option<Df>,
    ef: Option<&'static FileDef>,
    security: SecurityStatus,
    challenge: Option<Vec<u8>>,
}

/// A social security card.
pub struct Ssc {
    atr: Vec<u8>,
    mem: SscMemory,
    /// The memory as last persisted: what a power cut returns to.
    committed: SscMemory,
    store: Store,
    vol: Volatile,
    mute: bool,
    /// Challenges a test bench asked for (worked examples); random otherwise.
    fixed_challenges: std::collections::VecDeque<Vec<u8>>,
    /// A deliberately broken rule, to prove a conformance suite can fail.
    defect: Option<Defect>,
}

/// Rules a test bench can break on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Defect {
    /// Line-protection MACs are accepted whatever their value.
    MacNotChecked,
    /// Wrong PINs and cryptograms do not use up tries.
    TryCounterNotDecremented,
    /// A failed VERIFY, CHANGE PIN or EXTERNAL AUTHENTICATE leaves the grant in place, and a
    /// blocked PIN or key still counts as verified (the profile's version 2 behaviour).
    GrantSurvivesFailure,
}

impl Defect {
    /// Every defect with its name (`--defect NAME`): the one list the parser, its error and
    /// the command line's help are made from.
    pub const ALL: [(&'static str, Defect); 3] = [
        ("mac-not-checked", Defect::MacNotChecked),
        (
            "try-counter-not-decremented",
            Defect::TryCounterNotDecremented,
        ),
        ("grant-survives-failure", Defect::GrantSurvivesFailure),
    ];

    /// The defects' names, in [`Defect::ALL`]'s order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::ALL.iter().map(|(name, _)| *name)
    }

    /// This defect's name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, d)| *d == self)
            .map_or("unknown", |(name, _)| name)
    }
}

/// Why a defect name is not one the model knows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DefectError {
    #[error("unknown defect {name:?}: {}", Defect::names().collect::<Vec<_>>().join(", "))]
    Unknown { name: String },
}

impl std::str::FromStr for Defect {
    type Err = DefectError;
    fn from_str(s: &str) -> Result<Self, DefectError> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, d)| *d)
            .ok_or_else(|| DefectError::Unknown { name: s.into() })
    }
}

#[cfg(test)]
#[test]
fn every_defect_has_one_name_that_parses_back() {
    for (name, d) in Defect::ALL {
        assert_eq!(name.parse::<Defect>(), Ok(d));
        assert_eq!(d.name(), name);
    }
    assert_eq!(
        "nope".parse::<Defect>().unwrap_err().to_string(),
        "unknown defect \"nope\": mac-not-checked, try-counter-not-decremented, grant-survives-failure"
    );
}

/// Whether `kid` may be used while `df` is current (PROFILE section 3): the national keys in
/// SSSE only, the local keys in DF01 only, the others (TK during personalisation included) in
/// both application DFs. A key used outside its scope answers `6A88`.
fn key_in_scope(kid: Kid, df: Df) -> bool {
    match kid.scope() {
        KeyScope::Ssse => df == Df::Ssse,
        KeyScope::Df01 => df == Df::Df01,
        KeyScope::Both => matches!(df, Df::Ssse | Df::Df01),
        _ => false,
    }
}

/// The key a command names in P2: `6A88` when the profile has no such key id.
fn kid_of(p2: u8) -> Result<Kid, Fail> {
    Kid::from_id(p2).ok_or(Fail::Sw(StatusWord::REF_DATA_NOT_FOUND))
}

/// How a failed comparison under a try counter answers.
#[derive(Clone, Copy)]
enum OnWrong {
    /// `63Cx` with the tries left (PIN, external authentication).
    TriesLeft,
    /// A fixed status word (`6988` for MACs).
    Sw(StatusWord),
}

impl Ssc {
    /// A card with this memory, persisted through `store`.
    pub fn new(atr: Vec<u8>, mem: SscMemory, store: Store) -> Self {
        Self {
            atr,
            committed: mem.clone(),
            mem,
            store,
            vol: Volatile::default(),
            mute: false,
            fixed_challenges: Default::default(),
            defect: None,
        }
    }

    /// A card from an image; `store` usually points back at the image file.
    pub fn from_image(image: Image, store: Store) -> Result<Self, InvalidImage> {
        match image.memory {
            Memory::Ssc(mem) => {
                crate::validate::atr(&image.atr.0)?;
                crate::validate::ssc(&mem)?;
                Ok(Self::new(image.atr.0, mem, store))
            }
            Memory::Psam(_) => Err(InvalidImage::NotAnSsc),
        }
    }

    /// The card memory as an image.
    pub fn image(&self) -> Image {
        Image::new(self.atr.clone(), Memory::Ssc(self.mem.clone()))
    }

    pub fn memory(&self) -> &SscMemory {
        &self.mem
    }

    /// Makes the next GET CHALLENGE answer `challenge` (padded or cut to the asked length), so a
    /// test bench can replay worked examples. Later challenges are random again.
    pub fn queue_challenge(&mut self, challenge: &[u8]) {
        self.fixed_challenges.push_back(challenge.to_vec());
    }

    /// Breaks one rule on purpose (conformance-suite self-tests).
    pub fn inject_defect(&mut self, defect: Defect) {
        self.defect = Some(defect);
    }

    /// The store, e.g. to arm the tearing hook.
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    fn algorithm(&self) -> Algorithm {
        self.mem.algorithm.algorithm()
    }

    fn issued(&self) -> bool {
        self.mem.life_cycle == LifeCycle::Issued
    }

    /// Whether a failed check revokes what it checks (PROFILE section 4): always, unless a test
    /// bench broke the rule on purpose.
    fn revokes(&self) -> bool {
        self.defect != Some(Defect::GrantSurvivesFailure)
    }

    /// Persists card memory. On a power cut the card returns to the last committed memory and
    /// goes mute; on an I/O error it stays up and answers `6581`.
    fn persist(&mut self) -> Result<(), Fail> {
        let (atr, mem) = (&self.atr, &self.mem);
        match self
            .store
            .save(|| Image::new(atr.clone(), Memory::Ssc(mem.clone())))
        {
            Ok(()) => {
                self.committed = self.mem.clone();
                Ok(())
            }
            Err(StoreError::Torn(_)) => {
                self.mem = self.committed.clone();
                self.vol = Volatile::default();
                self.mute = true;
                Err(Fail::PowerLost)
            }
            Err(e) => {
                tracing::error!("{e}");
                self.mem = self.committed.clone();
                Err(StatusWord::MEMORY_FAILURE.into())
            }
        }
    }

    /// A usable key in the current DF: `6A88` when absent or out of scope, `6983` when blocked.
    fn usable_key(&self, kid: Kid) -> Result<Key, Fail> {
        let df = self.vol.df.unwrap_or(Df::Mf);
        if !key_in_scope(kid, df) || (kid == Kid::Tk && self.issued()) {
            return Err(StatusWord::REF_DATA_NOT_FOUND.into());
        }
        let slot = self.mem.key(kid).ok_or(StatusWord::REF_DATA_NOT_FOUND)?;
        if slot.blocked() {
            return Err(StatusWord::AUTH_BLOCKED.into());
        }
        slot.key().ok_or(Fail::Sw(StatusWord::REF_DATA_NOT_FOUND))
    }

    /// Runs a secret comparison under the key's try counter: the counter is decremented and
    /// persisted **before** comparing, so a power cut can never give a try back.
    fn counted_check(&mut self, kid: Kid, matches: bool, on_wrong: OnWrong) -> Result<(), Fail> {
        let counted = self.mem.key(kid).is_some_and(|s| s.has_counter())
            && self.defect != Some(Defect::TryCounterNotDecremented);
        if counted {
            let slot = self.mem.key_mut(kid).expect("checked above");
            slot.tries_left = slot.tries_left.saturating_sub(1);
            self.persist()?;
        }
        if matches {
            if counted {
                let slot = self.mem.key_mut(kid).expect("checked above");
                slot.tries_left = slot.try_limit;
                self.persist()?;
            }
            return Ok(());
        }
        Err(match on_wrong {
            OnWrong::Sw(sw) => sw.into(),
            OnWrong::TriesLeft => {
                let left = self.mem.key(kid).map_or(0, |s| s.tries_left);
                StatusWord::new(0x63, 0xC0 | left.min(15)).into()
            }
        })
    }

    /// Checks the line-protection MAC of a command (PROFILE section 5) under `kid` and returns
    /// the data without the MAC. `6700` without room for a MAC, `6984` without a challenge,
    /// `6988` when wrong.
    fn check_mac(
        &mut self,
        kid: Kid,
        cmd: &Command,
        challenge: Option<&[u8]>,
    ) -> Result<Vec<u8>, Fail> {
        if cmd.data.len() < 4 {
            return Err(StatusWord::WRONG_LENGTH.into());
        }
        let key = self.usable_key(kid)?;
        let challenge = challenge.ok_or(StatusWord::REF_DATA_NOT_USABLE)?;
        let (body, mac) = cmd.data.split_at(cmd.data.len() - 4);
        // The MAC input exactly as the host builds it: header ‖ Lc ‖ data, Lc counting the MAC.
        // Data too long for a short Lc can carry no valid MAC: it fails like a wrong one.
        let name = describe(cmd.cla, cmd.ins).name;
        let expected = match LineProtected::new(name, cmd.header(), body.to_vec()).mac_input() {
            Ok(message) => Some(
                self.algorithm()
                    .line_mac(&key, &challenge[..4], &message)
                    .map_err(|_| Fail::Sw(StatusWord::WRONG_DATA))?,
            ),
            Err(_) => None,
        };
        let matches =
            expected.is_some_and(|e| ct_eq(&e, mac)) || self.defect == Some(Defect::MacNotChecked);
        self.counted_check(kid, matches, OnWrong::Sw(StatusWord::INCORRECT_SM))?;
        Ok(body.to_vec())
    }

    fn dispatch(&mut self, cmd: &Command, challenge: Option<Vec<u8>>) -> Reply {
        let ch = challenge.as_deref();
        match (cmd.cla, cmd.ins) {
            (0x00, 0xA4) => self.select(cmd),
            (0x00, 0xB2) => self.read_record(cmd),
            (0x00, 0xB0) => self.read_binary(cmd),
            (0x04, 0xDC) => self.update_record(cmd, ch),
            (0x04, 0xD6) => self.update_binary(cmd, ch),
            // Every EF is written under line protection: an UPDATE without it is a known
            // command the security status does not allow (PROFILE section 4).
            (0x00, 0xDC | 0xD6) => Err(StatusWord::SECURITY_NOT_SATISFIED.into()),
            (0x00, 0x84) => self.get_challenge(cmd),
            (0x00, 0x82) => self.external_authenticate(cmd, ch),
            (0x00, 0x88) => self.internal_authenticate(cmd),
            (0x00, 0x20) => self.verify(cmd),
            (0x80, 0x5E) => self.change_pin(cmd),
            (0x84, 0x5E) => self.reload_pin(cmd, ch),
            (0x84, 0x24) => self.unblock_pin(cmd, ch),
            (0x84, 0xD4) => self.write_key(cmd, ch),
            (0x84, 0xEE) => self.end_personalisation(cmd, ch),
            (0x00 | 0x04 | 0x80 | 0x84, _) => Err(StatusWord::INS_NOT_SUPPORTED.into()),
            _ => Err(StatusWord::CLA_NOT_SUPPORTED.into()),
        }
    }
}

impl Card for Ssc {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn arm_tearing(&mut self, nth_write: u64) -> bool {
        self.store.tear_at(nth_write);
        true
    }

    fn reset(&mut self) {
        self.vol = Volatile::default();
        self.mute = false;
    }

    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        if self.mute {
            return None;
        }
        // A challenge is single-use: whatever command comes next consumes it.
        let challenge = self.vol.challenge.take();
        let reply = match Command::parse(apdu) {
            Ok(cmd) => self.dispatch(&cmd, challenge),
            Err(_) => Err(StatusWord::WRONG_LENGTH.into()),
        };
        finish(reply)
    }
}
