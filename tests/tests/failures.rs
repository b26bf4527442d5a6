//! Failure paths of the social security host through pcscd, with their unified return codes.

use sscard_e2e::*;

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sscard-failures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn model_new(args: &[&str]) {
    let o = std::process::Command::new(bin("sscard-model"))
        .arg("new")
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn no_psam_is_2201_and_auto_finds_it() {
    let _g = exclusive();
    {
        let _m = ModelServer::start(&["--no-psam"], &[READER_0]);
        let o = sscard(&[
            "info",
            "--json",
            "--reader",
            READER_0,
            "--psam-reader",
            READER_1,
        ]);
        assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["code"], -2201);
        assert!(v["error"].as_str().unwrap().starts_with("no PSAM:"), "{v}");
    }
    let _m = ModelServer::start(&[], &[READER_0, READER_1]);
    let o = sscard(&["info", "--json", "--psam-reader", "auto"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["info"]["terminal_number"], "110100000001");
}

#[test]
fn psam_of_another_city_is_refused_before_des_init() {
    let _g = exclusive();
    let psam = tmp("psam-120100.json");
    model_new(&[
        "--kind",
        "psam",
        "--city",
        "120100",
        "--out",
        psam.to_str().unwrap(),
    ]);
    let _m = ModelServer::start(&["--psam", psam.to_str().unwrap()], &[READER_0, READER_1]);
    let o = sscard(&[
        "info",
        "--json",
        "--reader",
        READER_0,
        "--psam-reader",
        READER_1,
    ]);
    // Not "not genuine" (-21): the card is fine, the PSAM serves another city (-24).
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert_eq!(
        json(&o),
        serde_json::json!({"code": -24, "error": "the PSAM (level 2, region 120100) does not serve cards of region 110100: a PSAM of the card's city or of a higher level is needed (-24)", "exit": 6})
    );
}

#[test]
fn wrong_external_authentication_key_is_minus_sw() {
    use std::os::unix::fs::PermissionsExt;
    let _g = exclusive();
    let keys = tmp("wrong-rkssse.keys");
    std::fs::write(
        &keys,
        "IRK = 11111111111111112222222222222222\nRKSSSE = 00000000000000000000000000000000\n",
    )
    .unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let _m = ModelServer::start(&["--alg", "sm4", "--no-psam"], &[READER_0]);
    let o = sscard(&[
        "info",
        "--json",
        "--reader",
        READER_0,
        "--keys",
        &format!("soft:{}", keys.display()),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        v["code"],
        -(0x63C4),
        "63C4 read as an unsigned number, negated"
    );
    assert_eq!(
        v["error"],
        "EXTERNAL AUTHENTICATE answered 63C4 (verification failed, 4 tries left)"
    );
}

#[test]
fn wrong_card_type_is_minus_1() {
    let _g = exclusive();
    let _m = ModelServer::start(&[], &[READER_0, READER_1]);
    let o = sscard(&["info", "--json", "--reader", READER_1, "--keys", "test"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["code"], -1);
    assert_eq!(v["error"], "not a social security card: SELECT of the SSSE application answered 6A86 (incorrect parameters P1-P2)");
}

#[test]
fn card_pulled_mid_write_leaves_the_old_or_the_new_record() {
    let _g = exclusive();
    let image = tmp("card.json");
    model_new(&["--kind", "personalised", "--out", image.to_str().unwrap()]);
    let m = ModelServer::start(&["--card", image.to_str().unwrap()], &[READER_0, READER_1]);
    let base = ["--reader", READER_0, "--psam-reader", READER_1];
    let run = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend_from_slice(&base);
        sscard(&a)
    };
    assert_eq!(m.control("tear 0 1"), "ok");
    let o = run(&[
        "write", "EF06", "--record", "4", "--tlv", "0A0132", "--json",
    ]);
    // A write that got no answer may or may not have happened: exit 7.
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    // The model drops its vpcd connection when power goes. pcscd reports that as an empty answer,
    // or as a removed card when its presence poll saw the drop first (a race inside pcscd, seen
    // in CI): either exact cause says the write did not complete.
    let v = json(&o);
    let outcome = (v["code"].as_i64(), v["error"].as_str().unwrap_or_default());
    let unknown = |cause: &str| {
        format!("UPDATE RECORD: no answer came back ({cause}); the card may or may not have carried it out: read the card to see whether it changed before doing anything again")
    };
    assert!(
        outcome
            == (
                Some(-4),
                unknown("malformed response: 0 byte(s), no status word").as_str()
            )
            || outcome == (Some(-2), unknown("the card was removed").as_str()),
        "power cut mid-write: {v}"
    );
    let text = std::fs::read_to_string(&image).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).expect("the image is intact");
    let gender = v["files"]["EF06"]["records"][3]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(gender == "31" || gender == "32", "{gender}");
    // The card comes back (pcscd reconnects the served card) and the write goes through.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let o = loop {
        let o = run(&["write", "EF06", "--record", "4", "--tlv", "0A0132"]);
        if o.status.success() || std::time::Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&image).unwrap()).unwrap();
    assert_eq!(v["files"]["EF06"]["records"][3]["value"], "32");
}

#[test]
fn wait_for_a_card_inserted_after_the_command_started() {
    let _g = exclusive();
    ensure_pcscd();
    let child = std::process::Command::new(bin("sscard"))
        .args([
            "info", "--json", "--reader", READER_0, "--keys", "test", "--wait", "20",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let _m = ModelServer::start(&["--no-psam"], &[READER_0]);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["info"]["card"]["card_number"], "A12345674");
    let o = sscard(&[
        "info", "--json", "--reader", READER_1, "--keys", "test", "--wait", "1",
    ]);
    assert_eq!(json(&o)["code"], -2, "no card after the wait");
}

#[test]
fn a_card_still_in_personalisation_reports_no_fields() {
    let _g = exclusive();
    let blank = tmp("blank.json");
    model_new(&["--kind", "blank", "--out", blank.to_str().unwrap()]);
    let _m = ModelServer::start(&["--card", blank.to_str().unwrap()], &[READER_0, READER_1]);
    let o = sscard(&["info", "--json", "--reader", READER_0, "--keys", "test"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(
        json(&o),
        serde_json::json!({
            "error": "the card is not issued (life cycle PERSONALISATION): personalise it first",
            "code": -1,
            "exit": 4
        })
    );
}

#[test]
fn end_of_input_at_the_pin_prompt_is_a_cancelled_entry() {
    // No card is touched: the PIN is read first.
    let o = sscard(&["pin", "verify", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        json(&o),
        serde_json::json!({ "error": "PIN entry cancelled", "code": -31, "exit": 2 })
    );
}
