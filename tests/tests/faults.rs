//! The fault campaign (issue 15, deliverable 4): what a real deployment throws at the stack,
//! through real pcscd and vpcd, each fault a test.
//!
//! - pcscd killed (SIGKILL) in the middle of a command, and restarted;
//! - the card pulled at every APDU of `info`, `write`, `pin change` and the personalisation of
//!   one card, before the card carries the APDU out and after;
//! - another application holding the card (exclusive connection, or a transaction of its own);
//! - the reader going away while in use;
//! - the answer to a command that changes the card lost on its way back.
//!
//! Every test runs its own pcscd ([`PrivatePcscd`]: the real daemon and vpcd driver on
//! readers of its own), so killing it leaves the system's pcscd and every other test alone.
//! The model's control socket injects the card faults (`pull`, `lose`, `hold`). Each test
//! prints its part of the fault matrix (fault × flow → outcome, time to error) on stderr
//! (`--nocapture`); docs/faults.md holds the figures.

use sscard_core::hexfmt::parse_hex;
use sscard_core::profile::commands::{describe_bytes, Idempotence};
use sscard_e2e::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest any faulted command may take before the campaign calls it hung.
const HANG: Duration = Duration::from_secs(10);

const Z0: &str = PRIVATE_READER_0;
const Z1: &str = PRIVATE_READER_1;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sscard-faults-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn model_new(args: &[&str]) {
    let o = Command::new(bin("sscard-model"))
        .arg("new")
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// One line of the fault matrix.
struct Row {
    fault: String,
    flow: String,
    outcome: String,
    millis: Option<u128>,
}

/// Prints rows as the fault matrix (a Markdown table, as docs/faults.md shows it).
fn print_matrix(title: &str, rows: &[Row]) {
    eprintln!("\nfault matrix: {title}\n");
    eprintln!("| fault | flow | outcome | time to error |");
    eprintln!("|---|---|---|---|");
    for r in rows {
        eprintln!(
            "| {} | {} | {} | {} |",
            r.fault,
            r.flow,
            r.outcome,
            r.millis.map_or("—".into(), |m| format!("{m} ms"))
        );
    }
    eprintln!();
}

/// Spawns `sscard ARGS` with `stdin` (stdout and stderr piped).
fn spawn_sscard(args: &[&str], stdin: Option<&str>) -> Child {
    let mut child = Command::new(bin("sscard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sscard");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        use std::io::Write;
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child
}

/// Waits for `child` at most [`HANG`]; kills it and fails the test when it hangs.
fn finish(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + HANG;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "{what}: sscard hung for {HANG:?}; stdout {} stderr {}",
                stdout(&o),
                stderr(&o)
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `sscard ARGS` and how long it took.
fn timed(args: &[&str], stdin: Option<&str>) -> (Output, Duration) {
    let start = Instant::now();
    let o = finish(spawn_sscard(args, stdin), &args.join(" "));
    (o, start.elapsed())
}

/// A failed command's typed error as `exit E, code C: message`; panics on a success, on an
/// untyped error (no JSON, a panic's exit 101, the unknown code -999).
fn typed_error(o: &Output, what: &str) -> (i32, i64, String) {
    assert!(
        !o.status.success(),
        "{what}: reported success: {}",
        stdout(o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: no JSON error ({e}); exit {:?}, stdout {}, stderr {}",
            o.status.code(),
            stdout(o),
            stderr(o)
        )
    });
    let exit = o.status.code().expect("an exit code, not a signal");
    let code = v["code"].as_i64().expect("a code");
    let error = v["error"].as_str().expect("an error message").to_string();
    assert_eq!(v["exit"].as_i64(), Some(i64::from(exit)), "{what}: {v}");
    assert!(
        (1..=7).contains(&exit) && code != -999,
        "{what}: untyped error: exit {exit}, {v}"
    );
    (exit, code, error)
}

/// The APDUs a clean run of `args` sends, per role (`card`, `psam`): their names and whether
/// they change the card, from `--trace-json`.
fn apdus_of(args: &[&str], stdin: Option<&str>, dir: &Path) -> Vec<(String, &'static str, bool)> {
    let trace = dir.join("trace.jsonl");
    let _ = std::fs::remove_file(&trace);
    let mut a = args.to_vec();
    let t = trace.to_str().unwrap().to_string();
    a.extend_from_slice(&["--trace-json", &t]);
    let (o, _) = timed(&a, stdin);
    assert!(o.status.success(), "clean run of {args:?}: {}", stdout(&o));
    std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            // CLA and INS are never masked.
            let hex = v["command"].as_str().unwrap();
            let info = describe_bytes(&parse_hex(&hex[..4]).unwrap());
            (
                v["role"].as_str().unwrap().to_string(),
                info.name,
                info.idempotence == Idempotence::ChangesCard,
            )
        })
        .collect()
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The image file as JSON (it must load as a valid image first).
fn image(path: &Path) -> serde_json::Value {
    sscard_model::Image::load(path)
        .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A CLI flow that changes the card between two states and back: `args(i)` takes it to state
/// `i % 2` from the other one.
struct Flow {
    name: &'static str,
    args: fn(usize) -> Vec<String>,
    stdin: fn(usize) -> Option<String>,
}

fn card_args(rest: &[&str]) -> Vec<String> {
    rest.iter()
        .chain(&["--json", "--reader", Z0, "--psam-reader", Z1])
        .map(|s| s.to_string())
        .collect()
}

fn flows() -> Vec<Flow> {
    vec![
        Flow {
            name: "info",
            args: |_| card_args(&["info"]),
            stdin: |_| None,
        },
        Flow {
            name: "write",
            // Gender record of EF06: "32" (the sample holder's) in state 0, "31" in state 1.
            args: |to| {
                let tlv = format!("0A013{}", 2 - to);
                card_args(&["write", "EF06", "--record", "4", "--tlv", &tlv])
            },
            stdin: |_| None,
        },
        Flow {
            name: "pin change",
            // PIN 802417 in state 0, 802418 in state 1 (the campaign first leaves the initial PIN).
            args: |_| card_args(&["pin", "change", "--pin-stdin"]),
            stdin: |to| {
                let (old, new) = if to == 1 {
                    ("802417", "802418")
                } else {
                    ("802418", "802417")
                };
                Some(format!("{old}\n{new}\n{new}\n"))
            },
        },
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A private pcscd serving a personalised card image (in a test directory named `name`) and a
/// PSAM, the card's initial PIN already changed to 802417: PIN changes then go 802417 ⇄ 802418.
fn personalised_card_on_a_private_pcscd(
    name: &str,
) -> (PrivatePcscd, PathBuf, PathBuf, ModelServer) {
    let pcscd = PrivatePcscd::start();
    let dir = tmpdir(name);
    let card = dir.join("card.json");
    model_new(&["--kind", "personalised", "--out", card.to_str().unwrap()]);
    let model = ModelServer::start_on_running_pcscd(
        &["--card", card.to_str().unwrap(), "--port", "36013"],
        &[Z0, Z1],
    );
    let (o, _) = timed(
        &strs(&card_args(&["pin", "change", "--pin-stdin"])),
        Some("123456\n802417\n802417\n"),
    );
    assert!(o.status.success(), "{}", stdout(&o));
    (pcscd, dir, card, model)
}

#[test]
fn a_card_pulled_at_any_apdu_of_info_write_and_pin_change_is_never_a_success() {
    let _g = exclusive();
    let (_pcscd, dir, card, model) = personalised_card_on_a_private_pcscd("pull");
    let mut rows = Vec::new();
    let mut pulls = 0;
    for flow in flows() {
        // The two states of the card image this flow moves between.
        let mut states = [image(&card), serde_json::Value::Null];
        let mut at = 0;
        let apdus = apdus_of(&strs(&(flow.args)(1)), (flow.stdin)(1).as_deref(), &dir);
        states[1] = image(&card);
        if flow.name == "info" {
            assert_eq!(states[0], states[1], "info changes nothing");
        } else {
            assert_ne!(states[0], states[1], "{} changes the card", flow.name);
            at = 1;
        }
        for (slot, role, reader) in [(0, "card", Z0), (1, "psam", Z1)] {
            let list: Vec<&(String, &str, bool)> =
                apdus.iter().filter(|(r, _, _)| r == role).collect();
            for (k, (_, name, changes)) in list.iter().enumerate() {
                let k = k + 1;
                for when in ["before", "after"] {
                    let to = 1 - at;
                    assert_eq!(model.control(&format!("pull {slot} {k} {when}")), "ok");
                    let args = (flow.args)(to);
                    let what = format!(
                        "{} with the {role} pulled {when} its APDU {k} ({name})",
                        flow.name
                    );
                    let (o, took) = timed(&strs(&args), (flow.stdin)(to).as_deref());
                    let (exit, code, error) = typed_error(&o, &what);
                    assert!(
                        model
                            .control("status")
                            .contains(&format!("slot {slot} port")),
                        "status"
                    );
                    // The fault fired inside the flow: the card is out of the reader.
                    assert!(!card_present(reader), "{what}: the card is still in");
                    pulls += 1;
                    if *changes && role == "card" {
                        assert_eq!(exit, 7, "{what}: {error}");
                        assert!(error.contains("may or may not"), "{what}: {error}");
                    } else {
                        assert!(
                            [4, 6].contains(&exit) && [-2, -4, -2201].contains(&code),
                            "{what}: exit {exit} code {code} {error}"
                        );
                    }
                    // The image is one of the two states, whole.
                    let now = image(&card);
                    let state = states
                        .iter()
                        .position(|s| *s == now)
                        .unwrap_or_else(|| panic!("{what}: the image is in neither state: {now}"));
                    if state != at {
                        assert!(
                            role == "card" && *changes && when == "after",
                            "{what}: the card changed though the command was not carried out"
                        );
                    }
                    at = state;
                    rows.push(Row {
                        fault: format!("{role} pulled {when} APDU {k} ({name})"),
                        flow: flow.name.into(),
                        outcome: format!(
                            "exit {exit}, code {code}: {}; image {}",
                            error,
                            if state == to && flow.name != "info" {
                                "changed (whole)"
                            } else {
                                "unchanged"
                            }
                        ),
                        millis: Some(took.as_millis()),
                    });
                    assert_eq!(model.control(&format!("insert {slot}")), "ok");
                    wait_until(&format!("the card back in {reader}"), || {
                        card_present(reader)
                    });
                }
            }
        }
    }
    print_matrix(
        &format!("{pulls} pulls over info, write and pin change"),
        &rows,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A running `sscard perso run` whose `--json` events arrive on a channel as they are printed.
struct Station {
    child: Child,
    events: std::sync::mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl Station {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(bin("sscard"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sscard perso run");
        let out = child.stdout.take().expect("stdout");
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Self {
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// Waits (at most [`HANG`]) for the next event named `name`; returns it.
    fn wait_for(&mut self, name: &str) -> serde_json::Value {
        let deadline = Instant::now() + HANG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if v["event"] == name {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "no {name:?} event within {HANG:?}; events so far: {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Waits (at most [`HANG`]) for the station to end; its exit code and every event.
    fn end(mut self) -> (Option<i32>, Vec<serde_json::Value>) {
        let deadline = Instant::now() + HANG;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the station hung; events so far: {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let rest: Vec<serde_json::Value> = self.events.iter().collect();
        self.seen.extend(rest);
        (status.code(), std::mem::take(&mut self.seen))
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The journal's states (`perso status --json`).
fn journal_states(journal: &str) -> serde_json::Value {
    let o = sscard(&["perso", "status", "--journal", journal, "--json"]);
    assert!(o.status.success(), "perso status: {}", stderr(&o));
    json(&o)["states"].clone()
}

/// The issued cards the feeder stored in `feed` (not the reject bin): file name → image.
fn issued_cards(feed: &Path) -> Vec<(String, serde_json::Value)> {
    let mut cards: Vec<(String, serde_json::Value)> = std::fs::read_dir(feed)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        image(&e.path()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    cards.sort_by(|a, b| a.0.cmp(&b.0));
    cards
}

fn station_args(batch: &Path, journal: &str, idle: &str) -> Vec<String> {
    [
        "perso",
        "run",
        "--operator",
        "faults",
        "--batch",
        batch.to_str().unwrap(),
        "--readers",
        "0",
        "--journal",
        journal,
        "--idle",
        idle,
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Polls the model until its card in slot 0 fired a fault (`faults N` in the status).
fn fired(model: &ModelServer, faults: u64) -> bool {
    model
        .control("status")
        .split("; ")
        .next()
        .is_some_and(|s| s.contains(&format!(" faults {faults}")))
}

#[test]
fn a_card_pulled_at_any_apdu_of_its_personalisation_is_never_committed_as_issued() {
    let _g = exclusive();
    let _pcscd = PrivatePcscd::start();
    let dir = tmpdir("perso");
    let feed = dir.join("feed");
    let batch = write_batch(&dir, 1, 'F');
    let model = ModelServer::start_on_running_pcscd(
        &[
            "--feeder",
            feed.to_str().unwrap(),
            "--blank",
            "400",
            "--readers",
            "1",
            "--port",
            "36013",
        ],
        &[Z0],
    );
    let holder = sscard_perso::batch::synthetic(1, 'F')[0]
        .1
        .card_number
        .clone();
    // A clean run: the APDUs of one card, identification to EJECT ICC.
    let journal = format!("sqlite:{}", dir.join("clean.db").display());
    let trace = dir.join("trace.jsonl");
    let mut args = station_args(&batch, &journal, "1");
    args.extend(["--trace-json".to_string(), trace.display().to_string()]);
    let start = Instant::now();
    let clean = Station::start(&strs(&args));
    let (code, _) = clean.end();
    let clean_time = start.elapsed();
    assert_eq!(code, Some(0));
    let apdus: Vec<(&'static str, bool)> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let hex = v["command"].as_str().unwrap();
            let info = describe_bytes(&parse_hex(&hex[..4]).unwrap());
            (info.name, info.idempotence == Idempotence::ChangesCard)
        })
        .collect();
    let eject = apdus
        .iter()
        .position(|(n, _)| *n == "command" || n.contains("EJECT"))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no EJECT ICC in the clean run: {apdus:?}"));
    eprintln!(
        "perso: a clean run of one card took {} ms, {eject} APDUs to EJECT ICC ({} in all)",
        clean_time.as_millis(),
        apdus.len()
    );
    assert_eq!(issued_cards(&feed).len(), 1);
    let mut rows = Vec::new();
    let mut faults = 0;
    for (k, (name, changes)) in apdus[..eject].iter().enumerate() {
        let k = k + 1;
        for when in ["before", "after"] {
            // After carrying out a command that changes nothing, the card is as before it.
            if when == "after" && !changes && k != eject {
                continue;
            }
            let what = format!("personalisation with the card pulled {when} its APDU {k} ({name})");
            let journal = format!("sqlite:{}", dir.join(format!("j{k}{when}.db")).display());
            let issued_before = issued_cards(&feed).len();
            assert_eq!(model.control(&format!("pull 0 {k} {when}")), "ok");
            let mut station = Station::start(&strs(&station_args(&batch, &journal, "5")));
            faults += 1;
            wait_until(&format!("{what}: the fault"), || fired(&model, faults));
            let pulled = Instant::now();
            let retry = station.wait_for("retry");
            let took = pulled.elapsed();
            let detail = retry["detail"].as_str().unwrap_or_default().to_string();
            // While the card is out: not issued in the journal, unless it was (the pull came
            // at EJECT ICC, after the journal had the card issued).
            let states = journal_states(&journal);
            let reported = station.seen.iter().any(|e| e["event"] == "issued");
            if k == eject {
                assert_eq!(states, serde_json::json!({"issued": 1}), "{what}");
            } else {
                assert!(states.get("issued").is_none(), "{what}: {states}");
                assert!(!reported, "{what}: reported issued: {:?}", station.seen);
            }
            assert!(!card_present(Z0), "{what}: the card is still in");
            assert_eq!(model.control("insert 0"), "ok");
            let (code, events) = station.end();
            let issued_events = events.iter().filter(|e| e["event"] == "issued").count();
            assert_eq!(code, Some(0), "{what}: {events:?}");
            assert_eq!(
                journal_states(&journal),
                serde_json::json!({"issued": 1}),
                "{what}: {events:?}"
            );
            // The card came back and was finished (or, pulled at EJECT ICC, taken out): one
            // more issued card in the feeder's output, bearing the holder's number.
            let cards = issued_cards(&feed);
            assert_eq!(cards.len(), issued_before + 1, "{what}: {events:?}");
            let newest = cards
                .iter()
                .map(|(_, v)| v)
                .filter(|v| v["life_cycle"] == "ISSUED")
                .count();
            assert_eq!(newest, cards.len(), "{what}: a stored card is not issued");
            let resumed = events.iter().any(|e| e["event"] == "resuming");
            rows.push(Row {
                fault: format!("card pulled {when} APDU {k} ({name})"),
                flow: "perso run (1 holder)".into(),
                outcome: format!(
                    "retry: {detail}; journal while out: {}; card back: {}, {issued_events} issued event(s), exit 0",
                    if k == eject {
                        "issued (committed before EJECT ICC)"
                    } else {
                        "not issued"
                    },
                    if k == eject {
                        "ejected"
                    } else if resumed {
                        "resumed and issued"
                    } else {
                        "issued"
                    }
                ),
                millis: Some(took.as_millis()),
            });
            let _ = &holder;
        }
    }
    print_matrix(
        &format!("{} pulls over the personalisation of one card", rows.len()),
        &rows,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `sscard ARGS`, waits until the model's card in slot 0 holds its armed APDU (the
/// fault fired), then runs `strike`; returns the command's output and the time from the strike
/// to its end.
fn strike_mid_command(
    held: impl Fn() -> bool,
    args: &[&str],
    stdin: Option<&str>,
    strike: impl FnOnce(),
) -> (Output, Duration) {
    let child = spawn_sscard(args, stdin);
    wait_until("the held APDU", held);
    let struck = Instant::now();
    strike();
    let o = finish(child, &args.join(" "));
    (o, struck.elapsed())
}

/// The position (1-based) of the first card APDU named `name` in a clean run of `args`.
fn position_of(apdus: &[(String, &'static str, bool)], name: &str) -> u64 {
    apdus
        .iter()
        .filter(|(role, _, _)| role == "card")
        .position(|(_, n, _)| *n == name)
        .map(|i| i as u64 + 1)
        .unwrap_or_else(|| panic!("no {name} in {apdus:?}"))
}

#[test]
fn pcscd_killed_mid_command_is_a_typed_error_within_a_second_and_the_next_command_works() {
    let _g = exclusive();
    let (mut pcscd, dir, card, model) = personalised_card_on_a_private_pcscd("pcscd");
    let mut rows = Vec::new();
    // The command is held inside the APDU that matters most: a read for info, the write
    // itself, the PIN change itself.
    for (faults, (flow, name)) in
        (1..).zip(
            flows()
                .into_iter()
                .zip(["READ RECORD", "UPDATE RECORD", "CHANGE/RELOAD PIN"]),
        )
    {
        let args = (flow.args)(1);
        let stdin = (flow.stdin)(1);
        let apdus = apdus_of(&strs(&args), stdin.as_deref(), &dir);
        // Back to state 0 (the clean run moved the card to state 1).
        if flow.name != "info" {
            let (o, _) = timed(&strs(&(flow.args)(0)), (flow.stdin)(0).as_deref());
            assert!(o.status.success(), "{}", stdout(&o));
        }
        let before = image(&card);
        let k = position_of(&apdus, name);
        assert_eq!(model.control(&format!("hold 0 {k} 1500")), "ok");
        let what = format!("{} with pcscd killed in APDU {k} ({name})", flow.name);
        let (o, took) = strike_mid_command(
            || fired(&model, faults),
            &strs(&args),
            stdin.as_deref(),
            || pcscd.kill(),
        );
        let (exit, code, error) = typed_error(&o, &what);
        assert!(took < Duration::from_secs(1), "{what}: {took:?}");
        if flow.name == "info" {
            assert_eq!(
                (exit, code, error.as_str()),
                (
                    5,
                    -11,
                    "pcscd is not running: start it (e.g. `pcscd` as root, or run scripts/setup.sh)"
                ),
                "{what}"
            );
        } else {
            assert_eq!((exit, code), (7, -11), "{what}: {error}");
            assert!(error.contains("may or may not"), "{what}: {error}");
        }
        // While pcscd is away: the same typed error at once, no hang.
        let (o, down) = timed(&strs(&card_args(&["info"])), None);
        assert_eq!(typed_error(&o, "info without pcscd").0, 5);
        pcscd.restart();
        wait_until("the card back after the restart", || card_present(Z0));
        wait_until("the PSAM back after the restart", || card_present(Z1));
        // A fresh process, a fresh context: the next command works.
        let (o, next) = timed(&strs(&card_args(&["info"])), None);
        assert!(o.status.success(), "{what}: the next info: {}", stdout(&o));
        // The held command went on inside the card after pcscd died: the image is whole, in
        // the old state or the new.
        let changed = image(&card) != before;
        assert!(!(changed && flow.name == "info"), "info changed the card");
        rows.push(Row {
            fault: format!("pcscd killed (SIGKILL) during APDU {k} ({name})"),
            flow: flow.name.into(),
            outcome: format!(
                "exit {exit}, code {code}: {error}; without pcscd: exit 5 in {} ms; after restart the next info: exit 0 in {} ms; image {}",
                down.as_millis(),
                next.as_millis(),
                if changed { "changed (the card finished the command)" } else { "unchanged" }
            ),
            millis: Some(took.as_millis()),
        });
        // Back to state 0 for the next flow.
        if changed && flow.name == "write" {
            let (o, _) = timed(&strs(&(flow.args)(0)), None);
            assert!(o.status.success(), "{}", stdout(&o));
        }
        if changed && flow.name == "pin change" {
            let (o, _) = timed(&strs(&(flow.args)(0)), (flow.stdin)(0).as_deref());
            assert!(o.status.success(), "{}", stdout(&o));
        }
    }
    drop(model);
    print_matrix("pcscd killed in the middle of a command", &rows);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_station_survives_pcscd_killed_mid_card_and_issues_it_once() {
    let _g = exclusive();
    let mut pcscd = PrivatePcscd::start();
    let dir = tmpdir("station-pcscd");
    let feed = dir.join("feed");
    let batch = write_batch(&dir, 1, 'K');
    let model = ModelServer::start_on_running_pcscd(
        &[
            "--feeder",
            feed.to_str().unwrap(),
            "--blank",
            "5",
            "--readers",
            "1",
            "--port",
            "36013",
        ],
        &[Z0],
    );
    let journal = format!("sqlite:{}", dir.join("journal.db").display());
    // APDU 30 is one of the holder's records (UPDATE RECORD with MAC).
    assert_eq!(model.control("hold 0 30 1500"), "ok");
    let mut station = Station::start(&strs(&station_args(&batch, &journal, "10")));
    wait_until("the held APDU", || fired(&model, 1));
    let struck = Instant::now();
    pcscd.kill();
    let retry = station.wait_for("retry");
    let took = struck.elapsed();
    let detail = retry["detail"].as_str().unwrap_or_default().to_string();
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(
        detail,
        "UPDATE RECORD: no answer came back (pcscd is not running: start it (e.g. `pcscd` as root, or run scripts/setup.sh)); the card may or may not have carried it out: read the card to see whether it changed before doing anything again"
    );
    assert!(
        journal_states(&journal).get("issued").is_none(),
        "issued while pcscd is down"
    );
    std::thread::sleep(Duration::from_millis(500));
    pcscd.restart();
    let back = Instant::now();
    let resumed = station.wait_for("resuming");
    let resumed_after = back.elapsed();
    let (code, events) = station.end();
    assert_eq!(code, Some(0), "{events:?}");
    assert_eq!(journal_states(&journal), serde_json::json!({"issued": 1}));
    let cards = issued_cards(&feed);
    assert_eq!(cards.len(), 1, "one card for the one holder");
    assert_eq!(cards[0].1["life_cycle"], "ISSUED");
    print_matrix(
        "pcscd killed under the personalisation station",
        &[Row {
            fault: "pcscd killed (SIGKILL) during APDU 30 (UPDATE RECORD), restarted 0.5 s later".into(),
            flow: "perso run (1 holder, --idle 10)".into(),
            outcome: format!(
                "retry: {detail}; journal not issued while pcscd was down; new context, {} {} ms after the restart, issued once, exit 0",
                resumed["event"], resumed_after.as_millis()
            ),
            millis: Some(took.as_millis()),
        }],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Another application holding `reader` in a thread of its own: an exclusive connection, or a
/// transaction on a shared one, for `hold`; `ready` is set once it holds it.
fn hold_card(
    reader: &'static str,
    exclusive: bool,
    hold: Duration,
) -> (std::thread::JoinHandle<()>, std::sync::mpsc::Receiver<()>) {
    let (tx, ready) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let ctx = pcsc::Context::establish(pcsc::Scope::User).expect("a context");
        let name = std::ffi::CString::new(reader).unwrap();
        let share = if exclusive {
            pcsc::ShareMode::Exclusive
        } else {
            pcsc::ShareMode::Shared
        };
        let mut card = ctx
            .connect(&name, share, pcsc::Protocols::ANY)
            .expect("the other application connects");
        if exclusive {
            tx.send(()).unwrap();
            std::thread::sleep(hold);
        } else {
            let t = card
                .transaction()
                .expect("the other application's transaction");
            tx.send(()).unwrap();
            std::thread::sleep(hold);
            drop(t);
        }
        let _ = card.disconnect(pcsc::Disposition::LeaveCard);
    });
    (handle, ready)
}

#[test]
fn another_application_holding_the_card_is_waited_for_within_the_bound_then_a_sharing_error() {
    let _g = exclusive();
    let _pcscd = PrivatePcscd::start();
    let _model = ModelServer::start_on_running_pcscd(&["--port", "36013"], &[Z0, Z1]);
    let bound = sscard_transport::SHARING_WAIT;
    let mut rows = Vec::new();
    for exclusive in [true, false] {
        let how = if exclusive {
            "an exclusive connection (SCARD_SHARE_EXCLUSIVE)"
        } else {
            "a transaction (SCardBeginTransaction)"
        };
        // Let go within the bound: the command waits and succeeds.
        let (holder, ready) = hold_card(Z0, exclusive, Duration::from_millis(700));
        ready.recv().unwrap();
        let (o, took) = timed(&strs(&card_args(&["info"])), None);
        holder.join().unwrap();
        assert!(
            o.status.success(),
            "{how}, let go after 700 ms: {}",
            stdout(&o)
        );
        assert!(took >= Duration::from_millis(500), "it waited: {took:?}");
        rows.push(Row {
            fault: format!("another application holds the card by {how} for 0.7 s"),
            flow: "info".into(),
            outcome: format!("waited, then exit 0 (bound {} ms)", bound.as_millis()),
            millis: Some(took.as_millis()),
        });
        // Hold on past the bound: a typed sharing error after the bound, no hang.
        let (holder, ready) = hold_card(Z0, exclusive, bound + Duration::from_secs(2));
        ready.recv().unwrap();
        let (o, took) = timed(&strs(&card_args(&["info"])), None);
        let (exit, code, error) = typed_error(&o, how);
        assert_eq!(
            (exit, code, error.as_str()),
            (
                4,
                -12,
                "another application holds the card exclusively and did not let go within 2000 ms: try again when it is done"
            ),
            "{how}"
        );
        assert!(
            took >= bound && took < bound + Duration::from_secs(1),
            "{how}: gave up after {took:?}"
        );
        holder.join().unwrap();
        rows.push(Row {
            fault: format!(
                "another application holds the card by {how} for {} s",
                (bound + Duration::from_secs(2)).as_secs()
            ),
            flow: "info".into(),
            outcome: format!("exit {exit}, code {code}: {error}"),
            millis: Some(took.as_millis()),
        });
    }
    // Another application's transaction begun after ours connected: our next transaction
    // waits for it within the bound (the library, through the same pcscd).
    let ctx = sscard_transport::pcsc::establish().unwrap();
    let mut conn = sscard_transport::Connection::new(
        sscard_transport::pcsc::PcscBackend::connect_named(&ctx, Z0, false).unwrap(),
    );
    for (hold, lets_go) in [
        (Duration::from_millis(700), true),
        (bound + Duration::from_secs(2), false),
    ] {
        let (holder, ready) = hold_card(Z0, false, hold);
        ready.recv().unwrap();
        let start = Instant::now();
        let r = conn.transaction().map(drop);
        let took = start.elapsed();
        holder.join().unwrap();
        if lets_go {
            assert_eq!(r, Ok(()), "let go after {hold:?}");
            assert!(took >= Duration::from_millis(500), "it waited: {took:?}");
        } else {
            assert_eq!(r, Err(sscard_transport::TransportError::SharingViolation));
            assert!(
                took >= bound && took < bound + Duration::from_millis(500),
                "{took:?}"
            );
        }
        rows.push(Row {
            fault: format!(
                "another application begins a transaction after ours connected, holds it {} ms",
                hold.as_millis()
            ),
            flow: "Connection::transaction (library)".into(),
            outcome: match r {
                Ok(()) => "waited, then the transaction began".into(),
                Err(e) => format!("Err(SharingViolation): {e}"),
            },
            millis: Some(took.as_millis()),
        });
    }
    // After the bound ran out the card is still usable once the other application let go.
    let mut tx = conn.transaction().unwrap();
    let r = tx
        .send(&sscard_core::profile::commands::select_ssse_no_fci())
        .unwrap();
    assert!(r.is_success(), "{}", r.sw);
    drop(tx);
    print_matrix("another application holding the card", &rows);
}

#[test]
fn a_reader_gone_in_use_is_a_typed_error_without_a_hang() {
    let _g = exclusive();
    let _pcscd = PrivatePcscd::start();
    let mut model = ModelServer::start_on_running_pcscd(&["--port", "36013"], &[Z0, Z1]);
    let args = card_args(&["info"]);
    let dir = tmpdir("reader");
    let apdus = apdus_of(&strs(&args), None, &dir);
    let k = position_of(&apdus, "READ RECORD");
    assert_eq!(model.control(&format!("hold 0 {k} 3000")), "ok");
    let held = || fired(&model, 1);
    let (o, took) = {
        let child = spawn_sscard(&strs(&args), None);
        wait_until("the held APDU", held);
        let struck = Instant::now();
        model.kill();
        (finish(child, "info"), struck.elapsed())
    };
    let (exit, code, error) = typed_error(&o, "info with its reader gone");
    assert_eq!((exit, code), (4, -2), "{error}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // The reader's device is gone: the next command says so at once.
    let (o2, took2) = timed(&strs(&args), None);
    let (exit2, code2, error2) = typed_error(&o2, "info after the reader went");
    // The PSAM, the key source, is opened first.
    assert_eq!(
        (exit2, code2, error2.as_str()),
        (
            6,
            -2201,
            "no PSAM: no card in reader \"Virtual PCD Z 00 01\""
        )
    );
    print_matrix(
        "a reader gone while in use",
        &[
            Row {
                fault: format!(
                    "the reader's device gone (card server killed) during APDU {k} (READ RECORD)"
                ),
                flow: "info".into(),
                outcome: format!("exit {exit}, code {code}: {error}"),
                millis: Some(took.as_millis()),
            },
            Row {
                fault: "the reader's device gone before the command".into(),
                flow: "info".into(),
                outcome: format!("exit {exit2}, code {code2}: {error2}"),
                millis: Some(took2.as_millis()),
            },
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_lost_answer_to_a_command_that_changes_the_card_is_never_resent_and_is_an_unknown_outcome() {
    let _g = exclusive();
    let (_pcscd, dir, card, model) = personalised_card_on_a_private_pcscd("lost");
    let mut rows = Vec::new();
    for (flow, name) in
        flows()
            .into_iter()
            .zip(["READ RECORD", "UPDATE RECORD", "CHANGE/RELOAD PIN"])
    {
        let apdus = apdus_of(&strs(&(flow.args)(1)), (flow.stdin)(1).as_deref(), &dir);
        if flow.name != "info" {
            let (o, _) = timed(&strs(&(flow.args)(0)), (flow.stdin)(0).as_deref());
            assert!(o.status.success(), "{}", stdout(&o));
        }
        let before = image(&card);
        let k = position_of(&apdus, name);
        let sent = model.apdus(0);
        assert_eq!(model.control(&format!("lose 0 {k}")), "ok");
        let what = format!("{} with the answer to APDU {k} ({name}) lost", flow.name);
        let (o, took) = timed(&strs(&(flow.args)(1)), (flow.stdin)(1).as_deref());
        let (exit, code, error) = typed_error(&o, &what);
        // Nothing was sent after the lost answer: no resend.
        assert_eq!(
            model.apdus(0),
            sent + k,
            "{what}: APDUs after the lost answer"
        );
        let now = image(&card);
        // pcscd reports the dropped connection as an empty answer, or as a removed card when
        // its presence poll saw the drop first: either exact cause.
        let causes = [
            (-4, "malformed response: 0 byte(s), no status word"),
            (-2, "the card was removed"),
        ];
        if flow.name == "info" {
            assert_eq!(exit, 4, "{what}: {error}");
            assert!(
                causes.contains(&(code, error.as_str())),
                "{what}: {code} {error}"
            );
            assert_eq!(now, before);
        } else {
            assert_eq!(exit, 7, "{what}: {error}");
            assert!(
                causes.iter().any(|(c, cause)| (*c, error.clone())
                    == (code, format!("{name}: no answer came back ({cause}); the card may or may not have carried it out: read the card to see whether it changed before doing anything again"))),
                "{what}: {code} {error}"
            );
            assert_ne!(now, before, "{what}: the card carried the command out");
        }
        // The card is back at once (a contact bounce): the next command works.
        wait_until("the card back", || card_present(Z0));
        let (o, _) = timed(&strs(&card_args(&["info"])), None);
        assert!(o.status.success(), "{what}: the next info: {}", stdout(&o));
        rows.push(Row {
            fault: format!("answer to APDU {k} ({name}) lost, card carried it out"),
            flow: flow.name.into(),
            outcome: format!(
                "exit {exit}, code {code}: {error}; sent once (model saw {k} APDUs); image {}",
                if now == before {
                    "unchanged"
                } else {
                    "changed"
                }
            ),
            millis: Some(took.as_millis()),
        });
        // Back to state 0.
        if flow.name != "info" {
            let (o, _) = timed(&strs(&(flow.args)(0)), (flow.stdin)(0).as_deref());
            assert!(o.status.success(), "{}", stdout(&o));
        }
    }
    print_matrix(
        "the answer lost after the card carried the command out",
        &rows,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
