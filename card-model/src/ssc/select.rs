//! SELECT (PROFILE section 4): by AID, by FID, by child FID.

use super::Ssc;
use crate::reply::{data_with_le, ok, Reply};
use sscard_core::apdu::Command;
use sscard_core::profile::{fid, files, life_cycle, Df, FileDef, SSSE_AID};
use sscard_core::status::StatusWord;
use sscard_core::tlv::Fci;

enum Target {
    Df(Df),
    Ef(&'static FileDef),
}

impl Ssc {
    pub(super) fn select(&mut self, cmd: &Command) -> Reply {
        let wants_fci = match cmd.p2 {
            0x00 => cmd.le.is_some(),
            0x0C => false,
            _ => return Err(StatusWord::INCORRECT_P1P2.into()),
        };
        let current = self.vol.df.unwrap_or(Df::Mf);
        let target = match cmd.p1 {
            // ISO 7816-4: SELECT without a name selects the MF.
            0x00 | 0x04 if cmd.data.is_empty() => Target::Df(Df::Mf),
            0x04 if cmd.data == SSSE_AID => Target::Df(Df::Ssse),
            0x04 => return Err(StatusWord::FILE_NOT_FOUND.into()),
            0x00..=0x02 => {
                let [hi, lo] = cmd.data[..] else {
                    return Err(StatusWord::WRONG_LENGTH.into());
                };
                let id = u16::from_be_bytes([hi, lo]);
                match (cmd.p1, id) {
                    (0x00, fid::MF) => Target::Df(Df::Mf),
                    (0x00 | 0x01, fid::DF01) if matches!(current, Df::Ssse | Df::Df01) => {
                        Target::Df(Df::Df01)
                    }
                    (0x00 | 0x02, _) => match files::by_fid(current, id) {
                        Some(ef) => Target::Ef(ef),
                        None => return Err(StatusWord::FILE_NOT_FOUND.into()),
                    },
                    _ => return Err(StatusWord::FILE_NOT_FOUND.into()),
                }
            }
            _ => return Err(StatusWord::INCORRECT_P1P2.into()),
        };
        match target {
            Target::Ef(ef) => {
                self.vol.ef = Some(ef);
                ok()
            }
            Target::Df(df) => {
                // The MF has no DF name and no FCI.
                let name = match df {
                    Df::Ssse => Some(SSSE_AID.to_vec()),
                    Df::Df01 => Some(fid::DF01.to_be_bytes().to_vec()),
                    _ => None,
                };
                let fci = match name {
                    Some(df_name) if wants_fci => Fci {
                        df_name,
                        algorithm_id: self.algorithm().id(),
                        life_cycle: if self.issued() {
                            life_cycle::ISSUED
                        } else {
                            life_cycle::PERSONALISATION
                        },
                    }
                    .to_bytes(),
                    _ => Vec::new(),
                };
                // A short Le answers 6Cxx before anything changes: the command was not
                // carried out, the terminal resends it with the right Le.
                let reply = data_with_le(fci, cmd.le)?;
                if self.vol.df != Some(df) {
                    self.vol.security.clear();
                }
                self.vol.df = Some(df);
                self.vol.ef = None;
                Ok(reply)
            }
        }
    }
}
