//! SM4 (GB/T 32907), the cipher of specification version `3.00`.

use super::{Algorithm, Key, Suite};
use cipher::generic_array::GenericArray;
use cipher::{BlockDecrypt, BlockEncrypt, KeyInit};

/// SM4, 16-byte blocks.
pub struct Sm4;

fn cipher(key: &Key) -> sm4::Sm4 {
    sm4::Sm4::new_from_slice(key.expose()).expect("16-byte key")
}

impl Suite for Sm4 {
    const BLOCK: usize = 16;
    const ALGORITHM: Algorithm = Algorithm::Sm4;

    fn encrypt_block(key: &Key, block: &mut [u8]) {
        cipher(key).encrypt_block(GenericArray::from_mut_slice(block));
    }

    fn decrypt_block(key: &Key, block: &mut [u8]) {
        cipher(key).decrypt_block(GenericArray::from_mut_slice(block));
    }
}
