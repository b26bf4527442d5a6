//! GET CHALLENGE, EXTERNAL AUTHENTICATE, INTERNAL AUTHENTICATE.

use super::{kid_of, OnWrong, Ssc};
use crate::reply::{data_with_le, ok, Reply};
use rand::RngCore;
use sscard_core::apdu::Command;
use sscard_core::crypto::ct_eq;
use sscard_core::profile::Kid;
use sscard_core::status::StatusWord;

impl Ssc {
    pub(super) fn get_challenge(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        let len = match cmd.le {
            Some(n @ (4 | 8)) => n,
            _ => return Err(StatusWord::WRONG_LENGTH.into()),
        };
        let mut challenge = vec![0u8; len];
        rand::thread_rng().fill_bytes(&mut challenge);
        if let Some(mut fixed) = self.fixed_challenges.pop_front() {
            fixed.resize(len, 0);
            challenge = fixed;
        }
        self.vol.challenge = Some(challenge.clone());
        data_with_le(challenge, cmd.le)
    }

    pub(super) fn external_authenticate(
        &mut self,
        cmd: &Command,
        challenge: Option<&[u8]>,
    ) -> Reply {
        if cmd.p1 != 0 {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        let alg = self.algorithm();
        let kid = kid_of(cmd.p2)?;
        // Only authentication keys authenticate (PROFILE section 4): IRK, UK_N, UK_L, RPK, UPK
        // and the PIN object answer 6A88; TK is gone once issued (usable_key answers 6A88).
        if !matches!(kid, Kid::Rkssse | Kid::EakL | Kid::Tk) {
            return Err(StatusWord::REF_DATA_NOT_FOUND.into());
        }
        // OwnerPIN rule: an attempt revokes the grant first; only a right cryptogram of a key
        // that is not blocked gives it back.
        if self.revokes() {
            self.vol.security.revoke_external(kid);
        }
        // A malformed attempt is a failed one too (as for VERIFY): checked after the revocation.
        if cmd.data.len() != alg.block_size() {
            return Err(StatusWord::WRONG_LENGTH.into());
        }
        let key = self.usable_key(kid)?;
        let challenge = match challenge {
            Some(c) if c.len() == 8 => c,
            _ => return Err(StatusWord::REF_DATA_NOT_USABLE.into()),
        };
        let expected = alg
            .cryptogram(&key, challenge)
            .map_err(|_| StatusWord::WRONG_DATA)?;
        let matches = ct_eq(&expected, &cmd.data);
        self.counted_check(kid, matches, OnWrong::TriesLeft)?;
        self.vol.security.grant_external(kid);
        ok()
    }

    /// `008800 <KID> 08 <R8>` returns the block-size cryptogram of R; P2 `00` means IRK, and
    /// 16 bytes of data (process factor ‖ source data, as field terminals send) return their ECB
    /// encryption under IRK: two 3DES blocks or one SM4 block (PROFILE section 4).
    pub(super) fn internal_authenticate(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0 {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        if !matches!(cmd.data.len(), 8 | 16) {
            return Err(StatusWord::WRONG_LENGTH.into());
        }
        if cmd.p2 != 0x00 && cmd.p2 != Kid::Irk.id() {
            return Err(StatusWord::REF_DATA_NOT_FOUND.into());
        }
        let key = self.usable_key(Kid::Irk)?;
        let alg = self.algorithm();
        let answer = if cmd.data.len() == 16 {
            alg.encrypt_ecb(&key, &cmd.data)
        } else {
            alg.cryptogram(&key, &cmd.data)
        }
        .map_err(|_| StatusWord::WRONG_DATA)?;
        data_with_le(answer, cmd.le)
    }
}
