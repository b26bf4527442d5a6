//! The benchmark of issue 17's "must show": throughput and p50/p99 latency of cryptogram
//! requests through `sscard keyd serve` on loopback (mutual TLS) against the same key source
//! used in-process, with 1, 4 and 16 concurrent clients, side by side in one run.
//!
//! Sources: the software test keys (`test`), and a SoftHSM2 token holding the test key set
//! (`softhsm`; keyd serves a byte-identical copy of the token directory so that the two
//! processes never share SoftHSM's files). For each source one keyd runs for the whole
//! benchmark, started by this program with certificates it makes (`sscard_e2e::keyd`).
//!
//! A run: `CLIENTS` threads, each with its own key source (`sscard::keys::open` of the spec:
//! the local spec in-process, `remote:https://127.0.0.1:PORT` through keyd), opened before the
//! clock starts; every thread makes `--requests / CLIENTS` cryptogram requests (IRK, 3DES, a
//! different random each) and times each one. Throughput = requests / wall time of the run;
//! p50/p99 over every request of the run. Rounds rotate the sides' order; the table gives the
//! medians over rounds and the median of the per-round ratios keyd/in-process. The first
//! answers of both sides are compared: keyd must give the local bytes.
//!
//! With `--perso N`, also personalisation cards per minute: `sscard perso run` of N holders on
//! two feeder readers (`sscard-model serve --feeder`, through pcscd) with the SoftHSM token
//! locally against the same token through keyd, rounds alternating; this part needs pcscd and
//! must run under `flock -o /tmp/sscard-pcscd.lock` (the script takes the lock only then).
//!
//! Run by `scripts/bench-keyd.sh`.

use sscard::keys::{CardRef, KeySource, KeySpec};
use sscard_core::crypto::Algorithm;
use sscard_core::profile::Kid;
use sscard_e2e::keyd::{softhsm_copy, Keyd, KeydConfig, Pki, TempDir};
use sscard_transport::trace::Trace;
use std::error::Error;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const USAGE: &str =
    "usage: bench-keyd [--requests N] [--rounds N] [--clients LIST] [--sources LIST]
  --requests N   cryptogram requests per run, shared by its clients (default 3200)
  --rounds N     rounds, at least 3 (default 5)
  --clients LIST concurrent clients (default 1,4,16)
  --sources LIST test and/or softhsm (default test,softhsm)
  --perso N      also personalise N holders per side and round on two readers (pcscd, lock)";

struct Args {
    requests: usize,
    rounds: usize,
    clients: Vec<usize>,
    sources: Vec<String>,
    perso: Option<usize>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        requests: 3200,
        rounds: 5,
        clients: vec![1, 4, 16],
        sources: vec!["test".into(), "softhsm".into()],
        perso: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--requests" => a.requests = value()?.parse()?,
            "--rounds" => a.rounds = value()?.parse()?,
            "--clients" => {
                a.clients = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<std::result::Result<_, _>>()?
            }
            "--sources" => a.sources = value()?.split(',').map(String::from).collect(),
            "--perso" => a.perso = Some(value()?.parse()?),
            _ => return Err(USAGE.into()),
        }
    }
    if a.rounds < 3 || a.clients.iter().any(|&c| c == 0 || c > a.requests) {
        return Err(USAGE.into());
    }
    if let Some(s) = a
        .sources
        .iter()
        .find(|s| !["test", "softhsm"].contains(&s.as_str()))
    {
        return Err(format!("unknown source {s:?}\n{USAGE}").into());
    }
    Ok(a)
}

fn card() -> CardRef {
    CardRef::new(
        sscard_core::hexfmt::parse_hex("110100D15600000599110145000000A1")
            .expect("hex")
            .try_into()
            .expect("16 bytes"),
    )
}

/// One run's figures.
struct Run {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn open(spec: &KeySpec) -> Result<Box<dyn KeySource>> {
    let pin = spec.needs_token_pin().then_some(sscard_e2e::HSM_PIN);
    Ok(sscard::keys::open(spec, &Trace::off(), pin)?)
}

/// `requests` cryptogram requests by `clients` threads with their own sources of `spec`.
fn run(spec: &KeySpec, clients: usize, requests: usize) -> Result<Run> {
    let per_client = requests / clients;
    let barrier = Arc::new(Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let spec = spec.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(
                move || -> std::result::Result<(Instant, Instant, Vec<Duration>), String> {
                    let source = open(&spec).map_err(|e| e.to_string());
                    barrier.wait();
                    let begun = Instant::now();
                    let mut source = source?;
                    let card = card();
                    let mut times = Vec::with_capacity(per_client);
                    for i in 0..per_client {
                        let mut random = [0u8; 8];
                        random[..4].copy_from_slice(&(c as u32).to_be_bytes());
                        random[4..].copy_from_slice(&(i as u32).to_be_bytes());
                        let t = Instant::now();
                        source
                            .cryptogram(Algorithm::Tdes, &card, Kid::Irk, &random)
                            .map_err(|e| e.to_string())?;
                        times.push(t.elapsed());
                    }
                    Ok((begun, Instant::now(), times))
                },
            )
        })
        .collect();
    barrier.wait();
    // The run lasts from the first client's start to the last one's end, as the clients saw
    // them (this thread may be scheduled after the clients have done much of their work).
    let mut times = Vec::with_capacity(requests);
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for h in handles {
        let (begun, ended, t) = h.join().map_err(|_| "a client panicked")??;
        first = Some(first.map_or(begun, |f| f.min(begun)));
        last = Some(last.map_or(ended, |l| l.max(ended)));
        times.extend(t);
    }
    let wall = match (first, last) {
        (Some(f), Some(l)) => l - f,
        _ => return Err("no client".into()),
    };
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    Ok(Run {
        per_second: times.len() as f64 / wall.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: f64) -> String {
    format!("{:.3}", d * 1e3)
}

/// The first answers of both sides agree.
fn check_equal(local: &KeySpec, remote: &KeySpec) -> Result<()> {
    let (mut l, mut r) = (open(local)?, open(remote)?);
    for kid in Kid::CARD_KEYS {
        for random in [[0u8; 8], [1, 2, 3, 4, 5, 6, 7, 8]] {
            let a = l.cryptogram(Algorithm::Tdes, &card(), kid, &random)?;
            let b = r.cryptogram(Algorithm::Tdes, &card(), kid, &random)?;
            if a != b {
                return Err(format!("keyd and in-process differ for {kid:?}").into());
            }
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let pki = Pki::new(&["bench"]);
    for (k, v) in pki.client_env(pki.client("bench")) {
        std::env::set_var(k, v);
    }
    let work = TempDir::new("bench");
    println!(
        "bench-keyd: {} cryptogram requests a run, {} rounds, clients {:?}",
        args.requests, args.rounds, args.clients
    );
    println!(
        "{:<8} {:>7}  {:>12} {:>9} {:>9}  {:>12} {:>9} {:>9}  {:>11}",
        "source",
        "clients",
        "local req/s",
        "p50 ms",
        "p99 ms",
        "keyd req/s",
        "p50 ms",
        "p99 ms",
        "keyd/local"
    );
    for source in &args.sources {
        let (local, keyd_config) = if source == "test" {
            ("test".to_string(), KeydConfig::keys("test"))
        } else {
            let spec = sscard_e2e::softhsm_token();
            let mut c = KeydConfig::keys(&spec);
            c.env.push((
                "SOFTHSM2_CONF".into(),
                softhsm_copy(work.path())
                    .to_str()
                    .ok_or("UTF-8 path")?
                    .into(),
            ));
            (spec, c)
        };
        let keyd = Keyd::start(&pki, keyd_config);
        let local: KeySpec = local.parse()?;
        let remote: KeySpec = keyd.url().parse()?;
        check_equal(&local, &remote)?;
        for &clients in &args.clients {
            // [side][round]
            let mut figures: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
            for round in 0..args.rounds {
                let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for side in order {
                    let spec = if side == 0 { &local } else { &remote };
                    figures[side].push(run(spec, clients, args.requests)?);
                }
            }
            let med =
                |side: usize, f: fn(&Run) -> f64| median(figures[side].iter().map(f).collect());
            let ratio = median(
                figures[0]
                    .iter()
                    .zip(&figures[1])
                    .map(|(l, r)| r.per_second / l.per_second)
                    .collect(),
            );
            println!(
                "{:<8} {:>7}  {:>12.0} {:>9} {:>9}  {:>12.0} {:>9} {:>9}  {:>11.3}",
                source,
                clients,
                med(0, |r| r.per_second),
                ms(med(0, |r| r.p50.as_secs_f64())),
                ms(med(0, |r| r.p99.as_secs_f64())),
                med(1, |r| r.per_second),
                ms(med(1, |r| r.p50.as_secs_f64())),
                ms(med(1, |r| r.p99.as_secs_f64())),
                ratio
            );
        }
        drop(keyd);
    }
    if let Some(n) = args.perso {
        perso(&pki, &work, n, args.rounds)?;
    }
    Ok(())
}

/// Cards per minute of `perso run` of `n` holders on two feeder readers with `keys`.
fn perso_run(work: &Path, keys: &str, env: &[(String, String)], n: usize) -> Result<f64> {
    let dir = work.join(format!("perso-{}", RUNS.fetch_add(1, Ordering::SeqCst)));
    std::fs::create_dir_all(&dir)?;
    let batch = sscard_e2e::write_batch(&dir, n, 'B');
    let feed = dir.join("feed");
    let journal = format!("sqlite:{}", dir.join("journal.db").display());
    let _m = sscard_e2e::ModelServer::start(
        &[
            "--feeder",
            feed.to_str().ok_or("UTF-8 path")?,
            "--blank",
            &(n + 2).to_string(),
            "--readers",
            "2",
        ],
        &[sscard_e2e::READER_0, sscard_e2e::READER_1],
    );
    let start = Instant::now();
    let o = Command::new(sscard_e2e::bin("sscard"))
        .args([
            "perso",
            "run",
            "--keys",
            keys,
            "--operator",
            "bench",
            "--batch",
        ])
        .arg(&batch)
        .args([
            "--readers",
            "0,1",
            "--journal",
            &journal,
            "--idle",
            "5",
            "--json",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()?;
    let wall = start.elapsed();
    if !o.status.success() {
        return Err(format!(
            "perso run with {keys}: {}",
            String::from_utf8_lossy(&o.stderr)
        )
        .into());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(n as f64 * 60.0 / wall.as_secs_f64())
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// Personalisation cards/min with the SoftHSM token locally and through keyd.
fn perso(pki: &Pki, work: &TempDir, n: usize, rounds: usize) -> Result<()> {
    let spec = sscard_e2e::softhsm_token();
    let mut c = KeydConfig::keys(&spec);
    c.env.push((
        "SOFTHSM2_CONF".into(),
        softhsm_copy(work.path())
            .to_str()
            .ok_or("UTF-8 path")?
            .into(),
    ));
    let keyd = Keyd::start(pki, c);
    let local_env = vec![(
        "SSCARD_PKCS11_PIN".to_string(),
        sscard_e2e::HSM_PIN.to_string(),
    )];
    let remote_env = pki.client_env(pki.client("bench"));
    let mut figures: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            figures[side].push(if side == 0 {
                perso_run(work.path(), &spec, &local_env, n)?
            } else {
                perso_run(work.path(), &keyd.url(), &remote_env, n)?
            });
        }
    }
    let ratio = median(
        figures[0]
            .iter()
            .zip(&figures[1])
            .map(|(l, r)| r / l)
            .collect(),
    );
    println!(
        "personalisation, {n} holders on 2 readers, {rounds} rounds: SoftHSM local {:.1} cards/min, through keyd {:.1} cards/min, keyd/local {:.3} (per round: local {:?}, keyd {:?})",
        median(figures[0].clone()),
        median(figures[1].clone()),
        ratio,
        figures[0].iter().map(|f| (f * 10.0).round() / 10.0).collect::<Vec<_>>(),
        figures[1].iter().map(|f| (f * 10.0).round() / 10.0).collect::<Vec<_>>(),
    );
    Ok(())
}
