//! WRITE KEY and END PERSONALISATION under the transport key (PROFILE section 4).

use super::pin::decode_pin;
use super::{key_in_scope, Ssc};
use crate::memory::{kid_name, KeySlot, LifeCycle};
use crate::reply::{ok, Reply};
use sscard_core::apdu::Command;
use sscard_core::crypto::padding::unpad_method2;
use sscard_core::profile::{Df, Kid};
use sscard_core::status::StatusWord;
use zeroize::Zeroizing;

impl Ssc {
    pub(super) fn write_key(&mut self, cmd: &Command, challenge: Option<&[u8]>) -> Reply {
        if self.issued() {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED.into());
        }
        if cmd.p1 != 0 {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        // A key is written in the DF where it is valid (PROFILE section 3): EAK_L in SSSE, or
        // IRK in DF01, answers 6A88 like any use of a KID outside its DF.
        let df = self.vol.df.unwrap_or(Df::Mf);
        let kid = Kid::from_id(cmd.p2)
            .filter(|k| key_in_scope(*k, df))
            .ok_or(StatusWord::REF_DATA_NOT_FOUND)?;
        let encrypted = self.check_mac(Kid::Tk, cmd, challenge)?;
        let tk = self.usable_key(Kid::Tk)?;
        let alg = self.algorithm();
        let plain = Zeroizing::new(
            alg.decrypt_ecb(&tk, &encrypted)
                .map_err(|_| StatusWord::WRONG_DATA)?,
        );
        let plain = unpad_method2(&plain).map_err(|_| StatusWord::WRONG_DATA)?;
        let [len, key_id, alg_id, tries, value @ ..] = plain else {
            return Err(StatusWord::WRONG_DATA.into());
        };
        if *len as usize != plain.len() - 1 || *key_id != kid.id() || *alg_id != alg.id() {
            return Err(StatusWord::WRONG_DATA.into());
        }
        let stored = match kid {
            Kid::Pin => decode_pin(value)?.to_vec(),
            k if Kid::CARD_KEYS.contains(&k) && value.len() == 16 => value.to_vec(),
            _ => return Err(StatusWord::WRONG_DATA.into()),
        };
        self.mem
            .keys
            .insert(kid_name(kid), KeySlot::new(stored, *tries));
        self.persist()?;
        ok()
    }

    pub(super) fn end_personalisation(&mut self, cmd: &Command, challenge: Option<&[u8]>) -> Reply {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        let complete = Kid::CARD_KEYS
            .into_iter()
            .chain([Kid::Pin])
            .all(|k| self.mem.key(k).is_some());
        if self.issued() || !complete {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED.into());
        }
        self.check_mac(Kid::Tk, cmd, challenge)?;
        self.mem.life_cycle = LifeCycle::Issued;
        self.mem.keys.remove(&kid_name(Kid::Tk));
        self.persist()?;
        ok()
    }
}
