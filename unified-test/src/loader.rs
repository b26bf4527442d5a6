//! The library under test, loaded with `dlopen`: one safe Rust function per C function of
//! PROFILE section 10.
//!
//! This is the crate's only `unsafe` code. What makes each call sound as far as the caller
//! controls it: every input is a private, NUL-terminated copy (a library that writes into an
//! input buffer writes into that copy); every output buffer is [`OUT_LEN`] zeroed bytes followed
//! by a [`GUARD_LEN`]-byte guard of a known pattern, checked after the call, so a library that
//! writes past the 2048 bytes the interface promises is reported ([`Output::overflow`]) instead of
//! corrupting our memory. A library that crashes the process, or writes far past the guard,
//! cannot be contained in-process: that is the price of testing it as its callers use it.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_long};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The output buffer the interface promises a library (PROFILE section 10: at least 2048).
pub const OUT_LEN: usize = 2048;
/// Bytes after the output buffer that a well-behaved library never touches.
pub const GUARD_LEN: usize = 1024;
/// The guard's byte: not zero (a terminator written one past the end shows) and not ASCII.
const GUARD_BYTE: u8 = 0xA5;

/// The text encoding of the library's strings, in and out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextEncoding {
    /// The default of Windows-era callers (ANSI code page 936).
    Gbk,
    Utf8,
}

impl TextEncoding {
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Self::Gbk => encoding_rs::GBK.encode(text).0.into_owned(),
            Self::Utf8 => text.as_bytes().to_vec(),
        }
    }

    /// Decodes bytes, marking what does not decode with U+FFFD (the report shows them).
    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            Self::Gbk => encoding_rs::GBK
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
            Self::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Gbk => "GBK",
            Self::Utf8 => "UTF-8",
        }
    }
}

/// Why a library could not be loaded or a function could not be called.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "cannot load {path} (give the path of a shared library exposing the unified interface)"
    )]
    Open {
        path: PathBuf,
        source: libloading::Error,
    },
    #[error("the library exports no `{0}`")]
    MissingSymbol(&'static str),
    #[error("the {what} given holds a NUL byte; the C interface cannot carry it")]
    Nul { what: &'static str },
}

impl sscard_core::classify::Classified for LoadError {
    fn return_code(&self) -> i32 {
        match self {
            Self::Nul { .. } => sscard_core::profile::codes::INVALID_DATA,
            _ => sscard_core::profile::codes::UNKNOWN,
        }
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        match self {
            Self::Nul { .. } | Self::Open { .. } => sscard_core::classify::ExitClass::BadInput,
            Self::MissingSymbol(_) => sscard_core::classify::ExitClass::Other,
        }
    }
}

/// What one call returned: the return code and the output buffer up to its first NUL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub code: i64,
    /// The bytes before the first NUL (all [`OUT_LEN`] bytes when there is none).
    pub bytes: Vec<u8>,
    /// The library wrote into the guard after the buffer.
    pub overflow: bool,
    /// The library left no NUL within the buffer.
    pub unterminated: bool,
}

impl Output {
    fn from_buffer(code: c_long, buf: &[u8]) -> Self {
        let (out, guard) = buf.split_at(OUT_LEN);
        let end = out.iter().position(|&b| b == 0);
        Self {
            code: widen(code),
            bytes: out[..end.unwrap_or(OUT_LEN)].to_vec(),
            overflow: guard.iter().any(|&b| b != GUARD_BYTE),
            unterminated: end.is_none(),
        }
    }
}

/// `iGetReaderInfo`'s two outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderInfo {
    pub code: i64,
    pub reader_serial: Output,
    pub psam_terminal: Output,
}

type FnType = unsafe extern "C" fn(c_int, *mut c_char) -> c_long;
type FnKey = unsafe extern "C" fn(*mut c_char, *mut c_char) -> c_long;
type FnRead = unsafe extern "C" fn(c_int, c_int, *mut c_char, *mut c_char, *mut c_char) -> c_long;
type FnWrite =
    unsafe extern "C" fn(c_int, *mut c_char, *mut c_char, *mut c_char, *mut c_char) -> c_long;
type FnText = unsafe extern "C" fn(c_int, *mut c_char, *mut c_char) -> c_long;
type FnTwoTexts = unsafe extern "C" fn(c_int, *mut c_char, *mut c_char, *mut c_char) -> c_long;

/// The twelve functions of PROFILE section 10, each present or not.
struct Symbols {
    read_card_bas: Option<FnType>,
    step1: Option<FnType>,
    step2: Option<FnKey>,
    read_card: Option<FnRead>,
    write_card: Option<FnWrite>,
    verify_pin: Option<FnType>,
    change_pin: Option<FnType>,
    verify_pin_k: Option<FnText>,
    change_pin_k: Option<FnTwoTexts>,
    reload_pin: Option<FnText>,
    unblock_pin: Option<FnText>,
    get_reader_info: Option<FnKey>,
}

/// The exported names, in the order of PROFILE section 10.
pub const FUNCTIONS: [&str; 12] = [
    "iReadCardBas",
    "iReadCardBas_HSM_Step1",
    "iReadCardBas_HSM_Step2",
    "iReadCard",
    "iWriteCard",
    "iVerifyPIN",
    "iChangePIN",
    "iVerifyPINK",
    "iChangePINK",
    "iReloadPIN",
    "iUnblockPIN",
    "iGetReaderInfo",
];

/// A loaded vendor library. The function pointers live no longer than the library: both are
/// fields of this struct and the library is dropped last.
pub struct UnifiedLibrary {
    symbols: Symbols,
    encoding: TextEncoding,
    path: PathBuf,
    _lib: libloading::Library,
}

impl std::fmt::Debug for UnifiedLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnifiedLibrary")
            .field("path", &self.path)
            .field("encoding", &self.encoding)
            .field("missing", &self.missing())
            .finish()
    }
}

/// A private, NUL-terminated copy of an input, zeroized when dropped (inputs carry PINs).
fn input(what: &'static str, bytes: Vec<u8>) -> Result<Zeroizing<Vec<u8>>, LoadError> {
    let mut bytes = Zeroizing::new(bytes);
    if bytes.contains(&0) {
        return Err(LoadError::Nul { what });
    }
    bytes.push(0);
    Ok(bytes)
}

/// A C `long` as `i64`: the same type on LP64 targets, 32 bits on others.
#[allow(clippy::unnecessary_cast)]
fn widen(code: c_long) -> i64 {
    code as i64
}

fn out_buffer() -> Vec<u8> {
    let mut buf = vec![0u8; OUT_LEN + GUARD_LEN];
    buf[OUT_LEN..].fill(GUARD_BYTE);
    buf
}

fn ptr(buf: &mut [u8]) -> *mut c_char {
    buf.as_mut_ptr().cast()
}

impl UnifiedLibrary {
    /// Loads the library at `path` and looks up every function; a missing one is reported when
    /// it is called, not here.
    pub fn open(path: &Path, encoding: TextEncoding) -> Result<Self, LoadError> {
        // SAFETY: loading runs the library's initialisers; that is what qualifying a library
        // means, and the path is the operator's choice.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|source| LoadError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        fn get<T: Copy>(lib: &libloading::Library, name: &str) -> Option<T> {
            // SAFETY: each symbol is read with the C prototype PROFILE section 10 gives it; a
            // library exporting the name with another prototype is outside what can be
            // checked. The pointer is kept next to the library, which outlives it.
            unsafe { lib.get::<T>(name.as_bytes()).ok().map(|s| *s) }
        }
        let symbols = {
            Symbols {
                read_card_bas: get(&lib, "iReadCardBas"),
                step1: get(&lib, "iReadCardBas_HSM_Step1"),
                step2: get(&lib, "iReadCardBas_HSM_Step2"),
                read_card: get(&lib, "iReadCard"),
                write_card: get(&lib, "iWriteCard"),
                verify_pin: get(&lib, "iVerifyPIN"),
                change_pin: get(&lib, "iChangePIN"),
                verify_pin_k: get(&lib, "iVerifyPINK"),
                change_pin_k: get(&lib, "iChangePINK"),
                reload_pin: get(&lib, "iReloadPIN"),
                unblock_pin: get(&lib, "iUnblockPIN"),
                get_reader_info: get(&lib, "iGetReaderInfo"),
            }
        };
        Ok(Self {
            symbols,
            encoding,
            path: path.to_path_buf(),
            _lib: lib,
        })
    }

    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The functions of [`FUNCTIONS`] the library does not export.
    pub fn missing(&self) -> Vec<&'static str> {
        let s = &self.symbols;
        let present = [
            s.read_card_bas.is_some(),
            s.step1.is_some(),
            s.step2.is_some(),
            s.read_card.is_some(),
            s.write_card.is_some(),
            s.verify_pin.is_some(),
            s.change_pin.is_some(),
            s.verify_pin_k.is_some(),
            s.change_pin_k.is_some(),
            s.reload_pin.is_some(),
            s.unblock_pin.is_some(),
            s.get_reader_info.is_some(),
        ];
        FUNCTIONS
            .iter()
            .zip(present)
            .filter(|(_, p)| !p)
            .map(|(n, _)| *n)
            .collect()
    }

    fn text(&self, what: &'static str, text: &str) -> Result<Zeroizing<Vec<u8>>, LoadError> {
        input(what, self.encoding.encode(text))
    }

    fn call_type(
        &self,
        f: Option<FnType>,
        name: &'static str,
        i_type: i32,
    ) -> Result<Output, LoadError> {
        let f = f.ok_or(LoadError::MissingSymbol(name))?;
        let mut out = out_buffer();
        // SAFETY: the prototype of section 10; `out` has OUT_LEN bytes and a guard.
        let code = unsafe { f(i_type, ptr(&mut out)) };
        Ok(Output::from_buffer(code, &out))
    }

    fn call_text(
        &self,
        f: Option<FnText>,
        name: &'static str,
        i_type: i32,
        text: &mut [u8],
    ) -> Result<Output, LoadError> {
        let f = f.ok_or(LoadError::MissingSymbol(name))?;
        let mut out = out_buffer();
        // SAFETY: the prototype of section 10; `text` is NUL-terminated, `out` guarded.
        let code = unsafe { f(i_type, ptr(text), ptr(&mut out)) };
        Ok(Output::from_buffer(code, &out))
    }

    /// `long iReadCardBas(int iType, char *pOutInfo)`.
    pub fn read_card_bas(&self, i_type: i32) -> Result<Output, LoadError> {
        self.call_type(self.symbols.read_card_bas, "iReadCardBas", i_type)
    }

    /// `long iReadCardBas_HSM_Step1(int iType, char *pOutInfo)`.
    pub fn read_card_bas_step1(&self, i_type: i32) -> Result<Output, LoadError> {
        self.call_type(self.symbols.step1, "iReadCardBas_HSM_Step1", i_type)
    }

    /// `long iReadCardBas_HSM_Step2(char *pKey, char *pOutInfo)`.
    pub fn read_card_bas_step2(&self, key_line: &str) -> Result<Output, LoadError> {
        let f = self
            .symbols
            .step2
            .ok_or(LoadError::MissingSymbol("iReadCardBas_HSM_Step2"))?;
        let mut key = self.text("pKey", key_line)?;
        let mut out = out_buffer();
        // SAFETY: the prototype of section 10; `key` is NUL-terminated, `out` guarded.
        let code = unsafe { f(ptr(&mut key), ptr(&mut out)) };
        Ok(Output::from_buffer(code, &out))
    }

    /// `long iReadCard(int iType, int iAuthType, char *pCardInfo, char *pFileAddr, char
    /// *pOutInfo)`; `card_info` `None` passes NULL (allowed with `iAuthType` 0).
    pub fn read_card(
        &self,
        i_type: i32,
        auth_type: i32,
        card_info: Option<&str>,
        file_addr: &str,
    ) -> Result<Output, LoadError> {
        let f = self
            .symbols
            .read_card
            .ok_or(LoadError::MissingSymbol("iReadCard"))?;
        let mut info = card_info.map(|c| self.text("pCardInfo", c)).transpose()?;
        let info_ptr = info.as_mut().map_or(std::ptr::null_mut(), |b| ptr(b));
        let mut addr = self.text("pFileAddr", file_addr)?;
        let mut out = out_buffer();
        // SAFETY: the prototype of section 10; inputs NUL-terminated or NULL, `out` guarded.
        let code = unsafe { f(i_type, auth_type, info_ptr, ptr(&mut addr), ptr(&mut out)) };
        Ok(Output::from_buffer(code, &out))
    }

    /// `long iWriteCard(int iType, char *pCardInfo, char *pFileAddr, char *pWriteData, char
    /// *pOutInfo)`.
    pub fn write_card(
        &self,
        i_type: i32,
        card_info: &str,
        file_addr: &str,
        data: &str,
    ) -> Result<Output, LoadError> {
        let f = self
            .symbols
            .write_card
            .ok_or(LoadError::MissingSymbol("iWriteCard"))?;
        let mut info = self.text("pCardInfo", card_info)?;
        let mut addr = self.text("pFileAddr", file_addr)?;
        let mut data = self.text("pWriteData", data)?;
        let mut out = out_buffer();
        // SAFETY: the prototype of section 10; inputs NUL-terminated, `out` guarded.
        let code = unsafe {
            f(
                i_type,
                ptr(&mut info),
                ptr(&mut addr),
                ptr(&mut data),
                ptr(&mut out),
            )
        };
        Ok(Output::from_buffer(code, &out))
    }

    /// `long iVerifyPIN(int iType, char *pOutInfo)` (PIN pad or terminal).
    pub fn verify_pin(&self, i_type: i32) -> Result<Output, LoadError> {
        self.call_type(self.symbols.verify_pin, "iVerifyPIN", i_type)
    }

    /// `long iChangePIN(int iType, char *pOutInfo)` (PIN pad or terminal).
    pub fn change_pin(&self, i_type: i32) -> Result<Output, LoadError> {
        self.call_type(self.symbols.change_pin, "iChangePIN", i_type)
    }

    /// `long iVerifyPINK(int iType, char *pPIN, char *pOutInfo)`.
    pub fn verify_pin_k(&self, i_type: i32, pin: &str) -> Result<Output, LoadError> {
        let mut pin = self.text("PIN", pin)?;
        self.call_text(self.symbols.verify_pin_k, "iVerifyPINK", i_type, &mut pin)
    }

    /// `long iChangePINK(int iType, char *pOldPIN, char *pNewPIN, char *pOutInfo)`.
    pub fn change_pin_k(&self, i_type: i32, old: &str, new: &str) -> Result<Output, LoadError> {
        let f = self
            .symbols
            .change_pin_k
            .ok_or(LoadError::MissingSymbol("iChangePINK"))?;
        let mut old = self.text("old PIN", old)?;
        let mut new = self.text("new PIN", new)?;
        let mut out = out_buffer();
        // SAFETY: the prototype of section 10; inputs NUL-terminated, `out` guarded.
        let code = unsafe { f(i_type, ptr(&mut old), ptr(&mut new), ptr(&mut out)) };
        Ok(Output::from_buffer(code, &out))
    }

    /// `long iReloadPIN(int iType, char *pCardInfo, char *pOutInfo)`.
    pub fn reload_pin(&self, i_type: i32, card_info: &str) -> Result<Output, LoadError> {
        let mut info = self.text("pCardInfo", card_info)?;
        self.call_text(self.symbols.reload_pin, "iReloadPIN", i_type, &mut info)
    }

    /// `long iUnblockPIN(int iType, char *pCardInfo, char *pOutInfo)`.
    pub fn unblock_pin(&self, i_type: i32, card_info: &str) -> Result<Output, LoadError> {
        let mut info = self.text("pCardInfo", card_info)?;
        self.call_text(self.symbols.unblock_pin, "iUnblockPIN", i_type, &mut info)
    }

    /// `long iGetReaderInfo(char *pReaderSN, char *pPsamTermNo)`: two guarded buffers.
    pub fn get_reader_info(&self) -> Result<ReaderInfo, LoadError> {
        let f = self
            .symbols
            .get_reader_info
            .ok_or(LoadError::MissingSymbol("iGetReaderInfo"))?;
        let (mut serial, mut terminal) = (out_buffer(), out_buffer());
        // SAFETY: the prototype of section 10; both buffers guarded.
        let code = unsafe { f(ptr(&mut serial), ptr(&mut terminal)) };
        Ok(ReaderInfo {
            code: widen(code),
            reader_serial: Output::from_buffer(0, &serial),
            psam_terminal: Output::from_buffer(0, &terminal),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_stops_at_the_first_nul_and_sees_the_guard() {
        let mut buf = out_buffer();
        buf[..4].copy_from_slice(b"ab|\0");
        let o = Output::from_buffer(-2, &buf);
        assert_eq!(
            o,
            Output {
                code: -2,
                bytes: b"ab|".to_vec(),
                overflow: false,
                unterminated: false
            }
        );
        buf[OUT_LEN] = 0;
        let o = Output::from_buffer(0, &buf);
        assert!(o.overflow);
        let mut full = out_buffer();
        full[..OUT_LEN].fill(b'x');
        let o = Output::from_buffer(0, &full);
        assert!(o.unterminated);
        assert_eq!(o.bytes.len(), OUT_LEN);
    }

    #[test]
    fn inputs_are_terminated_and_refuse_nul() {
        assert_eq!(&input("x", b"12".to_vec()).unwrap()[..], b"12\0");
        assert!(matches!(
            input("PIN", b"1\x002".to_vec()),
            Err(LoadError::Nul { what: "PIN" })
        ));
    }

    #[test]
    fn gbk_is_the_default_text_and_utf8_the_option() {
        assert_eq!(TextEncoding::Gbk.encode("张三"), [0xD5, 0xC5, 0xC8, 0xFD]);
        assert_eq!(TextEncoding::Gbk.decode(&[0xD5, 0xC5, 0xC8, 0xFD]), "张三");
        assert_eq!(TextEncoding::Utf8.encode("张"), "张".as_bytes());
    }

    #[test]
    fn a_library_without_the_functions_reports_each_missing() {
        // libc exports none of the twelve: every call says which symbol is missing.
        let lib = UnifiedLibrary::open(Path::new("libc.so.6"), TextEncoding::Gbk).unwrap();
        assert_eq!(lib.missing(), FUNCTIONS.to_vec());
        assert!(matches!(
            lib.read_card_bas(1),
            Err(LoadError::MissingSymbol("iReadCardBas"))
        ));
        assert!(matches!(
            lib.get_reader_info(),
            Err(LoadError::MissingSymbol("iGetReaderInfo"))
        ));
    }

    #[test]
    fn a_path_that_is_no_library_is_a_load_error() {
        let e =
            UnifiedLibrary::open(Path::new("/nonexistent/lib.so"), TextEncoding::Gbk).unwrap_err();
        assert!(e.to_string().starts_with("cannot load /nonexistent/lib.so"));
    }
}
