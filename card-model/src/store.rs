//! Persistent writes of card memory: atomic on disk (temporary file, fsync, rename, fsync of the
//! directory), counted, and optionally torn at the n-th write to simulate a power cut.

use crate::image::Image;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A persistent write that did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The tearing hook cut power: the write did not land; the old image stands.
    #[error("power cut during persistent write {0}")]
    Torn(u64),
    #[error("cannot write card image {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Where card memory goes when it changes.
#[derive(Debug, Default)]
pub struct Store {
    path: Option<PathBuf>,
    writes: u64,
    tear_at: Option<u64>,
    /// Every image written, when recording (tearing campaigns compare against it).
    history: Option<Vec<Image>>,
}

impl Store {
    /// Memory only: writes are counted (and can be torn) but go nowhere.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Backed by an image file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// Cuts power at the n-th persistent write from now (1 = the next one).
    pub fn tear_at(&mut self, n: u64) {
        self.tear_at = Some(self.writes + n);
    }

    /// Keeps a copy of every image written from now on.
    pub fn record_history(&mut self) {
        self.history = Some(Vec::new());
    }

    /// The images written since [`Store::record_history`], oldest first.
    pub fn history(&self) -> &[Image] {
        self.history.as_deref().unwrap_or_default()
    }

    /// Persistent writes so far.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Writes the image; either the whole new image lands or the old one stays. The image is
    /// built only when there is a file to write: a memory-only card pays for the count alone.
    pub fn save(&mut self, image: impl FnOnce() -> Image) -> Result<(), StoreError> {
        self.writes += 1;
        let torn = self.tear_at == Some(self.writes);
        if torn {
            self.tear_at = None;
        }
        let Some(path) = &self.path else {
            return if torn {
                Err(StoreError::Torn(self.writes))
            } else {
                Ok(())
            };
        };
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let image = image();
        let json = image.to_json();
        if torn {
            // Power goes while the temporary file is half written; the rename never happens.
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path.with_extension("tmp"))
                .map_err(io)?;
            f.write_all(&json.as_bytes()[..json.len() / 2])
                .map_err(io)?;
            return Err(StoreError::Torn(self.writes));
        }
        write_atomic(path, json.as_bytes()).map_err(io)?;
        if let Some(h) = &mut self.history {
            h.push(image);
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` so that a power cut leaves either the old file or the new one:
/// a temporary file beside it, fsync, rename over, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}
