//! SIGKILL soak of the personalisation station through pcscd: the station is killed again and
//! again at random moments while it personalises a batch on four readers of the card feeder,
//! and restarted each time — one station on an SQLite journal, then two stations sharing a
//! PostgreSQL journal over TLS. At the end every holder is issued exactly once: the journal
//! says so, the feeder's output holds one issued card per holder and no card number twice, no
//! holder is failed or in review, and the audit log verifies against its anchor.
//!
//! Size by environment: `SSCARD_SOAK_KILLS` (default 40) and `SSCARD_SOAK_HOLDERS` (default
//! 120); the soak is `SSCARD_SOAK_KILLS=200 SSCARD_SOAK_HOLDERS=500`.

use sscard_e2e::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift64*): the kill moments are the same every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sscard-soak-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn station(args: &[String]) -> Child {
    Command::new(bin("sscard"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGKILL, unless the station already exited; true when it was killed.
fn kill(child: &mut Child) -> bool {
    if child.try_wait().unwrap().is_some() {
        return false;
    }
    let killed = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    killed.success()
}

/// Every image in the feeder's output is an issued card stored under its card id; returns the
/// card numbers, each asserted to be on one card only.
fn issued_cards(feed: &Path) -> BTreeSet<String> {
    let mut numbers = BTreeSet::new();
    for entry in std::fs::read_dir(feed).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue;
        }
        let image = sscard_model::Image::load(&path).unwrap();
        let ssc =
            sscard_model::ssc::Ssc::from_image(image, sscard_model::store::Store::in_memory())
                .unwrap();
        let mut t = sscard::Connection::new(sscard_transport::InProcess::new(
            sscard_model::card::shared(ssc),
            "issued card",
        ));
        let mut keys = sscard::keys::SoftKeys::test_set();
        let info = sscard::ssc::Session::open(&mut t.transaction().unwrap(), &mut keys)
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
            "card number {number} is on two cards"
        );
    }
    numbers
}

/// The end state both soaks must reach.
fn check_end(journal: &str, anchor: &Path, feed: &Path, n: usize, kills: usize, started: Instant) {
    let status = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        journal,
        "--json",
    ]));
    assert_eq!(
        status["states"],
        serde_json::json!({ "issued": n }),
        "after {kills} kills"
    );
    // The last cards were ejected by the last runs; give the feeder a moment to store them.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut numbers = issued_cards(feed);
    while numbers.len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        numbers = issued_cards(feed);
    }
    let duplicates = 0; // issued_cards asserts every card number is on one card only
    let lost = n - numbers.len();
    let verify = json(&sscard(&[
        "perso",
        "audit-verify",
        "--journal",
        journal,
        "--anchor",
        anchor.to_str().unwrap(),
        "--json",
    ]));
    eprintln!(
        "soak: {kills} kills over {n} holders: {} issued cards, {duplicates} duplicated, {lost} lost, audit {} entries verified={}, {:.0} s",
        numbers.len(),
        verify["entries"],
        verify["verified"],
        started.elapsed().as_secs_f64()
    );
    assert_eq!(lost, 0, "holders without a card");
    assert_eq!(verify["verified"], true, "{verify}");
}

#[test]
fn sigkill_soak_on_four_readers_with_an_sqlite_journal() {
    let _g = exclusive();
    let (kills, n) = (
        env_or("SSCARD_SOAK_KILLS", 40),
        env_or("SSCARD_SOAK_HOLDERS", 120),
    );
    let dir = tmpdir("sqlite");
    let feed = dir.join("feed");
    let batch = write_batch(&dir, n, 'S');
    let journal = format!("sqlite:{}", dir.join("journal.db").display());
    let anchor = dir.join("journal.db.anchor");
    let blank = (n + 16).to_string();
    let _m = ModelServer::start(
        &[
            "--feeder",
            feed.to_str().unwrap(),
            "--blank",
            &blank,
            "--readers",
            "4",
            "--latency-ms",
            "2",
        ],
        &FEEDER_READERS,
    );
    let args: Vec<String> = [
        "perso",
        "run",
        "--operator",
        "soak",
        "--batch",
        batch.to_str().unwrap(),
        "--readers",
        "0,1,2,3",
        "--journal",
        &journal,
        "--idle",
        "3",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let started = Instant::now();
    let mut rng = Rng(0x5EED_0F50_A4C1_u64);
    let mut done = 0;
    while done < kills {
        let mut child = station(&args);
        // A few cards per run at most: the kills land in every step of the flow.
        std::thread::sleep(Duration::from_millis(40 + rng.below(200)));
        if !kill(&mut child) {
            break; // the batch finished before this kill
        }
        done += 1;
    }
    let last = station(&args).wait_with_output().unwrap();
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    check_end(&journal, &anchor, &feed, n, done, started);
    assert_eq!(done, kills, "the batch finished before every kill was made");
}

#[test]
fn sigkill_soak_of_two_stations_sharing_a_postgresql_journal_over_tls() {
    let _g = exclusive();
    let (kills, n) = (
        env_or("SSCARD_SOAK_KILLS", 40),
        env_or("SSCARD_SOAK_HOLDERS", 120),
    );
    let dir = tmpdir("pg");
    let feed = dir.join("feed");
    let batch = write_batch(&dir, n, 'S');
    let pg = Postgres::start();
    let journal = pg.url("sscard_soak");
    assert!(journal.contains("sslmode=verify-full"), "{journal}");
    let anchor = dir.join("journal.anchor");
    let blank = (n + 16).to_string();
    let _m = ModelServer::start(
        &[
            "--feeder",
            feed.to_str().unwrap(),
            "--blank",
            &blank,
            "--readers",
            "4",
            "--latency-ms",
            "2",
        ],
        &FEEDER_READERS,
    );
    let args = |name: &str, readers: &str| -> Vec<String> {
        [
            "perso",
            "run",
            "--operator",
            "soak",
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
            "3",
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let stations = [args("station-1", "0,1"), args("station-2", "2,3")];
    let started = Instant::now();
    let mut rng = Rng(0x0DDB_A115_7A71_u64);
    let mut running: [Option<Child>; 2] =
        [Some(station(&stations[0])), Some(station(&stations[1]))];
    let mut done = 0;
    while done < kills {
        std::thread::sleep(Duration::from_millis(40 + rng.below(200)));
        let which = rng.below(2) as usize;
        let finished = running
            .iter_mut()
            .all(|c| c.as_mut().is_none_or(|c| c.try_wait().unwrap().is_some()));
        if finished {
            break;
        }
        if let Some(child) = running[which].as_mut() {
            if kill(child) {
                done += 1;
            }
        }
        running[which] = Some(station(&stations[which]));
    }
    for (i, c) in running.iter_mut().enumerate() {
        if let Some(mut c) = c.take() {
            let _ = c.wait();
        }
        // The last run of each station finishes what its readers hold.
        let last = station(&stations[i]).wait_with_output().unwrap();
        assert!(
            last.status.success(),
            "station-{}: {}",
            i + 1,
            String::from_utf8_lossy(&last.stderr)
        );
    }
    check_end(&journal, &anchor, &feed, n, done, started);
    assert_eq!(done, kills, "the batch finished before every kill was made");
}
