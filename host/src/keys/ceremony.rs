//! Key ceremony (dual control): a master key is never typed by one person. Each of N custodians
//! enters a key component with its check value; the master is the XOR of the components, built
//! in zeroized memory, and only its check value is shown.
//!
//! A check value (KCV) is, as usual in card production, the first 3 bytes of the 3DES-ECB
//! encryption of eight zero bytes under the key. It identifies a key without revealing it.

use sscard_core::crypto::{ct_eq, Algorithm, Key};
use sscard_core::hexfmt::{parse_hex, to_hex};
use zeroize::Zeroizing;

/// Why a component was refused. Messages name the component by its number and never show it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentError {
    #[error("a key ceremony needs at least 2 components (dual control), not {count}")]
    TooFew { count: usize },
    #[error("component {component}: expected a line COMPONENT-HEX KCV-HEX")]
    NotALine { component: usize },
    #[error("component {component}: a component is 32 hex digits (16 bytes, two-key TDEA)")]
    BadComponent { component: usize },
    #[error("component {component}: a check value is 6 hex digits")]
    BadCheckValue { component: usize },
    #[error("component {component}: check value {entered} does not match the component; nothing was imported, enter the components again")]
    WrongCheckValue { component: usize, entered: String },
    #[error("only {entered} of {expected} components were entered; nothing was imported")]
    Incomplete { entered: usize, expected: usize },
    #[error(
        "the components XOR to zero (the same component entered twice?); nothing was imported"
    )]
    ZeroKey,
}

/// The check value of a key: the first 3 bytes of `3DES-ECB(key, 00…00)`.
pub fn check_value(key: &Key) -> [u8; 3] {
    let block = Algorithm::Tdes
        .encrypt_ecb(key, &[0; 8])
        .expect("one whole block");
    [block[0], block[1], block[2]]
}

/// Components entered so far, combined.
pub struct Ceremony {
    expected: usize,
    entered: usize,
    combined: Zeroizing<[u8; 16]>,
}

impl Ceremony {
    /// A ceremony of `count` components (at least 2).
    pub fn new(count: usize) -> Result<Self, ComponentError> {
        if count < 2 {
            return Err(ComponentError::TooFew { count });
        }
        Ok(Self {
            expected: count,
            entered: 0,
            combined: Zeroizing::new([0; 16]),
        })
    }

    /// How many components the ceremony takes.
    pub fn count(&self) -> usize {
        self.expected
    }

    /// The number (1-based) of the component to enter next.
    pub fn next_number(&self) -> usize {
        self.entered + 1
    }

    /// Whether every component was entered.
    pub fn is_complete(&self) -> bool {
        self.entered == self.expected
    }

    /// Adds the next component after checking it against its check value.
    pub fn add(&mut self, component_hex: &str, kcv_hex: &str) -> Result<(), ComponentError> {
        let number = self.next_number();
        // The hex parser's own messages quote the offending character: not for a component.
        let bytes = Zeroizing::new(
            parse_hex(component_hex)
                .map_err(|_| ComponentError::BadComponent { component: number })?,
        );
        let component = Key::from_slice(&bytes)
            .map_err(|_| ComponentError::BadComponent { component: number })?;
        let kcv = parse_hex(kcv_hex)
            .ok()
            .filter(|k| k.len() == 3)
            .ok_or(ComponentError::BadCheckValue { component: number })?;
        if !ct_eq(&check_value(&component), &kcv) {
            return Err(ComponentError::WrongCheckValue {
                component: number,
                entered: to_hex(&kcv),
            });
        }
        for (c, b) in self.combined.iter_mut().zip(component.expose()) {
            *c ^= b;
        }
        self.entered += 1;
        Ok(())
    }

    /// Adds the next component from a line `COMPONENT-HEX KCV-HEX` (the component may be
    /// grouped with spaces; the last word is the check value).
    pub fn add_line(&mut self, line: &str) -> Result<(), ComponentError> {
        let line = line.trim();
        let not_a_line = ComponentError::NotALine {
            component: self.next_number(),
        };
        let (component, kcv) = line
            .rsplit_once(char::is_whitespace)
            .ok_or(not_a_line.clone())?;
        if component.trim().is_empty() {
            return Err(not_a_line);
        }
        self.add(component, kcv)
    }

    /// The combined key and its check value, once every component is in.
    pub fn finish(self) -> Result<(Key, [u8; 3]), ComponentError> {
        if !self.is_complete() {
            return Err(ComponentError::Incomplete {
                entered: self.entered,
                expected: self.expected,
            });
        }
        if self.combined.iter().all(|b| *b == 0) {
            return Err(ComponentError::ZeroKey);
        }
        let key = Key::new(*self.combined);
        let kcv = check_value(&key);
        Ok((key, kcv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const C1: &str = "0123456789ABCDEFFEDCBA9876543210";
    const C2: &str = "32107654BA98FEDC89ABCDEF01234567";

    fn kcv_hex(hex: &str) -> String {
        to_hex(&check_value(
            &Key::from_slice(&parse_hex(hex).unwrap()).unwrap(),
        ))
    }

    #[test]
    fn check_values_follow_the_usual_definition() {
        // 3DES-ECB of zeros under 0123456789ABCDEFFEDCBA9876543210 is 08D7B4FB629D0885.
        assert_eq!(kcv_hex(C1), "08D7B4");
        // openssl enc -des-ede -nopad of eight zero bytes.
        assert_eq!(kcv_hex("33333333333333334444444444444444"), "E18DE2");
    }

    #[test]
    fn two_components_combine_by_xor() {
        let mut c = Ceremony::new(2).unwrap();
        c.add(C1, &kcv_hex(C1)).unwrap();
        assert_eq!(c.next_number(), 2);
        c.add_line(&format!(
            "3210 7654 BA98 FEDC 89AB CDEF 0123 4567  {}",
            kcv_hex(C2)
        ))
        .unwrap();
        let (key, kcv) = c.finish().unwrap();
        assert_eq!(to_hex(key.expose()), "33333333333333337777777777777777");
        assert_eq!(to_hex(&kcv), "608A26");
    }

    #[test]
    fn refusals_name_the_component_and_never_show_it() {
        let mut c = Ceremony::new(3).unwrap();
        c.add(C1, &kcv_hex(C1)).unwrap();
        let e = c.add(C2, "000000").unwrap_err();
        assert_eq!(
            e,
            ComponentError::WrongCheckValue {
                component: 2,
                entered: "000000".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "component 2: check value 000000 does not match the component; nothing was imported, enter the components again"
        );
        assert_eq!(
            c.add("32107654BA98FEDC89ABCDEF0123456X", "000000")
                .unwrap_err()
                .to_string(),
            "component 2: a component is 32 hex digits (16 bytes, two-key TDEA)"
        );
        assert_eq!(
            c.add(C2, "0000").unwrap_err(),
            ComponentError::BadCheckValue { component: 2 }
        );
        assert_eq!(
            c.add_line(C2).unwrap_err(),
            ComponentError::NotALine { component: 2 }
        );
        assert_eq!(
            Ceremony::new(1).err().unwrap(),
            ComponentError::TooFew { count: 1 }
        );
        c.add(C2, &kcv_hex(C2)).unwrap();
        assert_eq!(
            c.finish().err().unwrap(),
            ComponentError::Incomplete {
                entered: 2,
                expected: 3
            }
        );
        let mut same = Ceremony::new(2).unwrap();
        same.add(C1, &kcv_hex(C1)).unwrap();
        same.add(C1, &kcv_hex(C1)).unwrap();
        assert_eq!(same.finish().err().unwrap(), ComponentError::ZeroKey);
    }

    proptest! {
        #[test]
        fn any_components_combine_to_their_xor(parts in proptest::collection::vec(any::<[u8; 16]>(), 2..5)) {
            let mut c = Ceremony::new(parts.len()).unwrap();
            for p in &parts {
                let key = Key::new(*p);
                c.add(&to_hex(p), &to_hex(&check_value(&key))).unwrap();
            }
            let want = parts.iter().fold([0u8; 16], |mut acc, p| {
                acc.iter_mut().zip(p).for_each(|(a, b)| *a ^= b);
                acc
            });
            prop_assume!(want != [0; 16]);
            let (key, kcv) = c.finish().unwrap();
            prop_assert_eq!(key.expose(), &want);
            prop_assert_eq!(kcv, check_value(&Key::new(want)));
        }
    }
}
