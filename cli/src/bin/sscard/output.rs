//! Every command renders one result as text or as JSON (`--json`).

use serde_json::{json, Value};
use std::io::Write;

/// Prints a line on stdout; a closed pipe (`| head`) is not an error worth a panic.
pub fn line(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
    }
    pub fn json(&self) -> bool {
        self.json
    }
    /// Prints the result: the JSON value with `--json`, the text otherwise.
    pub fn result(&self, value: Value, text: impl FnOnce() -> String) {
        if self.json {
            line(&value.to_string());
        } else {
            let t = text();
            if !t.is_empty() {
                line(t.trim_end_matches('\n'));
            }
        }
    }
    /// One line on stderr (or one JSON object on stdout with `--json`).
    pub fn error(&self, e: &anyhow::Error, exit: i32, code: i32) {
        let message = format!("{e:#}").replace('\n', " ");
        if self.json {
            line(&json!({ "error": message, "code": code, "exit": exit }).to_string());
        } else {
            eprintln!("sscard: error: {message}");
        }
    }
}

/// A raw exchange as `send` and the shell's `apdu` show it: `> command` (secret data as `**`,
/// the trace's masking) and `< data SW meaning` (a secret answer, such as a raw DES CRYPT's
/// cryptogram or MAC, as `**`).
pub fn exchange(c: &sscard_core::apdu::Command, r: &sscard_core::apdu::Response) -> String {
    use sscard_transport::trace::{mask, Secrecy};
    let bytes = c.to_bytes().unwrap_or_default();
    let data = match r.data.is_empty() {
        true => String::new(),
        false => format!("{} ", mask::response_hex(&bytes, &r.data, Secrecy::PUBLIC)),
    };
    format!(
        "> {}\n< {data}{} {}",
        mask::command_hex(&bytes, Secrecy::PUBLIC),
        r.sw,
        r.sw.meaning()
    )
}
