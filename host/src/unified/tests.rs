//! The unified flows against the card model in process, both algorithms.

use super::*;
use crate::keys::{KeyError, KeySource, PsamKeys, SoftKeys};
use crate::ssc::{Session, SscError};
use sscard_core::classify::Classified;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::status::StatusWord;
use sscard_model::build::{personalised_ssc, Holder};
use sscard_model::card::shared;
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_transport::{Connection, InProcess};

const ALGS: [Algorithm; 2] = [Algorithm::Tdes, Algorithm::Sm4];
const CARD_INFO: &str = "110100D15600000599110145000000A1|A12345674|";

/// The personalised test card in a reader of its own.
fn card(alg: Algorithm) -> Connection {
    let (ssc, _) = sscard_model::test_pair(alg);
    Connection::new(InProcess::new(shared(ssc), "model"))
}

/// The test card, with its next GET CHALLENGE answering `challenge`.
fn card_with_challenge(alg: Algorithm, challenge: &[u8]) -> Connection {
    let (mut ssc, _) = sscard_model::test_pair(alg);
    ssc.queue_challenge(challenge);
    Connection::new(InProcess::new(shared(ssc), "model"))
}

/// The model's city PSAM (110100) for `alg` as a key source.
fn psam(alg: Algorithm) -> PsamKeys {
    let (_, psam) = sscard_model::test_pair(alg);
    PsamKeys::open(Connection::new(InProcess::new(shared(psam), "psam"))).unwrap()
}

fn info() -> CardInfo {
    CardInfo::parse(CARD_INFO).unwrap()
}

/// Every record of every record file, a name that needs the name extension included.
const ADDR: &str = "SSSEEF05|07|05|06|$SSSEEF06|08|09|4E|0A|0B|0C|0D|$SSSEEF07|20|21|22|$\
                    SSSEDF01EF01|40|41|42|$";

fn data() -> String {
    format!(
        "SSSEEF05|A12345674|20250101|20350101|$\
         SSSEEF06|11010519491231002X|{}|小明|9|01|110105|19491231|$\
         SSSEEF07|01|02|1101000000012345|$\
         SSSEDF01EF01|0102030405060708|{}|{}|$",
        "王".repeat(15),
        "A0".repeat(16),
        "5A".repeat(32)
    )
}

#[test]
fn written_items_read_back_byte_for_byte() {
    for alg in ALGS {
        let mut conn = card(alg);
        let mut keys = SoftKeys::test_set();
        let addr = FileAddr::parse(ADDR).unwrap();
        let data_line = data();
        let write = WriteData::parse(&addr, &data_line).unwrap();
        {
            let mut tx = conn.transaction().unwrap();
            let mut s = Session::open(&mut tx, &mut keys).unwrap();
            s.write_items(&info(), &write).unwrap();
        }
        let mut tx = conn.transaction().unwrap();
        let mut s = Session::open(&mut tx, &mut keys).unwrap();
        let line = s
            .read_items(AuthType::Internal, Some(&info()), &addr)
            .unwrap();
        assert_eq!(line, data_line, "{alg:?}");
        // The name continues in the extension: read basic info reports it whole.
        let mut s = Session::open(&mut tx, &mut keys).unwrap();
        let basic = s.read_basic_info().unwrap();
        assert_eq!(basic.holder.name, format!("{}小明", "王".repeat(15)));
        assert_eq!(basic.card.issue_date, "2025-01-01");
    }
}

#[test]
fn free_files_read_without_authentication_in_the_callers_spelling() {
    for alg in ALGS {
        let mut conn = card(alg);
        let mut keys = SoftKeys::test_set();
        let mut tx = conn.transaction().unwrap();
        let mut s = Session::open(&mut tx, &mut keys).unwrap();
        let addr = FileAddr::parse("MFEF05|01|07|03|$").unwrap();
        assert_eq!(
            s.read_items(AuthType::None, None, &addr).unwrap(),
            format!(
                "MFEF05|110100D15600000599110145000000A1|A12345674|{}|$",
                alg.spec_version()
            )
        );
        // SELECT, READ RECORDS: no authentication.
        assert_eq!(s.apdu_count(), 2);
    }
}

#[test]
fn a_protected_file_without_authentication_gives_the_cards_status_word() {
    let cases = [
        (Algorithm::Sm4, "SSSEEF06|08|$"),
        (Algorithm::Tdes, "SSSEEF07|20|$"),
        (Algorithm::Sm4, "SSSEDF01EF01|40|$"),
    ];
    for (alg, addr) in cases {
        let mut conn = card(alg);
        let mut keys = SoftKeys::test_set();
        let mut tx = conn.transaction().unwrap();
        let mut s = Session::open(&mut tx, &mut keys).unwrap();
        let e = s
            .read_items(AuthType::None, None, &FileAddr::parse(addr).unwrap())
            .unwrap_err();
        assert_eq!(
            e,
            SscError::Card {
                command: "READ RECORDS",
                sw: StatusWord(0x6982)
            },
            "{addr}"
        );
        assert_eq!(e.return_code(), -27010);
    }
    // On a 2.00 card EF06 is free.
    let mut conn = card(Algorithm::Tdes);
    let mut keys = SoftKeys::test_set();
    let mut tx = conn.transaction().unwrap();
    let mut s = Session::open(&mut tx, &mut keys).unwrap();
    let addr = FileAddr::parse("SSSEEF06|09|4E|08|$").unwrap();
    assert_eq!(
        s.read_items(AuthType::None, None, &addr).unwrap(),
        "SSSEEF06|张三||11010519491231002X|$"
    );
}

#[test]
fn another_card_is_minus_22_before_anything_beyond_ef05() {
    let other = [
        "110100D15600000599110145000000A2|A12345674|",
        "110100D15600000599110145000000A1|B12345671|",
    ];
    let fields = ["card identification code", "card number"];
    for alg in ALGS {
        for (line, field) in other.iter().zip(fields) {
            let other = CardInfo::parse(line).unwrap();
            let mut conn = card(alg);
            let mut keys = SoftKeys::test_set();
            let mut tx = conn.transaction().unwrap();
            let mut s = Session::open(&mut tx, &mut keys).unwrap();
            let addr = FileAddr::parse("SSSEEF06|08|$").unwrap();
            let e = s
                .read_items(AuthType::Internal, Some(&other), &addr)
                .unwrap_err();
            assert_eq!(e, SscError::CardMismatch { field });
            assert_eq!(e.return_code(), -22);
            assert_eq!(s.apdu_count(), 2, "SELECT and EF05 only");
            let write = WriteData::parse(&addr, "SSSEEF06|11010519491231002X|$").unwrap();
            let mut s = Session::open(&mut tx, &mut keys).unwrap();
            let e = s.write_items(&other, &write).unwrap_err();
            assert_eq!(e.return_code(), -22);
            assert_eq!(s.apdu_count(), 2, "nothing written");
        }
    }
}

#[test]
fn an_auth_type_other_than_0_or_1_is_minus_23() {
    assert_eq!(AuthType::try_from(0), Ok(AuthType::None));
    assert_eq!(AuthType::try_from(1), Ok(AuthType::Internal));
    let e = SscError::from(AuthType::try_from(2).unwrap_err());
    assert_eq!(e, SscError::Unified(UnifiedError::AuthType { value: 2 }));
    assert_eq!(e.return_code(), -23);
    assert_eq!(
        SscError::from(FileAddr::parse("SSSEEF05|01|").unwrap_err()).return_code(),
        -23
    );
}

/// The two-step flow: step 1 in one transaction, the machine's step, step 2 in another.
fn two_step(
    conn: &mut Connection,
    keys: &mut dyn KeySource,
    machine: &mut dyn KeySource,
) -> Result<(String, u64), SscError> {
    let step1 = {
        let mut tx = conn.transaction().unwrap();
        let mut s = Session::open(&mut tx, keys)?;
        s.hsm_step1()?
    };
    let line: Step1Line = step1.line().to_string().parse()?;
    assert_eq!(&line, step1.line());
    let pkey: PKey = hsm_step2_key(machine, &line)?.to_string().parse()?;
    let mut tx = conn.transaction().unwrap();
    let mut s = Session::resume(&mut tx, keys, &step1)?;
    let info = s.hsm_step2(&step1, &pkey)?;
    Ok((info.unified_line(), s.apdu_count()))
}

#[test]
fn the_two_step_flow_gives_read_basic_infos_line() {
    for alg in ALGS {
        let mut conn = card(alg);
        let expected = {
            let mut keys = SoftKeys::test_set();
            let mut tx = conn.transaction().unwrap();
            let mut s = Session::open(&mut tx, &mut keys).unwrap();
            s.read_basic_info().unwrap().unified_line()
        };
        let (line, step2_apdus) = two_step(
            &mut conn,
            &mut SoftKeys::test_set(),
            &mut SoftKeys::test_set(),
        )
        .unwrap();
        assert_eq!(line, expected, "{alg:?}");
        // Step 2: EXTERNAL AUTHENTICATE on 3.00, then READ RECORDS of EF06.
        let want = if alg == Algorithm::Sm4 { 2 } else { 1 };
        assert_eq!(step2_apdus, want);
        // Through the PSAM the terminal number is EF16's, in both lines.
        let expected = {
            let mut keys = psam(alg);
            let mut tx = conn.transaction().unwrap();
            let mut s = Session::open(&mut tx, &mut keys).unwrap();
            s.read_basic_info().unwrap().unified_line()
        };
        assert!(expected.ends_with("|110100000001||"), "{expected}");
        let (line, _) = two_step(&mut conn, &mut psam(alg), &mut psam(alg)).unwrap();
        assert_eq!(line, expected, "{alg:?}");
    }
}

#[test]
fn the_step1_line_and_pkey_follow_the_profile() {
    let r = parse_hex("0102030405060708").unwrap();
    for alg in ALGS {
        let mut conn = card_with_challenge(alg, &r);
        let mut keys = SoftKeys::test_set();
        let mut tx = conn.transaction().unwrap();
        let mut s = Session::open(&mut tx, &mut keys).unwrap();
        let step1 = s.hsm_step1().unwrap();
        let line = step1.line();
        let text = line.to_string();
        let fields: Vec<&str> = text.split('|').collect();
        assert_eq!(fields.len(), 8, "{text}");
        assert_eq!(
            fields[..4],
            [
                "110100",
                "5353434152443031",
                &format!("{:02X}", alg.id()),
                "110100D15600000599110145000000A1"
            ]
        );
        assert_eq!(fields[4], to_hex(&line.random));
        assert_eq!(fields[7], "");
        let pkey = hsm_step2_key(&mut SoftKeys::test_set(), line).unwrap();
        match alg {
            Algorithm::Tdes => {
                assert_eq!(fields[5], "", "no challenge on 2.00");
                assert_eq!(pkey.external_auth, None);
                assert_eq!(pkey.internal_auth.len(), 8);
                assert!(pkey.to_string().ends_with("||"));
            }
            _ => {
                // The challenge was R of the worked example: the card RKSSSE cryptogram of
                // PROFILE section 9.
                assert_eq!(fields[5], "0102030405060708");
                assert_eq!(
                    pkey.to_string().split('|').nth(1),
                    Some("6C50CAF32F577BE73E1CE3909AB70FC9")
                );
                assert_eq!(pkey.internal_auth.len(), 16);
            }
        }
        // The machine's internal-auth value is what the card answered.
        assert!(sscard_core::crypto::ct_eq(
            &pkey.internal_auth,
            &step1.answer
        ));
        // SELECT, READ RECORDS EF05, INTERNAL AUTHENTICATE (GET CHALLENGE on 3.00).
        let want = if alg == Algorithm::Sm4 { 4 } else { 3 };
        assert_eq!(s.apdu_count(), want);
    }
}

#[test]
fn a_wrong_pkey_is_minus_25_and_nothing_is_sent() {
    for alg in ALGS {
        let mut conn = card(alg);
        let mut keys = SoftKeys::test_set();
        let step1 = {
            let mut tx = conn.transaction().unwrap();
            Session::open(&mut tx, &mut keys)
                .unwrap()
                .hsm_step1()
                .unwrap()
        };
        let mut pkey = hsm_step2_key(&mut SoftKeys::test_set(), step1.line()).unwrap();
        pkey.internal_auth[0] ^= 1;
        let mut tx = conn.transaction().unwrap();
        let mut s = Session::resume(&mut tx, &mut keys, &step1).unwrap();
        let e = s.hsm_step2(&step1, &pkey).unwrap_err();
        assert_eq!(e, SscError::HsmDisagrees);
        assert_eq!(e.return_code(), -25);
        assert_eq!(s.apdu_count(), 0, "nothing sent after the comparison");
    }
    // A right internal-auth value with a wrong cryptogram: the card's 63C4 (4 tries left).
    let mut conn = card(Algorithm::Sm4);
    let mut keys = SoftKeys::test_set();
    let step1 = {
        let mut tx = conn.transaction().unwrap();
        Session::open(&mut tx, &mut keys)
            .unwrap()
            .hsm_step1()
            .unwrap()
    };
    let mut pkey = hsm_step2_key(&mut SoftKeys::test_set(), step1.line()).unwrap();
    pkey.external_auth.as_mut().unwrap()[0] ^= 1;
    let mut tx = conn.transaction().unwrap();
    let mut s = Session::resume(&mut tx, &mut keys, &step1).unwrap();
    let e = s.hsm_step2(&step1, &pkey).unwrap_err();
    assert_eq!(
        e,
        SscError::Card {
            command: "EXTERNAL AUTHENTICATE",
            sw: StatusWord(0x63C4)
        }
    );
    assert_eq!(e.return_code(), -25540);
    assert_eq!(s.apdu_count(), 1, "EXTERNAL AUTHENTICATE only");
}

#[test]
fn step2_after_a_reset_is_refused() {
    let mut conn = card(Algorithm::Sm4);
    let mut keys = SoftKeys::test_set();
    let step1 = {
        let mut tx = conn.transaction().unwrap();
        Session::open(&mut tx, &mut keys)
            .unwrap()
            .hsm_step1()
            .unwrap()
    };
    // Step 1 then another session (any command) consumed the challenge: the card refuses.
    {
        let mut tx = conn.transaction().unwrap();
        Session::open(&mut tx, &mut keys).unwrap();
    }
    let pkey = hsm_step2_key(&mut SoftKeys::test_set(), step1.line()).unwrap();
    let mut tx = conn.transaction().unwrap();
    let mut s = Session::resume(&mut tx, &mut keys, &step1).unwrap();
    let e = s.hsm_step2(&step1, &pkey).unwrap_err();
    assert_eq!(
        e,
        SscError::Card {
            command: "EXTERNAL AUTHENTICATE",
            sw: StatusWord(0x6984)
        }
    );
}

#[test]
fn malformed_step_lines_are_minus_23() {
    let good_3des = "110100|5353434152443031|01|110100D15600000599110145000000A1|0102030405060708||110100000001|";
    let good_sm4 = "110100|5353434152443031|03|110100D15600000599110145000000A1|0102030405060708|1122334455667788||";
    for good in [good_3des, good_sm4] {
        let line: Step1Line = good.parse().unwrap();
        assert_eq!(line.to_string(), good);
    }
    let bad = |what, field, problem| UnifiedError::BadField {
        what,
        field,
        problem,
    };
    let cases: &[(&str, UnifiedError)] = &[
        ("", UnifiedError::Empty { what: "step-1 line" }),
        (
            "110100|5353434152443031|01|110100D15600000599110145000000A1|0102030405060708||",
            UnifiedError::Layout {
                what: "step-1 line",
                problem: "it is not 7 fields (region|ATR historical bytes|algorithm id|card identification code|R|external-auth challenge|terminal number|)",
            },
        ),
        (
            "110200|5353434152443031|01|110100D15600000599110145000000A1|0102030405060708|||",
            bad("step-1 line", "region", "is not the card identification code's first 6 digits"),
        ),
        (
            "110100|5353434152443031|02|110100D15600000599110145000000A1|0102030405060708|||",
            bad("step-1 line", "algorithm id", "is not 01 (3DES) or 03 (SM4)"),
        ),
        (
            "110100|5353434152443031|03|110100D15600000599110145000000A1|0102030405060708|||",
            bad("step-1 line", "external-auth challenge", "is empty; a 3.00 (SM4) card needs one"),
        ),
        (
            "110100|5353434152443031|01|110100D15600000599110145000000A1|0102030405060708|1122334455667788||",
            bad("step-1 line", "external-auth challenge", "is given; a 2.00 (3DES) card has none"),
        ),
        (
            "110100|5353434152443031|01|110100D15600000599110145000000A1|01020304050607|||",
            bad("step-1 line", "R", "is not 16 hex digits"),
        ),
        (
            "110100|53 53|01|110100D15600000599110145000000A1|0102030405060708|||",
            bad("step-1 line", "ATR historical bytes", "are not up to 15 bytes of hex digits"),
        ),
        (
            "110100|5353434152443031|01|110100A15600000599110145000000A1|0102030405060708|||",
            bad("step-1 line", "card identification code", "is not region BCD ‖ D156000005 ‖ serial"),
        ),
        (
            "110100|5353434152443031|01|110100D15600000599110145000000A1|0102030405060708||T-1|",
            bad("step-1 line", "terminal number", "is not up to 20 digits"),
        ),
    ];
    for (line, want) in cases {
        let e = line.parse::<Step1Line>().unwrap_err();
        assert_eq!(&e, want, "{line:?}");
        assert_eq!(e.return_code(), -23);
    }
    assert_eq!(
        "0011223344556677|".parse::<PKey>(),
        Err(UnifiedError::Layout {
            what: "pKey",
            problem: "it is not two fields (internal-auth value|external-auth cryptogram|)"
        })
    );
    assert_eq!(
        "00112233445566|".parse::<PKey>().unwrap_err(),
        UnifiedError::Layout {
            what: "pKey",
            problem: "it is not two fields (internal-auth value|external-auth cryptogram|)"
        }
    );
    assert_eq!(
        "00112233445566||".parse::<PKey>().unwrap_err(),
        bad(
            "pKey",
            "internal-auth value",
            "is not 16 or 32 hex digits (one 3DES or SM4 block)"
        )
    );
    let k: PKey = "0011223344556677|00112233445566778899AABBCCDDEEFF|"
        .parse()
        .unwrap();
    assert_eq!(
        k.to_string(),
        "0011223344556677|00112233445566778899AABBCCDDEEFF|"
    );
}

proptest::proptest! {
    #[test]
    fn step_line_parsers_never_panic(line in proptest::prelude::any::<String>()) {
        if let Err(e) = line.parse::<Step1Line>() {
            proptest::prop_assert_eq!(e.return_code(), -23);
        }
        if let Err(e) = line.parse::<PKey>() {
            proptest::prop_assert_eq!(e.return_code(), -23);
        }
        if let Err(e) = CardInfo::parse(&line) {
            proptest::prop_assert_eq!(e.return_code(), -23);
        }
    }
}

/// A card of Shanghai (310100) with the test holder.
fn shanghai_card(alg: Algorithm) -> Connection {
    let id: [u8; 16] = parse_hex("310100D15600000599110145000000A1")
        .unwrap()
        .try_into()
        .unwrap();
    let image = personalised_ssc(alg, &id, &Holder::sample(), "123456").unwrap();
    let ssc = Ssc::from_image(image, Store::in_memory()).unwrap();
    Connection::new(InProcess::new(shared(ssc), "model"))
}

#[test]
fn a_city_psam_refuses_a_card_of_another_city_with_minus_24() {
    for alg in ALGS {
        let other = KeyError::OtherRegion {
            psam_region: "110100".into(),
            card_region: "310100".into(),
            level: 2,
        };
        let mut conn = shanghai_card(alg);
        let mut keys = psam(alg);
        let psam_before = keys.apdu_count();
        let mut tx = conn.transaction().unwrap();
        let mut s = Session::open(&mut tx, &mut keys).unwrap();
        let e = s.read_basic_info().unwrap_err();
        assert_eq!(e, SscError::Keys(other.clone()), "{alg:?}");
        assert_eq!(e.return_code(), -24);
        drop(s);
        drop(tx);
        assert_eq!(keys.apdu_count(), psam_before, "no DES INIT");
        // The encryption machine's step through such a PSAM: the same.
        let mut tx = conn.transaction().unwrap();
        let mut s = Session::open(&mut tx, &mut keys).unwrap();
        let step1 = s.hsm_step1().unwrap();
        drop(s);
        assert_eq!(
            hsm_step2_key(&mut psam(alg), step1.line()).unwrap_err(),
            SscError::Keys(other)
        );
    }
}

#[test]
fn a_psam_of_the_other_algorithm_is_minus_2202() {
    let mut conn = card(Algorithm::Sm4);
    let mut keys = SoftKeys::test_set();
    let mut tx = conn.transaction().unwrap();
    let step1 = Session::open(&mut tx, &mut keys)
        .unwrap()
        .hsm_step1()
        .unwrap();
    let e = hsm_step2_key(&mut psam(Algorithm::Tdes), step1.line()).unwrap_err();
    assert_eq!(e.return_code(), -2202);
}

#[test]
fn step1_can_wait_between_two_c_calls_in_another_thread() {
    fn kept_by_the_c_layer<T: Clone + Send + 'static>() {}
    kept_by_the_c_layer::<Step1>();
    kept_by_the_c_layer::<PKey>();
}

#[test]
fn files_are_opened_again_after_another_df() {
    for alg in ALGS {
        let mut conn = card(alg);
        let mut keys = SoftKeys::test_set();
        let mut tx = conn.transaction().unwrap();
        let mut s = Session::open(&mut tx, &mut keys).unwrap();
        // DF01 (EAK_L), then back to SSSE: EF07 needs RKSSSE again, EF06 rides on it.
        let addr = FileAddr::parse("SSSEDF01EF01|40|$SSSEEF07|20|$SSSEEF06|0A|$").unwrap();
        assert_eq!(
            s.read_items(AuthType::Internal, None, &addr).unwrap(),
            "SSSEDF01EF01||$SSSEEF07|01|$SSSEEF06|2|$"
        );
    }
}

/// Software test keys whose IRK cryptograms are wrong: a machine with other keys.
struct OtherIrk(SoftKeys);

impl KeySource for OtherIrk {
    fn describe(&self) -> String {
        "other IRK".into()
    }
    fn cryptogram(
        &mut self,
        alg: Algorithm,
        card: &crate::keys::CardRef,
        kid: sscard_core::profile::Kid,
        random: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let mut c = self.0.cryptogram(alg, card, kid, random)?;
        if kid == sscard_core::profile::Kid::Irk {
            c[0] ^= 0x80;
        }
        Ok(c)
    }
    fn mac(
        &mut self,
        alg: Algorithm,
        card: &crate::keys::CardRef,
        kid: sscard_core::profile::Kid,
        challenge: &[u8],
        message: &[u8],
    ) -> Result<[u8; 4], KeyError> {
        self.0.mac(alg, card, kid, challenge, message)
    }
}

#[test]
fn keys_that_are_not_the_cards_give_minus_21_and_minus_25() {
    for alg in ALGS {
        let mut conn = card(alg);
        let mut keys = OtherIrk(SoftKeys::test_set());
        {
            let mut tx = conn.transaction().unwrap();
            let mut s = Session::open(&mut tx, &mut keys).unwrap();
            let addr = FileAddr::parse("SSSEEF06|08|$").unwrap();
            let e = s
                .read_items(AuthType::Internal, Some(&info()), &addr)
                .unwrap_err();
            assert_eq!((e.clone(), e.return_code()), (SscError::NotGenuine, -21));
        }
        let e = two_step(&mut conn, &mut SoftKeys::test_set(), &mut keys).unwrap_err();
        assert_eq!((e.clone(), e.return_code()), (SscError::HsmDisagrees, -25));
    }
}
