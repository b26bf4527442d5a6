//! The conformance suite in `apdu-scripts/`: passes against the model in-process and through
//! pcscd for both algorithms, writes valid JUnit, and fails — naming the case — against a model
//! with a deliberately broken rule.

use sscard_e2e::*;

fn scripts() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../apdu-scripts").to_string()
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sscard-conformance-{}-{name}", std::process::id()))
}

/// Checks the JUnit file: valid against `docs/junit.xsd` (xmllint), and the counts add up.
fn check_junit(path: &std::path::Path) -> (u64, u64) {
    let o = std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/junit.xsd"))
        .arg(path)
        .output()
        .expect("xmllint runs (scripts/setup.sh installs libxml2-utils)");
    assert!(
        o.status.success(),
        "JUnit does not validate against docs/junit.xsd: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let code = "import sys, xml.etree.ElementTree as ET\nr = ET.parse(sys.argv[1]).getroot()\nassert r.tag == 'testsuites'\ncases = r.findall('./testsuite/testcase')\nfails = r.findall('./testsuite/testcase/failure')\nassert int(r.get('tests')) == len(cases), (r.get('tests'), len(cases))\nassert int(r.get('failures')) == len(fails)\nfor s in r.findall('testsuite'):\n    assert int(s.get('tests')) == len(s.findall('testcase'))\nprint(len(cases), len(fails))\n";
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(code)
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "JUnit does not validate: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let mut n = text.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    (n.next().unwrap(), n.next().unwrap())
}

/// Cases that run per algorithm (the others are `only` the other one), PROFILE version 3: before
/// version 3's field shapes and revocation rules, 229 (3DES) and 219 (SM4). The 16-byte
/// INTERNAL AUTHENTICATE cases of `ssc/09` check the answer with `int-auth` against the key
/// source, one case for both algorithms where there were two `only` cases with the sample
/// card's answers: 5 skipped fewer per algorithm (25 and 35 before), the same passed.
const CASES: [(&str, u64, u64); 2] = [("3des", 301, 20), ("sm4", 291, 30)];

#[test]
fn suite_passes_in_process_for_both_algorithms() {
    for (alg, want_passed, want_skipped) in CASES {
        let junit = tmp(&format!("{alg}.xml"));
        let o = sscard(&[
            "script",
            "run",
            &scripts(),
            "--model",
            "--alg",
            alg,
            "--junit",
            junit.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        let summary = stdout(&o);
        assert!(
            summary.starts_with(&format!(
                "{want_passed} passed, 0 failed, {want_skipped} skipped (13 files"
            )),
            "{alg}: {summary}"
        );
        let (cases, failures) = check_junit(&junit);
        assert_eq!((cases, failures), (want_passed + want_skipped, 0), "{alg}");
    }
}

#[test]
fn a_broken_rule_fails_the_suite_with_the_case_named() {
    let junit = tmp("broken.xml");
    let o = sscard(&[
        "script",
        "run",
        &scripts(),
        "--model",
        "--model-defect",
        "mac-not-checked",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("FAIL ") && out.contains("UPDATE RECORD with a wrong MAC answers 6988: "),
        "{out}"
    );
    assert!(out.contains("expected 6988, got 9000 (success)"), "{out}");
    let (_, failures) = check_junit(&junit);
    assert!(failures >= 5, "{failures}");
    let o = sscard(&[
        "script",
        "run",
        &format!("{}/ssc/07-pin.apdu", scripts()),
        "--model",
        "--model-defect",
        "try-counter-not-decremented",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    let failed = failed_cases(&v);
    assert!(
        failed.contains(&"a wrong PIN answers 63C2 and the right one restores the counter"),
        "{failed:?}"
    );
}

/// The names of the failed cases of a one-file `script run --json` report.
fn failed_cases(v: &serde_json::Value) -> Vec<&str> {
    v["files"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "failed")
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
fn a_grant_that_survives_a_failed_check_fails_the_revocation_suite() {
    for alg in ["3des", "sm4"] {
        let o = sscard(&[
            "script",
            "run",
            &format!("{}/ssc/10-revocation.apdu", scripts()),
            "--model",
            "--alg",
            alg,
            "--model-defect",
            "grant-survives-failure",
            "--json",
        ]);
        assert_eq!(o.status.code(), Some(1), "{alg}: {}", stderr(&o));
        let v = json(&o);
        let failed = failed_cases(&v);
        for name in [
            "a wrong VERIFY revokes the PIN grant",
            "a wrong VERIFY of another length revokes the PIN grant",
            "a wrong CHANGE PIN revokes the PIN grant",
            "a wrong cryptogram revokes the EAK_L grant",
            "a wrong cryptogram revokes the RKSSSE grant",
        ] {
            assert!(failed.contains(&name), "{alg}: {name} passed: {failed:?}");
        }
    }
}

#[test]
fn suite_passes_through_pcscd_for_both_algorithms() {
    let _g = exclusive();
    for alg in ["3des", "sm4"] {
        let _m = ModelServer::start(&["--alg", alg], &[READER_0, READER_1]);
        // Software test keys, then the PSAM as key source: the runner warm-resets the PSAM
        // before every case, under the key source's own connection to it.
        for keys in [&["--keys", "test"][..], &[][..]] {
            let mut args = vec![
                "script".to_string(),
                "run".into(),
                format!("{}/ssc", scripts()),
                format!("{}/psam", scripts()),
                "--reader".into(),
                READER_0.into(),
                "--psam-reader".into(),
                READER_1.into(),
            ];
            args.extend(keys.iter().map(|s| s.to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = sscard(&args);
            assert!(
                o.status.success(),
                "{alg} {keys:?}: {}{}",
                stdout(&o),
                stderr(&o)
            );
            assert!(stdout(&o).contains(" passed, 0 failed"), "{}", stdout(&o));
        }
    }
}

#[test]
fn personalisation_suite_passes_through_pcscd_on_a_blank_card() {
    let _g = exclusive();
    for alg in ["3des", "sm4"] {
        let blank = tmp(&format!("blank-{alg}.json"));
        let o = std::process::Command::new(bin("sscard-model"))
            .args(["new", "--kind", "blank", "--alg", alg, "--out"])
            .arg(&blank)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let _m = ModelServer::start(
            &["--alg", alg, "--card", blank.to_str().unwrap()],
            &[READER_0, READER_1],
        );
        // A PSAM cannot wrap card keys under TK: the suite's WRITE KEYs take software keys.
        let o = sscard(&[
            "script",
            "run",
            &format!("{}/perso", scripts()),
            "--reader",
            READER_0,
            "--keys",
            "test",
        ]);
        assert!(o.status.success(), "{alg}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).starts_with("13 passed, 0 failed"),
            "{alg}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn int_auth_checks_any_answer_against_the_key_source() {
    let path = tmp("int-auth.apdu");
    std::fs::write(
        &path,
        "set $ssse = 7378312E73682EC9E7BBE1B1A3D5CF\n\
         test \"16 bytes under IRK\"\n  00A404000F $ssse\n  int-auth IRK p2 00 0102030405060708 1112131415161718 -> 9000 save $a\n  int-auth IRK 0102030405060708 1112131415161718 -> 9000 $a\n\
         test \"checked against another key\"\n  00A404000F $ssse\n  int-auth RKSSSE p2 00 0102030405060708 1112131415161718\n\
         test \"compared with a saved answer\"\n  00A404000F $ssse\n  int-auth IRK 0102030405060708 -> 9000 save $a\n  int-auth IRK 0102030405060709 -> 9000 $a\n\
         test \"compared with a variable never set\"\n  00A404000F $ssse\n  int-auth IRK -> 9000 $nothing\n",
    )
    .unwrap();
    for alg in ["3des", "sm4"] {
        let o = sscard(&[
            "--json",
            "script",
            "run",
            path.to_str().unwrap(),
            "--model",
            "--alg",
            alg,
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let v = json(&o);
        let messages: Vec<&serde_json::Value> = v["files"][0]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["message"])
            .collect();
        let file = path.display();
        assert_eq!(v["files"][0]["cases"][0]["outcome"], "passed", "{alg}: {v}");
        assert_eq!(
            messages[1],
            &format!(
                "{file}:8: INTERNAL AUTHENTICATE: the cryptogram does not match the key source"
            ),
            "{alg}"
        );
        let got = messages[2].as_str().unwrap();
        assert!(
            got.starts_with(&format!("{file}:12: expected data $a, got ")),
            "{alg}: {got}"
        );
        assert_eq!(
            messages[3],
            &format!("{file}:15: unknown variable $nothing"),
            "{alg}"
        );
    }
}

#[test]
fn script_errors_name_file_line_and_column() {
    let path = tmp("bad.apdu");
    std::fs::write(&path, "test \"x\"\n  00A4 04 00 -> 90G0\n").unwrap();
    let o = sscard(&["script", "run", path.to_str().unwrap(), "--model"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!(
            "sscard: error: {}:2:17: 'G' in status word pattern \"90G0\" is not hex, x or ?\n",
            path.display()
        )
    );
}

#[test]
fn scriptor_files_import_with_comments() {
    let input = tmp("in.scriptor");
    let output = tmp("out.apdu");
    std::fs::write(&input, "# select SSSE\n00 A4 04 00 0F 73 78 31 2E 73 68 2E C9 E7 BB E1 B1 A3 D5 CF\n00 B2 01 2C 00\n").unwrap();
    let o = sscard(&[
        "script",
        "import",
        input.to_str().unwrap(),
        output.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&output).unwrap();
    assert!(text.contains("  # select SSSE\n"), "{text}");
    let o = sscard(&["script", "run", output.to_str().unwrap(), "--model"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).starts_with("1 passed, 0 failed"),
        "{}",
        stdout(&o)
    );
}
