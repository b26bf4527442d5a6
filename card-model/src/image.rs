//! Card images: the whole card memory as a versioned JSON document (see `docs/card-image.md`).

use crate::memory::{HexBytes, PsamMemory, SscMemory};
use serde::{Deserialize, Serialize};
use sscard_core::fsutil::{read_text_file_bounded, Limit, ReadError};
use std::path::Path;

/// The `format` field of every image.
pub const FORMAT: &str = "sscard-model-image";
/// The image version this build reads and writes.
pub const VERSION: u32 = 1;

/// The most an image file may hold: 4 MiB (a card's image is a few kilobytes). A larger file,
/// or a device that never ends, is refused with [`ImageError::TooLarge`].
pub const MAX_IMAGE_BYTES: u64 = 4 << 20;

const IMAGE_LIMIT: Limit = Limit::new("a card image", MAX_IMAGE_BYTES);

/// A card image: header, ATR and card memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub format: String,
    pub version: u32,
    pub atr: HexBytes,
    #[serde(flatten)]
    pub memory: Memory,
}

/// The memory of one card kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Memory {
    Ssc(SscMemory),
    Psam(PsamMemory),
}

/// Why an image cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    #[error("cannot read card image {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("card image {path} holds more than {limit} bytes, the most read for a card image")]
    TooLarge { path: String, limit: u64 },
    #[error("card image {path} is not valid: {detail}")]
    Invalid { path: String, detail: String },
    #[error("card image {path} has format {found:?} version {version}; this build reads {FORMAT:?} version {VERSION}")]
    WrongVersion {
        path: String,
        found: String,
        version: u32,
    },
}

impl Image {
    pub fn new(atr: Vec<u8>, memory: Memory) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            atr: HexBytes(atr),
            memory,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("images serialise") + "\n"
    }

    pub fn from_json(text: &str, path: &str) -> Result<Self, ImageError> {
        let image: Image = serde_json::from_str(text).map_err(|e| ImageError::Invalid {
            path: path.into(),
            detail: e.to_string(),
        })?;
        if image.format != FORMAT || image.version != VERSION {
            return Err(ImageError::WrongVersion {
                path: path.into(),
                found: image.format,
                version: image.version,
            });
        }
        Ok(image)
    }

    /// Reads an image file of at most [`MAX_IMAGE_BYTES`].
    pub fn load(path: &Path) -> Result<Self, ImageError> {
        let shown = path.display().to_string();
        let text = read_text_file_bounded(path, IMAGE_LIMIT).map_err(|e| match e {
            ReadError::TooLarge { limit, .. } => ImageError::TooLarge {
                path: shown.clone(),
                limit,
            },
            ReadError::Io { source, .. } => ImageError::Io {
                path: shown.clone(),
                source,
            },
            e => ImageError::Invalid {
                path: shown.clone(),
                detail: e.to_string(),
            },
        })?;
        Self::from_json(&text, &shown)
    }

    /// The image as JSON with every key value and the PIN replaced by `**`.
    pub fn masked_json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("images serialise");
        if let Some(keys) = v.get_mut("keys").and_then(|k| k.as_object_mut()) {
            for slot in keys.values_mut() {
                slot["value"] = serde_json::Value::String("**".into());
            }
        }
        serde_json::to_string_pretty(&v).expect("values serialise") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_image_is_refused_at_the_limit() {
        let e = Image::load(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(
            e,
            ImageError::TooLarge {
                limit: MAX_IMAGE_BYTES,
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "card image /dev/zero holds more than 4194304 bytes, the most read for a card image"
        );
    }
}
