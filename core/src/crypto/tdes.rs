//! Two-key TDEA, the cipher of specification version `2.00`.

use super::suite::mac_start;
use super::{Algorithm, Key, Suite};
use cipher::generic_array::GenericArray;
use cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::{Des, TdesEde2};
use zeroize::Zeroize;

/// Two-key TDEA (K1, K2, K1), 8-byte blocks.
pub struct Tdes;

fn tdes(key: &Key) -> TdesEde2 {
    TdesEde2::new_from_slice(key.expose()).expect("16-byte key")
}

fn des(half: &[u8]) -> Des {
    Des::new_from_slice(half).expect("8-byte key")
}

impl Suite for Tdes {
    const BLOCK: usize = 8;
    const ALGORITHM: Algorithm = Algorithm::Tdes;

    fn encrypt_block(key: &Key, block: &mut [u8]) {
        tdes(key).encrypt_block(GenericArray::from_mut_slice(block));
    }

    fn decrypt_block(key: &Key, block: &mut [u8]) {
        tdes(key).decrypt_block(GenericArray::from_mut_slice(block));
    }

    /// `3DES_ECB(K, D) ‖ 3DES_ECB(K, ~D)`: an 8-byte block yields half a key per encryption.
    fn diversify(key: &Key, factor: &[u8; 8]) -> Key {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(factor);
        out[8..].iter_mut().zip(factor).for_each(|(b, f)| *b = !f);
        let c = tdes(key);
        for half in out.chunks_mut(8) {
            c.encrypt_block(GenericArray::from_mut_slice(half));
        }
        let k = Key::new(out);
        out.zeroize();
        k
    }

    /// ISO/IEC 9797-1 MAC algorithm 3 (retail MAC): single-DES CBC under K1, then the last
    /// block decrypted under K2 and encrypted under K1, as PBOC-style cards compute it.
    fn cbc_mac(key: &Key, iv: &[u8], padded: &[u8]) -> Vec<u8> {
        let (k1, k2) = (des(key.left()), des(key.right()));
        let mut state = mac_start(iv, padded, 8);
        for chunk in padded.chunks(8) {
            state.iter_mut().zip(chunk).for_each(|(s, c)| *s ^= c);
            k1.encrypt_block(GenericArray::from_mut_slice(&mut state));
        }
        k2.decrypt_block(GenericArray::from_mut_slice(&mut state));
        k1.encrypt_block(GenericArray::from_mut_slice(&mut state));
        state
    }
}
