//! Which reader a call talks to, and one call at a time per reader.
//!
//! `iType` names the interface: 1 contact, 2 contactless, 3 both (contact first), 4 both
//! (contactless first). A reader's card is contactless when the configuration names the reader
//! as `contactless_reader`; else (no reader configured) when its ATR is the PC/SC part 3
//! pseudo-ATR of a contactless card (`3B 8n 80 01 …`) or the reader's name says PICC or
//! Contactless; else it is a contact card. With readers configured, `card_reader` is the contact
//! reader and `contactless_reader` the contactless one, and only those are used. Without, the
//! first reader of the interface whose card selects the SSSE application is the card's reader;
//! the choice is remembered (per interface) and looked for again only when that reader no longer
//! holds a social security card.
//!
//! Calls are serialised per reader: a call holds its card reader's lock from connecting to the
//! end of the flow (PIN entry included), and probing a reader during discovery takes that
//! reader's lock for the probe alone, so discovery in several threads at once is safe and never
//! holds two locks (no deadlock).
//!
//! Every connection ends through [`Ending`]: the card's with the configured
//! `card_disposition` (leave by default), a probe's and the PSAM's by leaving the card.

use crate::config::{Config, AUTO};
use crate::ending::Ending;
use crate::error::UnifiedError;
use sscard::keys::{self, KeyError, KeySource, KeySpec, NoPsamReason, PsamKeys};
use sscard::ssc::has_ssse;
use sscard::ssc::SscError;
use sscard_transport::backend::Disposition;
use sscard_transport::pcsc::{establish, list_readers, resolve_reader, Context, PcscBackend};
use sscard_transport::trace::Trace;
use sscard_transport::{Connection, TransportError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The two interfaces of a dual reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Interface {
    Contact,
    Contactless,
}

impl Interface {
    fn name(self) -> &'static str {
        match self {
            Self::Contact => "contact",
            Self::Contactless => "contactless",
        }
    }
}

/// The interfaces `iType` asks for, in the order they are searched; −1 for any other value.
pub fn search_order(itype: i32) -> Result<&'static [Interface], UnifiedError> {
    use Interface::*;
    match itype {
        1 => Ok(&[Contact]),
        2 => Ok(&[Contactless]),
        3 => Ok(&[Contact, Contactless]),
        4 => Ok(&[Contactless, Contact]),
        n => Err(UnifiedError::BadType(n)),
    }
}

/// Whether `atr` is the pseudo-ATR PC/SC part 3 gives a contactless card: `3B`, T0 = `8n`
/// (TD1 present, n historical bytes), TD1 = `80`, TD2 = `01`.
pub fn is_contactless_atr(atr: &[u8]) -> bool {
    matches!(atr, [0x3B, t0, 0x80, 0x01, ..] if t0 & 0xF0 == 0x80)
}

/// Whether a reader's name says it is contactless (`PICC`, `Contactless`, any case).
pub fn is_contactless_name(reader: &str) -> bool {
    let lower = reader.to_ascii_lowercase();
    lower.contains("picc") || lower.contains("contactless")
}

/// The interface of the card in `reader` with `atr`, when no reader is configured.
pub fn judge(reader: &str, atr: &[u8]) -> Interface {
    if is_contactless_atr(atr) || is_contactless_name(reader) {
        Interface::Contactless
    } else {
        Interface::Contact
    }
}

/// One lock per reader name, for the life of the process.
static LOCKS: Mutex<BTreeMap<String, Arc<Mutex<()>>>> = Mutex::new(BTreeMap::new());

/// Runs `f` holding `reader`'s lock (a call that continues on a connection it kept).
pub fn holding<T>(reader: &str, f: impl FnOnce() -> T) -> T {
    let lock = reader_lock(reader);
    let _turn = hold(&lock);
    f()
}

fn reader_lock(reader: &str) -> Arc<Mutex<()>> {
    LOCKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(reader.to_string())
        .or_default()
        .clone()
}

/// A panic in another call (caught at the C boundary) poisons nothing the lock guards: it
/// guards no data, only turns.
fn hold(lock: &Mutex<()>) -> MutexGuard<'_, ()> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The readers found by discovery: per interface, and the PSAM's.
#[derive(Default)]
struct Found {
    card: BTreeMap<Interface, String>,
    psam: Option<String>,
}

static FOUND: Mutex<Found> = Mutex::new(Found {
    card: BTreeMap::new(),
    psam: None,
});

fn found() -> MutexGuard<'static, Found> {
    FOUND.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The first reader of `interface` whose card has the SSSE application.
fn discover(ctx: &Context, interface: Interface) -> Result<Option<String>, TransportError> {
    for name in list_readers(ctx)? {
        let lock = reader_lock(&name);
        let _turn = hold(&lock);
        let Ok(backend) = PcscBackend::connect_named(ctx, &name, false) else {
            continue;
        };
        let mut conn = Connection::new(Ending::new(backend, Disposition::Leave));
        if judge(&name, conn.atr()) == interface && has_ssse(&mut conn) {
            found().card.insert(interface, name.clone());
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Whether an error means "no social security card there" (so another reader may have one).
fn no_card_here(e: &UnifiedError) -> bool {
    matches!(
        e,
        UnifiedError::Transport(TransportError::NoCard { .. } | TransportError::CardRemoved)
            | UnifiedError::Ssc(SscError::WrongCard { .. })
            | UnifiedError::Ssc(SscError::Transport(
                TransportError::NoCard { .. } | TransportError::CardRemoved
            ))
    )
}

fn wanted(order: &[Interface]) -> &'static str {
    match order {
        [one] => one.name(),
        _ => "contact or contactless",
    }
}

/// Runs `flow` on a connection to the card `iType` asks for, holding that reader's lock (the
/// flow may keep the connection: the lock ends with `with_card`, the connection does not).
/// With readers configured, each configured reader of `order` in turn (a reader without a
/// card passes to the next); else the remembered or discovered reader of each interface.
/// A flow that finds no social security card in a remembered reader (its first command,
/// SELECT, changed nothing) runs again on the reader discovery finds now.
pub fn with_card<T>(
    cfg: &Config,
    ctx: &Context,
    order: &[Interface],
    mut flow: impl FnMut(Connection) -> Result<T, UnifiedError>,
) -> Result<T, UnifiedError> {
    let mut on = |name: &str, interface: Option<Interface>| -> Result<Option<T>, UnifiedError> {
        let lock = reader_lock(name);
        let _turn = hold(&lock);
        let backend = match PcscBackend::connect_named(ctx, name, false) {
            Err(TransportError::NoCard { .. }) => return Ok(None),
            r => r?,
        };
        let conn = Connection::new(Ending::new(backend, cfg.card_disposition));
        if interface.is_some_and(|i| judge(name, conn.atr()) != i) {
            return Ok(None);
        }
        flow(conn).map(Some)
    };
    if cfg.card_reader.is_some() || cfg.contactless_reader.is_some() {
        for interface in order {
            let configured = match interface {
                Interface::Contact => &cfg.card_reader,
                Interface::Contactless => &cfg.contactless_reader,
            };
            let Some(configured) = configured else {
                continue;
            };
            let name = resolve_reader(&list_readers(ctx)?, configured)?;
            if let Some(done) = on(&name, None)? {
                return Ok(done);
            }
        }
        return Err(UnifiedError::NoCard {
            wanted: wanted(order),
        });
    }
    for &interface in order {
        let remembered = found().card.get(&interface).cloned();
        if let Some(name) = remembered {
            match on(&name, Some(interface)) {
                Ok(Some(done)) => return Ok(done),
                Err(e) if !no_card_here(&e) => return Err(e),
                _ => {
                    found().card.remove(&interface);
                }
            }
        }
        if let Some(name) = discover(ctx, interface)? {
            if let Some(done) = on(&name, Some(interface))? {
                return Ok(done);
            }
        }
    }
    Err(UnifiedError::NoCard {
        wanted: wanted(order),
    })
}

/// The card reader's serial number, for `iGetReaderInfo`: the configured contact (else
/// contactless) reader's, whatever card it holds; without readers configured, the reader of a
/// social security card (contact first), which is the only way to tell the card reader.
pub fn card_reader_serial(cfg: &Config, ctx: &Context) -> Result<Option<String>, UnifiedError> {
    if let Some(configured) = cfg.card_reader.as_ref().or(cfg.contactless_reader.as_ref()) {
        let name = resolve_reader(&list_readers(ctx)?, configured)?;
        let lock = reader_lock(&name);
        let _turn = hold(&lock);
        let backend = match PcscBackend::connect_named(ctx, &name, false) {
            Err(TransportError::NoCard { .. }) => {
                return Err(UnifiedError::NoCard {
                    wanted: "contact or contactless",
                })
            }
            r => r?,
        };
        let conn = Connection::new(Ending::new(backend, Disposition::Leave));
        return Ok(conn.reader_serial().map(str::to_string));
    }
    with_card(
        cfg,
        ctx,
        &[Interface::Contact, Interface::Contactless],
        |conn| Ok(conn.reader_serial().map(str::to_string)),
    )
}

fn open_psam(ctx: &Context, name: &str) -> Result<PsamKeys, KeyError> {
    let lock = reader_lock(name);
    let _turn = hold(&lock);
    let backend = PcscBackend::connect_named(ctx, name, false)
        .map_err(|e| KeyError::NoPsam(NoPsamReason::Reader(e)))?;
    PsamKeys::open(Connection::new(Ending::new(backend, Disposition::Leave))).map_err(|e| match e {
        KeyError::NoPsam(_) => e,
        e => KeyError::NoPsam(NoPsamReason::NotAPsam {
            reader: name.into(),
            source: Box::new(e),
        }),
    })
}

/// The PSAM in `reader`, or with [`AUTO`] the remembered PSAM reader, else the first reader
/// whose card is a PSAM (DF01 with EF15 and EF16). None is "no PSAM" (−2201).
pub fn psam(ctx: &Context, reader: &str) -> Result<PsamKeys, KeyError> {
    let readers = list_readers(ctx).map_err(|e| KeyError::NoPsam(NoPsamReason::Reader(e)))?;
    if reader != AUTO {
        let name = resolve_reader(&readers, reader)
            .map_err(|e| KeyError::NoPsam(NoPsamReason::Reader(e)))?;
        return open_psam(ctx, &name);
    }
    let remembered = found().psam.clone();
    if let Some(name) = remembered {
        if let Ok(p) = open_psam(ctx, &name) {
            return Ok(p);
        }
        found().psam = None;
    }
    let mut why = NoPsamReason::NoneFound;
    for name in readers {
        match open_psam(ctx, &name) {
            Ok(p) => {
                found().psam = Some(name);
                return Ok(p);
            }
            Err(KeyError::NoPsam(reason)) => why = reason,
            Err(e) => return Err(e),
        }
    }
    Err(KeyError::NoPsam(why))
}

/// The configured key source, on the call's PC/SC context when it has one (a PSAM needs
/// one; software keys and tokens do not): a PSAM (named or found), software keys, a key service
/// (`remote_cert`, `remote_key`, `remote_ca`), or a PKCS#11 token whose PIN comes from
/// `SSCARD_PKCS11_PIN` (the library has no prompt). A PKCS#11 module that is
/// not there is reported as such before the PIN is looked for.
pub fn key_source(cfg: &Config, ctx: Option<&Context>) -> Result<Box<dyn KeySource>, UnifiedError> {
    match cfg.key_spec() {
        KeySpec::Psam(reader) => Ok(Box::new(match ctx {
            Some(ctx) => psam(ctx, &reader)?,
            None => psam(&establish()?, &reader)?,
        })),
        // The client's files from the configuration, each one not set from the environment.
        KeySpec::Remote(url) => {
            let tls = keys::RemoteTls::or_env(
                cfg.remote_cert.clone(),
                cfg.remote_key.clone(),
                cfg.remote_ca.clone(),
            )?;
            Ok(Box::new(keys::RemoteKeys::open(&url, &tls)?))
        }
        spec => {
            if let KeySpec::Pkcs11 { module, .. } = &spec {
                // A bare library name is the dynamic loader's to find; a path must exist.
                if module.components().count() > 1 && !module.exists() {
                    return Err(UnifiedError::NoModule {
                        path: module.clone(),
                    });
                }
            }
            let pin = match spec.needs_token_pin() {
                true => Some(zeroize::Zeroizing::new(
                    std::env::var("SSCARD_PKCS11_PIN").map_err(|_| UnifiedError::NoTokenPin)?,
                )),
                false => None,
            };
            Ok(keys::open(
                &spec,
                &Trace::off(),
                pin.as_deref().map(String::as_str),
            )?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard_core::hexfmt::parse_hex;

    #[test]
    fn a_missing_pkcs11_module_is_named_before_the_pin() {
        let cfg = Config {
            keys: Some("pkcs11:/nonexistent/libsofthsm2.so:sscard".parse().unwrap()),
            ..Config::default()
        };
        let e = key_source(&cfg, None).err().unwrap();
        assert_eq!(
            e.to_string(),
            "the PKCS#11 module /nonexistent/libsofthsm2.so does not exist (keys = \"pkcs11:MODULE:TOKEN-LABEL\" in the configuration)"
        );
    }

    #[test]
    fn itype_orders_the_search() {
        use Interface::*;
        assert_eq!(search_order(1).unwrap(), &[Contact]);
        assert_eq!(search_order(2).unwrap(), &[Contactless]);
        assert_eq!(search_order(3).unwrap(), &[Contact, Contactless]);
        assert_eq!(search_order(4).unwrap(), &[Contactless, Contact]);
        for bad in [0, 5, -1, i32::MAX] {
            assert!(matches!(search_order(bad), Err(UnifiedError::BadType(n)) if n == bad));
        }
    }

    #[test]
    fn contactless_by_atr_or_name() {
        // PC/SC part 3 pseudo-ATR of an ISO 14443-4 card (historical bytes from ATS).
        let picc = parse_hex("3B8880010000000000000000").unwrap();
        assert!(is_contactless_atr(&picc));
        assert!(is_contactless_atr(
            &parse_hex("3B8F8001804F0CA000000306").unwrap()
        ));
        // The model SSC (TD1 = 01) and PSAM are contact cards.
        assert!(!is_contactless_atr(
            &parse_hex("3B880153534341524430319C").unwrap()
        ));
        assert!(!is_contactless_atr(
            &parse_hex("3B6800005053414D2D535331").unwrap()
        ));
        assert!(!is_contactless_atr(&[0x3B, 0x88]));
        assert_eq!(
            judge(
                "Virtual PCD 00 00",
                &parse_hex("3B880153534341524430319C").unwrap()
            ),
            Interface::Contact
        );
        assert_eq!(judge("Virtual PCD 00 00", &picc), Interface::Contactless);
        assert_eq!(
            judge(
                "ACS ACR1252 Dual Reader [ACR1252 Dual Reader PICC] 00 00",
                &[0x3B]
            ),
            Interface::Contactless
        );
        assert_eq!(
            judge(
                "HID OMNIKEY 5022 Smart Card Reader [Contactless] 00 00",
                &[]
            ),
            Interface::Contactless
        );
        assert_eq!(
            judge(
                "ACS ACR1252 Dual Reader [ACR1252 Dual Reader SAM] 00 01",
                &[0x3B]
            ),
            Interface::Contact
        );
    }
}
