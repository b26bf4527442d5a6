use super::{percentile, Latency, Report};
use crate::script::run::Outcome;
use sscard_core::apdu::Command;
use sscard_core::status::StatusWord;
use sscard_transport::{Budget, Connection, Transaction, TransportError};
use std::time::{Duration, Instant};

/// The transmit budget of one check (see [`Runner::in_tx`]).
const QUALIFY_BUDGET: Budget = Budget::new(2048, 1 << 20);

/// The loopback application's AID.
pub const LOOPBACK_AID: [u8; 9] = [0xF0, 0x53, 0x53, 0x43, 0x41, 0x52, 0x44, 0x4C, 0x42];

/// The largest ECHO that the vpcd protocol carries (65 535-byte frames).
pub const MAX_ECHO: usize = 65_535 - 9;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// An error of a callback the caller gives (the model's control socket, an operator prompt).
pub type CallbackError = Box<dyn std::error::Error + Send + Sync>;

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckFailure {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("answered {0}")]
    Answered(StatusWord),
    #[error("{got} bytes back, {expected} expected; first difference at byte {at}")]
    Data {
        got: usize,
        expected: usize,
        at: usize,
    },
    #[error("{context}: {source}")]
    In {
        context: String,
        source: Box<CheckFailure>,
    },
    #[error("no extended APDU works (256-byte ECHO failed)")]
    NoExtended,
    #[error("got {len} bytes, SW {sw}")]
    Response { len: usize, sw: StatusWord },
    #[error("{ms} ms delay answered after {took} ms")]
    TooFast { ms: u16, took: u128 },
    #[error("the card went away and there is no way to reconnect")]
    NoReconnect,
    #[error("could not {what} the card: {source}")]
    Callback {
        what: &'static str,
        source: CallbackError,
    },
    #[error("the removed card kept answering for 2000 APDUs")]
    KeptAnswering,
    #[error("{0}")]
    Unplug(CallbackError),
}

impl CheckFailure {
    fn within(self, context: impl Into<String>) -> Self {
        Self::In {
            context: context.into(),
            source: Box::new(self),
        }
    }
}

/// One check and its figure.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
    /// The measured figure ("max extended ECHO 65533 bytes", "p99 0.21 ms", …).
    pub figure: String,
    pub apdus: u64,
    pub duration: Duration,
}

/// Connects to the reader again after the card came back.
pub type Reconnect = Box<dyn FnMut() -> Result<Connection, TransportError>>;

/// How to take the card out and put it back during the removal check.
pub enum Removal {
    /// Not possible here: the check is reported skipped with the reason.
    Unavailable(String),
    /// Remove (`false`) and insert (`true`) through a callback (the model's control socket, or
    /// an operator).
    Callback(Box<dyn FnMut(bool) -> Result<(), CallbackError>>),
}

/// What to run.
pub struct Options {
    pub full: bool,
    pub removal: Removal,
    /// Reconnects to the reader after the card came back.
    pub reconnect: Option<Reconnect>,
    /// Asks for the reader to be unplugged and plugged back and reports what the PnP
    /// notification saw.
    pub unplug: Option<Box<dyn FnMut() -> Result<String, CallbackError>>>,
}

/// Sends `apdu` as it is and expects `9000` with `data`.
fn expect(tx: &mut Transaction<'_>, apdu: &[u8], data: &[u8]) -> Result<(), CheckFailure> {
    let r = tx.transmit_raw(apdu)?;
    if r.sw != StatusWord::OK {
        return Err(CheckFailure::Answered(r.sw));
    }
    if r.data != data {
        let at = r
            .data
            .iter()
            .zip(data)
            .position(|(a, b)| a != b)
            .unwrap_or(r.data.len().min(data.len()));
        return Err(CheckFailure::Data {
            got: r.data.len(),
            expected: data.len(),
            at,
        });
    }
    Ok(())
}

const NOOP: [u8; 4] = [0x80, 0x10, 0, 0];

struct Runner<'a> {
    conn: &'a mut Connection,
    /// A new connection after the card went away (binary search past the reader's limit,
    /// removal check).
    replacement: Option<Connection>,
    reconnect: Option<Reconnect>,
    checks: Vec<Check>,
}

impl Runner<'_> {
    fn conn(&mut self) -> &mut Connection {
        match &mut self.replacement {
            Some(c) => c,
            None => self.conn,
        }
    }

    fn apdus(&mut self) -> u64 {
        self.conn.apdu_count() + self.replacement.as_ref().map_or(0, |c| c.apdu_count())
    }

    /// Runs `f` in one transaction on the current connection.
    fn in_tx<T>(
        &mut self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, CheckFailure>,
    ) -> Result<T, CheckFailure> {
        let mut tx = self.conn().transaction()?;
        // A check is one flow of its own size: up to 510 APDUs (case 3, `--full`, twice that
        // on a T=0 reader) or one 64 KiB echo, never the few of a card flow.
        tx.set_budget(QUALIFY_BUDGET);
        f(&mut tx)
    }

    /// One APDU in a transaction of its own (where the card may go away between two).
    fn raw(&mut self, apdu: &[u8]) -> Result<(), CheckFailure> {
        self.in_tx(|tx| tx.transmit_raw(apdu).map(drop).map_err(Into::into))
    }

    /// After a transport error: connect again and select the loopback application.
    fn recover(&mut self) -> Result<(), CheckFailure> {
        let f = self.reconnect.as_mut().ok_or(CheckFailure::NoReconnect)?;
        let mut c = f()?;
        c.transaction()?.transmit_raw(&select_apdu())?;
        self.replacement = Some(c);
        Ok(())
    }

    fn check(&mut self, name: &str, f: impl FnOnce(&mut Self) -> Result<String, CheckFailure>) {
        let (start, before) = (Instant::now(), self.apdus());
        let (outcome, figure) = match f(self) {
            Ok(fig) => (Outcome::Passed, fig),
            Err(e) => (Outcome::Failed(e.to_string()), e.to_string()),
        };
        let apdus = self.apdus() - before;
        self.checks.push(Check {
            name: name.into(),
            outcome,
            figure,
            apdus,
            duration: start.elapsed(),
        });
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.checks.push(Check {
            name: name.into(),
            outcome: Outcome::Skipped(why.into()),
            figure: why.into(),
            apdus: 0,
            duration: Duration::ZERO,
        });
    }
}

fn select_apdu() -> Vec<u8> {
    let mut select = vec![0x00, 0xA4, 0x04, 0x00, LOOPBACK_AID.len() as u8];
    select.extend_from_slice(&LOOPBACK_AID);
    select
}

fn short(cla_ins: [u8; 2], data: &[u8], le: Option<u8>) -> Vec<u8> {
    let mut v = vec![cla_ins[0], cla_ins[1], 0, 0];
    if !data.is_empty() {
        v.push(data.len() as u8);
        v.extend_from_slice(data);
    }
    if let Some(le) = le {
        v.push(le);
    }
    v
}

fn extended_echo(n: usize) -> Vec<u8> {
    let mut v = vec![0x80, 0x16, 0, 0, 0, (n >> 8) as u8, n as u8];
    v.extend(pattern(n));
    v.extend_from_slice(&[0, 0]);
    v
}

/// Runs the qualification on the card of `conn` (it must hold the loopback application). Each
/// check runs in a transaction of its own.
pub fn run(conn: &mut Connection, reader: &str, mut opts: Options) -> Report {
    let start = Instant::now();
    let mut r = Runner {
        conn,
        replacement: None,
        reconnect: opts.reconnect.take(),
        checks: Vec::new(),
    };
    let select = select_apdu();
    r.check("select the loopback application", |r| {
        r.in_tx(|tx| expect(tx, &select, &[]))
            .map(|_| "9000".into())
    });
    if matches!(r.checks[0].outcome, Outcome::Failed(_)) {
        return Report {
            reader: reader.into(),
            checks: r.checks,
            latency: Vec::new(),
            duration: start.elapsed(),
        };
    }
    r.check("case 1 (NOOP)", |r| {
        r.in_tx(|tx| expect(tx, &NOOP, &[])).map(|_| "9000".into())
    });
    let lengths: Vec<usize> = if opts.full {
        (1..=255).collect()
    } else {
        vec![1, 2, 16, 127, 128, 200, 254, 255]
    };
    let les: Vec<usize> = if opts.full {
        (1..=256).collect()
    } else {
        vec![1, 2, 16, 128, 255, 256]
    };
    r.check(
        &format!(
            "case 2 (RETURN) Le {}",
            if opts.full { "1..256" } else { "sample" }
        ),
        |r| {
            r.in_tx(|tx| {
                for &n in &les {
                    expect(
                        tx,
                        &short([0x80, 0x12], &[], Some((n % 256) as u8)),
                        &pattern(n),
                    )
                    .map_err(|e| e.within(format!("Le {n}")))?;
                }
                Ok(format!("{} lengths", les.len()))
            })
        },
    );
    r.check(
        &format!(
            "case 3 (ACCEPT, checked with LAST) Lc {}",
            if opts.full { "1..255" } else { "sample" }
        ),
        |r| {
            r.in_tx(|tx| {
                for &n in &lengths {
                    let cmd = short([0x80, 0x14], &pattern(n), None);
                    expect(tx, &cmd, &[]).map_err(|e| e.within(format!("Lc {n}")))?;
                    expect(tx, &[0x80, 0x1A, 0, 0, 0], &cmd)
                        .map_err(|e| e.within(format!("Lc {n}, as received")))?;
                }
                Ok(format!("{} lengths", lengths.len()))
            })
        },
    );
    r.check(
        &format!(
            "case 4 (ECHO) Lc {}",
            if opts.full { "1..255" } else { "sample" }
        ),
        |r| {
            r.in_tx(|tx| {
                for &n in &lengths {
                    expect(tx, &short([0x80, 0x16], &pattern(n), Some(0)), &pattern(n))
                        .map_err(|e| e.within(format!("Lc {n}")))?;
                }
                Ok(format!("{} lengths", lengths.len()))
            })
        },
    );
    r.check("extended length (largest ECHO, binary search)", |r| {
        // A size past the reader's limit may cost the connection: reconnect and go on. Each
        // size goes in a transaction of its own for that reason.
        let works = |r: &mut Runner, n: usize| match r
            .in_tx(|tx| expect(tx, &extended_echo(n), &pattern(n)))
        {
            Ok(()) => true,
            Err(_) => {
                if r.raw(&NOOP).is_err() {
                    let _ = r.recover();
                }
                false
            }
        };
        if !works(r, 256) {
            return Err(CheckFailure::NoExtended);
        }
        // The vpcd protocol frames at most 65 535 bytes: an ECHO command of Lc + 9 bytes must
        // fit. Larger frames desynchronise pcscd's vpcd driver, so the search stops there.
        let (mut lo, mut hi) = (256usize, MAX_ECHO);
        if works(r, hi) {
            return Ok(format!(
                "max extended ECHO {hi} bytes (the largest the vpcd protocol carries)"
            ));
        }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if works(r, mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(format!("max extended ECHO {lo} bytes"))
    });
    r.check("extended Le (RETURN 4096)", |r| {
        r.in_tx(|tx| expect(tx, &[0x80, 0x12, 0, 0, 0, 0x10, 0x00], &pattern(4096)))
            .map(|_| "4096 bytes".into())
    });
    r.check("T=0 61xx answered with GET RESPONSE", |r| {
        let resp =
            r.in_tx(|tx| Ok(tx.transmit(&Command::new(0x80, 0x1C, 0x01, 0x20).with_le(256))?))?;
        if resp.data != pattern(0x20) || !resp.is_success() {
            return Err(CheckFailure::Response {
                len: resp.data.len(),
                sw: resp.sw,
            });
        }
        Ok("61 20 → GET RESPONSE 32 bytes".into())
    });
    r.check("T=0 6Cxx answered with the right Le", |r| {
        let resp =
            r.in_tx(|tx| Ok(tx.transmit(&Command::new(0x80, 0x1C, 0x02, 0x10).with_le(4))?))?;
        if resp.data != pattern(0x10) || !resp.is_success() {
            return Err(CheckFailure::Response {
                len: resp.data.len(),
                sw: resp.sw,
            });
        }
        Ok("6C 10 → resent with Le 16".into())
    });
    let mut latency = Vec::new();
    let samples = if opts.full { 300 } else { 50 };
    for size in [0usize, 16, 64, 128, 255] {
        r.check(&format!("latency ECHO {size} bytes"), |r| {
            let cmd = if size == 0 {
                NOOP.to_vec()
            } else {
                short([0x80, 0x16], &pattern(size), Some(0))
            };
            let want = if size == 0 { Vec::new() } else { pattern(size) };
            let (mut times, rate) = r.in_tx(|tx| {
                let mut times = Vec::with_capacity(samples);
                let all = Instant::now();
                for _ in 0..samples {
                    let t0 = Instant::now();
                    expect(tx, &cmd, &want)?;
                    times.push(t0.elapsed());
                }
                Ok((times, samples as f64 / all.elapsed().as_secs_f64()))
            })?;
            times.sort();
            let l = Latency {
                bytes: size,
                samples,
                p50_ms: percentile(&times, 50.0),
                p95_ms: percentile(&times, 95.0),
                p99_ms: percentile(&times, 99.0),
                max_ms: percentile(&times, 100.0),
                apdus_per_s: rate,
            };
            let fig = format!(
                "p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms, {:.0} APDU/s",
                l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.apdus_per_s
            );
            latency.push(l);
            Ok(fig)
        });
    }
    let delays: &[u16] = if opts.full {
        &[100, 500, 1000, 2000, 5000]
    } else {
        &[100, 500, 1000]
    };
    r.check("delayed answers", |r| {
        r.in_tx(|tx| {
            for &ms in delays {
                let t0 = Instant::now();
                expect(tx, &[0x80, 0x18, (ms >> 8) as u8, ms as u8], &[])
                    .map_err(|e| e.within(format!("{ms} ms")))?;
                let took = t0.elapsed().as_millis();
                if took < ms as u128 {
                    return Err(CheckFailure::TooFast { ms, took });
                }
            }
            Ok(format!(
                "answered after up to {} ms",
                delays.last().unwrap_or(&0)
            ))
        })
    });
    match &mut opts.removal {
        Removal::Unavailable(why) => {
            let why = why.clone();
            r.skip("card removal and reinsertion during a loop", &why);
        }
        Removal::Callback(cb) => {
            let cb = cb.as_mut();
            r.check("card removal and reinsertion during a loop", |r| {
                for i in 0..10 {
                    r.raw(&NOOP)
                        .map_err(|e| e.within(format!("before the removal, APDU {i}")))?;
                }
                cb(false).map_err(|source| CheckFailure::Callback {
                    what: "remove",
                    source,
                })?;
                let mut seen = None;
                for i in 1..=2000 {
                    if let Err(e) = r.raw(&NOOP) {
                        seen = Some((i, e));
                        break;
                    }
                }
                cb(true).map_err(|source| CheckFailure::Callback {
                    what: "insert",
                    source,
                })?;
                let (n, e) = seen.ok_or(CheckFailure::KeptAnswering)?;
                r.recover().map_err(|e| e.within("after reinsertion"))?;
                r.raw(&NOOP).map_err(|e| e.within("the reinserted card"))?;
                Ok(format!(
                    "removal seen at APDU {n} ({e}); card back and answering"
                ))
            });
        }
    }
    match &mut opts.unplug {
        None => r.skip(
            "reader unplug and replug seen by monitor",
            "needs --interactive and a reader that can be unplugged (a vpcd reader cannot)",
        ),
        Some(watch) => {
            let watch = watch.as_mut();
            r.check("reader unplug and replug seen by monitor", |_| {
                watch().map_err(CheckFailure::Unplug)
            });
        }
    }
    Report {
        reader: reader.into(),
        checks: r.checks,
        latency,
        duration: start.elapsed(),
    }
}
