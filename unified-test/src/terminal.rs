//! A controlling terminal the harness types PINs on: a pseudo-terminal made the process's
//! controlling terminal, so that a library that asks for a PIN on `/dev/tty` (no PIN pad, as
//! on the virtual readers) gets one, typed when its prompt shows, as an operator would.
//!
//! A process can take a new controlling terminal only as the leader of a session of its own
//! ([`PinTerminal::attach`] calls `setsid`); a process group leader (a command started from an
//! interactive shell) cannot, and the CLI then runs the qualification in a child process.

use rustix::fd::OwnedFd;
use rustix::fs::{open, Mode, OFlags};
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use zeroize::Zeroizing;

/// Why the harness has no terminal to type on.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("cannot start a session of its own (setsid: {0}); a process group leader cannot")]
    Session(rustix::io::Errno),
    #[error("cannot make a pseudo-terminal the controlling terminal ({what}: {errno})")]
    Pty {
        what: &'static str,
        errno: rustix::io::Errno,
    },
}

impl sscard_core::classify::Classified for TerminalError {
    fn return_code(&self) -> i32 {
        sscard_core::profile::codes::UNKNOWN
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        sscard_core::classify::ExitClass::Other
    }
}

type Queue = Arc<Mutex<VecDeque<Zeroizing<Vec<u8>>>>>;

/// The pseudo-terminal and the thread that answers its prompts.
pub struct PinTerminal {
    /// Never closed (see `Drop`).
    master: Option<Arc<OwnedFd>>,
    queue: Queue,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Held open: the terminal stays the controlling terminal while the slave side is open.
    _slave: OwnedFd,
}

impl std::fmt::Debug for PinTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinTerminal(**)")
    }
}

fn pty(what: &'static str) -> impl Fn(rustix::io::Errno) -> TerminalError {
    move |errno| TerminalError::Pty { what, errno }
}

/// Whether `seen` ends with a prompt (`PIN: `, `New PIN again: `, …).
fn is_prompt(seen: &[u8]) -> bool {
    let trimmed = seen.strip_suffix(b" ").unwrap_or(seen);
    trimmed.ends_with(b":")
}

impl PinTerminal {
    /// Starts a session of its own and makes a new pseudo-terminal its controlling terminal,
    /// echo off; a thread reads what the library writes there and types the next queued entry
    /// (and Enter) at each prompt.
    pub fn attach() -> Result<Self, TerminalError> {
        rustix::process::setsid().map_err(TerminalError::Session)?;
        let master =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).map_err(pty("posix_openpt"))?;
        grantpt(&master).map_err(pty("grantpt"))?;
        unlockpt(&master).map_err(pty("unlockpt"))?;
        let name = ptsname(&master, Vec::new()).map_err(pty("ptsname"))?;
        let slave = open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(pty("open"))?;
        rustix::process::ioctl_tiocsctty(&slave).map_err(pty("TIOCSCTTY"))?;
        let mut modes = tcgetattr(&slave).map_err(pty("tcgetattr"))?;
        modes.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&slave, OptionalActions::Now, &modes).map_err(pty("tcsetattr"))?;
        let queue: Queue = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let master = Arc::new(master);
        let thread = {
            let (master, queue, stop) = (master.clone(), queue.clone(), stop.clone());
            std::thread::spawn(move || answer_prompts(&master, &queue, &stop))
        };
        Ok(Self {
            master: Some(master),
            queue,
            stop,
            thread: Some(thread),
            _slave: slave,
        })
    }

    /// Queues entries to type, one per prompt, replacing any left from before.
    pub fn type_at_prompts(&self, entries: &[&str]) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.clear();
        q.extend(
            entries
                .iter()
                .map(|e| Zeroizing::new(e.as_bytes().to_vec())),
        );
    }

    /// Entries queued and not typed (no prompt came for them); clears them.
    pub fn take_untyped(&self) -> usize {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let n = q.len();
        q.clear();
        n
    }
}

impl Drop for PinTerminal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Closing the master hangs the terminal up, and the kernel then sends SIGHUP to its
        // session leader: this process. The descriptor stays open until the process ends.
        std::mem::forget(self.master.take());
    }
}

fn answer_prompts(master: &OwnedFd, queue: &Queue, stop: &AtomicBool) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut seen = Vec::new();
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(master, PollFlags::IN)];
        match poll(&mut fds, Some(&tick)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(_) => return,
        }
        let mut buf = [0u8; 256];
        let n = match rustix::io::read(master, &mut buf) {
            Ok(n) if n > 0 => n,
            Ok(_) | Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        };
        seen.extend_from_slice(&buf[..n]);
        if seen.len() > 256 {
            seen.drain(..seen.len() - 64);
        }
        if is_prompt(&seen) {
            seen.clear();
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
            if let Some(entry) = next {
                let mut keys = Zeroizing::new(entry.to_vec());
                keys.push(b'\r');
                let _ = rustix::io::write(master, &keys);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_end_in_a_colon() {
        assert!(is_prompt(b"PIN: "));
        assert!(is_prompt(b"\nNew PIN again:"));
        assert!(!is_prompt(b"\n"));
        assert!(!is_prompt(b"PIN: 1"));
    }
}
