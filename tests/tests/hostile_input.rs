//! Hostile input to the real binaries (issue 15): secrets never echoed in clear — stdout,
//! `--json`, error messages, traces, script reports — whatever the command's shape; every file
//! and stdin input bounded (an endless `/dev/zero` fails at once with a typed error, inside a
//! 512 MiB address space); durations past a day refused; `sscard-model serve` options that
//! cannot work refused. Each case asserts the exact message and exit code.

use sscard_e2e::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The address space each binary gets: a read that is not bounded runs out of it long before
/// it reaches the gigabytes it used to (the error is then not the one asserted).
const ADDRESS_SPACE: &str = "--as=536870912";

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sscard-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs a binary of the workspace under [`ADDRESS_SPACE`], stdin from `stdin`.
fn bounded(name: &str, args: &[&str], stdin: Stdio) -> Output {
    Command::new("prlimit")
        .arg(ADDRESS_SPACE)
        .arg(bin(name))
        .args(args)
        .stdin(stdin)
        .output()
        .expect("prlimit runs (util-linux)")
}

fn zero() -> Stdio {
    std::fs::File::open("/dev/zero").unwrap().into()
}

fn sscard_bounded(args: &[&str]) -> Output {
    bounded("sscard", args, Stdio::null())
}

/// Exit code 2 and exactly `message` on stderr.
fn assert_bad_input(o: &Output, message: &str) {
    assert_eq!(stderr(o), format!("{message}\n"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
}

#[test]
fn send_at_dev_zero_is_refused_at_the_limit() {
    let o = sscard_bounded(&["send", "@/dev/zero"]);
    assert_bad_input(
        &o,
        "sscard: error: /dev/zero holds more than 1048576 bytes, the most read for an APDU list (send @FILE)",
    );
    let o = sscard_bounded(&["--json", "send", "@/dev/zero"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        json(&o)["error"],
        "/dev/zero holds more than 1048576 bytes, the most read for an APDU list (send @FILE)"
    );
}

#[test]
fn a_script_including_dev_zero_is_refused_at_the_limit() {
    let script = tmp("include-zero.apdu");
    std::fs::write(&script, "test \"x\"\n  include \"/dev/zero\"\n").unwrap();
    let o = sscard_bounded(&["script", "run", "--model", script.to_str().unwrap()]);
    assert_bad_input(
        &o,
        &format!(
            "sscard: error: {}:2:11: /dev/zero holds more than 1048576 bytes, the most read for an APDU script",
            script.display()
        ),
    );
}

#[test]
fn a_batch_from_dev_zero_or_endless_stdin_is_refused_at_the_limit() {
    let journal = format!("sqlite:{}", tmp("zero.db").display());
    let run = |batch: &str, stdin: Stdio| {
        bounded(
            "sscard",
            &[
                "perso",
                "run",
                "--batch",
                batch,
                "--journal",
                &journal,
                "--operator",
                "tester",
                "--readers",
                READER_0,
            ],
            stdin,
        )
    };
    let o = run("/dev/zero", Stdio::null());
    assert_bad_input(
        &o,
        "sscard: error: /dev/zero: the batch is larger than 67108864 bytes; split it into smaller batches",
    );
    let o = run("-", zero());
    assert_bad_input(
        &o,
        "sscard: error: standard input: the batch is larger than 67108864 bytes; split it into smaller batches",
    );
    assert!(!tmp("zero.db").exists(), "the journal is not even opened");
}

#[test]
fn card_images_from_dev_zero_are_refused_at_the_limit() {
    let o = bounded("sscard-model", &["show", "/dev/zero"], Stdio::null());
    assert_bad_input(
        &o,
        "sscard-model: error: card image /dev/zero holds more than 4194304 bytes, the most read for a card image",
    );
    // Refused while loading, before anything is served.
    let o = bounded(
        "sscard-model",
        &["serve", "--card", "/dev/zero"],
        Stdio::null(),
    );
    assert_bad_input(
        &o,
        "sscard-model: error: card image /dev/zero holds more than 4194304 bytes, the most read for a card image",
    );
    let holder = bounded(
        "sscard-model",
        &[
            "new",
            "--holder",
            "/dev/zero",
            "--out",
            tmp("never.json").to_str().unwrap(),
        ],
        Stdio::null(),
    );
    assert_bad_input(
        &holder,
        "sscard-model: error: /dev/zero holds more than 65536 bytes, the most read for a holder file",
    );
}

/// `cat /dev/zero > FIFO`, killed and waited for on drop.
struct Feeder(Child);

impl Drop for Feeder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_key_file_fed_from_dev_zero_is_refused_at_the_limit() {
    let fifo = tmp("keys.fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo")
        .args(["-m", "600", fifo.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(made.success());
    let _feeder = Feeder(
        Command::new("sh")
            .args(["-c", "exec cat /dev/zero > \"$1\"", "feeder"])
            .arg(&fifo)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let script = tmp("empty.apdu");
    std::fs::write(&script, "test \"x\"\n  00A4040000 -> any\n").unwrap();
    let keys = format!("soft:{}", fifo.display());
    let o = sscard_bounded(&[
        "script",
        "run",
        "--model",
        "--keys",
        &keys,
        script.to_str().unwrap(),
    ]);
    assert_eq!(
        stderr(&o),
        format!(
            "sscard: warning: using software keys from {}\nsscard: error: key file {}: holds more than 65536 bytes, the most read for a key file\n",
            fifo.display(),
            fifo.display()
        )
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_pin_from_endless_stdin_is_refused_at_the_limit() {
    let o = bounded(
        "sscard",
        &["pin", "verify", "--pin-stdin", "--reader", READER_0],
        zero(),
    );
    assert_bad_input(
        &o,
        "sscard: error: standard input holds more than 1024 bytes, the most read for a PIN line",
    );
    // At the prompt (stdin not a terminal: read as it comes).
    let o = bounded("sscard", &["pin", "verify", "--reader", READER_0], zero());
    assert_eq!(
        stderr(&o),
        "PIN: \nsscard: error: standard input holds more than 1024 bytes, the most read for a PIN line\n"
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn durations_past_a_day_are_refused_not_a_panic() {
    let huge = "18446744073709551615";
    for (args, option, range) in [
        (vec!["info", "--wait", huge], "--wait <SECS>", "0..=86400"),
        (
            vec!["read", "EF05", "--wait", huge],
            "--wait <SECS>",
            "0..=86400",
        ),
        (
            vec!["monitor", "--timeout", huge],
            "--timeout <SECS>",
            "0..=86400",
        ),
        (
            vec![
                "perso",
                "run",
                "--batch",
                "b.csv",
                "--journal",
                "sqlite:j.db",
                "--operator",
                "x",
                "--idle",
                huge,
            ],
            "--idle <IDLE>",
            "1..=86400",
        ),
    ] {
        let o = sscard_bounded(&args);
        assert_bad_input(
            &o,
            &format!(
                "sscard: error: invalid value '{huge}' for '{option}': {huge} is not in {range} (see --help)"
            ),
        );
    }
    let o = sscard_bounded(&["info", "--wait", "86401"]);
    assert_bad_input(
        &o,
        "sscard: error: invalid value '86401' for '--wait <SECS>': 86401 is not in 0..=86400 (see --help)",
    );
}

#[test]
fn model_serve_refuses_options_that_cannot_work() {
    let serve = |args: &[&str]| {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        bounded("sscard-model", &all, Stdio::null())
    };
    let feed = tmp("feed");
    let feed = feed.to_str().unwrap();
    let empty = tmp("no-images");
    std::fs::create_dir_all(&empty).unwrap();
    let empty = empty.to_str().unwrap();
    for (args, message) in [
        (
            vec!["--feeder", feed, "--readers", "2", "--port", "65535"],
            "sscard-model: error: --port 65535 with 2 feeder readers needs ports up to 65536, past the last port 65535: give a lower --port",
        ),
        (
            vec!["--port", "65535"],
            "sscard-model: error: --port 65535 with the card and the PSAM on the next port needs ports up to 65536, past the last port 65535: give a lower --port",
        ),
        (
            vec!["--port", "0", "--no-psam"],
            "sscard-model: error: --port 0 is no vpcd port: name the port pcscd's vpcd driver listens on (35963 by default)",
        ),
        (
            vec!["--fault-rate", "1.5"],
            "sscard-model: error: --fault-rate must be between 0 and 1",
        ),
        (
            vec!["--app", "loopback", "--card", "c.json"],
            "sscard-model: error: --app loopback serves the loopback application alone: --card and --defect would be ignored",
        ),
        (
            vec!["--present", empty],
            &format!("sscard-model: error: --present {empty}: no card image (*.json) there; nothing would be served")[..],
        ),
    ] {
        let o = serve(&args);
        assert_bad_input(&o, message);
    }
    // Refused by the argument parser: its first line, exit 2.
    for (args, first) in [
        (
            vec!["--feeder", feed, "--readers", "0"],
            "error: invalid value '0' for '--readers <READERS>': 0 is not in 1..=64",
        ),
        (
            vec!["--latency-ms", "18446744073709551615"],
            "error: invalid value '18446744073709551615' for '--latency-ms <LATENCY_MS>': 18446744073709551615 is not in 0..=60000",
        ),
        (
            vec!["--no-psam", "--psam", "p.json"],
            "error: the argument '--no-psam' cannot be used with '--psam <PSAM>'",
        ),
        (
            vec!["--feeder", feed, "--blank", "0"],
            "error: invalid value '0' for '--blank <BLANK>': 0 is not in 1..18446744073709551615",
        ),
    ] {
        let o = serve(&args);
        assert_eq!(stderr(&o).lines().next(), Some(first), "{args:?}");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn send_errors_never_quote_secret_data() {
    for (apdu, message) in [
        // A wrong Lc: refused before any card is touched, the PIN not shown.
        (
            "0020000004123456",
            "APDU 1 (00200000**…): Lc says 4 data bytes but 3 follow",
        ),
        (
            "00 20 00 00 03 12 34 5G",
            "APDU 1 (00200000**…): a character at column 23 is not a hex digit (secret data, not shown)",
        ),
        (
            "845E000007123456FF80241",
            "APDU 1 (845E0000**…): odd number of hex digits (23): every byte needs two",
        ),
        (
            "84D400081012345678",
            "APDU 1 (84D40008**…): Lc says 16 data bytes but 4 follow",
        ),
        // A PIN typed as an APDU of its own.
        (
            "123456",
            "APDU 1 (**): an APDU needs at least 4 header bytes, got 3",
        ),
        // Two APDUs pasted together, a VERIFY after a SELECT: the public header alone.
        (
            "00A40400000020000003123456",
            "APDU 1 (00A40400…): Lc says 32 data bytes but 6 follow",
        ),
        (
            "00A40400 00 0020000003 12345O",
            "APDU 1 (00A40400…): a character at column 29 is not a hex digit (command data, not shown)",
        ),
        // The ISO PIN commands, whatever the class.
        (
            "002C00000812345678123456",
            "APDU 1 (002C0000**…): Lc says 8 data bytes but 7 follow",
        ),
        (
            "8021000004123456",
            "APDU 1 (80210000**…): Lc says 4 data bytes but 3 follow",
        ),
        (
            "0026000004123456",
            "APDU 1 (00260000**…): Lc says 4 data bytes but 3 follow",
        ),
        (
            "0028000004123456",
            "APDU 1 (00280000**…): Lc says 4 data bytes but 3 follow",
        ),
        (
            "0024000007123456654321",
            "APDU 1 (00240000**…): Lc says 7 data bytes but 6 follow",
        ),
    ] {
        let o = sscard_bounded(&["send", apdu]);
        assert_bad_input(&o, &format!("sscard: error: {message}"));
        let o = sscard_bounded(&["--json", "send", apdu]);
        assert_eq!(json(&o)["error"], message);
    }
}

/// Whether `text` shows any part of the PIN 123456 or the wrong-Lc data.
fn shows_pin(text: &str) -> bool {
    text.contains("123456") || text.contains("3456") || text.contains("1234")
}

#[test]
fn send_output_json_and_traces_mask_pin_commands() {
    let _g = exclusive();
    let _m = ModelServer::start(&["--no-psam"], &[READER_0]);
    let trace_json = tmp("send.jsonl");
    let select = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF";
    let o = sscard(&[
        "send",
        "--reader",
        READER_0,
        "--trace",
        "--trace-json",
        trace_json.to_str().unwrap(),
        select,
        "0020000003123456",
        // Lc says 2: parsed as data 1234 and Le 56, and masked as a whole.
        "0020000002123456",
        // ISO VERIFY with the odd INS, RESET RETRY COUNTER (PUK ‖ new PIN), DISABLE and
        // ENABLE VERIFICATION REQUIREMENT, CHANGE REFERENCE DATA with CLA 00.
        "0021000003123456",
        "002C000006123456654321",
        "0026000003123456",
        "0028000003123456",
        "0024000006123456654321",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with('>')).collect();
    assert_eq!(
        lines,
        [
            &format!("> {select}")[..],
            "> 0020000003******",
            "> 0020000002******",
            "> 0021000003******",
            "> 002C000006************",
            "> 0026000003******",
            "> 0028000003******",
            "> 0024000006************",
        ]
    );
    assert!(!shows_pin(&out), "{out}");
    assert!(!out.contains("654321"), "{out}");
    let err = stderr(&o);
    for shown in [
        "card > 0020000003******",
        "card > 0020000002******",
        "card > 0021000003******",
        "card > 002C000006************",
        "card > 0026000003******",
        "card > 0028000003******",
        "card > 0024000006************",
    ] {
        assert!(err.contains(shown), "{shown} in {err}");
    }
    assert!(!err.contains("654321"), "{err}");
    assert!(!shows_pin(&err), "{err}");
    // The exchanges, not the timestamps (a time may hold the digits 1234).
    let traced = std::fs::read_to_string(&trace_json).unwrap();
    for line in traced.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        let shown = format!("{} {}", e["command"], e["response"]);
        assert!(!shows_pin(&shown), "{line}");
    }
    let o = sscard(&[
        "--json",
        "send",
        "--reader",
        READER_0,
        select,
        "0020000003123456",
        "0021000003123456",
        "002C000006123456654321",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["responses"][1]["command"], "0020000003******");
    assert_eq!(v["responses"][2]["command"], "0021000003******");
    assert_eq!(v["responses"][3]["command"], "002C000006************");
    assert!(!v.to_string().contains("654321"), "{v}");
    assert!(!shows_pin(&v.to_string()), "{v}");
}

#[test]
fn scripts_never_show_a_pin() {
    let script = tmp("pin.apdu");
    // The expectation fails: the report says so without the command.
    std::fs::write(
        &script,
        "test \"verify\"\n  00A404000F7378312E73682EC9E7BBE1B1A3D5CF\n  0020000003123456 -> 9999\n",
    )
    .unwrap();
    let o = sscard_bounded(&[
        "--json",
        "script",
        "run",
        "--model",
        "--trace",
        script.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report = json(&o);
    assert_eq!(report["failed"], 1);
    assert_eq!(
        report["files"][0]["cases"][0]["message"],
        format!("{}:3: expected 9999, got 9000 (success)", script.display())
    );
    assert!(!shows_pin(&report.to_string()), "{report}");
    let err = stderr(&o);
    assert!(err.contains("card > 0020000003******"), "{err}");
    assert!(!shows_pin(&err), "{err}");
    // A malformed PIN line: refused with nothing of its data quoted.
    std::fs::write(&script, "test \"verify\"\n  00 20 00 00 03 12345G\n").unwrap();
    let o = sscard_bounded(&["script", "run", "--model", script.to_str().unwrap()]);
    assert_bad_input(
        &o,
        &format!(
            "sscard: error: {}:2:18: 00200000**…: a character at column 6 is not a hex digit (secret data, not shown)",
            script.display()
        ),
    );
}

#[test]
fn a_script_never_shows_a_raw_des_crypt_answer() {
    let script = tmp("des-crypt.apdu");
    // The script fetches DES CRYPT's answer with a GET RESPONSE of its own, saves it and sends
    // it to the card; the check of the answer fails.
    std::fs::write(
        &script,
        "test \"des crypt\"\n  @psam\n  00A40000 02 DF01\n  801A0801 08 99110145000000A1\n  80FA0000 08 0102030405060708 -> 6108\n  00C0000008 -> 9000 save $c\n  @card\n  00DC010C 08 $c -> any\n  int-auth IRK $c -> any\n  @psam\n  80FA0000 08 0102030405060708 -> 6108\n  00C0000008 -> 9000 0000000000000000\n",
    )
    .unwrap();
    let o = sscard_bounded(&[
        "--json",
        "script",
        "run",
        "--model",
        "--trace",
        script.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report = json(&o);
    assert_eq!(report["failed"], 1);
    assert_eq!(
        report["files"][0]["cases"][0]["message"],
        format!(
            "{}:12: expected data 0000000000000000, got ****************",
            script.display()
        )
    );
    // The sample card's IRK cryptogram of 0102…08 appears nowhere.
    let cryptogram = "03367BD51B84AE05";
    assert!(!report.to_string().contains(cryptogram), "{report}");
    let err = stderr(&o);
    assert!(!err.contains(cryptogram), "{err}");
    assert_eq!(
        err.matches("psam > 00C0000008\npsam < **************** 9000")
            .count(),
        2,
        "{err}"
    );
    // The saved answer, sent to the card, is masked as it was.
    assert!(err.contains("card > 00DC010C08****************\n"), "{err}");
    assert!(
        err.contains("card > 0088000808******************\n"),
        "{err}"
    );
}

#[test]
fn the_limits_are_the_documented_ones() {
    assert_eq!(sscard_perso::batch::MAX_BATCH_BYTES, 64 << 20);
    assert_eq!(sscard::script::parse::MAX_SCRIPT_BYTES, 1 << 20);
    assert_eq!(sscard::script::parse::MAX_SCRIPT_TOTAL_BYTES, 8 << 20);
    assert_eq!(sscard_model::image::MAX_IMAGE_BYTES, 4 << 20);
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ARCHITECTURE.md"),
    )
    .unwrap();
    for row in [
        "| APDU list (`send @FILE`) | 1 MiB |",
        "| APDU script, each file | 1 MiB |",
        "| APDU script and its includes | 8 MiB |",
        "| batch (`perso run --batch`, `-` for stdin) | 64 MiB |",
        "| card image | 4 MiB |",
        "| key file | 64 KiB |",
        "| anchor file (`perso audit-verify --anchor`) | 16 MiB |",
        "| holder file (`sscard-model new --holder`) | 64 KiB |",
        "| PIN, token PIN, key component line (stdin or prompt) | 1 KiB |",
    ] {
        assert!(doc.contains(row), "docs/ARCHITECTURE.md lacks {row}");
    }
}

#[test]
fn sscard_refuses_options_that_cannot_work() {
    let script = tmp("select.apdu");
    std::fs::write(&script, "test \"x\"\n  00A4040000 -> any\n").unwrap();
    let script = script.to_str().unwrap();
    for (args, message) in [
        (
            vec!["script", "run", "--model", "--wait", "3", script],
            "sscard: error: the argument '--model' cannot be used with '--wait <SECS>' (see --help)",
        ),
        (
            vec!["script", "run", "--model", "--reader", "0", script],
            "sscard: error: the argument '--model' cannot be used with '--reader <READER>' (see --help)",
        ),
        (
            vec!["monitor", "--count", "0"],
            "sscard: error: invalid value '0' for '--count <COUNT>': 0 is not in 1..18446744073709551615 (see --help)",
        ),
    ] {
        assert_bad_input(&sscard_bounded(&args), message);
    }
}

#[test]
fn an_anchor_from_dev_zero_is_refused_at_the_limit() {
    assert_eq!(sscard_perso::journal::MAX_ANCHOR_BYTES, 16 << 20);
    let journal = format!("sqlite:{}", tmp("anchor-journal.db").display());
    let o = sscard(&["perso", "journal-init", "--journal", &journal]);
    assert!(o.status.success(), "{}", stderr(&o));
    let message = "anchor file /dev/zero holds more than 16777216 bytes, the most read for an anchor file: it is not one (give --anchor the file perso run writes)";
    let o = sscard_bounded(&[
        "perso",
        "audit-verify",
        "--journal",
        &journal,
        "--anchor",
        "/dev/zero",
    ]);
    assert_bad_input(&o, &format!("sscard: error: {message}"));
    let o = sscard_bounded(&[
        "--json",
        "perso",
        "audit-verify",
        "--journal",
        &journal,
        "--anchor",
        "/dev/zero",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json(&o)["error"], message);
}

#[test]
fn bench_options_that_measure_nothing_or_too_long_are_refused() {
    for (args, message) in [
        (
            vec!["bench", "transport", "--rounds", "0"],
            "sscard: error: invalid value '0' for '--rounds <ROUNDS>': 0 measures nothing: give at least 1 (see --help)",
        ),
        (
            vec!["bench", "transport", "--repeat", "0"],
            "sscard: error: invalid value '0' for '--repeat <REPEAT>': 0 measures nothing: give at least 1 (see --help)",
        ),
        (
            vec!["bench", "transport", "--count", "0"],
            "sscard: error: invalid value '0' for '--count <COUNT>': 0 measures nothing: give at least 1 (see --help)",
        ),
        (
            vec!["bench", "vpcd", "--rounds", "0"],
            "sscard: error: invalid value '0' for '--rounds <ROUNDS>': 0 measures nothing: give at least 1 (see --help)",
        ),
        (
            vec!["bench", "keys", "--keys", "test", "--rounds", "0"],
            "sscard: error: invalid value '0' for '--rounds <ROUNDS>': 0 measures nothing: give at least 1 (see --help)",
        ),
        (
            vec!["bench", "model", "--sessions", "0"],
            "sscard: error: invalid value '0' for '--sessions <SESSIONS>': 0 measures nothing: give at least 1 (see --help)",
        ),
        (
            vec!["bench", "perso", "--readers", "1,0"],
            "sscard: error: invalid value '0' for '--readers <READERS>': 0 measures nothing: give at least 1 (see --help)",
        ),
        (
            vec!["bench", "perso", "--cards-per-reader", "0"],
            "sscard: error: invalid value '0' for '--cards-per-reader <CARDS_PER_READER>': 0 measures nothing: give at least 1 (see --help)",
        ),
        (
            vec!["bench", "perso", "--latency-ms", "60001"],
            "sscard: error: invalid value '60001' for '--latency-ms <LATENCY_MS>': 60001 is not in 0..=60000 (see --help)",
        ),
        (
            vec!["bench", "perso", "--latency-ms", "18446744073709551615"],
            "sscard: error: invalid value '18446744073709551615' for '--latency-ms <LATENCY_MS>': 18446744073709551615 is not in 0..=60000 (see --help)",
        ),
        // --apdu is echoed as send echoes a command: a PIN's digits never.
        (
            vec!["bench", "transport", "--apdu", "0020000003 12345G"],
            "sscard: error: --apdu 00200000**…: a character at column 17 is not a hex digit (secret data, not shown)",
        ),
        (
            vec!["bench", "transport", "--apdu", "0020000004123456"],
            "sscard: error: --apdu 00200000**…: Lc says 4 data bytes but 3 follow",
        ),
        (
            vec!["bench", "transport", "--apdu", "123456"],
            "sscard: error: --apdu **: an APDU needs at least 4 header bytes, got 3",
        ),
        // A public command: its header alone, the bad character not quoted (it may be a
        // pasted VERIFY's).
        (
            vec!["bench", "transport", "--apdu", "00A40400 0G"],
            "sscard: error: --apdu 00A40400…: a character at column 11 is not a hex digit (command data, not shown)",
        ),
    ] {
        assert_bad_input(&sscard_bounded(&args), message);
    }
}

#[test]
fn model_defects_are_all_listed_from_the_model() {
    let o = bounded("sscard-model", &["serve", "--help"], Stdio::null());
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<&str> = sscard_model::ssc::Defect::names().collect();
    assert_eq!(
        names,
        [
            "mac-not-checked",
            "try-counter-not-decremented",
            "grant-survives-failure"
        ]
    );
    let listed = format!("[possible values: {}]", names.join(", "));
    let help = stdout(&o).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains(&listed), "{help}");
    let o = bounded(
        "sscard-model",
        &["serve", "--defect", "nope"],
        Stdio::null(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let mut lines = err.lines();
    assert_eq!(
        lines.next(),
        Some("error: invalid value 'nope' for '--defect <DEFECT>'")
    );
    assert_eq!(lines.next(), Some(&format!("  {listed}")[..]));
}

#[test]
fn a_raw_des_crypt_answer_is_masked_in_send_output_json_and_trace() {
    let _g = exclusive();
    let _m = ModelServer::start(&[], &[READER_0, READER_1]);
    let trace_json = tmp("des-crypt.jsonl");
    let apdus = [
        "00A4000002DF01",
        "801A08010899110145000000A1",
        "80FA0000080102030405060708",
    ];
    let mut args = vec![
        "send",
        "--reader",
        READER_1,
        "--trace",
        "--trace-json",
        trace_json.to_str().unwrap(),
    ];
    args.extend(apdus);
    let o = sscard(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[4], "> 80FA0000080102030405060708", "{out}");
    assert_eq!(lines[5], "< **************** 9000 success", "{out}");
    // The answer itself (the sample card's IRK cryptogram of 0102…08) appears nowhere.
    let cryptogram = "03367BD51B84AE05";
    assert!(!out.contains(cryptogram), "{out}");
    let err = stderr(&o);
    assert!(
        err.contains("card > 00C0000008\ncard < **************** 9000"),
        "{err}"
    );
    assert!(!err.contains(cryptogram), "{err}");
    let traced = std::fs::read_to_string(&trace_json).unwrap();
    assert!(!traced.contains(cryptogram), "{traced}");
    let mut args = vec!["--json", "send", "--reader", READER_1];
    args.extend(apdus);
    let o = sscard(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["responses"][2]["data"], "****************");
    assert_eq!(v["responses"][2]["sw"], "9000");
    assert!(!v.to_string().contains(cryptogram), "{v}");
}
