//! `iReadCard` and `iWriteCard` over a [`Session`]: the items a `pFileAddr` names, read as one
//! output line or written with line protection, after `pCardInfo` is checked against EF05.

use super::card_info::CardInfo;
use super::error::UnifiedError;
use super::file_addr::FileAddr;
use super::values::{value_of, WriteData};
use crate::ssc::{Session, SscError};
use sscard_core::profile::commands;
use sscard_core::profile::files::{Access, FileDef};
use sscard_core::profile::Kid;
use sscard_core::tlv::Record;

/// `iAuthType` *(profile)*: what opens files before `iReadCard` reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    /// 0: no authentication: free files only; a protected file gives the card's status word
    /// (`6982` → −27010).
    None,
    /// 1: internal authentication (the card proves it is genuine), then whatever each file
    /// needs through the key source: RKSSSE for EF07 and for EF06 on `3.00` cards, EAK_L for
    /// DF01.
    Internal,
}

impl TryFrom<i32> for AuthType {
    type Error = UnifiedError;
    /// 0 or 1; anything else −23.
    fn try_from(value: i32) -> Result<Self, UnifiedError> {
        match value {
            0 => Ok(Self::None),
            1 => Ok(Self::Internal),
            value => Err(UnifiedError::AuthType { value }),
        }
    }
}

/// Where the session stands: which DF is selected and which key opened it.
struct Place {
    local: bool,
    opened_by: Option<Kid>,
}

impl Session<'_, '_> {
    /// Selects the DF `file` lies in when another is selected (security status is lost).
    fn enter_df_of(&mut self, place: &mut Place, file: &FileDef) -> Result<(), SscError> {
        if file.is_local() != place.local {
            if file.is_local() {
                self.select_local()?;
            } else {
                self.select_application()?;
            }
            *place = Place {
                local: file.is_local(),
                opened_by: None,
            };
        }
        Ok(())
    }

    /// Reads EF05 and checks that it is the card `card_info` names (−22 otherwise).
    fn check_card(&mut self, card_info: &CardInfo) -> Result<(), SscError> {
        let id = self.read_identification()?;
        card_info.check(&id)
    }

    /// `iReadCard`: the values of the records `addr` names, as one line with `addr`'s layout
    /// (`SSSEEF05|<card id>|<card number>|$…`), the paths as the caller spelt them. With
    /// `card_info`, EF05 is read and compared first (−22 when it is another card). With
    /// [`AuthType::Internal`], internal authentication comes next (−21 when the card is not
    /// genuine), then each file is opened with the key it needs. A file the card refuses gives
    /// the card's status word (−SW). A value written by [`Session::write_items`] reads back as
    /// the same text.
    pub fn read_items(
        &mut self,
        auth: AuthType,
        card_info: Option<&CardInfo>,
        addr: &FileAddr,
    ) -> Result<String, SscError> {
        if let Some(info) = card_info {
            self.check_card(info)?;
        }
        if auth == AuthType::Internal {
            self.check_key_algorithm()?;
            self.internal_authenticate()?;
        }
        let mut place = Place {
            local: false,
            opened_by: None,
        };
        let mut out = String::new();
        for items in addr.files() {
            self.enter_df_of(&mut place, items.file)?;
            if auth == AuthType::Internal {
                if let Access::ExtAuth(k) | Access::PinOrExtAuth(k) =
                    items.file.read_access(self.algorithm())
                {
                    if place.opened_by != Some(k) {
                        self.external_authenticate(k)?;
                        place.opened_by = Some(k);
                    }
                }
            }
            let records = self.read_records(items.file)?;
            out.push_str(&items.path());
            out.push('|');
            for rec in &items.records {
                out.push_str(&value_of(items.file, rec, &records)?);
                out.push('|');
            }
            out.push('$');
        }
        Ok(out)
    }

    /// `iWriteCard`: writes every record of `data` with line protection (GET CHALLENGE, MAC
    /// under the file's update key from the key source, UPDATE RECORD), in the caller's order,
    /// after EF05 is read and compared with `card_info` (−22 when it is another card: nothing
    /// is written).
    pub fn write_items(&mut self, card_info: &CardInfo, data: &WriteData) -> Result<(), SscError> {
        self.check_card(card_info)?;
        let mut place = Place {
            local: false,
            opened_by: None,
        };
        for (file, records) in data.files() {
            self.enter_df_of(&mut place, file)?;
            for (rec, value) in records {
                let tlv = Record::new(rec.tag, value.clone())
                    .map_err(|source| SscError::Records {
                        file: file.name,
                        source,
                    })?
                    .to_bytes();
                self.send_protected(commands::update_record(file, rec.number, tlv), file.update)?;
            }
        }
        Ok(())
    }
}
