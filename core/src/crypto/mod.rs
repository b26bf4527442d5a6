//! Block-cipher suites of PROFILE section 5: 3DES (two-key TDEA) and SM4, AES-128 ready for later
//! profiles. One code path for all of them: [`Suite`] is the small trait each cipher implements,
//! [`Algorithm`] picks a suite at run time (from the FCI or the specification version).

mod aes128;
mod error;
mod factors;
mod key;
pub mod padding;
mod sm4;
mod suite;
mod tdes;

pub use aes128::Aes128;
pub use error::CryptoError;
pub use factors::{card_factor, city_factor, province_factor};
pub use key::Key;
pub use sm4::Sm4;
pub use suite::{Algorithm, Suite};
pub use tdes::Tdes;

use subtle::ConstantTimeEq;

/// Compares MACs and cryptograms in constant time (false on a length mismatch).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
