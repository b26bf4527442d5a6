//! The social security card session: the flows of PROFILE section 7 over any transport and key
//! source, with the fewest APDUs. A session borrows a [`Transaction`]: no other application's
//! APDU comes between its own.

mod error;
mod info;
mod pin;

pub use error::{expect_ok, SscError};
pub use info::{CardIdentification, DeviceNumber, HolderInfo};
pub use pin::Pin;

use crate::keys::{CardRef, KeySource};
use rand::RngCore;
use serde::Serialize;
use sscard_core::apdu::Response;
use sscard_core::atr::Atr;
use sscard_core::crypto::{ct_eq, Algorithm};
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::commands::{self, Apdu, LineProtected};
use sscard_core::profile::files::{ef05, ef06, Access, FileDef};
use sscard_core::profile::{life_cycle, Kid};
use sscard_core::status::StatusWord;
use sscard_core::tlv::{Fci, Record};
use sscard_transport::{Connection, Transaction};

/// What a successful VERIFY found: a closed set (callers map each to a return code), so not
/// `#[non_exhaustive]`.
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
    /// The whole answer to reset, hex.
    pub atr: String,
    /// The ATR's historical bytes, hex: what the unified line carries (PROFILE section 7).
    pub historical_bytes: String,
    pub algorithm: &'static str,
    /// The PSAM's EF16, when the key source is a PSAM.
    pub terminal_number: String,
    /// The reader's serial number, else the configured device number, else empty.
    pub terminal_device_number: String,
    /// APDUs this session sent to the card.
    pub apdus: u64,
}

impl BasicInfo {
    /// The unified interface's output: each field followed by `|` (PROFILE section 7,
    /// version 3: the ATR's historical bytes, the reader's serial number as the terminal device
    /// number).
    pub fn unified_line(&self) -> String {
        [
            self.card.region.as_str(),
            &self.holder.ssn,
            &self.card.card_number,
            &to_hex(&self.card.card_id),
            &self.holder.name,
            &self.historical_bytes,
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

/// What a file holds: records or bytes, the two structures of the profile (a closed set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileContent {
    Records(Vec<Record>),
    Binary(Vec<u8>),
}

/// Whether the card on `conn` has the SSSE application: one SELECT (no FCI) in a transaction of
/// its own. Any failure — no card, another card, a transport error — is "no". How the CLI and
/// the unified library find the card's reader among several.
pub fn has_ssse(conn: &mut Connection) -> bool {
    conn.transaction()
        .and_then(|mut tx| tx.send(&commands::select_ssse_no_fci()))
        .is_ok_and(|r| r.is_success())
}

/// An open SSSE application on one card, over a borrowed transaction.
pub struct Session<'a, 'c> {
    tx: &'a mut Transaction<'c>,
    keys: &'a mut dyn KeySource,
    algorithm: Algorithm,
    issued: bool,
    card: Option<CardIdentification>,
    /// Whether the card answered "P1 to last" READ RECORDS; learnt once.
    multi_read: bool,
    /// The transaction's APDU count when the session opened.
    start: u64,
    /// The terminal device number to report when the reader has no serial number.
    device_number: Option<DeviceNumber>,
}

impl<'a, 'c> Session<'a, 'c> {
    /// Selects SSSE; the FCI gives the algorithm and life cycle.
    pub fn open(
        tx: &'a mut Transaction<'c>,
        keys: &'a mut dyn KeySource,
    ) -> Result<Self, SscError> {
        let start = tx.apdu_count();
        let r = tx.send(&commands::select_ssse())?;
        if !r.sw.is_success() {
            return Err(SscError::WrongCard { sw: r.sw });
        }
        let fci = Fci::parse(&r.data).map_err(SscError::BadFci)?;
        let algorithm = Algorithm::from_id(fci.algorithm_id)
            .ok()
            .filter(|a| *a != Algorithm::Aes128)
            .ok_or(SscError::AlgorithmNotSupported {
                id: fci.algorithm_id,
            })?;
        Ok(Self {
            tx,
            keys,
            algorithm,
            issued: fci.life_cycle == life_cycle::ISSUED,
            card: None,
            multi_read: true,
            start,
            device_number: None,
        })
    }

    /// The terminal device number read basic info reports when the reader has no serial
    /// number of its own (PROFILE section 7: the reader's serial number, else the configured
    /// device number, else empty).
    pub fn set_device_number(&mut self, number: Option<DeviceNumber>) {
        self.device_number = number;
    }

    /// Records that the card answered END PERSONALISATION with success: its life cycle is
    /// ISSUED from now on (a station's acceptance test then reads it as a terminal would).
    pub fn personalisation_ended(&mut self) {
        self.issued = true;
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    pub fn is_issued(&self) -> bool {
        self.issued
    }
    /// APDUs this session sent to the card.
    pub fn apdu_count(&self) -> u64 {
        self.tx.apdu_count() - self.start
    }
    /// The transaction the session runs in.
    pub fn transaction(&mut self) -> &mut Transaction<'c> {
        self.tx
    }
    pub fn key_source(&mut self) -> &mut dyn KeySource {
        self.keys
    }

    /// A session on an application selected in an earlier transaction on the same
    /// connection (the two-step flow's second call): nothing is sent, so a challenge the card
    /// gave before is still pending for the first command. A card reset since then has lost
    /// the selection, the security status and the challenge: refused.
    pub(crate) fn resumed(
        tx: &'a mut Transaction<'c>,
        keys: &'a mut dyn KeySource,
        algorithm: Algorithm,
        card: CardIdentification,
    ) -> Result<Self, SscError> {
        if tx.was_reset() {
            return Err(sscard_transport::TransportError::CardReset.into());
        }
        let start = tx.apdu_count();
        Ok(Self {
            tx,
            keys,
            algorithm,
            issued: true,
            card: Some(card),
            multi_read: true,
            start,
            device_number: None,
        })
    }

    /// Sends a command and expects `9000`.
    pub(crate) fn send(&mut self, apdu: &Apdu) -> Result<Response, SscError> {
        let r = self.tx.send(apdu)?;
        expect_ok(apdu.name, r.sw)?;
        Ok(r)
    }

    fn records_of(file: &'static FileDef, data: &[u8]) -> Result<Vec<Record>, SscError> {
        Record::parse_all(data).map_err(|source| SscError::Records {
            file: file.name,
            source,
        })
    }

    /// Reads every record of a record EF: one "P1 to last" READ RECORDS when the card supports
    /// it, record by record when it answers `6A86`/`6A81`.
    pub fn read_records(&mut self, file: &'static FileDef) -> Result<Vec<Record>, SscError> {
        if self.multi_read {
            let r = self.tx.send(&commands::read_records_from(file, 1))?;
            match r.sw {
                StatusWord::OK => return Self::records_of(file, &r.data),
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
            let r = self.tx.send(&commands::read_record(file, n))?;
            match r.sw {
                StatusWord::OK => {
                    out.push(Record::parse(&r.data).map_err(|source| SscError::Records {
                        file: file.name,
                        source,
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
    pub fn read_record(&mut self, file: &'static FileDef, number: u8) -> Result<Record, SscError> {
        let r = self.send(&commands::read_record(file, number))?;
        Record::parse(&r.data).map_err(|source| SscError::Records {
            file: file.name,
            source,
        })
    }

    /// Reads a transparent file from `offset`.
    pub fn read_binary(
        &mut self,
        file: &'static FileDef,
        offset: u8,
        len: usize,
    ) -> Result<Vec<u8>, SscError> {
        Ok(self.send(&commands::read_binary(file, offset, len))?.data)
    }

    /// Opens `file` for reading as the file table says (external authentication through the
    /// key source where a key opens it) and reads it whole, or one record.
    pub fn read_file(
        &mut self,
        file: &'static FileDef,
        record: Option<u8>,
    ) -> Result<FileContent, SscError> {
        self.select_df_of(file)?;
        match file.read_access(self.algorithm) {
            Access::Always => {}
            Access::ExtAuth(k) | Access::PinOrExtAuth(k) => self.external_authenticate(k)?,
            _ => {}
        }
        if file.is_binary() {
            return Ok(FileContent::Binary(self.read_binary(file, 0, 256)?));
        }
        Ok(FileContent::Records(match record {
            Some(n) => vec![self.read_record(file, n)?],
            None => self.read_records(file)?,
        }))
    }

    /// Reads EF05 and remembers the card identification code.
    pub fn read_identification(&mut self) -> Result<CardIdentification, SscError> {
        let records = self.read_records(ef05())?;
        let id = CardIdentification::from_records(&records)?;
        self.card = Some(id.clone());
        Ok(id)
    }

    /// The card identification read so far (by [`Session::read_identification`]).
    pub fn identification(&self) -> Option<&CardIdentification> {
        self.card.as_ref()
    }

    pub(crate) fn card_ref(&mut self) -> Result<CardRef, SscError> {
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
        let r = self.send(&commands::internal_authenticate(Kid::Irk, &random))?;
        let expected = self
            .keys
            .cryptogram(self.algorithm, &card, Kid::Irk, &random)?;
        if !ct_eq(&expected, &r.data) {
            return Err(SscError::NotGenuine);
        }
        Ok(())
    }

    /// External authentication with `key` (RKSSSE for EF06/EF07, EAK_L in DF01, TK blank).
    pub fn external_authenticate(&mut self, key: Kid) -> Result<(), SscError> {
        let card = self.card_ref()?;
        let challenge = self.send(&commands::get_challenge(8))?.data;
        let cryptogram = self
            .keys
            .cryptogram(self.algorithm, &card, key, &challenge)?;
        self.send(&commands::external_authenticate(key, cryptogram))?;
        Ok(())
    }

    /// Reads EF06 (after RKSSSE where the card needs it).
    pub fn read_holder(&mut self) -> Result<HolderInfo, SscError> {
        if let Access::ExtAuth(k) = ef06().read_access(self.algorithm) {
            self.external_authenticate(k)?;
        }
        HolderInfo::from_records(&self.read_records(ef06())?)
    }

    /// Read basic info (PROFILE section 7): EF05, internal authentication, EF06.
    pub fn read_basic_info(&mut self) -> Result<BasicInfo, SscError> {
        // A card still in personalisation holds zero-filled records: no field of it is
        // holder data, so none is reported.
        if !self.issued {
            return Err(SscError::NotIssued);
        }
        // The line carries the historical bytes: an ATR they cannot be found in is refused
        // before any APDU of the flow.
        let historical_bytes = self.historical_bytes()?;
        self.check_key_algorithm()?;
        let card = self.read_identification()?;
        self.internal_authenticate()?;
        let holder = self.read_holder()?;
        self.basic_info(card, holder, historical_bytes)
    }

    /// The card ATR's historical bytes, hex (refused when the ATR is malformed).
    pub(crate) fn historical_bytes(&self) -> Result<String, SscError> {
        Ok(to_hex(
            &Atr::historical_bytes(self.tx.atr()).map_err(SscError::Atr)?,
        ))
    }

    /// A key source that serves one algorithm (a PSAM) must serve the card's (-2202).
    pub(crate) fn check_key_algorithm(&self) -> Result<(), SscError> {
        if let Some(alg) = self.keys.algorithm() {
            if alg != self.algorithm {
                return Err(crate::keys::KeyError::AlgorithmMismatch {
                    psam: alg.name(),
                    card: self.algorithm.name(),
                }
                .into());
            }
        }
        Ok(())
    }

    /// Basic info from what the flow read: the terminal number from the key source, the
    /// device number from the reader or the configuration.
    pub(crate) fn basic_info(
        &mut self,
        card: CardIdentification,
        holder: HolderInfo,
        historical_bytes: String,
    ) -> Result<BasicInfo, SscError> {
        let terminal_number = self.keys.terminal_number()?.unwrap_or_default();
        let terminal_device_number = match (self.tx.reader_serial(), &self.device_number) {
            (Some(serial), _) => serial.to_string(),
            (None, Some(configured)) => configured.as_str().to_string(),
            (None, None) => String::new(),
        };
        Ok(BasicInfo {
            card,
            holder,
            atr: to_hex(self.tx.atr()),
            historical_bytes,
            algorithm: self.algorithm.name(),
            terminal_number,
            terminal_device_number,
            apdus: self.apdu_count(),
        })
    }

    /// GET CHALLENGE 4 → MAC from the key source under `key` → the command with its MAC.
    pub fn send_protected(&mut self, command: LineProtected, key: Kid) -> Result<(), SscError> {
        // Refused before the card is touched when the data and the MAC do not fit.
        let message = command.mac_input()?;
        let card = self.card_ref()?;
        let challenge = self.send(&commands::get_challenge(4))?.data;
        let mac = self
            .keys
            .mac(self.algorithm, &card, key, &challenge, &message)?;
        self.send(&command.with_mac(mac)?)?;
        Ok(())
    }

    /// UPDATE RECORD with line protection, under the file's update key (UK_N for national
    /// files, UK_L in DF01).
    pub fn update_record(
        &mut self,
        file: &'static FileDef,
        number: u8,
        record: &Record,
    ) -> Result<(), SscError> {
        self.select_df_of(file)?;
        self.send_protected(
            commands::update_record(file, number, record.to_bytes()),
            file.update,
        )
    }

    /// UPDATE BINARY with line protection under the file's update key.
    pub fn update_binary(
        &mut self,
        file: &'static FileDef,
        offset: u8,
        data: &[u8],
    ) -> Result<(), SscError> {
        self.select_df_of(file)?;
        self.send_protected(
            commands::update_binary(file, offset, data.to_vec()),
            file.update,
        )
    }

    /// Selects DF01, the local extension (security status of SSSE is lost).
    pub fn select_local(&mut self) -> Result<(), SscError> {
        self.card_ref()?;
        self.send(&commands::select_df01())?;
        Ok(())
    }

    /// Selects SSSE again, without FCI (security status of DF01 is lost).
    pub fn select_application(&mut self) -> Result<(), SscError> {
        self.send(&commands::select_ssse_no_fci())?;
        Ok(())
    }

    /// Opens DF01 for reading with EAK_L.
    pub fn open_local(&mut self) -> Result<(), SscError> {
        self.select_local()?;
        self.external_authenticate(Kid::EakL)
    }

    fn select_df_of(&mut self, file: &'static FileDef) -> Result<(), SscError> {
        if file.is_local() {
            self.select_local()?;
        }
        Ok(())
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
        let r = self.tx.send(&commands::verify(&pin.to_bcd()))?;
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
        let r = self
            .tx
            .send(&commands::change_pin(&old.to_bcd(), &new.to_bcd()))?;
        Self::pin_sw("CHANGE PIN", r.sw)
    }

    /// RELOAD PIN (agency): sets a new PIN under RPK and restores the try counter.
    pub fn reload_pin(&mut self, new: &Pin) -> Result<(), SscError> {
        new.check_new()?;
        self.send_protected(commands::reload_pin(&new.to_bcd()), Kid::Rpk)
    }

    /// UNBLOCK PIN: restores the try counter under UPK; the PIN is unchanged.
    pub fn unblock_pin(&mut self) -> Result<(), SscError> {
        self.send_protected(commands::unblock_pin(), Kid::Upk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SoftKeys;
    use sscard_core::crypto::Algorithm;
    use sscard_model::card::shared;
    use sscard_transport::backend::{CardBackend, CardTransaction};
    use sscard_transport::{Connection, InProcess, TransportError};

    /// The model card in a reader that reports a serial number (or none).
    struct Reader(InProcess, Option<&'static str>);

    impl CardBackend for Reader {
        fn reader(&self) -> &str {
            self.0.reader()
        }
        fn atr(&self) -> Vec<u8> {
            self.0.atr()
        }
        fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
            self.0.transaction()
        }
        fn reader_serial(&self) -> Option<String> {
            self.1.map(String::from)
        }
    }

    fn line(serial: Option<&'static str>, configured: Option<&str>) -> String {
        let (ssc, _) = sscard_model::test_pair(Algorithm::Sm4);
        let mut conn = Connection::new(Reader(InProcess::new(shared(ssc), "model"), serial));
        let mut keys = SoftKeys::test_set();
        let mut tx = conn.transaction().unwrap();
        let mut s = Session::open(&mut tx, &mut keys).unwrap();
        s.set_device_number(configured.map(|c| c.parse().unwrap()));
        let info = s.read_basic_info().unwrap();
        assert_eq!(info.atr, "3B880153534341524430319C");
        assert_eq!(info.historical_bytes, "5353434152443031");
        info.unified_line()
    }

    #[test]
    fn the_unified_line_has_the_historical_bytes_and_the_readers_serial_number() {
        const FIELDS: &str = "110100|11010519491231002X|A12345674|110100D15600000599110145000000A1|张三|5353434152443031|3.00|20240101|20340101||";
        assert_eq!(line(None, None), format!("{FIELDS}|"));
        assert_eq!(line(None, Some("T-0042")), format!("{FIELDS}T-0042|"));
        // The reader's own serial number wins over the configured one.
        assert_eq!(
            line(Some("0123456789"), Some("T-0042")),
            format!("{FIELDS}0123456789|")
        );
    }

    /// A card whose ATR ends early: no historical bytes to report, and no APDU spent on it.
    struct ShortAtr(Box<dyn sscard_core::card::Card>);

    impl sscard_core::card::Card for ShortAtr {
        fn atr(&self) -> Vec<u8> {
            vec![0x3B, 0x88, 0x01, 0x53]
        }
        fn reset(&mut self) {
            self.0.reset()
        }
        fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
            self.0.transmit(apdu)
        }
    }

    #[test]
    fn an_atr_without_its_historical_bytes_is_refused() {
        let (ssc, _) = sscard_model::test_pair(Algorithm::Tdes);
        let mut conn = Connection::new(InProcess::new(shared(ShortAtr(Box::new(ssc))), "m"));
        let mut keys = SoftKeys::test_set();
        let mut tx = conn.transaction().unwrap();
        let mut s = Session::open(&mut tx, &mut keys).unwrap();
        let e = s.read_basic_info().unwrap_err();
        assert_eq!(
            e,
            SscError::Atr(sscard_core::atr::AtrError::Truncated {
                missing: 7,
                offset: 4
            })
        );
        assert_eq!(s.apdu_count(), 1, "SELECT only");
        use sscard_core::classify::Classified;
        assert_eq!(e.return_code(), -1);
    }
}
