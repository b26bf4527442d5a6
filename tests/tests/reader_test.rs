//! Reader qualification through pcscd + vpcd: the suite passes on the virtual reader, injected
//! latency shows in the percentiles, and a reader that corrupts long APDUs is caught and named.

use sscard_e2e::*;

fn run_test(extra: &[&str], model: &ModelServer) -> (std::process::Output, serde_json::Value) {
    let json_file = std::env::temp_dir().join(format!("sscard-rt-{}.json", std::process::id()));
    let mut args = vec![
        "reader-test",
        "--reader",
        READER_0,
        "--json-file",
        json_file.to_str().unwrap(),
        "--model-control",
        model.control.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = sscard(&args);
    let v = serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).unwrap();
    (o, v)
}

fn p50s(v: &serde_json::Value) -> Vec<f64> {
    v["latency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["p50_ms"].as_f64().unwrap())
        .collect()
}

#[test]
fn qualification_passes_and_reports_html() {
    let _g = exclusive();
    let m = ModelServer::start(&["--no-psam"], &[READER_0]);
    let html = std::env::temp_dir().join(format!("sscard-rt-{}.html", std::process::id()));
    let (o, v) = run_test(&["--quick", "--html", html.to_str().unwrap()], &m);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(v["failed"], 0);
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in [
        "case 1 (NOOP)",
        "extended length (largest ECHO, binary search)",
        "T=0 61xx answered with GET RESPONSE",
        "card removal and reinsertion during a loop",
        "delayed answers",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    let figure = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "extended length (largest ECHO, binary search)")
        .unwrap()["figure"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        figure.starts_with("max extended ECHO 65526 bytes"),
        "{figure}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.starts_with("<!DOCTYPE html>")
            && page.contains("<svg")
            && page.matches("<rect").count() >= 20,
        "{page}"
    );
    assert!(page.contains("Verdict: <strong>PASS</strong>"));
}

#[test]
fn injected_latency_moves_the_percentiles() {
    let _g = exclusive();
    let base = {
        let m = ModelServer::start(&["--no-psam"], &[READER_0]);
        p50s(&run_test(&["--quick"], &m).1)
    };
    let m = ModelServer::start(&["--no-psam", "--latency-ms", "20"], &[READER_0]);
    let (o, v) = run_test(&["--quick"], &m);
    assert!(o.status.success(), "{}", stdout(&o));
    for (b, l) in base.iter().zip(p50s(&v)) {
        let moved = l - b;
        assert!(
            (18.0..=22.0).contains(&moved),
            "p50 moved by {moved:.2} ms, injected 20 ms (base {b:.3}, now {l:.3})"
        );
    }
}

#[test]
fn a_reader_that_corrupts_long_apdus_is_caught_and_named() {
    let _g = exclusive();
    let m = ModelServer::start(&["--no-psam", "--corrupt-over", "200"], &[READER_0]);
    let (o, v) = run_test(&["--quick"], &m);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let failed: Vec<(&str, &str)> = v["files"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "failed")
        .map(|c| (c["name"].as_str().unwrap(), c["message"].as_str().unwrap()))
        .collect();
    let names: Vec<&str> = failed.iter().map(|f| f.0).collect();
    assert!(names.contains(&"case 4 (ECHO) Lc sample"), "{failed:?}");
    assert!(
        names.contains(&"case 3 (ACCEPT, checked with LAST) Lc sample"),
        "{failed:?}"
    );
    assert!(
        !names.contains(&"case 1 (NOOP)") && !names.contains(&"latency ECHO 128 bytes"),
        "short APDUs pass: {failed:?}"
    );
    let echo = failed
        .iter()
        .find(|f| f.0 == "case 4 (ECHO) Lc sample")
        .unwrap()
        .1;
    // Lc 200 is the first sampled length whose APDU (206 bytes) is over 200; the byte flipped in
    // the middle of the APDU is data byte 98.
    assert_eq!(
        echo,
        "Lc 200: 200 bytes back, 200 expected; first difference at byte 98"
    );
}
