//! The key service end to end beyond `tests/tests/keyd.rs` (issue 17): the unified C library
//! with `keys = "remote:https://…"`, a PSAM behind keyd, and the rate limit's 429 — each through
//! pcscd against `sscard-model serve`, with the exact return codes and texts of sscard's
//! key-service range (−2301 to −2306, `docs/keyd-client.md`).
//!
//! The harness is `tests/src/keyd.rs` (certificates made with `openssl`, keyd killed on drop).
//! The library is loaded from Python `ctypes` (as `tests/unified/test_unified.py` does) by a
//! short script given to `python3 -c`: it prints every call as `FUNCTION RC HEX(pOutInfo)`.
//! Build first: `cargo build -p sscard-cli -p sscard-unified`.

use sscard_core::hexfmt::parse_hex;
use sscard_e2e::keyd::*;
use sscard_e2e::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const CARD_ID: &str = "110100D15600000599110145000000A1";
/// GBK of 张三, the served test card's holder name.
const NAME_GBK: &[u8] = &[0xD5, 0xC5, 0xC8, 0xFD];
/// The served PSAM's terminal number (its EF16).
const TERMINAL: &str = "110100000001";
/// Step-1 lines of the served 3DES (2.00) and SM4 (3.00) test cards (fixed R and challenge).
const STEP1_3DES: &str =
    "110100|5353434152443031|01|110100D15600000599110145000000A1|7A2736EF1B7F108E||110100000001|";
const STEP1_SM4: &str = "110100|5353434152443031|03|110100D15600000599110145000000A1|26E4BB783C472A1A|204CB2D603BB1284|110100000001|";
/// `sscard-model serve --alg`, the card's specification version, the step-1 line.
const ALGORITHMS: [(&str, &str, &str); 2] =
    [("3des", "2.00", STEP1_3DES), ("sm4", "3.00", STEP1_SM4)];

/// Every key name and operation: a policy rule that allows everything in its regions.
const ALL_KIDS: &str = r#"["IRK", "RKSSSE", "UK_N", "EAK_L", "UK_L", "RPK", "UPK", "TK", "PIN"]"#;
const ALL_OPERATIONS: &str =
    r#"["cryptogram", "mac", "key-load-blocks", "pkey", "info", "preflight", "audit-mac"]"#;

/// Loads the library with ctypes and runs the operations of argv[2:]: `bas` (iReadCardBas),
/// `two-step` (iReadCardBas_HSM_Step1, iSscardHsmStep2 on its line, iReadCardBas_HSM_Step2 on
/// that pKey; stops at the first failure), `step2=LINE` (iSscardHsmStep2). Each call prints
/// `FUNCTION RC HEX` (the output buffer's bytes up to its NUL).
const LIBRARY_SCRIPT: &str = r#"
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
P = ctypes.c_char_p
for name, args in {"iReadCardBas": [ctypes.c_int, P], "iReadCardBas_HSM_Step1": [ctypes.c_int, P],
                   "iReadCardBas_HSM_Step2": [P, P], "iSscardHsmStep2": [P, P]}.items():
    f = getattr(lib, name)
    f.argtypes = args
    f.restype = ctypes.c_long
def call(name, *args):
    out = ctypes.create_string_buffer(2048)
    rc = getattr(lib, name)(*args, out)
    print(name, rc, out.value.hex(), flush=True)
    return rc, out.value
for op in sys.argv[2:]:
    if op == "bas":
        call("iReadCardBas", 1)
    elif op == "two-step":
        rc, step1 = call("iReadCardBas_HSM_Step1", 1)
        if rc == 0:
            rc, pkey = call("iSscardHsmStep2", step1)
            if rc == 0:
                call("iReadCardBas_HSM_Step2", pkey)
    elif op.startswith("step2="):
        call("iSscardHsmStep2", op[len("step2="):].encode())
    else:
        sys.exit("unknown operation " + op)
"#;

/// One library call: the function, its return code, the bytes it wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Call {
    function: String,
    rc: i64,
    out: Vec<u8>,
}

impl Call {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }
}

/// `libsscard_unified.so` beside the workspace's binaries.
fn library() -> PathBuf {
    let lib = bin("sscard")
        .parent()
        .expect("the binaries' directory")
        .join("libsscard_unified.so");
    assert!(
        lib.exists(),
        "{} is missing: run `cargo build -p sscard-unified` first",
        lib.display()
    );
    lib
}

/// A configuration file `name` in `dir` (0600) with `text`.
fn config(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// The library's configuration for the card in reader 0 and `keys`.
fn local_config(dir: &Path, keys: &str) -> PathBuf {
    config(
        dir,
        "local.toml",
        &format!("card_reader = \"{READER_0}\"\nkeys = \"{keys}\"\n"),
    )
}

/// The library's configuration for the card in reader 0 and the key service `url` with
/// `client`'s certificate (`remote_cert`, `remote_key`, `remote_ca`: the environment is not
/// used).
fn remote_config(dir: &Path, name: &str, pki: &Pki, url: &str, client: &ClientCert) -> PathBuf {
    config(
        dir,
        name,
        &format!(
            "card_reader = \"{READER_0}\"\nkeys = \"{url}\"\nremote_cert = \"{}\"\nremote_key = \"{}\"\nremote_ca = \"{}\"\n",
            client.cert.display(),
            client.key.display(),
            pki.server_ca.display()
        ),
    )
}

/// Runs the library script with `SSCARD_UNIFIED_CONFIG=config` (and no `SSCARD_REMOTE_*` from
/// this process) and parses its calls.
fn library_calls(config: &Path, ops: &[&str]) -> Vec<Call> {
    let o = Command::new("python3")
        .arg("-c")
        .arg(LIBRARY_SCRIPT)
        .arg(library())
        .args(ops)
        .env("SSCARD_UNIFIED_CONFIG", config)
        .env_remove("SSCARD_REMOTE_CERT")
        .env_remove("SSCARD_REMOTE_KEY")
        .env_remove("SSCARD_REMOTE_CA")
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "the library script failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, ' ');
            let (Some(function), Some(rc), Some(hex)) = (f.next(), f.next(), f.next()) else {
                panic!("not a call line: {l:?}")
            };
            Call {
                function: function.to_string(),
                rc: rc.parse().unwrap_or_else(|_| panic!("rc of {l:?}")),
                out: parse_hex(hex).unwrap_or_else(|e| panic!("hex of {l:?}: {e}")),
            }
        })
        .collect()
}

/// A line for people: the GBK name shown as 张三.
fn readable(line: &[u8]) -> String {
    match line.windows(NAME_GBK.len()).position(|w| w == NAME_GBK) {
        Some(at) => format!(
            "{}张三{}",
            String::from_utf8_lossy(&line[..at]),
            String::from_utf8_lossy(&line[at + NAME_GBK.len()..])
        ),
        None => String::from_utf8_lossy(line).into_owned(),
    }
}

fn show(what: &str, calls: &[Call]) {
    for c in calls {
        println!("{what}: {} rc={} {}", c.function, c.rc, readable(&c.out));
    }
}

/// The served card's iReadCardBas line (GBK) with terminal number `terminal`.
fn basic_line(version: &str, terminal: &str) -> Vec<u8> {
    let mut line = b"110100|11010519491231002X|A12345674|".to_vec();
    line.extend_from_slice(format!("{CARD_ID}|").as_bytes());
    line.extend_from_slice(NAME_GBK);
    line.extend_from_slice(
        format!("|5353434152443031|{version}|20240101|20340101|{terminal}||").as_bytes(),
    );
    line
}

/// A step-1 line with its random fields (R, the challenge) masked.
fn masked_step1(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut f: Vec<String> = text.split('|').map(str::to_string).collect();
    for i in [4, 5] {
        if f.get(i).is_some_and(|x| !x.is_empty()) {
            f[i] = "<random>".into();
        }
    }
    f.join("|")
}

/// The key service's URL without the `remote:` of `--keys`.
fn https(keyd: &Keyd) -> String {
    keyd.url().trim_start_matches("remote:").to_string()
}

/// A policy rule for `cn` in `regions`, every key and operation, optionally a rate.
fn rule(name: &str, cn: &str, regions: &str, rate: Option<&str>) -> String {
    format!(
        "[[client]]\nname = \"{name}\"\ncn = \"{cn}\"\nregions = {regions}\nkids = {ALL_KIDS}\noperations = {ALL_OPERATIONS}\n{}",
        rate.map(|r| format!("rate = {r}\n")).unwrap_or_default()
    )
}

/// The exit code and the JSON error (or output) of a `--json` command.
fn answer(o: &Output) -> (Option<i32>, serde_json::Value) {
    (
        o.status.code(),
        serde_json::from_str(stdout(o).trim()).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn the_unified_library_with_remote_keys_reads_as_with_local_keys_and_reports_refusals() {
    let _g = exclusive();
    ensure_pcscd();
    let pki = Pki::new(&["station-1", "desk-120100"]);
    let work = TempDir::new("unified-remote");
    let policy = write_policy(
        work.path(),
        &[
            rule("station", "station-1", r#"["110100"]"#, None),
            rule("desk of city 120100", "desk-120100", r#"["120100"]"#, None),
        ]
        .join("\n"),
    );
    let mut with_policy = KeydConfig::keys("test");
    with_policy.policy = Some(policy);
    let keyd = Keyd::start(&pki, with_policy);
    let url = keyd.url();
    let local = local_config(work.path(), "test");
    let remote = remote_config(
        work.path(),
        "remote.toml",
        &pki,
        &url,
        pki.client("station-1"),
    );
    let desk_120100 = remote_config(
        work.path(),
        "desk-120100.toml",
        &pki,
        &url,
        pki.client("desk-120100"),
    );
    let stranger = remote_config(work.path(), "stranger.toml", &pki, &url, &pki.stranger);
    let closed = format!("https://127.0.0.1:{}", free_port());
    let nobody = remote_config(
        work.path(),
        "unreachable.toml",
        &pki,
        &format!("remote:{closed}"),
        pki.client("station-1"),
    );

    for (alg, version, step1) in ALGORITHMS {
        let _m = ModelServer::start(&["--alg", alg], &[READER_0, READER_1]);
        let started = Instant::now();
        let l = library_calls(&local, &["bas", "two-step", &format!("step2={step1}")]);
        let r = library_calls(&remote, &["bas", "two-step", &format!("step2={step1}")]);
        show(&format!("{alg}, local test keys"), &l);
        show(&format!("{alg}, keyd(test keys)"), &r);
        let functions = [
            "iReadCardBas",
            "iReadCardBas_HSM_Step1",
            "iSscardHsmStep2",
            "iReadCardBas_HSM_Step2",
            "iSscardHsmStep2",
        ];
        for calls in [&l, &r] {
            assert_eq!(
                calls
                    .iter()
                    .map(|c| (c.function.as_str(), c.rc))
                    .collect::<Vec<_>>(),
                functions.map(|f| (f, 0)),
                "{alg}: {calls:?}"
            );
        }
        // Software keys and a key service have no PSAM: no terminal number.
        let basic = basic_line(version, "");
        assert_eq!(l[0].out, basic, "{alg}: {}", readable(&l[0].out));
        assert_eq!(r[0].out, l[0].out, "{alg}: iReadCardBas");
        // Step 1 needs no key (R and the challenge are fresh): the same line but for them.
        let step1_masked = format!(
            "110100|5353434152443031|{}|{CARD_ID}|<random>|{}||",
            &step1[24..26],
            if alg == "3des" { "" } else { "<random>" }
        );
        assert_eq!(masked_step1(&l[1].out), step1_masked, "{alg}");
        assert_eq!(masked_step1(&r[1].out), step1_masked, "{alg}");
        // Step 2's pKey for the same step-1 line, then the card's line.
        assert_eq!(r[4].out, l[4].out, "{alg}: pKey of the fixed step-1 line");
        assert_eq!(r[3].out, basic, "{alg}: step 2 through keyd");
        assert_eq!(l[3].out, basic, "{alg}: step 2 with local keys");
        let cross = library_calls(&local, &[&format!("step2={}", r[1].text())]);
        assert_eq!(
            cross[0].out, r[2].out,
            "{alg}: keyd's pKey for its step 1 equals the local keys' for the same line"
        );

        // Refusals, each with its code and the error text in pOutInfo (pKey).
        let refused = library_calls(&desk_120100, &["bas", &format!("step2={step1}")]);
        show(&format!("{alg}, desk of city 120100"), &refused);
        let policy_text = format!(
            "key service {} refused: policy rule \"desk of city 120100\" does not allow region 110100",
            https(&keyd)
        );
        assert_eq!(
            refused,
            ["iReadCardBas", "iSscardHsmStep2"].map(|f| Call {
                function: f.into(),
                rc: -2304,
                out: policy_text.clone().into_bytes(),
            }),
            "{alg}"
        );
        let foreign = library_calls(&stranger, &["bas"]);
        show(&format!("{alg}, certificate of another CA"), &foreign);
        assert_eq!(
            (foreign[0].rc, foreign[0].text()),
            (
                -2303,
                format!(
                    "key service {} did not accept this client: TLS: received fatal alert: UnknownCA",
                    https(&keyd)
                )
            ),
            "{alg}"
        );
        let gone = library_calls(&nobody, &["bas"]);
        show(&format!("{alg}, no key service"), &gone);
        assert_eq!(
            (gone[0].rc, gone[0].text()),
            (
                -2301,
                format!("key service {closed} is unreachable: Connection refused (os error 111)")
            ),
            "{alg}"
        );
        println!("{alg}: {:?}", started.elapsed());
    }
}

#[test]
fn a_psam_behind_keyd_gives_what_the_psam_gives_locally() {
    let _g = exclusive();
    ensure_pcscd();
    let pki = Pki::new(&["station-1"]);
    let client = pki.client_env(pki.client("station-1"));
    let psam = format!("psam:{READER_1}");
    // EF06 record 4 is the gender: the served card holds "2"; each side writes "1" with line
    // protection (a MAC under UK_N from the PSAM), then reads it.
    let gender = |g: &str| {
        [
            "write",
            "EF06",
            "--record",
            "4",
            "--tlv",
            if g == "1" { "0A0131" } else { "0A0132" },
            "--json",
            "--reader",
            READER_0,
        ]
        .map(str::to_string)
        .to_vec()
    };
    let mut table = Vec::new();
    for (alg, version, step1) in ALGORITHMS {
        let _m = ModelServer::start(&["--alg", alg], &[READER_0, READER_1]);
        let flows: [(&str, Vec<String>); 3] = [
            ("write (line protection)", gender("1")),
            (
                "info",
                ["info", "--json", "--reader", READER_0]
                    .map(str::to_string)
                    .to_vec(),
            ),
            (
                "hsm step2",
                ["hsm", "step2", "--json", step1]
                    .map(str::to_string)
                    .to_vec(),
            ),
        ];
        let run = |keys: &str, env: &[(String, String)]| -> Vec<Output> {
            flows
                .iter()
                .map(|(_, args)| {
                    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
                    a.extend(["--keys", keys]);
                    sscard_client(&a, env)
                })
                .collect()
        };
        // Locally first: keyd keeps the PSAM's reader while it runs.
        let started = Instant::now();
        let local = run(&psam, &[]);
        let back: Vec<String> = gender("2");
        let back: Vec<&str> = back.iter().map(String::as_str).collect();
        let restored = sscard(&[&back[..], &["--keys", "test"]].concat());
        assert_eq!(restored.status.code(), Some(0), "{}", stderr(&restored));
        let mut config = KeydConfig::keys(&psam);
        // A PSAM holds no audit key: keyd's audit chain is keyed by the test key set's.
        config.audit_keys = Some("test".into());
        let keyd = Keyd::start(&pki, config);
        let remote = run(&keyd.url(), &client);
        for (((name, _), l), r) in flows.iter().zip(&local).zip(&remote) {
            println!(
                "{alg} {name}: local psam exit {:?} {}{} | keyd(psam) exit {:?} {}{}",
                l.status.code(),
                stdout(l).trim(),
                stderr(l).trim(),
                r.status.code(),
                stdout(r).trim(),
                stderr(r).trim()
            );
            assert_eq!(l.status.code(), Some(0), "{alg} {name}: {}", stderr(l));
            assert_eq!(
                (r.status.code(), stdout(r)),
                (l.status.code(), stdout(l)),
                "{alg} {name}: keyd(psam) against the local PSAM"
            );
            table.push(format!("{alg:<5} {name:<24} | ="));
        }
        // The written gender, the card's version and the PSAM's terminal number (EF16, from
        // keyd's /v1/info) in what the client read through keyd.
        let info = json(&remote[1]);
        assert_eq!(
            (
                &info["info"]["holder"]["gender"],
                &info["info"]["terminal_number"],
                &info["unified"]
            ),
            (
                &serde_json::json!("1"),
                &serde_json::json!(TERMINAL),
                &serde_json::json!(format!(
                    "110100|11010519491231002X|A12345674|{CARD_ID}|张三|5353434152443031|{version}|20240101|20340101|{TERMINAL}||"
                ))
            ),
            "{alg}: {info}"
        );
        // The model PSAM holds the test key set: its pKey is the test keys' own.
        let soft = sscard(&["hsm", "step2", "--json", "--keys", "test", step1]);
        assert_eq!(stdout(&remote[2]), stdout(&soft), "{alg}: pKey");
        println!("{alg}: {:?}", started.elapsed());
    }
    println!(
        "flow through keyd(psam) vs psam locally:\n{}",
        table.join("\n")
    );
}

#[test]
fn over_its_rate_a_client_gets_429_as_2305_and_passes_again_after_waiting() {
    let _g = exclusive();
    ensure_pcscd();
    let pki = Pki::new(&["station-1"]);
    let work = TempDir::new("rate");
    // Two requests, then one every 4 s: `info` on a 2.00 card and `hsm step2` each make two
    // (/v1/info when the source opens, then one cryptogram or pkey).
    let policy = write_policy(
        work.path(),
        &rule(
            "slow station",
            "station-1",
            r#"["110100"]"#,
            Some("{ per_second = 0.25, burst = 2 }"),
        ),
    );
    let mut config = KeydConfig::keys("test");
    config.policy = Some(policy);
    let keyd = Keyd::start(&pki, config);
    let url = keyd.url();
    let env = pki.client_env(pki.client("station-1"));
    let library_config = remote_config(
        work.path(),
        "remote.toml",
        &pki,
        &url,
        pki.client("station-1"),
    );
    let _m = ModelServer::start(&["--alg", "3des"], &[READER_0, READER_1]);
    let info = || {
        sscard_client(
            &["info", "--json", "--reader", READER_0, "--keys", &url],
            &env,
        )
    };
    let step2 = || {
        sscard_client(
            &["hsm", "step2", "--json", "--keys", &url, STEP1_3DES],
            &env,
        )
    };
    let limited_text = format!(
        "key service {} is rate-limiting this client: over the rate limit of 0.25 requests a second (burst 2): retry later",
        https(&keyd)
    );
    let limited = serde_json::json!({"code": -2305, "error": limited_text, "exit": 5});

    let first = info();
    let emptied = Instant::now();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let burst = [step2(), step2(), info(), step2()];
    let lib = library_calls(&library_config, &["bas", &format!("step2={STEP1_3DES}")]);
    let burst_time = emptied.elapsed();
    for o in &burst {
        println!(
            "in the burst: exit {:?} {}{}",
            o.status.code(),
            stdout(o).trim(),
            stderr(o).trim()
        );
    }
    show("library in the burst", &lib);
    println!("the burst took {burst_time:?}");
    // Within 4 s of the bucket's emptying no token came back: every request is refused.
    assert!(
        burst_time < Duration::from_secs(4),
        "the burst took {burst_time:?}: the machine is too slow for this test's rate"
    );
    for o in &burst {
        assert_eq!(answer(o), (Some(5), limited.clone()));
    }
    assert_eq!(
        lib,
        ["iReadCardBas", "iSscardHsmStep2"].map(|f| Call {
            function: f.into(),
            rc: -2305,
            out: limited_text.clone().into_bytes(),
        })
    );

    // Refused requests take no token: 8 s after the bucket emptied it holds two again.
    let wait = Duration::from_millis(8_500).saturating_sub(emptied.elapsed());
    std::thread::sleep(wait);
    let again = info();
    println!(
        "after {:?}: exit {:?} {}",
        emptied.elapsed(),
        again.status.code(),
        stdout(&again).trim()
    );
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(stdout(&again), stdout(&first));
    // And it is empty again at once.
    assert_eq!(answer(&step2()), (Some(5), limited));
}
