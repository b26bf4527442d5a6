//! A control socket for a running `sscard-model serve`: one command per line over a Unix
//! socket — `remove N`, `insert N` (N = reader slot, 0-based), `tear N W` (cut power at the W-th
//! persistent write from now), `status` — answered `ok`, a status line, or `error: …`.

use crate::vpcd::ServedCard;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Why a control command was not carried out (answered `error: …`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    #[error("missing reader slot: remove, insert and tear take N, the reader slot from 0")]
    MissingSlot,
    #[error("reader slot {word:?} is not a number: slots count from 0")]
    SlotNotANumber { word: String },
    #[error("no reader slot {slot} (serving {serving}, slots count from 0)")]
    NoSuchSlot { slot: usize, serving: usize },
    #[error("tear N W: W is the n-th write from now, 1 or more")]
    TearWrite,
    #[error("this card has no persistent writes to tear")]
    NothingToTear,
    #[error("unknown command {command:?} (remove N, insert N, tear N W, status)")]
    UnknownCommand { command: String },
    #[error("empty command (remove N, insert N, tear N W, status)")]
    Empty,
}

/// Runs one control command against the served cards: `ok`, a status line, or `error: …`.
pub fn execute(cards: &[ServedCard], line: &str) -> String {
    run(cards, line).unwrap_or_else(|e| format!("error: {e}"))
}

fn run(cards: &[ServedCard], line: &str) -> Result<String, ControlError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let slot = |w: Option<&&str>| -> Result<&ServedCard, ControlError> {
        let word = w.ok_or(ControlError::MissingSlot)?;
        let n: usize = word.parse().map_err(|_| ControlError::SlotNotANumber {
            word: word.to_string(),
        })?;
        cards.get(n).ok_or(ControlError::NoSuchSlot {
            slot: n,
            serving: cards.len(),
        })
    };
    match words.first().copied() {
        Some("remove") => slot(words.get(1)).map(|c| {
            c.remove();
            "ok".to_string()
        }),
        Some("insert") => slot(words.get(1)).map(|c| {
            c.insert();
            "ok".to_string()
        }),
        Some("tear") => slot(words.get(1)).and_then(|c| {
            let n: u64 = words
                .get(2)
                .and_then(|w| w.parse().ok())
                .filter(|n| *n > 0)
                .ok_or(ControlError::TearWrite)?;
            if c.card().lock().expect("card lock").arm_tearing(n) {
                Ok("ok".to_string())
            } else {
                Err(ControlError::NothingToTear)
            }
        }),
        Some("status") => Ok(cards
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "slot {i} port {} {} {} apdus {}",
                    c.port(),
                    if c.is_inserted() {
                        "inserted"
                    } else {
                        "removed"
                    },
                    if c.is_connected() {
                        "connected"
                    } else {
                        "waiting"
                    },
                    c.apdu_count()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")),
        Some(other) => Err(ControlError::UnknownCommand {
            command: other.into(),
        }),
        None => Err(ControlError::Empty),
    }
}

/// Listens on `path` until the process ends.
pub fn listen(path: &Path, cards: Arc<Mutex<Vec<ServedCard>>>) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut writer = match stream.try_clone() {
                Ok(w) => w,
                Err(_) => continue,
            };
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let answer = execute(&cards.lock().expect("cards lock"), &line);
                if writeln!(writer, "{answer}").is_err() {
                    break;
                }
            }
        }
    });
    Ok(())
}
