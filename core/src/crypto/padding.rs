//! ISO/IEC 9797-1 padding method 2, the padding of MACs and of enciphered key loads.

use super::CryptoError;

/// Appends `80` then `00`s to a multiple of `block`; already aligned data gets a whole extra
/// block, so that padding is always removable.
pub fn pad_method2(data: &[u8], block: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + block);
    v.extend_from_slice(data);
    v.push(0x80);
    while v.len() % block != 0 {
        v.push(0);
    }
    v
}

/// Removes method-2 padding: trailing `00`s and the `80` before them. Data without an `80`
/// marker after its last data byte is [`CryptoError::BadPadding`].
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
