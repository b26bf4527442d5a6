//! A PSAM as key source: DES INIT (`801A`) with the factors below the PSAM's level, then DES
//! CRYPT (`80FA`) to encrypt or MAC, in one transaction on the PSAM's own connection, whose
//! trace shows them beside the card's exchanges. The PSAM answers T=0 style; the transaction
//! fetches the data.

use super::{CardRef, KeyError, KeySource};
use sscard_core::crypto::Algorithm;
use sscard_core::profile::commands::{self, Apdu};
use sscard_core::profile::psam::{factor_count_for, level, parse_terminal_number, PsamInfo};
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
    /// Selects the security application (DF01) and reads EF15 and EF16, refusing a PSAM whose
    /// files break the profile ([`PsamInfo::parse`], [`parse_terminal_number`]): a level above
    /// 2, an algorithm other than 3DES or SM4, a terminal number other than 12 BCD digits.
    pub fn open(mut conn: Connection) -> Result<Self, KeyError> {
        let mut tx = conn.transaction()?;
        send(&mut tx, &commands::select_df01())?;
        let ef15 = send(&mut tx, &commands::psam_read_ef15())?;
        let ef16 = send(&mut tx, &commands::psam_read_ef16())?;
        drop(tx);
        Ok(Self {
            info: PsamInfo::parse(&ef15)?,
            terminal: parse_terminal_number(&ef16)?,
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
        if self.info.algorithm != alg {
            return Err(KeyError::AlgorithmMismatch {
                psam: self.info.algorithm.name(),
                card: alg.name(),
            });
        }
        Ok(())
    }

    /// Whether the PSAM serves `card`'s region (PROFILE section 6, levels: a city PSAM its
    /// city, a province PSAM its province, a national PSAM every card). Checked before DES
    /// INIT: a card of another city is not "not genuine" (-21), it needs another PSAM (-24).
    fn check_region(&self, card: &CardRef) -> Result<(), KeyError> {
        let digits = match self.info.level {
            level::CITY => 6,
            level::PROVINCE => 2,
            _ => return Ok(()),
        };
        let card_region = card.city();
        if card_region.get(..digits) != self.info.region.get(..digits) {
            return Err(KeyError::OtherRegion {
                psam_region: self.info.region.clone(),
                card_region,
                level: self.info.level,
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
        self.check_region(card)?;
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
        Some(self.info.algorithm)
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
        // One short APDU to a T=0 PSAM: Lc = IV block + message at most 255. The message is
        // CLA INS P1 P2 Lc ‖ data (PROFILE section 5), so data up to 250 − block size.
        let max = 255 - iv.len();
        if message.len() > max {
            return Err(KeyError::PsamMessageTooLong {
                len: message.len(),
                max,
                data_max: max - 5,
            });
        }
        let mac = self.init_and_crypt(alg, card, key_id, commands::des_crypt_mac(&iv, message))?;
        mac.get(..4)
            .and_then(|m| m.try_into().ok())
            .ok_or(KeyError::PsamShortMac { len: mac.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard_core::card::{shared, Card};
    use sscard_core::classify::Classified;
    use sscard_core::hexfmt::parse_hex;
    use sscard_core::profile::psam::PsamInfoError;
    use sscard_transport::InProcess;

    /// A PSAM whose EF15 and EF16 say what the test wants.
    struct Files {
        ef15: Vec<u8>,
        ef16: Vec<u8>,
    }

    impl Card for Files {
        fn atr(&self) -> Vec<u8> {
            parse_hex("3B6800005053414D2D535331").unwrap()
        }
        fn reset(&mut self) {}
        fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
            let data = match apdu[..4] {
                [0x00, 0xB0, 0x95, 0x00] => self.ef15.clone(),
                [0x00, 0xB0, 0x96, 0x00] => self.ef16.clone(),
                _ => Vec::new(),
            };
            Some([data, vec![0x90, 0x00]].concat())
        }
    }

    const EF15: &str = "110100000000000000010101110100022024010120340101";

    fn open(ef15: &str, ef16: &[u8]) -> Result<PsamKeys, KeyError> {
        let card = shared(Files {
            ef15: parse_hex(ef15).unwrap(),
            ef16: ef16.to_vec(),
        });
        PsamKeys::open(Connection::new(InProcess::new(card, "psam")))
    }

    fn ef15_with(i: usize, byte: u8) -> String {
        let mut b = parse_hex(EF15).unwrap();
        b[i] = byte;
        sscard_core::hexfmt::to_hex(&b)
    }

    #[test]
    fn a_psam_that_follows_the_profile_opens() {
        let mut p = open(EF15, &parse_hex("110100000001").unwrap()).unwrap();
        assert_eq!(p.info().level, 2);
        assert_eq!(p.algorithm(), Some(Algorithm::Tdes));
        assert_eq!(p.terminal_number(), Ok(Some("110100000001".into())));
        assert_eq!(
            p.describe(),
            "PSAM 11010000000000000001 in psam (level 2, region 110100)"
        );
    }

    /// A PSAM of `level` for `region` (EF15), and the APDUs one cryptogram for `card_id` sent
    /// to it (0 when refused before DES INIT).
    fn cryptogram_apdus(level: u8, region: &str, card_id: &str) -> Result<u64, KeyError> {
        let mut ef15 = parse_hex(EF15).unwrap();
        ef15[12..15].copy_from_slice(&parse_hex(region).unwrap());
        ef15[15] = level;
        let mut p = open(
            &sscard_core::hexfmt::to_hex(&ef15),
            &parse_hex("110100000001").unwrap(),
        )?;
        let before = p.apdu_count();
        let card = CardRef::new(parse_hex(card_id).unwrap().try_into().unwrap());
        p.cryptogram(Algorithm::Tdes, &card, Kid::Irk, &[1; 8])?;
        Ok(p.apdu_count() - before)
    }

    #[test]
    fn a_psam_serves_only_the_cards_of_its_region() {
        const BEIJING: &str = "110100D15600000599110145000000A1";
        const BEIJING_2: &str = "110200D15600000599110145000000A1";
        const SHANGHAI: &str = "310100D15600000599110145000000A1";
        // A city PSAM: its city only; refused before DES INIT, with -24.
        assert_eq!(cryptogram_apdus(2, "110100", BEIJING), Ok(2));
        let other = cryptogram_apdus(2, "110100", BEIJING_2).unwrap_err();
        assert_eq!(
            other,
            KeyError::OtherRegion {
                psam_region: "110100".into(),
                card_region: "110200".into(),
                level: 2
            }
        );
        assert_eq!(other.return_code(), -24);
        assert_eq!(
            other.to_string(),
            "the PSAM (level 2, region 110100) does not serve cards of region 110200: a PSAM \
             of the card's city or of a higher level is needed (-24)"
        );
        // A province PSAM: every city of its province, no other province.
        assert_eq!(cryptogram_apdus(1, "110000", BEIJING_2), Ok(2));
        assert_eq!(
            cryptogram_apdus(1, "110000", SHANGHAI),
            Err(KeyError::OtherRegion {
                psam_region: "110000".into(),
                card_region: "310100".into(),
                level: 1
            })
        );
        // A national PSAM: every card.
        assert_eq!(cryptogram_apdus(0, "000000", SHANGHAI), Ok(2));
    }

    #[test]
    fn a_psam_whose_files_break_the_profile_is_refused_with_the_field_named() {
        let terminal = parse_hex("110100000001").unwrap();
        let level = open(&ef15_with(15, 0xFF), &terminal).err().unwrap();
        assert_eq!(
            level,
            KeyError::PsamInfo(PsamInfoError::Level { level: 255 })
        );
        assert_eq!(
            level.to_string(),
            "PSAM EF15 gives key level 255; levels are 0 national, 1 province, 2 city"
        );
        assert_eq!(level.return_code(), -2201);
        let ssf33 = open(&ef15_with(11, 0x02), &terminal).err().unwrap();
        assert_eq!(
            ssf33,
            KeyError::PsamInfo(PsamInfoError::AlgorithmNotSupported { id: 2 })
        );
        assert_eq!(ssf33.return_code(), -2202);
        assert_eq!(
            open(&ef15_with(11, 0x07), &terminal).err(),
            Some(KeyError::PsamInfo(PsamInfoError::Algorithm { id: 7 }))
        );
        assert_eq!(
            open(&ef15_with(0, 0xA1), &terminal).err(),
            Some(KeyError::PsamInfo(PsamInfoError::NotBcd {
                field: "EF15 serial number",
                hex: "A1010000000000000001".into()
            }))
        );
        assert!(open(&ef15_with(21, 0x99), &terminal).is_ok(), "2099-01-01");
        assert_eq!(
            open(&ef15_with(22, 0x13), &terminal).err(),
            Some(KeyError::PsamInfo(PsamInfoError::Date {
                field: "EF15 expiry date",
                date: "20341301".into()
            }))
        );
        // An 8000-character terminal number (4000 bytes), and one with a non-BCD digit.
        let long = open(EF15, &[0x31; 4000]).err().unwrap();
        assert_eq!(
            long,
            KeyError::PsamInfo(PsamInfoError::TerminalLength { len: 4000 })
        );
        assert_eq!(long.return_code(), -2201);
        assert_eq!(
            open(EF15, &parse_hex("11010000000F").unwrap()).err(),
            Some(KeyError::PsamInfo(PsamInfoError::NotBcd {
                field: "EF16 terminal number",
                hex: "11010000000F".into()
            }))
        );
    }
}
