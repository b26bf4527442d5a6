//! A PSAM as key source: DES INIT (`801A`) with the factors below the PSAM's level, then DES
//! CRYPT (`80FA`) to encrypt or MAC, in one transaction on the PSAM's own connection, whose
//! trace shows them beside the card's exchanges. The PSAM answers T=0 style; the transaction
//! fetches the data.

use super::{CardRef, KeyError, KeySource};
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::commands::{self, Apdu};
use sscard_core::profile::psam::{factor_count_for, PsamInfo};
use sscard_core::profile::Kid;
use sscard_core::status::StatusWord;
use sscard_transport::{Connection, Transaction, TransportError};

/// A PSAM in a reader.
pub struct PsamKeys {
    conn: Connection,
    info: PsamInfo,
    terminal: String,
}

fn check(command: &'static str, sw: StatusWord) -> Result<(), KeyError> {
    if sw.is_success() {
        Ok(())
    } else {
        Err(KeyError::Psam { command, sw })
    }
}

fn send(tx: &mut Transaction<'_>, apdu: &Apdu) -> Result<Vec<u8>, KeyError> {
    let r = tx.send(apdu)?;
    check(apdu.name, r.sw)?;
    Ok(r.data)
}

impl PsamKeys {
    /// Selects the security application (DF01) and reads EF15 and EF16.
    pub fn open(mut conn: Connection) -> Result<Self, KeyError> {
        let mut tx = conn.transaction()?;
        send(&mut tx, &commands::select_df01())?;
        let ef15 = send(&mut tx, &commands::psam_read_ef15())?;
        let ef16 = send(&mut tx, &commands::psam_read_ef16())?;
        drop(tx);
        Ok(Self {
            info: PsamInfo::parse(&ef15)?,
            terminal: to_hex(&ef16),
            conn,
        })
    }

    pub fn info(&self) -> &PsamInfo {
        &self.info
    }

    /// APDUs sent to the PSAM so far.
    pub fn apdu_count(&self) -> u64 {
        self.conn.apdu_count()
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

    /// DES INIT and DES CRYPT (with its GET RESPONSE) in one transaction: another process
    /// sharing the PSAM cannot slip its own DES INIT between them and change the working key.
    /// A PSAM reset since the last operation (another process, a test runner's warm reset) has
    /// lost its DF01 selection: the transaction says so and DF01 is selected first. If the PSAM
    /// is reset in the middle, the pair changed nothing on it and runs once more.
    fn init_and_crypt(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        key_id: Kid,
        crypt: Apdu,
    ) -> Result<Vec<u8>, KeyError> {
        self.check_alg(alg)?;
        let all = card.national_factors()?;
        let n = factor_count_for(self.info.level, key_id);
        let factors = all[3 - n..].concat();
        let level = self.info.level;
        let mut first = true;
        loop {
            let mut tx = self.conn.transaction()?;
            let outcome = Self::init_and_crypt_in(&mut tx, level, key_id, &factors, &crypt);
            match outcome {
                Err(KeyError::PsamTransport(TransportError::CardReset))
                    if first && !tx.changed_card() =>
                {
                    first = false;
                }
                r => return r,
            }
        }
    }

    fn init_and_crypt_in(
        tx: &mut Transaction<'_>,
        level: u8,
        key_id: Kid,
        factors: &[u8],
        crypt: &Apdu,
    ) -> Result<Vec<u8>, KeyError> {
        if tx.was_reset() {
            send(tx, &commands::select_df01())?;
        }
        let r = tx.send(&commands::des_init(key_id, factors))?;
        if r.sw == StatusWord::REF_DATA_NOT_FOUND && !key_id.is_national() && level < 2 {
            // PROFILE section 5: local keys have a city master and only the card level.
            return Err(KeyError::LevelTooLow { kid: key_id, level });
        }
        if r.sw == StatusWord::REF_DATA_NOT_FOUND {
            return Err(KeyError::PsamMissingKey { kid: key_id });
        }
        check("DES INIT", r.sw)?;
        send(tx, crypt)
    }
}

impl KeySource for PsamKeys {
    fn describe(&self) -> String {
        format!(
            "PSAM {} in {} (level {}, region {})",
            self.info.serial,
            self.conn.reader(),
            self.info.level,
            self.info.region
        )
    }
    fn algorithm(&self) -> Option<Algorithm> {
        Algorithm::from_id(self.info.algorithm_id).ok()
    }
    fn terminal_number(&mut self) -> Result<Option<String>, KeyError> {
        Ok(Some(self.terminal.clone()))
    }
    fn cryptogram(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        key_id: Kid,
        random: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let mut block = random.to_vec();
        block.resize(alg.block_size(), 0);
        self.init_and_crypt(alg, card, key_id, commands::des_crypt_encrypt(block))
    }
    fn mac(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        key_id: Kid,
        challenge: &[u8],
        message: &[u8],
    ) -> Result<[u8; 4], KeyError> {
        let mut iv = challenge.to_vec();
        iv.resize(alg.block_size(), 0);
        let mac = self.init_and_crypt(alg, card, key_id, commands::des_crypt_mac(&iv, message))?;
        mac.get(..4)
            .and_then(|m| m.try_into().ok())
            .ok_or(KeyError::PsamShortMac { len: mac.len() })
    }
}
