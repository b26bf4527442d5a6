//! Reading a secret (PIN, token PIN) from the terminal without echo.

use zeroize::Zeroizing;

/// Prints `prompt` on stderr and reads one line with the terminal's echo off (`stty -echo`
/// when stdin is a terminal; piped input is read as is). The line ending is removed.
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
    let mut line = Zeroizing::new(String::new());
    let read = std::io::stdin().read_line(&mut line);
    echo(true);
    eprintln!();
    if read? == 0 {
        // End of input at the prompt: the operator cancelled the entry (Ctrl-D).
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_string(),
    ))
}
