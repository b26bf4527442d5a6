//! Where the key source runs. Key sources need not be `Send` (a PSAM holds a PC/SC connection,
//! a PKCS#11 session its token's state), so a source never crosses threads:
//!
//! - on one thread of its own ([`KeyWorker::start`]): a PSAM (one card), a PKCS#11 token (one
//!   session, whose operations take the time of the token); the async side hands jobs over a
//!   channel and awaits the answer without blocking a runtime thread;
//! - on the thread that handles the request ([`KeyWorker::per_thread`]): software keys, whose
//!   operations take microseconds — less than the two thread hops of a key thread. Each runtime
//!   thread opens its own instance of the source on first use (the key file read again; each
//!   instance's keys are zeroized when its thread ends), so there is no lock and no hop.
//!
//! [`KeyWorker::for_spec`] chooses by the source.

use sscard::keys::{KeyError, KeySource, KeySpec};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&mut dyn KeySource) + Send>;

type Opener = Arc<dyn Fn() -> Result<Box<dyn KeySource>, KeyError> + Send + Sync>;

/// The key source's thread, or the opener of one instance per thread; the thread ends when the
/// last handle is dropped.
#[derive(Clone)]
pub struct KeyWorker {
    mode: Mode,
}

#[derive(Clone)]
enum Mode {
    Thread(mpsc::Sender<Job>),
    PerThread { id: u64, open: Opener },
}

/// Why a job did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The key thread is gone (the source panicked or the server is stopping).
    #[error("the key source's thread has stopped")]
    Gone,
    /// The source could not be opened on the request's thread.
    #[error("opening the key source: {0}")]
    Open(KeyError),
}

impl sscard_core::classify::Classified for WorkerError {
    fn return_code(&self) -> i32 {
        match self {
            Self::Gone => sscard_core::profile::codes::UNKNOWN,
            Self::Open(e) => e.return_code(),
        }
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        match self {
            Self::Gone => sscard_core::classify::ExitClass::Other,
            Self::Open(e) => e.exit_class(),
        }
    }
}

/// Which [`KeyWorker::per_thread`] a thread's instance belongs to.
static WORKERS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's instances of per-thread sources, by worker.
    static SOURCES: RefCell<HashMap<u64, Box<dyn KeySource>>> = RefCell::new(HashMap::new());
}

/// Whether `spec`'s operations are quick enough to run on the request's thread: software keys.
pub fn runs_per_thread(spec: &KeySpec) -> bool {
    matches!(spec, KeySpec::TestSet | KeySpec::Soft(_))
}

impl KeyWorker {
    /// [`KeyWorker::per_thread`] for software keys ([`runs_per_thread`]), else
    /// [`KeyWorker::start`].
    pub fn for_spec(
        spec: &KeySpec,
        open: impl Fn() -> Result<Box<dyn KeySource>, KeyError> + Send + Sync + 'static,
    ) -> Result<Self, KeyError> {
        if runs_per_thread(spec) {
            Self::per_thread(open)
        } else {
            Self::start(open)
        }
    }

    /// Starts the thread; `open` runs on it and makes the source (so a source that is not
    /// `Send` never crosses threads). An error opening it is returned here.
    pub fn start<E: Send + 'static>(
        open: impl FnOnce() -> Result<Box<dyn KeySource>, E> + Send + 'static,
    ) -> Result<Self, E> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("keyd-keys".into())
            .spawn(move || {
                let mut keys = match open() {
                    Ok(k) => {
                        let _ = ready_tx.send(Ok(()));
                        k
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    job(keys.as_mut());
                }
            })
            .expect("spawning the key thread");
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                mode: Mode::Thread(jobs),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => panic!("the key thread ended while opening the key source"),
        }
    }

    /// One instance of the source per thread that runs a job, opened by `open` on its first
    /// job there; opened once now (on this thread, kept for its jobs) so that an error shows
    /// at start.
    pub fn per_thread(
        open: impl Fn() -> Result<Box<dyn KeySource>, KeyError> + Send + Sync + 'static,
    ) -> Result<Self, KeyError> {
        let first = open()?;
        let id = WORKERS.fetch_add(1, Ordering::Relaxed);
        SOURCES.with(|s| s.borrow_mut().insert(id, first));
        Ok(Self {
            mode: Mode::PerThread {
                id,
                open: Arc::new(open),
            },
        })
    }

    /// Runs `f` on the key source and awaits its result.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn KeySource) -> T + Send + 'static,
    ) -> Result<T, WorkerError> {
        match &self.mode {
            Mode::Thread(jobs) => {
                let (tx, rx) = oneshot::channel();
                jobs.send(Box::new(move |k| {
                    let _ = tx.send(f(k));
                }))
                .map_err(|_| WorkerError::Gone)?;
                rx.await.map_err(|_| WorkerError::Gone)
            }
            Mode::PerThread { id, open } => SOURCES.with(|s| {
                let mut sources = s.borrow_mut();
                let source = match sources.entry(*id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(open().map_err(WorkerError::Open)?)
                    }
                };
                Ok(f(source.as_mut()))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard::keys::{CardRef, SoftKeys};
    use sscard_core::crypto::Algorithm;
    use sscard_core::profile::Kid;

    fn test_keys() -> Result<Box<dyn KeySource>, KeyError> {
        Ok(Box::new(SoftKeys::test_set()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn per_thread_and_key_thread_give_the_same_bytes() {
        fn job(k: &mut dyn KeySource) -> Vec<u8> {
            let card = CardRef::new([0x11; 16]);
            k.cryptogram(Algorithm::Tdes, &card, Kid::Irk, &[1, 2, 3, 4, 5, 6, 7, 8])
                .unwrap()
        }
        let own = KeyWorker::start(test_keys).unwrap();
        let per = KeyWorker::per_thread(test_keys).unwrap();
        assert!(runs_per_thread(&KeySpec::TestSet));
        assert!(!runs_per_thread(&KeySpec::Psam("r".into())));
        let expected = job(&mut SoftKeys::test_set());
        assert_eq!(own.run(job).await.unwrap(), expected);
        // On other runtime threads too (each opens its own instance).
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let per = per.clone();
            tasks.push(tokio::spawn(async move { per.run(job).await.unwrap() }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), expected);
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_instance_that_cannot_open_is_an_open_error() {
        use std::sync::atomic::AtomicBool;
        let opened = Arc::new(AtomicBool::new(false));
        let once = Arc::clone(&opened);
        // Opens once (at start), then fails: a new thread's first job gets the error.
        let worker = KeyWorker::per_thread(move || {
            if once.swap(true, Ordering::SeqCst) {
                Err(KeyError::BadSpec {
                    spec: "x".into(),
                    expected: "y",
                })
            } else {
                test_keys()
            }
        })
        .unwrap();
        let w = worker.clone();
        let other = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(w.run(|k| k.describe()))
        })
        .join()
        .unwrap();
        assert!(matches!(
            other,
            Err(WorkerError::Open(KeyError::BadSpec { expected: "y", .. }))
        ));
        // This thread kept the instance opened at start.
        assert!(worker.run(|k| k.describe()).await.is_ok());
    }
}
