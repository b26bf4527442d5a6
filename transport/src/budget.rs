//! The transmit budget of one flow: at most so many APDUs and so many bytes (commands and
//! responses, both directions) in one [`crate::Transaction`]. A card that keeps the host
//! talking — answering `6A86` to READ RECORDS so the host reads record by record, then sending
//! each record one byte per `61xx` — would otherwise hold a flow for tens of thousands of
//! exchanges; with a budget the flow ends with [`crate::TransportError::BudgetExceeded`].
//!
//! Every exchange counts: the command as built, its `6Cxx` resend and every GET RESPONSE. The
//! budget is checked before an APDU goes out, never after: a response that arrived is never
//! thrown away (its command may have changed the card), so the bytes may overshoot the limit by
//! the last response alone. `docs/budget.md` shows how the defaults were measured.
//!
//! ```
//! use sscard_transport::{Budget, Connection, InProcess};
//! # fn f(card: sscard_core::card::SharedCard) {
//! // Every transaction of this connection may send 32 APDUs and 4 KiB.
//! let conn = Connection::new(InProcess::new(card, "model")).with_budget(Budget::new(32, 4096));
//! assert_eq!(conn.budget(), Budget::new(32, 4096));
//! # }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

/// APDUs one flow may send by default: 4× the largest legitimate flow of the profile, the
/// personalisation of one card (60 APDUs on a T=1 card), rounded up to a power of two. It
/// leaves room for a T=0 card answering every response with `61xx` (each command then takes
/// two exchanges) and for a card that reads record by record.
pub const DEFAULT_APDUS: u64 = 256;

/// Bytes (commands plus responses) one flow may exchange by default: at least 8× the largest
/// legitimate flow (the personalisation of one SM4 card with its acceptance test, 1 497 bytes),
/// rounded up to a power of two (16 KiB, 10.9×): room for the GET RESPONSEs of a T=0 card and
/// for longer holder data.
pub const DEFAULT_BYTES: u64 = 16 * 1024;

/// At most `apdus` exchanges and `bytes` bytes (both directions) in one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Budget {
    pub apdus: u64,
    pub bytes: u64,
}

/// The process-wide default, set once by a front end from its options
/// ([`Budget::set_process_default`]).
static DEFAULT: [AtomicU64; 2] = [AtomicU64::new(DEFAULT_APDUS), AtomicU64::new(DEFAULT_BYTES)];

impl Budget {
    /// [`DEFAULT_APDUS`] and [`DEFAULT_BYTES`].
    pub const DEFAULT: Budget = Budget::new(DEFAULT_APDUS, DEFAULT_BYTES);

    /// No limit, for a caller whose loop is bounded by its own counts (a benchmark sending
    /// `--count` APDUs in one transaction).
    pub const UNLIMITED: Budget = Budget::new(u64::MAX, u64::MAX);

    pub const fn new(apdus: u64, bytes: u64) -> Self {
        Self { apdus, bytes }
    }

    /// The budget new connections start with: [`Budget::DEFAULT`] unless the program set
    /// another with [`Budget::set_process_default`].
    pub fn process_default() -> Self {
        Self::new(
            DEFAULT[0].load(Ordering::Relaxed),
            DEFAULT[1].load(Ordering::Relaxed),
        )
    }

    /// Sets the budget connections made from now on start with (a program's `--max-apdus` and
    /// `--max-bytes`, read once at start-up, reach every connection it opens this way,
    /// including those a library opens for it, such as a personalisation station's).
    pub fn set_process_default(budget: Budget) {
        DEFAULT[0].store(budget.apdus, Ordering::Relaxed);
        DEFAULT[1].store(budget.bytes, Ordering::Relaxed);
    }
}

impl Default for Budget {
    /// [`Budget::process_default`].
    fn default() -> Self {
        Self::process_default()
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} APDUs, {} bytes", self.apdus, self.bytes)
    }
}

/// What a flow has used of its budget so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    /// Exchanges sent (answered or not).
    pub apdus: u64,
    /// Command and response bytes.
    pub bytes: u64,
}

impl Spent {
    /// Whether one more command of `len` bytes fits in `budget`.
    pub(crate) fn allows(&self, budget: &Budget, len: usize) -> bool {
        self.apdus < budget.apdus && self.bytes.saturating_add(len as u64) <= budget.bytes
    }

    pub(crate) fn add(&mut self, bytes: usize) {
        self.bytes = self.bytes.saturating_add(bytes as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_fits_while_both_limits_hold() {
        let b = Budget::new(2, 10);
        let mut s = Spent::default();
        assert!(s.allows(&b, 10));
        assert!(!s.allows(&b, 11), "the command alone is over the bytes");
        s.apdus = 1;
        s.add(6);
        assert!(s.allows(&b, 4));
        assert!(!s.allows(&b, 5));
        s.apdus = 2;
        assert!(!s.allows(&b, 0), "no APDU left");
        assert!(Spent {
            apdus: u64::MAX - 1,
            bytes: u64::MAX
        }
        .allows(&Budget::UNLIMITED, 0));
        assert_eq!(
            Budget::new(256, 32768).to_string(),
            "256 APDUs, 32768 bytes"
        );
    }
}
