//! A buggy or hostile card must not crash, hang or mislead the host: a transport that mutates
//! the model's responses (wrong lengths, wrong tags, truncated TLV, endless 61xx, random status
//! words, non-GBK names, impossible dates) drives every flow; no panic, every flow ends, and
//! every field reported as valid re-validates.

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
use sscard_transport::InProcess;
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
