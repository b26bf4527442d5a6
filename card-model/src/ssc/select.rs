//! SELECT (PROFILE section 4): by AID, by FID, by child FID, by path from the MF (P1 `08`) or
//! from the current DF (P1 `09`); the FCI of SSSE and DF01, the FCP of an EF.

use super::Ssc;
use crate::reply::{data_with_le, Fail, Reply};
use sscard_core::apdu::Command;
use sscard_core::profile::{fid, files, life_cycle, Df, FileDef, SSSE_AID};
use sscard_core::status::StatusWord;
use sscard_core::tlv::Fci;

enum Target {
    Df(Df),
    /// An EF and the DF it lies in.
    Ef(Df, &'static FileDef),
}

/// The file with `id` directly under `df`: a child DF or an EF.
fn child(df: Df, id: u16) -> Option<Target> {
    df.child(id)
        .map(Target::Df)
        .or_else(|| files::by_fid(df, id).map(|ef| Target::Ef(df, ef)))
}

/// Walks a path of FIDs (without `3F00`) from `start`: every FID but the last names a DF.
/// `6700` when the path is not whole FIDs, `6A82` when a step is not found.
fn walk(start: Df, path: &[u8]) -> Result<Target, Fail> {
    if path.is_empty() || !path.len().is_multiple_of(2) {
        return Err(StatusWord::WRONG_LENGTH.into());
    }
    let mut at = Target::Df(start);
    for id in path.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])) {
        let Target::Df(df) = at else {
            return Err(StatusWord::FILE_NOT_FOUND.into());
        };
        at = child(df, id).ok_or(StatusWord::FILE_NOT_FOUND)?;
    }
    Ok(at)
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
                match (cmd.p1, id, child(current, id)) {
                    (0x00, fid::MF, _) => Target::Df(Df::Mf),
                    // Re-selecting the current DF01 by its FID.
                    (0x00 | 0x01, fid::DF01, _) if current == Df::Df01 => Target::Df(Df::Df01),
                    (0x00 | 0x01, _, Some(Target::Df(df))) => Target::Df(df),
                    (0x00 | 0x02, _, Some(ef @ Target::Ef(..))) => ef,
                    _ => return Err(StatusWord::FILE_NOT_FOUND.into()),
                }
            }
            0x08 => walk(Df::Mf, &cmd.data)?,
            0x09 => walk(current, &cmd.data)?,
            _ => return Err(StatusWord::INCORRECT_P1P2.into()),
        };
        let (df, ef, answer) = match target {
            Target::Ef(df, ef) => (df, Some(ef), ef.fcp().to_bytes()),
            Target::Df(df) => (df, None, self.fci(df)),
        };
        // A short Le answers 6Cxx before anything changes: the command was not carried out,
        // the terminal resends it with the right Le.
        let reply = data_with_le(if wants_fci { answer } else { Vec::new() }, cmd.le)?;
        if self.vol.df != Some(df) {
            self.vol.security.clear();
        }
        self.vol.df = Some(df);
        self.vol.ef = ef;
        Ok(reply)
    }

    /// The FCI of an application DF; the MF has no DF name and no FCI.
    fn fci(&self, df: Df) -> Vec<u8> {
        let df_name = match df {
            Df::Ssse => SSSE_AID.to_vec(),
            Df::Df01 => fid::DF01.to_be_bytes().to_vec(),
            _ => return Vec::new(),
        };
        Fci {
            df_name,
            algorithm_id: self.algorithm().id(),
            life_cycle: if self.issued() {
                life_cycle::ISSUED
            } else {
                life_cycle::PERSONALISATION
            },
        }
        .to_bytes()
    }
}
