//! Cross-checks against code nobody on the host or model side wrote: `tests/independent/` holds
//! a card (SSC + city PSAM) and a terminal written from PROFILE.md alone, in Python. Our host
//! reads, writes, changes PINs on and personalises the independent card through pcscd; the
//! independent terminal runs read basic info and its conformance checks against our model
//! through pcscd. A shortcut shared only by our host and our model fails here.

use sscard_e2e::*;

fn host_info(alg_name: &str, card: &IndependentCard) {
    let o = sscard(&[
        "info",
        "--reader",
        READER_E0,
        "--psam-reader",
        READER_E1,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let (info, want) = (&v["info"], &card.serves);
    assert_eq!(v["code"], 0);
    assert_eq!(info["algorithm"], alg_name);
    assert_eq!(info["card"]["card_id"], want["card_id"]);
    assert_eq!(info["card"]["card_number"], want["card_number"]);
    assert_eq!(info["card"]["spec_version"], want["spec_version"]);
    assert_eq!(info["holder"]["ssn"], want["ssn"]);
    assert_eq!(info["holder"]["name"], want["name"]);
    assert_eq!(info["holder"]["gender"], want["gender"]);
    let date = |d: &serde_json::Value| d.as_str().unwrap().replace('-', "");
    assert_eq!(date(&info["card"]["issue_date"]), want["issue_date"]);
    assert_eq!(date(&info["holder"]["birth_date"]), want["birth_date"]);
    assert_eq!(
        v["unified"],
        format!(
            "110100|{}|{}|{}|{}|5353434152443031|{}|{}|{}|110100000001||",
            want["ssn"].as_str().unwrap(),
            want["card_number"].as_str().unwrap(),
            want["card_id"].as_str().unwrap(),
            want["name"].as_str().unwrap(),
            want["spec_version"].as_str().unwrap(),
            want["issue_date"].as_str().unwrap(),
            want["expiry_date"].as_str().unwrap(),
        )
    );
}

#[test]
fn both_independent_programs_pass_their_self_tests() {
    let o = std::process::Command::new("/usr/bin/python3")
        .arg(independent("card.py"))
        .arg("--self-test")
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).contains("self-test PASSED"));
    let o = independent_terminal(&["selftest"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["failed"], 0, "{v}");
    assert!(v["passed"].as_u64().unwrap() >= 20, "{v}");
}

#[test]
fn host_reads_writes_and_changes_the_pin_of_the_independent_card() {
    let _g = exclusive();
    for (alg, name) in [("3des", "3DES"), ("sm4", "SM4")] {
        let card = IndependentCard::start(&["--alg", alg]);
        host_info(name, &card);
        // Line-protected write of a national record through the PSAM, read back.
        let o = sscard(&[
            "write",
            "EF06",
            "--record",
            "4",
            "--tlv",
            "0A0132",
            "--reader",
            READER_E0,
            "--psam-reader",
            READER_E1,
            "--json",
        ]);
        assert!(o.status.success(), "{alg}: {}", stderr(&o));
        let o = sscard(&[
            "read",
            "EF06",
            "--record",
            "4",
            "--reader",
            READER_E0,
            "--psam-reader",
            READER_E1,
            "--json",
        ]);
        assert!(o.status.success(), "{alg}: {}", stderr(&o));
        assert_eq!(
            json(&o)["records"],
            serde_json::json!([{ "tag": "0A", "value": "32" }]),
            "{alg}"
        );
        // A local record under UK_L, read back after EAK_L.
        let o = sscard(&[
            "write",
            "DF01/EF01",
            "--record",
            "1",
            "--tlv",
            &format!("4008{}", "11".repeat(8)),
            "--reader",
            READER_E0,
            "--keys",
            "test",
            "--json",
        ]);
        assert!(o.status.success(), "{alg}: {}", stderr(&o));
        let o = sscard(&[
            "read",
            "DF01/EF01",
            "--record",
            "1",
            "--reader",
            READER_E0,
            "--keys",
            "test",
            "--json",
        ]);
        assert!(o.status.success(), "{alg}: {}", stderr(&o));
        assert!(
            stdout(&o).contains(&"11".repeat(8)),
            "{alg}: {}",
            stdout(&o)
        );
        // The PIN policy and a change, then a wrong PIN with its remaining tries.
        let pin = |args: &[&str], input: &str| {
            let mut a = vec!["pin"];
            a.extend_from_slice(args);
            a.extend_from_slice(&[
                "--reader",
                READER_E0,
                "--keys",
                "test",
                "--pin-stdin",
                "--json",
            ]);
            let o = sscard_env(&a, &[], Some(input));
            (o.status.code(), json(&o)["code"].as_i64().unwrap())
        };
        assert_eq!(pin(&["verify"], "123456\n"), (Some(0), -35), "{alg}");
        assert_eq!(
            pin(&["change"], "123456\n123456\n123456\n"),
            (Some(2), -36),
            "{alg}"
        );
        assert_eq!(
            pin(&["change"], "123456\n802417\n802417\n"),
            (Some(0), 0),
            "{alg}"
        );
        assert_eq!(pin(&["verify"], "802417\n"), (Some(0), 0), "{alg}");
        assert_eq!(pin(&["verify"], "123456\n"), (Some(1), -51), "{alg}");
        drop(card);
    }
}

#[test]
fn host_personalises_a_blank_independent_card() {
    let _g = exclusive();
    let dir = std::env::temp_dir().join(format!("sscard-independent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let batch = dir.join("batch.csv");
    std::fs::write(
        &batch,
        "card_number,ssn,name,gender,nation,birthplace,birth_date,issue_date,expiry_date,pension,medical,medical_account\n\
         A12345674,11010519491231002X,欧阳娜娜,2,01,110105,19491231,20240101,20340101,01,01,1101000000012345\n",
    )
    .unwrap();
    for (alg, name) in [("3des", "3DES"), ("sm4", "SM4")] {
        let card = IndependentCard::start(&["--alg", alg, "--blank"]);
        let journal = format!("sqlite:{}", dir.join(format!("{alg}.db")).display());
        let o = sscard(&[
            "perso",
            "run",
            "--operator",
            "tester",
            "--batch",
            batch.to_str().unwrap(),
            "--readers",
            READER_E0,
            "--journal",
            &journal,
            "--idle",
            "2",
            "--json",
        ]);
        assert!(o.status.success(), "{alg}: {}{}", stdout(&o), stderr(&o));
        let status = json(&sscard(&[
            "perso",
            "status",
            "--journal",
            &journal,
            "--json",
        ]));
        assert_eq!(
            status["states"],
            serde_json::json!({ "issued": 1 }),
            "{alg}"
        );
        let o = sscard(&[
            "info",
            "--reader",
            READER_E0,
            "--psam-reader",
            READER_E1,
            "--json",
        ]);
        assert!(o.status.success(), "{alg}: {}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["info"]["algorithm"], name);
        assert_eq!(v["info"]["card"]["card_id"], card.serves["card_id"]);
        assert_eq!(v["info"]["card"]["card_number"], "A12345674");
        assert_eq!(v["info"]["holder"]["name"], "欧阳娜娜");
        assert_eq!(v["info"]["holder"]["ssn"], "11010519491231002X");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn independent_terminal_passes_against_the_model_through_pcscd() {
    let _g = exclusive();
    for alg in ["3des", "sm4"] {
        let _m = ModelServer::start(
            &["--alg", alg, "--port", &PORT_F.to_string()],
            &[READER_F0, READER_F1],
        );
        let o = independent_terminal(&["info", "--card", READER_F0, "--psam", READER_F1]);
        assert!(o.status.success(), "{alg}: {}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["return_code"], 0, "{alg}");
        assert_eq!(
            v["fields"]["card_identification_code"],
            "110100D15600000599110145000000A1"
        );
        assert_eq!(v["fields"]["full_name"], "张三");
        // Version 3's line (historical bytes, no device number) as the independent terminal
        // builds it, and ours on the same card: the same bytes.
        let ours = sscard(&[
            "info",
            "--reader",
            READER_F0,
            "--psam-reader",
            READER_F1,
            "--json",
        ]);
        assert!(ours.status.success(), "{alg}: {}", stderr(&ours));
        assert_eq!(v["unified_output"], json(&ours)["unified"], "{alg}");
        assert!(
            v["unified_output"]
                .as_str()
                .unwrap()
                .contains("|张三|5353434152443031|"),
            "{alg}: {}",
            v["unified_output"]
        );
        let o = independent_terminal(&[
            "conformance",
            "--card",
            READER_F0,
            "--psam",
            READER_F1,
            "--brief",
        ]);
        let v = json(&o);
        assert!(o.status.success(), "{alg}: {}\n{}", stderr(&o), v["failed"]);
        assert_eq!(v["summary"]["failed"], 0, "{alg}: {}", v["failed"]);
        assert!(
            v["summary"]["checks"].as_u64().unwrap() >= 450,
            "{alg}: {}",
            v["summary"]
        );
    }
}

#[test]
fn a_province_psam_reads_national_files_and_is_too_low_for_local_ones() {
    let _g = exclusive();
    let card = IndependentCard::start(&["--psam-level", "1", "--psam-region", "110000"]);
    // National keys: two factors from the province level down (PROFILE section 6).
    host_info("3DES", &card);
    let o = sscard(&[
        "read",
        "DF01/EF01",
        "--reader",
        READER_E0,
        "--psam-reader",
        READER_E1,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert_eq!(
        json(&o),
        serde_json::json!({
            "code": -24,
            "error": "the PSAM's level (1) holds no EAK_L (KID 11): local keys need a city PSAM (-24)",
            "exit": 6
        })
    );
}

#[test]
fn a_psam_without_rkssse_is_2203_on_an_sm4_card() {
    let _g = exclusive();
    let _card = IndependentCard::start(&["--alg", "sm4", "--psam-omit", "RKSSSE"]);
    let o = sscard(&[
        "info",
        "--reader",
        READER_E0,
        "--psam-reader",
        READER_E1,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert_eq!(
        json(&o),
        serde_json::json!({
            "code": -2203,
            "error": "the PSAM has no key 0A (RKSSSE)",
            "exit": 6
        })
    );
}
