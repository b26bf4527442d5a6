//! The PSAM application (PROFILE section 6): EF15/EF16, DF01, DES INIT and DES CRYPT over T=0.

use crate::card::Card;
use crate::image::{Image, Memory};
use crate::memory::PsamMemory;
use crate::reply::{data_with_le, finish, ok, Fail, Reply};
use crate::t0::T0;
use crate::validate::InvalidImage;
use sscard_core::apdu::{Command, Response};
use sscard_core::crypto::{Algorithm, Key};
use sscard_core::profile::fcp::Fcp;
use sscard_core::profile::{fid, psam};
use sscard_core::status::StatusWord;

/// EF15 or EF16 by either of its FIDs (`EF15` or `0015`, PROFILE sections 4 and 6).
fn ef_of(id: u16) -> Option<u16> {
    match id {
        fid::EF15 | psam::EF15_SHORT_FID => Some(fid::EF15),
        fid::EF16 | psam::EF16_SHORT_FID => Some(fid::EF16),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Selected {
    Mf,
    Df01,
}

/// A PSAM. Keys never leave it; DES INIT derives a working key that DES CRYPT uses.
pub struct Psam {
    atr: Vec<u8>,
    mem: PsamMemory,
    df: Selected,
    ef: Option<u16>,
    working_key: Option<Key>,
    t0: T0,
}

impl Psam {
    pub fn new(atr: Vec<u8>, mem: PsamMemory) -> Self {
        Self {
            atr,
            mem,
            df: Selected::Mf,
            ef: None,
            working_key: None,
            t0: T0::default(),
        }
    }

    pub fn from_image(image: Image) -> Result<Self, InvalidImage> {
        match image.memory {
            Memory::Psam(mem) => {
                crate::validate::atr(&image.atr.0)?;
                crate::validate::psam(&mem)?;
                Ok(Self::new(image.atr.0, mem))
            }
            Memory::Ssc(_) => Err(InvalidImage::NotAPsam),
        }
    }

    pub fn image(&self) -> Image {
        Image::new(self.atr.clone(), Memory::Psam(self.mem.clone()))
    }

    fn algorithm(&self) -> Algorithm {
        self.mem.algorithm.algorithm()
    }

    /// Factors DES INIT needs from this PSAM's level down to the card.
    fn factor_count(&self) -> usize {
        psam::factor_count(self.mem.level)
    }

    /// SELECT of the MF, DF01, or EF15/EF16 (also by FID `0015`/`0016`, PROFILE section 4) by
    /// FID (P1 `00`/`02`) or by path from the MF (`08`) or the current DF (`09`). EF15 and EF16
    /// lie in the MF and are found from DF01 too, as READ BINARY by SFI finds them.
    ///
    /// DF01 answers its FCP, an EF its FCP, when the command asks for it: P2 `00` and Le, or P2
    /// `00` on a SELECT by path — under T=0 a case-4 command travels without Le, and only
    /// generic tools select by path; the profile's `00A40000 02 DF01` keeps answering `9000`.
    fn select(&mut self, cmd: &Command) -> Reply {
        if !matches!(cmd.p1, 0x00 | 0x02 | 0x08 | 0x09) || !matches!(cmd.p2, 0x00 | 0x0C) {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        if cmd.data.is_empty() || !cmd.data.len().is_multiple_of(2) {
            return Err(StatusWord::WRONG_LENGTH.into());
        }
        let ids: Vec<u16> = cmd
            .data
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let (start, ids) = match (cmd.p1, ids.as_slice()) {
            (0x00 | 0x02, [id]) => (self.df, std::slice::from_ref(id)),
            (0x00 | 0x02, _) => return Err(StatusWord::WRONG_LENGTH.into()),
            (0x08, ids) => (Selected::Mf, ids),
            (_, ids) => (self.df, ids),
        };
        let by_path = matches!(cmd.p1, 0x08 | 0x09);
        let mut df = start;
        let mut ef = None;
        for (i, &id) in ids.iter().enumerate() {
            let last = i + 1 == ids.len();
            match (id, ef_of(id)) {
                // The MF by FID (P1 00), from wherever the PSAM stands.
                (fid::MF, _) if cmd.p1 == 0x00 => df = Selected::Mf,
                // DF01 by FID from anywhere (PROFILE section 6), by path under the MF.
                (fid::DF01, _) if df == Selected::Mf || !by_path => df = Selected::Df01,
                (_, Some(file)) if last => ef = Some((file, id)),
                _ => return Err(StatusWord::FILE_NOT_FOUND.into()),
            }
        }
        let wants_fcp = cmd.p2 == 0x00 && (cmd.le.is_some() || by_path);
        let fcp = match (ef, df) {
            (Some((file, id)), _) => Fcp::transparent(id, self.ef_bytes(file).len()).to_bytes(),
            (None, Selected::Df01) => Fcp::df(fid::DF01).to_bytes(),
            (None, Selected::Mf) => Vec::new(),
        };
        let reply = if wants_fcp {
            Response::new(fcp, StatusWord::OK)
        } else {
            Response::status(StatusWord::OK)
        };
        // Selecting a DF (again) drops the working key; selecting an EF keeps it unless the
        // path moved to another DF.
        if ef.is_none() || df != self.df {
            self.working_key = None;
        }
        self.df = df;
        self.ef = ef.map(|(file, _)| file);
        Ok(reply)
    }

    fn ef_bytes(&self, file: u16) -> &[u8] {
        if file == fid::EF15 {
            &self.mem.ef15.0
        } else {
            &self.mem.ef16.0
        }
    }

    fn read_binary(&mut self, cmd: &Command) -> Reply {
        let (id, offset) = if cmd.p1 & 0x80 != 0 {
            let id = match cmd.p1 & 0x1F {
                0x15 => fid::EF15,
                0x16 => fid::EF16,
                _ => return Err(StatusWord::FILE_NOT_FOUND.into()),
            };
            self.ef = Some(id);
            (id, cmd.p2 as usize)
        } else {
            let id = self.ef.ok_or(StatusWord(0x6986))?;
            (id, u16::from_be_bytes([cmd.p1, cmd.p2]) as usize)
        };
        let bytes = self.ef_bytes(id);
        if offset >= bytes.len() {
            return Err(StatusWord::WRONG_P1P2.into());
        }
        let end = (offset + cmd.le.unwrap_or(256)).min(bytes.len());
        data_with_le(bytes[offset..end].to_vec(), None)
    }

    fn des_init(&mut self, cmd: &Command) -> Reply {
        self.working_key = None;
        // The keys belong to the security application (PROFILE section 6): outside DF01 the
        // key reference is not found.
        if !matches!(self.df, Selected::Df01) {
            return Err(StatusWord::REF_DATA_NOT_FOUND.into());
        }
        let n = self.factor_count();
        if cmd.data.len() != 8 * n {
            return Err(StatusWord::WRONG_LENGTH.into());
        }
        let prefix = format!("{:02X}/", cmd.p1);
        let wanted = format!("{prefix}{:02X}", cmd.p2);
        // Key index 00 names the key id's first index.
        let slot = self
            .mem
            .keys
            .iter()
            .find(|(name, _)| **name == wanted || (cmd.p2 == 0 && name.starts_with(&prefix)))
            .map(|(_, slot)| slot)
            .ok_or(StatusWord::REF_DATA_NOT_FOUND)?;
        let master = slot.key().ok_or(StatusWord::REF_DATA_NOT_FOUND)?;
        let factors: Vec<[u8; 8]> = cmd
            .data
            .chunks(8)
            .map(|c| c.try_into().expect("chunks of 8"))
            .collect();
        self.working_key = Some(self.algorithm().diversify_chain(&master, &factors));
        ok()
    }

    fn des_crypt(&mut self, cmd: &Command) -> Reply {
        let key = self
            .working_key
            .as_ref()
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        let alg = self.algorithm();
        let block = alg.block_size();
        let out = match cmd.p1 {
            0x00 => alg
                .encrypt_ecb(key, &cmd.data)
                .map_err(|_| StatusWord::WRONG_LENGTH)?,
            0x05 if cmd.data.len() >= block => {
                let (iv, message) = cmd.data.split_at(block);
                alg.mac(key, iv, message)
                    .map_err(|_| StatusWord::WRONG_LENGTH)?[..4]
                    .to_vec()
            }
            0x05 => return Err(StatusWord::WRONG_LENGTH.into()),
            _ => return Err(StatusWord::INCORRECT_P1P2.into()),
        };
        if cmd.p2 != 0 {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        Ok(Response::new(out, StatusWord::OK))
    }

    fn dispatch(&mut self, cmd: &Command) -> Reply {
        match (cmd.cla, cmd.ins) {
            (0x00, 0xA4) => self.select(cmd),
            (0x00, 0xB0) => self.read_binary(cmd),
            (0x80, 0x1A) => self.des_init(cmd),
            (0x80, 0xFA) => self.des_crypt(cmd),
            (0x00 | 0x80, _) => Err(StatusWord::INS_NOT_SUPPORTED.into()),
            _ => Err(StatusWord::CLA_NOT_SUPPORTED.into()),
        }
    }
}

impl Card for Psam {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn reset(&mut self) {
        self.df = Selected::Mf;
        self.ef = None;
        self.working_key = None;
        self.t0.clear();
    }

    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        let cmd = match Command::parse(apdu) {
            Ok(cmd) => cmd,
            Err(_) => return finish(Err(StatusWord::WRONG_LENGTH.into())),
        };
        if let Some(r) = self.t0.get_response(&cmd) {
            return Some(r.to_bytes());
        }
        let reply = match self.dispatch(&cmd) {
            Ok(r) => Ok(self.t0.wrap(&cmd, r)),
            Err(Fail::Sw(sw)) => {
                self.t0.clear();
                Err(Fail::Sw(sw))
            }
            Err(e) => Err(e),
        };
        finish(reply)
    }
}
