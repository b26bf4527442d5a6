//! `sscard unified-test` through pcscd + vpcd: our own library (`libsscard_unified.so`) passes
//! every case; a deliberately broken variant (tests/unified/broken.c, compiled here) fails,
//! naming exactly the cases its defect touches; a missing function is an error of its case;
//! a foreign SSSE card in another reader stops the run before any case.

use sscard_e2e::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every case of the qualification (18 per algorithm, 8 once).
const CASES: u64 = 44;

fn bin_dir() -> PathBuf {
    bin("sscard")
        .parent()
        .expect("the binaries' directory")
        .to_path_buf()
}

/// Our library, built by `cargo build -p sscard-unified` (or the workspace's build).
fn our_library() -> PathBuf {
    let p = bin_dir().join("libsscard_unified.so");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p sscard-unified` first (scripts/test.sh builds the workspace)",
        p.display()
    );
    p
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sscard-unified-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// tests/unified/broken.c compiled into `dir`.
fn broken_library(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("unified/broken.c");
    let out = dir.join("libbroken_unified.so");
    let o = Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-ldl")
        .output()
        .expect("cc runs (a C compiler is required for this test)");
    assert!(o.status.success(), "cc failed: {}", stderr(&o));
    out
}

/// Runs `sscard unified-test --lib LIB --json-file …` with `env` and `extra` arguments; the
/// process output and the JSON report.
fn unified_test(
    lib: &Path,
    env: &[(&str, &str)],
    extra: &[&str],
    tag: &str,
) -> (std::process::Output, Option<serde_json::Value>) {
    let json = temp_dir(tag).join("report.json");
    let _ = std::fs::remove_file(&json);
    let mut args = vec![
        "unified-test",
        "--lib",
        lib.to_str().unwrap(),
        "--json-file",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = sscard_env(&args, env, None);
    let v = std::fs::read_to_string(&json)
        .ok()
        .map(|t| serde_json::from_str(&t).expect("the JSON report parses"));
    (o, v)
}

fn failing(v: &serde_json::Value) -> Vec<String> {
    v["failing"]
        .as_array()
        .expect("failing")
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn our_library_passes_every_case_in_every_report() {
    let _g = exclusive();
    ensure_pcscd();
    let dir = temp_dir("ours");
    let (junit, html) = (dir.join("report.xml"), dir.join("report.html"));
    let (o, v) = unified_test(
        &our_library(),
        &[],
        &[
            "--junit",
            junit.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
        "ours",
    );
    let v = v.unwrap_or_else(|| panic!("no report: {}{}", stdout(&o), stderr(&o)));
    assert_eq!(
        (v["passed"].as_u64(), v["total"].as_u64(), failing(&v)),
        (Some(CASES), Some(CASES), Vec::<String>::new()),
        "{}",
        stdout(&o)
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "{CASES} of {CASES} cases passed (0 failed, 0 errors, "
        )),
        "{}",
        stdout(&o)
    );
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(
        junit.contains(&format!("tests=\"{CASES}\" failures=\"0\"")),
        "{junit}"
    );
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains(&format!("{CASES} of {CASES} cases passed")));
    std::fs::remove_dir_all(dir).ok();
}

fn broken_run(mode: &str) -> (std::process::Output, serde_json::Value) {
    let dir = temp_dir(mode);
    let broken = broken_library(&dir);
    let real = our_library();
    let (o, v) = unified_test(
        &broken,
        &[
            ("SSCARD_BROKEN_REAL", real.to_str().unwrap()),
            ("SSCARD_BROKEN_MODE", mode),
        ],
        &[],
        mode,
    );
    std::fs::remove_dir_all(dir).ok();
    (o, v.unwrap_or_else(|| panic!("no report for {mode}")))
}

#[test]
fn a_library_that_drops_the_name_extension_fails_the_long_name_cases() {
    let _g = exclusive();
    ensure_pcscd();
    let (o, v) = broken_run("drop-name-extension");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        failing(&v),
        [
            "name-extension-3des",
            "two-step-long-name-3des",
            "name-extension-sm4",
            "two-step-long-name-sm4"
        ],
        "{}",
        stdout(&o)
    );
    assert_eq!(v["passed"].as_u64(), Some(CASES - 4));
    let case = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "name-extension-sm4")
        .unwrap();
    assert_eq!(case["verdict"], "fail");
    assert!(
        case["expected"]
            .as_str()
            .unwrap()
            .contains("|阿卜杜热合曼·买买提明·艾力克木江|")
            && case["got"]
                .as_str()
                .unwrap()
                .contains("|阿卜杜热合曼·买买提明·艾力克|"),
        "{case}"
    );
    assert!(stderr(&o).contains("name-extension-3des"), "{}", stderr(&o));
}

#[test]
fn a_library_that_returns_the_whole_atr_fails_every_line_with_the_atr() {
    let _g = exclusive();
    ensure_pcscd();
    let (o, v) = broken_run("whole-atr");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let mut want = Vec::new();
    for alg in ["3des", "sm4"] {
        for id in [
            "read-basic",
            "name-extension",
            "two-step",
            "two-step-long-name",
            "two-step-wrong-key",
        ] {
            want.push(format!("{id}-{alg}"));
        }
    }
    assert_eq!(failing(&v), want, "{}", stdout(&o));
    let case = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "read-basic-3des")
        .unwrap();
    assert!(
        case["got"]
            .as_str()
            .unwrap()
            .contains("|3B880153534341524430319C|"),
        "{case}"
    );
}

#[test]
fn a_missing_function_is_an_error_of_its_case() {
    let _g = exclusive();
    ensure_pcscd();
    // The C library exports none of the twelve functions.
    let (o, v) = unified_test(
        Path::new("libc.so.6"),
        &[],
        &["--case", "read-basic-sm4", "--case", "reader-info"],
        "missing",
    );
    let v = v.unwrap_or_else(|| panic!("no report: {}", stderr(&o)));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(v["total"], 2);
    assert_eq!(v["errors"], 2);
    assert_eq!(v["missing_functions"].as_array().unwrap().len(), 12);
    assert_eq!(v["cases"][0]["verdict"], "error");
    assert_eq!(
        v["cases"][0]["got"],
        "the library exports no `iReadCardBas`"
    );
}

#[test]
fn a_card_with_ssse_in_another_reader_stops_the_run() {
    let _g = exclusive();
    ensure_pcscd();
    let other = "Virtual PCD B 00 00";
    let port = vpcd_port(other).expect("a vpcd reader");
    let (card, _) = sscard_model::test_pair(sscard_core::crypto::Algorithm::Sm4);
    let mut served = sscard_model::vpcd::serve(
        sscard_model::card::shared(card),
        sscard_model::vpcd::ServeOptions::port(port),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !card_present(other) {
        assert!(std::time::Instant::now() < deadline, "no card in {other}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (o, v) = unified_test(Path::new("libc.so.6"), &[], &[], "foreign");
    served.stop();
    while card_present(other) {
        assert!(std::time::Instant::now() < deadline + std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(v.is_none());
    assert!(
        stderr(&o).contains(&format!(
            "reader \"{other}\" holds a card with the SSSE application"
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_utf8_configuration_passes_with_utf8_expected_and_its_device_number() {
    let _g = exclusive();
    ensure_pcscd();
    let dir = temp_dir("utf8");
    let config = dir.join("unified.toml");
    std::fs::write(
        &config,
        "encoding = \"utf-8\"\ndevice_number = \"T-0042\"\n",
    )
    .unwrap();
    let env = [("SSCARD_UNIFIED_CONFIG", config.to_str().unwrap())];
    let cases = [
        "--case",
        "name-extension",
        "--case",
        "read-national",
        "--case",
        "reader-info",
        "--device-number",
        "T-0042",
    ];
    let mut utf8 = cases.to_vec();
    utf8.extend(["--encoding", "utf-8"]);
    let (o, v) = unified_test(&our_library(), &env, &utf8, "utf8");
    let v = v.unwrap_or_else(|| panic!("no report: {}", stderr(&o)));
    assert_eq!(
        (o.status.code(), v["passed"].as_u64(), v["total"].as_u64()),
        (Some(0), Some(5), Some(5)),
        "{}",
        stdout(&o)
    );
    assert_eq!(v["device_number"], "T-0042");
    assert_eq!(v["encoding"], "UTF-8");
    // The same library read as GBK: every line with the name is wrong, the reader's number is not.
    let (o, v) = unified_test(&our_library(), &env, &cases, "utf8-as-gbk");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        failing(&v.unwrap()),
        [
            "name-extension-3des",
            "read-national-3des",
            "name-extension-sm4",
            "read-national-sm4"
        ]
    );
    std::fs::remove_dir_all(dir).ok();
}
