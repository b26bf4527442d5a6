//! PKCS#11 mechanism types that `cryptoki` 0.10 does not name, starting with
//! CKM_DES3_ECB_ENCRYPT_DATA (key derivation by 3DES-ECB encryption, which keeps the national
//! key hierarchy inside the token). `cryptoki` builds a `MechanismType` only from the values it
//! knows or from vendor-defined ones, so this crate holds the one `unsafe` line that makes one
//! from a standard value; the rest of sscard forbids `unsafe`.

use cryptoki::mechanism::MechanismType;
use cryptoki_sys::CK_MECHANISM_TYPE;

/// CKM_DES3_ECB_ENCRYPT_DATA (PKCS#11 v2.40 section 2.36): the derived key's value is the
/// base key's 3DES-ECB encryption of the data.
pub fn des3_ecb_encrypt_data() -> MechanismType {
    standard(cryptoki_sys::CKM_DES3_ECB_ENCRYPT_DATA)
}

/// CKM_DES3_CBC, which cryptoki can name but drops from mechanism lists.
pub fn des3_cbc() -> MechanismType {
    MechanismType::DES3_CBC
}

fn standard(value: CK_MECHANISM_TYPE) -> MechanismType {
    const _: () =
        assert!(std::mem::size_of::<MechanismType>() == std::mem::size_of::<CK_MECHANISM_TYPE>());
    // SAFETY: `MechanismType` is `#[repr(transparent)]` over its one `CK_MECHANISM_TYPE` field
    // (cryptoki relies on it to read mechanism lists from the token in place), and every
    // `CK_MECHANISM_TYPE` value is a valid `MechanismType`: cryptoki passes the value to the
    // module unchanged (`MechanismType::new_vendor_defined` builds arbitrary values the same
    // way, only limited to the vendor range).
    #[allow(unsafe_code)]
    unsafe {
        std::mem::transmute::<CK_MECHANISM_TYPE, MechanismType>(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_the_standard_value() {
        assert_eq!(*des3_ecb_encrypt_data(), 0x1102);
        assert_eq!(*des3_cbc(), cryptoki_sys::CKM_DES3_CBC);
        assert_eq!(
            des3_ecb_encrypt_data().to_string(),
            "CKM_DES3_ECB_ENCRYPT_DATA"
        );
    }
}
