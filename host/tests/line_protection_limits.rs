//! A line-protected write longer than one short APDU can carry is refused before anything is
//! sent: Lc counts the 4-byte MAC, so 251 data bytes are the most.

use sscard::keys::SoftKeys;
use sscard::ssc::{Session, SscError};
use sscard::Connection;
use sscard_core::crypto::Algorithm;
use sscard_core::profile::files::by_name;
use sscard_model::card::shared;
use sscard_transport::InProcess;

#[test]
fn data_with_its_mac_must_fit_one_short_apdu() {
    let mut keys = SoftKeys::test_set();
    let (ssc, _) = sscard_model::test_pair(Algorithm::Tdes);
    let mut t = Connection::new(InProcess::new(shared(ssc), "model"));
    let mut tx = t.transaction().unwrap();
    let mut s = Session::open(&mut tx, &mut keys).unwrap();
    let ef02 = by_name("DF01/EF02").unwrap();
    let before = s.apdu_count();
    match s.update_binary(ef02, 0, &[0x11; 252]) {
        Err(SscError::Command(m)) => assert_eq!(
            m.to_string(),
            "UPDATE BINARY: 252 data bytes and a 4-byte MAC do not fit one short APDU (at most 251)"
        ),
        other => panic!("{other:?}"),
    }
    // The card identification read and SELECT DF01 only: no challenge was asked.
    assert_eq!(s.apdu_count(), before + 2);
    s.update_binary(ef02, 0, &[0x11; 251]).unwrap();
    s.open_local().unwrap();
    assert_eq!(s.read_binary(ef02, 0, 251).unwrap(), vec![0x11; 251]);
}
