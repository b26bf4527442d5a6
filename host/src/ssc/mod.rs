//! The social security card session: the flows of PROFILE section 7 over any transport and
//! key source, with the fewest APDUs.

mod error;
mod files;
mod info;
mod pin;

pub use error::{expect_ok, SscError};
pub use files::EfRef;
pub use info::{CardIdentification, HolderInfo};
pub use pin::Pin;

use crate::channel::Channel;
use crate::keys::{CardRef, KeySource};
use crate::trace::Secrecy;
use rand::RngCore;
use serde::Serialize;
use sscard_core::apdu::{Command, Response};
use sscard_core::crypto::{ct_eq, Algorithm};
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::{kid, life_cycle, SSSE_AID};
use sscard_core::status::StatusWord;
use sscard_core::tlv::{Fci, Record};

/// What VERIFY found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PinStatus {
    Verified,
    /// The PIN is the initial 123456: it must be changed before transactions (-35).
    InitialMustChange,
}

/// The result of "read basic info" (`iReadCardBas`).
#[derive(Clone, Debug, Serialize)]
pub struct BasicInfo {
    pub card: CardIdentification,
    pub holder: HolderInfo,
    pub atr: String,
    pub algorithm: &'static str,
    pub terminal_number: String,
    pub terminal_device_number: String,
    pub apdus: u64,
}

impl BasicInfo {
    /// The unified interface's output: each field followed by `|` (PROFILE section 7).
    pub fn unified_line(&self) -> String {
        [
            self.card.region.as_str(),
            &self.holder.ssn,
            &self.card.card_number,
            &to_hex(&self.card.card_id),
            &self.holder.name,
            &self.atr,
            &self.card.spec_version,
            &self.card.issue_date.replace('-', ""),
            &self.card.expiry_date.replace('-', ""),
            &self.terminal_number,
            &self.terminal_device_number,
        ]
        .iter()
        .map(|f| format!("{f}|"))
        .collect()
    }
}

/// An open SSSE application on one card.
pub struct Session<'t, 'k> {
    ch: Channel<'t>,
    keys: &'k mut dyn KeySource,
    algorithm: Algorithm,
    issued: bool,
    card: Option<CardIdentification>,
    /// Whether the card answered "P1 to last" READ RECORDS; learnt once.
    multi_read: bool,
}

impl<'t, 'k> Session<'t, 'k> {
    /// Selects SSSE; the FCI gives the algorithm and life cycle.
    pub fn open(mut ch: Channel<'t>, keys: &'k mut dyn KeySource) -> Result<Self, SscError> {
        let r = ch.transmit(
            &Command::new(0x00, 0xA4, 0x04, 0x00)
                .with_data(SSSE_AID)
                .with_le(256),
        )?;
        if !r.sw.is_success() {
            // 6A82 on a card without the application; a PSAM or another card may answer
            // 6A86, 6D00, 6E00 … to an SSSE SELECT: all mean "not a social security card".
            return Err(SscError::WrongCard(format!(
                "SELECT of the SSSE application answered {} ({})",
                r.sw,
                r.sw.meaning()
            )));
        }
        let fci = Fci::parse(&r.data).map_err(|e| SscError::Malformed {
            what: "the SSSE FCI",
            detail: e.to_string(),
        })?;
        let algorithm = Algorithm::from_id(fci.algorithm_id)
            .ok()
            .filter(|a| *a != Algorithm::Aes128)
            .ok_or(SscError::AlgorithmNotSupported {
                id: fci.algorithm_id,
            })?;
        Ok(Self {
            ch,
            keys,
            algorithm,
            issued: fci.life_cycle == life_cycle::ISSUED,
            card: None,
            multi_read: true,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    pub fn is_issued(&self) -> bool {
        self.issued
    }
    pub fn apdu_count(&self) -> u64 {
        self.ch.apdu_count()
    }
    pub fn channel(&mut self) -> &mut Channel<'t> {
        &mut self.ch
    }
    pub fn key_source(&mut self) -> &mut dyn KeySource {
        self.keys
    }

    fn transmit(&mut self, command: &'static str, cmd: &Command) -> Result<Response, SscError> {
        let r = self.ch.transmit(cmd)?;
        expect_ok(command, r.sw)?;
        Ok(r)
    }

    /// Reads every record of a record EF: one "P1 to last" READ RECORDS when the card supports
    /// it, record by record when it answers `6A86`/`6A81`.
    pub fn read_records(&mut self, ef: EfRef) -> Result<Vec<Record>, SscError> {
        let sfi = ef.sfi() << 3;
        if self.multi_read {
            let r = self
                .ch
                .transmit(&Command::new(0x00, 0xB2, 0x01, sfi | 0x05).with_le(256))?;
            match r.sw {
                StatusWord::OK => {
                    return Record::parse_all(&r.data).map_err(|e| SscError::Malformed {
                        what: ef.name(),
                        detail: e.to_string(),
                    })
                }
                StatusWord::INCORRECT_P1P2 | StatusWord::FUNC_NOT_SUPPORTED => {
                    self.multi_read = false
                }
                sw => {
                    return Err(SscError::Card {
                        command: "READ RECORDS",
                        sw,
                    })
                }
            }
        }
        let mut out = Vec::new();
        for n in 1..=254u8 {
            let r = self
                .ch
                .transmit(&Command::new(0x00, 0xB2, n, sfi | 0x04).with_le(256))?;
            match r.sw {
                StatusWord::OK => {
                    out.push(Record::parse(&r.data).map_err(|e| SscError::Malformed {
                        what: ef.name(),
                        detail: e.to_string(),
                    })?)
                }
                StatusWord::RECORD_NOT_FOUND if n > 1 => break,
                sw => {
                    return Err(SscError::Card {
                        command: "READ RECORD",
                        sw,
                    })
                }
            }
        }
        Ok(out)
    }

    /// Reads one record by number.
    pub fn read_record(&mut self, ef: EfRef, number: u8) -> Result<Record, SscError> {
        let r = self.transmit(
            "READ RECORD",
            &Command::new(0x00, 0xB2, number, ef.sfi() << 3 | 0x04).with_le(256),
        )?;
        Record::parse(&r.data).map_err(|e| SscError::Malformed {
            what: ef.name(),
            detail: e.to_string(),
        })
    }

    /// Reads EF05 and remembers the card identification code.
    pub fn read_identification(&mut self) -> Result<CardIdentification, SscError> {
        let records = self.read_records(EfRef::Ef05)?;
        let id = CardIdentification::from_records(&records)?;
        self.card = Some(id.clone());
        Ok(id)
    }

    fn card_ref(&mut self) -> Result<CardRef, SscError> {
        if self.card.is_none() {
            self.read_identification()?;
        }
        Ok(CardRef::new(
            self.card.as_ref().expect("read above").card_id,
        ))
    }

    /// Internal authentication: the card proves it holds IRK (-21 when it does not).
    pub fn internal_authenticate(&mut self) -> Result<(), SscError> {
        let card = self.card_ref()?;
        let mut random = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut random);
        let r = self.transmit(
            "INTERNAL AUTHENTICATE",
            &Command::new(0x00, 0x88, 0x00, kid::IRK)
                .with_data(random)
                .with_le(256),
        )?;
        let expected = self
            .keys
            .cryptogram(self.algorithm, &card, kid::IRK, &random)?;
        if !ct_eq(&expected, &r.data) {
            return Err(SscError::NotGenuine);
        }
        Ok(())
    }

    /// External authentication with `key_id` (RKSSSE for EF06/EF07, EAK_L in DF01, TK blank).
    pub fn external_authenticate(&mut self, key_id: u8) -> Result<(), SscError> {
        let card = self.card_ref()?;
        let challenge = self
            .transmit(
                "GET CHALLENGE",
                &Command::new(0x00, 0x84, 0x00, 0x00).with_le(8),
            )?
            .data;
        let cryptogram = self
            .keys
            .cryptogram(self.algorithm, &card, key_id, &challenge)?;
        let cmd = Command::new(0x00, 0x82, 0x00, key_id).with_data(cryptogram);
        let r = self.ch.transmit_marked(&cmd, Secrecy::COMMAND_DATA)?;
        expect_ok("EXTERNAL AUTHENTICATE", r.sw)
    }

    /// Reads EF06 (after RKSSSE on `3.00` cards).
    pub fn read_holder(&mut self) -> Result<HolderInfo, SscError> {
        if self.algorithm == Algorithm::Sm4 {
            self.external_authenticate(kid::RKSSSE)?;
        }
        HolderInfo::from_records(&self.read_records(EfRef::Ef06)?)
    }

    /// Read basic info (PROFILE section 7): EF05, internal authentication, EF06.
    pub fn read_basic_info(&mut self) -> Result<BasicInfo, SscError> {
        // A card still in personalisation holds zero-filled records: no field of it is
        // holder data, so none is reported.
        if !self.issued {
            return Err(SscError::NotIssued);
        }
        if let Some(alg) = self.keys.algorithm() {
            if alg != self.algorithm {
                return Err(crate::keys::KeyError::AlgorithmMismatch {
                    psam: alg.name(),
                    card: self.algorithm.name(),
                }
                .into());
            }
        }
        let card = self.read_identification()?;
        self.internal_authenticate()?;
        let holder = self.read_holder()?;
        let terminal_number = self.keys.terminal_number()?.unwrap_or_default();
        Ok(BasicInfo {
            card,
            holder,
            atr: to_hex(&self.ch.atr()),
            algorithm: self.algorithm.name(),
            terminal_number,
            terminal_device_number: String::new(),
            apdus: self.ch.apdu_count(),
        })
    }

    /// GET CHALLENGE 4 → MAC from the key source → the command with its MAC.
    pub fn send_with_mac(
        &mut self,
        command: &'static str,
        key_id: u8,
        header: [u8; 4],
        data: &[u8],
        secrecy: Secrecy,
    ) -> Result<(), SscError> {
        // Lc counts the MAC: a short APDU carries at most 251 data bytes with it.
        let lc = u8::try_from(data.len() + 4).map_err(|_| {
            SscError::InvalidData(format!(
                "{command}: {} data bytes and a 4-byte MAC do not fit one short APDU (at most 251)",
                data.len()
            ))
        })?;
        let card = self.card_ref()?;
        let challenge = self
            .transmit(
                "GET CHALLENGE",
                &Command::new(0x00, 0x84, 0x00, 0x00).with_le(4),
            )?
            .data;
        let mut message = header.to_vec();
        message.push(lc);
        message.extend_from_slice(data);
        let mac = self
            .keys
            .mac(self.algorithm, &card, key_id, &challenge, &message)?;
        let mut body = data.to_vec();
        body.extend_from_slice(&mac);
        let cmd = Command::new(header[0], header[1], header[2], header[3]).with_data(body);
        let r = self.ch.transmit_marked(&cmd, secrecy)?;
        expect_ok(command, r.sw)
    }

    /// UPDATE RECORD with line protection, under UK_N (national files) or UK_L (DF01).
    pub fn update_record(
        &mut self,
        ef: EfRef,
        number: u8,
        record: &Record,
    ) -> Result<(), SscError> {
        self.select_df_of(ef)?;
        let key = if ef.is_local() { kid::UK_L } else { kid::UK_N };
        self.send_with_mac(
            "UPDATE RECORD",
            key,
            [0x04, 0xDC, number, ef.sfi() << 3 | 0x04],
            &record.to_bytes(),
            Secrecy::PUBLIC,
        )
    }

    /// UPDATE BINARY of DF01/EF02 with line protection under UK_L.
    pub fn update_binary(&mut self, ef: EfRef, offset: u8, data: &[u8]) -> Result<(), SscError> {
        self.select_df_of(ef)?;
        self.send_with_mac(
            "UPDATE BINARY",
            kid::UK_L,
            [0x04, 0xD6, 0x80 | ef.sfi(), offset],
            data,
            Secrecy::PUBLIC,
        )
    }

    /// Selects DF01, the local extension (security status of SSSE is lost).
    pub fn select_local(&mut self) -> Result<(), SscError> {
        self.select_df_of(EfRef::Df01Ef01)
    }

    /// Selects SSSE again, without FCI (security status of DF01 is lost).
    pub fn select_application(&mut self) -> Result<(), SscError> {
        self.transmit(
            "SELECT SSSE",
            &Command::new(0x00, 0xA4, 0x04, 0x00).with_data(SSSE_AID),
        )?;
        Ok(())
    }

    /// Opens DF01 for reading with EAK_L.
    pub fn open_local(&mut self) -> Result<(), SscError> {
        self.select_df_of(EfRef::Df01Ef01)?;
        self.external_authenticate(kid::EAK_L)
    }

    fn select_df_of(&mut self, ef: EfRef) -> Result<(), SscError> {
        if ef.is_local() {
            self.card_ref()?;
            self.transmit(
                "SELECT DF01",
                &Command::new(0x00, 0xA4, 0x00, 0x00).with_data([0xDF, 0x01]),
            )?;
        }
        Ok(())
    }

    /// Reads DF01/EF02 from `offset`.
    pub fn read_binary(&mut self, ef: EfRef, offset: u8, len: usize) -> Result<Vec<u8>, SscError> {
        Ok(self
            .transmit(
                "READ BINARY",
                &Command::new(0x00, 0xB0, 0x80 | ef.sfi(), offset).with_le(len),
            )?
            .data)
    }

    fn pin_sw(command: &'static str, sw: StatusWord) -> Result<(), SscError> {
        if let Some(tries_left) = sw.tries_left() {
            return Err(SscError::WrongPin { tries_left });
        }
        if sw == StatusWord::AUTH_BLOCKED {
            return Err(SscError::PinLocked);
        }
        expect_ok(command, sw)
    }

    /// VERIFY; with the initial PIN the result says it must be changed.
    pub fn verify_pin(&mut self, pin: &Pin) -> Result<PinStatus, SscError> {
        let cmd = Command::new(0x00, 0x20, 0x00, 0x00).with_data(pin.to_bcd().to_vec());
        let r = self.ch.transmit_marked(&cmd, Secrecy::COMMAND_DATA)?;
        Self::pin_sw("VERIFY", r.sw)?;
        Ok(if pin.is_initial() {
            PinStatus::InitialMustChange
        } else {
            PinStatus::Verified
        })
    }

    /// CHANGE PIN, refusing the initial and weak PINs before the card sees them.
    pub fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<(), SscError> {
        new.check_new()?;
        let mut data = old.to_bcd().to_vec();
        data.push(0xFF);
        data.extend_from_slice(&new.to_bcd());
        let r = self.ch.transmit_marked(
            &Command::new(0x80, 0x5E, 0x01, 0x00).with_data(data),
            Secrecy::COMMAND_DATA,
        )?;
        Self::pin_sw("CHANGE PIN", r.sw)
    }

    /// RELOAD PIN (agency): sets a new PIN under RPK and restores the try counter.
    pub fn reload_pin(&mut self, new: &Pin) -> Result<(), SscError> {
        new.check_new()?;
        self.send_with_mac(
            "RELOAD PIN",
            kid::RPK,
            [0x84, 0x5E, 0x00, 0x00],
            &new.to_bcd(),
            Secrecy::COMMAND_DATA,
        )
    }

    /// UNBLOCK PIN: restores the try counter under UPK; the PIN is unchanged.
    pub fn unblock_pin(&mut self) -> Result<(), SscError> {
        self.send_with_mac(
            "UNBLOCK PIN",
            kid::UPK,
            [0x84, 0x24, 0x00, 0x01],
            &[],
            Secrecy::PUBLIC,
        )
    }
}
