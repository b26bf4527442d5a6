//! Every operation in the keyed, anchored audit chain of personalisation's journal
//! (`sscard_perso::journal`): one operator-action entry per request — client, operation, key
//! names, card, outcome; never data, keys or MACs — HMAC-chained under the key source's audit
//! key, the chain's head appended to the anchor file every [`ANCHOR_EVERY`] entries and at
//! shutdown. `sscard perso audit-verify --journal sqlite:FILE --keys SPEC` verifies it.
//!
//! The journal runs on a thread of its own with its own instance of the key source (its audit
//! key), so recording overlaps the next request's key work; a request is answered only after
//! its entry has committed (durable, then act). Records waiting together commit in one
//! transaction (group commit), so concurrent clients share the synchronous write.

use crate::open_hashes::{OpenHashes, Recording};
use sscard::keys::KeySource;
use sscard_perso::journal::{Journal, JournalError};
use std::path::PathBuf;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Entries between two anchors.
pub const ANCHOR_EVERY: u64 = 256;

/// The most records committed in one transaction.
pub const MAX_BATCH: usize = 256;

/// One request as the audit log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// The client's label (CN and fingerprint prefix).
    pub client: String,
    pub operation: &'static str,
    /// Key names, comma-separated; empty when the operation names none.
    pub kids: String,
    /// The card identification code (hex), when the request names a card.
    pub card_id: Option<String>,
    /// `ok`, or the refusal or error kind and its return code (`forbidden -23`).
    pub outcome: String,
}

impl AuditRecord {
    /// The entry's detail: `client=… kids=… card=… outcome=…`.
    pub fn detail(&self) -> String {
        format!(
            "client={} kids={} card={} outcome={}",
            self.client,
            if self.kids.is_empty() {
                "-"
            } else {
                &self.kids
            },
            self.card_id.as_deref().unwrap_or("-"),
            self.outcome
        )
    }
}

enum Msg {
    Record(AuditRecord, oneshot::Sender<Result<(), AuditError>>),
    Stop(mpsc::Sender<Result<(), AuditError>>),
}

/// The audit thread's handle.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    open: std::sync::Arc<OpenHashes>,
}

/// Why the audit log could not start or record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("audit key: {0}")]
    Keys(#[from] sscard::keys::KeyError),
    #[error("audit log: {0}")]
    Journal(#[from] JournalError),
    /// The transaction holding this record (and others recorded with it) failed.
    #[error("audit log: {0}")]
    Batch(std::sync::Arc<JournalError>),
    #[error("the audit log's thread has stopped")]
    Stopped,
}

impl sscard_core::classify::Classified for AuditError {
    fn return_code(&self) -> i32 {
        match self {
            Self::Keys(k) => k.return_code(),
            Self::Journal(j) => j.return_code(),
            Self::Batch(j) => j.return_code(),
            Self::Stopped => sscard_core::profile::codes::UNKNOWN,
        }
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        match self {
            Self::Keys(k) => k.exit_class(),
            Self::Journal(j) => j.exit_class(),
            Self::Batch(j) => j.exit_class(),
            Self::Stopped => sscard_core::classify::ExitClass::Other,
        }
    }
}

impl AuditLog {
    /// Creates the journal at `url` (`sqlite:FILE`, 0600) when it is not there, opens it with
    /// the key source `open` makes as the audit key (checked now: a source without an audit
    /// key is refused), and starts the thread. `anchor` is the anchor file; the log records
    /// station `keyd@STATION` and actor `keyd` (`own_log`).
    pub fn start(
        url: String,
        anchor: PathBuf,
        station: String,
        open: impl FnOnce() -> Result<Box<dyn KeySource>, AuditError> + Send + 'static,
    ) -> Result<Self, AuditError> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let open_hashes = std::sync::Arc::new(OpenHashes::default());
        let recorded = std::sync::Arc::clone(&open_hashes);
        std::thread::Builder::new()
            .name("keyd-audit".into())
            .spawn(move || {
                let opened = (|| -> Result<Journal, AuditError> {
                    let mut keys = open()?;
                    keys.audit_mac(b"keyd audit key probe")?;
                    // Every entry hash it makes is recorded until anchored past (`open_hashes`).
                    let keys = Box::new(Recording::new(keys, std::sync::Arc::clone(&recorded)));
                    Journal::init(&url, None)?;
                    // keyd's station and actor: reserved, `/v1/audit-mac` never MACs an entry or
                    // anchor naming them (`own_log`).
                    let station = crate::own_log::station(&station);
                    let mut j = Journal::open_audited(&url, keys, &station, crate::own_log::ACTOR)?;
                    j.audit("keyd started", "")?;
                    j.anchor(&anchor)?;
                    recorded.anchored();
                    Ok(j)
                })();
                let mut journal = match opened {
                    Ok(j) => {
                        let _ = ready_tx.send(Ok(()));
                        j
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut since_anchor = 0u64;
                while let Ok(first) = rx.recv() {
                    // Group commit: whatever else is already waiting goes into the same
                    // transaction, so concurrent requests share one synchronous write.
                    let mut batch = Vec::new();
                    let mut stop = None;
                    let mut next = Some(first);
                    while let Some(msg) = next.take() {
                        match msg {
                            Msg::Record(r, done) => batch.push((r, done)),
                            Msg::Stop(done) => {
                                stop = Some(done);
                                break;
                            }
                        }
                        if batch.len() < MAX_BATCH {
                            next = rx.try_recv().ok();
                        }
                    }
                    if !batch.is_empty() {
                        let events: Vec<(String, String)> = batch
                            .iter()
                            .map(|(r, _)| (format!("keyd {}", r.operation), r.detail()))
                            .collect();
                        let refs: Vec<(&str, &str)> = events
                            .iter()
                            .map(|(e, d)| (e.as_str(), d.as_str()))
                            .collect();
                        let res = journal.audit_all(&refs);
                        since_anchor += batch.len() as u64;
                        if res.is_ok() && since_anchor >= ANCHOR_EVERY {
                            since_anchor = 0;
                            match journal.anchor(&anchor) {
                                Ok(_) => recorded.anchored(),
                                Err(e) => tracing::error!("keyd: anchoring the audit log: {e}"),
                            }
                        }
                        let failed = res.err().map(std::sync::Arc::new);
                        for (_, done) in batch {
                            let _ = done.send(match &failed {
                                None => Ok(()),
                                Some(e) => Err(AuditError::Batch(std::sync::Arc::clone(e))),
                            });
                        }
                    }
                    if let Some(done) = stop {
                        let res = journal
                            .audit("keyd stopped", "")
                            .and_then(|()| journal.anchor(&anchor).map(drop))
                            .map_err(AuditError::from);
                        let _ = done.send(res);
                        return;
                    }
                }
            })
            .expect("spawning the audit thread");
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                tx,
                open: open_hashes,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(AuditError::Stopped),
        }
    }

    /// The hashes of keyd's entries an entry could still be chained onto unnoticed.
    pub fn open_hashes(&self) -> &OpenHashes {
        &self.open
    }

    /// Records `r`, awaiting its commit.
    pub async fn record(&self, r: AuditRecord) -> Result<(), AuditError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Record(r, tx))
            .map_err(|_| AuditError::Stopped)?;
        rx.await.map_err(|_| AuditError::Stopped)?
    }

    /// Records the stop and anchors the chain's head; blocks until done.
    pub fn stop(&self) -> Result<(), AuditError> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(Msg::Stop(tx))
            .map_err(|_| AuditError::Stopped)?;
        rx.recv().map_err(|_| AuditError::Stopped)?
    }
}
