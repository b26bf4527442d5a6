//! Persistent writes of card memory: atomic on disk (temporary file, fsync, rename, fsync of the
//! directory), private (an image holds the card's keys and PIN: mode 0600, through a temporary
//! file with a random name created exclusively, never through a planted symbolic link),
//! counted, and optionally torn at the n-th write to simulate a power cut.

use crate::image::Image;
use sscard_core::fsutil;
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

    /// Keeps a copy of every image written from now on (memory-only stores too), forgetting
    /// any kept before.
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
    /// built only when there is a file to write or a history to keep: a memory-only card pays
    /// for the count alone.
    pub fn save(&mut self, image: impl FnOnce() -> Image) -> Result<(), StoreError> {
        self.writes += 1;
        let torn = self.tear_at == Some(self.writes);
        if torn {
            self.tear_at = None;
        }
        let Some(path) = &self.path else {
            if torn {
                return Err(StoreError::Torn(self.writes));
            }
            if let Some(h) = &mut self.history {
                h.push(image());
            }
            return Ok(());
        };
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let image = image();
        let json = image.to_json();
        if torn {
            // Power goes while the temporary file is half written; the rename never happens.
            let (mut f, _) = fsutil::create_private_temp(path).map_err(io)?;
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

/// Writes `bytes` to `path` so that a power cut leaves either the old file or the new one,
/// readable by its owner alone: [`fsutil::write_atomic_private`] (a temporary file with a
/// random name beside it, created exclusively with mode 0600, fsync, rename over, fsync of the
/// directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fsutil::write_atomic_private(path, bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::build::{blank_ssc, SAMPLE_CARD_ID};
    use sscard_core::crypto::Algorithm;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn images_are_private_and_never_written_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        // Where the image store used to put its temporary file, an attacker's link.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        symlink(&victim, dir.path().join("card.tmp")).unwrap();
        let image = blank_ssc(Algorithm::Sm4, &SAMPLE_CARD_ID);
        let mut store = Store::file(&path);
        store.save(|| image.clone()).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(Image::load(&path).unwrap().to_json(), image.to_json());
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        // A torn write leaves a private, half-written temporary file and the old image.
        store.tear_at(1);
        assert!(matches!(
            store.save(|| image.clone()),
            Err(StoreError::Torn(2))
        ));
        let torn: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".tmp") && !p.is_symlink())
            .collect();
        assert_eq!(torn.len(), 1, "{torn:?}");
        assert_eq!(mode(&torn[0]), 0o600);
        assert_eq!(
            std::fs::metadata(&torn[0]).unwrap().len() as usize,
            image.to_json().len() / 2
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(Image::load(&path).unwrap().to_json(), image.to_json());
    }
}
