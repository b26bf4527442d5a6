//! PROFILE version 3, section 4, in-process: the field-terminal shapes (INTERNAL AUTHENTICATE
//! with P2 00 and 16 bytes, SELECT by path, the FCP of EFs, the PSAM's 0015/0016), `6982` for a
//! plain UPDATE, revocation on failed checks and the KID rule of EXTERNAL AUTHENTICATE, for
//! both algorithms.

mod common;

use common::*;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::fcp::{Fcp, FileShape};
use sscard_core::profile::files;
use sscard_core::profile::Kid;
use sscard_model::ssc::Ssc;

const ALGS: [Algorithm; 2] = [Algorithm::Tdes, Algorithm::Sm4];

fn card(alg: Algorithm) -> Ssc {
    let mut c = sscard_model::test_pair(alg).0;
    select_ssse(&mut c).unwrap();
    c
}

#[test]
fn internal_authenticate_takes_p2_00_and_16_bytes() {
    for alg in ALGS {
        let mut c = card(alg);
        let irk = key(alg, Kid::Irk);
        let r = parse_hex("0102030405060708").unwrap();
        let r16 = parse_hex("01020304050607081112131415161718").unwrap();
        let eight = to_hex(&alg.cryptogram(&irk, &r).unwrap());
        let sixteen = to_hex(&alg.encrypt_ecb(&irk, &r16).unwrap());
        for p2 in ["00", "08"] {
            assert_eq!(
                tx(
                    &mut c,
                    &format!("008800{p2}080102030405060708 00").replace(' ', "")
                ),
                eight.clone() + "9000",
                "{alg:?} P2 {p2}, 8 bytes"
            );
            assert_eq!(
                tx(&mut c, &format!("008800{p2}10{}00", to_hex(&r16))),
                sixteen.clone() + "9000",
                "{alg:?} P2 {p2}, 16 bytes"
            );
        }
        // 3DES: two blocks, the first the 8-byte form's cryptogram; SM4: one block.
        assert_eq!(sixteen.len(), 32);
        if alg == Algorithm::Tdes {
            assert_eq!(sixteen[..16], eight[..]);
        }
        assert_eq!(sw(&mut c, &format!("0088000010{}08", to_hex(&r16))), "6C10");
        assert_eq!(sw(&mut c, "008800000C01020304050607081112131400"), "6700");
        assert_eq!(sw(&mut c, &format!("0088000A10{}00", to_hex(&r16))), "6A88");
        assert_eq!(sw(&mut c, "00A4000002DF01"), "9000");
        assert_eq!(
            sw(&mut c, &format!("0088000010{}00", to_hex(&r16))),
            "6A88",
            "IRK is an SSSE key"
        );
    }
}

#[test]
fn an_ef_selected_with_le_answers_its_fcp_from_the_file_table() {
    let mut c = card(Algorithm::Tdes);
    for f in &files::FILES {
        if f.is_local() {
            assert_eq!(sw(&mut c, "00A4000002DF01"), "9000");
        } else {
            select_ssse(&mut c).unwrap();
        }
        let answer = tx(
            &mut c,
            &format!("00A40000 02{:04X} 00", f.fid).replace(' ', ""),
        );
        let fcp = parse_hex(&answer[..answer.len() - 4]).unwrap();
        assert_eq!(&answer[answer.len() - 4..], "9000", "{}", f.name);
        assert_eq!(Fcp::parse(&fcp), Ok(f.fcp()), "{}", f.name);
    }
    select_ssse(&mut c).unwrap();
    assert_eq!(
        tx(&mut c, "00A4000002EF0500"),
        "620B820504410012078302EF059000"
    );
    assert_eq!(sw(&mut c, "00A4000002EF0605"), "6C0D");
    assert_eq!(tx(&mut c, "00A4000C02EF06"), "9000", "P2 0C: no FCP");
    assert_eq!(
        files::by_name("DF01/EF02").unwrap().fcp().shape,
        FileShape::Transparent { size: 256 }
    );
}

#[test]
fn select_by_path_walks_fids_from_the_mf_or_the_current_df() {
    let mut c = card(Algorithm::Sm4);
    assert_eq!(
        tx(&mut c, "00A4090004DF01EF0200"),
        "620B8201018302EF02800201009000"
    );
    assert_eq!(sw(&mut c, "0020000003123456"), "9000", "DF01 is current");
    assert_eq!(tx(&mut c, "00B0000002"), "00009000", "EF02 is current");
    assert_eq!(
        tx(&mut c, "00A4090002EF0100"),
        "620B820504410022038302EF019000",
        "from DF01"
    );
    assert_eq!(
        sw(&mut c, "00B2010400"),
        "9000",
        "the PIN survives a path inside DF01"
    );
    select_ssse(&mut c).unwrap();
    assert_eq!(
        tx(&mut c, "00A4090002DF0100"),
        "6F0F8402DF01A5099F0C03860103C001029000"
    );
    select_ssse(&mut c).unwrap();
    assert_eq!(sw(&mut c, "00A4080002DF01"), "6A82", "SSSE has no FID");
    assert_eq!(sw(&mut c, "00A4090004EF05EF06"), "6A82", "an EF is no DF");
    assert_eq!(sw(&mut c, "00A4090004DF01EF09"), "6A82");
    assert_eq!(sw(&mut c, "00A4090003DF01EF"), "6700");
    assert_eq!(sw(&mut c, "00A40900"), "6700");
    assert_eq!(sw(&mut c, "00A4090C04DF01EF01"), "9000");
}

#[test]
fn the_psam_selects_0015_0016_and_paths_with_its_fcp_behind_61xx() {
    for alg in ALGS {
        let (_, mut p) = sscard_model::test_pair(alg);
        assert_eq!(sw(&mut p, "00A40000020015"), "9000");
        assert_eq!(
            tx(&mut p, "00B0000B01"),
            format!("{:02X}9000", alg.id()),
            "EF15 byte 11: the algorithm"
        );
        assert_eq!(sw(&mut p, "00A40200020016"), "9000");
        assert_eq!(tx(&mut p, "00B0000006"), "1101000000019000");
        assert_eq!(sw(&mut p, "00A4080002DF01"), "6109");
        assert_eq!(tx(&mut p, "00C0000009"), "62078201388302DF019000");
        assert_eq!(
            sw(&mut p, "801A08010899110145000000A1"),
            "9000",
            "DF01 by path is the application"
        );
        assert_eq!(sw(&mut p, "00A4090002001500"), "610D");
        assert_eq!(tx(&mut p, "00C000000D"), "620B82010183020015800200189000");
        assert_eq!(sw(&mut p, "00A4080004DF010016"), "610D");
        assert_eq!(sw(&mut p, "00A4080C020016"), "9000", "P2 0C: no FCP");
        assert_eq!(sw(&mut p, "00A40000020016"), "9000", "no Le: no FCP");
        assert_eq!(sw(&mut p, "00A408000400150016"), "6A82");
        assert_eq!(sw(&mut p, "00A40800043F00DF01"), "6A82");
        assert_eq!(sw(&mut p, "00A4080003DF0100"), "6700");
        assert_eq!(sw(&mut p, "00A40400020015"), "6A86");
        assert_eq!(sw(&mut p, "00A40000020017"), "6A82");
    }
}

#[test]
fn a_plain_update_answers_6982_and_writes_nothing() {
    for alg in ALGS {
        let mut c = card(alg);
        assert_eq!(sw(&mut c, "00DC022C03020135"), "6982");
        assert_eq!(tx(&mut c, "00B2022C00"), "0201339000");
        assert_eq!(sw(&mut c, "00A4000002DF01"), "9000");
        assert_eq!(sw(&mut c, "0020000003123456"), "9000");
        assert_eq!(sw(&mut c, "00D6820002AABB"), "6982");
        assert_eq!(tx(&mut c, "00B0820002"), "00009000");
    }
}

#[test]
fn a_failed_check_revokes_its_grant_at_once() {
    for alg in ALGS {
        let mut c = card(alg);
        assert_eq!(sw(&mut c, "00A4000002DF01"), "9000");
        let read_ef01 = |c: &mut Ssc| sw(c, "00B2010C00");
        // Wrong VERIFY, of another length, malformed; wrong CHANGE PIN.
        for wrong in [
            "0020000003111111",
            "0020000002 1234",
            "0020000002 1A2B",
            "805E010007111111FF654321",
        ] {
            assert_eq!(sw(&mut c, "0020000003123456"), "9000");
            assert_eq!(read_ef01(&mut c), "9000");
            let answer = sw(&mut c, &wrong.replace(' ', ""));
            assert!(answer == "63C2" || answer == "6A80", "{wrong}: {answer}");
            assert_eq!(read_ef01(&mut c), "6982", "{alg:?} after {wrong}");
        }
        // A wrong cryptogram takes EAK_L's grant, not the PIN's.
        assert_eq!(ext_auth(&mut c, alg, Kid::EakL, true).unwrap(), "9000");
        assert_eq!(ext_auth(&mut c, alg, Kid::EakL, false).unwrap(), "63C4");
        assert_eq!(read_ef01(&mut c), "6982");
        assert_eq!(sw(&mut c, "0020000003123456"), "9000");
        assert_eq!(ext_auth(&mut c, alg, Kid::EakL, false).unwrap(), "63C3");
        assert_eq!(read_ef01(&mut c), "9000", "the PIN still opens DF01");
        // A blocked PIN: refused, never verified, until UNBLOCK.
        for left in ["63C2", "63C1", "63C0"] {
            assert_eq!(sw(&mut c, "0020000003111111"), left);
        }
        assert_eq!(read_ef01(&mut c), "6982");
        assert_eq!(sw(&mut c, "0020000003123456"), "6983");
        assert_eq!(read_ef01(&mut c), "6982");
        // RKSSSE and EF07.
        select_ssse(&mut c).unwrap();
        assert_eq!(ext_auth(&mut c, alg, Kid::Rkssse, true).unwrap(), "9000");
        assert_eq!(sw(&mut c, "00B2013C00"), "9000");
        assert_eq!(
            sw(
                &mut c,
                &format!(
                    "0082000A{:02X}{}",
                    alg.block_size(),
                    "00".repeat(alg.block_size())
                )
            ),
            "6984",
            "no challenge"
        );
        assert_eq!(
            sw(&mut c, "00B2013C00"),
            "6982",
            "even a refused attempt revokes"
        );
    }
}

#[test]
fn external_authenticate_takes_only_authentication_keys() {
    for alg in ALGS {
        let mut c = card(alg);
        for k in [Kid::Irk, Kid::UkN, Kid::Upk, Kid::Rpk] {
            assert_eq!(
                ext_auth(&mut c, alg, k, true).unwrap(),
                "6A88",
                "{k} in SSSE"
            );
        }
        assert_eq!(sw(&mut c, "00A4000002DF01"), "9000");
        for k in [Kid::UkL, Kid::Rpk, Kid::Upk] {
            assert_eq!(
                ext_auth(&mut c, alg, k, true).unwrap(),
                "6A88",
                "{k} in DF01"
            );
        }
        challenge(&mut c, 8).unwrap();
        let b = alg.block_size();
        assert_eq!(
            sw(&mut c, &format!("00820030{b:02X}{}", "00".repeat(b))),
            "6A88",
            "the PIN object"
        );
        assert_eq!(
            ext_auth(&mut c, alg, Kid::EakL, false).unwrap(),
            "63C4",
            "the refused KIDs used no try"
        );
        assert_eq!(ext_auth(&mut c, alg, Kid::EakL, true).unwrap(), "9000");
    }
}
