//! The SSC and PSAM models against PROFILE.md, in-process.

mod common;

use common::*;

use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::{KeyScope, Kid};
use sscard_model::build::{self, SAMPLE_CARD_ID};
use sscard_model::card::Card;
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;

fn card(alg: Algorithm) -> Ssc {
    sscard_model::test_pair(alg).0
}

#[test]
fn select_returns_the_profile_fci() {
    let mut c = card(Algorithm::Tdes);
    assert_eq!(
        select_ssse(&mut c).unwrap(),
        "6F1C840F7378312E73682EC9E7BBE1B1A3D5CFA5099F0C03860101C001029000"
    );
    let mut c = card(Algorithm::Sm4);
    assert_eq!(
        select_ssse(&mut c).unwrap(),
        "6F1C840F7378312E73682EC9E7BBE1B1A3D5CFA5099F0C03860103C001029000"
    );
    assert_eq!(sw(&mut c, "00A4040002AABB00"), "6A82");
    assert_eq!(sw(&mut c, "00A4000002EF0900"), "6A82");
}

#[test]
fn select_with_a_short_le_answers_6cxx_and_selects_nothing() {
    let mut c = card(Algorithm::Tdes);
    // The SSSE FCI is 30 bytes, DF01's 17 (PROFILE section 4, Le rule).
    assert_eq!(
        tx(&mut c, "00A404000F7378312E73682EC9E7BBE1B1A3D5CF10"),
        "6C1E"
    );
    assert_eq!(sw(&mut c, "00B2012C00"), "6A82", "SSSE is not selected");
    assert_eq!(
        tx(&mut c, "00A404000F7378312E73682EC9E7BBE1B1A3D5CF1E"),
        "6F1C840F7378312E73682EC9E7BBE1B1A3D5CFA5099F0C03860101C001029000"
    );
    assert_eq!(tx(&mut c, "00A4000002DF0105"), "6C11");
    assert_eq!(sw(&mut c, "00B2012C00"), "9000", "still in SSSE");
    assert_eq!(
        tx(&mut c, "00A4000002DF0111"),
        "6F0F8402DF01A5099F0C03860101C001029000"
    );
}

#[test]
fn reads_ef05_by_number_identifier_and_to_last() {
    let mut c = card(Algorithm::Tdes);
    select_ssse(&mut c).unwrap();
    assert_eq!(
        tx(&mut c, "00B2012C00"),
        "0110110100D15600000599110145000000A19000"
    );
    assert_eq!(tx(&mut c, "00B2072800"), "07094131323334353637349000");
    assert_eq!(tx(&mut c, "00B2032800"), "0304322E30309000");
    assert_eq!(
        tx(&mut c, "00B2070000").len(),
        22 + 4,
        "record identifier 07 under current EF"
    );
    assert_eq!(sw(&mut c, "00B2012C05"), "6C12");
    assert_eq!(sw(&mut c, "00B2082C00"), "6A83");
    let all = tx(&mut c, "00B2012D00");
    assert!(all.starts_with("0110110100D1"));
    assert_eq!(all.len(), 2 * (18 + 3 + 6 + 14 + 6 + 6 + 11) + 4);
    assert_eq!(sw(&mut c, "00B2017C00"), "6A82", "SFI 0F does not exist");
}

#[test]
fn ef06_opens_with_rksse_on_sm4_cards_only() {
    let mut c = card(Algorithm::Tdes);
    select_ssse(&mut c).unwrap();
    assert_eq!(sw(&mut c, "00B2013400"), "9000");
    assert_eq!(sw(&mut c, "00B2013C00"), "6982", "EF07 needs RKSSSE");
    let mut c = card(Algorithm::Sm4);
    select_ssse(&mut c).unwrap();
    assert_eq!(sw(&mut c, "00B2013400"), "6982");
    assert_eq!(
        ext_auth(&mut c, Algorithm::Sm4, Kid::Rkssse, true).unwrap(),
        "9000"
    );
    assert_eq!(
        tx(&mut c, "00B2013400"),
        "0812313130313035313934393132333130303258".to_string() + "9000"
    );
    assert_eq!(sw(&mut c, "00B2013C00"), "9000");
    c.reset();
    select_ssse(&mut c).unwrap();
    assert_eq!(
        sw(&mut c, "00B2013400"),
        "6982",
        "security status is lost on reset"
    );
}

#[test]
fn external_authentication_counts_down_and_blocks() {
    let alg = Algorithm::Tdes;
    let mut c = card(alg);
    select_ssse(&mut c).unwrap();
    assert_eq!(
        sw(&mut c, "0082000A081122334455667788"),
        "6984",
        "no challenge"
    );
    for left in (0..5).rev() {
        assert_eq!(
            ext_auth(&mut c, alg, Kid::Rkssse, false).unwrap(),
            format!("63C{left}")
        );
    }
    assert_eq!(ext_auth(&mut c, alg, Kid::Rkssse, true).unwrap(), "6983");
    assert_eq!(
        ext_auth(&mut c, alg, Kid::EakL, true).unwrap(),
        "6A88",
        "local key in SSSE"
    );
}

#[test]
fn challenge_is_single_use() {
    let alg = Algorithm::Tdes;
    let mut c = card(alg);
    select_ssse(&mut c).unwrap();
    let ch = challenge(&mut c, 8).unwrap();
    assert_eq!(sw(&mut c, "00B2012C00"), "9000");
    let crypt = alg.cryptogram(&key(alg, Kid::Rkssse), &ch).unwrap();
    assert_eq!(sw(&mut c, &format!("0082000A08{}", to_hex(&crypt))), "6984");
}

#[test]
fn internal_authentication_matches_the_card_key() {
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        let mut c = card(alg);
        select_ssse(&mut c).unwrap();
        let expected = alg
            .cryptogram(&key(alg, Kid::Irk), &parse_hex("0102030405060708").unwrap())
            .unwrap();
        assert_eq!(
            tx(
                &mut c,
                "008800080801020304050607080 0".replace(' ', "").as_str()
            ),
            to_hex(&expected) + "9000"
        );
    }
}

#[test]
fn pin_life_cycle() {
    let alg = Algorithm::Tdes;
    let mut c = card(alg);
    select_ssse(&mut c).unwrap();
    assert_eq!(sw(&mut c, "0020000003123457"), "63C2");
    assert_eq!(sw(&mut c, "0020000003123456"), "9000");
    assert_eq!(sw(&mut c, "805E010007123456FF654321"), "9000");
    assert_eq!(sw(&mut c, "0020000003123456"), "63C2");
    assert_eq!(sw(&mut c, "0020000003123456"), "63C1");
    assert_eq!(sw(&mut c, "0020000003123456"), "63C0");
    assert_eq!(sw(&mut c, "0020000003654321"), "6983");
    let unblock = mac_apdu(&mut c, alg, Kid::Upk, "84240001", "").unwrap();
    assert_eq!(sw(&mut c, &unblock), "9000");
    assert_eq!(sw(&mut c, "0020000003654321"), "9000");
    let reload = mac_apdu(&mut c, alg, Kid::Rpk, "845E0000", "1234").unwrap();
    assert_eq!(sw(&mut c, &reload), "9000");
    assert_eq!(sw(&mut c, "00200000021234"), "9000");
    assert_eq!(sw(&mut c, "00200000"), "63C3");
}

#[test]
fn update_record_with_line_mac() {
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        let mut c = card(alg);
        select_ssse(&mut c).unwrap();
        let apdu = mac_apdu(&mut c, alg, Kid::UkN, "04DC0434", "0A0132").unwrap();
        assert_eq!(sw(&mut c, &apdu), "9000");
        if alg == Algorithm::Sm4 {
            ext_auth(&mut c, alg, Kid::Rkssse, true).unwrap();
        }
        assert_eq!(tx(&mut c, "00B2043400"), "0A01329000");
        let wrong_tag = mac_apdu(&mut c, alg, Kid::UkN, "04DC0434", "0B0132").unwrap();
        assert_eq!(sw(&mut c, &wrong_tag), "6A80");
        let mut bad = mac_apdu(&mut c, alg, Kid::UkN, "04DC0434", "0A0131").unwrap();
        bad.replace_range(bad.len() - 2.., "00");
        assert_eq!(sw(&mut c, &bad), "6988");
        assert_eq!(
            sw(
                &mut c,
                "04DC04340 70A0131AABBCCDD".replace(' ', "").as_str()
            ),
            "6984"
        );
        // A local key never opens a national file.
        let local = mac_apdu(&mut c, alg, Kid::UkL, "04DC0434", "0A0131").unwrap();
        assert_eq!(sw(&mut c, &local), "6988");
    }
}

#[test]
fn df01_needs_pin_or_eak_and_loses_status_on_df_change() {
    let alg = Algorithm::Sm4;
    let mut c = card(alg);
    select_ssse(&mut c).unwrap();
    assert_eq!(sw(&mut c, "0020000003123456"), "9000");
    assert_eq!(
        tx(&mut c, "00A4000002DF0100"),
        "6F0F8402DF01A5099F0C03860103C001029000".replace(' ', "")
    );
    assert_eq!(
        sw(&mut c, "00B2010C00"),
        "6982",
        "PIN status lost on DF change"
    );
    assert_eq!(ext_auth(&mut c, alg, Kid::EakL, true).unwrap(), "9000");
    assert_eq!(
        tx(&mut c, "00B2010C00"),
        format!("4008{}9000", "00".repeat(8))
    );
    assert_eq!(tx(&mut c, "00B0820004"), "000000009000");
    assert_eq!(sw(&mut c, "00B082FF00"), "9000");
    let apdu = mac_apdu(&mut c, alg, Kid::UkL, "04D682FE", "AABB").unwrap();
    assert_eq!(sw(&mut c, &apdu), "9000");
    assert_eq!(tx(&mut c, "00B082FE02"), "AABB9000");
    let apdu = mac_apdu(&mut c, alg, Kid::UkL, "04D682FF", "AABB").unwrap();
    assert_eq!(sw(&mut c, &apdu), "6A84");
    assert_eq!(
        ext_auth(&mut c, alg, Kid::Rkssse, true).unwrap(),
        "6A88",
        "national key in DF01"
    );
}

#[test]
fn status_words_for_bad_commands() {
    let mut c = card(Algorithm::Tdes);
    assert_eq!(sw(&mut c, "00FF0000"), "6D00");
    assert_eq!(sw(&mut c, "00A4000005AABB"), "6700");
    assert_eq!(sw(&mut c, "A0A4000002"), "6E00");
    assert_eq!(sw(&mut c, "B0A40000"), "6E00");
    assert_eq!(sw(&mut c, "00A4050000"), "6A86");
    assert_eq!(sw(&mut c, "0084000005"), "6700");
}

#[test]
fn personalisation_from_blank_to_issued() {
    let alg = Algorithm::Sm4;
    let blank = build::blank_ssc(alg, &SAMPLE_CARD_ID);
    let mut c = Ssc::from_image(blank, Store::in_memory()).unwrap();
    assert!(select_ssse(&mut c).unwrap().ends_with("C001019000"));
    assert_eq!(sw(&mut c, "00B2012C00"), "9000");
    assert_eq!(sw(&mut c, "00B2013400"), "6982");
    assert_eq!(ext_auth(&mut c, alg, Kid::Tk, true).unwrap(), "9000");
    assert_eq!(sw(&mut c, "00B2013400"), "9000");
    let end = mac_apdu(&mut c, alg, Kid::Tk, "84EE0000", "").unwrap();
    assert_eq!(sw(&mut c, &end), "6985", "keys are missing");
    let write_key = |c: &mut Ssc, k: Kid| {
        let enc = write_key_data(alg, k);
        let apdu = mac_apdu(c, alg, Kid::Tk, &format!("84D400{:02X}", k.id()), &enc).unwrap();
        sw(c, &apdu)
    };
    // Each key in the DF where it is valid (PROFILE section 3), 6A88 elsewhere.
    for k in Kid::CARD_KEYS.into_iter().chain([Kid::Pin]) {
        let want = if k.scope() == KeyScope::Df01 {
            "6A88"
        } else {
            "9000"
        };
        assert_eq!(write_key(&mut c, k), want, "key {:02X} in SSSE", k.id());
    }
    assert_eq!(sw(&mut c, "00A4000002DF01"), "9000");
    for k in [Kid::Irk, Kid::Rkssse, Kid::UkN] {
        assert_eq!(write_key(&mut c, k), "6A88", "key {:02X} in DF01", k.id());
    }
    for k in [Kid::EakL, Kid::UkL] {
        assert_eq!(write_key(&mut c, k), "9000", "key {:02X} in DF01", k.id());
    }
    assert!(select_ssse(&mut c).unwrap().ends_with("C001019000"));
    let end = mac_apdu(&mut c, alg, Kid::Tk, "84EE0000", "").unwrap();
    assert_eq!(sw(&mut c, &end), "9000");
    assert!(select_ssse(&mut c).unwrap().ends_with("C001029000"));
    assert_eq!(ext_auth(&mut c, alg, Kid::Tk, true).unwrap(), "6A88");
    assert_eq!(sw(&mut c, "0020000003123456"), "9000");
}
