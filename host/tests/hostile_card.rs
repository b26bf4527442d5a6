//! A buggy or hostile card must not crash, hang or mislead the host: a transport that mutates
//! the model's responses (wrong lengths, wrong tags, truncated TLV, endless 61xx, random status
//! words, non-GBK names, impossible dates) drives every flow; no panic, every flow ends, and
//! every field reported as valid re-validates. Worst-case cards (records one byte per `61xx`,
//! `6Cxx` before everything, floods) show that no flow passes its transmit budget.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sscard::keys::SoftKeys;
use sscard::ssc::{BasicInfo, Pin, Session};
use sscard::Connection;
use sscard_core::card::Card;
use sscard_core::crypto::Algorithm;
use sscard_core::profile::files::{by_name, ef06};
use sscard_core::profile::{card_number_check, citizen_id_check};
use sscard_core::tlv::Record;
use sscard_model::card::shared;
use sscard_transport::{Budget, InProcess, Spent, TransportError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The model card behind a layer that mutates its answers.
struct Hostile {
    inner: Box<dyn Card>,
    rng: StdRng,
    /// Probability that a response is mutated.
    rate: f64,
    endless: Arc<AtomicBool>,
}

impl Hostile {
    fn mutate(&mut self, mut r: Vec<u8>) -> Vec<u8> {
        if self.endless.load(Ordering::Relaxed) {
            return vec![0x61, 0x10];
        }
        if !self.rng.gen_bool(self.rate) {
            return r;
        }
        match self.rng.gen_range(0..9) {
            0 => r.truncate(self.rng.gen_range(0..=r.len())),
            1 if !r.is_empty() => {
                let i = self.rng.gen_range(0..r.len());
                r[i] = self.rng.gen();
            }
            2 => {
                let n = r.len();
                let extra: Vec<u8> = (0..self.rng.gen_range(1..40))
                    .map(|_| self.rng.gen())
                    .collect();
                r.splice(n.saturating_sub(2)..n.saturating_sub(2), extra);
            }
            3 => r = vec![0x61, self.rng.gen()],
            4 => r = vec![0x6C, self.rng.gen()],
            5 => {
                let n = r.len();
                if n >= 2 {
                    r[n - 2] = self.rng.gen();
                    r[n - 1] = self.rng.gen();
                }
            }
            6 if r.len() > 4 => {
                // Break a TLV length or tag inside the data.
                let i = self.rng.gen_range(0..r.len() - 2);
                r[i] ^= 1 << self.rng.gen_range(0..8);
            }
            7 if r.len() > 8 => {
                // Non-GBK bytes or impossible BCD dates inside the data.
                let i = self.rng.gen_range(0..r.len() - 4);
                r[i] = 0xFF;
                r[i + 1] = 0x3A;
            }
            _ => {
                r = (0..self.rng.gen_range(0..20))
                    .map(|_| self.rng.gen())
                    .collect()
            }
        }
        r
    }
}

impl Card for Hostile {
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        let r = self.inner.transmit(apdu)?;
        Some(self.mutate(r))
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn reset(&mut self) {
        self.inner.reset()
    }
}

fn valid_date(d: &str) -> bool {
    d.is_empty() || (d.len() == 10 && d.as_bytes()[4] == b'-' && d.as_bytes()[7] == b'-')
}

/// Every field of a successful result re-validates on its own.
fn check(info: &BasicInfo) {
    let c = &info.card;
    assert!(
        c.card_number.is_empty()
            || card_number_check(&c.card_number[..8]) == c.card_number.chars().nth(8),
        "{c:?}"
    );
    assert!(
        valid_date(&c.issue_date) && valid_date(&c.expiry_date),
        "{c:?}"
    );
    assert!(matches!(c.spec_version.as_str(), "2.00" | "3.00"), "{c:?}");
    let h = &info.holder;
    assert!(
        h.ssn.is_empty() || citizen_id_check(&h.ssn[..17]) == h.ssn.chars().nth(17),
        "{h:?}"
    );
    assert!(matches!(h.gender.as_str(), "" | "1" | "2" | "9"), "{h:?}");
    assert!(valid_date(&h.birth_date), "{h:?}");
    assert!(
        !h.name.chars().any(|ch| ch.is_control() || ch == '\u{FFFD}'),
        "{h:?}"
    );
    assert!(
        h.nation
            .bytes()
            .chain(h.birthplace.bytes())
            .all(|b| b.is_ascii_digit()),
        "{h:?}"
    );
}

fn drive(alg: Algorithm, seed: u64, flows: usize) -> (usize, usize) {
    let (ssc, _) = sscard_model::test_pair(alg);
    let endless = Arc::new(AtomicBool::new(false));
    let card = shared(Hostile {
        inner: Box::new(ssc),
        rng: StdRng::seed_from_u64(seed),
        rate: 0.15,
        endless: endless.clone(),
    });
    let mut t = Connection::new(InProcess::new(card.clone(), "hostile"));
    let mut keys = SoftKeys::test_set();
    let (mut ok, mut failed) = (0, 0);
    let pin = Pin::new("123456").unwrap();
    let new_pin = Pin::new("802417").unwrap();
    for i in 0..flows {
        endless.store(i % 1000 == 999, Ordering::Relaxed);
        card.lock().unwrap().reset();
        let result = (|| -> Result<(), sscard::ssc::SscError> {
            let mut tx = t.transaction()?;
            let mut s = Session::open(&mut tx, &mut keys)?;
            match i % 6 {
                0 | 1 => check(&s.read_basic_info()?),
                2 => {
                    s.verify_pin(&pin)?;
                }
                3 => {
                    s.change_pin(&pin, &new_pin)?;
                    s.change_pin(&new_pin, &pin)?;
                }
                4 => s.update_record(ef06(), 4, &Record::new(0x0A, vec![b'1']).unwrap())?,
                _ => {
                    s.unblock_pin()?;
                    s.open_local()?;
                    s.read_records(by_name("DF01/EF01").unwrap())?;
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    (ok, failed)
}

#[test]
fn a_million_flows_against_a_hostile_card() {
    let flows = std::env::var("SSCARD_HOSTILE_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250_000);
    let mut total = 0;
    for (seed, alg) in [
        (1, Algorithm::Tdes),
        (2, Algorithm::Sm4),
        (3, Algorithm::Tdes),
        (4, Algorithm::Sm4),
    ] {
        let (ok, failed) = drive(alg, seed, flows);
        assert!(
            ok > flows / 20 && failed > flows / 20,
            "{alg:?}: {ok} ok, {failed} failed — the mutation rate misses one side"
        );
        total += ok + failed;
    }
    assert_eq!(total, 4 * flows);
}

/// How a worst-case card keeps the host talking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Worst {
    /// The card of issue 15: `6A86` to READ RECORDS, so the host reads record by record, and
    /// every READ RECORD (whatever its number: never `6A83`) answers a full 255-byte record one
    /// byte per `61xx`.
    RecordsDripFed,
    /// `6A86` to READ RECORDS; every answer with data (the model's own) comes one byte per
    /// `61xx`.
    DripFed,
    /// As [`Worst::RecordsDripFed`], and every command and GET RESPONSE is first answered
    /// `6Cxx`, so each takes two exchanges.
    WrongLeRecordsDripFed,
    /// Every command answered with 256 junk bytes and `6100`, forever: the most bytes.
    Flood,
    /// `6110` with no data, forever.
    Endless61,
}

const WORST: [Worst; 5] = [
    Worst::RecordsDripFed,
    Worst::DripFed,
    Worst::WrongLeRecordsDripFed,
    Worst::Flood,
    Worst::Endless61,
];

/// The model card behind a worst-case layer that counts what reaches the card.
struct WorstCard {
    inner: Box<dyn Card>,
    mode: Worst,
    /// Data still to drip, and the status word that ends it.
    queue: std::collections::VecDeque<u8>,
    last_sw: [u8; 2],
    /// The command a `6Cxx` answered, carried out when it comes again.
    refused: Option<Vec<u8>>,
    count: Arc<Counter>,
}

#[derive(Default)]
struct Counter {
    transmits: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

impl Counter {
    fn take(&self) -> (u64, u64) {
        (
            self.transmits.swap(0, Ordering::Relaxed),
            self.bytes.swap(0, Ordering::Relaxed),
        )
    }
}

/// A valid 255-byte record: tag, length 253, value.
fn full_record() -> Vec<u8> {
    let mut r = vec![0x01, 253];
    r.resize(255, 0x31);
    r
}

impl WorstCard {
    fn answer(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        let get_response = apdu.len() >= 2 && apdu[0] == 0x00 && apdu[1] == 0xC0;
        let wrong_le = self.mode == Worst::WrongLeRecordsDripFed;
        if wrong_le && self.refused.is_none() {
            self.refused = Some(apdu.to_vec());
            return Some(vec![0x6C, if get_response { 0x01 } else { 0x00 }]);
        }
        let apdu = match self.refused.take() {
            Some(original) if wrong_le => original,
            _ => apdu.to_vec(),
        };
        match self.mode {
            Worst::Flood => return Some([vec![0xEE; 256], vec![0x61, 0x00]].concat()),
            Worst::Endless61 => return Some(vec![0x61, 0x10]),
            _ => {}
        }
        if get_response {
            if let Some(b) = self.queue.pop_front() {
                let sw = if self.queue.is_empty() {
                    self.last_sw
                } else {
                    [0x61, 0x01]
                };
                return Some(vec![b, sw[0], sw[1]]);
            }
        }
        let read_record = apdu.len() >= 4 && apdu[1] == 0xB2;
        let resp = if read_record && apdu[3] & 0x07 == 0x05 {
            vec![0x6A, 0x86]
        } else if read_record && self.mode != Worst::DripFed {
            [full_record(), vec![0x90, 0x00]].concat()
        } else {
            self.inner.transmit(&apdu)?
        };
        if resp.len() <= 2 {
            return Some(resp);
        }
        let (data, sw) = resp.split_at(resp.len() - 2);
        let drip = self.mode == Worst::DripFed || read_record;
        if !drip {
            return Some(resp);
        }
        self.queue = data.iter().copied().collect();
        self.last_sw = [sw[0], sw[1]];
        Some(vec![0x61, 0x01])
    }
}

impl Card for WorstCard {
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        let r = self.answer(apdu)?;
        self.count.transmits.fetch_add(1, Ordering::Relaxed);
        self.count
            .bytes
            .fetch_add((apdu.len() + r.len()) as u64, Ordering::Relaxed);
        Some(r)
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn reset(&mut self) {
        self.queue.clear();
        self.refused = None;
        self.inner.reset()
    }
}

/// The host flows of the unified interface, each one transaction.
const FLOWS: [&str; 8] = [
    "info",
    "read EF05",
    "read EF06",
    "read DF01/EF01",
    "write EF06",
    "PIN verify",
    "PIN change",
    "PIN unblock",
];

fn run_flow(flow: &str, s: &mut Session<'_, '_>) -> Result<(), sscard::ssc::SscError> {
    let pin = Pin::new("123456").unwrap();
    match flow {
        "info" => drop(s.read_basic_info()?),
        "read EF05" | "read EF06" | "read DF01/EF01" => {
            let file = by_name(flow.strip_prefix("read ").unwrap()).unwrap();
            drop(s.read_file(file, None)?)
        }
        "write EF06" => s.update_record(ef06(), 4, &Record::new(0x0A, vec![b'1']).unwrap())?,
        "PIN verify" => drop(s.verify_pin(&pin)?),
        "PIN change" => s.change_pin(&pin, &Pin::new("802417").unwrap())?,
        "PIN unblock" => s.unblock_pin()?,
        _ => unreachable!("{flow}"),
    }
    Ok(())
}

/// Transmits and bytes that reach the card in one `flow` against `mode`, under `budget`, and
/// the flow's error.
fn worst_case(
    alg: Algorithm,
    mode: Worst,
    flow: &str,
    budget: Budget,
) -> (u64, u64, Option<sscard::ssc::SscError>) {
    let (ssc, _) = sscard_model::test_pair(alg);
    let count = Arc::new(Counter::default());
    let card = shared(WorstCard {
        inner: Box::new(ssc),
        mode,
        queue: Default::default(),
        last_sw: [0x90, 0x00],
        refused: None,
        count: count.clone(),
    });
    let mut conn = Connection::new(InProcess::new(card, "worst")).with_budget(budget);
    let mut keys = SoftKeys::test_set();
    let result = (|| {
        let mut tx = conn.transaction()?;
        let mut s = Session::open(&mut tx, &mut keys)?;
        run_flow(flow, &mut s)
    })();
    let (transmits, bytes) = count.take();
    (transmits, bytes, result.err())
}

/// The same flows against the genuine model: what a legitimate flow uses.
fn legitimate(alg: Algorithm, flow: &str) -> Spent {
    let (ssc, _) = sscard_model::test_pair(alg);
    let mut conn = Connection::new(InProcess::new(shared(ssc), "model"));
    let mut keys = SoftKeys::test_set();
    let mut tx = conn.transaction().unwrap();
    let mut s = Session::open(&mut tx, &mut keys).unwrap();
    run_flow(flow, &mut s).unwrap_or_else(|e| panic!("{alg:?} {flow}: {e}"));
    drop(s);
    tx.spent()
}

/// Issue 15: without a budget, a card answering `6A86` to READ RECORDS and one byte per
/// `61xx` forces 65 026 transmits for one file read. With the default budget no flow passes
/// it: worst cases per flow are printed (`--nocapture`), before (no budget) → after.
#[test]
fn a_hostile_card_cannot_make_a_flow_exceed_its_budget() {
    let budget = Budget::DEFAULT;
    // A response that arrived is never thrown away: the bytes overshoot by at most one.
    let max_bytes = budget.bytes + 256 + 2 + 5;
    println!(
        "{:<4} {:<15} {:>17} {:>26} {:>21}   budget {budget}",
        "alg", "flow", "legitimate", "worst without budget", "worst with budget"
    );
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        for flow in FLOWS {
            let legit = legitimate(alg, flow);
            assert!(
                legit.apdus * 4 <= budget.apdus && legit.bytes * 8 <= budget.bytes,
                "{alg:?} {flow}: {legit:?} leaves less than the documented margin"
            );
            // The most transmits (and the card that forced them) and the most bytes.
            let (mut before, mut after) = ((0, 0, Worst::Flood), (0, 0, Worst::Flood));
            for mode in WORST {
                let (t, b, _) = worst_case(alg, mode, flow, Budget::UNLIMITED);
                before = (
                    before.0.max(t),
                    before.1.max(b),
                    if t > before.0 { mode } else { before.2 },
                );
                let (t, b, err) = worst_case(alg, mode, flow, budget);
                assert!(
                    t <= budget.apdus && b <= max_bytes,
                    "{alg:?} {flow} {mode:?}: {t} transmits, {b} bytes"
                );
                if t == budget.apdus || b > budget.bytes - 263 {
                    assert!(
                        matches!(
                            err,
                            Some(sscard::ssc::SscError::Transport(
                                TransportError::BudgetExceeded { .. }
                            ))
                        ),
                        "{alg:?} {flow} {mode:?}: {err:?}"
                    );
                }
                after = (
                    after.0.max(t),
                    after.1.max(b),
                    if t > after.0 { mode } else { after.2 },
                );
            }
            println!(
                "{:<4} {:<15} {:>17} {:>26} {:>21}   (most transmits: {:?} → {:?})",
                alg.name(),
                flow,
                format!("{} APDUs {} B", legit.apdus, legit.bytes),
                format!("{} APDUs {} B", before.0, before.1),
                format!("{} APDUs {} B", after.0, after.1),
                before.2,
                after.2
            );
        }
    }
}

/// Transmits that reach a worst-case PSAM (key source of a genuine card) in one `flow`, with
/// `budget` on the PSAM's connection: its opening and each DES INIT + DES CRYPT pair are
/// transactions of their own.
fn worst_psam(alg: Algorithm, mode: Worst, flow: &str, budget: Budget) -> u64 {
    let (ssc, psam) = sscard_model::test_pair(alg);
    let count = Arc::new(Counter::default());
    let psam = shared(WorstCard {
        inner: Box::new(psam),
        mode,
        queue: Default::default(),
        last_sw: [0x90, 0x00],
        refused: None,
        count: count.clone(),
    });
    let psam_conn = Connection::new(InProcess::new(psam, "worst psam")).with_budget(budget);
    let mut conn = Connection::new(InProcess::new(shared(ssc), "model"));
    let _ = (|| -> Result<(), sscard::ssc::SscError> {
        let mut keys = sscard::keys::PsamKeys::open(psam_conn)?;
        let mut tx = conn.transaction()?;
        let mut s = Session::open(&mut tx, &mut keys)?;
        run_flow(flow, &mut s)
    })();
    count.take().0
}

/// A hostile PSAM cannot hold a flow either: each of its transactions has the budget, and the
/// first that passes it ends the flow.
#[test]
fn a_hostile_psam_cannot_hold_a_flow() {
    println!(
        "{:<4} {:<15} {:>22} {:>19}",
        "alg", "flow", "PSAM without budget", "PSAM with budget"
    );
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        for flow in FLOWS {
            let (mut before, mut after) = (0, 0);
            for mode in WORST {
                before = before.max(worst_psam(alg, mode, flow, Budget::UNLIMITED));
                let t = worst_psam(alg, mode, flow, Budget::DEFAULT);
                // The opening, and one more transaction that passes the budget at most.
                assert!(
                    t <= 2 * Budget::DEFAULT.apdus,
                    "{alg:?} {flow} {mode:?}: {t}"
                );
                after = after.max(t);
            }
            println!(
                "{:<4} {:<15} {:>22} {:>19}",
                alg.name(),
                flow,
                before,
                after
            );
        }
    }
}

/// The figure of issue 15, reproduced: one read of EF05 costs 65 026 transmits without a
/// budget (SELECT, the refused READ RECORDS, 254 records × (READ RECORD + 255 GET RESPONSE)),
/// and ends with a typed error after 256 with the default one.
#[test]
fn the_issue_15_card_reads_one_file_in_256_transmits_not_65_026() {
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        let (t, b, err) = worst_case(alg, Worst::RecordsDripFed, "read EF05", Budget::UNLIMITED);
        // 254 "records" of 255 bytes: the read even succeeds, after half a megabyte.
        assert_eq!((t, b, err), (65_026, 519_998, None), "{alg:?}");
        let (t, _, err) = worst_case(alg, Worst::RecordsDripFed, "read EF05", Budget::DEFAULT);
        assert_eq!(t, 256, "{alg:?}");
        let Some(sscard::ssc::SscError::Transport(TransportError::BudgetExceeded {
            command,
            apdus,
            limit,
            ..
        })) = err
        else {
            panic!("{alg:?}: {err:?}")
        };
        assert_eq!(
            (command.as_str(), apdus, limit),
            ("00C00000", 256, Budget::DEFAULT)
        );
    }
}
