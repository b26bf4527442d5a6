//! AES-128 (FIPS 197), in no profile yet.

use super::{Algorithm, Key, Suite};
use cipher::generic_array::GenericArray;
use cipher::{BlockDecrypt, BlockEncrypt, KeyInit};

/// AES-128, 16-byte blocks: the same shapes as SM4, ready for a later profile.
pub struct Aes128;

fn cipher(key: &Key) -> aes::Aes128 {
    aes::Aes128::new_from_slice(key.expose()).expect("16-byte key")
}

impl Suite for Aes128 {
    const BLOCK: usize = 16;
    const ALGORITHM: Algorithm = Algorithm::Aes128;

    fn encrypt_block(key: &Key, block: &mut [u8]) {
        cipher(key).encrypt_block(GenericArray::from_mut_slice(block));
    }

    fn decrypt_block(key: &Key, block: &mut [u8]) {
        cipher(key).decrypt_block(GenericArray::from_mut_slice(block));
    }
}
