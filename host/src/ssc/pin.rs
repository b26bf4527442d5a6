//! PINs: 2–6 digits, BCD on the card, zeroized in memory, never printed.

use super::SscError;
use sscard_core::profile::INITIAL_PIN;
use zeroize::Zeroizing;

/// A cardholder PIN.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(**)")
    }
}

impl Pin {
    /// Checks the form: 2 to 6 digits (-33 otherwise).
    pub fn new(digits: &str) -> Result<Self, SscError> {
        let digits = digits.trim();
        if !(2..=6).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SscError::PinLength);
        }
        Ok(Self(Zeroizing::new(digits.to_string())))
    }

    pub fn is_initial(&self) -> bool {
        self.0.as_str() == INITIAL_PIN
    }

    /// BCD, an odd digit count padded with `F`.
    pub fn to_bcd(&self) -> Zeroizing<Vec<u8>> {
        let mut digits: Vec<u8> = self.0.bytes().map(|b| b - b'0').collect();
        if digits.len() % 2 == 1 {
            digits.push(0x0F);
        }
        let out = digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect();
        digits.iter_mut().for_each(|d| *d = 0);
        Zeroizing::new(out)
    }

    /// The seed's policy for a new PIN: not the initial PIN (-36), not trivially weak.
    pub fn check_new(&self) -> Result<(), SscError> {
        if self.is_initial() {
            return Err(SscError::NewPinIsInitial);
        }
        let d = self.0.as_bytes();
        if d.iter().all(|&c| c == d[0]) {
            return Err(SscError::WeakPin("all digits are equal"));
        }
        let steps: Vec<i16> = d.windows(2).map(|w| w[1] as i16 - w[0] as i16).collect();
        if steps.iter().all(|&s| s == 1) || steps.iter().all(|&s| s == -1) {
            return Err(SscError::WeakPin("the digits are a sequence"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins() {
        assert_eq!(
            &Pin::new("123456").unwrap().to_bcd()[..],
            &[0x12, 0x34, 0x56]
        );
        assert_eq!(
            &Pin::new("12345").unwrap().to_bcd()[..],
            &[0x12, 0x34, 0x5F]
        );
        assert_eq!(Pin::new("1").unwrap_err(), SscError::PinLength);
        assert_eq!(Pin::new("12a4").unwrap_err(), SscError::PinLength);
        assert_eq!(
            Pin::new("123456").unwrap().check_new(),
            Err(SscError::NewPinIsInitial)
        );
        assert_eq!(
            Pin::new("111111").unwrap().check_new(),
            Err(SscError::WeakPin("all digits are equal"))
        );
        assert_eq!(
            Pin::new("654321").unwrap().check_new(),
            Err(SscError::WeakPin("the digits are a sequence"))
        );
        assert!(Pin::new("802417").unwrap().check_new().is_ok());
        assert_eq!(format!("{:?}", Pin::new("802417").unwrap()), "Pin(**)");
    }
}
