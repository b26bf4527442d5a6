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

#[test]
fn a_card_pulled_at_any_apdu_of_info_write_and_pin_change_is_never_a_success() {
    let _g = exclusive();
    let _pcscd = PrivatePcscd::start();
    let dir = tmpdir("pull");
    let card = dir.join("card.json");
    model_new(&["--kind", "personalised", "--out", card.to_str().unwrap()]);
    let model = ModelServer::start_on_running_pcscd(
        &["--card", card.to_str().unwrap(), "--port", "36013"],
        &[Z0, Z1],
    );
    // Leave the initial PIN: PIN changes then go 802417 ⇄ 802418.
    let (o, _) = timed(
        &strs(&card_args(&["pin", "change", "--pin-stdin"])),
        Some("123456\n802417\n802417\n"),
    );
    assert!(o.status.success(), "{}", stdout(&o));
    let mut rows = Vec::new();
    let mut pulls = 0;
    for flow in flows() {
        // The two states of the card image this flow moves between.
        let mut states = [image(&card), serde_json::Value::Null];
        let mut at = 0;
        let apdus = apdus_of(
            &strs(&(flow.args)(1)),
            (flow.stdin)(1).as_deref(),
            &dir,
        );
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
                    let what = format!("{} with the {role} pulled {when} its APDU {k} ({name})", flow.name);
                    let (o, took) = timed(&strs(&args), (flow.stdin)(to).as_deref());
                    let (exit, code, error) = typed_error(&o, &what);
                    assert!(
                        model.control("status").contains(&format!("slot {slot} port")),
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
                    wait_until(&format!("the card back in {reader}"), || card_present(reader));
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
                .map(|e| (e.file_name().to_string_lossy().into_owned(), image(&e.path())))
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
    let holder = sscard_perso::batch::synthetic(1, 'F')[0].1.card_number.clone();
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
            if k == eject {
                assert_eq!(states, serde_json::json!({"issued": 1}), "{what}");
            } else {
                assert!(states.get("issued").is_none(), "{what}: {states}");
            }
            assert!(!card_present(Z0), "{what}: the card is still in");
            assert_eq!(model.control("insert 0"), "ok");
            let (code, events) = station.end();
            let issued_events = events
                .iter()
                .filter(|e| e["event"] == "issued")
                .count();
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
                    "retry: {detail}; journal not issued while out{}; card back: {} , {issued_events} issued event(s), exit 0",
                    if k == eject { " (was issued: pulled at EJECT)" } else { "" },
                    if resumed { "resumed and issued" } else { "issued" }
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
