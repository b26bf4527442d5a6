//! A personalisation whose journal cannot record a step stops before END PERSONALISATION: no
//! card leaves the station issued while its journal row says otherwise.

use sscard::keys::SoftKeys;
use sscard::ssc::Session;
use sscard::Connection;
use sscard_core::crypto::Algorithm;
use sscard_core::profile::holder::Holder;
use sscard_model::build::{blank_ssc, SAMPLE_CARD_ID};
use sscard_model::card::shared;
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_perso::card::{identify, personalise, PersoError};
use sscard_perso::state::Stage;
use sscard_transport::InProcess;

#[test]
fn a_stage_the_journal_refuses_stops_the_card_unissued() {
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        let card = Ssc::from_image(blank_ssc(alg, &SAMPLE_CARD_ID), Store::in_memory()).unwrap();
        let mut t = Connection::new(InProcess::new(shared(card), "blank card"));
        let mut keys = SoftKeys::test_set();
        let mut seen = Vec::new();
        let mut tx = t.transaction().unwrap();
        let mut s = Session::open(&mut tx, &mut keys).unwrap();
        let id = s.read_identification().unwrap();
        let r = personalise(s, id, &Holder::sample(), "110100", true, &mut |stage| {
            seen.push(stage);
            if stage == Stage::Written {
                Err("journal is read-only".into())
            } else {
                Ok(())
            }
        });
        match r {
            Err(PersoError::Stopped { stage, cause }) => {
                assert_eq!(
                    (stage, cause.to_string().as_str()),
                    (Stage::Written, "journal is read-only")
                )
            }
            Err(other) => panic!("{alg:?}: {other:?}"),
            Ok(_) => panic!("{alg:?}: personalised although the journal refused a stage"),
        }
        drop(tx);
        assert_eq!(
            seen,
            [
                Stage::Blank,
                Stage::Authenticated,
                Stage::KeysLoaded,
                Stage::Written
            ]
        );
        let (_, blank) = identify(&mut t.transaction().unwrap(), &mut keys).unwrap();
        assert!(blank, "{alg:?}: the card must still be in personalisation");
    }
}
