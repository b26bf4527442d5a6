//! The personalisation of one card is the largest legitimate flow: it fixes the default
//! transmit budget (docs/budget.md). Against the model it uses 60 APDUs, a quarter of the
//! default; against a card that sends every answer one byte per `61xx` it stops at the budget
//! with a typed error, never issued.

use sscard::keys::SoftKeys;
use sscard::ssc::{Session, SscError};
use sscard::Connection;
use sscard_core::card::Card;
use sscard_core::crypto::Algorithm;
use sscard_core::profile::holder::Holder;
use sscard_model::build::{blank_ssc, SAMPLE_CARD_ID};
use sscard_model::card::shared;
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_perso::card::{accept, identify, personalise, PersoError};
use sscard_transport::{Budget, InProcess, Spent, TransportError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A card that answers every command with data by `6101` and then one byte per GET RESPONSE.
struct DripFed {
    inner: Ssc,
    queue: VecDeque<u8>,
    last_sw: [u8; 2],
    transmits: Arc<AtomicU64>,
}

impl Card for DripFed {
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn reset(&mut self) {
        self.queue.clear();
        self.inner.reset()
    }
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        self.transmits.fetch_add(1, Ordering::Relaxed);
        if apdu.get(..2) == Some(&[0x00, 0xC0]) {
            if let Some(b) = self.queue.pop_front() {
                let sw = if self.queue.is_empty() {
                    self.last_sw
                } else {
                    [0x61, 0x01]
                };
                return Some(vec![b, sw[0], sw[1]]);
            }
        }
        let r = self.inner.transmit(apdu)?;
        if r.len() <= 2 {
            return Some(r);
        }
        let (data, sw) = r.split_at(r.len() - 2);
        self.queue = data.iter().copied().collect();
        self.last_sw = [sw[0], sw[1]];
        Some(vec![0x61, 0x01])
    }
}

fn blank_card(alg: Algorithm) -> Ssc {
    Ssc::from_image(blank_ssc(alg, &SAMPLE_CARD_ID), Store::in_memory()).unwrap()
}

/// Identification, personalisation and the acceptance test in one transaction, as a station
/// runs them; what the transaction spent.
fn personalise_one(conn: &mut Connection) -> (Spent, Result<(), PersoError>) {
    let mut keys = SoftKeys::test_set();
    let mut tx = conn.transaction().unwrap();
    let result = (|| {
        let mut s = Session::open(&mut tx, &mut keys)?;
        let id = s.read_identification()?;
        let (_, mut s) = personalise(s, id, &Holder::sample(), "110100", true, &mut |_| Ok(()))?;
        accept(&mut s, &Holder::sample())
    })();
    (tx.spent(), result)
}

#[test]
fn personalisation_uses_a_quarter_of_the_default_budget() {
    for (alg, bytes) in [(Algorithm::Tdes, 1401), (Algorithm::Sm4, 1497)] {
        let mut conn = Connection::new(InProcess::new(shared(blank_card(alg)), "blank"));
        let (spent, result) = personalise_one(&mut conn);
        result.unwrap();
        assert_eq!(spent, Spent { apdus: 60, bytes }, "{alg:?}");
        assert!(spent.apdus * 4 <= Budget::DEFAULT.apdus);
        assert!(spent.bytes * 8 <= Budget::DEFAULT.bytes);
    }
}

/// A blank card of `alg` behind [`DripFed`], and its transmit counter.
fn drip_fed(alg: Algorithm) -> (sscard_core::card::SharedCard, Arc<AtomicU64>) {
    let transmits = Arc::new(AtomicU64::new(0));
    let card = shared(DripFed {
        inner: blank_card(alg),
        queue: VecDeque::new(),
        last_sw: [0x90, 0x00],
        transmits: transmits.clone(),
    });
    (card, transmits)
}

#[test]
fn a_card_that_drips_its_answers_stops_personalisation_at_the_budget() {
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        let (card, transmits) = drip_fed(alg);
        let mut conn = Connection::new(InProcess::new(card, "drip")).with_budget(Budget::DEFAULT);
        let (spent, result) = personalise_one(&mut conn);
        println!(
            "{alg:?} personalisation against a drip-fed card: {} transmits, {} bytes",
            spent.apdus, spent.bytes
        );
        assert_eq!(transmits.load(Ordering::Relaxed), 256, "{alg:?}");
        assert_eq!(spent.apdus, 256);
        match result {
            Err(PersoError::Card(SscError::Transport(TransportError::BudgetExceeded {
                apdus: 256,
                limit,
                ..
            }))) => assert_eq!(limit, Budget::DEFAULT),
            other => panic!("{alg:?}: {other:?}"),
        }
        conn.set_budget(Budget::UNLIMITED);
        let (_, blank) =
            identify(&mut conn.transaction().unwrap(), &mut SoftKeys::test_set()).unwrap();
        assert!(blank, "{alg:?}: stopped before END PERSONALISATION");
        // Without a budget the same card is personalised, in many more transmits.
        let (card, _) = drip_fed(alg);
        let mut conn = Connection::new(InProcess::new(card, "drip")).with_budget(Budget::UNLIMITED);
        let (spent, result) = personalise_one(&mut conn);
        println!(
            "{alg:?} … without a budget: {} transmits, {} bytes ({result:?})",
            spent.apdus, spent.bytes
        );
        assert!(spent.apdus > 256, "{alg:?}: {spent:?}");
    }
}
