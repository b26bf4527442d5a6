//! Traces as JSON lines (`--trace-json FILE`), one object per exchange, secrets masked:
//! `{"time": unix seconds, "role", "reader", "command", "response", "sw", "meaning", "micros"}`.

use super::{masked_hex, Exchange, TraceSink};
use sscard_core::fsutil::create_private;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::UNIX_EPOCH;

/// Writes exchanges as JSON lines.
pub struct JsonSink<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> JsonSink<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

impl JsonSink<BufWriter<File>> {
    /// A JSON-lines trace file at `path`, created private ([`create_private`]: mode 0600, a
    /// symbolic link at `path` refused): a trace shows which cards were used, and when.
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(Self::new(BufWriter::new(create_private(path)?)))
    }
}

impl<W: Write + Send> TraceSink for JsonSink<W> {
    fn record(&mut self, e: &Exchange) {
        let time = e.at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let line = serde_json::json!({
            "time": time.as_secs_f64(),
            "role": e.role,
            "reader": e.reader,
            "command": masked_hex(&e.command, &e.command_masked),
            "response": e.response_data_hex(),
            "sw": e.sw.to_string(),
            "meaning": e.sw.meaning(),
            "micros": e.elapsed.as_micros() as u64,
        });
        if let Err(err) = writeln!(self.out, "{line}").and_then(|()| self.out.flush()) {
            tracing::warn!("JSON trace: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Secrecy;
    use std::time::{Duration, SystemTime};

    #[test]
    fn one_object_per_exchange_with_secrets_masked() {
        let mut out = Vec::new();
        JsonSink::new(&mut out).record(&Exchange::new(
            "card",
            "Virtual PCD 00 00",
            &[0, 0x20, 0, 0, 3, 0x12, 0x34, 0x56],
            &[0x63, 0xC2],
            Secrecy::PUBLIC,
            SystemTime::now(),
            Duration::from_micros(7),
        ));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["command"], "0020000003******");
        assert_eq!(v["response"], "");
        assert_eq!(v["sw"], "63C2");
        assert_eq!(v["meaning"], "verification failed, 2 tries left");
        assert_eq!(
            (v["role"].as_str(), v["micros"].as_u64()),
            (Some("card"), Some(7))
        );
    }
}
