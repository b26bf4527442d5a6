//! Serving a card to pcscd through vsmartcard's vpcd driver.
//!
//! The card side connects to pcscd's vpcd port (35963 for "Virtual PCD 00 00", 35964 for
//! "… 00 01"). Every message is a 2-byte big-endian length and a payload; a 1-byte payload is a
//! control code (power off, power on, reset, get ATR), anything longer is a command APDU.
//! Closing the connection is how a card is removed; reconnecting inserts it again.
//!
//! A served card can be armed with one [`Fault`] at its n-th APDU from now (the control socket's
//! `pull`, `lose` and `hold`): the card leaves the reader before or after carrying the APDU out,
//! its answer is lost on the way back, or it thinks for a while first. The fault campaign
//! (`tests/tests/faults.rs`) walks them over every APDU of a flow.

use crate::card::SharedCard;
use rand::Rng;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub const CTRL_OFF: u8 = 0x00;
pub const CTRL_ON: u8 = 0x01;
pub const CTRL_RESET: u8 = 0x02;
pub const CTRL_ATR: u8 = 0x04;

/// How to serve one card.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub host: String,
    pub port: u16,
    /// Added before every response: simulates a real card's processing time.
    pub latency: Duration,
    /// Wait between connection attempts while pcscd is away.
    pub reconnect_delay: Duration,
    /// Probability (0..1) that an APDU is answered `6F00` without being processed.
    pub fault_rate: f64,
    /// Simulates a faulty reader: one byte of every APDU longer than this is flipped on the
    /// way to the card.
    pub corrupt_over: Option<usize>,
}

impl ServeOptions {
    pub fn port(port: u16) -> Self {
        Self {
            host: "127.0.0.1".into(),
            port,
            latency: Duration::ZERO,
            reconnect_delay: Duration::from_millis(200),
            fault_rate: 0.0,
            corrupt_over: None,
        }
    }
}

/// What happens to a card at the APDU a fault is armed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The card leaves the reader as the APDU arrives: it is never carried out, never answered
    /// (`pull N K`, `pull N K before`). The card stays out until `insert N`.
    PullBefore,
    /// The card carries the APDU out, then leaves the reader before answering (`pull N K
    /// after`). The card stays out until `insert N`.
    PullAfter,
    /// The card carries the APDU out and the answer is lost: the reader's connection drops
    /// and the card comes back at once, as after a contact bounce (`lose N K`).
    LoseResponse,
    /// The card thinks for this long before it carries the APDU out and answers (`hold N K
    /// MS`): a slow card, or time for a test to pull the floor from under the command.
    Hold(Duration),
}

/// A fault armed for one APDU: the value of the card's APDU counter that fires it.
#[derive(Clone, Copy, Debug)]
struct Armed {
    at: u64,
    fault: Fault,
}

/// How long one attempt to connect to vpcd may take before the card knocks again.
///
/// vpcd listens with a backlog of 0 and accepts only when it polls the reader (every 400 ms)
/// and holds no card: while another connection waits in that one-place queue (a card that left
/// and is not yet seen gone, a card that came back), a new connection's SYN is dropped, and
/// the kernel's own retransmissions come 1, 3, 7 and 15 s later — so a card knocking just
/// after the place frees could wait 8 s more for nothing. Giving up after this long and
/// connecting again keeps the wait within a poll or two of the place freeing.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Flags {
    removed: AtomicBool,
    connected: AtomicBool,
    /// Connection attempts so far (each at most [`CONNECT_TIMEOUT`]).
    attempts: AtomicU64,
    stop: AtomicBool,
    apdus: AtomicU64,
    armed: Mutex<Option<Armed>>,
    /// Faults fired so far.
    fired: AtomicU64,
}

/// A card being served; dropping it stops serving and removes the card.
pub struct ServedCard {
    card: SharedCard,
    flags: Arc<Flags>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl ServedCard {
    pub fn card(&self) -> &SharedCard {
        &self.card
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// Takes the card out of the reader (closes the connection).
    pub fn remove(&self) {
        self.flags.removed.store(true, Ordering::SeqCst);
    }
    /// Puts the card back.
    pub fn insert(&self) {
        self.flags.removed.store(false, Ordering::SeqCst);
    }
    pub fn is_inserted(&self) -> bool {
        !self.flags.removed.load(Ordering::SeqCst)
    }
    /// Whether pcscd is connected to this card now.
    pub fn is_connected(&self) -> bool {
        self.flags.connected.load(Ordering::SeqCst)
    }
    /// How many times the card tried to connect to vpcd so far.
    pub fn connect_attempts(&self) -> u64 {
        self.flags.attempts.load(Ordering::SeqCst)
    }
    pub fn apdu_count(&self) -> u64 {
        self.flags.apdus.load(Ordering::SeqCst)
    }
    /// Arms `fault` for the `nth` APDU from now (1 = the next one), replacing any fault armed
    /// before. Returns false (nothing armed) for `nth` 0.
    pub fn arm(&self, nth: u64, fault: Fault) -> bool {
        if nth == 0 {
            return false;
        }
        let mut armed = self.flags.armed.lock().expect("fault lock");
        // Counted under the lock the vpcd thread takes before it counts an APDU.
        let at = self.flags.apdus.load(Ordering::SeqCst) + nth;
        *armed = Some(Armed { at, fault });
        true
    }
    /// The fault still waiting for its APDU, if any, and how many APDUs from now.
    pub fn armed(&self) -> Option<(Fault, u64)> {
        let armed = self.flags.armed.lock().expect("fault lock");
        armed.map(|a| (a.fault, a.at - self.flags.apdus.load(Ordering::SeqCst)))
    }
    /// Faults fired so far.
    pub fn faults_fired(&self) -> u64 {
        self.flags.fired.load(Ordering::SeqCst)
    }
    pub fn stop(&mut self) {
        self.flags.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServedCard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves `card` on `opts.port` in a background thread, reconnecting whenever pcscd restarts.
pub fn serve(card: SharedCard, opts: ServeOptions) -> ServedCard {
    let flags = Arc::new(Flags::default());
    let (c, f, port) = (card.clone(), flags.clone(), opts.port);
    let thread = std::thread::Builder::new()
        .name(format!("vpcd-{port}"))
        .spawn(move || run(c, f, opts))
        .expect("spawn vpcd thread");
    ServedCard {
        card,
        flags,
        port,
        thread: Some(thread),
    }
}

fn run(card: SharedCard, flags: Arc<Flags>, opts: ServeOptions) {
    while !flags.stop.load(Ordering::SeqCst) {
        if flags.removed.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        flags.attempts.fetch_add(1, Ordering::SeqCst);
        let stream = match connect(&opts) {
            Ok(s) => s,
            // The SYN was dropped (vpcd's queue is taken) and the attempt already waited:
            // knock again at once rather than after the kernel's growing back-off.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
            // Nothing listens (pcscd away) or the host does not resolve: wait, then retry.
            Err(_) => {
                std::thread::sleep(opts.reconnect_delay);
                continue;
            }
        };
        tracing::info!(port = opts.port, "connected to pcscd");
        flags.connected.store(true, Ordering::SeqCst);
        let result = session(&card, &flags, &opts, stream);
        flags.connected.store(false, Ordering::SeqCst);
        card.lock().expect("card lock").power_off();
        if let Err(e) = result {
            tracing::info!(port = opts.port, "connection ended: {e}");
            std::thread::sleep(opts.reconnect_delay);
        }
    }
}

/// One attempt to connect to vpcd, bounded by [`CONNECT_TIMEOUT`] for each address.
fn connect(opts: &ServeOptions) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in (opts.host.as_str(), opts.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("{} resolves to no address", opts.host),
        )
    }))
}

/// Why a session ended on purpose.
fn ended(flags: &Flags) -> bool {
    flags.stop.load(Ordering::SeqCst) || flags.removed.load(Ordering::SeqCst)
}

/// Buffered reading of vpcd frames: one `read` usually brings a whole frame (or several).
struct Frames {
    buf: Vec<u8>,
    filled: usize,
    start: usize,
}

impl Frames {
    fn new() -> Self {
        Self {
            buf: vec![0; 2 + 65_535 + 2],
            filled: 0,
            start: 0,
        }
    }

    /// The next frame's payload range in `buf`, reading as needed; `None` when the session
    /// should end (stop or removal).
    fn next(
        &mut self,
        stream: &mut TcpStream,
        flags: &Flags,
    ) -> io::Result<Option<(usize, usize)>> {
        loop {
            let avail = self.filled - self.start;
            if avail >= 2 {
                let len =
                    u16::from_be_bytes([self.buf[self.start], self.buf[self.start + 1]]) as usize;
                if avail >= 2 + len {
                    let range = (self.start + 2, self.start + 2 + len);
                    self.start += 2 + len;
                    return Ok(Some(range));
                }
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.filled, 0);
                self.filled -= self.start;
                self.start = 0;
            }
            if ended(flags) {
                return Ok(None);
            }
            match stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "pcscd closed the connection",
                    ))
                }
                Ok(n) => {
                    self.filled += n;
                    // vpcd writes the length and the APDU separately; with Nagle on its side, a
                    // delayed ACK from ours would hold every APDU ~40 ms. Acknowledge at once
                    // (Linux leaves quick-ACK mode again, so set it after every read).
                    let _ = socket2::SockRef::from(&*stream).set_quickack(true);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A `pull` fault fired: the card is out of the reader (until `insert`), the APDU unanswered.
fn pulled(flags: &Flags, stream: &TcpStream, when: &str) -> io::Result<()> {
    flags.removed.store(true, Ordering::SeqCst);
    let _ = stream.shutdown(Shutdown::Both);
    tracing::info!("fault: card pulled {when} carrying out an APDU");
    Ok(())
}

/// Writes one frame in a single write, so pcscd never sees half a message.
pub fn write_frame(stream: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u16::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame over 65535 bytes"))?;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

fn session(
    card: &SharedCard,
    flags: &Flags,
    opts: &ServeOptions,
    mut stream: TcpStream,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut rng = rand::thread_rng();
    let mut frames = Frames::new();
    loop {
        let Some((from, to)) = frames.next(&mut stream, flags)? else {
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        };
        let msg = &frames.buf[from..to];
        let mut card = card.lock().expect("card lock");
        match msg[..] {
            [CTRL_OFF] => card.power_off(),
            [CTRL_ON] | [CTRL_RESET] => card.reset(),
            [CTRL_ATR] => write_frame(&mut stream, &card.atr())?,
            [_] => tracing::warn!("unknown vpcd control byte {:02X}", msg[0]),
            _ => {
                let fault = {
                    let mut armed = flags.armed.lock().expect("fault lock");
                    let n = flags.apdus.fetch_add(1, Ordering::SeqCst) + 1;
                    match *armed {
                        Some(a) if a.at == n => {
                            *armed = None;
                            flags.fired.fetch_add(1, Ordering::SeqCst);
                            Some(a.fault)
                        }
                        _ => None,
                    }
                };
                match fault {
                    Some(Fault::PullBefore) => return pulled(flags, &stream, "before"),
                    Some(Fault::Hold(d)) => std::thread::sleep(d),
                    _ => {}
                }
                if !opts.latency.is_zero() {
                    std::thread::sleep(opts.latency);
                }
                let response = if opts.fault_rate > 0.0 && rng.gen_bool(opts.fault_rate.min(1.0)) {
                    Some(vec![0x6F, 0x00])
                } else {
                    match opts.corrupt_over {
                        Some(limit) if msg.len() > limit => {
                            let mut bad = msg.to_vec();
                            let i = bad.len() / 2;
                            bad[i] ^= 0x01;
                            card.transmit(&bad)
                        }
                        _ => card.transmit(msg),
                    }
                };
                match fault {
                    Some(Fault::PullAfter) => return pulled(flags, &stream, "after"),
                    Some(Fault::LoseResponse) => {
                        let _ = stream.shutdown(Shutdown::Both);
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "fault: the answer was lost, the card comes back",
                        ));
                    }
                    _ => {}
                }
                match response {
                    Some(r) => write_frame(&mut stream, &r)?,
                    // A mute card: the reader sees the card go away.
                    None => {
                        let _ = stream.shutdown(Shutdown::Both);
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "card lost power",
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::shared;
    use sscard_core::card::Card;
    use std::time::Instant;

    /// Waits (up to a minute, then panics) until `cond` holds: a wait, not a speed measure.
    fn eventually(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A listener as vpcd's: backlog 0, so one connection waiting to be accepted fills it.
    fn vpcd_like() -> (socket2::Socket, u16) {
        use socket2::{Domain, Socket, Type};
        let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        l.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        l.listen(0).unwrap();
        // accept() honours the receive timeout on Linux: a broken test fails, never hangs.
        l.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let port = l.local_addr().unwrap().as_socket().unwrap().port();
        (l, port)
    }

    #[test]
    fn a_card_knocks_again_while_vpcds_one_place_queue_is_taken_and_gets_in_once_it_frees() {
        let (listener, port) = vpcd_like();
        // The place is taken: a previous card's connection that vpcd has not accepted yet.
        let previous = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (card, _) = crate::test_pair(sscard_core::crypto::Algorithm::Tdes);
        let atr = card.atr();
        let mut opts = ServeOptions::port(port);
        opts.reconnect_delay = Duration::from_millis(20);
        let served = serve(shared(card), opts);
        // Its SYNs are dropped; it does not sit in the kernel's back-off but tries again.
        eventually("three attempts while the queue is full", || {
            served.connect_attempts() >= 3
        });
        assert!(!served.is_connected());
        // vpcd polls: takes the previous card's connection and finds it gone.
        let (gone, _) = listener.accept().unwrap();
        drop(previous);
        drop(gone);
        // The card's next attempt gets the place; vpcd asks it for its ATR.
        let (s, _) = listener.accept().unwrap();
        let mut s: TcpStream = s.into();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write_frame(&mut s, &[CTRL_ATR]).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut answer = vec![0u8; u16::from_be_bytes(len).into()];
        s.read_exact(&mut answer).unwrap();
        assert_eq!(answer, atr);
        eventually("the card connected", || served.is_connected());
    }
}
