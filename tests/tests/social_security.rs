//! The social security host through pcscd + vpcd + sscard-model, for 3DES and SM4 cards, with
//! the PSAM and the software key source.

use sscard_e2e::*;

fn info_json(args: &[&str]) -> serde_json::Value {
    let mut a = vec!["info", "--json", "--reader", READER_0];
    a.extend_from_slice(args);
    let o = sscard(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    json(&o)
}

#[test]
fn read_basic_info_via_psam_and_soft_keys_for_both_algorithms() {
    let _g = exclusive();
    for (alg, version) in [("3des", "2.00"), ("sm4", "3.00")] {
        let _m = ModelServer::start(&["--alg", alg], &[READER_0, READER_1]);
        let via_psam = info_json(&["--psam-reader", READER_1]);
        assert_eq!(via_psam["code"], 0);
        assert_eq!(via_psam["info"]["card"]["spec_version"], version);
        assert_eq!(via_psam["info"]["holder"]["name"], "张三");
        assert_eq!(via_psam["info"]["holder"]["ssn"], "11010519491231002X");
        // PROFILE version 3: the ATR's historical bytes ("SSCARD01"), and the terminal device
        // number from the reader's serial number, which vpcd does not report
        // (SCARD_ATTR_VENDOR_IFD_SERIAL_NO unsupported), so empty unless configured.
        assert_eq!(via_psam["info"]["atr"], "3B880153534341524430319C");
        assert_eq!(via_psam["info"]["historical_bytes"], "5353434152443031");
        assert_eq!(
            via_psam["unified"],
            format!("110100|11010519491231002X|A12345674|110100D15600000599110145000000A1|张三|5353434152443031|{version}|20240101|20340101|110100000001||")
        );
        // What pcscd answers for the attribute with vpcd: SCARD_E_UNSUPPORTED_FEATURE.
        let ctx = sscard_transport::pcsc::establish().unwrap();
        let reader =
            sscard_transport::pcsc::PcscBackend::connect(&ctx, Some(READER_0), false).unwrap();
        assert_eq!(
            reader
                .raw_card()
                .get_attribute_owned(pcsc::Attribute::VendorIfdSerialNo),
            Err(pcsc::Error::UnsupportedFeature)
        );
        assert_eq!(
            sscard_transport::Connection::new(reader).reader_serial(),
            None
        );
        let configured = info_json(&["--psam-reader", READER_1, "--device-number", "T-0042"]);
        assert_eq!(
            configured["unified"],
            format!("110100|11010519491231002X|A12345674|110100D15600000599110145000000A1|张三|5353434152443031|{version}|20240101|20340101|110100000001|T-0042|")
        );
        let o = sscard_env(
            &["info", "--unified", "--reader", READER_0, "--keys", "test"],
            &[("SSCARD_DEVICE_NUMBER", "ENV-7")],
            None,
        );
        // Software keys have no PSAM, so no terminal number.
        assert_eq!(
            stdout(&o),
            format!("110100|11010519491231002X|A12345674|110100D15600000599110145000000A1|张三|5353434152443031|{version}|20240101|20340101||ENV-7|\n")
        );
        let o = sscard(&[
            "info",
            "--reader",
            READER_0,
            "--device-number",
            "a|b",
            "--json",
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(json(&o)["code"], -23);
        let soft = info_json(&["--keys", "test"]);
        assert_eq!(soft["info"]["card"], via_psam["info"]["card"]);
        assert_eq!(soft["info"]["holder"], via_psam["info"]["holder"]);
        let o = sscard(&[
            "info",
            "--unified",
            "--reader",
            READER_0,
            "--psam-reader",
            READER_1,
        ]);
        assert_eq!(stdout(&o).trim_end(), via_psam["unified"].as_str().unwrap());
    }
}

/// `--max-apdus` / `--max-bytes` reach the card's and the PSAM's connections: a flow that
/// needs more than the budget ends with a typed error (-4, exit 4) before the APDU that would
/// pass it.
#[test]
fn the_transmit_budget_is_configurable_and_typed() {
    let _g = exclusive();
    let _m = ModelServer::start(&["--alg", "sm4"], &[READER_0, READER_1]);
    let base = [
        "info",
        "--json",
        "--reader",
        READER_0,
        "--psam-reader",
        READER_1,
    ];
    let o = sscard(&[&base[..], &["--max-apdus", "3"]].concat());
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["code"], -4);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("not sent, the flow already exchanged 3 APDUs"),
        "{v}"
    );
    let o = sscard_env(&base, &[("SSCARD_MAX_BYTES", "100")], None);
    assert_eq!(json(&o)["code"], -4, "{}", stdout(&o));
    // SM4 read basic info takes 6 APDUs: exactly enough.
    let o = sscard(&[&base[..], &["--max-apdus", "6"]].concat());
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(json(&o)["info"]["apdus"], 6);
    let o = sscard(&[&base[..], &["--max-apdus", "0"]].concat());
    assert_eq!(
        (o.status.code(), json(&o)["code"].as_i64()),
        (Some(2), Some(-23))
    );
}

#[test]
fn pin_paths_and_unified_codes() {
    let _g = exclusive();
    let _m = ModelServer::start(&[], &[READER_0, READER_1]);
    let pin = |action: &str, input: &str| {
        sscard_env(
            &[
                "pin",
                action,
                "--pin-stdin",
                "--json",
                "--reader",
                READER_0,
                "--psam-reader",
                READER_1,
            ],
            &[],
            Some(input),
        )
    };
    let o = pin("verify", "123456\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        json(&o),
        serde_json::json!({"code": -35, "message": "PIN verified: initial PIN, change required"})
    );
    let o = pin("change", "123456\n123456\n123456\n");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json(&o)["code"], -36);
    let o = pin("change", "123456\n802417\n802418\n");
    assert_eq!(json(&o)["code"], -34);
    let o = pin("change", "123456\n111111\n111111\n");
    assert_eq!(json(&o)["code"], -23);
    let o = pin("change", "123456\n802417\n802417\n");
    assert!(o.status.success(), "{}", stderr(&o));
    for left in [2, 1, 0] {
        let o = pin("verify", "123456\n");
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            json(&o),
            serde_json::json!({"code": -51, "error": format!("wrong PIN, {left} tries left"), "exit": 1})
        );
    }
    let o = pin("verify", "802417\n");
    assert_eq!(json(&o)["code"], -52);
    let o = pin("unblock", "");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = pin("verify", "802417\n");
    assert_eq!(json(&o)["code"], 0);
    let o = pin("reload", "246810\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&pin("verify", "246810\n"))["code"], 0);
    let o = pin("verify", "12a\n");
    assert_eq!(json(&o)["code"], -33);
}

#[test]
fn write_with_line_protection_and_read_back() {
    let _g = exclusive();
    let _m = ModelServer::start(&["--alg", "sm4"], &[READER_0, READER_1]);
    let base = ["--reader", READER_0, "--psam-reader", READER_1];
    let run = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend_from_slice(&base);
        sscard(&a)
    };
    let o = run(&["write", "EF06", "--record", "4", "--tlv", "0A0132"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["read", "EF06", "--record", "4", "--json"]);
    assert_eq!(
        json(&o)["records"],
        serde_json::json!([{"tag": "0A", "value": "32"}])
    );
    let o = run(&[
        "write", "EF06", "--record", "4", "--tlv", "0B0132", "--json",
    ]);
    assert_eq!(json(&o)["code"], -27264, "6A80 → −27264");
    let o = run(&[
        "write",
        "DF01/EF01",
        "--record",
        "1",
        "--tlv",
        "40080102030405060708",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["read", "DF01/EF01", "--record", "1", "--json"]);
    assert_eq!(
        json(&o)["records"],
        serde_json::json!([{"tag": "40", "value": "0102030405060708"}])
    );
    let o = run(&["read", "EF09"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn demo_runs_through_pcscd() {
    let _g = exclusive();
    ensure_pcscd();
    for alg in ["3des", "sm4"] {
        let o = sscard(&["demo", "--alg", alg, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v = json(&o);
        assert!(
            v["transport"]
                .as_str()
                .unwrap()
                .starts_with("through pcscd/vpcd"),
            "{v}"
        );
        assert_eq!(v["verify_initial_pin"]["code"], -35);
        assert_eq!(v["change_to_initial_pin"]["code"], -36);
        assert_eq!(v["verify_new_pin"]["code"], 0);
        assert_eq!(v["verify_old_pin"]["code"], -51);
        assert_eq!(v["info"]["holder"]["name"], "张三");
    }
    let o = sscard(&["demo", "--in-process"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("in-process, without pcscd (--in-process)"));
}
