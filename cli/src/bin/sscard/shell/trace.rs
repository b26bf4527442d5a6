//! `trace on|off`: the shell's connections always carry this one trace; it prints each
//! exchange (masked by the transport, as `--trace` does) on stdout, between the command's
//! other output, while switched on.

use sscard_transport::trace::{Exchange, TextSink, Trace, TraceSink};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The switch of the shell's trace.
#[derive(Clone, Default)]
pub struct Switch(Arc<AtomicBool>);

impl Switch {
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed)
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The trace every connection of the shell is opened with.
    pub fn trace(&self) -> Trace {
        Trace::to(vec![Box::new(Switched {
            on: self.clone(),
            // No timings: a transcript of a script reads the same every run.
            out: TextSink::new(std::io::stdout(), false),
        })])
    }
}

struct Switched {
    on: Switch,
    out: TextSink<std::io::Stdout>,
}

impl TraceSink for Switched {
    fn record(&mut self, e: &Exchange) {
        if self.on.is_on() {
            self.out.record(e)
        }
    }
}
