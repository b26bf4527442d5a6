//! Batch personalisation through pcscd: four readers fed with blank cards by sscard-model, an
//! SQLite journal, a kill -9 of the station in the middle and a resume: every holder issued
//! exactly once, every issued card passes read-basic-info — ours in-process, and the independent
//! terminal's through pcscd.

use sscard::keys::SoftKeys;
use sscard::ssc::Session;
use sscard::Connection;
use sscard_e2e::*;
use sscard_model::card::shared;
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_transport::InProcess;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `n` holders with card numbers `C0000001…`.
fn batch(dir: &Path, n: usize) -> PathBuf {
    write_batch(dir, n, 'C')
}

/// `perso report --json`: one issued card per line.
fn report(journal: &str) -> Vec<serde_json::Value> {
    let o = sscard(&["perso", "report", "--journal", journal, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The JSON events a `perso run --json` printed, one a line.
fn events(o: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `sscard [global…] perso run` of `batch` on reader 0 into `journal`, idle after 1 s: its
/// output and JSON events.
fn run_on_reader_0(
    global: &[&str],
    batch: &Path,
    journal: &str,
) -> (std::process::Output, Vec<serde_json::Value>) {
    let mut args = global.to_vec();
    args.extend([
        "perso",
        "run",
        "--operator",
        "tester",
        "--batch",
        batch.to_str().unwrap(),
        "--readers",
        "0",
        "--journal",
        journal,
        "--idle",
        "1",
        "--json",
    ]);
    let o = sscard(&args);
    let events = events(&o);
    (o, events)
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sscard-perso-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every stored image is an issued card that passes read basic info with the test keys, stored
/// under its own card identification code; no card number is on two cards. (The feeder's
/// reject bin, a directory, holds cards that were never issued.)
fn check_feeder_output(feed: &Path, n: usize) -> BTreeSet<String> {
    let mut numbers = BTreeSet::new();
    for entry in std::fs::read_dir(feed).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue;
        }
        let image = sscard_model::Image::load(&path).unwrap();
        let ssc = Ssc::from_image(image, Store::in_memory()).unwrap();
        let mut t = Connection::new(InProcess::new(shared(ssc), "issued card"));
        let mut keys = SoftKeys::test_set();
        let info = Session::open(&mut t.transaction().unwrap(), &mut keys)
            .unwrap()
            .read_basic_info()
            .unwrap();
        assert_eq!(
            format!("{}.json", sscard_core::hexfmt::to_hex(&info.card.card_id)),
            path.file_name().unwrap().to_string_lossy()
        );
        let number = info.card.card_number;
        assert!(
            numbers.insert(number.clone()),
            "card number {number} is on two cards (the second is {})",
            path.display()
        );
    }
    assert_eq!(numbers.len(), n, "{numbers:?}");
    numbers
}

/// Every issued card read back by the independent terminal (tests/independent/terminal.py,
/// written from PROFILE.md alone) through pcscd with a PSAM: the stored images presented one
/// after another in reader F, then the issued cards still in the feeder's four readers. Each
/// card's fields must be its holder's line of the batch.
fn independent_read_back(feed: &Path, batch: &Path, stored: usize, issued: &BTreeSet<String>) {
    let holders: std::collections::BTreeMap<String, Vec<String>> = std::fs::read_to_string(batch)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<String> = l.split(',').map(String::from).collect();
            (f[0].clone(), f)
        })
        .collect();
    let mut read = BTreeSet::new();
    let mut check = |card: &serde_json::Value| {
        let f = &card["fields"];
        let number = f["card_number"].as_str().unwrap().to_string();
        let line = &holders[&number];
        assert_eq!(f["ssn"], line[1].as_str(), "{number}");
        assert_eq!(f["full_name"], line[2].as_str(), "{number}");
        assert_eq!(f["birth_date"], line[6].as_str(), "{number}");
        assert_eq!(f["card_number_check_ok"], true);
        assert_eq!(f["ssn_check_ok"], true);
        assert!(read.insert(number.clone()), "{number} read twice");
    };
    {
        let _bench = ModelServer::start(
            &[
                "--present",
                feed.to_str().unwrap(),
                "--port",
                &PORT_F.to_string(),
            ],
            &[READER_F0, READER_F1],
        );
        let count = stored.to_string();
        let o = independent_terminal(&[
            "info", "--card", READER_F0, "--psam", READER_F1, "--count", &count,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v = json(&o);
        let cards = if stored == 1 {
            vec![v]
        } else {
            v["cards"].as_array().unwrap().clone()
        };
        assert_eq!(cards.len(), stored);
        cards.iter().for_each(&mut check);
        // The cards still in the feeder: issued ones read back, blank ones are refused.
        for reader in FEEDER_READERS {
            let o = independent_terminal(&["info", "--card", reader, "--psam", READER_F1]);
            let v = json(&o);
            if o.status.success() {
                check(&v);
            } else {
                // A blank card holds no IRK: KID 08 answers 6A88 (-27272).
                assert_eq!(v["failed_step"], "INTERNAL AUTHENTICATE", "{v}");
                assert_eq!(v["return_code"], -27272, "{v}");
            }
        }
    }
    assert_eq!(
        &read, issued,
        "the independent terminal read every issued card once"
    );
}

#[test]
fn two_hundred_holders_on_four_readers_with_a_kill_and_a_resume() {
    let _g = exclusive();
    let dir = tmpdir("kill");
    let feed = dir.join("feed");
    let n = 200;
    let batch = batch(&dir, n);
    let journal = format!("sqlite:{}", dir.join("journal.db").display());
    let _m = ModelServer::start(
        &[
            "--feeder",
            feed.to_str().unwrap(),
            "--blank",
            "240",
            "--readers",
            "4",
            "--latency-ms",
            "2",
        ],
        &FEEDER_READERS,
    );
    let args = [
        "perso",
        "run",
        "--operator",
        "tester",
        "--batch",
        batch.to_str().unwrap(),
        "--readers",
        "0,1,2,3",
        "--journal",
        &journal,
        "--idle",
        "5",
        "--json",
    ];
    let mut child = std::process::Command::new(bin("sscard"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let killed = std::process::Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = child.wait();
    let first = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        &journal,
        "--json",
    ]));
    let issued_before = first["states"]["issued"].as_i64().unwrap_or(0);
    assert!(
        issued_before < n as i64,
        "the kill came too late to test a resume: {first}"
    );
    let o = sscard(&args);
    let out = stdout(&o);
    let tail: Vec<&str> = out.lines().rev().take(8).collect();
    assert!(o.status.success(), "{}{tail:#?}", stderr(&o));
    let status = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        &journal,
        "--json",
    ]));
    assert_eq!(
        status["states"],
        serde_json::json!({ "issued": n }),
        "before the resume: {first}"
    );
    let journal_numbers: BTreeSet<String> = report(&journal)
        .iter()
        .map(|r| r["card_number"].as_str().unwrap().to_string())
        .collect();
    // Released cards are stored by the feeder; the last card of each reader is still in it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let stored = std::fs::read_dir(&feed)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    assert!(stored >= n - 4, "{stored} images for {n} holders");
    let numbers = check_feeder_output(&feed, stored);
    assert!(numbers.is_subset(&journal_numbers));
    assert_eq!(journal_numbers.len(), n);
    independent_read_back(&feed, &batch, stored, &journal_numbers);
    let audit = json(&sscard(&[
        "perso",
        "audit-verify",
        "--journal",
        &journal,
        "--json",
    ]));
    assert_eq!(audit["verified"], true);
    assert!(
        audit["entries"].as_u64().unwrap() >= n as u64 + 2,
        "two batch entries and one per card: {audit}"
    );
}

#[test]
fn a_blank_card_of_another_city_is_refused_and_no_holder_is_used() {
    let _g = exclusive();
    let dir = tmpdir("other-city");
    let batch = batch(&dir, 1);
    let journal = format!("sqlite:{}", dir.join("journal.db").display());
    let _m = ModelServer::start(
        &[
            "--feeder",
            dir.join("feed").to_str().unwrap(),
            "--blank",
            "1",
            "--region",
            "120100",
        ],
        &[READER_0],
    );
    let (o, events) = run_on_reader_0(&[], &batch, &journal);
    // The refused card was ejected to the feeder's reject bin; the empty slot after it (the
    // feeder had one card) answers like no card this station can identify.
    let refused: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "refused" && !e["card_id"].is_null())
        .collect();
    assert_eq!(refused.len(), 1, "{events:?}");
    assert_eq!(
        refused[0]["detail"],
        "a blank card of region 120100, the key source serves 110100"
    );
    assert!(events.iter().all(|e| e["event"] != "claimed"), "{events:?}");
    // The holder is still pending: the run says so with its exit status.
    assert!(!o.status.success(), "{events:?}");
    assert_eq!(
        events.last().unwrap()["states"],
        serde_json::json!({ "pending": 1 })
    );
    let status = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        &journal,
        "--json",
    ]));
    assert_eq!(status["states"], serde_json::json!({ "pending": 1 }));
}

/// A card that keeps the station talking past the flow's transmit budget misbehaves: it is not
/// a card that left. The station fails its holder (the card was written to) and refuses the card
/// once, instead of retrying it on every poll for ever. (A budget of 20 APDUs stands in for a
/// hostile card: the personalisation of one card takes 60.)
#[test]
fn a_card_past_the_transmit_budget_is_refused_once() {
    let _g = exclusive();
    let dir = tmpdir("budget");
    let batch = batch(&dir, 1);
    let journal = format!("sqlite:{}", dir.join("journal.db").display());
    let _m = ModelServer::start(
        &[
            "--feeder",
            dir.join("feed").to_str().unwrap(),
            "--blank",
            "1",
        ],
        &[READER_0],
    );
    let (o, events) = run_on_reader_0(&["--max-apdus", "20"], &batch, &journal);
    assert!(events.iter().all(|e| e["event"] != "retry"), "{events:?}");
    let failed: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    let detail = failed[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("not sent, the flow already exchanged 20 APDUs"),
        "{detail}"
    );
    assert!(!o.status.success(), "{events:?}");
    assert_eq!(
        events.last().unwrap()["states"],
        serde_json::json!({ "failed": 1 })
    );
}

#[test]
fn an_invalid_batch_personalises_nothing() {
    let dir = tmpdir("invalid");
    let path = dir.join("bad.csv");
    std::fs::write(
        &path,
        {
            let h = &sscard_perso::batch::synthetic(1, 'C')[0].1;
            format!("{BATCH_HEADER}\n{},{},{},{},01,110105,{},20240101,20340101,01,01,1101000000000001\nC0000001X,110105198501010012,李四,3,01,110105,19850230,20240101,20340101,01,01,1101000000000002\n", h.card_number, h.ssn, h.name, h.gender, h.birth_date)
        },
    )
    .unwrap();
    let journal = format!("sqlite:{}", dir.join("journal.db").display());
    let o = sscard(&[
        "perso",
        "run",
        "--operator",
        "tester",
        "--batch",
        path.to_str().unwrap(),
        "--readers",
        "0",
        "--journal",
        &journal,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("sscard: error: 1 invalid line(s), nothing personalised"),
        "{err}"
    );
    assert!(err.contains("bad.csv: line 3: card_number:"), "{err}");
    assert!(
        !dir.join("journal.db").exists(),
        "the journal is not even opened"
    );
}

#[test]
fn two_stations_share_a_postgresql_journal_with_a_kill_and_a_resume() {
    let _g = exclusive();
    let dir = tmpdir("pg");
    let feed = dir.join("feed");
    let n = 60;
    let batch = batch(&dir, n);
    let pg = Postgres::start();
    let journal = pg.url("sscard_perso_test");
    let anchor = dir.join("journal.anchor");
    let _m = ModelServer::start(
        &[
            "--feeder",
            feed.to_str().unwrap(),
            "--blank",
            "80",
            "--readers",
            "4",
            "--latency-ms",
            "2",
        ],
        &FEEDER_READERS,
    );
    let station = |name: &str, readers: &str| {
        let args: Vec<String> = [
            "perso",
            "run",
            "--operator",
            "tester",
            "--batch",
            batch.to_str().unwrap(),
            "--readers",
            readers,
            "--journal",
            &journal,
            "--station",
            name,
            "--anchor",
            anchor.to_str().unwrap(),
            "--idle",
            "5",
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        std::process::Command::new(bin("sscard"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut one = station("station-1", "0,1");
    let two = station("station-2", "2,3");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    std::process::Command::new("kill")
        .args(["-9", &one.id().to_string()])
        .status()
        .unwrap();
    let _ = one.wait();
    let at_kill = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        &journal,
        "--json",
    ]));
    assert!(
        at_kill["states"]["issued"].as_i64().unwrap_or(0) < n as i64,
        "the kill came too late to test a resume: {at_kill}"
    );
    let resumed = station("station-1", "0,1").wait_with_output().unwrap();
    let last_line = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .to_string()
    };
    assert!(resumed.status.success(), "{}", last_line(&resumed));
    let other = two.wait_with_output().unwrap();
    assert!(other.status.success(), "{}", last_line(&other));
    let status = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        &journal,
        "--json",
    ]));
    assert_eq!(status["states"], serde_json::json!({ "issued": n }));
    let ids: BTreeSet<String> = report(&journal)
        .iter()
        .map(|r| r["card_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), n, "every holder on its own card");
    assert_eq!(
        json(&sscard(&[
            "perso",
            "audit-verify",
            "--journal",
            &journal,
            "--anchor",
            anchor.to_str().unwrap(),
            "--json"
        ]))["verified"],
        true
    );
}

#[test]
fn preflight_refuses_a_key_source_that_lacks_a_key_or_serves_another_region() {
    let dir = tmpdir("preflight");
    let batch = batch(&dir, 2);
    let journal = format!("sqlite:{}", dir.join("journal.db").display());
    // A key file without EAK_L: refused before the journal is opened or a card is touched.
    let keyfile = dir.join("keys.txt");
    std::fs::write(
        &keyfile,
        "IRK = 11111111111111112222222222222222\nRKSSSE = 33333333333333334444444444444444\nUK_N = 55555555555555556666666666666666\nUK_L = 1112131415161718191A1B1C1D1E1F20\nRPK = 2122232425262728292A2B2C2D2E2F30\nUPK = 3132333435363738393A3B3C3D3E3F40\nTK = 404142434445464748494A4B4C4D4E4F\nAUDIT = 0000000000000000000000000000000000000000000000000000000000000001\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keyfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let keys = format!("soft:{}", keyfile.display());
    let run = |extra: &[&str]| {
        let mut args = vec![
            "perso",
            "run",
            "--operator",
            "tester",
            "--batch",
            batch.to_str().unwrap(),
            "--readers",
            "0",
            "--journal",
            &journal,
        ];
        args.extend_from_slice(extra);
        sscard(&args)
    };
    let o = run(&["--keys", &keys]);
    assert_eq!(
        stderr(&o).lines().last().unwrap_or(""),
        "sscard: error: key source has no key 11 (EAK_L)",
        "{}",
        stderr(&o)
    );
    assert!(!o.status.success());
    assert!(!dir.join("journal.db").exists(), "no journal, no claim");
    // The test key set serves city 110100.
    let o = run(&["--region", "120100"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).lines().last().unwrap_or(""),
        "sscard: error: --region 120100: the key source (software keys (PROFILE test key set — never for production)) serves region 110100"
    );
    assert!(!dir.join("journal.db").exists());
}

/// A card pulled in the middle of its personalisation and put back: the worker does not stop,
/// the same card resumes where the journal has it, and every holder is issued once.
#[test]
fn a_card_pulled_mid_personalisation_and_put_back_resumes() {
    let _g = exclusive();
    let dir = tmpdir("pulled");
    let feed = dir.join("feed");
    let n = 3;
    let batch = batch(&dir, n);
    let journal = format!("sqlite:{}", dir.join("journal.db").display());
    let m = ModelServer::start(
        &[
            "--feeder",
            feed.to_str().unwrap(),
            "--blank",
            "4",
            "--latency-ms",
            "15",
        ],
        &[READER_0],
    );
    let child = std::process::Command::new(bin("sscard"))
        .args([
            "perso",
            "run",
            "--operator",
            "tester",
            "--batch",
            batch.to_str().unwrap(),
            "--readers",
            "0",
            "--journal",
            &journal,
            "--idle",
            "5",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // 60 APDUs at 15 ms: the first card is half-way after about half a second.
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(m.control("remove 0"), "ok");
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(m.control("insert 0"), "ok");
    let o = child.wait_with_output().unwrap();
    let events = events(&o);
    assert!(o.status.success(), "{}{events:#?}", stderr(&o));
    let count = |e: &str| events.iter().filter(|v| v["event"] == e).count();
    assert!(count("retry") >= 1, "the pull was noticed: {events:#?}");
    assert_eq!(count("resuming"), 1, "{events:#?}");
    assert_eq!(count("claimed"), n, "{events:#?}");
    assert_eq!(count("issued"), n, "{events:#?}");
    let status = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        &journal,
        "--json",
    ]));
    assert_eq!(status["states"], serde_json::json!({ "issued": n }));
}

/// The operator's tools on a journal with a failed holder and an issued one: `list` streams the
/// rows of a state, `spoil` takes a card out of circulation (recorded, never claimed again),
/// `requeue` puts a holder back, each recorded in the audit log, which still verifies against
/// its anchor with no other argument than the journal.
#[test]
fn operator_lists_spoils_and_requeues() {
    use sscard_perso::journal::Journal;
    use sscard_perso::state::Stage;
    let dir = tmpdir("operator");
    let path = dir.join("journal.db");
    let journal = format!("sqlite:{}", path.display());
    let holders = sscard_perso::batch::synthetic(2, 'Q');
    {
        Journal::init(&journal, None).unwrap();
        let mut j = Journal::open_audited(
            &journal,
            Box::new(sscard::keys::SoftKeys::test_set()),
            "station-1",
            "tester",
        )
        .unwrap();
        j.add("b", &holders).unwrap();
        let failed = j.claim("r0", "CARDF").unwrap().unwrap();
        j.reached(failed.id, Stage::Blank, Stage::Authenticated, "t")
            .unwrap();
        j.fail(failed.id, "r0", "read-back differs").unwrap();
        let issued = j.claim("r0", "CARDI").unwrap().unwrap();
        let mut at = Stage::Blank;
        while let Some(next) = at.next() {
            j.reached(issued.id, at, next, "t").unwrap();
            at = next;
        }
        j.anchor(&dir.join("journal.db.anchor")).unwrap();
    }
    let list = sscard(&[
        "perso",
        "list",
        "--journal",
        &journal,
        "--state",
        "failed",
        "--json",
    ]);
    assert!(list.status.success(), "{}", stderr(&list));
    let rows: Vec<serde_json::Value> = stdout(&list)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["card_number"], holders[0].1.card_number.as_str());
    assert_eq!(rows[0]["card_id"], "CARDF");
    assert_eq!(rows[0]["reason"], "read-back differs");
    let op = ["--journal", &journal, "--operator", "alice"];
    // An issued holder is not requeued while its card is in circulation.
    let issued_number = holders[1].1.card_number.as_str();
    let o = sscard(
        &[
            &["perso", "requeue", issued_number, "--reason", "lost"][..],
            &op[..],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).lines().last().unwrap(),
        format!("sscard: error: holder {issued_number} is issued: only failed holders, and reviewed or issued holders whose card was spoiled, can be requeued")
    );
    let o = sscard(
        &[
            &[
                "perso",
                "spoil",
                "CARDI",
                "--reason",
                "lost in the post",
                "--json",
            ][..],
            &op[..],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["holder_row"], 2);
    for holder in [holders[0].1.card_number.as_str(), issued_number] {
        let o = sscard(
            &[
                &["perso", "requeue", holder, "--reason", "new card"][..],
                &op[..],
            ]
            .concat(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let status = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        &journal,
        "--json",
    ]));
    assert_eq!(status["states"], serde_json::json!({ "pending": 2 }));
    let verify = json(&sscard(&[
        "perso",
        "audit-verify",
        "--journal",
        &journal,
        "--json",
    ]));
    assert_eq!(verify["verified"], true, "{verify}");
    assert_eq!(verify["entries"], 15);
}
