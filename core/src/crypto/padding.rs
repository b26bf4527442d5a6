//! ISO/IEC 9797-1 padding method 2.

use super::CryptoError;

/// `80` then `00`s to a block multiple; a whole extra block when already aligned.
pub fn pad_method2(data: &[u8], block: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + block);
    v.extend_from_slice(data);
    v.push(0x80);
    while v.len() % block != 0 {
        v.push(0);
    }
    v
}

/// Removes method-2 padding.
pub fn unpad_method2(data: &[u8]) -> Result<&[u8], CryptoError> {
    let end = data
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(CryptoError::BadPadding)?;
    if data[end] != 0x80 {
        return Err(CryptoError::BadPadding);
    }
    Ok(&data[..end])
}
