//! The power-cut campaign: a station PC loses power again and again while personalising one
//! batch, and every holder still gets exactly one card.
//!
//! A power cut is simulated per process by `tests/powercut/syncshadow.c`, an LD_PRELOAD shim
//! loaded into `sscard perso run`: it keeps a shadow of the journal directory holding exactly
//! what was fsynced, and at the k-th sync it kills the station (SIGKILL) before that sync. The
//! campaign then replaces the journal directory with the shadow — every write not yet synced
//! is gone — and starts the station again, cut at another k, until a run finishes the batch
//! before its cut point. The card feeder (`sscard-model serve --feeder`, its own process) is
//! not cut: its cards keep their memory, and a card in a reader stays there until the station
//! ejects it.
//!
//! The outcome is counted on the cards, not on the journal: every issued card the feeder
//! stored (named by card identification code, so a second card of one holder is a second
//! file) plus the cards still in the readers (ejected at the end): no card number twice, no
//! holder without a card, and the journal says every holder issued, on that very card.
//!
//! Every run is cut, at a sync drawn from 1..=`SSCARD_POWERCUT_MAX_CUT` (16) by a generator
//! seeded with `SSCARD_POWERCUT_SEED` (14), until a run finishes the batch by itself; after
//! `SSCARD_POWERCUT_MAX_RUNS` (5000) runs one last run goes uncut. The campaign must have cut at
//! least `SSCARD_POWERCUT_MIN_CUTS` (300) times: `SSCARD_POWERCUT_HOLDERS` (150) holders on
//! `SSCARD_POWERCUT_READERS` (2, at most 4) readers. The figures go to stderr. Without `cc` or
//! pcscd the tests fail, they never skip.

use sscard_e2e::*;
use sscard_model::feeder;
use sscard_transport::backend::Ejection;
use sscard_transport::pcsc::{establish, PcscBackend};
use sscard_transport::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Longest a station run may take before the campaign calls it hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sscard-powercut-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.canonicalize().unwrap()
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Builds the shim with the system's C compiler. Panics (never skips) without one.
fn build_shim(dir: &Path) -> PathBuf {
    let source = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/powercut/syncshadow.c"
    ));
    let out = dir.join("syncshadow.so");
    let o = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(&source)
        .arg("-ldl")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the power-cut harness needs a C compiler (cc) to build {} (SSCARD_REQUIRE_PCSCD={}): {e}; \
                 install gcc (scripts/setup.sh)",
                source.display(),
                std::env::var("SSCARD_REQUIRE_PCSCD").unwrap_or_default()
            )
        });
    assert!(
        o.status.success(),
        "cc {}: {}",
        source.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// A journal directory and the shadow of its synced state.
struct Disk {
    live: PathBuf,
    shadow: PathBuf,
}

impl Disk {
    fn new(dir: &Path) -> Self {
        let disk = Self {
            live: dir.join("journal"),
            shadow: dir.join("shadow"),
        };
        std::fs::create_dir_all(&disk.live).unwrap();
        std::fs::create_dir_all(&disk.shadow).unwrap();
        disk
    }

    /// The environment that puts a process's syncs of the journal under the shim.
    fn env(&self, shim: &Path, log: &Path) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("LD_PRELOAD", shim.to_path_buf()),
            ("SYNCSHADOW_DIR", self.live.clone()),
            ("SYNCSHADOW_SHADOW", self.shadow.clone()),
            ("SYNCSHADOW_LOG", log.to_path_buf()),
        ]
    }

    /// After a cut: the journal directory is what was synced, nothing more.
    fn power_cut(&self) {
        std::fs::remove_dir_all(&self.live).unwrap();
        copy_tree(&self.shadow, &self.live);
    }
}

/// Copies the regular files of `from` into `to`, leaving out the shim's temporary files.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(".syncshadow-") {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// xorshift64*: the cut points, the same for the same seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// A number in 1..=max.
    fn cut(&mut self, max: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        1 + self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % max
    }
}

/// How one station run ended.
enum Ended {
    /// Killed by the shim at its cut point, after claiming (or resuming) and issuing this many
    /// cards.
    Cut { claimed: usize, issued: usize },
    /// Ended by itself: its exit status and the last line it printed (the run's summary).
    Exited(ExitStatus, String),
}

/// Runs `sscard ARGS` under the shim, cut at the `cut`-th sync (never with `None`); its
/// output is appended to `log`.
fn station(args: &[String], env: &[(&str, PathBuf)], cut: Option<u64>, log: &Path) -> Ended {
    let stdout_path = log.with_extension("last");
    let mut cmd = Command::new(bin("sscard"));
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(Stdio::piped());
    if let Some(k) = cut {
        cmd.env("SYNCSHADOW_CUT_AT", k.to_string());
    }
    let mut child = cmd.spawn().expect("spawn sscard perso run");
    let mut stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "a station run (cut at {cut:?}) did not end within {RUN_TIMEOUT:?}; its output: {}",
                stdout_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let printed = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let errors = errors.join().unwrap_or_default();
    {
        use std::io::Write;
        let mut all = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let _ = writeln!(all, "--- run cut at {cut:?}: {status:?}\n{errors}{printed}");
    }
    match status.signal() {
        Some(9) if cut.is_some() => {
            let count = |events: &[&str]| {
                printed
                    .lines()
                    .filter(|l| {
                        events
                            .iter()
                            .any(|e| l.contains(&format!("\"event\":\"{e}\"")))
                    })
                    .count()
            };
            Ended::Cut {
                claimed: count(&["claimed", "resumed_issued", "review"]),
                issued: count(&["issued", "resumed_issued"]),
            }
        }
        Some(6) => panic!(
            "the shim could not keep its shadow (SIGABRT): {errors}; see {}",
            log.display()
        ),
        _ => Ended::Exited(
            status,
            printed.lines().last().unwrap_or_default().to_string(),
        ),
    }
}

/// Ejects whatever card is in each reader, so that the feeder stores it (issued cards) or
/// puts it into its reject bin (any other).
fn eject_all(readers: &[&str]) {
    let ctx = establish().unwrap();
    for r in readers {
        let conn = Connection::new(PcscBackend::connect_named(&ctx, r, false).unwrap());
        match conn.eject().unwrap() {
            Ejection::Ejected => {}
            // An empty feeder slot.
            Ejection::Refused { sw } => assert_eq!(sw.0, 0x6400, "{r}"),
        }
    }
}

/// The physical cards the feeder stored: card number → the card ids bearing it; and the
/// number of cards in its reject bin.
fn cards_out(feed: &Path) -> (BTreeMap<String, Vec<String>>, usize) {
    let mut cards: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(feed).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let image = sscard_model::Image::load(&path).unwrap();
        let id = feeder::card_id(&image).expect("an SSC image");
        assert_eq!(
            path.file_name().unwrap().to_string_lossy(),
            format!("{id}.json"),
            "the feeder names a card by its id"
        );
        let number = feeder::card_number(&image).unwrap_or_else(|| {
            panic!(
                "{} is stored as issued but has no card number",
                path.display()
            )
        });
        cards.entry(number).or_default().push(id);
    }
    let rejected = std::fs::read_dir(feed.join(feeder::REJECTED))
        .map(|d| d.count())
        .unwrap_or(0);
    (cards, rejected)
}

#[test]
fn the_shim_keeps_exactly_what_was_synced_and_cuts_before_the_nth_sync() {
    let dir = tmpdir("shim");
    let shim = build_shim(&dir);
    let disk = Disk::new(&dir);
    let log = dir.join("syncs.log");
    // 1: a synced, then appended to without a sync; "never" never synced; 2: tmp synced and
    // renamed to b; 3: c synced, then unlinked; 4: the directory; 5: e, the cut.
    let script = r#"
import os, sys
d = sys.argv[1]
def put(name, data, sync):
    fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data)
    if sync:
        os.fsync(fd)
    os.close(fd)
put("a", b"synced", True)
fd = os.open(os.path.join(d, "a"), os.O_WRONLY | os.O_APPEND)
os.write(fd, b" and lost")
os.close(fd)
put("never", b"lost", False)
put("tmp", b"renamed", True)
os.rename(os.path.join(d, "tmp"), os.path.join(d, "b"))
put("c", b"unlinked", True)
os.unlink(os.path.join(d, "c"))
fd = os.open(d, os.O_RDONLY)
os.fsync(fd)
os.close(fd)
put("e", b"cut", False)
fd = os.open(os.path.join(d, "e"), os.O_WRONLY)
os.fdatasync(fd)
print("not cut")
"#;
    let o = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&disk.live)
        .envs(disk.env(&shim, &log))
        .env("SYNCSHADOW_CUT_AT", "5")
        .output()
        .expect("/usr/bin/python3 runs");
    assert_eq!(
        o.status.signal(),
        Some(9),
        "{o:?} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    disk.power_cut();
    let mut left: Vec<(String, String)> = std::fs::read_dir(&disk.live)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec![
            ("a".to_string(), "synced".to_string()),
            ("b".to_string(), "renamed".to_string())
        ]
    );
    let live = disk.live.display();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("1 {live}/a\n2 {live}/tmp\n3 {live}/c\n4 {live}\n5 {live}/e\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn power_cuts_across_a_batch_issue_every_holder_exactly_once() {
    let _g = exclusive();
    let holders = env_number("SSCARD_POWERCUT_HOLDERS", 150) as usize;
    let readers = env_number("SSCARD_POWERCUT_READERS", 2) as usize;
    let min_cuts = env_number("SSCARD_POWERCUT_MIN_CUTS", 300);
    let max_cut = env_number("SSCARD_POWERCUT_MAX_CUT", 16);
    let max_runs = env_number("SSCARD_POWERCUT_MAX_RUNS", 5000);
    let seed = env_number("SSCARD_POWERCUT_SEED", 14);
    assert!(
        (1..=FEEDER_READERS.len()).contains(&readers),
        "SSCARD_POWERCUT_READERS is 1 to {}",
        FEEDER_READERS.len()
    );
    assert!(max_cut >= 1, "SSCARD_POWERCUT_MAX_CUT is 1 or more");
    let start = Instant::now();
    let dir = tmpdir("campaign");
    let shim = build_shim(&dir);
    let disk = Disk::new(&dir);
    let feed = dir.join("feed");
    let batch = write_batch(&dir, holders, 'P');
    let readers = &FEEDER_READERS[..readers];
    // A cut may spoil the card in a reader (into the reject bin): blank cards for every holder
    // and for every run.
    let _model = ModelServer::start(
        &[
            "--feeder",
            feed.to_str().unwrap(),
            "--blank",
            &(holders + max_runs as usize * readers.len()).to_string(),
            "--readers",
            &readers.len().to_string(),
        ],
        readers,
    );
    let journal = format!("sqlite:{}", disk.live.join("journal.db").display());
    let indexes: Vec<String> = (0..readers.len()).map(|i| i.to_string()).collect();
    let args: Vec<String> = [
        "perso",
        "run",
        "--operator",
        "powercut",
        "--batch",
        batch.to_str().unwrap(),
        "--readers",
        &indexes.join(","),
        "--journal",
        &journal,
        "--idle",
        "1",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let syncs = dir.join("syncs.log");
    let runs_log = dir.join("runs.log");
    let env = disk.env(&shim, &syncs);
    let mut rng = Rng::new(seed);
    let (mut runs, mut cuts, mut stalls) = (0u64, 0u64, 0u64);
    // Cuts that came after the run had claimed a card, and after it had issued one.
    let (mut in_cards, mut after_issue) = (0u64, 0u64);
    let mut points = BTreeSet::new();
    let done = format!("\"states\":{{\"issued\":{holders}}}");
    let last = loop {
        let cut = (runs < max_runs).then(|| rng.cut(max_cut));
        runs += 1;
        match station(&args, &env, cut, &runs_log) {
            Ended::Cut { claimed, issued } => {
                cuts += 1;
                in_cards += u64::from(claimed > 0);
                after_issue += u64::from(issued > 0);
                points.extend(cut);
                disk.power_cut();
            }
            Ended::Exited(status, summary) => {
                let finished = summary.replace(' ', "").contains(&done);
                // A station that stopped by itself with holders left (stuck on a card it
                // cannot place) is given a few more runs, not unlimited ones.
                stalls += u64::from(!finished);
                if finished || cut.is_none() || stalls > 20 {
                    break (status, summary, finished);
                }
            }
        }
    };
    let (status, summary, finished) = last;
    // The feeder stores an ejected card before it answers EJECT ICC.
    eject_all(readers);
    let (cards, rejected) = cards_out(&feed);
    let batch_numbers: BTreeSet<String> = sscard_perso::batch::synthetic(holders, 'P')
        .into_iter()
        .map(|(_, h)| h.card_number)
        .collect();
    let duplicates: Vec<(&String, &Vec<String>)> =
        cards.iter().filter(|(_, ids)| ids.len() > 1).collect();
    let lost: Vec<&String> = batch_numbers
        .iter()
        .filter(|n| !cards.contains_key(*n))
        .collect();
    let strangers: Vec<&String> = cards
        .keys()
        .filter(|n| !batch_numbers.contains(*n))
        .collect();
    let status_json = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        &journal,
        "--json",
    ]));
    let report = sscard(&["perso", "report", "--journal", &journal, "--json"]);
    let report: Vec<serde_json::Value> = stdout(&report)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The journal's card of each issued holder is the physical card bearing its number.
    let mismatched: Vec<String> = report
        .iter()
        .filter_map(|r| {
            let number = r["card_number"].as_str().unwrap();
            let id = r["card_id"].as_str().unwrap();
            match cards.get(number) {
                Some(ids) if ids.iter().any(|i| i == id) => None,
                other => Some(format!("{number} on {id} (cards: {other:?})")),
            }
        })
        .collect();
    let audit = json(&sscard(&[
        "perso",
        "audit-verify",
        "--journal",
        &journal,
        "--json",
    ]));
    let counted = std::fs::read_to_string(&syncs)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    eprintln!(
        "power-cut campaign: {holders} holders on {} readers, seed {seed}, cut points drawn from sync #1..={max_cut}: \
         {runs} station runs, {cuts} cuts ({} distinct cut points; {in_cards} after the run had claimed a card, {after_issue} after it had issued one), \
         {stalls} runs that stopped by themselves with holders left, \
         {counted} syncs of the journal; cards: {} issued, {} card numbers twice (duplicates), {} holders without a card (lost), \
         {rejected} to the reject bin; journal {}, {} issued rows naming another card, audit {}; {:.1} s",
        readers.len(),
        points.len(),
        cards.values().map(Vec::len).sum::<usize>(),
        duplicates.len(),
        lost.len(),
        status_json["states"],
        mismatched.len(),
        audit,
        start.elapsed().as_secs_f64()
    );
    assert!(
        duplicates.is_empty(),
        "card numbers on two cards or more: {duplicates:?}"
    );
    assert!(lost.is_empty(), "holders without a card: {lost:?}");
    assert!(strangers.is_empty(), "cards of no holder: {strangers:?}");
    assert!(
        finished && status.success(),
        "the last run: {status:?} {summary}; see {}",
        runs_log.display()
    );
    assert_eq!(
        status_json["states"],
        serde_json::json!({ "issued": holders }),
        "the journal"
    );
    assert!(
        mismatched.is_empty(),
        "journal rows naming another card: {mismatched:?}"
    );
    assert_eq!(audit["verified"], true, "{audit}");
    assert!(
        cuts >= min_cuts,
        "the batch was done after {cuts} cuts, fewer than {min_cuts}: give more holders (SSCARD_POWERCUT_HOLDERS)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
