//! The two-step reading of PROFILE section 10 for terminals without a PSAM: step 1 leaves the
//! card's connection (no transaction held) and its state in the library; step 2 continues it
//! with the encryption machine's `pKey`.
//!
//! Which step 1 a step 2 continues: the calling thread's own, when it has one; else, when
//! exactly one step 1 is pending in the whole process, that one (an asynchronous caller may
//! resume on another thread of its pool); else none (−12). Each thread has at most one step 1
//! pending: a new step 1 on the same thread ends the old one first. A step 1 left by a thread
//! that never calls step 2 stays pending (and its card connected) until a step 2 takes it.
//!
//! A card keeps one challenge at a time: a step 1 on a card ends every other thread's pending
//! step 1 on the same reader, whose step 2 would otherwise send an EXTERNAL AUTHENTICATE the
//! card must refuse (and count against RKSSSE's tries). That step 2 gets −12 without touching
//! the card. Any other call that sends the card a command between the steps selects SSSE
//! again, which ends the challenge (on the model; `6984` at step 2): the two steps are meant
//! to run back to back on a card. Only `iGetReaderInfo`, which sends nothing, is harmless.

use crate::calls::NoKeys;
use crate::config::Config;
use crate::error::UnifiedError;
use crate::readers::{self, with_card, Interface};
use sscard::keys::{KeyError, KeySource, KeySpec};
use sscard::ssc::{Session, SscError};
use sscard::unified::{hsm_step2_key, PKey, Step1, Step1Line};
use sscard_transport::backend::Disposition;
use sscard_transport::pcsc::establish;
use sscard_transport::pcsc::Context;
use sscard_transport::{Connection, TransportError};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;

/// What step 1 leaves for step 2: the card's connection (no transaction held) and its state;
/// or, once a later step 1 on the same reader replaced the card's challenge, that reader.
enum Pending {
    Live { conn: Connection, step1: Box<Step1> },
    Superseded { reader: String },
}

impl Pending {
    fn reader(&self) -> &str {
        match self {
            Self::Live { conn, .. } => conn.reader(),
            Self::Superseded { reader } => reader,
        }
    }
}

/// The pending steps 1, one per thread at most, and which one a step 2 continues.
struct PerThread<T> {
    by_thread: HashMap<ThreadId, T>,
}

impl<T> PerThread<T> {
    /// Takes every other thread's value that `on` picks.
    fn take_others(&mut self, thread: ThreadId, on: impl Fn(&T) -> bool) -> Vec<(ThreadId, T)> {
        let picked: Vec<ThreadId> = self
            .by_thread
            .iter()
            .filter(|(t, v)| **t != thread && on(v))
            .map(|(t, _)| *t)
            .collect();
        picked
            .into_iter()
            .filter_map(|t| self.by_thread.remove(&t).map(|v| (t, v)))
            .collect()
    }

    /// Puts `thread`'s pending value; its earlier one, if any, is handed back.
    fn put(&mut self, thread: ThreadId, value: T) -> Option<T> {
        self.by_thread.insert(thread, value)
    }

    /// Takes `thread`'s own value; else the only one of the process; else none.
    fn take(&mut self, thread: ThreadId) -> Option<T> {
        if let Some(v) = self.by_thread.remove(&thread) {
            return Some(v);
        }
        match self.by_thread.len() {
            1 => {
                let only = *self.by_thread.keys().next()?;
                self.by_thread.remove(&only)
            }
            _ => None,
        }
    }
}

static PENDING: Mutex<Option<PerThread<Pending>>> = Mutex::new(None);

fn pending<R>(f: impl FnOnce(&mut PerThread<Pending>) -> R) -> R {
    let mut guard: MutexGuard<'_, _> = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.get_or_insert_with(|| PerThread {
        by_thread: HashMap::new(),
    }))
}

/// Step 1's key source: the configured PSAM, for its terminal number, when there is one;
/// none otherwise (the two-step flow is for terminals without a PSAM, and its keys are the
/// encryption machine's). A PSAM named in the configuration must be there.
fn step1_keys(cfg: &Config, ctx: &Context) -> Result<Box<dyn KeySource>, UnifiedError> {
    match cfg.key_spec() {
        KeySpec::Psam(reader) => match readers::psam(ctx, &reader) {
            Ok(p) => Ok(Box::new(p)),
            Err(KeyError::NoPsam(_)) if reader == crate::config::AUTO => {
                Ok(Box::new(NoKeys::default()))
            }
            Err(e) => Err(e.into()),
        },
        _ => Ok(Box::new(NoKeys::default())),
    }
}

/// `iReadCardBas_HSM_Step1`: the step-1 line; the card's connection and step-1 state stay in
/// the library for step 2, replacing this thread's earlier step 1 (whose connection ends
/// first, so that a configured reset cannot reach the new step 1).
pub fn hsm_step1(cfg: &Config, order: &[Interface]) -> Result<String, UnifiedError> {
    let me = std::thread::current().id();
    if let Some(old) = pending(|p| p.by_thread.remove(&me)) {
        end(old, cfg);
    }
    let ctx = establish()?;
    let mut keys = step1_keys(cfg, &ctx)?;
    let (line, kept) = with_card(cfg, &ctx, order, |mut conn| {
        let step1 = {
            let mut tx = conn.transaction()?;
            Session::open(&mut tx, keys.as_mut())?.hsm_step1()?
        };
        Ok((
            step1.line().to_string(),
            Pending::Live {
                conn,
                step1: Box::new(step1),
            },
        ))
    })?;
    drop(keys);
    let reader = kept.reader().to_string();
    let superseded = pending(|p| {
        let others = p.take_others(me, |o| o.reader() == reader);
        for (thread, _) in &others {
            p.put(
                *thread,
                Pending::Superseded {
                    reader: reader.clone(),
                },
            );
        }
        let old = p.put(me, kept);
        (others, old)
    });
    // Their connections are left, never reset: the card now holds this step 1's state.
    for (_, other) in superseded.0 {
        if let Pending::Live { conn, .. } = other {
            let _ = conn.disconnect(Disposition::Leave);
        }
    }
    if let Some(old) = superseded.1 {
        end(old, cfg);
    }
    Ok(line)
}

/// Ends a step 1 the library kept, its connection as the configuration says.
fn end(old: Pending, cfg: &Config) {
    if let Pending::Live { conn, .. } = old {
        // A card already gone has nothing left to leave or reset.
        let _ = conn.disconnect(cfg.card_disposition);
    }
}

/// Step 2's error: a card reset since step 1 says what may have reset it, this library's own
/// configured reset included.
fn step2_error(e: UnifiedError, cfg: &Config) -> UnifiedError {
    match e {
        UnifiedError::Transport(TransportError::CardReset)
        | UnifiedError::Ssc(SscError::Transport(TransportError::CardReset)) => {
            UnifiedError::ResetSinceStep1 {
                by_library: cfg.card_disposition == Disposition::Reset,
            }
        }
        e => e,
    }
}

/// `iReadCardBas_HSM_Step2`: continues a step 1 (see the module's rule), once, with the
/// machine's `pKey`; read basic info's line. A malformed `pKey` (−23) leaves step 1 in place.
pub fn hsm_step2(cfg: &Config, pkey: &[u8]) -> Result<String, UnifiedError> {
    let key: PKey = cfg.encoding.decode(pkey, "pKey")?.parse()?;
    let me = std::thread::current().id();
    let (mut conn, step1) = match pending(|p| p.take(me)).ok_or(UnifiedError::NoStep1)? {
        Pending::Live { conn, step1 } => (conn, step1),
        Pending::Superseded { reader } => return Err(UnifiedError::Superseded { reader }),
    };
    let reader = conn.reader().to_string();
    let result = readers::holding(&reader, || {
        let terminal = Some(step1.line().terminal_number.clone()).filter(|t| !t.is_empty());
        let mut keys = NoKeys { terminal };
        let mut tx = conn.transaction()?;
        let mut s = Session::resume(&mut tx, &mut keys, &step1)?;
        s.set_device_number(cfg.device_number.clone());
        Ok(s.hsm_step2(&step1, &key)?.unified_line())
    });
    let _ = conn.disconnect(cfg.card_disposition);
    result.map_err(|e| step2_error(e, cfg))
}

/// The encryption machine's step (`iSscardHsmStep2`): `pKey` for a step-1 line from the
/// configured key source.
pub fn hsm_step2_key_line(cfg: &Config, step1: &[u8]) -> Result<String, UnifiedError> {
    let line: Step1Line = cfg.encoding.decode(step1, "pStep1")?.parse()?;
    let mut keys = readers::key_source(cfg, None)?;
    Ok(hsm_step2_key(keys.as_mut(), &line)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other_thread() -> ThreadId {
        std::thread::spawn(|| std::thread::current().id())
            .join()
            .unwrap()
    }

    #[test]
    fn a_step_2_continues_its_own_threads_step_1_else_the_only_one() {
        let me = std::thread::current().id();
        let (a, b) = (other_thread(), other_thread());
        let mut p = PerThread {
            by_thread: HashMap::new(),
        };
        // Nothing pending.
        assert_eq!(p.take(me), None);
        // The process's only step 1, from another thread (an async caller resumed elsewhere).
        p.put(a, "a");
        assert_eq!(p.take(me), Some("a"));
        assert_eq!(p.take(me), None, "each step 1 serves one step 2");
        // Two other threads' steps 1: neither is this thread's to continue.
        p.put(a, "a");
        p.put(b, "b");
        assert_eq!(p.take(me), None);
        // This thread's own wins over the others'.
        assert_eq!(p.put(me, "mine 1"), None);
        assert_eq!(p.put(me, "mine 2"), Some("mine 1"), "a new step 1 replaces");
        assert_eq!(p.take(me), Some("mine 2"));
        assert_eq!(p.take(a), Some("a"));
        // Now b's is the only one.
        assert_eq!(p.take(me), Some("b"));
        // Other threads' values on one reader are picked out; this thread's is not.
        p.put(me, "R1 mine");
        p.put(a, "R1 a");
        p.put(b, "R2 b");
        let taken = p.take_others(me, |v| v.starts_with("R1"));
        assert_eq!(taken, [(a, "R1 a")]);
        assert_eq!(p.by_thread.len(), 2);
    }

    #[test]
    fn a_reset_since_step_1_names_the_configured_reset() {
        let reset = || UnifiedError::Ssc(SscError::Transport(TransportError::CardReset));
        let mut cfg = Config::default();
        assert!(matches!(
            step2_error(reset(), &cfg),
            UnifiedError::ResetSinceStep1 { by_library: false }
        ));
        cfg.card_disposition = Disposition::Reset;
        assert!(matches!(
            step2_error(UnifiedError::Transport(TransportError::CardReset), &cfg),
            UnifiedError::ResetSinceStep1 { by_library: true }
        ));
        assert!(matches!(
            step2_error(UnifiedError::NoStep1, &cfg),
            UnifiedError::NoStep1
        ));
    }
}
