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
    // An SM4 card: its FCI says so, its INTERNAL AUTHENTICATE answers one 16-byte block; EF06
    // needs authentication, so the largest response is EF05's.
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
