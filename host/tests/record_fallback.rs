//! A card without "P1 to last" READ RECORDS (answering 6A86) still gives the basic info, record
//! by record: the session falls back once and remembers it.

use sscard::keys::SoftKeys;
use sscard::ssc::Session;
use sscard::Connection;
use sscard_core::card::Card;
use sscard_core::crypto::Algorithm;
use sscard_model::card::shared;
use sscard_transport::InProcess;

/// Refuses READ RECORD with P2 mode 5 (P1 to last) the way older cards do.
struct NoMultiRead {
    inner: Box<dyn Card>,
    answer: [u8; 2],
}

impl Card for NoMultiRead {
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        if apdu.len() >= 4 && apdu[1] == 0xB2 && apdu[3] & 0x07 == 0x05 {
            return Some(self.answer.to_vec());
        }
        self.inner.transmit(apdu)
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn reset(&mut self) {
        self.inner.reset()
    }
}

#[test]
fn falls_back_to_record_by_record() {
    for (alg, multi, single) in [(Algorithm::Tdes, 4, 19), (Algorithm::Sm4, 6, 21)] {
        let mut keys = SoftKeys::test_set();
        let (ssc, _) = sscard_model::test_pair(alg);
        let mut t = Connection::new(InProcess::new(shared(ssc), "model"));
        let fast = Session::open(&mut t.transaction().unwrap(), &mut keys)
            .unwrap()
            .read_basic_info()
            .unwrap();
        assert_eq!(fast.apdus, multi);
        for answer in [[0x6A, 0x86], [0x6A, 0x81]] {
            let (ssc, _) = sscard_model::test_pair(alg);
            let mut t = Connection::new(InProcess::new(
                shared(NoMultiRead {
                    inner: Box::new(ssc),
                    answer,
                }),
                "no multi-read",
            ));
            let slow = Session::open(&mut t.transaction().unwrap(), &mut keys)
                .unwrap()
                .read_basic_info()
                .unwrap();
            assert_eq!(slow.card, fast.card);
            assert_eq!(slow.holder, fast.holder);
            // SELECT, one refused READ RECORDS, EF05 (7 records + the 6A83 that ends it), INTERNAL
            // AUTHENTICATE (SM4: GET CHALLENGE + EXTERNAL AUTHENTICATE) and EF06
            // (7 + 1) record by record, without trying READ RECORDS again for EF06.
            assert_eq!(slow.apdus, single, "{alg:?}");
        }
    }
}
