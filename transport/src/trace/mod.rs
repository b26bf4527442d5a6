//! A record of every APDU: who (card or PSAM, which reader), when, the bytes with secrets
//! masked, the status word and its meaning. A [`Trace`] is one set of sinks that several
//! connections share, so the card's and the PSAM's exchanges of one command land in the same
//! `--trace`, `--pcap` and `--trace-json` output, in the order they happened. [`read`] reads
//! the pcapng and JSON-lines files back (and other tools' ISO 14443 and USB CCID pcaps) for
//! `sscard trace decode`.

mod ccid;
mod json;
pub mod mask;
mod pcapng;
pub mod read;
mod t1;

pub use ccid::{LINKTYPE_USBPCAP, LINKTYPE_USB_LINUX, LINKTYPE_USB_LINUX_MMAPPED};
pub use json::JsonSink;
pub use pcapng::{PcapngSink, LINKTYPE_ISO_14443};
pub use read::{read_trace, RecordedPair, TraceFormat, TraceReadError};
pub use sscard_core::profile::commands::Secrecy;

use sscard_core::fsutil::create_private;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::commands::describe_bytes;
use sscard_core::status::StatusWord;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The byte written instead of a secret byte in binary traces (`*`).
pub const MASK_BYTE: u8 = 0x2A;

/// One command and its response, already masked: secrets never reach a sink.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The card's role (`card`, `psam`).
    pub role: &'static str,
    /// The reader's name.
    pub reader: String,
    pub at: SystemTime,
    pub elapsed: Duration,
    pub command: Vec<u8>,
    /// Which bytes of `command` are masked.
    pub command_masked: Vec<bool>,
    pub response: Vec<u8>,
    pub response_masked: Vec<bool>,
    pub sw: StatusWord,
}

impl Exchange {
    /// A masked exchange. Command data and response data become [`MASK_BYTE`] where `secrecy`
    /// says so, and the command data always for the commands that carry a PIN, a key or a
    /// cryptogram, so a raw APDU typed into `send` or a script is masked as well — a malformed
    /// one (a wrong Lc) from its fifth byte on ([`mask::secret_range`]).
    pub fn new(
        role: &'static str,
        reader: &str,
        command: &[u8],
        response: &[u8],
        secrecy: Secrecy,
        at: SystemTime,
        elapsed: Duration,
    ) -> Self {
        let secrecy = secrecy.union(describe_bytes(command).secrecy);
        let mut cmd = command.to_vec();
        let mut cmask = vec![false; cmd.len()];
        let secret = mask::secret_range(command, secrecy);
        cmd[secret.clone()].fill(MASK_BYTE);
        cmask[secret].fill(true);
        let mut resp = response.to_vec();
        let mut rmask = vec![false; resp.len()];
        if secrecy.response_data && resp.len() > 2 {
            let end = resp.len() - 2;
            resp[..end].fill(MASK_BYTE);
            rmask[..end].fill(true);
        }
        let sw = match response {
            [.., a, b] => StatusWord::new(*a, *b),
            _ => StatusWord(0),
        };
        Self {
            role,
            reader: reader.to_string(),
            at,
            elapsed,
            command: cmd,
            command_masked: cmask,
            response: resp,
            response_masked: rmask,
            sw,
        }
    }

    /// The response data (without the status word), masked bytes as `**`.
    pub fn response_data_hex(&self) -> String {
        let n = self.response.len().saturating_sub(2);
        masked_hex(&self.response[..n], &self.response_masked)
    }
}

/// Hex with masked bytes shown as `**`.
pub fn masked_hex(bytes: &[u8], masked: &[bool]) -> String {
    bytes
        .iter()
        .zip(masked.iter().chain(std::iter::repeat(&false)))
        .map(|(b, m)| if *m { "**".to_string() } else { to_hex(&[*b]) })
        .collect()
}

/// Receives exchanges.
pub trait TraceSink: Send {
    fn record(&mut self, exchange: &Exchange);
}

/// The sinks every connection of one command shares. Cloning shares them; [`Trace::off`] has
/// none and costs nothing per APDU.
#[derive(Clone, Default)]
pub struct Trace(Option<Arc<Mutex<Sinks>>>);

type Sinks = Vec<Box<dyn TraceSink>>;

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_on() {
            "Trace(on)"
        } else {
            "Trace(off)"
        })
    }
}

impl Trace {
    /// No trace.
    pub fn off() -> Self {
        Self(None)
    }

    /// A trace with these sinks (none: off).
    pub fn to(sinks: Vec<Box<dyn TraceSink>>) -> Self {
        if sinks.is_empty() {
            Self::off()
        } else {
            Self(Some(Arc::new(Mutex::new(sinks))))
        }
    }

    /// Whether any sink listens.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Hands an exchange to every sink.
    pub fn record(&self, e: &Exchange) {
        if let Some(sinks) = &self.0 {
            // A sink that panicked poisoned the lock; the trace still goes on.
            let mut sinks = sinks.lock().unwrap_or_else(|p| p.into_inner());
            sinks.iter_mut().for_each(|s| s.record(e));
        }
    }
}

/// A trace is a sink too: a command that needs the exchanges itself (`info --raw`) puts the
/// options' trace and its own [`MemorySink`] in one trace.
impl TraceSink for Trace {
    fn record(&mut self, exchange: &Exchange) {
        Trace::record(self, exchange);
    }
}

/// Keeps the (masked) exchanges in memory; clones share them.
#[derive(Clone, Default)]
pub struct MemorySink(Arc<Mutex<Vec<Exchange>>>);

impl MemorySink {
    /// The exchanges recorded so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl TraceSink for MemorySink {
    fn record(&mut self, exchange: &Exchange) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(exchange.clone());
    }
}

/// Human-readable lines: `card > command` and `card < response SW meaning (time)`.
pub struct TextSink<W: Write + Send> {
    out: W,
    timing: bool,
}

impl<W: Write + Send> TextSink<W> {
    pub fn new(out: W, timing: bool) -> Self {
        Self { out, timing }
    }
}

impl TextSink<std::io::LineWriter<std::fs::File>> {
    /// A text trace file at `path`, created private ([`create_private`]: mode 0600, a symbolic
    /// link at `path` refused), written a line at a time.
    pub fn create(path: &std::path::Path, timing: bool) -> std::io::Result<Self> {
        Ok(Self::new(
            std::io::LineWriter::new(create_private(path)?),
            timing,
        ))
    }
}

impl<W: Write + Send> TraceSink for TextSink<W> {
    fn record(&mut self, e: &Exchange) {
        let data = e.response_data_hex();
        let timing = if self.timing {
            format!(" ({:.1} ms)", e.elapsed.as_secs_f64() * 1000.0)
        } else {
            String::new()
        };
        let _ = writeln!(
            self.out,
            "{} > {}",
            e.role,
            masked_hex(&e.command, &e.command_masked)
        );
        let _ = writeln!(
            self.out,
            "{} < {data}{} {}{timing}",
            e.role,
            if data.is_empty() {
                e.sw.to_string()
            } else {
                format!(" {}", e.sw)
            },
            e.sw.meaning()
        );
        let _ = self.out.flush();
    }
}

/// Exchanges as `tracing` debug events: the command's header, the lengths and the status word,
/// never data — logs carry no personal data and no secrets at any level (`--trace` and the
/// files are the places to see data, masked).
pub struct LogSink;

impl TraceSink for LogSink {
    fn record(&mut self, e: &Exchange) {
        let header = to_hex(&e.command[..e.command.len().min(4)]);
        tracing::debug!(
            role = e.role,
            reader = %e.reader,
            header = %header,
            command_bytes = e.command.len(),
            response_bytes = e.response.len().saturating_sub(2),
            sw = %e.sw,
            micros = e.elapsed.as_micros() as u64,
            "apdu"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(command: &[u8], response: &[u8], secrecy: Secrecy) -> Exchange {
        Exchange::new(
            "card",
            "reader",
            command,
            response,
            secrecy,
            SystemTime::now(),
            Duration::ZERO,
        )
    }

    #[test]
    fn masks_command_and_response_data() {
        let e = ex(
            &[0, 0x20, 0, 0, 3, 0x12, 0x34, 0x56],
            &[0x90, 0],
            Secrecy::COMMAND_DATA,
        );
        assert_eq!(
            masked_hex(&e.command, &e.command_masked),
            "0020000003******"
        );
        let e = ex(
            &[0, 0x88, 0, 8, 1, 1, 0],
            &[1, 2, 0x90, 0],
            Secrecy::RESPONSE_DATA,
        );
        assert_eq!(masked_hex(&e.response, &e.response_masked), "****9000");
        assert_eq!(e.sw, StatusWord::OK);
    }

    #[test]
    fn pin_and_key_commands_are_masked_even_when_sent_as_public() {
        for (apdu, masked) in [
            ("0020000003802417", "0020000003******"),
            ("805E010007123456FF802417", "805E010007**************"),
            ("0082000A081122334455667788", "0082000A08****************"),
            ("84D4000803AABBCC", "84D4000803******"),
            // A VERIFY whose Lc is wrong is masked after its header, Lc included (the
            // sender may have put a PIN byte where Lc belongs).
            ("0020000004802417", "00200000********"),
            ("00200000802417", "00200000******"),
            ("0020000002802417", "0020000002******"),
        ] {
            let bytes = sscard_core::hexfmt::parse_hex(apdu).unwrap();
            let e = ex(&bytes, &[0x90, 0], Secrecy::PUBLIC);
            assert_eq!(masked_hex(&e.command, &e.command_masked), masked, "{apdu}");
        }
        let e = ex(&[0, 0xB2, 1, 0x2C, 0], &[0x90, 0], Secrecy::PUBLIC);
        assert_eq!(masked_hex(&e.command, &e.command_masked), "00B2012C00");
    }

    #[test]
    fn text_sink_prints_role_and_meaning() {
        let mut out = Vec::new();
        let e = ex(&[0, 0xA4, 4, 0, 0], &[0x6A, 0x82], Secrecy::PUBLIC);
        TextSink::new(&mut out, false).record(&e);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "card > 00A4040000\ncard < 6A82 file or application not found\n"
        );
    }

    #[test]
    fn one_trace_gathers_every_connection() {
        #[derive(Clone, Default)]
        struct Count(Arc<Mutex<Vec<&'static str>>>);
        impl TraceSink for Count {
            fn record(&mut self, e: &Exchange) {
                self.0.lock().unwrap().push(e.role);
            }
        }
        let seen = Count::default();
        let trace = Trace::to(vec![Box::new(seen.clone())]);
        let other = trace.clone();
        trace.record(&ex(&[0, 0xA4, 4, 0], &[0x90, 0], Secrecy::PUBLIC));
        let mut e = ex(&[0x80, 0x1A, 8, 1], &[0x90, 0], Secrecy::PUBLIC);
        e.role = "psam";
        other.record(&e);
        assert_eq!(*seen.0.lock().unwrap(), ["card", "psam"]);
        assert!(!Trace::off().is_on() && Trace::to(Vec::new()).0.is_none());
        // A trace inside a trace, beside a memory sink: both see every exchange.
        let memory = MemorySink::default();
        let outer = Trace::to(vec![Box::new(trace.clone()), Box::new(memory.clone())]);
        outer.record(&ex(&[0, 0xB2, 1, 0x2C, 0], &[0x90, 0], Secrecy::PUBLIC));
        assert_eq!(*seen.0.lock().unwrap(), ["card", "psam", "card"]);
        assert_eq!(memory.exchanges().len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn trace_files_are_private_and_not_written_through_a_link() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = std::env::temp_dir().join(format!("sscard-trace-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mode = |p: &std::path::Path| {
            std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
        };
        let e = ex(
            &[0, 0x84, 0, 0, 8],
            &[1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0],
            Secrecy::PUBLIC,
        );
        let (text, pcap, json) = (dir.join("t.txt"), dir.join("t.pcapng"), dir.join("t.jsonl"));
        // A trace from an earlier run, left world-readable, is narrowed.
        std::fs::write(&pcap, b"old").unwrap();
        std::fs::set_permissions(&pcap, std::fs::Permissions::from_mode(0o644)).unwrap();
        TextSink::create(&text, false).unwrap().record(&e);
        PcapngSink::create(&pcap).unwrap().record(&e);
        JsonSink::create(&json).unwrap().record(&e);
        for p in [&text, &pcap, &json] {
            assert_eq!(mode(p), 0o600, "{}", p.display());
        }
        assert_eq!(
            std::fs::read_to_string(&text).unwrap(),
            "card > 0084000008\ncard < 0102030405060708 9000 success\n"
        );
        assert_eq!(
            &std::fs::read(&pcap).unwrap()[..4],
            &[0x0A, 0x0D, 0x0D, 0x0A]
        );
        let victim = dir.join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        let link = dir.join("link.pcapng");
        symlink(&victim, &link).unwrap();
        assert!(PcapngSink::create(&link).is_err());
        assert!(JsonSink::create(&link).is_err());
        assert!(TextSink::create(&link, true).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
