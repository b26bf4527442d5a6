//! The C boundary: the exported functions of PROFILE section 10 (`include/sscard_unified.h`).
//! All of the crate's `unsafe` is here: reading the caller's strings and writing its buffers.
//!
//! Every export runs its body under [`std::panic::catch_unwind`] (a panic is −999 with a text,
//! never an unwind into C) and with Rust's panic message silenced for that thread (the library
//! prints nothing). A NULL output buffer is refused with −23 and nothing written; any other
//! NULL argument is −23 with the error text in `pOutInfo`. Input strings are read up to their
//! NUL, at most their argument's limit and one byte more (a PIN 6 bytes, `pCardInfo` 128,
//! `pFileAddr` 1024, `pWriteData` 2048, `pKey` and `pStep1` 512): a longer one is −23 (−33 for
//! a PIN) without reading further. `iType` is checked once, first. Output is written only when it fits the buffer's contract
//! ([`MAX_OUTPUT`] bytes and the NUL for `pOutInfo`); a longer answer is −23 with an error text,
//! and an error text is cut (on a character boundary) to fit.
#![allow(unsafe_code)]
#![allow(non_snake_case)]

use crate::calls;
use crate::config::Config;
use crate::encoding::Encoding;
use crate::error::{UnifiedError, MAX_OUTPUT};
use crate::readers::search_order;
use sscard::ssc::SscError;
use sscard::unified::{MAX_CARD_INFO, MAX_FILE_ADDR, MAX_STEP_LINE, MAX_WRITE_DATA};
use sscard_core::classify::Classified;
use sscard_core::profile::codes;
use std::cell::Cell;
use std::os::raw::{c_char, c_int, c_long};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The most digits of a PIN (PROFILE section 7: 2 to 6).
pub const MAX_PIN: usize = 6;
/// `pReaderSN` holds at least this many bytes: a serial number of 64 bytes shown as hex, and
/// the NUL.
pub const READER_SN_SIZE: usize = 129;
/// `pPsamTermNo` holds at least this many bytes: 12 digits and the NUL.
pub const PSAM_TERM_NO_SIZE: usize = 13;

thread_local! {
    /// Whether this thread is inside an export: its panics are caught and reported, not printed.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once, a panic hook that stays silent for panics inside the library and hands
/// every other panic to the hook that was there before.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !INSIDE.with(Cell::get) {
                previous(info)
            }
        }));
    });
}

/// Runs `body` with panics caught (−999).
fn caught<T>(body: impl FnOnce() -> Result<T, UnifiedError>) -> Result<T, UnifiedError> {
    quiet_panics();
    let was = INSIDE.with(|i| i.replace(true));
    let r = catch_unwind(AssertUnwindSafe(body)).unwrap_or(Err(UnifiedError::Panic));
    INSIDE.with(|i| i.set(was));
    r
}

/// The bytes of the C string `p` (without its NUL), at most `limit` of them.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string (or to at least `limit` + 1 readable
/// bytes), valid for the call.
unsafe fn input<'a>(
    p: *const c_char,
    argument: &'static str,
    limit: usize,
) -> Result<&'a [u8], UnifiedError> {
    if p.is_null() {
        return Err(UnifiedError::Null { argument });
    }
    let p = p.cast::<u8>();
    for n in 0..=limit {
        // SAFETY: the caller's string is readable up to its NUL, which is not before n.
        if unsafe { *p.add(n) } == 0 {
            // SAFETY: the n bytes before the NUL are readable and live for the call.
            return Ok(unsafe { std::slice::from_raw_parts(p, n) });
        }
    }
    Err(UnifiedError::Unterminated { argument, limit })
}

/// A PIN argument's bytes: one longer than a PIN can be is a PIN of the wrong length (−33).
///
/// # Safety
/// As [`input`]'s.
unsafe fn pin_input<'a>(
    p: *const c_char,
    argument: &'static str,
) -> Result<&'a [u8], UnifiedError> {
    // SAFETY: the caller's contract is input's.
    match unsafe { input(p, argument, MAX_PIN) } {
        Err(UnifiedError::Unterminated { .. }) => Err(SscError::PinLength.into()),
        r => r,
    }
}

/// `pCardInfo`, which may be absent: NULL or empty (C# and JNA pass "" for a null string).
///
/// # Safety
/// As [`input`]'s.
unsafe fn card_info<'a>(p: *const c_char) -> Result<Option<&'a [u8]>, UnifiedError> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract is input's.
    let bytes = unsafe { input(p, "pCardInfo", MAX_CARD_INFO) }?;
    Ok(Some(bytes).filter(|b| !b.is_empty()))
}

/// `pCardInfo` where it is required.
///
/// # Safety
/// As [`input`]'s.
unsafe fn required_card_info<'a>(p: *const c_char) -> Result<&'a [u8], UnifiedError> {
    // SAFETY: the caller's contract is input's.
    unsafe { card_info(p) }?.ok_or(UnifiedError::NoCardInfo)
}

/// Copies `bytes` and a NUL to `p`.
///
/// # Safety
/// `p` is not NULL and points to at least `bytes.len() + 1` writable bytes.
unsafe fn write(p: *mut c_char, bytes: &[u8]) {
    // SAFETY: the caller's buffer holds bytes.len() + 1 bytes (its contract, checked by the
    // callers of `write` against the length).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast::<u8>(), bytes.len());
        *p.add(bytes.len()) = 0;
    }
}

/// `text` in `encoding` when it fits `max` bytes.
fn fitted(
    encoding: Encoding,
    text: &str,
    argument: &'static str,
    max: usize,
) -> Result<Vec<u8>, UnifiedError> {
    let bytes = encoding.encode(text)?;
    if bytes.len() > max {
        return Err(UnifiedError::OutputTooLong {
            argument,
            len: bytes.len(),
            max,
        });
    }
    Ok(bytes)
}

/// An error's text in `encoding`, cut to `max` bytes on a character boundary.
fn error_text(encoding: Encoding, e: &UnifiedError, max: usize) -> Vec<u8> {
    let text = e.to_string();
    let mut end = text.len();
    loop {
        let bytes = encoding.encode_lossy(&text[..end]);
        if bytes.len() <= max {
            return bytes;
        }
        end = text[..end].char_indices().last().map_or(0, |(i, _)| i);
    }
}

fn code(e: &UnifiedError) -> c_long {
    c_long::from(e.return_code())
}

/// The one shape of every export with an output buffer: refuse a NULL `out`, load the
/// configuration, run `body` with panics caught, write its line or the error text.
///
/// # Safety
/// `out` is NULL or points to at least [`MAX_OUTPUT`] + 1 writable bytes.
unsafe fn answer(
    out: *mut c_char,
    body: impl FnOnce(&Config) -> Result<String, UnifiedError>,
) -> c_long {
    if out.is_null() {
        return c_long::from(codes::INVALID_DATA);
    }
    let mut encoding = Encoding::Gbk;
    let result = caught(|| {
        let cfg = Config::load()?;
        encoding = cfg.encoding;
        let line = body(&cfg)?;
        fitted(cfg.encoding, &line, "pOutInfo", MAX_OUTPUT)
    });
    match result {
        Ok(bytes) => {
            // SAFETY: `out` holds MAX_OUTPUT + 1 bytes and `bytes` at most MAX_OUTPUT.
            unsafe { write(out, &bytes) };
            c_long::from(codes::SUCCESS)
        }
        Err(e) => {
            // SAFETY: as above; the error text is cut to MAX_OUTPUT.
            unsafe { write(out, &error_text(encoding, &e, MAX_OUTPUT)) };
            code(&e)
        }
    }
}

/// Reads basic info (PROFILE section 7): the `|`-terminated line in `pOutInfo`.
///
/// # Safety
/// `pOutInfo` is NULL or a buffer of at least 2048 bytes.
#[no_mangle]
pub unsafe extern "C" fn iReadCardBas(iType: c_int, pOutInfo: *mut c_char) -> c_long {
    // SAFETY: pOutInfo's contract is answer's.
    unsafe { answer(pOutInfo, |cfg| calls::read_basic(cfg, search_order(iType)?)) }
}

/// VERIFY with the PIN from the reader's PIN pad, else from the controlling terminal.
///
/// # Safety
/// `pOutInfo` is NULL or a buffer of at least 2048 bytes.
#[no_mangle]
pub unsafe extern "C" fn iVerifyPIN(iType: c_int, pOutInfo: *mut c_char) -> c_long {
    // SAFETY: pOutInfo's contract is answer's.
    unsafe {
        answer(pOutInfo, |cfg| {
            calls::verify_entered(cfg, search_order(iType)?).map(|()| String::new())
        })
    }
}

/// CHANGE PIN with the PINs from the reader's PIN pad, else from the controlling terminal.
///
/// # Safety
/// `pOutInfo` is NULL or a buffer of at least 2048 bytes.
#[no_mangle]
pub unsafe extern "C" fn iChangePIN(iType: c_int, pOutInfo: *mut c_char) -> c_long {
    // SAFETY: pOutInfo's contract is answer's.
    unsafe {
        answer(pOutInfo, |cfg| {
            calls::change_entered(cfg, search_order(iType)?).map(|()| String::new())
        })
    }
}

/// VERIFY with the PIN given as text.
///
/// # Safety
/// `pPIN` is NULL or a NUL-terminated string; `pOutInfo` is NULL or a buffer of at least 2048
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn iVerifyPINK(
    iType: c_int,
    pPIN: *mut c_char,
    pOutInfo: *mut c_char,
) -> c_long {
    // SAFETY: the arguments' contracts are input's and answer's.
    unsafe {
        answer(pOutInfo, |cfg| {
            let order = search_order(iType)?;
            let pin = calls::given_pin(cfg, pin_input(pPIN, "pPIN")?, "pPIN")?;
            calls::verify_given(cfg, order, &pin).map(|()| String::new())
        })
    }
}

/// CHANGE PIN with the PINs given as text.
///
/// # Safety
/// `pOldPIN` and `pNewPIN` are NULL or NUL-terminated strings; `pOutInfo` is NULL or a buffer
/// of at least 2048 bytes.
#[no_mangle]
pub unsafe extern "C" fn iChangePINK(
    iType: c_int,
    pOldPIN: *mut c_char,
    pNewPIN: *mut c_char,
    pOutInfo: *mut c_char,
) -> c_long {
    // SAFETY: the arguments' contracts are input's and answer's.
    unsafe {
        answer(pOutInfo, |cfg| {
            let order = search_order(iType)?;
            let old = calls::given_pin(cfg, pin_input(pOldPIN, "pOldPIN")?, "pOldPIN")?;
            let new = calls::given_pin(cfg, pin_input(pNewPIN, "pNewPIN")?, "pNewPIN")?;
            calls::change_given(cfg, order, &old, &new).map(|()| String::new())
        })
    }
}

/// Two-step reading, step 1: the step-1 line in `pOutInfo`; the card's connection and state
/// stay in the library for step 2.
///
/// # Safety
/// `pOutInfo` is NULL or a buffer of at least 2048 bytes.
#[no_mangle]
pub unsafe extern "C" fn iReadCardBas_HSM_Step1(iType: c_int, pOutInfo: *mut c_char) -> c_long {
    // SAFETY: pOutInfo's contract is answer's.
    unsafe { answer(pOutInfo, |cfg| calls::hsm_step1(cfg, search_order(iType)?)) }
}

/// Two-step reading, step 2: continues this thread's step 1 (else the process's only one) with
/// the encryption machine's `pKey`; read basic info's line in `pOutInfo`.
///
/// # Safety
/// `pKey` is NULL or a NUL-terminated string; `pOutInfo` is NULL or a buffer of at least 2048
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn iReadCardBas_HSM_Step2(
    pKey: *mut c_char,
    pOutInfo: *mut c_char,
) -> c_long {
    // SAFETY: the arguments' contracts are input's and answer's.
    unsafe {
        answer(pOutInfo, |cfg| {
            calls::hsm_step2(cfg, input(pKey, "pKey", MAX_STEP_LINE)?)
        })
    }
}

/// Reads the records `pFileAddr` names; `pCardInfo` may be NULL with `iAuthType` 0.
///
/// # Safety
/// `pCardInfo` and `pFileAddr` are NULL or NUL-terminated strings; `pOutInfo` is NULL or a
/// buffer of at least 2048 bytes.
#[no_mangle]
pub unsafe extern "C" fn iReadCard(
    iType: c_int,
    iAuthType: c_int,
    pCardInfo: *mut c_char,
    pFileAddr: *mut c_char,
    pOutInfo: *mut c_char,
) -> c_long {
    // SAFETY: the arguments' contracts are input's and answer's.
    unsafe {
        answer(pOutInfo, |cfg| {
            let order = search_order(iType)?;
            calls::read_items(
                cfg,
                order,
                iAuthType,
                card_info(pCardInfo)?,
                input(pFileAddr, "pFileAddr", MAX_FILE_ADDR)?,
            )
        })
    }
}

/// Writes `pWriteData` (the layout of `pFileAddr` with values) after checking `pCardInfo`.
///
/// # Safety
/// `pCardInfo`, `pFileAddr` and `pWriteData` are NULL or NUL-terminated strings; `pOutInfo` is
/// NULL or a buffer of at least 2048 bytes.
#[no_mangle]
pub unsafe extern "C" fn iWriteCard(
    iType: c_int,
    pCardInfo: *mut c_char,
    pFileAddr: *mut c_char,
    pWriteData: *mut c_char,
    pOutInfo: *mut c_char,
) -> c_long {
    // SAFETY: the arguments' contracts are input's and answer's.
    unsafe {
        answer(pOutInfo, |cfg| {
            let order = search_order(iType)?;
            calls::write_items(
                cfg,
                order,
                required_card_info(pCardInfo)?,
                input(pFileAddr, "pFileAddr", MAX_FILE_ADDR)?,
                input(pWriteData, "pWriteData", MAX_WRITE_DATA)?,
            )
            .map(|()| String::new())
        })
    }
}

/// RELOAD PIN under RPK after checking `pCardInfo`; the new PIN is typed twice on the
/// terminal.
///
/// # Safety
/// `pCardInfo` is NULL or a NUL-terminated string; `pOutInfo` is NULL or a buffer of at least
/// 2048 bytes.
#[no_mangle]
pub unsafe extern "C" fn iReloadPIN(
    iType: c_int,
    pCardInfo: *mut c_char,
    pOutInfo: *mut c_char,
) -> c_long {
    // SAFETY: the arguments' contracts are input's and answer's.
    unsafe {
        answer(pOutInfo, |cfg| {
            let order = search_order(iType)?;
            calls::reload_pin(cfg, order, required_card_info(pCardInfo)?).map(|()| String::new())
        })
    }
}

/// UNBLOCK PIN under UPK after checking `pCardInfo`.
///
/// # Safety
/// `pCardInfo` is NULL or a NUL-terminated string; `pOutInfo` is NULL or a buffer of at least
/// 2048 bytes.
#[no_mangle]
pub unsafe extern "C" fn iUnblockPIN(
    iType: c_int,
    pCardInfo: *mut c_char,
    pOutInfo: *mut c_char,
) -> c_long {
    // SAFETY: the arguments' contracts are input's and answer's.
    unsafe {
        answer(pOutInfo, |cfg| {
            let order = search_order(iType)?;
            calls::unblock_pin(cfg, order, required_card_info(pCardInfo)?).map(|()| String::new())
        })
    }
}

/// The encryption machine's step: `pKey` (`internal-auth value|external-auth cryptogram|`) for
/// the step-1 line `pStep1`, from the configured key source; on failure the error text.
///
/// # Safety
/// `pStep1` is NULL or a NUL-terminated string; `pKey` is NULL or a buffer of at least 2048
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn iSscardHsmStep2(pStep1: *const c_char, pKey: *mut c_char) -> c_long {
    // SAFETY: the arguments' contracts are input's and answer's.
    unsafe {
        answer(pKey, |cfg| {
            calls::hsm_step2_key_line(cfg, input(pStep1, "pStep1", MAX_STEP_LINE)?)
        })
    }
}

/// The card reader's serial number (else the configured device number, else empty) and the
/// PSAM's terminal number (empty when the key source is not a PSAM). Each is written when it
/// is known, the other empty; the return code is 0 when both are known, else the card
/// reader's error (−2 no card, and no device number configured) before the PSAM's (−2201).
///
/// # Safety
/// `pReaderSN` is NULL or a buffer of at least 129 bytes; `pPsamTermNo` is NULL or a buffer of
/// at least 13 bytes.
#[no_mangle]
pub unsafe extern "C" fn iGetReaderInfo(
    pReaderSN: *mut c_char,
    pPsamTermNo: *mut c_char,
) -> c_long {
    if pReaderSN.is_null() || pPsamTermNo.is_null() {
        return c_long::from(codes::INVALID_DATA);
    }
    let result = caught(|| {
        let cfg = Config::load()?;
        let (serial, terminal, failed) = calls::reader_info(&cfg)?.outcome();
        let serial = fitted(cfg.encoding, &serial, "pReaderSN", READER_SN_SIZE - 1);
        let terminal = fitted(
            cfg.encoding,
            &terminal,
            "pPsamTermNo",
            PSAM_TERM_NO_SIZE - 1,
        );
        Ok(match (serial, terminal, failed) {
            (Ok(s), Ok(t), None) => (s, t, c_long::from(codes::SUCCESS)),
            (Ok(s), Ok(t), Some(e)) => (s, t, code(&e)),
            (Err(e), t, _) => (Vec::new(), t.unwrap_or_default(), code(&e)),
            (Ok(s), Err(e), _) => (s, Vec::new(), code(&e)),
        })
    });
    let (serial, terminal, rc) =
        result.unwrap_or_else(|e: UnifiedError| (Vec::new(), Vec::new(), code(&e)));
    // SAFETY: both buffers hold their documented sizes; `fitted` kept the texts within them.
    unsafe {
        write(pReaderSN, &serial);
        write(pPsamTermNo, &terminal);
    }
    rc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer() -> Vec<c_char> {
        vec![0x55; MAX_OUTPUT + 1]
    }

    fn text(buf: &[c_char]) -> String {
        let bytes: Vec<u8> = buf
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn null_buffers_are_refused_without_writing() {
        // SAFETY: NULL and a live buffer of the documented size.
        unsafe {
            assert_eq!(iReadCardBas(1, std::ptr::null_mut()), -23);
            assert_eq!(iVerifyPIN(1, std::ptr::null_mut()), -23);
            let mut sn = vec![0x55 as c_char; READER_SN_SIZE];
            assert_eq!(iGetReaderInfo(sn.as_mut_ptr(), std::ptr::null_mut()), -23);
            assert_eq!(iGetReaderInfo(std::ptr::null_mut(), sn.as_mut_ptr()), -23);
            assert!(sn.iter().all(|c| *c == 0x55), "nothing written");
            // Another NULL argument: −23 and the text in pOutInfo.
            let mut out = buffer();
            assert_eq!(iVerifyPINK(1, std::ptr::null_mut(), out.as_mut_ptr()), -23);
            assert_eq!(text(&out), "pPIN is NULL");
        }
    }

    #[test]
    fn an_empty_card_info_is_no_card_info() {
        let mut out = buffer();
        // SAFETY: C string literals and a live buffer of the documented size.
        unsafe {
            assert_eq!(card_info(c"".as_ptr()).unwrap(), None);
            assert_eq!(card_info(std::ptr::null()).unwrap(), None);
            assert_eq!(card_info(c"x".as_ptr()).unwrap(), Some(&b"x"[..]));
            // Required: "" is refused like NULL, before any reader is looked at.
            let rc = iUnblockPIN(1, c"".as_ptr().cast_mut(), out.as_mut_ptr());
            assert_eq!(
                (rc, text(&out).as_str()),
                (
                    -23,
                    "pCardInfo is NULL or empty: this call checks the card against it"
                )
            );
            let rc = iReadCard(
                1,
                1,
                c"".as_ptr().cast_mut(),
                c"SSSEEF05|01|$".as_ptr().cast_mut(),
                out.as_mut_ptr(),
            );
            assert_eq!(
                (rc, text(&out).as_str()),
                (
                    -23,
                    "pCardInfo is NULL or empty: this call checks the card against it"
                )
            );
        }
    }

    #[test]
    fn a_bad_itype_is_minus_one() {
        let mut out = buffer();
        // SAFETY: a live buffer of the documented size.
        let rc = unsafe { iReadCardBas(7, out.as_mut_ptr()) };
        assert_eq!(rc, -1);
        assert_eq!(
            text(&out),
            "iType 7 is not 1 (contact), 2 (contactless), 3 (both, contact first) or 4 (both, contactless first)"
        );
    }

    #[test]
    fn step_2_without_step_1_is_minus_12_and_a_bad_pkey_minus_23() {
        let mut out = buffer();
        // SAFETY: C string literals and a live buffer of the documented size.
        unsafe {
            let rc = iReadCardBas_HSM_Step2(c"not a pKey".as_ptr().cast_mut(), out.as_mut_ptr());
            assert_eq!(rc, -23, "{}", text(&out));
            let pkey = c"0102030405060708|1112131415161718|";
            let rc = iReadCardBas_HSM_Step2(pkey.as_ptr().cast_mut(), out.as_mut_ptr());
            assert_eq!(rc, -12);
            assert_eq!(
                text(&out),
                "no step 1 to continue: call iReadCardBas_HSM_Step1 first (each step 1 serves one step 2; a step 2 continues its own thread's step 1, else the process's only one)"
            );
            let rc = iReadCard(
                1,
                1,
                std::ptr::null_mut(),
                c"SSSEEF05|01|$".as_ptr().cast_mut(),
                out.as_mut_ptr(),
            );
            assert_eq!(
                (rc, text(&out).as_str()),
                (
                    -23,
                    "pCardInfo is NULL or empty: this call checks the card against it"
                )
            );
            let rc = iReadCard(
                1,
                2,
                std::ptr::null_mut(),
                c"SSSEEF05|01|$".as_ptr().cast_mut(),
                out.as_mut_ptr(),
            );
            assert_eq!(rc, -23, "{}", text(&out));
            let rc = iWriteCard(
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                out.as_mut_ptr(),
            );
            assert_eq!(rc, -1, "iType is looked at first: {}", text(&out));
        }
    }

    #[test]
    fn a_panic_is_minus_999_and_silent() {
        let mut out = buffer();
        // SAFETY: a live buffer of the documented size.
        let rc = unsafe { answer(out.as_mut_ptr(), |_| panic!("a bug")) };
        assert_eq!(rc, -999);
        assert_eq!(
            text(&out),
            "internal error in libsscard_unified (a bug): the call was abandoned"
        );
        // The thread is usable again, and outside the library panics are not swallowed.
        assert!(!INSIDE.with(Cell::get));
    }

    #[test]
    fn what_does_not_fit_is_refused() {
        let long = "9".repeat(MAX_OUTPUT + 1);
        let e = fitted(Encoding::Gbk, &long, "pOutInfo", MAX_OUTPUT).unwrap_err();
        assert_eq!(code(&e), -23);
        assert_eq!(
            e.to_string(),
            "the output of 2048 bytes does not fit pOutInfo (2047 bytes and the NUL); ask for less at a time"
        );
        assert_eq!(
            fitted(Encoding::Gbk, &long[1..], "pOutInfo", MAX_OUTPUT)
                .unwrap()
                .len(),
            2047
        );
        // 张 is two bytes in GBK, three in UTF-8.
        let names = "张".repeat(1000);
        assert!(fitted(Encoding::Gbk, &names, "pOutInfo", MAX_OUTPUT).is_ok());
        assert!(fitted(Encoding::Utf8, &names, "pOutInfo", MAX_OUTPUT).is_err());
        let mut out = buffer();
        // SAFETY: a live buffer of the documented size.
        let rc = unsafe { answer(out.as_mut_ptr(), move |_| Ok(long)) };
        assert_eq!(rc, -23);
        assert!(text(&out).starts_with("the output of 2048 bytes"));
        // An error text is cut on a character boundary.
        let cut = error_text(
            Encoding::Utf8,
            &UnifiedError::NoCard { wanted: "contact" },
            10,
        );
        assert_eq!(cut, b"no contact");
    }

    #[test]
    fn unterminated_input_is_refused() {
        // Exactly limit + 1 readable bytes and no NUL: the scan stops there (reading one byte
        // more would be out of bounds, which Miri or ASan would catch).
        let long = vec![b'1' as c_char; MAX_FILE_ADDR + 1];
        // SAFETY: a live buffer of MAX_FILE_ADDR + 1 bytes.
        let e = unsafe { input(long.as_ptr(), "pFileAddr", MAX_FILE_ADDR) }.unwrap_err();
        assert_eq!(
            (code(&e), e.to_string().as_str()),
            (-23, "pFileAddr is longer than 1024 bytes")
        );
        let pin = c"802417";
        // SAFETY: C string literals and a live buffer of 7 bytes.
        unsafe {
            assert_eq!(pin_input(pin.as_ptr(), "pPIN").unwrap(), b"802417");
            let seven = [b'1' as c_char; MAX_PIN + 1];
            let e = pin_input(seven.as_ptr(), "pPIN").unwrap_err();
            assert_eq!(code(&e), -33, "{e}");
            let e = input(c"0123456789".as_ptr(), "pCardInfo", 4).unwrap_err();
            assert_eq!(e.to_string(), "pCardInfo is longer than 4 bytes");
        }
    }
}
