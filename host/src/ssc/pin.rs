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
    /// Built straight into a zeroizing buffer of its final size: no plain copy of the digits
    /// is left behind.
    pub fn to_bcd(&self) -> Zeroizing<Vec<u8>> {
        let digits = self.0.as_bytes();
        let mut out = Zeroizing::new(Vec::with_capacity(digits.len().div_ceil(2)));
        for pair in digits.chunks(2) {
            let high = pair[0] - b'0';
            let low = pair.get(1).map_or(0x0F, |d| d - b'0');
            out.push(high << 4 | low);
        }
        out
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
