//! A control socket for a running `sscard-model serve`: one command per line over a Unix
//! socket — `remove N`, `insert N` (N = reader slot, 0-based), `tear N W` (cut power at the W-th
//! persistent write from now), the APDU faults of [`Fault`] — `pull N K [before|after]` (the
//! card leaves the reader at its K-th APDU from now, before or after carrying it out), `lose N
//! K` (the K-th APDU is carried out, its answer lost), `hold N K MS` (the card thinks MS
//! milliseconds before the K-th) — and `status` — answered `ok`, a status line, or `error: …`.
//! One fault waits per slot; arming another replaces it.

use crate::vpcd::{Fault, ServedCard};
use std::io::{BufRead, BufReader, Read, Write};
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
    #[error("{command} N K: K is the n-th APDU from now, 1 or more")]
    FaultApdu { command: &'static str },
    #[error("pull N K [before|after]: {word:?} is neither before nor after")]
    PullWhen { word: String },
    #[error("hold N K MS: MS is the time the card thinks, in milliseconds (0 to 600000)")]
    HoldTime,
    #[error("unknown command {command:?} (remove N, insert N, tear N W, pull N K [before|after], lose N K, hold N K MS, status)")]
    UnknownCommand { command: String },
    #[error("empty command (remove N, insert N, tear N W, pull N K [before|after], lose N K, hold N K MS, status)")]
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
        Some(word @ ("pull" | "lose" | "hold")) => slot(words.get(1)).and_then(|c| {
            let command = match word {
                "pull" => "pull",
                "lose" => "lose",
                _ => "hold",
            };
            let nth: u64 = words
                .get(2)
                .and_then(|w| w.parse().ok())
                .filter(|n| *n > 0)
                .ok_or(ControlError::FaultApdu { command })?;
            let fault = match (command, words.get(3).copied()) {
                ("pull", None | Some("before")) => Fault::PullBefore,
                ("pull", Some("after")) => Fault::PullAfter,
                ("pull", Some(other)) => return Err(ControlError::PullWhen { word: other.into() }),
                ("lose", _) => Fault::LoseResponse,
                _ => Fault::Hold(std::time::Duration::from_millis(
                    words
                        .get(3)
                        .and_then(|w| w.parse().ok())
                        .filter(|ms| *ms <= 600_000)
                        .ok_or(ControlError::HoldTime)?,
                )),
            };
            c.arm(nth, fault);
            Ok("ok".to_string())
        }),
        Some("status") => Ok(cards
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let armed = match c.armed() {
                    Some((fault, n)) => format!(" armed {fault:?} in {n}"),
                    None => String::new(),
                };
                format!(
                    "slot {i} port {} {} {} apdus {} faults {}{armed}",
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
                    c.apdu_count(),
                    c.faults_fired()
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

/// The longest control command read; a longer line is answered `error: …` and ends the
/// connection (a client that sends no newline cannot grow the model's memory).
pub const MAX_LINE: usize = 256;

/// A line that is too long to be a control command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a control command is at most {MAX_LINE} bytes; closing the connection")]
pub struct LineTooLong;

/// The next line of `reader`, at most [`MAX_LINE`] bytes; `None` at the end of the stream or
/// after an over-long line (answered once).
fn next_line(reader: &mut impl BufRead) -> Option<Result<String, LineTooLong>> {
    let mut buf = Vec::new();
    match reader
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
    {
        Ok(0) | Err(_) => None,
        Ok(_) if buf.last() == Some(&b'\n') => {
            buf.pop();
            Some(Ok(String::from_utf8_lossy(&buf).into_owned()))
        }
        // The stream ended without a newline after a short command: still a command.
        Ok(n) if n <= MAX_LINE => Some(Ok(String::from_utf8_lossy(&buf).into_owned())),
        Ok(_) => Some(Err(LineTooLong)),
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
            let mut reader = BufReader::new(stream);
            while let Some(line) = next_line(&mut reader) {
                let answer = match line {
                    Ok(line) => execute(&cards.lock().expect("cards lock"), &line),
                    Err(e) => {
                        let _ = writeln!(writer, "error: {e}");
                        break;
                    }
                };
                if writeln!(writer, "{answer}").is_err() {
                    break;
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::shared;
    use crate::vpcd::{serve, ServeOptions};

    /// A card served to a port where no pcscd listens: the control commands act on it alone.
    fn served() -> Vec<ServedCard> {
        let (card, _) = crate::test_pair(sscard_core::crypto::Algorithm::Tdes);
        vec![serve(shared(card), ServeOptions::port(9))]
    }

    #[test]
    fn control_lines_are_bounded() {
        let mut r = std::io::Cursor::new(b"status\nremove 0".to_vec());
        assert_eq!(next_line(&mut r), Some(Ok("status".into())));
        assert_eq!(next_line(&mut r), Some(Ok("remove 0".into())));
        assert_eq!(next_line(&mut r), None);
        let mut endless = std::io::BufReader::new(std::io::repeat(b'x'));
        assert_eq!(next_line(&mut endless), Some(Err(LineTooLong)));
        assert_eq!(
            LineTooLong.to_string(),
            "a control command is at most 256 bytes; closing the connection"
        );
    }

    #[test]
    fn faults_are_armed_for_the_nth_apdu_from_now_and_shown_in_the_status() {
        let cards = served();
        assert_eq!(execute(&cards, "pull 0 3"), "ok");
        assert_eq!(cards[0].armed(), Some((Fault::PullBefore, 3)));
        assert_eq!(execute(&cards, "pull 0 2 after"), "ok");
        assert_eq!(cards[0].armed(), Some((Fault::PullAfter, 2)), "replaced");
        assert_eq!(execute(&cards, "lose 0 7"), "ok");
        assert_eq!(cards[0].armed(), Some((Fault::LoseResponse, 7)));
        assert_eq!(execute(&cards, "hold 0 1 250"), "ok");
        assert_eq!(
            cards[0].armed(),
            Some((Fault::Hold(std::time::Duration::from_millis(250)), 1))
        );
        assert_eq!(
            execute(&cards, "status"),
            "slot 0 port 9 inserted waiting apdus 0 faults 0 armed Hold(250ms) in 1"
        );
    }

    #[test]
    fn malformed_fault_commands_are_refused_with_the_reason() {
        let cards = served();
        for (line, answer) in [
            (
                "pull 0 0",
                "error: pull N K: K is the n-th APDU from now, 1 or more",
            ),
            (
                "lose 0",
                "error: lose N K: K is the n-th APDU from now, 1 or more",
            ),
            (
                "pull 0 1 during",
                "error: pull N K [before|after]: \"during\" is neither before nor after",
            ),
            (
                "hold 0 1",
                "error: hold N K MS: MS is the time the card thinks, in milliseconds (0 to 600000)",
            ),
            (
                "hold 0 1 600001",
                "error: hold N K MS: MS is the time the card thinks, in milliseconds (0 to 600000)",
            ),
            (
                "pull 1 1",
                "error: no reader slot 1 (serving 1, slots count from 0)",
            ),
        ] {
            assert_eq!(execute(&cards, line), answer, "{line}");
        }
        assert_eq!(cards[0].armed(), None);
    }
}
