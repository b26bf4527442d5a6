//! The mutating commands of the social security card as values, with what the profile says
//! each writes to card memory, for the tearing campaigns (`tests/tearing.rs`,
//! `tests/tearing_soak.rs`).
//!
//! The write layout is written here from the profile's rule, not read from the model: a check
//! under a try counter decrements the counter and persists it **before** comparing, and a
//! match restores it in a second write; the command's own effect (a record, a key, the PIN,
//! the life cycle) is one more write. The campaigns check the model writes exactly this, and
//! keep a [`TryLedger`] of every counter from these rules alone to compare with the image on
//! disk after each cut.

use super::{challenge, key, select_ssse, try_tx, write_key_data};
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::Kid;
use sscard_model::build::{self, Holder, SAMPLE_CARD_ID};
use sscard_model::image::Memory;
use sscard_model::memory::{kid_name, LifeCycle, SscMemory};
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_model::Image;
use std::collections::BTreeMap;

/// A record or binary the stations write, with the value's fixed length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// EF05 record 2, card type (national, UK_N).
    Ef05CardType,
    /// EF06 record 4, gender (national, UK_N).
    Ef06Gender,
    /// EF07 record 1, pension (national, UK_N).
    Ef07Pension,
    /// DF01/EF01 record 1 (local, UK_L).
    Df01Record,
    /// DF01/EF02 at an offset (local, UK_L).
    Df01Binary { offset: u8 },
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::Ef05CardType,
        Target::Ef06Gender,
        Target::Ef07Pension,
        Target::Df01Record,
        Target::Df01Binary { offset: 0x10 },
    ];

    /// Header and (for records) tag of the UPDATE.
    fn header_and_tag(self) -> (String, Option<u8>) {
        match self {
            Target::Ef05CardType => ("04DC022C".into(), Some(0x02)),
            Target::Ef06Gender => ("04DC0434".into(), Some(0x0A)),
            Target::Ef07Pension => ("04DC013C".into(), Some(0x20)),
            Target::Df01Record => ("04DC010C".into(), Some(0x40)),
            Target::Df01Binary { offset } => (format!("04D682{offset:02X}"), None),
        }
    }

    /// The file and record, without the offset of a binary write.
    pub fn name(self) -> &'static str {
        match self {
            Target::Ef05CardType => "EF05 card type",
            Target::Ef06Gender => "EF06 gender",
            Target::Ef07Pension => "EF07 pension",
            Target::Df01Record => "DF01/EF01 record 1",
            Target::Df01Binary { .. } => "DF01/EF02 binary",
        }
    }

    /// How many value bytes the target takes.
    pub fn len(self) -> usize {
        match self {
            Target::Ef05CardType | Target::Ef06Gender | Target::Ef07Pension => 1,
            Target::Df01Record | Target::Df01Binary { .. } => 8,
        }
    }

    fn in_df01(self) -> bool {
        matches!(self, Target::Df01Record | Target::Df01Binary { .. })
    }

    /// The key of line protection: TK while in PERSONALISATION, else the file's update key.
    fn mac_key(self, mem: &SscMemory) -> Kid {
        match (mem.life_cycle, self.in_df01()) {
            (LifeCycle::Personalisation, _) => Kid::Tk,
            (_, true) => Kid::UkL,
            (_, false) => Kid::UkN,
        }
    }
}

/// A mutating command of the card, with its arguments. `good`/`right` false sends a wrong MAC,
/// cryptogram or PIN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Verify {
        right: bool,
    },
    ChangePin {
        right: bool,
        new: String,
    },
    ReloadPin {
        good: bool,
        new: String,
    },
    UnblockPin {
        good: bool,
    },
    /// RKSSSE in SSSE, EAK_L in DF01, TK (in PERSONALISATION) in SSSE.
    ExtAuth {
        kid: Kid,
        right: bool,
    },
    Update {
        target: Target,
        value: Vec<u8>,
        good: bool,
    },
    WriteKey {
        kid: Kid,
    },
    EndPerso {
        good: bool,
    },
}

/// One persistent write of a command, as the profile lays them out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// The try counter of the key, decremented before the comparison.
    Decrement(Kid),
    /// The try counter restored after a match.
    Restore(Kid),
    /// What the command is for: a record, a key, the PIN, the life cycle.
    Effect,
}

/// The PIN's digits as the card holds them (ASCII).
pub fn pin_of(mem: &SscMemory) -> Option<String> {
    mem.key(Kid::Pin)
        .map(|s| String::from_utf8(s.value.0.clone()).expect("PIN digits"))
}

/// A wrong PIN of the same length: the last digit changed.
pub fn wrong_pin(pin: &str) -> String {
    let mut d = pin.as_bytes().to_vec();
    let last = d.len() - 1;
    d[last] = b'0' + (d[last] - b'0' + 1) % 10;
    String::from_utf8(d).expect("digits")
}

/// BCD of 2–6 digits, an odd count padded with `F`.
pub fn bcd(digits: &str) -> String {
    let mut s = digits.to_string();
    if s.len() % 2 == 1 {
        s.push('F');
    }
    s
}

fn sw_of(reply: String) -> String {
    reply[reply.len() - 4..].to_string()
}

fn select_df01(card: &mut Ssc) -> Option<()> {
    let sw = sw_of(select_ssse(card)?);
    assert_eq!(sw, "9000", "select SSSE");
    assert_eq!(
        sw_of(try_tx(card, "00A4000002DF01")?),
        "9000",
        "select DF01"
    );
    Some(())
}

fn select_for(card: &mut Ssc, df01: bool) -> Option<()> {
    if df01 {
        select_df01(card)
    } else {
        assert_eq!(sw_of(select_ssse(card)?), "9000", "select SSSE");
        Some(())
    }
}

/// A command under a line-protection MAC with the test key `k`, the MAC spoilt when `!good`.
fn send_with_mac(
    card: &mut Ssc,
    alg: Algorithm,
    k: Kid,
    header: &str,
    data: &str,
    good: bool,
) -> Option<String> {
    let ch = challenge(card, 4)?;
    let data = parse_hex(data).expect("hex");
    let mut msg = parse_hex(header).expect("hex");
    msg.push(data.len() as u8 + 4);
    msg.extend_from_slice(&data);
    let mut mac = alg.line_mac(&key(alg, k), &ch, &msg).expect("MAC");
    if !good {
        mac[0] ^= 0x01;
    }
    try_tx(card, &format!("{}{}", to_hex(&msg), to_hex(&mac))).map(sw_of)
}

/// Whether the key of a WRITE KEY or EXTERNAL AUTHENTICATE lives in DF01.
fn kid_in_df01(kid: Kid) -> bool {
    matches!(kid, Kid::EakL | Kid::UkL)
}

impl Op {
    /// A short name for figures: the command and its case, without random values.
    pub fn label(&self) -> String {
        let rw = |b: bool, t: &str, f: &str| if b { t } else { f }.to_string();
        match self {
            Op::Verify { right } => format!("VERIFY {}", rw(*right, "right", "wrong")),
            Op::ChangePin { right, .. } => format!("CHANGE PIN {}", rw(*right, "right", "wrong")),
            Op::ReloadPin { good, .. } => format!("RELOAD PIN {}", rw(*good, "", "wrong MAC")),
            Op::UnblockPin { good } => format!("UNBLOCK PIN {}", rw(*good, "", "wrong MAC")),
            Op::ExtAuth { kid, right } => format!(
                "EXTERNAL AUTHENTICATE {kid:?} {}",
                rw(*right, "right", "wrong")
            ),
            Op::Update { target, good, .. } => {
                format!("UPDATE {} {}", target.name(), rw(*good, "", "wrong MAC"))
            }
            Op::WriteKey { kid } => format!("WRITE KEY {kid:?}"),
            Op::EndPerso { good } => format!("END PERSONALISATION {}", rw(*good, "", "wrong MAC")),
        }
        .trim_end()
        .to_string()
    }

    /// Sends the command (with the selections and the challenge it needs) and returns its
    /// status word; `None` when the card went mute (power cut).
    pub fn run(&self, card: &mut Ssc, alg: Algorithm) -> Option<String> {
        let mem = card.memory().clone();
        match self {
            Op::Verify { right } => {
                select_for(card, false)?;
                let pin = pin_of(&mem).expect("a PIN");
                let pin = if *right { pin } else { wrong_pin(&pin) };
                let b = bcd(&pin);
                try_tx(card, &format!("00200000{:02X}{b}", b.len() / 2)).map(sw_of)
            }
            Op::ChangePin { right, new } => {
                select_for(card, false)?;
                let pin = pin_of(&mem).expect("a PIN");
                let old = if *right { pin } else { wrong_pin(&pin) };
                let data = format!("{}FF{}", bcd(&old), bcd(new));
                try_tx(card, &format!("805E0100{:02X}{data}", data.len() / 2)).map(sw_of)
            }
            Op::ReloadPin { good, new } => {
                select_for(card, false)?;
                send_with_mac(card, alg, Kid::Rpk, "845E0000", &bcd(new), *good)
            }
            Op::UnblockPin { good } => {
                select_for(card, false)?;
                send_with_mac(card, alg, Kid::Upk, "84240001", "", *good)
            }
            Op::ExtAuth { kid, right } => {
                select_for(card, kid_in_df01(*kid))?;
                super::ext_auth(card, alg, *kid, *right)
            }
            Op::Update {
                target,
                value,
                good,
            } => {
                assert_eq!(value.len(), target.len(), "{target:?}");
                select_for(card, target.in_df01())?;
                let (header, tag) = target.header_and_tag();
                let data = match tag {
                    Some(tag) => format!("{tag:02X}{:02X}{}", value.len(), to_hex(value)),
                    None => to_hex(value),
                };
                send_with_mac(card, alg, target.mac_key(&mem), &header, &data, *good)
            }
            Op::WriteKey { kid } => {
                select_for(card, kid_in_df01(*kid))?;
                let header = format!("84D400{:02X}", kid.id());
                send_with_mac(
                    card,
                    alg,
                    Kid::Tk,
                    &header,
                    &write_key_data(alg, *kid),
                    true,
                )
            }
            Op::EndPerso { good } => {
                select_for(card, false)?;
                send_with_mac(card, alg, Kid::Tk, "84EE0000", "", *good)
            }
        }
    }

    /// The persistent writes the profile gives this command on a card with memory `mem`.
    pub fn writes(&self, mem: &SscMemory) -> Vec<Write> {
        let issued = mem.life_cycle == LifeCycle::Issued;
        let (mut writes, passed) = match self {
            Op::Verify { right } | Op::ChangePin { right, .. } => check(mem, Kid::Pin, *right),
            Op::ReloadPin { good, .. } => check(mem, Kid::Rpk, *good),
            Op::UnblockPin { good } => check(mem, Kid::Upk, *good),
            Op::ExtAuth { kid, .. } if *kid == Kid::Tk && issued => (vec![], false),
            Op::ExtAuth { kid, right } => check(mem, *kid, *right),
            Op::Update { target, good, .. } => check(mem, target.mac_key(mem), *good),
            Op::WriteKey { .. } if issued => (vec![], false),
            Op::WriteKey { .. } => check(mem, Kid::Tk, true),
            Op::EndPerso { .. } if issued || !complete(mem) => (vec![], false),
            Op::EndPerso { good } => check(mem, Kid::Tk, *good),
        };
        let has_effect = !matches!(self, Op::Verify { .. } | Op::ExtAuth { .. });
        if passed && has_effect {
            writes.push(Write::Effect);
        }
        writes
    }
}

/// Every card key and the PIN are loaded (END PERSONALISATION is possible).
fn complete(mem: &SscMemory) -> bool {
    Kid::CARD_KEYS
        .into_iter()
        .chain([Kid::Pin])
        .all(|k| mem.key(k).is_some())
}

/// A comparison under `kid`: its writes and whether it passes. A missing or blocked key is
/// never compared (no write); a key without a counter is compared without a write.
fn check(mem: &SscMemory, kid: Kid, right: bool) -> (Vec<Write>, bool) {
    match mem.key(kid) {
        None => (vec![], false),
        Some(slot) if slot.blocked() => (vec![], false),
        Some(slot) if slot.has_counter() && right => {
            (vec![Write::Decrement(kid), Write::Restore(kid)], true)
        }
        Some(slot) if slot.has_counter() => (vec![Write::Decrement(kid)], false),
        Some(_) => (vec![], right),
    }
}

/// Every try counter of a card, kept from the profile's rules alone: what the card on disk must
/// hold after any sequence of commands and cuts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TryLedger(BTreeMap<String, (u8, u8)>);

/// How a counter on disk differs from the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CounterMismatch {
    /// More tries than the rules allow: a try was given back.
    Restored { kid: String, disk: u8, ledger: u8 },
    /// Fewer tries, or a key missing or unexpected.
    Other {
        kid: String,
        disk: Option<u8>,
        ledger: Option<u8>,
    },
}

impl TryLedger {
    pub fn of(mem: &SscMemory) -> Self {
        Self(
            mem.keys
                .iter()
                .filter(|(_, s)| s.has_counter())
                .map(|(k, s)| (k.clone(), (s.tries_left, s.try_limit)))
                .collect(),
        )
    }

    /// Applies the writes of `op` that landed.
    pub fn apply(&mut self, op: &Op, landed: &[Write]) {
        for w in landed {
            match w {
                Write::Decrement(kid) => {
                    let e = self.0.get_mut(&kid_name(*kid)).expect("counted key");
                    e.0 = e.0.checked_sub(1).expect("never below 0");
                }
                Write::Restore(kid) => {
                    let e = self.0.get_mut(&kid_name(*kid)).expect("counted key");
                    e.0 = e.1;
                }
                Write::Effect => match op {
                    Op::ChangePin { .. } | Op::ReloadPin { .. } | Op::UnblockPin { .. } => {
                        if let Some(e) = self.0.get_mut(&kid_name(Kid::Pin)) {
                            e.0 = e.1;
                        }
                    }
                    Op::WriteKey { kid } => {
                        // write_key_data: 3 tries for the PIN, 5 for a key.
                        let limit = if *kid == Kid::Pin { 3 } else { 5 };
                        self.0.insert(kid_name(*kid), (limit, limit));
                    }
                    Op::EndPerso { .. } => {
                        self.0.remove(&kid_name(Kid::Tk));
                    }
                    _ => {}
                },
            }
        }
    }

    /// Where the counters of `mem` differ from the ledger.
    pub fn compare(&self, mem: &SscMemory) -> Vec<CounterMismatch> {
        let disk = TryLedger::of(mem).0;
        let mut out = Vec::new();
        for kid in self.0.keys().chain(disk.keys()) {
            let (d, l) = (disk.get(kid).map(|e| e.0), self.0.get(kid).map(|e| e.0));
            match (d, l) {
                (Some(d), Some(l)) if d == l => {}
                (Some(d), Some(l)) if d > l => out.push(CounterMismatch::Restored {
                    kid: kid.clone(),
                    disk: d,
                    ledger: l,
                }),
                _ => out.push(CounterMismatch::Other {
                    kid: kid.clone(),
                    disk: d,
                    ledger: l,
                }),
            }
        }
        out.dedup();
        out
    }
}

pub fn ssc_memory(image: &Image) -> &SscMemory {
    match &image.memory {
        Memory::Ssc(m) => m,
        Memory::Psam(_) => panic!("not an SSC image"),
    }
}

pub fn ssc_memory_mut(image: &mut Image) -> &mut SscMemory {
    match &mut image.memory {
        Memory::Ssc(m) => m,
        Memory::Psam(_) => panic!("not an SSC image"),
    }
}

/// The cards the campaigns start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A factory card: PERSONALISATION, TK only.
    Blank,
    /// Personalised by the model's builder: counters on RKSSSE, EAK_L and the PIN only.
    Built,
    /// Personalised through WRITE KEY and END PERSONALISATION: a counter on every key.
    Commands,
    /// Every key and the PIN written, END PERSONALISATION not yet sent.
    KeysLoaded,
}

impl Start {
    pub fn image(self, alg: Algorithm) -> Image {
        match self {
            Start::Blank => build::blank_ssc(alg, &SAMPLE_CARD_ID),
            Start::Built => {
                build::personalised_ssc(alg, &SAMPLE_CARD_ID, &Holder::sample(), "123456")
                    .expect("sample holder")
            }
            Start::KeysLoaded | Start::Commands => {
                let mut card = Ssc::from_image(Start::Blank.image(alg), Store::in_memory())
                    .expect("blank image");
                let mut ops: Vec<Op> = Kid::CARD_KEYS
                    .into_iter()
                    .chain([Kid::Pin])
                    .map(|kid| Op::WriteKey { kid })
                    .collect();
                if self == Start::Commands {
                    ops.push(Op::EndPerso { good: true });
                }
                for op in ops {
                    assert_eq!(op.run(&mut card, alg).as_deref(), Some("9000"), "{op:?}");
                }
                card.image()
            }
        }
    }
}
