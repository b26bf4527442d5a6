//! The PSAM application (PROFILE section 6): EF15/EF16, DF01, DES INIT and DES CRYPT over T=0.

use crate::card::Card;
use crate::image::{Image, Memory};
use crate::memory::PsamMemory;
use crate::reply::{data_with_le, finish, ok, Fail, Reply};
use crate::t0::T0;
use crate::validate::InvalidImage;
use sscard_core::apdu::{Command, Response};
use sscard_core::crypto::{Algorithm, Key};
use sscard_core::profile::{fid, psam};
use sscard_core::status::StatusWord;

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

    fn select(&mut self, cmd: &Command) -> Reply {
        if !matches!(cmd.p1, 0x00 | 0x02) || !matches!(cmd.p2, 0x00 | 0x0C) {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        let [hi, lo] = cmd.data[..] else {
            return Err(StatusWord::WRONG_LENGTH.into());
        };
        match u16::from_be_bytes([hi, lo]) {
            fid::MF if cmd.p1 == 0 => self.df = Selected::Mf,
            // PROFILE section 6 selects the application with P1 00 or 02.
            fid::DF01 => self.df = Selected::Df01,
            id @ (fid::EF15 | fid::EF16) => self.ef = Some(id),
            _ => return Err(StatusWord::FILE_NOT_FOUND.into()),
        }
        if matches!(u16::from_be_bytes([hi, lo]), fid::MF | fid::DF01) {
            self.ef = None;
            self.working_key = None;
        }
        ok()
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
        let bytes = if id == fid::EF15 {
            &self.mem.ef15.0
        } else {
            &self.mem.ef16.0
        };
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
