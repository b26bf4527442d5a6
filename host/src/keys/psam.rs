//! A PSAM as key source: DES INIT (`801A`) with the factors below the PSAM's level, then DES
//! CRYPT (`80FA`) to encrypt or MAC. The PSAM answers T=0 style; the channel fetches data.

use super::{CardRef, KeyError, KeySource};
use crate::channel::{Channel, ChannelError};
use crate::transport::{Transport, TransportError};
use sscard_core::apdu::Command;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::{fid, kid};
use sscard_core::status::StatusWord;

/// What EF15 says about a PSAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsamInfo {
    pub serial: String,
    pub algorithm_id: u8,
    pub region: String,
    /// `0` national, `1` province, `2` city.
    pub level: u8,
}

/// A PSAM in a reader.
pub struct PsamKeys<T: Transport> {
    transport: T,
    info: PsamInfo,
    terminal: Option<String>,
    apdus: u64,
}

fn check(command: &'static str, sw: StatusWord) -> Result<(), KeyError> {
    if sw.is_success() {
        Ok(())
    } else {
        Err(KeyError::Psam { command, sw })
    }
}

fn select_security_application(ch: &mut Channel<'_>) -> Result<(), KeyError> {
    let r = ch.transmit(&Command::new(0, 0xA4, 0, 0).with_data(fid::DF01.to_be_bytes()))?;
    check("SELECT DF01", r.sw)
}

/// Whether another application reset the PSAM under us (its DF01 selection is gone).
fn was_reset(e: &KeyError) -> bool {
    matches!(
        e,
        KeyError::PsamChannel(ChannelError::Transport(TransportError::CardReset))
    )
}

impl<T: Transport> PsamKeys<T> {
    /// Selects the security application (DF01) and reads EF15 and EF16.
    pub fn open(mut transport: T) -> Result<Self, KeyError> {
        let mut ch = Channel::new(&mut transport);
        select_security_application(&mut ch)?;
        let ef15 = ch.transmit(&Command::new(0, 0xB0, 0x95, 0).with_le(24))?;
        check("READ BINARY EF15", ef15.sw)?;
        let ef16 = ch.transmit(&Command::new(0, 0xB0, 0x96, 0).with_le(6))?;
        check("READ BINARY EF16", ef16.sw)?;
        let apdus = ch.apdu_count();
        drop(ch);
        let d = &ef15.data;
        if d.len() < 24 {
            return Err(KeyError::BadPsamInfo(format!(
                "{} bytes, expected 24",
                d.len()
            )));
        }
        let info = PsamInfo {
            serial: to_hex(&d[..10]),
            algorithm_id: d[11],
            region: to_hex(&d[12..15]),
            level: d[15],
        };
        Ok(Self {
            transport,
            info,
            terminal: Some(to_hex(&ef16.data)),
            apdus,
        })
    }

    pub fn info(&self) -> &PsamInfo {
        &self.info
    }

    /// APDUs sent to the PSAM so far.
    pub fn apdu_count(&self) -> u64 {
        self.apdus
    }

    fn factors(&self, card: &CardRef, key_id: u8) -> Result<Vec<u8>, KeyError> {
        let all = card.national_factors()?;
        let n = if kid::is_national(key_id) {
            3usize.saturating_sub(self.info.level as usize).max(1)
        } else {
            1
        };
        Ok(all[3 - n..].concat())
    }

    fn check_alg(&self, alg: Algorithm) -> Result<(), KeyError> {
        if self.info.algorithm_id != alg.id() {
            let psam = Algorithm::from_id(self.info.algorithm_id)
                .map(|a| a.name())
                .unwrap_or("an unsupported algorithm");
            return Err(KeyError::AlgorithmMismatch {
                psam,
                card: alg.name(),
            });
        }
        Ok(())
    }

    /// DES INIT then DES CRYPT. A PSAM shared with other applications may be reset between
    /// two operations (a terminal's other process, a test runner's warm reset): the pair holds
    /// no state worth keeping, so the source selects DF01 again and repeats it once.
    fn init_and_crypt(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        key_id: u8,
        p1: u8,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, KeyError> {
        self.check_alg(alg)?;
        let factors = self.factors(card, key_id)?;
        match self.init_and_crypt_once(key_id, p1, &factors, &data) {
            Err(e) if was_reset(&e) => {
                let mut ch = Channel::new(&mut self.transport);
                select_security_application(&mut ch)?;
                let selected = ch.apdu_count();
                drop(ch);
                self.apdus += selected;
                self.init_and_crypt_once(key_id, p1, &factors, &data)
            }
            r => r,
        }
    }

    /// DES INIT, DES CRYPT and its GET RESPONSE inside one PC/SC transaction: another process
    /// sharing the PSAM cannot slip its own DES INIT between them and change the working key.
    fn init_and_crypt_once(
        &mut self,
        key_id: u8,
        p1: u8,
        factors: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let level = self.info.level;
        let mut outcome = None;
        let ended = self.transport.with_transaction(&mut |t| {
            let r = Self::init_and_crypt_in(t, level, key_id, p1, factors, data);
            // A transport error ends the transaction (and a reset reconnects); others are ours.
            match r {
                Err(KeyError::PsamChannel(ChannelError::Transport(e))) => Err(e),
                r => {
                    outcome = Some(r);
                    Ok(())
                }
            }
        });
        match (ended, outcome) {
            (Err(e), _) => Err(KeyError::PsamChannel(ChannelError::Transport(e))),
            (Ok(()), Some(Ok((out, apdus)))) => {
                self.apdus += apdus;
                Ok(out)
            }
            (Ok(()), Some(Err(e))) => Err(e),
            (Ok(()), None) => Err(KeyError::Unsupported(
                "the PSAM's transport ended a transaction without running it".into(),
            )),
        }
    }

    fn init_and_crypt_in(
        transport: &mut dyn Transport,
        level: u8,
        key_id: u8,
        p1: u8,
        factors: &[u8],
        data: &[u8],
    ) -> Result<(Vec<u8>, u64), KeyError> {
        let mut ch = Channel::new(transport);
        let r = ch.transmit(&Command::new(0x80, 0x1A, key_id, 0x01).with_data(factors.to_vec()))?;
        if r.sw == StatusWord::REF_DATA_NOT_FOUND && !kid::is_national(key_id) && level < 2 {
            // PROFILE section 5: local keys have a city master and only the card level.
            return Err(KeyError::LevelTooLow {
                kid: key_id,
                name: kid::name(key_id),
                level,
            });
        }
        if r.sw == StatusWord::REF_DATA_NOT_FOUND {
            return Err(KeyError::PsamMissingKey {
                kid: key_id,
                name: kid::name(key_id),
            });
        }
        check("DES INIT", r.sw)?;
        let r = ch.transmit_marked(
            &Command::new(0x80, 0xFA, p1, 0x00).with_data(data.to_vec()),
            crate::trace::Secrecy::RESPONSE_DATA,
        )?;
        check("DES CRYPT", r.sw)?;
        Ok((r.data, ch.apdu_count()))
    }
}

impl<T: Transport> KeySource for PsamKeys<T> {
    fn describe(&self) -> String {
        format!(
            "PSAM {} in {} (level {}, region {})",
            self.info.serial,
            self.transport.name(),
            self.info.level,
            self.info.region
        )
    }
    fn algorithm(&self) -> Option<Algorithm> {
        Algorithm::from_id(self.info.algorithm_id).ok()
    }
    fn terminal_number(&mut self) -> Result<Option<String>, KeyError> {
        Ok(self.terminal.clone())
    }
    fn cryptogram(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        key_id: u8,
        random: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let mut block = random.to_vec();
        block.resize(alg.block_size(), 0);
        self.init_and_crypt(alg, card, key_id, 0x00, block)
    }
    fn mac(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        key_id: u8,
        challenge: &[u8],
        message: &[u8],
    ) -> Result<[u8; 4], KeyError> {
        let mut data = challenge.to_vec();
        data.resize(alg.block_size(), 0);
        data.extend_from_slice(message);
        let mac = self.init_and_crypt(alg, card, key_id, 0x05, data)?;
        mac.get(..4).and_then(|m| m.try_into().ok()).ok_or_else(|| {
            KeyError::BadPsamInfo(format!("DES CRYPT MAC returned {} bytes", mac.len()))
        })
    }
}
