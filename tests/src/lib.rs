//! Harness of the end-to-end tests: real pcscd with the vpcd driver, the `sscard` and
//! `sscard-model` binaries. Tests never skip: without pcscd they fail and say why.

pub mod keyd;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const READER_0: &str = "Virtual PCD 00 00";
pub const READER_1: &str = "Virtual PCD 00 01";
/// The four readers a card feeder of `sscard-model serve --feeder … --readers 4` fills.
pub const FEEDER_READERS: [&str; 4] = [
    READER_0,
    READER_1,
    "Virtual PCD B 00 00",
    "Virtual PCD B 00 01",
];
pub const VPCD_PORT: u16 = 35963;

static READERS: Mutex<()> = Mutex::new(());

/// The virtual readers are shared: one test at a time uses them.
pub fn exclusive() -> MutexGuard<'static, ()> {
    READERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A binary of this workspace (built by `cargo build --workspace --bins`).
pub fn bin(name: &str) -> PathBuf {
    let mut p = std::env::current_exe().expect("test binary path");
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    let path = p.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Whether pcscd's vpcd driver listens on its first port.
fn vpcd_listening() -> bool {
    port_listening(VPCD_PORT)
}

/// Makes sure pcscd runs with the vpcd reader; starts it when it can. Panics (never skips)
/// when it cannot.
pub fn ensure_pcscd() {
    if vpcd_listening() {
        return;
    }
    let started = Command::new("/usr/sbin/pcscd").status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if vpcd_listening() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "pcscd with the vpcd reader is required (SSCARD_REQUIRE_PCSCD={}) but port {VPCD_PORT} does not listen; \
         starting /usr/sbin/pcscd gave {started:?}. Run scripts/setup.sh.",
        std::env::var("SSCARD_REQUIRE_PCSCD").unwrap_or_default()
    );
}

/// Runs `sscard` with arguments.
pub fn sscard(args: &[&str]) -> Output {
    sscard_env(args, &[], None)
}

/// Runs `sscard` with extra environment and optional stdin.
pub fn sscard_env(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(bin("sscard"));
    cmd.args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn sscard");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("sscard runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether a card is present in `reader`.
pub fn card_present(reader: &str) -> bool {
    let Ok(ctx) = pcsc::Context::establish(pcsc::Scope::User) else {
        return false;
    };
    sscard_transport::pcsc::wait_for_card_state(&ctx, reader, true, Duration::ZERO).unwrap_or(false)
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until none of `readers` holds a card, or fails naming `why` and pcscd's state.
///
/// A card there at the start is either served by another process (a failure) or was served by
/// a process that has just exited — killed without waiting, as a loop outside the harness may do
/// — whose connection vpcd drops and pcscd's next poll (every 400 ms) notices. The second is
/// waited out: 3 s is more than seven polls; a card still there then is being served.
fn await_no_card(readers: &[&'static str], why: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    for r in readers {
        while card_present(r) {
            assert!(
                Instant::now() < deadline,
                "{r} already holds a card: {why} ({})",
                reader_diagnosis(r)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A running `sscard-model serve`, killed on drop (and its cards gone from the readers).
pub struct ModelServer {
    child: Child,
    pub control: PathBuf,
    readers: Vec<&'static str>,
    /// pcscd's view of the readers just before the model was killed, once it was.
    before_kill: Option<Vec<Departure>>,
}

impl ModelServer {
    /// Starts `sscard-model serve ARGS` and waits until pcscd sees a card in each of `readers`.
    pub fn start(args: &[&str], readers: &[&'static str]) -> Self {
        ensure_pcscd();
        Self::start_on_running_pcscd(args, readers)
    }

    /// [`ModelServer::start`] for a pcscd the test started itself ([`PrivatePcscd`]): the
    /// system's pcscd is left alone.
    pub fn start_on_running_pcscd(args: &[&str], readers: &[&'static str]) -> Self {
        await_no_card(readers, "another model is serving");
        // A connection vpcd still holds (a model stopped by a process that did not wait for
        // vpcd, or dying now) would take the new card's place in vpcd's queue and let pcscd
        // miss the insertion (see `await_empty`): wait for vpcd to let go of it and pcscd's poll
        // to see it go, or fail here, at the cause, with what holds it.
        let held: Vec<Departure> = departures(readers).into_iter().filter(|d| d.held).collect();
        for d in &held {
            eprintln!(
                "harness: vpcd still holds a connection on {}'s port though pcscd shows it empty; waiting for it to go ({})",
                d.reader,
                reader_diagnosis(d.reader)
            );
        }
        await_empty(&held);
        let control = std::env::temp_dir().join(format!(
            "sscard-model-{}-{}.sock",
            std::process::id(),
            rand_suffix()
        ));
        let child = Command::new(bin("sscard-model"))
            .arg("serve")
            .args(args)
            .arg("--control")
            .arg(&control)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sscard-model");
        let server = Self {
            child,
            control,
            readers: readers.to_vec(),
            before_kill: None,
        };
        for r in readers {
            let start = Instant::now();
            while !card_present(r) {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "timed out waiting for a card in {r}; {}",
                    reader_diagnosis(r)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        server
    }

    /// Kills the model at once (SIGKILL): every reader it serves loses its card mid-whatever,
    /// as when a reader's device goes away. Drop then only waits for the readers to be empty.
    pub fn kill(&mut self) {
        if self.before_kill.is_none() {
            self.before_kill = Some(departures(&self.readers));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The APDUs the card in `slot` received so far (the control socket's `status`).
    pub fn apdus(&self, slot: usize) -> u64 {
        let status = self.control("status");
        status
            .split("; ")
            .nth(slot)
            .and_then(|s| s.split(" apdus ").nth(1))
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no APDU count of slot {slot} in status {status:?}"))
    }

    /// Sends a control command (`remove 0`, `insert 0`, `pull 0 3`, `status`) and returns the
    /// answer.
    pub fn control(&self, line: &str) -> String {
        use std::io::{BufRead, BufReader, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&self.control).expect("control socket");
        writeln!(s, "{line}").expect("write control");
        let mut answer = String::new();
        BufReader::new(s)
            .read_line(&mut answer)
            .expect("read control");
        answer.trim().to_string()
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.control);
        await_empty(self.before_kill.as_deref().unwrap_or_default());
    }
}

/// A reader whose card server is about to go: pcscd's event count of it then, and whether vpcd
/// held a connection on its port.
struct Departure {
    reader: &'static str,
    events: Option<u32>,
    held: bool,
}

/// Notes what [`await_empty`] needs before the card servers of `readers` are stopped.
fn departures(readers: &[&'static str]) -> Vec<Departure> {
    readers
        .iter()
        .map(|&reader| Departure {
            reader,
            events: reader_view(reader).map(|(_, events)| events),
            held: vpcd_port(reader).is_some_and(vpcd_holds),
        })
        .collect()
}

/// pcscd's view of a reader: whether it shows a card, and the reader's event count (the card
/// insertions and removals pcscd's own poll of the reader has seen).
fn reader_view(reader: &str) -> Option<(bool, u32)> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User).ok()?;
    let name = std::ffi::CString::new(reader).ok()?;
    let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
    ctx.get_status_change(Duration::ZERO, &mut states).ok()?;
    Some((
        states[0].event_state().contains(pcsc::State::PRESENT),
        states[0].event_count(),
    ))
}

/// Whether vpcd still holds a connection on `port`: pcscd's end of one (accepted, or waiting in
/// the accept queue) not yet closed. vpcd closes it only when it finds the card gone.
fn vpcd_holds(port: u16) -> bool {
    let needle = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                // ESTABLISHED, SYN_RECV, CLOSE (reset, fd still open), CLOSE_WAIT.
                cols.len() > 3
                    && cols[1].ends_with(&needle)
                    && ["01", "03", "07", "08"].contains(&cols[3])
            })
    })
}

/// Waits until each departed reader is empty for good: pcscd shows no card, vpcd has closed
/// the old connection, and pcscd's own poll of the reader has seen the card go.
///
/// pcscd's "no card" alone is not enough. pcsc-lite 1.9.9 keeps two views of a reader: the
/// state clients read, and its event thread's last observation. Every power action first asks
/// the driver whether a card is there (`IFDPowerICC` calls `IFDStatusICC`), and vpcd answers
/// that by polling its socket — dropping a dead card's connection, or accepting a waiting one —
/// outside the event thread's own look. A client whose reset or power-up finds the card gone
/// writes "absent" into the state clients read (a card removed and put back between two polls,
/// as reader-test's removal check does); the event thread, which did not see the card go, still
/// believes it present. The reader then reads empty while vpcd holds the old card's connection.
/// A next model started then connects into vpcd's queue; the event thread's power-down finds
/// the old card dead (a look of its own is not needed), its next poll accepts the new card and
/// sees a card present, as it believed all along: no insertion, and the new card stays
/// invisible ("timed out waiting for a card in …" with vpcd connected to the model).
///
/// So: wait for vpcd to close the old connection and, when it held one at the stop, for the
/// reader's event count to move (the event thread saw the card go). Only a count that does not
/// move within 2 s of vpcd closing is let pass — the event thread already believed the reader
/// empty (a card pulled and never put back) — and said. While a test is already failing, a
/// reader that stays full is not a second panic (which would abort the whole test binary).
fn await_empty(departed: &[Departure]) {
    for d in departed {
        let r = d.reader;
        let start = Instant::now();
        let mut replugged = false;
        let mut quiet_since: Option<Instant> = None;
        loop {
            let view = reader_view(r);
            let present = view.is_some_and(|(present, _)| present);
            let quiet = !vpcd_port(r).is_some_and(vpcd_holds);
            let seen_go = match (d.held, d.events, view) {
                (true, Some(before), Some((_, now))) => now != before,
                _ => true,
            };
            if !quiet {
                quiet_since = None;
            } else if quiet_since.is_none() {
                quiet_since = Some(Instant::now());
            }
            if !present && quiet {
                if seen_go {
                    break;
                }
                if quiet_since.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
                    eprintln!("harness: pcscd counted no removal in {r} though vpcd held its card at the stop; taking it as empty ({})", reader_diagnosis(r));
                    break;
                }
            }
            let waited = start.elapsed();
            if std::thread::panicking() {
                if waited > Duration::from_secs(10) {
                    break;
                }
            } else {
                assert!(
                    waited < Duration::from_secs(10),
                    "timed out waiting for {r} to be empty; {}",
                    reader_diagnosis(r)
                );
                if present && !replugged && waited > Duration::from_secs(2) && !served(r) {
                    eprintln!("harness: pcscd reports a card in {r} that nothing serves; replugging to resync it ({})", reader_diagnosis(r));
                    replug(r);
                    replugged = true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The vpcd port of a reader: "Virtual PCD 00 00" is 35963, "… 00 01" 35964, "Virtual PCD B
/// 00 00" 35965 and so on to F (scripts/setup.sh).
pub fn vpcd_port(reader: &str) -> Option<u16> {
    let rest = reader.strip_prefix("Virtual PCD ")?;
    let (bank, slot) = match rest.split_once(' ') {
        Some((b, s)) if b.len() == 1 => (b.as_bytes()[0].checked_sub(b'A')? as u16, s),
        _ => (0, rest),
    };
    let slot = u16::from(slot.ends_with('1'));
    Some(VPCD_PORT + 2 * bank + slot)
}

/// Whether a card server is connected to the reader's vpcd port.
fn served(reader: &str) -> bool {
    let Some(port) = vpcd_port(reader) else {
        return true;
    };
    let needle = format!(":{port:04X} ");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3
                    && cols[3] == "01"
                    && (format!("{} ", cols[1]).contains(&needle)
                        || format!("{} ", cols[2]).contains(&needle))
            })
    })
}

/// Presents a card in the reader for a moment and takes it out again, so that pcscd sees a
/// real insertion and removal.
///
/// pcsc-lite 1.9.9 keeps two views of a reader: the state clients read (`readerState`) and
/// the event thread's own last observation. A client's reset on disconnect, or a power-up on
/// connect, writes `readerState` = PRESENT directly; the event thread rewrites it only when
/// its own observation changes. When the client's write comes after the event thread last saw
/// the card gone (a card server that drops and reconnects, as the power-cut test's model does),
/// the reader reads PRESENT with no card until the next insertion and removal — here made on
/// purpose, once, when nothing serves the port.
pub fn replug(reader: &str) {
    use std::io::{Read, Write};
    let Some(port) = vpcd_port(reader) else {
        return;
    };
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let until = Instant::now() + Duration::from_millis(1500);
    let mut len = [0u8; 2];
    while Instant::now() < until {
        if s.read_exact(&mut len).is_err() {
            continue;
        }
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        if s.read_exact(&mut msg).is_err() {
            break;
        }
        let reply: &[u8] = match msg[..] {
            // vpcd asks for the ATR; power on, off and reset need no answer.
            [0x04] => &sscard_core::profile::SSC_ATR,
            [_] => continue,
            _ => &[0x6F, 0x00],
        };
        let mut frame = (reply.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(reply);
        if s.write_all(&frame).is_err() {
            break;
        }
    }
}

/// What may keep pcscd reporting a card in `reader` after its server went: the reader's state
/// flags, the TCP connections left on the vpcd ports, and any `sscard-model` still running.
fn reader_diagnosis(reader: &str) -> String {
    let state = pcsc::Context::establish(pcsc::Scope::User)
        .ok()
        .and_then(|ctx| {
            let name = std::ffi::CString::new(reader).ok()?;
            let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
            ctx.get_status_change(Duration::ZERO, &mut states).ok()?;
            Some(format!("{:?}", states[0].event_state()))
        })
        .unwrap_or_else(|| "unknown".into());
    let mut sockets = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for l in std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let port = |c: &str| {
                c.rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            let (local, remote) = (port(cols[1]), port(cols[2]));
            if [local, remote]
                .iter()
                .any(|p| p.is_some_and(|p| (VPCD_PORT..VPCD_PORT + 12).contains(&p)))
            {
                // For a listening socket (0A) the receive queue is its accept queue: vpcd
                // listens with a backlog of 0, so one connection waiting fills it.
                sockets.push(format!(
                    "{}->{} state {} queues {}",
                    cols[1], cols[2], cols[3], cols[4]
                ));
            }
        }
    }
    let models: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "sscard-model")
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    format!("pcscd state {state}; vpcd sockets {sockets:?}; sscard-model pids {models:?}")
}

/// Parses a JSON stdout.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            stdout(o),
            stderr(o)
        )
    })
}

/// SoftHSM2 module path on Debian.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Token label and user PIN of the test token.
pub const HSM_TOKEN: &str = "sscard-test";
pub const HSM_PIN: &str = "24680";
/// Empty tokens beside the test token (same PIN), for tests that import their own keys: a
/// SoftHSM library sees only the tokens that existed when this process initialised it, so
/// [`softhsm_token`] creates them all up front.
pub const HSM_CEREMONY_TOKEN: &str = "sscard-ceremony";
pub const HSM_SCRATCH_TOKEN: &str = "sscard-scratch";

static HSM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// One test at a time uses the SoftHSM tokens. SoftHSM 2.6 rewrites a token's `token.object`
/// on every C_Login (its PIN-count flags), and a library in another process that reads the file
/// meanwhile marks that token invalid for the rest of its life (C_GetTokenInfo answers
/// CKR_GENERAL_ERROR, or the token is missing from the slot list). Tests that run side by side
/// in one binary and log in from this process and from `sscard` children therefore take this
/// lock for their whole run (`docs/key-file.md`, "SoftHSM and several processes").
static HSM_USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Writes `dir/softhsm2.conf` for a SoftHSM token directory `dir/tokens` (file object store)
/// and returns its path: the value of `SOFTHSM2_CONF` for that directory.
pub fn write_softhsm_conf(dir: &Path) -> PathBuf {
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            dir.join("tokens").display()
        ),
    )
    .unwrap();
    conf
}

/// [`softhsm_token`], held exclusively by the calling test until the guard drops.
pub fn softhsm_token_exclusive() -> (String, std::sync::MutexGuard<'static, ()>) {
    let guard = HSM_USERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    (softhsm_token(), guard)
}

fn init_softhsm_token(label: &str) {
    let o = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            "13579",
            "--pin",
            HSM_PIN,
        ])
        .output()
        .expect("softhsm2-util runs");
    assert!(
        o.status.success(),
        "softhsm2-util: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A SoftHSM2 token in a temporary directory with its own SOFTHSM2_CONF (set for this process,
/// so in-process PKCS#11 and child processes see it too), holding the test key set (with the
/// test audit key and region 110100); beside it the empty [`HSM_CEREMONY_TOKEN`] and
/// [`HSM_SCRATCH_TOKEN`]. Returns the `--keys` value of the test token.
pub fn softhsm_token() -> String {
    let conf = HSM.get_or_init(|| {
        assert!(
            std::path::Path::new(SOFTHSM_MODULE).exists(),
            "{SOFTHSM_MODULE} is missing: scripts/setup.sh installs softhsm2"
        );
        let dir = std::env::temp_dir().join(format!("sscard-softhsm-{}", std::process::id()));
        // A directory left by an earlier process with this id would add its tokens.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = write_softhsm_conf(&dir);
        std::env::set_var("SOFTHSM2_CONF", &conf);
        for label in [HSM_TOKEN, HSM_CEREMONY_TOKEN, HSM_SCRATCH_TOKEN] {
            init_softhsm_token(label);
        }
        let o = sscard_env(
            &[
                "keys",
                "hsm-import",
                "--keys",
                &format!("pkcs11:{SOFTHSM_MODULE}:{HSM_TOKEN}"),
            ],
            &[("SSCARD_PKCS11_PIN", HSM_PIN)],
            None,
        );
        assert!(o.status.success(), "hsm-import: {}", stderr(&o));
        conf
    });
    assert!(conf.exists());
    format!("pkcs11:{SOFTHSM_MODULE}:{HSM_TOKEN}")
}

/// The stations' role of the test server, and its password (it logs in over TLS only).
pub const STATION_ROLE: &str = "station";
pub const STATION_PASSWORD: &str = "station-test-password";

/// `pkcs11-tool --list-objects` of a token of [`softhsm_token`]'s directory, as (label, usage)
/// pairs of its secret keys (the "Usage:" line as printed).
pub fn pkcs11_tool_key_usages(token: &str) -> Vec<(String, String)> {
    softhsm_token();
    let o = Command::new("pkcs11-tool")
        .args([
            "--module",
            SOFTHSM_MODULE,
            "--token-label",
            token,
            "--login",
            "--pin",
            HSM_PIN,
            "--list-objects",
        ])
        .output()
        .expect("pkcs11-tool runs (scripts/setup.sh installs opensc)");
    assert!(
        o.status.success(),
        "pkcs11-tool: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut keys = Vec::new();
    let mut label = None;
    let mut secret = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            secret = line.starts_with("Secret Key Object");
            label = None;
        } else if let Some(l) = line.trim().strip_prefix("label:") {
            label = Some(l.trim().trim_matches('\'').to_string());
        } else if let (true, Some(u)) = (secret, line.trim().strip_prefix("Usage:")) {
            keys.push((label.take().unwrap_or_default(), u.trim().to_string()));
        }
    }
    keys
}

/// A PostgreSQL server for journal tests, started in its own temporary directory on a free
/// port of 127.0.0.1 (also listening on 127.0.0.2, an address its certificate does not name)
/// and stopped again on drop — tests leave no process behind. Panics (never skips) when it
/// cannot start.
///
/// With TLS ([`Postgres::start`]) it has certificates made for the test — a CA, a server
/// certificate for `localhost` and 127.0.0.1 signed by it, and another CA that signed
/// nothing — and two roles: `postgres`, the administrator (trusted over TLS and the Unix
/// socket), and [`STATION_ROLE`] (password over TLS; refused in clear text). Without TLS
/// ([`Postgres::start_without_tls`]) only the administrator connects, in clear text (the
/// certificates are made all the same, for URLs that name a CA).
pub struct Postgres {
    port: u16,
    dir: PathBuf,
    pg_ctl: PathBuf,
    tls: bool,
}

static PG_SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Postgres {
    /// A server with TLS and the two roles.
    pub fn start() -> Self {
        Self::start_with(true)
    }

    /// A server that does not speak TLS (`ssl=off`).
    pub fn start_without_tls() -> Self {
        Self::start_with(false)
    }

    fn start_with(tls: bool) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).find(|p| p.join("initdb").exists()))
            .expect("PostgreSQL server binaries under /usr/lib/postgresql (scripts/setup.sh installs postgresql)");
        let dir = std::env::temp_dir().join(format!(
            "sscard-pg-{}-{}",
            std::process::id(),
            PG_SERVERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let chown = Command::new("chown")
            .args(["postgres:postgres", dir.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(chown.success());
        let data = dir.join("data");
        pg_run(&[
            bin.join("initdb").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
        ]);
        make_certificates(&dir);
        let hba = if tls {
            "local   all all                      trust\n\
             hostssl all postgres 127.0.0.0/8     trust\n\
             hostssl all station  127.0.0.0/8     scram-sha-256\n\
             host    all all      127.0.0.0/8     reject\n"
        } else {
            "local   all all                      trust\n\
             host    all postgres 127.0.0.0/8     trust\n"
        };
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        let port = free_port();
        let mut opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1,127.0.0.2",
            dir.display()
        );
        if tls {
            opts += &format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                dir.join("server.crt").display(),
                dir.join("server.key").display()
            );
        }
        let pg_ctl = bin.join("pg_ctl");
        let log = dir.join("log");
        // The guard exists before the server starts: a start that fails or times out after
        // the postmaster came up (a loaded machine) still stops it when the panic unwinds.
        let server = Self {
            port,
            dir,
            pg_ctl,
            tls,
        };
        pg_run(&[
            server.pg_ctl.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-o",
            &opts,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "start",
        ]);
        if tls {
            server.admin_psql(&format!(
                "CREATE ROLE {STATION_ROLE} LOGIN PASSWORD '{STATION_PASSWORD}'"
            ));
        }
        server
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A CA that signed nothing of this server's (PEM).
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.crt")
    }

    /// Creates the database `db` afresh (empty: no journal schema).
    pub fn create_db(&self, db: &str) {
        self.admin_psql(&format!("DROP DATABASE IF EXISTS {db}"));
        self.admin_psql(&format!("CREATE DATABASE {db}"));
    }

    /// The administrator's URL for `db`: TLS with the full check against [`Postgres::ca`],
    /// or clear text on a server without TLS.
    pub fn admin_url(&self, db: &str) -> String {
        match self.tls {
            true => format!(
                "postgres://postgres@127.0.0.1:{}/{db}?sslmode=verify-full&sslrootcert={}",
                self.port,
                self.ca().display()
            ),
            false => format!(
                "postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable",
                self.port
            ),
        }
    }

    /// The station role's URL for `db` with `sslmode=verify-full` and [`Postgres::ca`].
    pub fn station_url(&self, db: &str) -> String {
        format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            self.station_base(db),
            self.ca().display()
        )
    }

    /// The station role's URL for `db` without TLS parameters (append `?sslmode=…`).
    pub fn station_base(&self, db: &str) -> String {
        format!(
            "postgres://{STATION_ROLE}:{STATION_PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// The station role's URL for `db` in clear text (`sslmode=disable`): the server refuses it.
    pub fn clear_station_url(&self, db: &str) -> String {
        format!("{}?sslmode=disable", self.station_base(db))
    }

    /// A fresh database `db` whose journal schema the administrator created (granting the
    /// station role), and the station's TLS URL for it.
    pub fn url(&self, db: &str) -> String {
        self.create_db(db);
        sscard_perso::journal::Journal::init(&self.admin_url(db), Some(STATION_ROLE))
            .unwrap_or_else(|e| panic!("creating the journal schema of {db}: {e}"));
        self.station_url(db)
    }

    /// Runs SQL through `psql` (libpq, independent of our driver) at `url`: the rows as
    /// `a|b` lines, or the error as `SQLSTATE: message`.
    pub fn psql(&self, url: &str, sql: &str) -> Result<String, String> {
        let o = Command::new("psql")
            .args([url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-v", "VERBOSITY=verbose", "-c", sql])
            .env_remove("PGSSLMODE")
            .output()
            .expect("psql runs");
        if o.status.success() {
            return Ok(String::from_utf8_lossy(&o.stdout).trim_end().to_string());
        }
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        Err(err
            .lines()
            .find_map(|l| l.split_once("ERROR:  ").map(|(_, e)| e.to_string()))
            .unwrap_or(err))
    }

    /// Runs SQL as the administrator over the Unix socket; panics on an error.
    fn admin_psql(&self, sql: &str) {
        let o = Command::new("psql")
            .args([
                "-h",
                self.dir.to_str().unwrap(),
                "-p",
                &self.port.to_string(),
            ])
            .args(["-U", "postgres", "-d", "postgres", "-X", "-q"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            o.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Postgres {
    /// `pg_ctl stop` in `mode`, waiting up to `secs`: whether the server is down.
    fn stop(&self, mode: &str, secs: u32) -> bool {
        let data = self.dir.join("data");
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&self.pg_ctl)
            .args(["-D", data.to_str().unwrap_or_default(), "-m", mode])
            .args(["-w", "-t", &secs.to_string(), "stop"])
            .output()
            .is_ok_and(|o| o.status.success())
            || !data.join("postmaster.pid").exists()
    }
}

impl Drop for Postgres {
    /// Stops the server and waits until it is gone, escalating when it does not stop, and only
    /// then removes its directory: a failed stop used to be ignored and the directory removed
    /// under a server that kept running.
    fn drop(&mut self) {
        if !self.stop("fast", 30) && !self.stop("immediate", 10) {
            // The postmaster's pid is the first line of its lock file.
            let pid = std::fs::read_to_string(self.dir.join("data").join("postmaster.pid"))
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
            if let Some(pid) = pid {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                let proc = PathBuf::from(format!("/proc/{pid}"));
                let deadline = Instant::now() + Duration::from_secs(10);
                while proc.exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free on 127.0.0.1 just now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// The test server's certificates in `dir`, made with the `openssl` command: `ca.crt` (key
/// `ca.key`), `server.crt` for DNS localhost and IP 127.0.0.1 signed by it, `server.key`
/// readable by the postgres user only, and `other-ca.crt`, a CA that signed nothing.
fn make_certificates(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command runs (scripts/setup.sh installs openssl)");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    for (name, cn) in [("ca", "sscard test CA"), ("other-ca", "another test CA")] {
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.crt"),
                ],
                &["-days", "2", "-subj", &format!("/CN={cn}")],
            ]
            .concat(),
        );
    }
    openssl(
        &[
            &["req", "-new"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    let key = dir.join("server.key");
    let chown = Command::new("chown")
        .args(["postgres:postgres", key.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(chown.success());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn pg_run(args: &[&str]) {
    let o = Command::new("runuser")
        .arg("-u")
        .arg("postgres")
        .arg("--")
        .args(args)
        .output()
        .expect("runuser");
    assert!(
        o.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Readers kept for the independent card and terminal of `tests/independent/` (scripts/setup.sh).
pub const READER_E0: &str = "Virtual PCD E 00 00";
pub const READER_E1: &str = "Virtual PCD E 00 01";
pub const READER_F0: &str = "Virtual PCD F 00 00";
pub const READER_F1: &str = "Virtual PCD F 00 01";
/// vpcd ports of readers E and F.
pub const PORT_E: u16 = 35971;
pub const PORT_F: u16 = 35973;

/// A file of `tests/independent/`.
pub fn independent(file: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/independent")).join(file)
}

/// Runs the independent terminal (`tests/independent/terminal.py`, written from PROFILE.md
/// alone) under Debian's Python with pyscard. Returns its output.
pub fn independent_terminal(args: &[&str]) -> Output {
    Command::new("/usr/bin/python3")
        .arg(independent("terminal.py"))
        .args(args)
        .output()
        .expect("/usr/bin/python3 runs (scripts/setup.sh installs python3-pyscard)")
}

/// The independent card (`tests/independent/card.py`, an SSC and a city PSAM written from
/// PROFILE.md alone) served to pcscd in readers E; stopped on drop.
pub struct IndependentCard {
    child: Child,
    /// What the card serves: its start-up JSON line (holder data, card id, algorithm).
    pub serves: serde_json::Value,
}

impl IndependentCard {
    pub fn start(args: &[&str]) -> Self {
        use std::io::BufRead;
        ensure_pcscd();
        await_no_card(&[READER_E0, READER_E1], "another card is served there");
        let mut child = Command::new("/usr/bin/python3")
            .arg(independent("card.py"))
            .args(["--port", &PORT_E.to_string()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("/usr/bin/python3 runs (scripts/setup.sh installs python3-pycryptodome)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("card.py prints what it serves");
        let serves = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("card.py start-up line is not JSON ({e}): {line:?}"));
        for r in [READER_E0, READER_E1] {
            wait_for(&format!("the independent card in {r}"), || card_present(r));
        }
        Self { child, serves }
    }
}

impl Drop for IndependentCard {
    fn drop(&mut self) {
        let departed = departures(&[READER_E0, READER_E1]);
        let _ = self.child.kill();
        let _ = self.child.wait();
        await_empty(&departed);
    }
}

/// The columns of a CSV batch (docs/batch.md).
pub const BATCH_HEADER: &str = "card_number,ssn,name,gender,nation,birthplace,birth_date,issue_date,expiry_date,pension,medical,medical_account";

/// Writes `n` valid, distinct holders (`sscard_perso::batch::synthetic(n, prefix)`: card numbers
/// `<prefix>0000001…` with their check characters, citizen IDs agreeing with gender and birth
/// date) as the CSV batch `DIR/batch.csv`.
pub fn write_batch(dir: &std::path::Path, n: usize, prefix: char) -> PathBuf {
    let mut text = format!("{BATCH_HEADER}\n");
    for (_, h) in sscard_perso::batch::synthetic(n, prefix) {
        text += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            h.card_number,
            h.ssn,
            h.name,
            h.gender,
            h.nation,
            h.birthplace,
            h.birth_date,
            h.issue_date,
            h.expiry_date,
            h.pension,
            h.medical,
            h.medical_account
        );
    }
    let path = dir.join("batch.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// The readers of [`PrivatePcscd`]: one vpcd reader, two slots, on ports 36013 and 36014 — the
/// ports [`vpcd_port`] gives bank Z, free of the system pcscd's readers (A to F).
pub const PRIVATE_READER_0: &str = "Virtual PCD Z 00 00";
pub const PRIVATE_READER_1: &str = "Virtual PCD Z 00 01";
const PRIVATE_PORT: u16 = 36013;

/// A pcscd of the test's own, so that a test may kill and restart it without touching the
/// system's pcscd (or the other tests using it): the real `/usr/sbin/pcscd` with the real vpcd
/// driver, serving only [`PRIVATE_READER_0`] and [`PRIVATE_READER_1`].
///
/// pcscd 1.9.9 always listens on `/run/pcscd/pcscd.comm` (and refuses to start while the pid in
/// `/run/pcscd/pcscd.pid` lives), so it runs in a mount namespace of its own (`unshare
/// --mount`) where a directory of the test is bound onto `/run/pcscd`; clients (this process
/// and every `sscard` it starts) find its socket there through `PCSCLITE_CSOCK_NAME`, which
/// this process sets for itself on the first start — libpcsclite reads it once, so a test
/// binary using a private pcscd uses no other. Killed (SIGKILL) on drop; panics (never skips)
/// when pcscd, the vpcd driver or `unshare` are missing.
pub struct PrivatePcscd {
    child: Option<Child>,
    dir: PathBuf,
}

impl PrivatePcscd {
    /// Starts the private pcscd and waits until its vpcd reader listens.
    pub fn start() -> Self {
        const DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
        for needed in ["/usr/sbin/pcscd", "/usr/bin/unshare", DRIVER] {
            assert!(
                std::path::Path::new(needed).exists(),
                "{needed} is missing (SSCARD_REQUIRE_PCSCD={}): the fault campaign runs its own pcscd with the vpcd driver; run scripts/setup.sh",
                std::env::var("SSCARD_REQUIRE_PCSCD").unwrap_or_default()
            );
        }
        let dir = std::env::temp_dir().join(format!("sscard-pcscd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::create_dir_all(dir.join("conf")).unwrap();
        std::fs::write(
            dir.join("conf").join("vpcd"),
            format!(
                "FRIENDLYNAME \"Virtual PCD Z\"\nDEVICENAME   /dev/null:{PRIVATE_PORT:#06X}\nLIBPATH      {DRIVER}\nCHANNELID    {PRIVATE_PORT:#06X}\n"
            ),
        )
        .unwrap();
        std::env::set_var("PCSCLITE_CSOCK_NAME", dir.join("run").join("pcscd.comm"));
        let mut pcscd = Self { child: None, dir };
        pcscd.restart();
        pcscd
    }

    /// Kills pcscd at once (SIGKILL), as a crash does: its clients lose it mid-call.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        assert!(
            !port_listening(PRIVATE_PORT),
            "the private pcscd still listens on {PRIVATE_PORT} after SIGKILL"
        );
    }

    /// Starts pcscd (again) and waits until its vpcd reader listens.
    pub fn restart(&mut self) {
        self.kill();
        // What a killed pcscd leaves: its socket and pid file.
        let run = self.dir.join("run");
        for f in ["pcscd.comm", "pcscd.pid"] {
            let _ = std::fs::remove_file(run.join(f));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("pcscd.log"))
            .unwrap();
        let child = Command::new("/usr/bin/unshare")
            .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
            .arg("mount --bind \"$1\" /run/pcscd && exec /usr/sbin/pcscd --foreground --config \"$2\"")
            .arg("sh")
            .arg(&run)
            .arg(self.dir.join("conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("unshare runs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(port_listening(PRIVATE_PORT) && run.join("pcscd.comm").exists()) {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "the private pcscd exited ({status}) (SSCARD_REQUIRE_PCSCD={}); its log: {}",
                    std::env::var("SSCARD_REQUIRE_PCSCD").unwrap_or_default(),
                    std::fs::read_to_string(self.dir.join("pcscd.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the private pcscd did not listen on {PRIVATE_PORT} within 10 s; its log: {}",
                std::fs::read_to_string(self.dir.join("pcscd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivatePcscd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether something listens on 127.0.0.1:`port` (from /proc/net/tcp: a probe connection
/// would take vpcd's only accept slot).
fn port_listening(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && format!("{} ", cols[1]).contains(&needle) && cols[3] == "0A"
            })
    })
}

/// Personalises one blank card served in reader 0 with the holder 张三 (`sscard perso run`,
/// journal and batch in `dir`), its APDUs written to `pcap`; the model is stopped before this
/// returns. For the tests that look at a whole personalisation's trace.
pub fn personalise_one_card_traced(dir: &Path, pcap: &Path) {
    let batch = dir.join("batch.csv");
    std::fs::write(
        &batch,
        format!(
            "{BATCH_HEADER}\nA12345674,11010519491231002X,张三,2,01,110105,19491231,20240101,20340101,01,01,1101000000012345\n"
        ),
    )
    .unwrap();
    let feed = dir.join("feed");
    let _m = ModelServer::start(
        &["--feeder", feed.to_str().unwrap(), "--blank", "1"],
        &[READER_0],
    );
    let journal = format!("sqlite:{}", dir.join("journal.db").display());
    let o = sscard(&[
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
        "2",
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The race behind "timed out waiting for a card in Virtual PCD 00 00", brought about on
    /// purpose. A client resets the card while it is out, between two of pcscd's polls (as
    /// reader-test's removal check does): pcscd's reset path polls vpcd itself, finds no card
    /// and shows the reader empty, while its event thread, which did not look, still believes
    /// the card in. The card comes back and pcscd keeps showing the reader empty. The model is
    /// then stopped at several points of pcscd's 400 ms poll and power-down cycle, and a new
    /// one started: each must be seen. With a wait for "empty" alone, the new model started
    /// at once, connected into vpcd's queue, and was taken by the next poll as the card the
    /// event thread believed there all along — invisible (8 of 20 in the repro).
    #[test]
    fn a_model_started_after_pcscd_showed_a_stale_empty_reader_is_seen() {
        let _g = exclusive();
        ensure_pcscd();
        for settle_ms in [450, 550, 650, 750, 850, 950] {
            let model = ModelServer::start(&["--no-psam"], &[READER_0]);
            let ctx = pcsc::Context::establish(pcsc::Scope::User).expect("pcscd");
            let name = std::ffi::CString::new(READER_0).unwrap();
            let mut card = ctx
                .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
                .expect("connect to the served card");
            assert_eq!(model.control("remove 0"), "ok");
            let deadline = Instant::now() + Duration::from_secs(10);
            // The model has closed its end; vpcd notices only when it next polls.
            while model.control("status").contains("connected") {
                assert!(Instant::now() < deadline, "the model kept its connection");
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(
                card.reconnect(
                    pcsc::ShareMode::Shared,
                    pcsc::Protocols::ANY,
                    pcsc::Disposition::ResetCard
                ),
                Err(pcsc::Error::NoSmartcard),
                "the reset finds the card out"
            );
            assert_eq!(model.control("insert 0"), "ok");
            drop(card);
            std::thread::sleep(Duration::from_millis(settle_ms));
            drop(model);
            let next = ModelServer::start(&["--no-psam"], &[READER_0]);
            drop(next);
        }
    }
}
