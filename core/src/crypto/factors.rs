//! Diversification factors of the national hierarchy (PROFILE section 5).

use super::CryptoError;

fn region(code: &str) -> Result<&[u8], CryptoError> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code.as_bytes())
    } else {
        Err(CryptoError::BadRegionCode(code.into()))
    }
}

/// Province level factor: ASCII of the 2-digit province code ‖ `0000` ‖ `sh`, from a 6-digit
/// region code (`110000` or any code of the province, `110105`) → `"110000sh"`.
pub fn province_factor(province: &str) -> Result<[u8; 8], CryptoError> {
    let code = region(province)?;
    let mut f = *b"000000sh";
    f[..2].copy_from_slice(&code[..2]);
    Ok(f)
}

/// City level factor: ASCII of the 6-digit city code ‖ `sx`: `110100` → `"110100sx"`.
pub fn city_factor(city: &str) -> Result<[u8; 8], CryptoError> {
    let code = region(city)?;
    let mut f = *b"000000sx";
    f[..6].copy_from_slice(code);
    Ok(f)
}

/// Card level factor (profile choice): the last 8 bytes of the 16-byte card identification
/// code, which hold its serial part.
pub fn card_factor(card_id: &[u8]) -> Result<[u8; 8], CryptoError> {
    if card_id.len() != 16 {
        return Err(CryptoError::BadCardId { len: card_id.len() });
    }
    Ok(card_id[8..].try_into().expect("8 bytes"))
}
