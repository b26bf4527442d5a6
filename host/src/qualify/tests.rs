//! The qualification in process against model cards (no pcscd): a T=1 SSC with a PSAM, and the
//! same SSC behind T=0 — every verdict and not-applicable reason exact.

use super::*;
use sscard_core::apdu::{Command, Response};
use sscard_core::card::{shared, Card};
use sscard_core::crypto::Algorithm;
use sscard_model::ssc::Ssc;
use sscard_model::t0::T0;
use sscard_transport::InProcess;
use std::collections::BTreeMap;

/// The SSC as a T=0 card: case-4 answers wait behind `61xx`, a case-2 Le other than the
/// data's length answers `6Cxx`.
struct T0Ssc {
    inner: Ssc,
    t0: T0,
}

impl Card for T0Ssc {
    fn atr(&self) -> Vec<u8> {
        // T0 = 68: no interface bytes, so T=0 only; "SSCARD01".
        sscard_core::hexfmt::hex_array::<12>("3B6800005353434152443031").to_vec()
    }
    fn reset(&mut self) {
        self.inner.reset();
        self.t0.clear();
    }
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        let cmd = Command::parse(apdu).ok()?;
        if let Some(r) = self.t0.get_response(&cmd) {
            return Some(r.to_bytes());
        }
        let answer = Response::parse(&self.inner.transmit(apdu)?).ok()?;
        Some(self.t0.wrap(&cmd, answer).to_bytes())
    }
}

fn options(psam: PsamSlot) -> Options {
    Options {
        full: false,
        removal: Removal::Unavailable("no way to remove an in-process card".into()),
        reconnect: None,
        unplug: None,
        thresholds: thresholds::Profile::built_in(),
        psam,
        host: "test".into(),
    }
}

fn verdicts(r: &Report) -> BTreeMap<&str, Verdict> {
    r.checks
        .iter()
        .map(|c| (c.id.as_str(), c.verdict))
        .collect()
}

fn reason<'a>(r: &'a Report, id: &str) -> &'a str {
    r.check(id).and_then(|c| c.reason.as_deref()).unwrap_or("")
}

const LOOPBACK_IDS: [&str; 14] = [
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

#[test]
fn a_t1_card_and_a_psam_pass_what_they_offer_and_the_rest_says_why_not() {
    let (ssc, psam) = sscard_model::test_pair(Algorithm::Sm4);
    let mut conn = Connection::new(InProcess::new(shared(ssc), "in-process"));
    let psam = Connection::new(InProcess::new(shared(psam), "in-process PSAM"));
    let r = run(&mut conn, options(PsamSlot::Connected(psam)));
    let na: Vec<&str> = verdicts(&r)
        .into_iter()
        .filter(|(_, v)| *v == Verdict::NotApplicable)
        .map(|(id, _)| id)
        .collect();
    let mut want_na = vec![
        "card.removal",
        "reader.properties",
        "reader.unplug",
        "ssse.61xx",
    ];
    want_na.extend(LOOPBACK_IDS);
    want_na.sort();
    assert_eq!(na, want_na);
    assert_eq!(r.summary.failed, 0, "{}", r.text());
    assert_eq!(r.summary.passed, 19);
    assert_eq!(r.summary.verdict, Overall::Pass);
    assert_eq!(
        reason(&r, "card.removal"),
        "no way to remove an in-process card"
    );
    assert_eq!(
        reason(&r, "loopback.extended"),
        "the card holds no loopback test application (served by sscard-model only)"
    );
    // An SM4 card: its FCI says so, its INTERNAL AUTHENTICATE answers one 16-byte block; the
    // largest response is EF05's (the checks never read EF06, the holder's data).
    assert_eq!(
        r.check("ssse.select").unwrap().figure,
        "FCI 30 bytes: SM4, ISSUED"
    );
    assert_eq!(
        r.check("ssse.case4-internal-auth").unwrap().figure,
        "Lc 8 → 16 bytes, Lc 16 → 16 bytes"
    );
    assert_eq!(
        r.check("ssse.largest-response").unwrap().figure,
        "64 bytes (READ RECORDS EF05) = its 7 records read one by one"
    );
    assert_eq!(
        r.check("psam.61xx").unwrap().figure,
        "6110 → GET RESPONSE Le 4 → 6C10 → Le 16 → 16 bytes"
    );
    // The in-process "reader" reports nothing, and says so: never an empty value.
    assert_eq!(
        r.reader.get("vendor_name").unwrap().display(),
        "not reported by the reader (this reader does not support this function, 0x80100022)"
    );
    assert_eq!(
        r.reader.get("pin_verify_direct").unwrap().display(),
        "not reported by the reader (SCardControl: this reader does not support this function, 0x80100022)"
    );
    assert_eq!(r.card.applications, ["SSSE"]);
    assert_eq!(r.psam.as_ref().unwrap().applications, ["PSAM"]);
}

#[test]
fn a_t0_card_takes_the_61xx_path_and_the_t1_check_is_not_applicable() {
    let (ssc, _) = sscard_model::test_pair(Algorithm::Tdes);
    let card = T0Ssc {
        inner: ssc,
        t0: T0::default(),
    };
    let mut conn = Connection::new(InProcess::new(shared(card), "in-process T=0"));
    let r = run(&mut conn, options(PsamSlot::Absent("no PSAM here".into())));
    let v = verdicts(&r);
    assert_eq!(v["ssse.61xx"], Verdict::Pass, "{}", r.text());
    assert_eq!(
        r.check("ssse.61xx").unwrap().figure,
        "611E → GET RESPONSE 30 bytes"
    );
    assert_eq!(v["card.t1"], Verdict::NotApplicable);
    assert_eq!(
        reason(&r, "card.t1"),
        "neither SCardStatus nor the ATR says T=1"
    );
    assert_eq!(reason(&r, "psam.61xx"), "no PSAM here");
    assert_eq!(r.summary.failed, 0, "{}", r.text());
    assert_eq!(r.summary.verdict, Overall::Pass);
}

#[test]
fn a_card_without_either_application_qualifies_nothing() {
    let psam = sscard_model::test_pair(Algorithm::Tdes).1;
    // A PSAM in the card reader: no SSSE, no loopback application.
    let mut conn = Connection::new(InProcess::new(shared(psam), "in-process"));
    let r = run(
        &mut conn,
        options(PsamSlot::Absent("no PSAM reader".into())),
    );
    assert_eq!(r.summary.passed, 0, "{}", r.text());
    assert_eq!(r.summary.failed, 0, "{}", r.text());
    assert_eq!(r.summary.verdict, Overall::Inconclusive);
    assert_eq!(
        reason(&r, "ssse.case1"),
        "the card holds no SSSE application (SELECT by its AID answered 6A86)"
    );
    // The PSAM's ATR offers T=0 only: that is why T=1 cannot be checked, whatever it holds.
    assert_eq!(
        reason(&r, "card.t1"),
        "neither SCardStatus nor the ATR says T=1"
    );
    assert_eq!(
        reason(&r, "card.removal"),
        "the card holds neither the SSSE nor the loopback application: no command to probe with"
    );
}

#[test]
fn the_threshold_profile_names_exactly_the_commands_measured() {
    // A [command."NAME"] table of a profile is refused unless NAME is in COMMANDS: every
    // command measured must be there, and nothing else, or a lab's limit would be refused or
    // silently never apply.
    let (ssc, psam) = sscard_model::test_pair(Algorithm::Tdes);
    let card = sscard_model::loopback::WithLoopback::new(ssc);
    let mut conn = Connection::new(InProcess::new(shared(card), "in-process"));
    let psam = Connection::new(InProcess::new(shared(psam), "in-process PSAM"));
    let r = run(&mut conn, options(PsamSlot::Connected(psam)));
    assert_eq!(r.card.applications, ["SSSE", "loopback"]);
    let mut measured: Vec<&str> = r
        .checks
        .iter()
        .filter_map(|c| c.latency.as_ref().map(|l| l.command.as_str()))
        .collect();
    measured.sort_unstable();
    let mut named = thresholds::COMMANDS.to_vec();
    named.sort_unstable();
    assert_eq!(measured, named, "{}", r.text());
}

#[test]
fn the_junit_of_a_reader_with_control_characters_in_its_name_is_well_formed_xml() {
    let psam = sscard_model::test_pair(Algorithm::Tdes).1;
    let mut conn = Connection::new(InProcess::new(shared(psam), "in-process"));
    let mut r = run(&mut conn, options(PsamSlot::Absent("none".into())));
    r.reader.name = "ACME \u{1}<Reader> & \"0\"\u{1b}".into();
    let xml = junit(&r);
    assert!(
        xml.contains("<testsuite name=\"ACME &lt;Reader&gt; &amp; &quot;0&quot;\" "),
        "{xml}"
    );
    assert!(!xml.contains(['\u{1}', '\u{1b}']));
}

#[test]
fn a_run_where_only_the_reader_itself_passed_is_inconclusive_in_every_output() {
    let check = |id: &str, needs, verdict| Check {
        id: id.into(),
        name: id.into(),
        needs,
        verdict,
        reason: (verdict != Verdict::Pass).then(|| "why".to_string()),
        figure: "figure".into(),
        threshold: "threshold".into(),
        apdus: 0,
        seconds: 0.0,
        latency: None,
    };
    // The reader's properties agreed with the card and the reader came back after an unplug;
    // every check that talks to a card was not applicable.
    let mut checks = vec![
        check("reader.properties", Needs::AnyCard, Verdict::Pass),
        check("reader.unplug", Needs::Unplug, Verdict::Pass),
        check("card.t1", Needs::T1Card, Verdict::NotApplicable),
        check("ssse.case1", Needs::Ssse, Verdict::NotApplicable),
        check("card.removal", Needs::Removal, Verdict::NotApplicable),
    ];
    let s = Summary::of(&checks);
    assert_eq!(
        s,
        Summary {
            verdict: Overall::Inconclusive,
            passed: 2,
            failed: 0,
            not_applicable: 3
        }
    );
    let psam = sscard_model::test_pair(Algorithm::Tdes).1;
    let mut conn = Connection::new(InProcess::new(shared(psam), "in-process"));
    let mut r = run(
        &mut conn,
        options(PsamSlot::Absent("no PSAM reader".into())),
    );
    r.summary = s;
    r.checks = checks.clone();
    let text = r.text();
    assert!(
        text.contains("\nINCONCLUSIVE: 2 passed, 0 failed, 3 not applicable (")
            && text.ends_with(
                "\nno check failed, but none that exercises a card could run: the reader's \
                 properties alone qualify nothing (use a card holding the SSSE or the loopback \
                 application)"
            ),
        "{text}"
    );
    let page = html(&r);
    assert!(
        page.contains("<p class=\"na\">no check failed, but none that exercises a card could run")
    );
    let xml = junit(&r);
    assert!(
        xml.contains("tests=\"6\" failures=\"0\" errors=\"1\" skipped=\"3\""),
        "{xml}"
    );
    assert!(xml.contains(
        "<testcase classname=\"reader-test.summary\" name=\"summary verdict\" time=\"0\">\n      \
         <error message=\"inconclusive: no check failed, but none that exercises a card could run"
    ));
    assert_eq!(
        serde_json::to_value(r.summary).unwrap()["verdict"],
        "inconclusive"
    );
    // One check that exercises a card passing makes it a pass; one failing, a fail.
    checks.push(check("ssse.select", Needs::Ssse, Verdict::Pass));
    assert_eq!(Summary::of(&checks).verdict, Overall::Pass);
    checks.push(check("psam.61xx", Needs::Psam, Verdict::Fail));
    assert_eq!(Summary::of(&checks).verdict, Overall::Fail);
}

/// A card that notes every APDU it is sent.
struct Recording {
    inner: Ssc,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl Card for Recording {
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        self.seen.lock().unwrap().push(apdu.to_vec());
        self.inner.transmit(apdu)
    }
}

#[test]
fn no_check_reads_the_holders_data_even_where_the_card_lets_anyone() {
    // A 3DES test card is a 2.00 card: EF06 (name, SSN …) is readable without a key, and a
    // --trace of the run would carry whatever the checks read.
    let ssc = sscard_model::test_pair(Algorithm::Tdes).0;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let card = Recording {
        inner: ssc,
        seen: seen.clone(),
    };
    let mut conn = Connection::new(InProcess::new(shared(card), "in-process"));
    let r = run(
        &mut conn,
        options(PsamSlot::Absent("no PSAM reader".into())),
    );
    assert_eq!(r.summary.failed, 0, "{}", r.text());
    assert_eq!(
        r.check("ssse.largest-response").unwrap().figure,
        "64 bytes (READ RECORDS EF05) = its 7 records read one by one"
    );
    let seen = seen.lock().unwrap();
    assert!(seen.len() > 100, "{} APDUs", seen.len());
    let ef06: Vec<String> = seen
        .iter()
        .filter(|a| {
            let read_by_sfi = a.len() >= 4 && matches!(a[1], 0xB0 | 0xB2) && a[3] >> 3 == 0x06;
            let binary_by_sfi = a.len() >= 4 && a[1] == 0xB0 && a[2] == 0x86;
            let select = a.len() >= 7 && a[1] == 0xA4 && a[5..7] == [0xEF, 0x06];
            read_by_sfi || binary_by_sfi || select
        })
        .map(|a| sscard_core::hexfmt::to_hex(a))
        .collect();
    assert!(ef06.is_empty(), "EF06 read: {ef06:?}");
}
