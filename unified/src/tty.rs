//! PIN entry from the controlling terminal (`/dev/tty`) when the reader has no PIN pad: no
//! echo, one key at a time (the terminal's own line editing and signals are off for the
//! entry), within the configured time limit. Enter ends the entry; Backspace erases a digit;
//! Escape, Ctrl-C or Ctrl-D cancels, and so does an empty entry. The prompt goes to the
//! terminal itself, never to the process's standard output or error. The typed bytes live in
//! zeroized memory.
//!
//! A signal that interrupts the wait (SIGINT sent to the process, a SIGALRM, …) cancels the
//! entry (−31): the terminal is restored and the call returns, so the caller's handler gets to
//! act instead of the process waiting out the time limit. A fatal signal (SIGTERM, SIGKILL)
//! ends the process with the terminal still without echo (`stty sane` restores it); the
//! library installs no signal handler of its own.

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{open, Mode, OFlags};
use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions, SpecialCodeIndex};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The most bytes one entry takes (a PIN has at most 6 digits; more is a wrong length).
pub const MAX_ENTRY: usize = 32;

/// Why an entry gave no PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// No controlling terminal to ask on (a daemon, a service): −31.
    #[error("no PIN pad and no controlling terminal to enter the PIN on")]
    NoTerminal,
    /// Escape, Ctrl-C, Ctrl-D or an empty entry: −31.
    #[error("PIN entry cancelled")]
    Cancelled,
    /// Nothing ended the entry within the time limit: −32.
    #[error("PIN entry timed out after {secs} s")]
    Timeout { secs: u64 },
    /// More than [`MAX_ENTRY`] bytes: −33.
    #[error("a PIN has 2 to 6 digits")]
    TooLong,
    /// The terminal failed under the entry (its errno): −31.
    #[error("the terminal failed during PIN entry (errno {errno})")]
    Terminal { errno: i32 },
}

const ENTER: [u8; 2] = [b'\r', b'\n'];
const ERASE: [u8; 2] = [0x7F, 0x08];
/// Escape, Ctrl-C, Ctrl-D.
const CANCEL: [u8; 3] = [0x1B, 0x03, 0x04];

/// What a failed `poll` or `read` of the terminal means; `None`: try again.
fn failed(e: rustix::io::Errno) -> Option<EntryError> {
    match e {
        rustix::io::Errno::AGAIN => None,
        // A signal: whoever sent it wants the call back, not a wait to the time limit.
        rustix::io::Errno::INTR => Some(EntryError::Cancelled),
        e => Some(io(e)),
    }
}

fn io(e: rustix::io::Errno) -> EntryError {
    EntryError::Terminal {
        errno: e.raw_os_error(),
    }
}

/// Reads one entry from `input`, key by key, until Enter, within `deadline`.
pub fn read_entry(
    input: impl AsFd,
    deadline: Instant,
    limit: Duration,
) -> Result<Zeroizing<Vec<u8>>, EntryError> {
    let mut entry = Zeroizing::new(Vec::with_capacity(MAX_ENTRY));
    let mut key = Zeroizing::new([0u8; 1]);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = Timespec::try_from(left).map_err(|_| EntryError::Timeout {
            secs: limit.as_secs(),
        })?;
        let mut fds = [PollFd::new(&input, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => {
                return Err(EntryError::Timeout {
                    secs: limit.as_secs(),
                })
            }
            Ok(_) => {}
            Err(e) => match failed(e) {
                Some(e) => return Err(e),
                None => continue,
            },
        }
        let n = match rustix::io::read(&input, &mut key[..]) {
            Ok(n) => n,
            Err(e) => match failed(e) {
                Some(e) => return Err(e),
                None => continue,
            },
        };
        match (n, key[0]) {
            // The terminal hung up: nobody is there to finish the entry.
            (0, _) => return Err(EntryError::Cancelled),
            (_, k) if ENTER.contains(&k) => {
                return match entry.is_empty() {
                    true => Err(EntryError::Cancelled),
                    false => Ok(entry),
                }
            }
            (_, k) if CANCEL.contains(&k) => return Err(EntryError::Cancelled),
            (_, k) if ERASE.contains(&k) => {
                entry.pop();
            }
            (_, k) if entry.len() < MAX_ENTRY => entry.push(k),
            _ => return Err(EntryError::TooLong),
        }
    }
}

/// The terminal with echo, line editing and signals off; restored when dropped.
struct Raw {
    tty: OwnedFd,
    saved: rustix::termios::Termios,
}

impl Raw {
    fn open() -> Result<Self, EntryError> {
        let tty = open(
            "/dev/tty",
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|_| EntryError::NoTerminal)?;
        let saved = tcgetattr(&tty).map_err(|_| EntryError::NoTerminal)?;
        let mut raw = saved.clone();
        raw.local_modes
            .remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
        raw.special_codes[SpecialCodeIndex::VMIN] = 1;
        raw.special_codes[SpecialCodeIndex::VTIME] = 0;
        tcsetattr(&tty, OptionalActions::Now, &raw).map_err(io)?;
        Ok(Self { tty, saved })
    }

    fn say(&self, text: &[u8]) {
        // The prompt is a courtesy: a terminal that takes no output still gives input.
        let _ = rustix::io::write(&self.tty, text);
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = tcsetattr(&self.tty, OptionalActions::Now, &self.saved);
    }
}

/// Asks for one secret on the controlling terminal with `prompt` (already in the terminal's
/// encoding) and reads it within `limit`.
pub fn ask(prompt: &[u8], limit: Duration) -> Result<Zeroizing<Vec<u8>>, EntryError> {
    let raw = Raw::open()?;
    raw.say(prompt);
    let entry = read_entry(&raw.tty, Instant::now() + limit, limit);
    raw.say(b"\n");
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    /// What `keys` typed (all there before the entry starts) give.
    fn typed(keys: &[u8]) -> Result<Vec<u8>, EntryError> {
        let (mut keyboard, terminal) = UnixStream::pair().unwrap();
        keyboard.write_all(keys).unwrap();
        let limit = Duration::from_secs(3600);
        read_entry(&terminal, Instant::now() + limit, limit).map(|e| e.to_vec())
    }

    #[test]
    fn keys_make_an_entry() {
        assert_eq!(typed(b"802417\r").unwrap(), b"802417");
        assert_eq!(typed(b"8024\n17\r").unwrap(), b"8024");
        assert_eq!(typed(b"8029\x7f417\n").unwrap(), b"802417");
        assert_eq!(typed(b"\x08\x0812\r").unwrap(), b"12");
        assert_eq!(typed(b"12a\r").unwrap(), b"12a");
    }

    #[test]
    fn ways_to_give_no_pin() {
        assert_eq!(typed(b"\r"), Err(EntryError::Cancelled));
        assert_eq!(typed(b"12\x1b"), Err(EntryError::Cancelled));
        assert_eq!(typed(b"12\x03"), Err(EntryError::Cancelled));
        assert_eq!(typed(b"\x04"), Err(EntryError::Cancelled));
        assert_eq!(typed(&[b'1'; 33]), Err(EntryError::TooLong));
        // The keyboard goes away mid-entry.
        let (keyboard, terminal) = UnixStream::pair().unwrap();
        drop(keyboard);
        let limit = Duration::from_secs(3600);
        assert_eq!(
            read_entry(&terminal, Instant::now() + limit, limit).map(|e| e.to_vec()),
            Err(EntryError::Cancelled)
        );
    }

    #[test]
    fn a_signal_cancels_the_entry() {
        use rustix::io::Errno;
        assert_eq!(failed(Errno::INTR), Some(EntryError::Cancelled));
        assert_eq!(failed(Errno::AGAIN), None);
        assert_eq!(
            failed(Errno::IO),
            Some(EntryError::Terminal {
                errno: Errno::IO.raw_os_error()
            })
        );
    }

    #[test]
    fn a_deadline_already_past_is_a_timeout() {
        let (_keyboard, terminal) = UnixStream::pair().unwrap();
        let limit = Duration::from_secs(7);
        assert_eq!(
            read_entry(&terminal, Instant::now(), limit).map(|e| e.to_vec()),
            Err(EntryError::Timeout { secs: 7 })
        );
    }
}
