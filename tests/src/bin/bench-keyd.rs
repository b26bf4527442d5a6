//! The benchmark of issue 17's "must show": throughput and p50/p99 latency of cryptogram
//! requests through `sscard keyd serve` on loopback (mutual TLS) against the same key source
//! used in-process, with 1, 4 and 16 concurrent clients, side by side in one run — and, in the
//! same rounds, the floor any network service has on this machine:
//!
//! - `no-op`: the same client (`RemoteKeys`, `remote:https://…`) against keyd's own HTTPS stack
//!   (`sscard_keyd::serve`: tokio, hyper, the same rustls server configuration) with a handler
//!   that answers a fixed cryptogram: no JSON parsing, no policy, no key work, no audit;
//! - `tls-echo`: a bare round trip of the same bytes (the HTTP request and answer of a
//!   cryptogram) over TLS with keyd's server configuration and a client configured like
//!   `RemoteKeys` (mutual TLS, ring), one blocking thread per connection on both ends;
//! - `tcp-echo`: the same round trip over plain loopback TCP;
//! - `fsync`: one writer appending 256 bytes and `fdatasync`ing them, in the temporary directory
//!   that holds keyd's audit journal: the commit rate of the medium. keyd answers a request only
//!   after its audit entry has committed, and one commit carries at most one waiting request per
//!   client, so `CLIENTS × fsync/s` bounds keyd whatever its code (the `keyd/commit` ratio).
//!
//! Sources: the software test keys (`test`), and a SoftHSM2 token holding the test key set
//! (`softhsm`; keyd serves a byte-identical copy of the token directory so that the two
//! processes never share SoftHSM's files). For each source one keyd runs for the whole
//! benchmark, started by this program with certificates it makes (`sscard_e2e::keyd`); the
//! floor's servers run in this process.
//!
//! A run: `CLIENTS` threads, each with its own connection or key source, opened before the clock
//! starts; every thread makes `--requests / CLIENTS` requests and times each one. Throughput =
//! requests / wall time of the run; p50/p99 over every request of the run. Every round runs every
//! side once, the order rotated by one each round; the tables give the medians over rounds and
//! the medians of the per-round ratios. The first answers of keyd and in-process are compared:
//! keyd must give the local bytes.
//!
//! With `--perso N`, also personalisation cards per minute: `sscard perso run` of N holders on
//! two feeder readers (`sscard-model serve --feeder`, through pcscd) with the SoftHSM token
//! locally against the same token through keyd, rounds alternating; this part needs pcscd and
//! must run under `flock -o /tmp/sscard-pcscd.lock` (the script takes the lock only then).
//!
//! Run by `scripts/bench-keyd.sh`.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sscard::keys::remote::protocol as p;
use sscard::keys::{CardRef, KeySource, KeySpec};
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::Kid;
use sscard_e2e::keyd::{softhsm_copy, Keyd, KeydConfig, Pki, TempDir};
use sscard_keyd::{ClientIdentity, Operation};
use sscard_transport::trace::Trace;
use std::error::Error;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const USAGE: &str =
    "usage: bench-keyd [--requests N] [--rounds N] [--clients LIST] [--sources LIST] [--no-floor] [--perso N]
  --requests N   cryptogram requests per run, shared by its clients (default 3200)
  --rounds N     rounds, at least 3 (default 5)
  --clients LIST concurrent clients (default 1,4,16)
  --sources LIST test and/or softhsm (default test,softhsm)
  --no-floor     without the floor sides (no-op on keyd's stack, TLS and TCP echo)
  --perso N      also personalise N holders per side and round on two readers (pcscd, lock)";

struct Args {
    requests: usize,
    rounds: usize,
    clients: Vec<usize>,
    sources: Vec<String>,
    floor: bool,
    perso: Option<usize>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        requests: 3200,
        rounds: 5,
        clients: vec![1, 4, 16],
        sources: vec!["test".into(), "softhsm".into()],
        floor: true,
        perso: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-floor" {
            a.floor = false;
            continue;
        }
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
            "--sources" => {
                a.sources = value()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
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

const CARD_ID: &str = "110100D15600000599110145000000A1";

fn card() -> CardRef {
    CardRef::new(
        sscard_core::hexfmt::parse_hex(CARD_ID)
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

/// What one run measures.
#[derive(Clone)]
enum Side {
    /// Cryptograms from a key source: in-process, or `remote:` through keyd or the no-op.
    Keys { name: String, spec: KeySpec },
    /// Synchronous appends to a file in `dir`, by one writer whatever the clients.
    Fsync {
        name: String,
        dir: std::path::PathBuf,
    },
    /// A round trip of `wire`'s bytes to an echo server.
    Echo {
        name: String,
        addr: String,
        tls: Option<Arc<rustls::ClientConfig>>,
        wire: Arc<Wire>,
    },
}

impl Side {
    fn name(&self) -> &str {
        match self {
            Side::Keys { name, .. } | Side::Echo { name, .. } | Side::Fsync { name, .. } => name,
        }
    }
}

/// One client's connection: makes request `i` of client `c`.
type Client = Box<dyn FnMut(u32, u32) -> std::result::Result<(), String>>;

fn client(side: &Side) -> Result<Client> {
    Ok(match side {
        Side::Keys { spec, .. } => {
            let mut source = open(spec)?;
            let card = card();
            Box::new(move |c, i| {
                let mut random = [0u8; 8];
                random[..4].copy_from_slice(&c.to_be_bytes());
                random[4..].copy_from_slice(&i.to_be_bytes());
                source
                    .cryptogram(Algorithm::Tdes, &card, Kid::Irk, &random)
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
        }
        Side::Fsync { dir, .. } => {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("fsync"))?;
            let record = [0x5Au8; 256];
            Box::new(move |_, _| {
                f.write_all(&record)
                    .and_then(|()| f.sync_data())
                    .map_err(|e| e.to_string())
            })
        }
        Side::Echo {
            addr, tls, wire, ..
        } => {
            let tcp = TcpStream::connect(addr)?;
            tcp.set_nodelay(true)?;
            let mut stream: Box<dyn ReadWrite> = match tls {
                None => Box::new(tcp),
                Some(config) => {
                    let name = ServerName::try_from("127.0.0.1")?.to_owned();
                    let conn = rustls::ClientConnection::new(Arc::clone(config), name)?;
                    let mut s = rustls::StreamOwned::new(conn, tcp);
                    while s.conn.is_handshaking() {
                        s.conn.complete_io(&mut s.sock)?;
                    }
                    Box::new(s)
                }
            };
            let wire = Arc::clone(wire);
            let mut answer = vec![0u8; wire.answer.len()];
            Box::new(move |_, _| {
                stream
                    .write_all(&wire.request)
                    .and_then(|()| stream.flush())
                    .and_then(|()| stream.read_exact(&mut answer))
                    .map_err(|e| e.to_string())
            })
        }
    })
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// `requests` requests by `clients` threads with their own connections to `side`.
fn run(side: &Side, clients: usize, requests: usize) -> Result<Run> {
    // One synchronous writer, a few hundred commits: the medium's rate.
    let (clients, requests) = match side {
        Side::Fsync { .. } => (1, requests.min(500)),
        _ => (clients, requests),
    };
    let per_client = requests / clients;
    let barrier = Arc::new(Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let side = side.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(
                move || -> std::result::Result<(Instant, Instant, Vec<Duration>), String> {
                    let client = client(&side).map_err(|e| e.to_string());
                    barrier.wait();
                    let begun = Instant::now();
                    let mut client = client?;
                    let mut times = Vec::with_capacity(per_client);
                    for i in 0..per_client {
                        let t = Instant::now();
                        client(c as u32, i as u32)?;
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
        let (begun, ended, t) = h
            .join()
            .map_err(|_| "a client panicked")?
            .map_err(|e| format!("{}: {e}", side.name()))?;
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

/// The bytes of one cryptogram exchange as `RemoteKeys` sends them and hyper answers them.
struct Wire {
    request: Vec<u8>,
    answer: Vec<u8>,
}

fn cryptogram_answer() -> String {
    serde_json::to_string(&p::CryptogramResponse {
        cryptogram: "0011223344556677".into(),
    })
    .expect("JSON")
}

impl Wire {
    fn of_cryptogram(port: u16) -> Self {
        let body = serde_json::to_string(&p::CryptogramRequest {
            algorithm: p::WireAlgorithm::Tdes,
            card_id: CARD_ID.into(),
            kid: Kid::Irk.name().into(),
            random: to_hex(&[0u8; 8]),
        })
        .expect("JSON");
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            p::PATH_CRYPTOGRAM,
            body.len()
        );
        let answer = cryptogram_answer();
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\ndate: Wed, 02 Dec 2026 21:00:00 GMT\r\n\r\n{answer}",
            answer.len()
        );
        Self {
            request: request.into_bytes(),
            answer: answer.into_bytes(),
        }
    }
}

/// keyd's HTTPS stack with nothing behind it: every request is answered at once with a fixed
/// body (`/v1/info` with an info, anything else with a cryptogram), unparsed and unaudited.
struct NoOp {
    info: String,
    cryptogram: String,
}

impl sscard_keyd::Handler for NoOp {
    fn handle(
        &self,
        _who: &ClientIdentity,
        op: Operation,
        _body: &[u8],
    ) -> impl std::future::Future<Output = (u16, String)> + Send {
        let body = if op == Operation::Info {
            self.info.clone()
        } else {
            self.cryptogram.clone()
        };
        std::future::ready((200, body))
    }
}

/// [`NoOp`] served by `sscard_keyd::serve` on a multi-threaded runtime built as keyd builds its
/// own, until dropped.
struct NoOpServer {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NoOpServer {
    fn start(pki: &Pki) -> Result<Self> {
        let tls = sscard_keyd::server_config(&pki.server_cert, &pki.server_key, &pki.client_ca)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let handler = Arc::new(NoOp {
            info: serde_json::to_string(&p::InfoResponse {
                source: "no-op (bench-keyd's floor)".into(),
                algorithm: None,
                region: None,
                terminal_number: None,
            })?,
            cryptogram: cryptogram_answer(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(sscard_keyd::serve(listener, tls, handler, async {
                let _ = stopped.await;
            }))
        });
        Ok(Self {
            port,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for NoOpServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An echo server on 127.0.0.1: one thread per connection reads each request's bytes and
/// writes the answer's, over TLS with `tls` (keyd's server configuration) or plain TCP. Its
/// threads end with their connections; the listener's with the process.
fn echo_server(tls: Option<Arc<rustls::ServerConfig>>, wire: Arc<Wire>) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let (tls, wire) = (tls.clone(), Arc::clone(&wire));
            std::thread::spawn(move || {
                let _ = tcp.set_nodelay(true);
                let mut stream: Box<dyn ReadWrite> = match tls {
                    None => Box::new(tcp),
                    Some(config) => match rustls::ServerConnection::new(config) {
                        Ok(conn) => Box::new(rustls::StreamOwned::new(conn, tcp)),
                        Err(_) => return,
                    },
                };
                let mut request = vec![0u8; wire.request.len()];
                while stream.read_exact(&mut request).is_ok() {
                    if stream
                        .write_all(&wire.answer)
                        .and_then(|()| stream.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// The echo client's TLS configuration: as `RemoteKeys` makes its own (ring, the server CA,
/// the client's certificate and key).
fn echo_client_config(pki: &Pki) -> Result<Arc<rustls::ClientConfig>> {
    let bench = pki.client("bench");
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&pki.server_ca)? {
        roots.add(ca?)?;
    }
    let chain =
        CertificateDer::pem_file_iter(&bench.cert)?.collect::<std::result::Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&bench.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?,
    ))
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let pki = Pki::new(&["bench"]);
    for (k, v) in pki.client_env(pki.client("bench")) {
        std::env::set_var(k, v);
    }
    let work = TempDir::new("bench");
    println!(
        "bench-keyd: {} cryptogram requests a run, {} rounds, clients {:?}, sources {:?}, floor {}",
        args.requests, args.rounds, args.clients, args.sources, args.floor
    );
    // The sides, and what they keep running.
    let mut sides: Vec<Side> = Vec::new();
    let mut keyds: Vec<Keyd> = Vec::new();
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
        sides.push(Side::Keys {
            name: format!("{source} local"),
            spec: local,
        });
        sides.push(Side::Keys {
            name: format!("{source} keyd"),
            spec: remote,
        });
        keyds.push(keyd);
    }
    let _noop = if args.floor {
        let noop = NoOpServer::start(&pki)?;
        let wire = Arc::new(Wire::of_cryptogram(noop.port));
        sides.push(Side::Keys {
            name: "no-op".into(),
            spec: format!("remote:https://127.0.0.1:{}", noop.port).parse()?,
        });
        let server_tls =
            sscard_keyd::server_config(&pki.server_cert, &pki.server_key, &pki.client_ca)?;
        sides.push(Side::Echo {
            name: "tls-echo".into(),
            addr: echo_server(Some(server_tls), Arc::clone(&wire))?,
            tls: Some(echo_client_config(&pki)?),
            wire: Arc::clone(&wire),
        });
        sides.push(Side::Echo {
            name: "tcp-echo".into(),
            addr: echo_server(None, Arc::clone(&wire))?,
            tls: None,
            wire: Arc::clone(&wire),
        });
        sides.push(Side::Fsync {
            name: "fsync".into(),
            dir: work.path().to_path_buf(),
        });
        println!(
            "floor: a cryptogram exchange is {} request and {} answer bytes",
            wire.request.len(),
            wire.answer.len()
        );
        Some(noop)
    } else {
        None
    };
    println!(
        "{:<14} {:>7}  {:>12} {:>9} {:>9}",
        "side", "clients", "req/s", "p50 ms", "p99 ms"
    );
    let mut ratio_rows = Vec::new();
    for &clients in args.clients.iter().filter(|_| !sides.is_empty()) {
        // [side][round]
        let mut figures: Vec<Vec<Run>> = sides.iter().map(|_| Vec::new()).collect();
        for round in 0..args.rounds {
            let mut order: Vec<usize> = (0..sides.len()).collect();
            order.rotate_left(round % sides.len());
            for s in order {
                figures[s].push(run(&sides[s], clients, args.requests)?);
            }
        }
        for (side, runs) in sides.iter().zip(&figures) {
            let med = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
            println!(
                "{:<14} {:>7}  {:>12.0} {:>9} {:>9}",
                side.name(),
                clients,
                med(|r| r.per_second),
                ms(med(|r| r.p50.as_secs_f64())),
                ms(med(|r| r.p99.as_secs_f64())),
            );
        }
        let index = |name: &str| sides.iter().position(|s| s.name() == name);
        let ratio = |num: &str, den: &str| -> Option<f64> {
            let (n, d) = (index(num)?, index(den)?);
            Some(median(
                figures[n]
                    .iter()
                    .zip(&figures[d])
                    .map(|(a, b)| a.per_second / b.per_second)
                    .collect(),
            ))
        };
        ratio_rows.push((
            clients,
            [
                ratio("test keyd", "test local"),
                ratio("test keyd", "no-op"),
                ratio("no-op", "test local"),
                ratio("tls-echo", "test local"),
                ratio("tcp-echo", "test local"),
                ratio("test keyd", "fsync").map(|r| r / clients as f64),
                ratio("softhsm keyd", "softhsm local"),
                ratio("softhsm keyd", "no-op"),
            ],
        ));
    }
    println!("medians of the per-round throughput ratios (local = in-process; commit = clients × fsync/s):");
    let heads = [
        "test keyd/local",
        "keyd/no-op",
        "no-op/local",
        "tls-echo/local",
        "tcp-echo/local",
        "keyd/commit",
        "hsm keyd/local",
        "hsm keyd/no-op",
    ];
    print!("{:>7}", "clients");
    for h in heads {
        print!("  {h:>15}");
    }
    println!();
    for (clients, ratios) in ratio_rows {
        print!("{clients:>7}");
        for r in ratios {
            match r {
                Some(r) => print!("  {r:>15.3}"),
                None => print!("  {:>15}", "-"),
            }
        }
        println!();
    }
    drop(keyds);
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
    let audit = work.path().join("perso-keyd-audit.db");
    c.audit = Some(format!("sqlite:{}", audit.display()));
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
    drop(keyd);
    // What the cards asked keyd for: its audit log holds one entry per request.
    match Command::new("sqlite3")
        .arg(&audit)
        .arg("SELECT event, COUNT(*) FROM audit GROUP BY event ORDER BY event")
        .output()
    {
        Ok(o) if o.status.success() => {
            let cards = (n * rounds) as f64;
            let per_card: Vec<String> = String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_once('|'))
                .filter(|(e, _)| e.starts_with("keyd ") && !e.starts_with("keyd st"))
                .filter_map(|(e, c)| Some(format!("{e} {:.2}", c.parse::<f64>().ok()? / cards)))
                .collect();
            println!(
                "keyd requests per card (its audit log): {}",
                per_card.join(", ")
            );
        }
        _ => println!("keyd requests per card: no sqlite3 command to read its audit log"),
    }
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
