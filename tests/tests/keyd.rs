//! The key service `sscard keyd serve` with real parts (issue 17 item 4): certificates made by
//! the harness, keyd in front of the software test keys and of a SoftHSM2 token holding the
//! test key set, the `sscard` client with `--keys remote:https://127.0.0.1:PORT`.
//!
//! - every flow (info, write, PIN reload and unblock, personalisation of a batch on two
//!   readers, the unified two-step read's step 2) gives the same bytes through keyd as with the
//!   local key source; the equality table is printed (`--nocapture`);
//! - a client without a certificate, with one from another CA, or outside its policy is
//!   refused, with exact texts;
//! - keyd killed and restarted during a batch loses and duplicates nothing.
//!
//! keyd serves a byte-identical copy of the SoftHSM token directory (`keyd::softhsm_copy`): two
//! processes on one SoftHSM token directory invalidate each other's view of it.

use sscard::keys::{CardRef, KeySpec, SoftKeys};
use sscard::ssc::Session;
use sscard::Connection;
use sscard_core::crypto::Algorithm;
use sscard_core::profile::Kid;
use sscard_e2e::keyd::*;
use sscard_e2e::*;
use sscard_model::card::shared;
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_transport::InProcess;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

/// A card flow: its name, setup commands (with stdin) run with the test keys, the compared
/// command and its stdin.
type CardFlow<'a> = (
    &'a str,
    Vec<(&'a [&'a str], Option<&'a str>)>,
    Vec<&'a str>,
    Option<&'a str>,
);

/// One key source a flow runs against.
struct Side {
    name: &'static str,
    keys: String,
    env: Vec<(String, String)>,
}

impl Side {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut a = args.to_vec();
        a.extend(["--keys", &self.keys]);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        sscard_env(&a, &env, stdin)
    }
}

/// The four sides: test keys and the SoftHSM token, each locally and through its keyd.
struct Sources {
    pki: Pki,
    _work: TempDir,
    keyd_test: Keyd,
    keyd_hsm: Keyd,
    hsm_spec: String,
    /// keyd(test keys)'s audit journal.
    audit: std::path::PathBuf,
}

impl Sources {
    fn start(work: TempDir, hsm_spec: String) -> Self {
        let pki = Pki::new(&["station-1", "desk-110100"]);
        let audit = work.path().join("keyd-audit.db");
        let mut test = KeydConfig::keys("test");
        test.audit = Some(format!("sqlite:{}", audit.display()));
        let keyd_test = Keyd::start(&pki, test);
        let mut hsm = KeydConfig::keys(&hsm_spec);
        hsm.env.push((
            "SOFTHSM2_CONF".into(),
            softhsm_copy(work.path()).to_str().unwrap().into(),
        ));
        let keyd_hsm = Keyd::start(&pki, hsm);
        Self {
            pki,
            _work: work,
            keyd_test,
            keyd_hsm,
            hsm_spec,
            audit,
        }
    }

    fn sides(&self) -> Vec<Side> {
        let client = self.pki.client_env(self.pki.client("station-1"));
        vec![
            Side {
                name: "test keys",
                keys: "test".into(),
                env: vec![],
            },
            Side {
                name: "keyd(test keys)",
                keys: self.keyd_test.url(),
                env: client.clone(),
            },
            Side {
                name: "SoftHSM",
                keys: self.hsm_spec.clone(),
                env: vec![("SSCARD_PKCS11_PIN".into(), HSM_PIN.into())],
            },
            Side {
                name: "keyd(SoftHSM)",
                keys: self.keyd_hsm.url(),
                env: client,
            },
        ]
    }
}

/// An APDU trace (`--trace-json`) with what depends on randomness masked: GET CHALLENGE's
/// answer, INTERNAL and EXTERNAL AUTHENTICATE's data, and the data of secure-messaging commands
/// (CLA bit 04: MAC over a fresh challenge) keep only their header and status word.
fn normalised_trace(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let cmd = v["command"].as_str().unwrap_or_default().to_string();
            let resp = v["response"].as_str().unwrap_or_default().to_string();
            let sw = v["sw"].as_str().unwrap_or_default();
            let role = v["role"].as_str().unwrap_or_default();
            let cla = u8::from_str_radix(cmd.get(0..2).unwrap_or("00"), 16).unwrap_or(0);
            let ins = cmd.get(2..4).unwrap_or_default();
            let random = cla & 0x04 != 0 || matches!(ins, "84" | "88" | "82");
            if random {
                format!("{role} {} … → … {sw}", cmd.get(0..8).unwrap_or_default())
            } else {
                format!("{role} {cmd} → {resp}")
            }
        })
        .collect()
}

/// What a flow left: exit code, stdout, the masked trace, the card image(s) afterwards.
#[derive(Clone, Debug, PartialEq)]
struct Outcome {
    exit: Option<i32>,
    stdout: String,
    trace: Vec<String>,
    images: BTreeMap<String, String>,
}

fn model_new(args: &[&str]) {
    let o = std::process::Command::new(bin("sscard-model"))
        .arg("new")
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A card image flow: a fresh personalised 3DES card (image in `dir`) in reader 0 without a
/// PSAM, `setup` commands run with the test keys (not compared), then `args` with `side`'s keys.
fn card_flow(
    dir: &Path,
    side: &Side,
    setup: &[(&[&str], Option<&str>)],
    args: &[&str],
    stdin: Option<&str>,
) -> Outcome {
    let image = dir.join(format!(
        "card-{}.json",
        side.name.replace(['(', ')', ' '], "_")
    ));
    let _ = std::fs::remove_file(&image);
    model_new(&["--out", image.to_str().unwrap()]);
    let trace = dir.join("trace.jsonl");
    let _ = std::fs::remove_file(&trace);
    let o = {
        let _m = ModelServer::start(
            &["--card", image.to_str().unwrap(), "--no-psam"],
            &[READER_0],
        );
        for (a, input) in setup {
            let mut a = a.to_vec();
            a.extend(["--reader", READER_0, "--keys", "test"]);
            let _ = sscard_env(&a, &[], *input);
        }
        let mut a = args.to_vec();
        a.extend([
            "--reader",
            READER_0,
            "--json",
            "--trace-json",
            trace.to_str().unwrap(),
        ]);
        side.run(&a, stdin)
    };
    Outcome {
        exit: o.status.code(),
        stdout: stdout(&o),
        trace: normalised_trace(&trace),
        images: BTreeMap::from([("card".to_string(), std::fs::read_to_string(&image).unwrap())]),
    }
}

/// `n` holders on two feeder readers, station `perso run` with `side`'s keys: the issued
/// images by card number; each passes read basic info with the local test keys.
fn perso_flow(dir: &Path, side: &Side, n: usize) -> Outcome {
    let run_dir = dir.join(format!("perso-{}", side.name.replace(['(', ')', ' '], "_")));
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir).unwrap();
    let batch = write_batch(&run_dir, n, 'K');
    let feed = run_dir.join("feed");
    let journal = format!("sqlite:{}", run_dir.join("journal.db").display());
    let o = {
        let _m = ModelServer::start(
            &[
                "--feeder",
                feed.to_str().unwrap(),
                "--blank",
                &(n + 2).to_string(),
                "--readers",
                "2",
            ],
            &[READER_0, READER_1],
        );
        let o = side.run(
            &[
                "perso",
                "run",
                "--operator",
                "tester",
                "--batch",
                batch.to_str().unwrap(),
                "--readers",
                "0,1",
                "--journal",
                &journal,
                "--idle",
                "1",
                "--json",
            ],
            None,
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        o
    };
    assert!(
        o.status.success(),
        "{}: {}{}",
        side.name,
        stdout(&o),
        stderr(&o)
    );
    let audit = audit_verify(&journal);
    assert_eq!(audit["verified"], true, "{}: {audit}", side.name);
    let mut images = BTreeMap::new();
    for entry in std::fs::read_dir(&feed).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue;
        }
        let image = sscard_model::Image::load(&path).unwrap();
        let ssc = Ssc::from_image(image, Store::in_memory()).unwrap();
        let mut t = Connection::new(InProcess::new(shared(ssc), "issued card"));
        let info = Session::open(&mut t.transaction().unwrap(), &mut SoftKeys::test_set())
            .unwrap()
            .read_basic_info()
            .unwrap();
        images.insert(
            info.card.card_number.clone(),
            normalised_image(&path, &info.card.card_id),
        );
    }
    Outcome {
        exit: o.status.code(),
        stdout: String::new(),
        trace: Vec::new(),
        images,
    }
}

/// An issued card's image with what depends on its (random) blank card identification code
/// replaced: every card key must be the local test key set's key for this card (else the image
/// keeps the value and differs), and the code itself reads `CARD-ID`. What is left — holder
/// data, key try limits, PIN, life cycle — compares across runs byte for byte.
fn normalised_image(path: &Path, card_id: &[u8]) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let card = CardRef::new(card_id.try_into().unwrap());
    let soft = SoftKeys::test_set();
    let alg = match v["algorithm"].as_str() {
        Some("SM4") => Algorithm::Sm4,
        _ => Algorithm::Tdes,
    };
    let mut checked = 0;
    for k in Kid::CARD_KEYS {
        let want = sscard_core::hexfmt::to_hex(soft.card_key(alg, &card, k).unwrap().expose());
        let slot = &mut v["keys"][format!("{:02X}", k.id())]["value"];
        assert!(!slot.is_null(), "{}: no key {k:?}", path.display());
        if slot.as_str() == Some(want.as_str()) {
            *slot = serde_json::Value::String("the local card key".into());
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        Kid::CARD_KEYS.len(),
        "{}: card keys",
        path.display()
    );
    v.to_string()
        .replace(&sscard_core::hexfmt::to_hex(card_id), "CARD-ID")
}

/// How `b` differs from `a`, or `=`.
fn compare(a: &Outcome, b: &Outcome) -> String {
    let mut diffs = Vec::new();
    if a.exit != b.exit {
        diffs.push(format!("exit {:?}≠{:?}", a.exit, b.exit));
    }
    if a.stdout != b.stdout {
        diffs.push("stdout".to_string());
    }
    if a.trace != b.trace {
        diffs.push("trace".to_string());
    }
    let common: Vec<&String> = a
        .images
        .keys()
        .filter(|k| b.images.contains_key(*k))
        .collect();
    if common.iter().any(|k| a.images[*k] != b.images[*k]) {
        diffs.push("image".to_string());
    }
    if a.images.len() > 1 && common.len() != a.images.len() {
        diffs.push(format!("{}/{} cards", common.len(), a.images.len()));
    }
    if diffs.is_empty() && a.images.len() > 1 {
        format!("= ({} cards)", a.images.len())
    } else if diffs.is_empty() {
        "=".into()
    } else {
        format!("≠ {}", diffs.join(","))
    }
}

fn print_table(rows: &[(String, Vec<(String, String)>)], sides: &[Side]) {
    let mut t = format!("{:<28}", "flow \\ key source");
    for s in sides {
        t += &format!(" | {:<18}", s.name);
    }
    t += "\n";
    for (flow, cells) in rows {
        t += &format!("{flow:<28}");
        for (_, cell) in cells {
            t += &format!(" | {cell:<18}");
        }
        t += "\n";
    }
    println!("equality table (= means the same bytes as the local test keys):\n{t}");
}

const STEP1_3DES: &str =
    "110100|5353434152443031|01|110100D15600000599110145000000A1|7A2736EF1B7F108E||110100000001|";
const STEP1_SM4: &str = "110100|5353434152443031|03|110100D15600000599110145000000A1|26E4BB783C472A1A|204CB2D603BB1284|110100000001|";

#[test]
fn every_flow_gives_the_same_bytes_through_keyd() {
    let _g = exclusive();
    let (hsm_spec, _hsm) = softhsm_token_exclusive();
    ensure_pcscd();
    let sources = Sources::start(TempDir::new("equality"), hsm_spec);
    let sides = sources.sides();
    let dir = TempDir::new("flows");
    let mut rows: Vec<(String, Vec<(String, String)>)> = Vec::new();
    // A side without an outcome: the flow needs what its source lacks (SoftHSM has no SM4).
    let mut record_some = |flow: &str, outcomes: Vec<Option<Outcome>>| {
        let first = outcomes[0]
            .clone()
            .expect("the local test keys run every flow");
        let cells: Vec<(String, String)> = sides
            .iter()
            .zip(&outcomes)
            .map(|(s, o)| {
                let cell = o
                    .as_ref()
                    .map_or_else(|| "n/a (no SM4)".to_string(), |o| compare(&first, o));
                (s.name.to_string(), cell)
            })
            .collect();
        rows.push((flow.to_string(), cells));
        outcomes
    };

    // The key operations themselves, in-process through the client's key source.
    let card = CardRef::new(
        sscard_core::hexfmt::parse_hex("110100D15600000599110145000000A1")
            .unwrap()
            .try_into()
            .unwrap(),
    );
    for (row, alg) in [
        ("key operations 3DES", Algorithm::Tdes),
        ("key operations SM4", Algorithm::Sm4),
    ] {
        let mut outcomes = Vec::new();
        for side in &sides {
            if alg == Algorithm::Sm4 && side.name.contains("SoftHSM") {
                outcomes.push(None);
                continue;
            }
            for (k, v) in &side.env {
                std::env::set_var(k, v);
            }
            let spec: KeySpec = side.keys.parse().unwrap();
            let pin = spec.needs_token_pin().then_some(HSM_PIN);
            let mut src = sscard::keys::open(&spec, &sscard_transport::trace::Trace::off(), pin)
                .unwrap_or_else(|e| panic!("{}: {e}", side.name));
            let mut out = String::new();
            for k in Kid::CARD_KEYS {
                for r in [[0u8; 8], [1, 2, 3, 4, 5, 6, 7, 8]] {
                    out += &format!("{:02X?}", src.cryptogram(alg, &card, k, &r).unwrap());
                    out += &format!(
                        "{:02X?}",
                        src.mac(alg, &card, k, &r[..4], &[0x55; 20]).unwrap()
                    );
                }
                out += &format!("{:02X?}", src.key_load_block(alg, &card, k, 5).unwrap());
            }
            for k in [Kid::Pin, Kid::Tk] {
                out += &format!("{:02X?}", src.key_load_block(alg, &card, k, 3).unwrap());
            }
            out += &format!("{:02X?}", src.audit_mac(b"sscard audit").unwrap());
            out += &format!("{:?}", src.region().unwrap());
            outcomes.push(Some(Outcome {
                exit: Some(0),
                stdout: out,
                trace: vec![],
                images: BTreeMap::new(),
            }));
            for (k, _) in &side.env {
                std::env::remove_var(k);
            }
        }
        let o = record_some(row, outcomes);
        for (s, x) in sides.iter().zip(&o) {
            if let Some(x) = x {
                assert_eq!(Some(x), o[0].as_ref(), "{row} through {}", s.name);
            }
        }
    }

    let d = dir.path();
    let flows: Vec<CardFlow> = vec![
        ("info", vec![], vec!["info"], None),
        (
            "write (line protection)",
            vec![],
            vec!["write", "EF06", "--record", "4", "--tlv", "0A0132"],
            None,
        ),
        (
            "pin reload",
            vec![],
            vec!["pin", "reload", "--pin-stdin"],
            Some("246810\n"),
        ),
        (
            "pin unblock (PIN blocked)",
            vec![
                (&["pin", "verify", "--pin-stdin"][..], Some("654321\n")),
                (&["pin", "verify", "--pin-stdin"][..], Some("654321\n")),
                (&["pin", "verify", "--pin-stdin"][..], Some("654321\n")),
            ],
            vec!["pin", "unblock", "--pin-stdin"],
            Some(""),
        ),
    ];
    for (name, setup, args, stdin) in flows {
        let outcomes: Vec<Outcome> = sides
            .iter()
            .map(|s| card_flow(d, s, &setup, &args, stdin))
            .collect();
        assert_eq!(outcomes[0].exit, Some(0), "{name}: {}", outcomes[0].stdout);
        assert!(
            outcomes.iter().all(|o| o.trace.len() > 2),
            "{name}: no trace"
        );
        let o: Vec<Outcome> = record_some(name, outcomes.into_iter().map(Some).collect())
            .into_iter()
            .flatten()
            .collect();
        for (s, x) in sides.iter().zip(&o) {
            assert_eq!(*x, o[0], "{name} through {}", s.name);
        }
    }

    for (name, line) in [
        ("hsm step2 (3DES)", STEP1_3DES),
        ("hsm step2 (SM4)", STEP1_SM4),
    ] {
        let outcomes: Vec<Option<Outcome>> = sides
            .iter()
            .map(|s| {
                if line == STEP1_SM4 && s.name.contains("SoftHSM") {
                    return None;
                }
                let o = s.run(&["hsm", "step2", line], None);
                Some(Outcome {
                    exit: o.status.code(),
                    stdout: stdout(&o),
                    trace: vec![],
                    images: BTreeMap::new(),
                })
            })
            .collect();
        let o = record_some(name, outcomes);
        assert_eq!(o[0].as_ref().unwrap().exit, Some(0));
        for (s, x) in sides.iter().zip(&o) {
            if let Some(x) = x {
                assert_eq!(Some(x), o[0].as_ref(), "{name} through {}", s.name);
            }
        }
    }

    let n = 6;
    let outcomes: Vec<Outcome> = sides.iter().map(|s| perso_flow(d, s, n)).collect();
    for (s, o) in sides.iter().zip(&outcomes) {
        assert_eq!(o.images.len(), n, "{}: {:?}", s.name, o.images.keys());
    }
    let o: Vec<Outcome> = record_some(
        "perso 6 holders, 2 readers",
        outcomes.into_iter().map(Some).collect(),
    )
    .into_iter()
    .flatten()
    .collect();
    // Blank cards have random identification codes: images are compared by card number with
    // the code masked and every card key checked against the local test keys' derivation.
    for (s, x) in sides.iter().zip(&o) {
        assert!(
            compare(&o[0], x).starts_with("= ("),
            "personalisation through {}",
            s.name
        );
    }
    print_table(&rows, &sides);
    let keyd_chain = json(&sscard(&[
        "perso",
        "audit-verify",
        "--journal",
        &format!("sqlite:{}", sources.audit.display()),
        "--keys",
        "test",
        "--json",
    ]));
    println!("keyd(test keys)'s audit chain: {keyd_chain}");
    assert_eq!(keyd_chain["verified"], true, "{keyd_chain}");
}

/// The exit code and the JSON error of a client command.
fn answer(o: &Output) -> (Option<i32>, serde_json::Value) {
    (
        o.status.code(),
        serde_json::from_str(stdout(o).trim()).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn clients_without_a_certificate_from_another_ca_or_outside_their_policy_are_refused() {
    let _g = exclusive();
    let pki = Pki::new(&["desk-110100", "front-desk", "nobody"]);
    let work = TempDir::new("policy");
    let all_kids = r#"["IRK", "RKSSSE", "UK_N", "EAK_L", "UK_L", "RPK", "UPK", "TK", "PIN"]"#;
    let policy = write_policy(
        work.path(),
        &format!(
            r#"
[[client]]
name = "desk of city 110100"
cn = "desk-110100"
regions = ["110100"]
kids = {all_kids}
operations = ["cryptogram", "mac", "pkey", "info", "preflight", "audit-mac"]

[[client]]
name = "front desk by fingerprint"
fingerprint = "{}"
regions = ["110100"]
kids = {all_kids}
operations = ["cryptogram", "mac", "pkey", "info", "preflight", "audit-mac"]
"#,
            fingerprint(&pki.client("front-desk").cert).to_ascii_uppercase()
        ),
    );
    let mut config = KeydConfig::keys("test");
    config.policy = Some(policy);
    let keyd = Keyd::start(&pki, config);
    let url = keyd.url();
    let step2 = |env: &[(String, String)], line: &str| {
        sscard_client(&["hsm", "step2", "--json", "--keys", &url, line], env)
    };
    let city_120100 = STEP1_3DES.replace("110100", "120100");
    let desk = pki.client_env(pki.client("desk-110100"));
    let city_refused = serde_json::json!({"code": -2304, "error": format!("key service {} refused: policy rule \"desk of city 110100\" does not allow region 120100", url.trim_start_matches("remote:")), "exit": 6});

    // Allowed: its own city.
    let ok = step2(&desk, STEP1_3DES);
    assert!(ok.status.success(), "{}", stderr(&ok));

    // Without a certificate at the TLS level (the sscard client refuses to start without one):
    // curl with the server CA only gets no HTTP answer.
    let curl = |cert: Option<&ClientCert>| {
        let mut c = std::process::Command::new("curl");
        c.args(["-sS", "--max-time", "10", "--cacert"])
            .arg(&pki.server_ca);
        if let Some(cert) = cert {
            c.arg("--cert").arg(&cert.cert).arg("--key").arg(&cert.key);
        }
        c.arg(format!("https://{}/v1/info", keyd.addr()))
            .output()
            .expect("curl runs")
    };
    let bare = curl(None);
    let bare_err = String::from_utf8_lossy(&bare.stderr).trim().to_string();
    println!(
        "curl without a certificate: exit {:?}: {bare_err}",
        bare.status.code()
    );
    assert_eq!(bare.status.code(), Some(56), "{bare_err}");
    assert!(
        bare_err.contains("alert certificate required"),
        "{bare_err}"
    );
    assert!(
        bare.stdout.is_empty(),
        "no HTTP answer without a certificate"
    );
    let good = curl(Some(pki.client("desk-110100")));
    assert_eq!(good.status.code(), Some(0));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&good.stdout).unwrap()["region"],
        "110100"
    );

    let mut cases: Vec<(&str, Output, Option<i32>, serde_json::Value)> = Vec::new();
    let mut case = |what: &'static str, o: Output, exit: i32, want: serde_json::Value| {
        cases.push((what, o, Some(exit), want));
    };
    case(
        "sscard client without a certificate",
        step2(&pki.anonymous_env(), STEP1_3DES),
        2,
        serde_json::json!({"code": -999, "error": "key service client certificate $SSCARD_REMOTE_CERT: not set", "exit": 2}),
    );
    case(
        "certificate from another CA",
        step2(&pki.client_env(&pki.stranger), STEP1_3DES),
        6,
        serde_json::json!({"code": -2303, "error": format!("key service {} did not accept this client: TLS: received fatal alert: UnknownCA", url.trim_start_matches("remote:")), "exit": 6}),
    );
    case(
        "client CA certificate the policy does not name",
        step2(&pki.client_env(pki.client("nobody")), STEP1_3DES),
        6,
        serde_json::json!({"code": -2303, "error": format!("key service {} did not accept this client: no policy rule matches this client certificate", url.trim_start_matches("remote:")), "exit": 6}),
    );
    case(
        "city 120100 step 1, policy 110100",
        step2(&desk, &city_120100),
        6,
        city_refused.clone(),
    );
    for (what, o, _, _) in &cases {
        println!(
            "{what}: exit {:?}: {}{}",
            o.status.code(),
            stdout(o).trim(),
            stderr(o).trim()
        );
    }
    for (what, o, exit, want) in &cases {
        let (got_exit, got) = answer(o);
        assert_eq!(got_exit, *exit, "{what}");
        if !want.is_null() {
            assert_eq!(got, *want, "{what}");
        }
    }

    // A city 120100 card read with the 110100 desk's certificate, through pcscd.
    let dir = TempDir::new("city");
    let image = dir.path().join("card-120100.json");
    model_new(&[
        "--card-id",
        "120100D15600000599110145000000A1",
        "--out",
        image.to_str().unwrap(),
    ]);
    let o = {
        let _m = ModelServer::start(
            &["--card", image.to_str().unwrap(), "--no-psam"],
            &[READER_0],
        );
        sscard_client(
            &["info", "--json", "--reader", READER_0, "--keys", &url],
            &desk,
        )
    };
    println!(
        "city 120100 card, info: exit {:?}: {}{}",
        o.status.code(),
        stdout(&o).trim(),
        stderr(&o).trim()
    );
    assert_eq!(answer(&o), (Some(6), city_refused));

    // A front-desk terminal (no key-load-blocks) personalising.
    let dir = TempDir::new("front-desk-perso");
    let batch = write_batch(dir.path(), 1, 'F');
    let journal = format!("sqlite:{}", dir.path().join("journal.db").display());
    let o = {
        let _m = ModelServer::start(
            &[
                "--feeder",
                dir.path().join("feed").to_str().unwrap(),
                "--blank",
                "1",
            ],
            &[READER_0],
        );
        sscard_client(
            &[
                "perso",
                "run",
                "--keys",
                &url,
                "--operator",
                "tester",
                "--batch",
                batch.to_str().unwrap(),
                "--readers",
                "0",
                "--journal",
                &journal,
                "--idle",
                "1",
                "--json",
            ],
            &pki.client_env(pki.client("front-desk")),
        )
    };
    println!(
        "front desk personalising: exit {:?}\n{}{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(o.status.code(), Some(1));
    let failed: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{}", stdout(&o));
    assert_eq!(
        failed[0]["detail"],
        format!(
            "key service {} refused: policy rule \"front desk by fingerprint\" does not allow the operation key-load-blocks",
            url.trim_start_matches("remote:")
        )
    );
    let status = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        &journal,
        "--json",
    ]));
    println!("journal after the refusal: {status}");
    println!("keyd log:\n{}", keyd.log());
}

/// The station's `--json` events so far (one object a line).
fn events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v.get("event").is_some())
        .collect()
}

/// A `sscard` process (a station) with its standard output in a file, killed and reaped on
/// drop if it is still running.
struct Station(std::process::Child);

impl Station {
    fn spawn(args: &[&str], env: &[(String, String)], out: &Path) -> Self {
        Self(
            std::process::Command::new(bin("sscard"))
                .args(args)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(std::fs::File::create(out).unwrap())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        )
    }

    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// Its exit status and standard error, waiting at most `limit`.
    fn finish(&mut self, limit: std::time::Duration) -> (std::process::ExitStatus, String) {
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the station did not finish"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        use std::io::Read;
        let mut err = String::new();
        self.0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status, err)
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits (at most 20 s, the station running) until the station's events hold `count` events
/// named `name` that match `which`.
fn await_events(
    station: &mut Station,
    out: &Path,
    name: &str,
    count: usize,
    which: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let found: Vec<serde_json::Value> = events(out)
            .into_iter()
            .filter(|e| e["event"] == name && which(e))
            .collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            station.running(),
            "the station stopped before {count} {name} event(s); its events:\n{}",
            std::fs::read_to_string(out).unwrap()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no {count} {name} event(s); events:\n{}",
            std::fs::read_to_string(out).unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn issued_in(journal: &str) -> u64 {
    json(&sscard(&[
        "perso",
        "status",
        "--journal",
        journal,
        "--json",
    ]))["states"]["issued"]
        .as_u64()
        .unwrap_or(0)
}

/// keyd SIGKILLed in the middle of a batch and started again on the same address: the same
/// station process waits for it (no card failed, no row released, nothing issued while it is
/// away), resumes when it answers, and finishes the batch with exit 0.
#[test]
fn keyd_killed_and_restarted_during_a_batch_loses_and_duplicates_nothing() {
    use std::time::{Duration, Instant};
    let _g = exclusive();
    ensure_pcscd();
    let pki = Pki::new(&["station-1"]);
    let dir = TempDir::new("kill");
    let keyd_audit = format!("sqlite:{}", dir.path().join("keyd-audit.db").display());
    let mut config = KeydConfig::keys("test");
    config.audit = Some(keyd_audit.clone());
    let mut keyd = Keyd::start(&pki, config);
    let n = 40;
    let batch = write_batch(dir.path(), n, 'R');
    let feed = dir.path().join("feed");
    let journal = format!("sqlite:{}", dir.path().join("journal.db").display());
    let _m = ModelServer::start(
        &[
            "--feeder",
            feed.to_str().unwrap(),
            "--blank",
            &(n + 10).to_string(),
            "--readers",
            "2",
            "--latency-ms",
            "2",
        ],
        &[READER_0, READER_1],
    );
    // --idle bounds the waiting for keyd too: 30 s, well past the 2 s keyd is away.
    let args = [
        "perso",
        "run",
        "--keys",
        &keyd.url(),
        "--operator",
        "tester",
        "--batch",
        batch.to_str().unwrap(),
        "--readers",
        "0,1",
        "--journal",
        &journal,
        "--idle",
        "30",
        "--json",
    ];
    let env = pki.client_env(pki.client("station-1"));
    let out = dir.path().join("station.out");
    let t0 = Instant::now();
    let mut station = Station::spawn(&args, &env, &out);
    let issued = || issued_in(&journal);
    let deadline = Instant::now() + Duration::from_secs(60);
    while issued() < 5 {
        assert!(Instant::now() < deadline, "no card issued");
        std::thread::sleep(Duration::from_millis(100));
    }
    keyd.kill();
    let killed = Instant::now();
    let at_kill = issued();
    // Every reader's worker meets the dead service at its next request and says so.
    let waiting = await_events(&mut station, &out, "waiting", 2, |_| true);
    let readers: std::collections::BTreeSet<&str> = waiting
        .iter()
        .filter_map(|e| e["reader"].as_str())
        .collect();
    assert_eq!(readers.len(), 2, "{waiting:?}");
    let first_waiting = killed.elapsed();
    // keyd stays away 2 s: the station keeps waiting, nothing is issued meanwhile (the audit
    // key is keyd's), nothing is failed or released.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        station.running(),
        "the station stopped while keyd was away; events:\n{}",
        std::fs::read_to_string(&out).unwrap()
    );
    let during = issued();
    assert_eq!(during, at_kill, "cards issued while keyd was away");
    let away = killed.elapsed();
    keyd.restart();
    let restarted = Instant::now();
    let (status, station_err) = station.finish(Duration::from_secs(180));
    let finished = restarted.elapsed();
    let all = events(&out);
    let named = |name: &str| -> Vec<&serde_json::Value> {
        all.iter().filter(|e| e["event"] == name).collect()
    };
    let resumed = named("resumed");
    println!(
        "keyd killed at {at_kill} issued; first waiting event {:.2} s after the kill; keyd away {:.2} s; \
         station exit {:?} {:.2} s after keyd's restart ({:.2} s in all)",
        first_waiting.as_secs_f64(),
        away.as_secs_f64(),
        status.code(),
        finished.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    println!("station stderr:\n{station_err}");
    println!("the station's waiting and resumption:");
    for e in all.iter().filter(|e| {
        ["waiting", "resumed", "resuming", "retry"].contains(&e["event"].as_str().unwrap_or(""))
    }) {
        println!("  {e}");
    }
    assert_eq!(status.code(), Some(0), "{station_err}");
    // Once per reader: the waiting is said once, and so is the resumption.
    assert_eq!((waiting.len(), resumed.len()), (2, 2), "{resumed:?}");
    for e in waiting.iter().chain(resumed.iter().copied()) {
        assert_eq!(
            (&e["card_id"], &e["card_number"]),
            (&serde_json::Value::Null, &serde_json::Value::Null),
            "{e}"
        );
    }
    // The service's own error, without the card's or the holder's data.
    let prefix = format!("key service https://{} is unreachable: ", keyd.addr());
    for e in &waiting {
        let detail = e["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&prefix)
                && detail
                    .ends_with("; the card stays unissued, waiting up to 30 s for the key service"),
            "{detail}"
        );
    }
    for bad in ["failed", "review", "refused", "released"] {
        assert_eq!(named(bad), Vec::<&serde_json::Value>::new(), "{bad}");
    }
    let status = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        &journal,
        "--json",
    ]));
    assert_eq!(status["states"], serde_json::json!({ "issued": n }));
    let report = sscard(&["perso", "report", "--journal", &journal, "--json"]);
    let numbers: Vec<String> = stdout(&report)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["card_number"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let unique: std::collections::BTreeSet<&String> = numbers.iter().collect();
    assert_eq!((numbers.len(), unique.len()), (n, n));
    assert_eq!(named("issued").len(), n, "one issued event per holder");
    let audit = audit_verify(&journal);
    assert_eq!(audit["verified"], true, "{audit}");
    // keyd's own audit chain, across its SIGKILL.
    keyd.kill();
    let keyd_chain = audit_verify(&keyd_audit);
    println!("keyd's audit chain across the kill: {keyd_chain}");
    assert_eq!(keyd_chain["verified"], true, "{keyd_chain}");
    println!("kill/restart: {n} holders issued once each by one station process, audit {audit}");
}

/// A station started while keyd is down waits for it (bounded by `--idle`, as in the middle of
/// a batch) and runs the batch when it answers; a keyd that stays away past `--idle` stops the
/// station with keyd's error (exit 5), every card it held left unissued where the journal has
/// it, not failed, and the next run finishes them.
#[test]
fn a_station_waits_for_keyd_at_its_start_and_stops_after_idle_when_it_stays_away() {
    use std::time::{Duration, Instant};
    let _g = exclusive();
    ensure_pcscd();
    let pki = Pki::new(&["station-1"]);
    let dir = TempDir::new("away");
    let mut keyd = Keyd::start(&pki, KeydConfig::keys("test"));
    let env = pki.client_env(pki.client("station-1"));
    let feed = dir.path().join("feed");
    let _m = ModelServer::start(
        &[
            "--feeder",
            feed.to_str().unwrap(),
            "--blank",
            "50",
            "--readers",
            "2",
            "--latency-ms",
            "2",
        ],
        &[READER_0, READER_1],
    );
    let url = keyd.url();
    let run = |sub: &str, n: usize, prefix: char, idle: &'static str| {
        let d = dir.path().join(sub);
        std::fs::create_dir_all(&d).unwrap();
        let batch = write_batch(&d, n, prefix);
        let journal = format!("sqlite:{}", d.join("journal.db").display());
        let out = d.join("station.out");
        (batch, journal, out, idle)
    };
    let args = |batch: &Path, journal: &str, idle: &str| -> Vec<String> {
        [
            "perso",
            "run",
            "--keys",
            &url,
            "--operator",
            "tester",
            "--batch",
            batch.to_str().unwrap(),
            "--readers",
            "0,1",
            "--journal",
            journal,
            "--idle",
            idle,
            "--json",
        ]
        .map(String::from)
        .to_vec()
    };

    // 1. keyd down when the station starts.
    let (batch, journal, out, idle) = run("start", 4, 'S', "30");
    keyd.kill();
    let a = args(&batch, &journal, idle);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut station = Station::spawn(&a, &env, &out);
    let waiting = await_events(&mut station, &out, "waiting", 1, |_| true);
    std::thread::sleep(Duration::from_secs(1));
    assert!(station.running(), "the station stopped instead of waiting");
    keyd.restart();
    let restarted = Instant::now();
    let (status, err) = station.finish(Duration::from_secs(120));
    let all = events(&out);
    let resumed: Vec<&serde_json::Value> = all.iter().filter(|e| e["event"] == "resumed").collect();
    println!(
        "keyd down at the start: exit {:?} {:.2} s after keyd's restart; events:\n  {}\n  {}",
        status.code(),
        restarted.elapsed().as_secs_f64(),
        waiting[0],
        resumed.first().map(|e| e.to_string()).unwrap_or_default()
    );
    assert_eq!(status.code(), Some(0), "{err}");
    // The run's own events (no reader): the preflight waited, once.
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].get("reader"), None, "{}", waiting[0]);
    let detail = waiting[0]["detail"].as_str().unwrap();
    assert_eq!(
        detail,
        format!(
            "key service https://{} is unreachable: Connection refused (os error 111); waiting up to 30 s for the key service",
            keyd.addr()
        )
    );
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0].get("reader"), None, "{}", resumed[0]);
    assert!(
        resumed[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("the key service answers again after "),
        "{}",
        resumed[0]
    );
    assert_eq!(
        json(&sscard(&[
            "perso",
            "status",
            "--journal",
            &journal,
            "--json"
        ]))["states"],
        serde_json::json!({ "issued": 4 })
    );

    // 2. keyd away for good in the middle of a batch: the station stops after --idle.
    let (batch, journal, out, idle) = run("gone", 30, 'T', "3");
    let a = args(&batch, &journal, idle);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut station = Station::spawn(&a, &env, &out);
    let deadline = Instant::now() + Duration::from_secs(60);
    while issued_in(&journal) < 1 {
        assert!(Instant::now() < deadline, "no card issued");
        std::thread::sleep(Duration::from_millis(20));
    }
    keyd.kill();
    let killed = Instant::now();
    let (status, err) = station.finish(Duration::from_secs(60));
    let stopped_after = killed.elapsed();
    let all = events(&out);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let error = lines
        .iter()
        .find(|l| l.get("error").is_some())
        .cloned()
        .unwrap_or_default();
    let states = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        &journal,
        "--json",
    ]))["states"]
        .clone();
    println!(
        "keyd gone for good: exit {:?} {:.2} s after the kill (--idle 3); error {error}; journal {states}; stderr {err}",
        status.code(),
        stopped_after.as_secs_f64()
    );
    assert_eq!(status.code(), Some(5), "{err}");
    assert!(stopped_after >= Duration::from_secs(3), "{stopped_after:?}");
    assert_eq!(
        (&error["exit"], &error["code"]),
        (&serde_json::json!(5), &serde_json::json!(-2301)),
        "{error}"
    );
    assert!(
        error["error"].as_str().unwrap().contains(&format!(
            "key service https://{} is unreachable: ",
            keyd.addr()
        )),
        "{error}"
    );
    // Every reader waited; no card was failed, reviewed, refused or released.
    let named = |name: &str| all.iter().filter(|e| e["event"] == name).count();
    assert_eq!(
        (
            named("waiting"),
            named("resumed"),
            named("failed"),
            named("review"),
            named("refused"),
            named("released")
        ),
        (2, 0, 0, 0, 0, 0)
    );
    for s in ["failed", "review"] {
        assert_eq!(states.get(s), None, "{states}");
    }
    // The next run, keyd back, finishes the cards the first one held and the rest.
    keyd.restart();
    let a = args(&batch, &journal, "5");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = sscard_client(&a, &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        json(&sscard(&[
            "perso",
            "status",
            "--journal",
            &journal,
            "--json"
        ]))["states"],
        serde_json::json!({ "issued": 30 })
    );
    let audit = audit_verify(&journal);
    assert_eq!(audit["verified"], true, "{audit}");
}

/// The harness's certificates are what the other tests assume: the server's for localhost and
/// 127.0.0.1 under the server CA, clients under the client CA, the stranger under another CA
/// only; every key 0600.
#[test]
fn the_harness_pki_chains_as_intended() {
    let pki = Pki::new(&["desk-110100"]);
    let verify = |ca: &Path, cert: &Path, purpose: &str| {
        std::process::Command::new("openssl")
            .args(["verify", "-purpose", purpose, "-CAfile"])
            .arg(ca)
            .arg(cert)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(verify(&pki.server_ca, &pki.server_cert, "sslserver"));
    let desk = pki.client("desk-110100");
    assert!(verify(&pki.client_ca, &desk.cert, "sslclient"));
    assert!(!verify(&pki.server_ca, &desk.cert, "sslclient"));
    assert!(!verify(&pki.client_ca, &pki.stranger.cert, "sslclient"));
    assert!(verify(&pki.other_ca, &pki.stranger.cert, "sslclient"));
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&pki.server_cert)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("DNS:localhost") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(pki.dir()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "key") {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
    assert_eq!(fingerprint(&desk.cert).len(), 64);
}

/// `sscard perso audit-verify --json` of a journal kept with the test keys.
fn audit_verify(journal: &str) -> serde_json::Value {
    json(&sscard(&[
        "perso",
        "audit-verify",
        "--journal",
        journal,
        "--keys",
        "test",
        "--json",
    ]))
}
