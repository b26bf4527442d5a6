//! READ/UPDATE RECORD and READ/UPDATE BINARY with SFI addressing and access rules.

use super::Ssc;
use crate::memory::EfContent;
use crate::reply::{data_with_le, ok, Fail, Reply};
use sscard_core::apdu::Command;
use sscard_core::profile::files;
use sscard_core::profile::{Access, Df, FileDef, Kid};
use sscard_core::status::StatusWord;

impl Ssc {
    /// Resolves SFI addressing (`0` = current EF) and makes the file current.
    fn ef_by_sfi_or_current(&mut self, sfi: u8) -> Result<&'static FileDef, Fail> {
        if sfi == 0 {
            return self.vol.ef.ok_or(Fail::Sw(StatusWord(0x6986)));
        }
        let df = self.vol.df.unwrap_or(Df::Mf);
        let ef = files::by_sfi(df, sfi).ok_or(StatusWord::FILE_NOT_FOUND)?;
        self.vol.ef = Some(ef);
        Ok(ef)
    }

    /// The file's read rule for the card's algorithm; in PERSONALISATION external
    /// authentication with TK opens every file. A blocked PIN or key never counts as verified,
    /// whatever the security status says.
    fn may_read(&self, ef: &FileDef) -> bool {
        let sec = &self.vol.security;
        let live = |k: Kid| self.mem.key(k).is_some_and(|s| !s.blocked()) || !self.revokes();
        let external = |k: Kid| sec.has_external(k) && live(k);
        if !self.issued() && external(Kid::Tk) {
            return true;
        }
        match ef.read_access(self.algorithm()) {
            Access::Always => true,
            Access::ExtAuth(k) => external(k),
            Access::PinOrExtAuth(k) => (sec.pin_verified() && live(Kid::Pin)) || external(k),
            _ => false,
        }
    }

    fn update_key(&self, ef: &FileDef) -> Kid {
        if self.issued() {
            ef.update
        } else {
            Kid::Tk
        }
    }

    fn content(&self, ef: &FileDef) -> &EfContent {
        self.mem
            .files
            .get(ef.name)
            .expect("every EF of the file table is in memory")
    }

    pub(super) fn read_record(&mut self, cmd: &Command) -> Reply {
        let ef = self.ef_by_sfi_or_current(cmd.p2 >> 3)?;
        let EfContent::Records(records) = self.content(ef) else {
            return Err(StatusWord::NOT_RECORD_FILE.into());
        };
        if !self.may_read(ef) {
            return Err(StatusWord::SECURITY_NOT_SATISFIED.into());
        }
        let p1 = cmd.p1 as usize;
        let encode = |r: &crate::memory::RecordSlot| {
            let mut v = vec![r.tag, r.value.0.len() as u8];
            v.extend_from_slice(&r.value.0);
            v
        };
        let data = match cmd.p2 & 0x07 {
            0x04 if (1..=records.len()).contains(&p1) => encode(&records[p1 - 1]),
            0x00 => match records.iter().find(|r| r.tag == cmd.p1) {
                Some(r) => encode(r),
                None => return Err(StatusWord::RECORD_NOT_FOUND.into()),
            },
            0x05 if (1..=records.len()).contains(&p1) => {
                records[p1 - 1..].iter().flat_map(encode).collect()
            }
            0x04 | 0x05 => return Err(StatusWord::RECORD_NOT_FOUND.into()),
            _ => return Err(StatusWord::INCORRECT_P1P2.into()),
        };
        data_with_le(data, cmd.le)
    }

    /// P1/P2 of READ/UPDATE BINARY: SFI form (`80|SFI`, offset P2) or offset form.
    fn binary_target(&mut self, cmd: &Command) -> Result<(&'static FileDef, usize), Fail> {
        let (ef, offset) = if cmd.p1 & 0x80 != 0 {
            if cmd.p1 & 0x60 != 0 {
                return Err(StatusWord::INCORRECT_P1P2.into());
            }
            (self.ef_by_sfi_or_current(cmd.p1 & 0x1F)?, cmd.p2 as usize)
        } else {
            (
                self.ef_by_sfi_or_current(0)?,
                u16::from_be_bytes([cmd.p1, cmd.p2]) as usize,
            )
        };
        if ef.is_binary() {
            Ok((ef, offset))
        } else {
            Err(StatusWord(0x6981).into())
        }
    }

    pub(super) fn read_binary(&mut self, cmd: &Command) -> Reply {
        let (ef, offset) = self.binary_target(cmd)?;
        if !self.may_read(ef) {
            return Err(StatusWord::SECURITY_NOT_SATISFIED.into());
        }
        let EfContent::Binary(bytes) = self.content(ef) else {
            return Err(StatusWord::NOT_RECORD_FILE.into());
        };
        if offset >= bytes.0.len() {
            return Err(StatusWord::WRONG_P1P2.into());
        }
        let end = (offset + cmd.le.unwrap_or(256)).min(bytes.0.len());
        data_with_le(bytes.0[offset..end].to_vec(), cmd.le)
    }

    pub(super) fn update_record(&mut self, cmd: &Command, challenge: Option<&[u8]>) -> Reply {
        if cmd.p2 & 0x07 != 0x04 {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        let ef = self.ef_by_sfi_or_current(cmd.p2 >> 3)?;
        let EfContent::Records(records) = self.content(ef) else {
            return Err(StatusWord::NOT_RECORD_FILE.into());
        };
        let index = cmd.p1 as usize;
        if !(1..=records.len()).contains(&index) {
            return Err(StatusWord::RECORD_NOT_FOUND.into());
        }
        let (tag, len) = (records[index - 1].tag, records[index - 1].value.0.len());
        let tlv = self.check_mac(self.update_key(ef), cmd, challenge)?;
        if tlv.len() != len + 2 || tlv[0] != tag || tlv[1] as usize != len {
            return Err(StatusWord::WRONG_DATA.into());
        }
        if let Some(EfContent::Records(records)) = self.mem.files.get_mut(ef.name) {
            records[index - 1].value.0 = tlv[2..].to_vec();
        }
        self.persist()?;
        ok()
    }

    pub(super) fn update_binary(&mut self, cmd: &Command, challenge: Option<&[u8]>) -> Reply {
        let (ef, offset) = self.binary_target(cmd)?;
        let data = self.check_mac(self.update_key(ef), cmd, challenge)?;
        let Some(EfContent::Binary(bytes)) = self.mem.files.get_mut(ef.name) else {
            return Err(StatusWord::NOT_RECORD_FILE.into());
        };
        if offset + data.len() > bytes.0.len() {
            return Err(StatusWord::NOT_ENOUGH_MEMORY.into());
        }
        bytes.0[offset..offset + data.len()].copy_from_slice(&data);
        self.persist()?;
        ok()
    }
}
