//! A connection to one card, which owns its trace, and the transaction every flow borrows.

use crate::backend::{CardBackend, CardTransaction, Disposition, Ejection, EJECT_ICC};
use crate::budget::{Budget, Spent};
use crate::trace::{Exchange, Trace};
use crate::TransportError;
use sscard_core::apdu::{Command, Response};
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::commands::{self, describe_bytes, Apdu, Idempotence, Secrecy};
use std::time::{Instant, SystemTime};

/// Most GET RESPONSE rounds one command may take (a card that keeps answering `61xx` is
/// broken; 256 rounds carry 64 KiB). The rounds count against the flow's [`Budget`] too, which
/// is usually the tighter bound.
pub const MAX_GET_RESPONSE_ROUNDS: usize = 256;

/// A connection to the card in one reader. APDUs go only through a [`Transaction`]; every one
/// of them, GET RESPONSE and resends included, reaches the connection's [`Trace`], masked, and
/// counts against the transaction's [`Budget`].
pub struct Connection {
    backend: Box<dyn CardBackend>,
    reader: String,
    /// The reader's serial number, read once at connection ([`CardBackend::reader_serial`]).
    reader_serial: Option<String>,
    atr: Vec<u8>,
    trace: Trace,
    /// The name of the card's role in traces (`card`, `psam`).
    role: &'static str,
    apdus: u64,
    /// The budget each transaction starts with.
    budget: Budget,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("reader", &self.reader)
            .field("role", &self.role)
            .field("apdus", &self.apdus)
            .field("budget", &self.budget)
            .finish()
    }
}

impl Connection {
    /// A connection over `backend`, untraced, in the role `card`, with the process's default
    /// [`Budget`] per transaction.
    pub fn new(backend: impl CardBackend + 'static) -> Self {
        Self::from_box(Box::new(backend))
    }

    /// [`Connection::new`] of a boxed backend.
    pub fn from_box(backend: Box<dyn CardBackend>) -> Self {
        Self {
            reader: backend.reader().to_string(),
            reader_serial: backend.reader_serial(),
            atr: backend.atr(),
            backend,
            trace: Trace::off(),
            role: "card",
            apdus: 0,
            budget: Budget::process_default(),
        }
    }

    /// Gives every transaction of this connection `budget`.
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// [`Connection::with_budget`] in place, for the transactions started from now on.
    pub fn set_budget(&mut self, budget: Budget) {
        self.budget = budget;
    }

    /// The budget each transaction starts with.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Sends every exchange to `trace` under the name `role` (`card`, `psam`).
    pub fn traced(mut self, trace: &Trace, role: &'static str) -> Self {
        self.trace = trace.clone();
        self.role = role;
        self
    }

    /// The reader's name.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The card's answer to reset.
    pub fn atr(&self) -> &[u8] {
        &self.atr
    }

    /// The reader's serial number, when it reports one (PC/SC
    /// `SCARD_ATTR_VENDOR_IFD_SERIAL_NO`).
    pub fn reader_serial(&self) -> Option<&str> {
        self.reader_serial.as_deref()
    }

    /// APDUs sent so far (GET RESPONSE and resends included).
    pub fn apdu_count(&self) -> u64 {
        self.apdus
    }

    /// A reader attribute (PC/SC `SCardGetAttrib`, [`CardBackend::attribute`]); an error when
    /// the reader does not report it.
    pub fn attribute(
        &self,
        attribute: crate::backend::ReaderAttribute,
    ) -> Result<Vec<u8>, TransportError> {
        self.backend.attribute(attribute)
    }

    /// The protocol the card was connected with, when the backend knows.
    pub fn protocol(&self) -> Option<crate::backend::ActiveProtocol> {
        self.backend.protocol()
    }

    /// The trace this connection writes to.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Starts an exclusive transaction; it ends when dropped.
    pub fn transaction(&mut self) -> Result<Transaction<'_>, TransportError> {
        let inner = self.backend.transaction()?;
        Ok(Transaction {
            inner,
            reader: &self.reader,
            reader_serial: self.reader_serial.as_deref(),
            atr: &mut self.atr,
            trace: &self.trace,
            role: self.role,
            apdus: &mut self.apdus,
            changed: false,
            budget: self.budget,
            spent: Spent::default(),
        })
    }

    /// Warm-resets the card in a transaction of its own.
    pub fn reset(&mut self) -> Result<(), TransportError> {
        self.transaction()?.reset()
    }

    /// Ends the connection, leaving the card as `disposition` says. (Dropping a PC/SC
    /// connection resets the card.)
    pub fn disconnect(self, disposition: Disposition) -> Result<(), TransportError> {
        self.backend.disconnect(disposition)
    }

    /// Takes the card out of the reader, for good: sends EJECT ICC ([`EJECT_ICC`]) in a
    /// transaction of its own, then disconnects with [`Disposition::Eject`] when the card left,
    /// [`Disposition::Leave`] when it did not. A station calls it once the journal holds the
    /// card's outcome: a card feeder moves a card only on this command, never on a reset or a
    /// power-off, so a card whose station died stays in the reader for the restarted station.
    pub fn eject(mut self) -> Result<Ejection, TransportError> {
        let sw = self.transaction()?.transmit_raw(&EJECT_ICC)?.sw;
        if sw.is_success() {
            self.disconnect(Disposition::Eject)?;
            Ok(Ejection::Ejected)
        } else {
            self.disconnect(Disposition::Leave)?;
            Ok(Ejection::Refused { sw })
        }
    }
}

/// An exclusive transaction on a card: the only way to send APDUs. It ends when dropped. It is
/// one flow for the [`Budget`]: at most so many exchanges and bytes, checked before each APDU
/// goes out.
pub struct Transaction<'c> {
    inner: Box<dyn CardTransaction + 'c>,
    reader: &'c str,
    reader_serial: Option<&'c str>,
    atr: &'c mut Vec<u8>,
    trace: &'c Trace,
    role: &'static str,
    apdus: &'c mut u64,
    /// Whether a command that changes the card was sent in this transaction.
    changed: bool,
    budget: Budget,
    spent: Spent,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("reader", &self.reader)
            .field("role", &self.role)
            .field("changed", &self.changed)
            .field("budget", &self.budget)
            .field("spent", &self.spent)
            .finish()
    }
}

impl Transaction<'_> {
    /// Whether the card was reset since this connection's previous transaction: the selected
    /// application and security status are gone.
    pub fn was_reset(&self) -> bool {
        self.inner.was_reset()
    }

    /// Whether a command that changes the card ([`Idempotence::ChangesCard`]) went out in this
    /// transaction. A flow whose transaction sent none may run again after a reset.
    pub fn changed_card(&self) -> bool {
        self.changed
    }

    /// The reader's name.
    pub fn reader(&self) -> &str {
        self.reader
    }

    /// The card's answer to reset.
    pub fn atr(&self) -> &[u8] {
        self.atr
    }

    /// The reader's serial number, when it reports one.
    pub fn reader_serial(&self) -> Option<&str> {
        self.reader_serial
    }

    /// APDUs sent on this connection so far.
    pub fn apdu_count(&self) -> u64 {
        *self.apdus
    }

    /// This transaction's budget.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Replaces this transaction's budget (what it spent so far still counts): for a flow
    /// known to need more than the connection gives, such as a reader qualification's
    /// thousands of echoes.
    pub fn set_budget(&mut self, budget: Budget) {
        self.budget = budget;
    }

    /// What this transaction has used of its budget.
    pub fn spent(&self) -> Spent {
        self.spent
    }

    /// Warm-resets the card; the transaction goes on.
    pub fn reset(&mut self) -> Result<(), TransportError> {
        *self.atr = self.inner.reset()?;
        Ok(())
    }

    /// A command to the reader (PC/SC `SCardControl`, [`CardTransaction::control`]), e.g. a
    /// PIN pad's VERIFY. It is not an APDU of the host's: no trace, no budget; since a reader
    /// may send the card a command that changes it (a PIN try), the transaction counts as
    /// having changed the card.
    pub fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.changed = true;
        self.inner.control(code, input)
    }

    /// Sends bytes exactly as given (even malformed ones) and returns the answer as it is: no
    /// GET RESPONSE, no resend on `6Cxx`. Secrets are masked in traces by the command's
    /// semantics ([`commands::describe`]).
    pub fn transmit_raw(&mut self, bytes: &[u8]) -> Result<Response, TransportError> {
        self.transmit_raw_secret(bytes, Secrecy::PUBLIC)
    }

    /// [`Transaction::transmit_raw`] with secrets beyond the command's own semantics: a raw
    /// GET RESPONSE that fetches the rest of a secret answer (a DES CRYPT's `61xx`) is as
    /// secret as that answer.
    pub fn transmit_raw_secret(
        &mut self,
        bytes: &[u8],
        secrecy: Secrecy,
    ) -> Result<Response, TransportError> {
        let info = describe_bytes(bytes);
        self.exchange(bytes, secrecy.union(info.secrecy), info.idempotence)
    }

    /// Sends a command of the profile: `6Cxx` is answered by one resend with the right Le and
    /// `61xx` by GET RESPONSE until the data is complete (the card carried out neither the
    /// refused command nor anything twice). Nothing else is ever resent.
    pub fn send(&mut self, apdu: &Apdu) -> Result<Response, TransportError> {
        self.send_command(&apdu.command, apdu.idempotence, apdu.secrecy)
    }

    /// [`Transaction::send`] of any command, described by its semantics.
    pub fn transmit(&mut self, cmd: &Command) -> Result<Response, TransportError> {
        let info = commands::describe(cmd.cla, cmd.ins);
        self.send_command(cmd, info.idempotence, info.secrecy)
    }

    fn send_command(
        &mut self,
        cmd: &Command,
        idempotence: Idempotence,
        secrecy: Secrecy,
    ) -> Result<Response, TransportError> {
        let mut resp = self.resend_on_wrong_le(cmd, secrecy, idempotence)?;
        // GET RESPONSE carries no secret data; its answer is as secret as the command's.
        let get_secrecy = Secrecy {
            command_data: false,
            response_data: secrecy.response_data,
        };
        let mut data = std::mem::take(&mut resp.data);
        let mut rounds = 0;
        while let Some(n) = resp.sw.bytes_available() {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE_ROUNDS {
                return Err(TransportError::EndlessGetResponse {
                    command: to_hex(&cmd.header()),
                    rounds: MAX_GET_RESPONSE_ROUNDS,
                });
            }
            resp = self.resend_on_wrong_le(
                &commands::get_response(n).command,
                get_secrecy,
                Idempotence::Idempotent,
            )?;
            data.append(&mut resp.data);
        }
        Ok(Response::new(data, resp.sw))
    }

    /// Sends long data with ISO command chaining; the last part's response is returned.
    pub fn transmit_chained(
        &mut self,
        cmd: &Command,
        max_chunk: usize,
    ) -> Result<Response, TransportError> {
        let parts = cmd.chained(max_chunk);
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            let r = self.transmit(part)?;
            if i == last || !r.sw.is_success() {
                return Ok(r);
            }
        }
        unreachable!("chained() returns at least one part")
    }

    /// Sends `cmd`; on `6Cxx` sends it again once with Le = xx (`00` meaning 256).
    fn resend_on_wrong_le(
        &mut self,
        cmd: &Command,
        secrecy: Secrecy,
        idempotence: Idempotence,
    ) -> Result<Response, TransportError> {
        let resp = self.exchange(&cmd.to_bytes()?, secrecy, idempotence)?;
        match resp.sw.correct_le() {
            Some(le) => {
                let again = cmd.clone().with_le(if le == 0 { 256 } else { le as usize });
                self.exchange(&again.to_bytes()?, secrecy, idempotence)
            }
            None => Ok(resp),
        }
    }

    /// One exchange with the card, traced, within the budget. A command that changes the card
    /// marks the transaction once it goes out (whether or not an answer comes back).
    fn exchange(
        &mut self,
        bytes: &[u8],
        secrecy: Secrecy,
        idempotence: Idempotence,
    ) -> Result<Response, TransportError> {
        if !self.spent.allows(&self.budget, bytes.len()) {
            // The header names the command; its data may be secret.
            return Err(TransportError::BudgetExceeded {
                command: to_hex(&bytes[..bytes.len().min(4)]),
                apdus: self.spent.apdus,
                bytes: self.spent.bytes,
                limit: self.budget,
            });
        }
        // Clocks are read only for a trace: an untraced exchange costs the backend alone.
        let clock = self
            .trace
            .is_on()
            .then(|| (SystemTime::now(), Instant::now()));
        if idempotence == Idempotence::ChangesCard {
            self.changed = true;
        }
        // An APDU that went out counts whether or not an answer comes back.
        self.spent.apdus += 1;
        self.spent.add(bytes.len());
        let raw = self
            .inner
            .transmit(bytes)
            .map_err(|e| outcome_unknown(bytes, idempotence, e))?;
        self.spent.add(raw.len());
        *self.apdus += 1;
        if let Some((at, start)) = clock {
            let e = Exchange::new(
                self.role,
                self.reader,
                bytes,
                &raw,
                secrecy,
                at,
                start.elapsed(),
            );
            self.trace.record(&e);
        }
        Response::parse(&raw).map_err(|_| {
            outcome_unknown(
                bytes,
                idempotence,
                TransportError::NoStatusWord { len: raw.len() },
            )
        })
    }
}

/// A command that changes the card whose answer did not come back may have been carried out:
/// its error becomes [`TransportError::OutcomeUnknown`] (never resent). Other commands keep
/// their error: running them again changes nothing.
fn outcome_unknown(bytes: &[u8], idempotence: Idempotence, e: TransportError) -> TransportError {
    match e {
        TransportError::Encode(_) | TransportError::OutcomeUnknown { .. } => e,
        e if idempotence == Idempotence::ChangesCard => TransportError::OutcomeUnknown {
            command: describe_bytes(bytes).name,
            cause: Box::new(e),
        },
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard_core::hexfmt::parse_hex;
    use std::sync::{Arc, Mutex};

    /// Replays canned responses and records what was sent.
    #[derive(Clone, Default)]
    struct Scripted {
        replies: Arc<Mutex<Vec<&'static str>>>,
        sent: Arc<Mutex<Vec<String>>>,
        reset_before_next: Arc<Mutex<bool>>,
        disconnected: Arc<Mutex<Option<Disposition>>>,
    }

    struct ScriptedTx(Scripted, bool);

    impl CardBackend for Scripted {
        fn reader(&self) -> &str {
            "scripted"
        }
        fn atr(&self) -> Vec<u8> {
            vec![0x3B, 0x00]
        }
        fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
            let was_reset = std::mem::take(&mut *self.reset_before_next.lock().unwrap());
            Ok(Box::new(ScriptedTx(self.clone(), was_reset)))
        }
        fn disconnect(self: Box<Self>, disposition: Disposition) -> Result<(), TransportError> {
            *self.disconnected.lock().unwrap() = Some(disposition);
            Ok(())
        }
    }

    impl CardTransaction for ScriptedTx {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            self.0.sent.lock().unwrap().push(to_hex(apdu));
            Ok(parse_hex(self.0.replies.lock().unwrap().remove(0)).unwrap())
        }
        fn was_reset(&self) -> bool {
            self.1
        }
        fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
            Ok(vec![0x3B, 0x01])
        }
    }

    fn scripted(replies: Vec<&'static str>) -> (Scripted, Connection) {
        let s = Scripted::default();
        *s.replies.lock().unwrap() = replies;
        (s.clone(), Connection::new(s))
    }

    #[test]
    fn get_response_and_wrong_le() {
        let (s, mut conn) = scripted(vec!["6C04", "6104", "6C02", "AABB6102", "CCDD9000"]);
        let mut tx = conn.transaction().unwrap();
        let r = tx
            .transmit(
                &Command::new(0x80, 0xFA, 0, 0)
                    .with_data(vec![1; 8])
                    .with_le(1),
            )
            .unwrap();
        assert_eq!(r.data, vec![0xAA, 0xBB, 0xCC, 0xDD]);
        assert_eq!(tx.apdu_count(), 5);
        drop(tx);
        assert_eq!(
            *s.sent.lock().unwrap(),
            vec![
                "80FA000008010101010101010101".to_string(),
                "80FA000008010101010101010104".into(),
                "00C0000004".into(),
                "00C0000002".into(),
                "00C0000002".into()
            ]
        );
        assert_eq!(conn.apdu_count(), 5);
    }

    #[test]
    fn endless_get_response_is_an_error() {
        let (s, conn) = scripted(vec!["6101"; 300]);
        let mut conn = conn.with_budget(Budget::UNLIMITED);
        let err = conn
            .transaction()
            .unwrap()
            .transmit(&Command::new(0, 0xB0, 0, 0).with_le(1))
            .unwrap_err();
        assert_eq!(
            err,
            TransportError::EndlessGetResponse {
                command: "00B00000".into(),
                rounds: 256
            }
        );
        assert_eq!(s.sent.lock().unwrap().len(), 257);
    }

    #[test]
    fn get_response_rounds_count_against_the_budget() {
        // One byte per 61xx: the default budget ends the command before the round limit does.
        let (s, mut conn) = scripted(vec!["AA6101"; 300]);
        assert_eq!(conn.budget(), Budget::DEFAULT);
        let mut tx = conn.transaction().unwrap();
        let err = tx
            .transmit(&Command::new(0, 0xB2, 1, 0x05).with_le(256))
            .unwrap_err();
        assert_eq!(
            err,
            TransportError::BudgetExceeded {
                command: "00C00000".into(),
                apdus: 256,
                // 5 + 255 × 5 command bytes, 256 × 3 response bytes.
                bytes: 5 + 255 * 5 + 256 * 3,
                limit: Budget::DEFAULT,
            }
        );
        assert_eq!(
            tx.spent(),
            Spent {
                apdus: 256,
                bytes: 2048
            }
        );
        drop(tx);
        assert_eq!(s.sent.lock().unwrap().len(), 256);
    }

    #[test]
    fn the_budget_is_per_transaction_and_counts_both_directions() {
        let (s, conn) = scripted(vec!["9000", "AABBCC9000", "9000", "9000"]);
        let mut conn = conn.with_budget(Budget::new(2, 12));
        let mut tx = conn.transaction().unwrap();
        tx.transmit_raw(&[0, 0xA4, 0, 0]).unwrap();
        assert_eq!(tx.spent(), Spent { apdus: 1, bytes: 6 });
        // The response may overshoot the bytes: it is never thrown away.
        tx.transmit_raw(&[0, 0xB0, 0, 0, 3]).unwrap();
        assert_eq!(
            tx.spent(),
            Spent {
                apdus: 2,
                bytes: 16
            }
        );
        // A VERIFY's PIN is secret: the error names the header only.
        assert_eq!(
            tx.transmit_raw(&[0, 0x20, 0, 0, 3, 0x12, 0x34, 0x56]),
            Err(TransportError::BudgetExceeded {
                command: "00200000".into(),
                apdus: 2,
                bytes: 16,
                limit: Budget::new(2, 12),
            })
        );
        assert!(!tx.changed_card(), "nothing went out");
        drop(tx);
        // A new transaction is a new flow; a command that alone would pass the bytes is
        // refused before it goes out.
        let mut tx = conn.transaction().unwrap();
        assert_eq!(tx.spent(), Spent::default());
        assert_eq!(
            tx.transmit_raw(&[0x80, 0x14, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]),
            Err(TransportError::BudgetExceeded {
                command: "80140000".into(),
                apdus: 0,
                bytes: 0,
                limit: Budget::new(2, 12),
            })
        );
        tx.set_budget(Budget::UNLIMITED);
        tx.transmit_raw(&[0, 0xA4, 0, 0]).unwrap();
        drop(tx);
        assert_eq!(s.sent.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_6cxx_resend_counts_against_the_budget() {
        let (s, conn) = scripted(vec!["6C04", "AABBCCDD9000"]);
        let mut conn = conn.with_budget(Budget::new(1, 1000));
        let err = conn
            .transaction()
            .unwrap()
            .transmit(&Command::new(0, 0xB0, 0, 0).with_le(1))
            .unwrap_err();
        assert_eq!(
            err,
            TransportError::BudgetExceeded {
                command: "00B00000".into(),
                apdus: 1,
                bytes: 7,
                limit: Budget::new(1, 1000),
            }
        );
        assert_eq!(s.sent.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_transaction_knows_whether_it_changed_the_card_and_whether_it_was_reset() {
        let (s, mut conn) = scripted(vec!["9000", "9000", "9000"]);
        let mut tx = conn.transaction().unwrap();
        assert!(!tx.was_reset());
        tx.send(&commands::select_df01()).unwrap();
        assert!(!tx.changed_card(), "a SELECT changes nothing that lasts");
        tx.transmit_raw(&[0x00, 0x20, 0x00, 0x00, 0x01, 0x12])
            .unwrap();
        assert!(tx.changed_card(), "a VERIFY uses up a try");
        tx.reset().unwrap();
        assert_eq!(tx.atr(), [0x3B, 0x01]);
        drop(tx);
        *s.reset_before_next.lock().unwrap() = true;
        let tx = conn.transaction().unwrap();
        assert!(tx.was_reset() && !tx.changed_card());
    }

    /// A card reset under a command: reported, never resent.
    struct Resets(Arc<Mutex<u32>>);

    impl CardBackend for Resets {
        fn reader(&self) -> &str {
            "resets"
        }
        fn atr(&self) -> Vec<u8> {
            Vec::new()
        }
        fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
            Ok(Box::new(ResetsTx(self.0.clone())))
        }
    }

    struct ResetsTx(Arc<Mutex<u32>>);

    impl CardTransaction for ResetsTx {
        fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            *self.0.lock().unwrap() += 1;
            Err(TransportError::CardReset)
        }
        fn was_reset(&self) -> bool {
            false
        }
        fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn a_command_that_changes_the_card_is_sent_once_whatever_happens() {
        let sent = Arc::new(Mutex::new(0));
        let mut conn = Connection::new(Resets(sent.clone()));
        let mut tx = conn.transaction().unwrap();
        let verify = commands::verify(&[0x12, 0x34, 0x56]);
        assert_eq!(verify.idempotence, Idempotence::ChangesCard);
        assert_eq!(
            tx.send(&verify),
            Err(TransportError::OutcomeUnknown {
                command: "VERIFY",
                cause: Box::new(TransportError::CardReset)
            }),
            "a VERIFY reset under way may have used up a try"
        );
        assert!(tx.changed_card());
        assert_eq!(*sent.lock().unwrap(), 1);
        assert_eq!(tx.apdu_count(), 0, "no answer came back");
    }

    #[test]
    fn eject_sends_eject_icc_and_disconnects_with_eject_when_the_card_left() {
        let (s, conn) = scripted(vec!["9000"]);
        assert_eq!(conn.eject(), Ok(Ejection::Ejected));
        assert_eq!(*s.sent.lock().unwrap(), vec!["2015010000".to_string()]);
        assert_eq!(*s.disconnected.lock().unwrap(), Some(Disposition::Eject));
    }

    #[test]
    fn an_eject_nothing_takes_is_refused_and_leaves_the_card() {
        let (s, conn) = scripted(vec!["6E00"]);
        assert_eq!(
            conn.eject(),
            Ok(Ejection::Refused {
                sw: sscard_core::status::StatusWord(0x6E00)
            })
        );
        assert_eq!(*s.sent.lock().unwrap(), vec!["2015010000".to_string()]);
        assert_eq!(*s.disconnected.lock().unwrap(), Some(Disposition::Leave));
    }

    #[test]
    fn the_reader_serial_number_is_read_once_at_connection() {
        let (_, conn) = scripted(vec!["9000"]);
        assert_eq!(
            conn.reader_serial(),
            None,
            "a backend without readers has none"
        );
        let mut conn = Connection::new(Serial(Default::default()));
        assert_eq!(conn.reader_serial(), Some("SN-0001"));
        let tx = conn.transaction().unwrap();
        assert_eq!(tx.reader_serial(), Some("SN-0001"));
    }

    #[test]
    fn reader_attributes_and_protocol_come_from_the_backend_or_are_unsupported() {
        let (_, conn) = scripted(vec!["9000"]);
        assert_eq!(
            conn.attribute(crate::backend::ReaderAttribute::VendorName),
            Err(crate::backend::unsupported_feature()),
            "a backend without readers reports no attribute"
        );
        assert_eq!(conn.protocol(), None);
        let conn = Connection::new(Attributes);
        assert_eq!(
            conn.attribute(crate::backend::ReaderAttribute::VendorIfdType),
            Ok(b"MODEL-1".to_vec())
        );
        assert_eq!(
            conn.attribute(crate::backend::ReaderAttribute::VendorName),
            Err(crate::backend::unsupported_feature())
        );
        assert_eq!(conn.protocol(), Some(crate::backend::ActiveProtocol::T1));
    }

    /// A backend whose reader reports its model and the protocol T=1, nothing else.
    struct Attributes;

    impl CardBackend for Attributes {
        fn reader(&self) -> &str {
            "attributes"
        }
        fn atr(&self) -> Vec<u8> {
            Vec::new()
        }
        fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
            Ok(Box::new(ResetsTx(Arc::new(Mutex::new(0)))))
        }
        fn attribute(
            &self,
            attribute: crate::backend::ReaderAttribute,
        ) -> Result<Vec<u8>, TransportError> {
            match attribute {
                crate::backend::ReaderAttribute::VendorIfdType => Ok(b"MODEL-1".to_vec()),
                _ => Err(crate::backend::unsupported_feature()),
            }
        }
        fn protocol(&self) -> Option<crate::backend::ActiveProtocol> {
            Some(crate::backend::ActiveProtocol::T1)
        }
    }

    /// A backend whose reader has a serial number (and counts the asks).
    struct Serial(std::sync::atomic::AtomicU32);

    impl CardBackend for Serial {
        fn reader(&self) -> &str {
            "serial"
        }
        fn atr(&self) -> Vec<u8> {
            Vec::new()
        }
        fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
            Ok(Box::new(ResetsTx(Arc::new(Mutex::new(0)))))
        }
        fn reader_serial(&self) -> Option<String> {
            let asked = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            assert_eq!(asked, 0, "asked once");
            Some("SN-0001".into())
        }
    }

    #[test]
    fn disconnect_passes_the_disposition_to_the_backend() {
        for d in [
            Disposition::Leave,
            Disposition::Reset,
            Disposition::Unpower,
            Disposition::Eject,
        ] {
            let (s, conn) = scripted(vec![]);
            conn.disconnect(d).unwrap();
            assert_eq!(*s.disconnected.lock().unwrap(), Some(d));
        }
    }

    #[test]
    fn a_read_whose_answer_is_lost_keeps_its_error_a_write_is_an_unknown_outcome() {
        let mut conn = Connection::new(Resets(Arc::new(Mutex::new(0))));
        let mut tx = conn.transaction().unwrap();
        assert_eq!(
            tx.send(&commands::select_df01()),
            Err(TransportError::CardReset)
        );
        let (_, mut conn) = scripted(vec![""]);
        let err = conn
            .transaction()
            .unwrap()
            .transmit_raw(&[0x04, 0xDC, 0x01, 0x04, 0x03, 0x0A, 0x01, 0x32])
            .unwrap_err();
        assert_eq!(
            err,
            TransportError::OutcomeUnknown {
                command: "UPDATE RECORD",
                cause: Box::new(TransportError::NoStatusWord { len: 0 })
            }
        );
    }

    #[test]
    fn no_status_word_is_a_typed_error() {
        let (_, mut conn) = scripted(vec!["90"]);
        let err = conn
            .transaction()
            .unwrap()
            .transmit_raw(&[0, 0xA4, 0, 0])
            .unwrap_err();
        assert_eq!(err, TransportError::NoStatusWord { len: 1 });
        assert_eq!(
            err.to_string(),
            "malformed response: 1 byte(s), no status word"
        );
    }
}
