//! Reading a secret (PIN, token PIN) from the terminal without echo.

use crate::exit::BadInput;
use sscard_core::fsutil::{read_line_bounded, Limit};
use zeroize::Zeroizing;

/// The longest line read for a PIN or a token PIN (terminal or stdin): 1 KiB.
pub const SECRET_LINE_LIMIT: Limit = Limit::new("a PIN line", 1024);

/// One line of at most [`SECRET_LINE_LIMIT`] from `input` into zeroized memory; `None` at the
/// end of the input. Too long a line, or one that is not UTF-8, is bad input.
pub fn read_secret_line(
    input: &mut dyn std::io::BufRead,
    name: &str,
) -> Result<Option<Zeroizing<String>>, BadInput> {
    let Some(mut bytes) =
        read_line_bounded(input, name, SECRET_LINE_LIMIT).map_err(|e| BadInput(e.to_string()))?
    else {
        return Ok(None);
    };
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Some(Zeroizing::new(text))),
        Err(e) => {
            // The bytes are zeroized with the error's buffer.
            drop(Zeroizing::new(e.into_bytes()));
            Err(BadInput(format!("{name}: the PIN is not UTF-8 text")))
        }
    }
}

/// Prints `prompt` on stderr and reads one line with the terminal's echo off (`stty -echo`
/// when stdin is a terminal; piped input is read as is). The line ending is removed; a line
/// longer than [`SECRET_LINE_LIMIT`] is refused.
pub fn secret_line(prompt: &str) -> std::io::Result<Zeroizing<String>> {
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::null())
            .status();
    };
    echo(false);
    eprint!("{prompt}: ");
    let read = read_secret_line(&mut std::io::stdin().lock(), "standard input");
    echo(true);
    eprintln!();
    match read {
        Ok(Some(line)) => Ok(line),
        // End of input at the prompt: the operator cancelled the entry (Ctrl-D).
        Ok(None) => Err(std::io::ErrorKind::UnexpectedEof.into()),
        Err(e) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e.0)),
    }
}
