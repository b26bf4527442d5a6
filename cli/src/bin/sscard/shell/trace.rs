//! `trace on|raw|off`: the shell's connections always carry this one trace; while switched on
//! it prints each exchange on stdout, between the command's other output: decoded by the
//! profile's one decoder (`on`, as `sscard trace decode` shows it) or in hex (`raw`, as
//! `--trace` shows it). Secrets are masked either way: by the transport before any sink sees
//! the exchange, and by the decoder again.

use sscard_core::profile::decode::Decoder;
use sscard_transport::trace::{Exchange, TextSink, Trace, TraceSink};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// What `trace` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    Off = 0,
    /// One decoded line per exchange.
    Decoded = 1,
    /// The command and the answer in hex.
    Raw = 2,
}

impl TraceMode {
    /// The word that switches it (`trace on`).
    pub fn word(self) -> &'static str {
        match self {
            TraceMode::Off => "off",
            TraceMode::Decoded => "on",
            TraceMode::Raw => "raw",
        }
    }
}

/// The switch of the shell's trace.
#[derive(Clone, Default)]
pub struct Switch(Arc<AtomicU8>);

impl Switch {
    pub fn set(&self, mode: TraceMode) {
        self.0.store(mode as u8, Ordering::Relaxed)
    }

    fn mode(&self) -> TraceMode {
        match self.0.load(Ordering::Relaxed) {
            1 => TraceMode::Decoded,
            2 => TraceMode::Raw,
            _ => TraceMode::Off,
        }
    }

    /// The trace every connection of the shell is opened with.
    pub fn trace(&self) -> Trace {
        Trace::to(vec![Box::new(Switched {
            on: self.clone(),
            // No timings: a transcript of a script reads the same every run.
            out: TextSink::new(std::io::stdout(), false),
            decoder: Decoder::new(),
        })])
    }
}

struct Switched {
    on: Switch,
    out: TextSink<std::io::Stdout>,
    /// Follows every exchange, printed or not, so what is selected is known when `trace on`
    /// comes in the middle of a session.
    decoder: Decoder,
}

impl TraceSink for Switched {
    fn record(&mut self, e: &Exchange) {
        let decoded = self.decoder.decode_masked(
            e.role,
            &e.command,
            &e.command_masked,
            &e.response,
            &e.response_masked,
        );
        match self.on.mode() {
            TraceMode::Off => {}
            TraceMode::Decoded => crate::output::line(&decoded.to_string()),
            TraceMode::Raw => self.out.record(e),
        }
    }
}
