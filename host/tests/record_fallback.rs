//! A card without "P1 to last" READ RECORDS (answering 6A86) still gives the basic info, record
//! by record: the session falls back once and remembers it.

use sscard::channel::Channel;
use sscard::keys::SoftKeys;
use sscard::ssc::Session;
use sscard::transport::{InProcess, Transport, TransportError};
use sscard_core::crypto::Algorithm;
use sscard_model::card::shared;

/// Refuses READ RECORD with P2 mode 5 (P1 to last) the way older cards do.
struct NoMultiRead {
    inner: InProcess,
    answer: [u8; 2],
}

impl Transport for NoMultiRead {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if apdu.len() >= 4 && apdu[1] == 0xB2 && apdu[3] & 0x07 == 0x05 {
            return Ok(self.answer.to_vec());
        }
        self.inner.transmit(apdu)
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn name(&self) -> String {
        "no multi-read".into()
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        self.inner.reset()
    }
    fn with_transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Transport) -> Result<(), TransportError>,
    ) -> Result<(), TransportError> {
        f(self)
    }
}

#[test]
fn falls_back_to_record_by_record() {
    for (alg, multi, single) in [(Algorithm::Tdes, 4, 19), (Algorithm::Sm4, 6, 21)] {
        let mut keys = SoftKeys::test_set();
        let (ssc, _) = sscard_model::test_pair(alg);
        let mut t = InProcess::new(shared(ssc), "model");
        let fast = Session::open(Channel::new(&mut t), &mut keys)
            .unwrap()
            .read_basic_info()
            .unwrap();
        assert_eq!(fast.apdus, multi);
        for answer in [[0x6A, 0x86], [0x6A, 0x81]] {
            let (ssc, _) = sscard_model::test_pair(alg);
            let mut t = NoMultiRead {
                inner: InProcess::new(shared(ssc), "model"),
                answer,
            };
            let slow = Session::open(Channel::new(&mut t), &mut keys)
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
