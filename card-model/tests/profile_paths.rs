//! PROFILE section 9 reproduced by the model, and the remaining status-word paths of section 4.

mod common;

use common::*;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::Kid;
use sscard_model::ssc::Ssc;

fn card(alg: Algorithm) -> Ssc {
    let mut c = sscard_model::test_pair(alg).0;
    select_ssse(&mut c).unwrap();
    c
}

#[test]
fn worked_example_of_section_9() {
    for (alg, cryptogram, mac) in [
        (Algorithm::Tdes, "F1B6C8D273FBAD8B", "38F6BDC8"),
        (
            Algorithm::Sm4,
            "6C50CAF32F577BE73E1CE3909AB70FC9",
            "094E8A38",
        ),
    ] {
        let mut c = card(alg);
        c.queue_challenge(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(tx(&mut c, "0084000008"), "01020304050607089000");
        let b = cryptogram.len() / 2;
        assert_eq!(
            sw(&mut c, &format!("0082000A{b:02X}{cryptogram}")),
            "9000",
            "{alg:?} RKSSSE cryptogram"
        );
        c.queue_challenge(&[0x11, 0x22, 0x33, 0x44]);
        assert_eq!(tx(&mut c, "0084000004"), "112233449000");
        assert_eq!(
            sw(&mut c, &format!("04DC0434070A0131{mac}")),
            "9000",
            "{alg:?} UK_N MAC"
        );
        // INTERNAL AUTHENTICATE with the same R answers the IRK cryptogram of the same card.
        let irk = alg
            .cryptogram(&key(alg, Kid::Irk), &[1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap();
        assert_eq!(
            tx(
                &mut c,
                "00880008080102030405060708 00".replace(' ', "").as_str()
            ),
            to_hex(&irk) + "9000"
        );
    }
}

#[test]
fn remaining_status_word_paths() {
    let alg = Algorithm::Tdes;
    let mut c = card(alg);
    // 6981: READ RECORD on the transparent EF02 (after opening DF01).
    assert_eq!(sw(&mut c, "00A4000002DF01"), "9000");
    assert_eq!(ext_auth(&mut c, alg, Kid::EakL, true).unwrap(), "9000");
    assert_eq!(sw(&mut c, "00B2011400"), "6981");
    // 6B00: READ BINARY beyond the end; 6Cxx on a short Le for records.
    assert_eq!(
        sw(&mut c, "00B0020000"),
        "6B00",
        "SFI addressing made EF02 current; offset 512 is beyond it"
    );
    assert_eq!(sw(&mut c, "00B0820000"), "9000");
    assert_eq!(sw(&mut c, "00B0010010"), "6B00");
    assert_eq!(sw(&mut c, "00B2010C02"), "6C0A");
    // 6A86: a record identifier with an unknown P2 mode.
    assert_eq!(sw(&mut c, "00B2010F00"), "6A86");
    let mut c = card(alg);
    // Internal authentication with another key id; wrong length.
    assert_eq!(sw(&mut c, "0088000A080102030405060708"), "6A88");
    assert_eq!(sw(&mut c, "008800080401020304"), "6700");
    assert_eq!(
        sw(
            &mut c,
            "00880008080102030405060708 02".replace(' ', "").as_str()
        ),
        "6C08"
    );
    // CHANGE PIN with a wrong old PIN uses the VERIFY counter.
    assert_eq!(sw(&mut c, "805E010007111111FF222222"), "63C2");
    assert_eq!(sw(&mut c, "0020000003111111"), "63C1");
    assert_eq!(
        sw(&mut c, "805E010006123456222222"),
        "6A80",
        "no FF separator"
    );
    // RELOAD / UNBLOCK: no challenge → 6984, wrong MAC → 6988.
    assert_eq!(sw(&mut c, "845E00000712345611223344"), "6984");
    let mut bad = mac_apdu(&mut c, alg, Kid::Upk, "84240001", "").unwrap();
    bad.replace_range(bad.len() - 2.., "00");
    assert_eq!(sw(&mut c, &bad), "6988");
    let reload = mac_apdu(&mut c, alg, Kid::Rpk, "845E0000", "654321").unwrap();
    assert_eq!(sw(&mut c, &reload), "9000");
    assert_eq!(
        sw(&mut c, "0020000003654321"),
        "9000",
        "reload set the PIN and restored the counter"
    );
    // An issued card refuses WRITE KEY (6985) and knows no TK (6A88).
    let wk = mac_apdu(
        &mut c,
        alg,
        Kid::UkN,
        "84D40008",
        &write_key_data(alg, Kid::Irk),
    )
    .unwrap();
    assert_eq!(sw(&mut c, &wk), "6985");
    assert_eq!(ext_auth(&mut c, alg, Kid::Tk, true).unwrap(), "6A88");
    let end = mac_apdu(&mut c, alg, Kid::UkN, "84EE0000", "").unwrap();
    assert_eq!(sw(&mut c, &end), "6985");
    // GET CHALLENGE: only 4 or 8 bytes; P1/P2 must be zero.
    assert_eq!(sw(&mut c, "0084000010"), "6700");
    assert_eq!(sw(&mut c, "0084010008"), "6A86");
    // EXTERNAL AUTHENTICATE with the wrong block size.
    assert_eq!(
        sw(&mut c, "0082000A10000102030405060708090A0B0C0D0E0F"),
        "6700"
    );
}

#[test]
fn psam_t0_paths() {
    let (_, mut p) = sscard_model::test_pair(Algorithm::Tdes);
    assert_eq!(
        sw(&mut p, "80FA0000080102030405060708"),
        "6985",
        "DES CRYPT before DES INIT"
    );
    assert_eq!(sw(&mut p, "00A4000002DF01"), "9000");
    assert_eq!(tx(&mut p, "00B0960006"), "1101000000019000");
    assert_eq!(sw(&mut p, "00B0960000"), "6C06", "T=0: Le 00 is 256");
    assert_eq!(
        sw(&mut p, "801A08011099110145000000A199110145000000A1"),
        "6700",
        "a city PSAM takes one factor"
    );
    assert_eq!(
        sw(
            &mut p,
            "801A4401089911014500000 0A1".replace(' ', "").as_str()
        ),
        "6A88"
    );
    assert_eq!(
        sw(
            &mut p,
            "801A0801089911014500000 0A1".replace(' ', "").as_str()
        ),
        "9000"
    );
    assert_eq!(sw(&mut p, "80FA0000080102030405060708"), "6108");
    assert_eq!(sw(&mut p, "00C0000004"), "6C08");
    let expected = Algorithm::Tdes
        .cryptogram(&key(Algorithm::Tdes, Kid::Irk), &[1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    assert_eq!(tx(&mut p, "00C0000008"), to_hex(&expected) + "9000");
    assert_eq!(sw(&mut p, "00C0000008"), "6985", "nothing left to get");
    assert_eq!(
        sw(&mut p, "80FA050004AABBCCDD"),
        "6700",
        "MAC needs the IV block"
    );
}
