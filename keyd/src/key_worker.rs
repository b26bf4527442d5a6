//! The key source on one thread of its own. Key sources need not be `Send` (a PSAM holds a
//! PC/SC connection) and serialise their work anyway (a token session, a card); the async side
//! hands jobs over a channel and awaits the answer without blocking a runtime thread.

use sscard::keys::KeySource;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&mut dyn KeySource) + Send>;

/// The key source's thread; it ends when the last handle is dropped.
#[derive(Clone)]
pub struct KeyWorker {
    jobs: mpsc::Sender<Job>,
}

/// The key thread is gone (the source panicked or the server is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the key source's thread has stopped")]
pub struct WorkerGone;

impl KeyWorker {
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
            Ok(Ok(())) => Ok(Self { jobs }),
            Ok(Err(e)) => Err(e),
            Err(_) => panic!("the key thread ended while opening the key source"),
        }
    }

    /// Runs `f` on the key source and awaits its result.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn KeySource) -> T + Send + 'static,
    ) -> Result<T, WorkerGone> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |k| {
                let _ = tx.send(f(k));
            }))
            .map_err(|_| WorkerGone)?;
        rx.await.map_err(|_| WorkerGone)
    }
}
