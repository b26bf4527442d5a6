//! The functions of the C interface in safe Rust: each takes its arguments as Rust values
//! (strings already decoded) and returns the text for the caller's buffer or a typed error.
//! `ffi` only converts at the boundary.

use crate::config::{Config, PinPadUse};
use crate::error::UnifiedError;
use crate::pinpad::{self, Features};
use crate::readers::{self, with_card, Interface};
use crate::tty;
use sscard::keys::{CardRef, KeyError, KeySource, KeySpec};
use sscard::ssc::{Pin, PinStatus, Session, SscError};
use sscard::unified::{AuthType, CardInfo, FileAddr, WriteData};
use sscard_core::classify::Classified;
use sscard_core::crypto::Algorithm;
use sscard_core::profile::{codes, Kid};
use sscard_core::status::StatusWord;
use sscard_transport::pcsc::{establish, Context};
use sscard_transport::{Connection, Transaction, TransportError};

pub use crate::two_step::{hsm_step1, hsm_step2, hsm_step2_key_line};

/// The key source of a flow that needs no key (VERIFY, CHANGE PIN, the two-step flow, whose
/// keys are the encryption machine's): it holds none, so a flow that asked it for one would
/// fail, never fall back to other keys. It may know the terminal number (a PSAM's, read in
/// step 1).
#[derive(Default)]
pub(crate) struct NoKeys {
    pub(crate) terminal: Option<String>,
}

impl KeySource for NoKeys {
    fn describe(&self) -> String {
        "no key source (this function needs no key)".into()
    }
    fn terminal_number(&mut self) -> Result<Option<String>, KeyError> {
        Ok(self.terminal.clone())
    }
    fn cryptogram(
        &mut self,
        _: Algorithm,
        _: &CardRef,
        kid: Kid,
        _: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::MissingKey { kid })
    }
    fn mac(
        &mut self,
        _: Algorithm,
        _: &CardRef,
        kid: Kid,
        _: &[u8],
        _: &[u8],
    ) -> Result<[u8; 4], KeyError> {
        Err(KeyError::MissingKey { kid })
    }
}

/// The configured key source. When it cannot be opened, the card is looked for, and a missing
/// card (−2) is reported before the key source's error: no card and no PSAM is −2. (On
/// success the card is not looked for twice.)
fn keys_for(
    cfg: &Config,
    ctx: &Context,
    order: &[Interface],
) -> Result<Box<dyn KeySource>, UnifiedError> {
    readers::key_source(cfg, Some(ctx)).map_err(|e| match with_card(cfg, ctx, order, |_| Ok(())) {
        Err(missing) if missing.return_code() == codes::NO_CARD => missing,
        _ => e,
    })
}

/// `iReadCardBas`: the `|`-terminated line of PROFILE section 7.
pub fn read_basic(cfg: &Config, order: &[Interface]) -> Result<String, UnifiedError> {
    let ctx = establish()?;
    let mut keys = keys_for(cfg, &ctx, order)?;
    with_card(cfg, &ctx, order, |mut conn| {
        let mut tx = conn.transaction()?;
        let mut s = Session::open(&mut tx, keys.as_mut())?;
        s.set_device_number(cfg.device_number.clone());
        Ok(s.read_basic_info()?.unified_line())
    })
}

/// A PIN typed on the terminal, checked for form (2 to 6 digits, −33).
fn typed_pin(cfg: &Config, prompt: &str) -> Result<Pin, UnifiedError> {
    let bytes = tty::ask(&cfg.encoding.encode_lossy(prompt), cfg.pin_timeout)?;
    let text = cfg.encoding.decode_secret(&bytes, "the PIN typed")?;
    Ok(Pin::new(&text)?)
}

/// A PIN given as text by the caller.
pub fn given_pin(cfg: &Config, bytes: &[u8], argument: &'static str) -> Result<Pin, UnifiedError> {
    let text = cfg.encoding.decode_secret(bytes, argument)?;
    Ok(Pin::new(&text)?)
}

/// The reader's PIN pad functions; none when configured so, or when the reader takes no
/// reader commands or lists neither (a reader without a keypad, vpcd).
fn pin_pad(cfg: &Config, conn: &mut Connection) -> Result<Features, UnifiedError> {
    if cfg.pin_pad == PinPadUse::Never {
        return Ok(Features::default());
    }
    let mut tx = conn.transaction()?;
    match tx.control(pinpad::CM_IOCTL_GET_FEATURE_REQUEST, &[]) {
        Ok(list) => Ok(pinpad::parse_features(&list)?),
        Err(TransportError::Pcsc { .. }) => Ok(Features::default()),
        Err(e) => Err(e.into()),
    }
}

/// A PIN command's status word as the session reads it: tries left (−51), locked (−52), any
/// other −SW.
fn pin_status(command: &'static str, sw: StatusWord) -> Result<(), UnifiedError> {
    if sw.is_success() {
        return Ok(());
    }
    Err(match sw.tries_left() {
        Some(tries_left) => SscError::WrongPin { tries_left },
        None if sw == StatusWord::AUTH_BLOCKED => SscError::PinLocked,
        None => SscError::Card { command, sw },
    }
    .into())
}

/// Hands a PIN structure to the PIN pad's function `code`; the answer's status word is the
/// reader's (entry outcome) or the card's.
fn on_pin_pad(
    tx: &mut Transaction<'_>,
    code: u32,
    structure: &[u8],
    command: &'static str,
) -> Result<(), UnifiedError> {
    let answer = tx.control(code, structure)?;
    let [.., sw1, sw2] = answer[..] else {
        return Err(UnifiedError::PinPadAnswer { len: answer.len() });
    };
    let sw = u16::from_be_bytes([sw1, sw2]);
    if let Some(outcome) = pinpad::entry_outcome(sw) {
        return Err(UnifiedError::PinPad(outcome));
    }
    pin_status(command, StatusWord(sw))
}

fn timeout_byte(cfg: &Config) -> u8 {
    u8::try_from(cfg.pin_timeout.as_secs()).unwrap_or(u8::MAX)
}

/// VERIFY of `pin`: the initial PIN verifies but answers −35.
fn verify(conn: &mut Connection, pin: &Pin) -> Result<(), UnifiedError> {
    let mut none = NoKeys::default();
    let mut tx = conn.transaction()?;
    let mut s = Session::open(&mut tx, &mut none)?;
    match s.verify_pin(pin)? {
        PinStatus::Verified => Ok(()),
        PinStatus::InitialMustChange => Err(UnifiedError::InitialPin),
    }
}

fn change(conn: &mut Connection, old: &Pin, new: &Pin) -> Result<(), UnifiedError> {
    let mut none = NoKeys::default();
    let mut tx = conn.transaction()?;
    let mut s = Session::open(&mut tx, &mut none)?;
    Ok(s.change_pin(old, new)?)
}

/// A PIN command entered on the PIN pad or on the terminal.
#[derive(Clone, Copy)]
enum PinCommand {
    Verify,
    Change,
}

/// `command` with the PINs from the reader's PIN pad when it has that function, else from the
/// terminal.
fn entered_on(
    cfg: &Config,
    conn: &mut Connection,
    command: PinCommand,
) -> Result<(), UnifiedError> {
    let features = pin_pad(cfg, conn)?;
    let (code, structure, name) = match command {
        PinCommand::Verify => (
            features.verify,
            pinpad::verify_structure(timeout_byte(cfg)),
            "VERIFY",
        ),
        PinCommand::Change => (
            features.modify,
            pinpad::modify_structure(timeout_byte(cfg)),
            "CHANGE PIN",
        ),
    };
    match (code, command) {
        (Some(code), _) => {
            let mut none = NoKeys::default();
            let mut tx = conn.transaction()?;
            Session::open(&mut tx, &mut none)?;
            on_pin_pad(&mut tx, code, &structure, name)
        }
        (None, PinCommand::Verify) => verify(conn, &typed_pin(cfg, "PIN: ")?),
        (None, PinCommand::Change) => {
            let old = typed_pin(cfg, "PIN: ")?;
            let new = typed_new_pin(cfg)?;
            change(conn, &old, &new)
        }
    }
}

/// `iVerifyPIN`: the PIN from the reader's PIN pad, else from the terminal. Through a PIN pad
/// the library never sees the PIN, so it cannot tell the initial PIN (−35 is not reported).
pub fn verify_entered(cfg: &Config, order: &[Interface]) -> Result<(), UnifiedError> {
    let ctx = establish()?;
    with_card(cfg, &ctx, order, |mut conn| {
        entered_on(cfg, &mut conn, PinCommand::Verify)
    })
}

/// `iVerifyPINK`.
pub fn verify_given(cfg: &Config, order: &[Interface], pin: &Pin) -> Result<(), UnifiedError> {
    let ctx = establish()?;
    with_card(cfg, &ctx, order, |mut conn| verify(&mut conn, pin))
}

/// The new PIN typed twice (−34 when the two differ).
fn typed_new_pin(cfg: &Config) -> Result<Pin, UnifiedError> {
    let new = typed_pin(cfg, "New PIN: ")?;
    let again = typed_pin(cfg, "New PIN again: ")?;
    let same: bool = {
        let (a, b) = (new.to_bcd(), again.to_bcd());
        sscard_core::crypto::ct_eq(&a, &b)
    };
    match same {
        true => Ok(new),
        false => Err(SscError::PinsDiffer.into()),
    }
}

/// `iChangePIN`: on the PIN pad (which asks for the current PIN, the new one and the new one
/// again), else on the terminal. The new PIN 123456 is refused (−36) when the library sees it
/// (the terminal); through a PIN pad it never does.
pub fn change_entered(cfg: &Config, order: &[Interface]) -> Result<(), UnifiedError> {
    let ctx = establish()?;
    with_card(cfg, &ctx, order, |mut conn| {
        entered_on(cfg, &mut conn, PinCommand::Change)
    })
}

/// `iChangePINK`.
pub fn change_given(
    cfg: &Config,
    order: &[Interface],
    old: &Pin,
    new: &Pin,
) -> Result<(), UnifiedError> {
    let ctx = establish()?;
    with_card(cfg, &ctx, order, |mut conn| change(&mut conn, old, new))
}

/// What `iGetReaderInfo` found: each half, or why it is unknown.
pub struct ReaderInfo {
    /// The card reader's serial number, else the configured device number.
    pub serial: Result<String, UnifiedError>,
    /// The PSAM's terminal number; empty when the key source is not a PSAM.
    pub terminal: Result<String, UnifiedError>,
}

impl ReaderInfo {
    /// The two texts (an unknown one empty) and the return code: 0 when both are known, else
    /// the serial number's error (no card, −2, comes first: the card reader is the reader the
    /// call is about), else the terminal number's (no PSAM, −2201).
    pub fn outcome(self) -> (String, String, Option<UnifiedError>) {
        match (self.serial, self.terminal) {
            (Ok(s), Ok(t)) => (s, t, None),
            (Err(e), Ok(t)) => (String::new(), t, Some(e)),
            (Ok(s), Err(e)) => (s, String::new(), Some(e)),
            (Err(e), Err(_)) => (String::new(), String::new(), Some(e)),
        }
    }
}

/// `iGetReaderInfo`: each half found on its own, so that what is known is reported.
pub fn reader_info(cfg: &Config) -> Result<ReaderInfo, UnifiedError> {
    let ctx = establish()?;
    let serial = match readers::card_reader_serial(cfg, &ctx) {
        Ok(Some(serial)) => Ok(serial),
        Ok(None) => Ok(cfg
            .device_number
            .as_ref()
            .map(|d| d.as_str().to_string())
            .unwrap_or_default()),
        Err(e) => match &cfg.device_number {
            Some(d) => Ok(d.as_str().to_string()),
            None => Err(e),
        },
    };
    let terminal = match cfg.key_spec() {
        KeySpec::Psam(reader) => readers::psam(&ctx, &reader)
            .and_then(|mut p| p.terminal_number())
            .map(Option::unwrap_or_default)
            .map_err(UnifiedError::from),
        _ => Ok(String::new()),
    };
    Ok(ReaderInfo { serial, terminal })
}

/// Text of a caller's line in the configured encoding.
fn text(cfg: &Config, bytes: &[u8], argument: &'static str) -> Result<String, UnifiedError> {
    Ok(cfg.encoding.decode(bytes, argument)?)
}

/// `iReadCard`: the values of the records `pFileAddr` names, in its layout. With `iAuthType` 1
/// the key source opens what the files need; `pCardInfo` is required then (with 0 it may be
/// absent).
pub fn read_items(
    cfg: &Config,
    order: &[Interface],
    auth: i32,
    card_info: Option<&[u8]>,
    file_addr: &[u8],
) -> Result<String, UnifiedError> {
    let auth = AuthType::try_from(auth)?;
    let card_info = match (card_info, auth) {
        (Some(b), _) => Some(CardInfo::parse(&text(cfg, b, "pCardInfo")?)?),
        (None, AuthType::None) => None,
        (None, _) => return Err(UnifiedError::NoCardInfo),
    };
    let addr = FileAddr::parse(&text(cfg, file_addr, "pFileAddr")?)?;
    let ctx = establish()?;
    let mut keys: Box<dyn KeySource> = match auth {
        AuthType::None => Box::new(NoKeys::default()),
        _ => keys_for(cfg, &ctx, order)?,
    };
    with_card(cfg, &ctx, order, |mut conn| {
        let mut tx = conn.transaction()?;
        let mut s = Session::open(&mut tx, keys.as_mut())?;
        Ok(s.read_items(auth, card_info.as_ref(), &addr)?)
    })
}

/// `iWriteCard`: the values of `pWriteData` written with line protection, after `pCardInfo`
/// is checked against the card.
pub fn write_items(
    cfg: &Config,
    order: &[Interface],
    card_info: &[u8],
    file_addr: &[u8],
    data: &[u8],
) -> Result<(), UnifiedError> {
    let card_info = CardInfo::parse(&text(cfg, card_info, "pCardInfo")?)?;
    let addr = FileAddr::parse(&text(cfg, file_addr, "pFileAddr")?)?;
    let data = WriteData::parse(&addr, &text(cfg, data, "pWriteData")?)?;
    let ctx = establish()?;
    let mut keys = keys_for(cfg, &ctx, order)?;
    with_card(cfg, &ctx, order, |mut conn| {
        let mut tx = conn.transaction()?;
        let mut s = Session::open(&mut tx, keys.as_mut())?;
        Ok(s.write_items(&card_info, &data)?)
    })
}

/// Opens SSSE with `keys` and checks that the card is the one `card_info` names (−22).
fn checked_session<'a, 'c>(
    tx: &'a mut Transaction<'c>,
    keys: &'a mut dyn KeySource,
    card_info: &CardInfo,
) -> Result<Session<'a, 'c>, UnifiedError> {
    let mut s = Session::open(tx, keys)?;
    let id = s.read_identification()?;
    card_info.check(&id)?;
    Ok(s)
}

/// `iReloadPIN`: the card checked against `pCardInfo`, the new PIN typed twice on the
/// terminal (no transaction is held while it is typed), then RELOAD PIN under RPK on the card,
/// checked again.
pub fn reload_pin(cfg: &Config, order: &[Interface], card_info: &[u8]) -> Result<(), UnifiedError> {
    let card_info = CardInfo::parse(&text(cfg, card_info, "pCardInfo")?)?;
    let ctx = establish()?;
    let mut keys = keys_for(cfg, &ctx, order)?;
    with_card(cfg, &ctx, order, |mut conn| {
        {
            let mut tx = conn.transaction()?;
            checked_session(&mut tx, keys.as_mut(), &card_info)?;
        }
        let new = typed_new_pin(cfg)?;
        let mut tx = conn.transaction()?;
        Ok(checked_session(&mut tx, keys.as_mut(), &card_info)?.reload_pin(&new)?)
    })
}

/// `iUnblockPIN`: the card checked against `pCardInfo`, then UNBLOCK PIN under UPK.
pub fn unblock_pin(
    cfg: &Config,
    order: &[Interface],
    card_info: &[u8],
) -> Result<(), UnifiedError> {
    let card_info = CardInfo::parse(&text(cfg, card_info, "pCardInfo")?)?;
    let ctx = establish()?;
    let mut keys = keys_for(cfg, &ctx, order)?;
    with_card(cfg, &ctx, order, |mut conn| {
        let mut tx = conn.transaction()?;
        Ok(checked_session(&mut tx, keys.as_mut(), &card_info)?.unblock_pin()?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard_model::card::shared;
    use sscard_transport::backend::{CardBackend, CardTransaction};
    use sscard_transport::InProcess;

    fn model() -> Connection {
        let (ssc, _) = sscard_model::test_pair(Algorithm::Tdes);
        Connection::new(InProcess::new(shared(ssc), "model"))
    }

    #[test]
    fn reader_info_reports_what_it_knows() {
        use sscard_core::classify::Classified;
        let no_card = || UnifiedError::NoCard { wanted: "contact" };
        let no_psam =
            || UnifiedError::Keys(KeyError::NoPsam(sscard::keys::NoPsamReason::NoneFound));
        let rc = |e: Option<UnifiedError>| e.map_or(0, |e| e.return_code());
        let info = |serial, terminal| ReaderInfo { serial, terminal }.outcome();
        let (s, t, e) = info(Ok("T-0042".into()), Ok("110100000001".into()));
        assert_eq!(
            (s.as_str(), t.as_str(), rc(e)),
            ("T-0042", "110100000001", 0)
        );
        // A card but no PSAM: the serial number is still reported.
        let (s, t, e) = info(Ok("T-0042".into()), Err(no_psam()));
        assert_eq!((s.as_str(), t.as_str(), rc(e)), ("T-0042", "", -2201));
        // No card: the PSAM's terminal number is still reported.
        let (s, t, e) = info(Err(no_card()), Ok("110100000001".into()));
        assert_eq!((s.as_str(), t.as_str(), rc(e)), ("", "110100000001", -2));
        // Neither: the card reader's error comes first.
        let (s, t, e) = info(Err(no_card()), Err(no_psam()));
        assert_eq!((s.as_str(), t.as_str(), rc(e)), ("", "", -2));
    }

    #[test]
    fn a_reader_without_reader_commands_has_no_pin_pad() {
        let mut conn = model();
        let cfg = Config::default();
        assert_eq!(pin_pad(&cfg, &mut conn).unwrap(), Features::default());
        let mut tx = conn.transaction().unwrap();
        assert_eq!(
            tx.control(pinpad::CM_IOCTL_GET_FEATURE_REQUEST, &[]),
            Err(sscard_transport::backend::unsupported_feature())
        );
        assert!(
            tx.changed_card(),
            "a reader command may have changed the card"
        );
    }

    /// A reader with a PIN pad, after PC/SC part 10 and CCID: it lists its two PIN features,
    /// and for each PIN structure writes the digits "typed" on its keypad into the APDU
    /// template as the structure says (BCD nibbles from the left of each block, the rest of
    /// the template kept), checks the entry against the structure's length limits, and sends
    /// the APDU to the card.
    struct PinPadReader {
        card: InProcess,
        typed: std::collections::VecDeque<&'static str>,
    }

    struct PinPadTx<'a> {
        inner: Box<dyn CardTransaction + 'a>,
        typed: &'a mut std::collections::VecDeque<&'static str>,
    }

    const VERIFY_CODE: u32 = 0x4233_0006;
    const MODIFY_CODE: u32 = 0x4233_0007;

    impl CardBackend for PinPadReader {
        fn reader(&self) -> &str {
            "PIN pad"
        }
        fn atr(&self) -> Vec<u8> {
            self.card.atr()
        }
        fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
            Ok(Box::new(PinPadTx {
                inner: self.card.transaction()?,
                typed: &mut self.typed,
            }))
        }
    }

    impl PinPadTx<'_> {
        /// One entry into `apdu`'s data at `offset`; a reader status word when it fails.
        fn enter(&mut self, structure: &[u8], apdu: &mut [u8], offset: usize) -> Result<(), u16> {
            let digits = self.typed.pop_front().expect("an entry is scripted");
            if digits == "cancel" {
                return Err(0x6401);
            }
            let (max, min) = (structure[5] as usize, structure[6] as usize);
            if !(min..=max).contains(&digits.len()) {
                return Err(0x6403);
            }
            assert_eq!(structure[2], 0x81, "BCD, byte units, left justified");
            let block = &mut apdu[5 + offset..5 + offset + usize::from(structure[3] & 0x0F)];
            for (i, d) in digits.bytes().enumerate() {
                let nibble = d - b'0';
                let byte = &mut block[i / 2];
                *byte = match i % 2 {
                    0 => (*byte & 0x0F) | nibble << 4,
                    _ => (*byte & 0xF0) | nibble,
                };
            }
            Ok(())
        }
    }

    impl CardTransaction for PinPadTx<'_> {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            self.inner.transmit(apdu)
        }
        fn was_reset(&self) -> bool {
            self.inner.was_reset()
        }
        fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
            self.inner.reset()
        }
        fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, TransportError> {
            let (header, offsets) = match code {
                pinpad::CM_IOCTL_GET_FEATURE_REQUEST => {
                    let mut list = vec![pinpad::FEATURE_VERIFY_PIN_DIRECT, 4];
                    list.extend_from_slice(&VERIFY_CODE.to_be_bytes());
                    list.extend_from_slice(&[pinpad::FEATURE_MODIFY_PIN_DIRECT, 4]);
                    list.extend_from_slice(&MODIFY_CODE.to_be_bytes());
                    return Ok(list);
                }
                VERIFY_CODE => (19, vec![0]),
                MODIFY_CODE => (24, vec![input[5] as usize, input[6] as usize]),
                _ => return Err(sscard_transport::backend::unsupported_feature()),
            };
            // The modify structure has two more bytes before wPINMaxExtraDigit.
            let limits = match code {
                MODIFY_CODE => [
                    input[0], input[1], input[2], input[3], input[4], input[7], input[8],
                ],
                _ => [
                    input[0], input[1], input[2], input[3], input[4], input[5], input[6],
                ],
            };
            let len = u32::from_le_bytes(input[header - 4..header].try_into().unwrap());
            let mut apdu = input[header..].to_vec();
            assert_eq!(apdu.len(), len as usize, "ulDataLength");
            for (n, offset) in offsets.iter().enumerate() {
                if let Err(sw) = self.enter(&limits, &mut apdu, *offset) {
                    return Ok(sw.to_be_bytes().to_vec());
                }
                // bConfirmPIN: the new PIN is entered twice.
                if code == MODIFY_CODE && n == 1 {
                    let again = self.typed.pop_front().expect("confirmation");
                    let block = &apdu[5 + offset..5 + offset + 3];
                    if sscard_core::hexfmt::to_hex(block).trim_end_matches('F') != again {
                        return Ok(vec![0x64, 0x02]);
                    }
                }
            }
            self.inner.transmit(&apdu)
        }
    }

    fn pin_pad_model(typed: &[&'static str]) -> Connection {
        let (ssc, _) = sscard_model::test_pair(Algorithm::Sm4);
        Connection::new(PinPadReader {
            card: InProcess::new(shared(ssc), "model"),
            typed: typed.iter().copied().collect(),
        })
    }

    #[test]
    fn pins_entered_on_a_pin_pad() {
        use sscard_core::classify::Classified;
        let cfg = Config::default();
        let rc = |typed: &[&'static str], change: bool| {
            let mut conn = pin_pad_model(typed);
            let r = match change {
                false => entered_on(&cfg, &mut conn, PinCommand::Verify),
                true => entered_on(&cfg, &mut conn, PinCommand::Change),
            };
            r.map_or_else(|e| e.return_code(), |()| 0)
        };
        // The initial PIN verifies; the library never saw it, so no −35.
        assert_eq!(rc(&["123456"], false), 0);
        assert_eq!(rc(&["654321"], false), -51);
        assert_eq!(rc(&["cancel"], false), -31);
        // The structure asks for 5 or 6 digits: the reader refuses 4 itself.
        assert_eq!(rc(&["1234"], false), -33);
        assert_eq!(rc(&["123456", "80241", "80242"], true), -34);
        assert_eq!(rc(&["111111", "80241", "80241"], true), -51);
        // A 5-digit new PIN: its block 80241F is what the card takes.
        let mut conn = pin_pad_model(&["123456", "80241", "80241", "80241"]);
        entered_on(&cfg, &mut conn, PinCommand::Change).unwrap();
        entered_on(&cfg, &mut conn, PinCommand::Verify).unwrap();
        verify(&mut conn, &Pin::new("80241").unwrap()).unwrap();
    }

    #[test]
    fn pins_given_as_text() {
        let cfg = Config::default();
        let mut conn = model();
        // The model's card has the initial PIN: it verifies, and says it must be changed.
        let initial = given_pin(&cfg, b"123456", "pPIN").unwrap();
        assert!(matches!(
            verify(&mut conn, &initial),
            Err(UnifiedError::InitialPin)
        ));
        let e = change(&mut conn, &initial, &initial).unwrap_err();
        assert!(
            matches!(e, UnifiedError::Ssc(SscError::NewPinIsInitial)),
            "{e}"
        );
        let new = given_pin(&cfg, b"802417", "pNewPIN").unwrap();
        change(&mut conn, &initial, &new).unwrap();
        verify(&mut conn, &new).unwrap();
        let e = verify(&mut conn, &initial).unwrap_err();
        use sscard_core::classify::Classified;
        assert_eq!(
            (e.to_string().as_str(), e.return_code()),
            ("wrong PIN, 2 tries left", -51)
        );
        let e = given_pin(&cfg, b"12345678", "pPIN").unwrap_err();
        assert_eq!(e.return_code(), -33);
        let e = given_pin(&cfg, b"\xD5\xC5", "pPIN").unwrap_err();
        assert_eq!(e.return_code(), -33, "{e}");
    }
}
