//! Reader qualification through pcscd + vpcd: the served card without the loopback application
//! (the SSSE checks, the PSAM's T=0 path, not-applicable reasons for the rest), the card with
//! it (the full length sweep and extended APDUs on top), injected latency in the percentiles
//! and in `compare`, a threshold profile deciding verdicts, and a reader that corrupts long
//! APDUs caught and named.

use sscard_e2e::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sscard-rt-{}-{name}", std::process::id()))
}

/// Runs `reader-test` on reader 0 with the model's control socket; the process and the JSON
/// report.
fn run_test(
    extra: &[&str],
    model: &ModelServer,
    json: &PathBuf,
) -> (std::process::Output, serde_json::Value) {
    let mut args = vec![
        "reader-test",
        "--reader",
        READER_0,
        "--json-file",
        json.to_str().unwrap(),
        "--model-control",
        model.control.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = sscard(&args);
    let text = std::fs::read_to_string(json)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}{}", stdout(&o), stderr(&o)));
    (o, serde_json::from_str(&text).unwrap())
}

/// Every check's verdict by id.
fn verdicts(v: &serde_json::Value) -> BTreeMap<String, String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn check<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const SSSE_PASS: [&str; 14] = [
    "card.t1",
    "ssse.select",
    "ssse.case1",
    "ssse.case2-challenge",
    "ssse.case2-le",
    "ssse.6cxx",
    "ssse.case3",
    "ssse.case4-fcp",
    "ssse.case4-internal-auth",
    "ssse.largest-response",
    "latency.select-ssse",
    "latency.read-record",
    "latency.get-challenge",
    "latency.internal-authenticate",
];

const LOOPBACK: [&str; 14] = [
    "loopback.case1",
    "loopback.case2",
    "loopback.case3",
    "loopback.case4",
    "loopback.extended",
    "loopback.extended-le",
    "loopback.61xx",
    "loopback.6cxx",
    "latency.loopback-0",
    "latency.loopback-16",
    "latency.loopback-64",
    "latency.loopback-128",
    "latency.loopback-255",
    "loopback.delay",
];

const PSAM: [&str; 5] = [
    "psam.select-read",
    "psam.6cxx",
    "psam.61xx",
    "latency.psam-read-binary",
    "latency.psam-des-crypt",
];

const NO_61XX: &str = "the card answered case 4 with its data and 9000 (no 61xx path on this card); the PSAM's is psam.61xx";
const NO_PROPERTIES: &str =
    "the reader reports neither SCARD_ATTR_ATR_STRING nor SCARD_ATTR_CURRENT_PROTOCOL_TYPE";
const NO_UNPLUG: &str =
    "needs --interactive and a reader that can be unplugged (a vpcd reader cannot)";

fn reason<'a>(v: &'a serde_json::Value, id: &str) -> &'a str {
    check(v, id)["reason"].as_str().unwrap_or("")
}

/// The JUnit file validates against docs/junit.xsd.
fn validate_junit(path: &PathBuf) {
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
}

/// Validates `v` against the subset of JSON Schema `docs/reader-test-schema.json` uses
/// (`type`, `const`, `enum`, `required`, `properties`, `additionalProperties`, `items`,
/// `oneOf`, `if`/`then`/`else`, `minimum`, `exclusiveMinimum`, `maximum`, `minLength`, `$ref`
/// to `#/$defs/…`): the documented schema stays the written one.
fn conforms(
    root: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value;
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.strip_prefix("#/$defs/").expect("local $ref");
        return conforms(root, &root["$defs"][name], v, at);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let matching = options
            .iter()
            .filter(|o| conforms(root, o, v, at).is_ok())
            .count();
        return if matching == 1 {
            Ok(())
        } else {
            Err(format!("{at}: {matching} of oneOf match {v}"))
        };
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            return Err(format!("{at}: {v} is not {c}"));
        }
    }
    if let Some(e) = schema["enum"].as_array() {
        if !e.contains(v) {
            return Err(format!("{at}: {v} not in {e:?}"));
        }
    }
    let type_ok = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_u64() || v.is_i64(),
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        other => panic!("type {other}"),
    };
    match &schema["type"] {
        Value::String(t) if !type_ok(t) => return Err(format!("{at}: {v} is not {t}")),
        Value::Array(ts) if !ts.iter().any(|t| type_ok(t.as_str().unwrap())) => {
            return Err(format!("{at}: {v} is none of {ts:?}"))
        }
        _ => {}
    }
    if let Some(condition) = schema.get("if") {
        let branch = if conforms(root, condition, v, at).is_ok() {
            "then"
        } else {
            "else"
        };
        if let Some(s) = schema.get(branch) {
            conforms(root, s, v, &format!("{at} ({branch})"))?;
        }
    }
    if let (Some(min), Some(x)) = (schema["minimum"].as_f64(), v.as_f64()) {
        if x < min {
            return Err(format!("{at}: {x} below {min}"));
        }
    }
    if let (Some(min), Some(x)) = (schema["exclusiveMinimum"].as_f64(), v.as_f64()) {
        if x <= min {
            return Err(format!("{at}: {x} not above {min}"));
        }
    }
    if let (Some(max), Some(x)) = (schema["maximum"].as_f64(), v.as_f64()) {
        if x > max {
            return Err(format!("{at}: {x} above {max}"));
        }
    }
    if let (Some(min), Some(x)) = (schema["minLength"].as_u64(), v.as_str()) {
        if (x.chars().count() as u64) < min {
            return Err(format!("{at}: {x:?} shorter than {min}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for k in schema["required"].as_array().into_iter().flatten() {
            if !obj.contains_key(k.as_str().unwrap()) {
                return Err(format!("{at}: missing {k}"));
            }
        }
        for (k, x) in obj {
            let path = format!("{at}.{k}");
            match (schema["properties"].get(k), &schema["additionalProperties"]) {
                (Some(s), _) => conforms(root, s, x, &path)?,
                (None, Value::Bool(false)) => return Err(format!("{path}: not in the schema")),
                (None, Value::Object(_)) => {
                    conforms(root, &schema["additionalProperties"], x, &path)?
                }
                (None, _) => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            conforms(root, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// The report validates against docs/reader-test-schema.json.
fn validate_report(v: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/reader-test-schema.json")).unwrap();
    if let Err(e) = conforms(&schema, &schema, v, "report") {
        panic!("the report does not follow docs/reader-test-schema.json: {e}");
    }
    // The schema holds a failed or not-applicable check to its reason, and a pass to none.
    let checks = v["checks"].as_array().unwrap();
    let first = |pass: bool| checks.iter().position(|c| (c["verdict"] == "pass") == pass);
    if let Some(at) = first(false) {
        let mut silent = v.clone();
        silent["checks"][at]["reason"] = serde_json::Value::Null;
        assert_eq!(
            conforms(&schema, &schema, &silent, "report"),
            Err(format!(
                "report.checks[{at}] (else).reason: null is not string"
            ))
        );
    }
    if let Some(at) = first(true) {
        let mut excused = v.clone();
        excused["checks"][at]["reason"] = "because".into();
        assert_eq!(
            conforms(&schema, &schema, &excused, "report"),
            Err(format!(
                "report.checks[{at}] (then).reason: \"because\" is not null"
            ))
        );
    }
}

#[test]
fn the_served_card_without_the_loopback_application_runs_every_check_it_allows() {
    let _g = exclusive();
    let m = ModelServer::start(&["--app", "ssse"], &[READER_0, READER_1]);
    let (json, html, junit) = (tmp("ssse.json"), tmp("ssse.html"), tmp("ssse.xml"));
    let (o, v) = run_test(
        &[
            "--psam-reader",
            READER_1,
            "--html",
            html.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        &m,
        &json,
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    validate_report(&v);
    let mut want: Vec<(&str, &str)> = vec![("reader.properties", "not-applicable")];
    want.extend(SSSE_PASS.iter().map(|id| (*id, "pass")));
    want.push(("ssse.61xx", "not-applicable"));
    want.extend(LOOPBACK.iter().map(|id| (*id, "not-applicable")));
    want.extend(PSAM.iter().map(|id| (*id, "pass")));
    want.push(("card.removal", "pass"));
    want.push(("reader.unplug", "not-applicable"));
    assert_eq!(verdicts(&v), expect(&want));
    assert_eq!(
        v["summary"],
        serde_json::json!({"verdict": "pass", "passed": 20, "failed": 0, "not_applicable": 17})
    );
    assert_eq!(reason(&v, "ssse.61xx"), NO_61XX);
    assert_eq!(reason(&v, "reader.properties"), NO_PROPERTIES);
    assert_eq!(reason(&v, "reader.unplug"), NO_UNPLUG);
    for id in LOOPBACK {
        assert_eq!(
            reason(&v, id),
            "the card holds no loopback test application (served by sscard-model only)",
            "{id}"
        );
    }
    assert_eq!(
        check(&v, "ssse.select")["figure"],
        "FCI 30 bytes: 3DES, ISSUED"
    );
    assert_eq!(
        check(&v, "ssse.largest-response")["figure"],
        "64 bytes (READ RECORDS EF05) = its 7 records read one by one"
    );
    assert_eq!(
        check(&v, "ssse.6cxx")["figure"],
        "Le 4 → 6C12, resent with Le 18 → 18 bytes"
    );
    assert_eq!(
        check(&v, "psam.61xx")["figure"],
        "6108 → GET RESPONSE Le 4 → 6C08 → Le 8 → 8 bytes"
    );
    // The run's context and the reader's identity: vpcd reports no attribute, and says so.
    assert_eq!(v["schema"], "sscard-reader-test/1");
    assert_eq!(v["mode"], "quick");
    assert_eq!(v["thresholds"]["source"], "built-in");
    assert_eq!(
        v["thresholds"]["thresholds"]["name"],
        "social-security-terminal"
    );
    assert_eq!(v["card"]["atr"], "3B880153534341524430319C");
    assert_eq!(v["card"]["protocol"], "T=1");
    assert_eq!(v["card"]["applications"], serde_json::json!(["SSSE"]));
    assert_eq!(v["psam"]["atr"], "3B6800005053414D2D535331");
    let props = v["reader"]["properties"].as_array().unwrap();
    let value = |key: &str| &props.iter().find(|p| p["key"] == key).unwrap()["value"];
    for key in ["vendor_name", "model", "serial_number", "firmware_version"] {
        assert_eq!(
            value(key),
            &serde_json::json!({"not-reported": {"why": "This smart card does not support the requested feature, 0x8010001F"}}),
            "{key}"
        );
    }
    for key in [
        "features",
        "tlv_properties",
        "pin_verify_direct",
        "pin_modify_direct",
    ] {
        assert_eq!(
            value(key),
            &serde_json::json!({"not-reported": {"why": "SCardControl: This smart card does not support the requested feature, 0x8010001F"}}),
            "{key}"
        );
    }
    assert_eq!(
        value("connected_protocol"),
        &serde_json::json!({"value": {"text": "T=1", "raw": null}})
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains(
        "Verdict: <span class=\"badge b-pass\" title=\"no check failed, and checks that exercise a card passed\">PASS</span>"
    ));
    assert!(page.contains("not reported by the reader (This smart card does not support the requested feature, 0x8010001F)"));
    assert!(page.contains("aria-label=\"latency per command, log scale\""));
    assert!(
        !page.contains("http://")
            || page.matches("http://").count()
                == page.matches("http://www.w3.org/2000/svg").count(),
        "no external assets"
    );
    validate_junit(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"37\" failures=\"0\" errors=\"0\" skipped=\"17\""),
        "{xml}"
    );
    assert!(
        xml.contains(&format!(
            "<skipped message=\"not applicable: {NO_UNPLUG}\"/>"
        )),
        "{xml}"
    );
    for p in [json, html, junit] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn with_the_loopback_application_the_sweep_and_extended_apdus_run_too() {
    let _g = exclusive();
    let m = ModelServer::start(&["--no-psam"], &[READER_0]);
    let json = tmp("lb.json");
    let (o, v) = run_test(&["--quick"], &m, &json);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    validate_report(&v);
    let mut want: Vec<(&str, &str)> = vec![("reader.properties", "not-applicable")];
    want.extend(SSSE_PASS.iter().map(|id| (*id, "pass")));
    want.push(("ssse.61xx", "not-applicable"));
    want.extend(LOOPBACK.iter().map(|id| (*id, "pass")));
    want.extend(PSAM.iter().map(|id| (*id, "not-applicable")));
    want.push(("card.removal", "pass"));
    want.push(("reader.unplug", "not-applicable"));
    assert_eq!(verdicts(&v), expect(&want));
    for id in PSAM {
        assert_eq!(
            reason(&v, id),
            "no PSAM reader given (--psam-reader)",
            "{id}"
        );
    }
    // The schema check can fail: a verdict outside the schema's words is caught.
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/reader-test-schema.json")).unwrap();
    let mut broken = v.clone();
    broken["checks"][0]["verdict"] = serde_json::json!("passed");
    assert_eq!(
        conforms(&schema, &schema, &broken, "report").unwrap_err(),
        "report.checks[0].verdict: \"passed\" not in [String(\"pass\"), String(\"fail\"), String(\"not-applicable\")]"
    );
    assert_eq!(
        v["card"]["applications"],
        serde_json::json!(["SSSE", "loopback"])
    );
    assert_eq!(
        check(&v, "loopback.extended")["figure"],
        "max extended ECHO 65526 bytes (the largest the vpcd protocol carries)"
    );
    assert_eq!(
        check(&v, "loopback.extended")["threshold"],
        "largest extended ECHO ≥ 256 bytes"
    );
    assert_eq!(
        v["summary"],
        serde_json::json!({"verdict": "pass", "passed": 29, "failed": 0, "not_applicable": 8})
    );
    let _ = std::fs::remove_file(json);
}

/// A latency figure of a check (`min_ms`, `p50_ms`, …).
fn latency(v: &serde_json::Value, id: &str, figure: &str) -> f64 {
    check(v, id)["latency"][figure]
        .as_f64()
        .unwrap_or_else(|| panic!("{id}: no {figure}"))
}

#[test]
fn injected_latency_moves_the_percentiles_and_compare_shows_both_runs() {
    let _g = exclusive();
    let (ja, jb) = (tmp("fast.json"), tmp("slow.json"));
    let base = {
        let m = ModelServer::start(&["--app", "ssse", "--no-psam"], &[READER_0]);
        run_test(&["--quick"], &m, &ja).1
    };
    let m = ModelServer::start(
        &["--app", "ssse", "--no-psam", "--latency-ms", "20"],
        &[READER_0],
    );
    let (o, v) = run_test(&["--quick"], &m, &jb);
    drop(m);
    assert!(o.status.success(), "{}", stdout(&o));
    // The model sleeps 20 ms before it answers each of these one-APDU commands, so no sample of
    // the slow run can be faster than 20 ms: its minimum is at least that, and at least the
    // fast run's minimum plus 20 ms less a 2 ms margin (the fast run's every sample slowed by
    // load). Load only ever adds time, so the figures are bounded below, never above: under
    // two busy CPUs the p50 moved 22–28 ms for the 20 ms injected, and an upper bound on the
    // move (as this test once had) measured the machine, not the reader.
    for id in [
        "latency.select-ssse",
        "latency.read-record",
        "latency.get-challenge",
        "latency.internal-authenticate",
    ] {
        let (fast, slow) = (latency(&base, id, "min_ms"), latency(&v, id, "min_ms"));
        assert!(
            slow >= 20.0,
            "{id}: fastest sample {slow:.3} ms, 20 ms injected"
        );
        assert!(
            slow - fast >= 18.0,
            "{id}: minimum moved by {:.3} ms ({fast:.3} → {slow:.3}), 20 ms injected",
            slow - fast
        );
        // The percentiles of the slow run keep their order and stay above the fast run's.
        let order: Vec<f64> = ["min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
            .iter()
            .map(|f| latency(&v, id, f))
            .collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{id}: {order:?}");
        assert!(
            latency(&v, id, "p50_ms") > latency(&base, id, "p50_ms"),
            "{id}: p50 did not move"
        );
    }
    let html = tmp("compare.html");
    let c = sscard(&[
        "reader-test",
        "compare",
        ja.to_str().unwrap(),
        jb.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(c.status.success(), "{}{}", stdout(&c), stderr(&c));
    let text = stdout(&c);
    let line = text
        .lines()
        .find(|l| l.starts_with("latency.read-record "))
        .unwrap_or_else(|| panic!("{text}"));
    // compare's Δp95 is B's p95 less A's, as the two reports give them (to its three decimals);
    // which difference load made of it is the runs' business, not compare's.
    let delta: f64 = line.split_whitespace().last().unwrap().parse().unwrap();
    let expected = latency(&v, "latency.read-record", "p95_ms")
        - latency(&base, "latency.read-record", "p95_ms");
    assert!(
        (delta - expected).abs() < 0.0015 && delta > 0.0,
        "Δp95 {delta}, the reports give {expected:.3}: {line}"
    );
    assert!(text.contains("pass  pass  ssse.case2-le"), "{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<h1>Reader qualification: two runs</h1>")
            && page.contains("A latency.read-record")
    );
    // A report of another format is refused with the reason.
    std::fs::write(&jb, "{\"schema\":\"other/9\"}").unwrap();
    let bad = sscard(&[
        "reader-test",
        "compare",
        ja.to_str().unwrap(),
        jb.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    for p in [ja, jb, html] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn a_threshold_profile_decides_the_latency_verdicts_and_is_named() {
    let _g = exclusive();
    let profile = tmp("strict.toml");
    std::fs::write(
        &profile,
        "name = \"strict-lab\"\nmin_extended_bytes = 256\nremoval_seen_within_ms = 1000\nreinsertion_within_ms = 5000\n[latency]\np95_ms = 10.0\np99_ms = 15.0\n",
    )
    .unwrap();
    let m = ModelServer::start(
        &["--app", "ssse", "--no-psam", "--latency-ms", "20"],
        &[READER_0],
    );
    let json = tmp("strict.json");
    let (o, v) = run_test(&["--thresholds", profile.to_str().unwrap()], &m, &json);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    validate_report(&v);
    assert_eq!(v["thresholds"]["source"], profile.to_str().unwrap());
    assert_eq!(v["thresholds"]["thresholds"]["name"], "strict-lab");
    let c = check(&v, "latency.read-record");
    assert_eq!(c["verdict"], "fail");
    assert_eq!(c["threshold"], "p95 ≤ 10 ms, p99 ≤ 15 ms");
    let why = c["reason"].as_str().unwrap();
    assert!(
        why.starts_with("p95 ")
            && why.contains(" ms over 10 ms, p99 ")
            && why.ends_with(" ms over 15 ms"),
        "{why}"
    );
    // Only the latency checks fail: the rest are measured, not judged by time.
    let failed: Vec<String> = verdicts(&v)
        .into_iter()
        .filter(|(_, verdict)| verdict == "fail")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        failed,
        [
            "latency.get-challenge",
            "latency.internal-authenticate",
            "latency.read-record",
            "latency.select-ssse"
        ]
    );
    // A misspelt key is refused before anything runs.
    std::fs::write(&profile, "name = \"x\"\nmin_extendd_bytes = 1\n").unwrap();
    let bad = sscard(&[
        "reader-test",
        "--reader",
        READER_0,
        "--thresholds",
        profile.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("min_extendd_bytes"),
        "{}",
        stderr(&bad)
    );
    for p in [profile, json] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn a_reader_that_corrupts_long_apdus_is_caught_and_named() {
    let _g = exclusive();
    let m = ModelServer::start(&["--no-psam", "--corrupt-over", "200"], &[READER_0]);
    let json = tmp("corrupt.json");
    let (o, v) = run_test(&["--quick"], &m, &json);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let failed: Vec<String> = verdicts(&v)
        .into_iter()
        .filter(|(_, verdict)| verdict == "fail")
        .map(|(id, _)| id)
        .collect();
    assert!(failed.contains(&"loopback.case4".to_string()), "{failed:?}");
    assert!(failed.contains(&"loopback.case3".to_string()), "{failed:?}");
    assert!(
        !failed.contains(&"loopback.case1".to_string())
            && !failed.contains(&"latency.loopback-128".to_string())
            && !failed.iter().any(|id| id.starts_with("ssse.")),
        "short APDUs pass: {failed:?}"
    );
    // Lc 200 is the first sampled length whose APDU (206 bytes) is over 200; the byte flipped in
    // the middle of the APDU is data byte 98.
    assert_eq!(
        reason(&v, "loopback.case4"),
        "Lc 200: 200 bytes back, 200 expected; first difference at byte 98"
    );
    let _ = std::fs::remove_file(json);
}

#[test]
fn bad_arguments_are_refused_before_any_card_is_touched() {
    let profile = tmp("typo.toml");
    let text = include_str!("../../docs/reader-test-thresholds.toml").replace(
        "[command.\"DES CRYPT + GET RESPONSE\"]",
        "[command.\"DES CRYPT\"]",
    );
    std::fs::write(&profile, text).unwrap();
    let profile = profile.to_str().unwrap();
    let socket = tmp("no.sock");
    let socket = socket.to_str().unwrap();
    let cases: [(&[&str], String); 3] = [
        (
            &["--thresholds", profile],
            format!("sscard: error: threshold profile {profile}: [command.\"DES CRYPT\"] is no command reader-test measures; the commands are SELECT, READ RECORD, GET CHALLENGE, INTERNAL AUTHENTICATE, READ BINARY, DES CRYPT + GET RESPONSE, NOOP, ECHO 16 bytes, ECHO 64 bytes, ECHO 128 bytes, ECHO 255 bytes\n"),
        ),
        (
            &["--model-control", socket],
            format!("sscard: error: --model-control {socket}: no socket there (sscard-model serve --control {socket} makes it)\n"),
        ),
        (
            &["--junit", "/nonexistent-folder/r.xml"],
            "sscard: error: --junit /nonexistent-folder/r.xml: the folder /nonexistent-folder does not exist\n".to_string(),
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["reader-test", "--reader", READER_0];
        args.extend_from_slice(extra);
        let o = sscard(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), want);
    }
    std::fs::remove_file(profile).unwrap();
}

/// The removal check's waits where its race was, brought about on purpose in every round: the
/// card is taken out, a client's reset finds it gone — pcscd then shows the reader empty by
/// that client's write, whether or not its event thread has looked — and the card is put back
/// the moment the wait for its removal returns. A wait that took the reader's "empty" for the
/// event thread's (reader-test's before, and `wait_for_card_state`) returns at once here, the
/// card comes back before the event thread's next poll, which then finds a card as it believed
/// all along: the card is never powered up and does not answer, or pcscd keeps showing the
/// reader empty (reader-test: "after reinsertion: the card does not answer", 4 runs of 106
/// under load, twice leaving the card invisible; with that wait, this very sequence failed at
/// its first round when tried: pcscd never showed the card back). The waits on pcscd's event
/// count must return only views the event thread counted, and the card put back must answer a
/// new connection each round.
#[test]
fn a_card_put_back_once_pcscd_counted_its_removal_is_powered_up_and_answers() {
    use sscard_transport::pcsc::{reader_view, CardChange, ReaderWatch};
    use std::time::Duration;
    let _g = exclusive();
    let model = ModelServer::start(&["--app", "ssse", "--no-psam"], &[READER_0]);
    let ctx = pcsc::Context::establish(pcsc::Scope::User).expect("pcscd");
    let name = std::ffi::CString::new(READER_0).unwrap();
    let connect = || {
        ctx.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
            .expect("connect to the served card")
    };
    let get_challenge = [0x00, 0x84, 0x00, 0x00, 0x08];
    let mut buf = [0u8; 258];
    let mut watch = ReaderWatch::new(&ctx, READER_0).unwrap();
    for round in 0..6 {
        let mut card = connect();
        let answer = card
            .transmit(&get_challenge, &mut buf)
            .expect("the card answers");
        assert_eq!(
            answer.len(),
            10,
            "round {round}: GET CHALLENGE 8 bytes and 9000"
        );
        let before = watch.mark().unwrap();
        assert!(before.present, "round {round}: {before}");
        assert_eq!(model.control("remove 0"), "ok");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while model.control("status").contains("connected") {
            assert!(
                std::time::Instant::now() < deadline,
                "the model kept its connection"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            card.reconnect(
                pcsc::ShareMode::Shared,
                pcsc::Protocols::ANY,
                pcsc::Disposition::ResetCard
            ),
            Err(pcsc::Error::NoSmartcard),
            "round {round}: the reset finds the card out"
        );
        drop(card);
        let now = reader_view(&ctx, READER_0).unwrap();
        assert!(
            !now.present,
            "round {round}: the reset wrote 'absent': {now}"
        );
        let gone = watch
            .wait(CardChange::Removed, Duration::from_secs(10))
            .unwrap();
        assert!(
            !gone.present && gone.events != before.events,
            "round {round}: {before} → {gone}"
        );
        assert_eq!(model.control("insert 0"), "ok");
        let back = watch
            .wait(CardChange::Inserted, Duration::from_secs(10))
            .unwrap();
        assert!(
            back.present && back.events != gone.events,
            "round {round}: {gone} → {back}"
        );
        let card = connect();
        let answer = card
            .transmit(&get_challenge, &mut buf)
            .unwrap_or_else(|e| panic!("round {round}: the card put back does not answer: {e}"));
        assert_eq!(answer.len(), 10, "round {round}");
    }
    drop(model);
}

/// A card that offers no check that exercises it (a PSAM: neither the SSSE nor the loopback
/// application) qualifies nothing, whatever the reader's own properties say: verdict
/// inconclusive in the JSON and JUnit, exit 4 (the card's class), not 0 and not 1 (a failure).
#[test]
fn a_run_on_a_card_that_offers_no_check_is_inconclusive_and_exits_4() {
    let _g = exclusive();
    let m = ModelServer::start(&["--app", "ssse"], &[READER_0, READER_1]);
    let (json, junit) = (tmp("psam-only.json"), tmp("psam-only.xml"));
    let o = sscard(&[
        "reader-test",
        "--reader",
        READER_1,
        "--quick",
        "--json-file",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    drop(m);
    assert_eq!(o.status.code(), Some(4), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    validate_report(&v);
    assert_eq!(v["summary"]["verdict"], "inconclusive", "{}", stdout(&o));
    assert_eq!(v["summary"]["failed"], 0);
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "pass")
        .all(|c| c["id"] == "reader.properties"));
    assert!(
        stderr(&o).starts_with(
            "sscard: error: reader-test inconclusive: no check that exercises a card could run ("
        ),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("\nINCONCLUSIVE: "), "{}", stdout(&o));
    validate_junit(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<error message=\"inconclusive: "), "{xml}");
    for p in [json, junit] {
        let _ = std::fs::remove_file(p);
    }
}
