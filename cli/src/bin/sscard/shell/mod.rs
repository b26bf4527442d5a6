//! `sscard shell`: an interactive explorer of the social security card and PSAM that knows the
//! profile (docs/shell.md). On a terminal: a line editor with history (in memory only, never
//! a file; lines that carry a secret never enter it) and tab completion. From `--script FILE`
//! or a pipe: no prompt and no editor, each line echoed as `sscard> LINE` (secrets masked)
//! before its output, so the transcript reads like a session; the first failing command ends
//! the run with its exit code unless `--keep-going`.

mod complete;
mod connect;
mod exec;
mod output;
mod parse;
mod psam;
mod select;
mod state;
mod trace;

use crate::exit::BadInput;
use anyhow::{Context, Result};
use exec::{Next, PinSource};
use rustyline::error::ReadlineError;
use rustyline::history::MemHistory;
use rustyline::{CompletionType, Config, Editor};
use sscard::keys::KeySpec;
use sscard::ssc::SscError;
use sscard_core::fsutil::{read_line_bounded, Limit};
use sscard_core::hexfmt::parse_hex;
use sscard_transport::trace::{mask, Secrecy};
use std::cell::RefCell;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::rc::Rc;
use zeroize::Zeroizing;

#[derive(clap::Args)]
pub struct Args {
    /// Connect to this reader first (index or name substring, as `connect`).
    #[arg(long, short)]
    reader: Option<String>,
    /// Key source for `read`, `auth` and `write`: test | soft:FILE | psam:READER |
    /// pkcs11:MODULE:TOKEN-LABEL | remote:https://HOST:PORT (default: the PROFILE test key set,
    /// with a warning). Opened at its first use.
    #[arg(long)]
    keys: Option<String>,
    /// Run the commands in FILE (one a line, `#` comments; `verify` takes the next line as the
    /// PIN) instead of reading the terminal. Standard input that is not a terminal is read the
    /// same way.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// From a script or a pipe: go on after a failing command (the exit code is the first
    /// failure's). Without it the first failing command ends the shell with its exit code.
    #[arg(long)]
    keep_going: bool,
}

/// The longest line of a script or a pipe: 64 KiB.
const LINE_LIMIT: Limit = Limit::new("a shell line", 1 << 16);

/// The prompt, and the echo of each line read from a script or a pipe.
const PROMPT: &str = "sscard> ";

pub fn run(args: Args) -> Result<()> {
    let spec: KeySpec = match &args.keys {
        Some(s) => s.parse()?,
        None => KeySpec::TestSet,
    };
    let mut shell = state::State::new(spec);
    let mut startup: Option<Box<dyn BufRead>> = None;
    if let Some(path) = &args.script {
        let file =
            std::fs::File::open(path).with_context(|| format!("--script {}", path.display()))?;
        startup = Some(Box::new(std::io::BufReader::new(file)));
    } else if !std::io::stdin().is_terminal() {
        startup = Some(Box::new(std::io::stdin().lock()));
    }
    if let Some(r) = &args.reader {
        let mut no_pins = NoPins;
        exec::run(&mut shell, parse::Cmd::Connect(r.clone()), &mut no_pins)?;
    }
    let code = match startup {
        Some(input) => script(&mut shell, ScriptInput(input), args.keep_going)?,
        None => interactive(&mut shell)?,
    };
    // The connection is left as it is before the process ends.
    drop(shell);
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// Prints a failed command's error (and that the connection ended, when the card or pcscd
/// went), and returns its exit code.
fn report(shell: &mut state::State, e: &anyhow::Error) -> i32 {
    let (exit, _) = crate::exit::classify(e);
    eprintln!("sscard: error: {}", format!("{e:#}").replace('\n', " "));
    if let Some(reader) = shell.after_error(e) {
        eprintln!("sscard: disconnected from {reader}: `connect` again");
    }
    exit
}

fn run_line(shell: &mut state::State, line: &str, pins: &mut dyn PinSource) -> Result<Next> {
    match parse::parse(line)? {
        Some(cmd) => exec::run(shell, cmd, pins),
        None => Ok(Next::Continue),
    }
}

/// A script or a pipe: its lines echoed (secrets masked), run in turn.
fn script(shell: &mut state::State, mut input: ScriptInput, keep_going: bool) -> Result<i32> {
    let mut first_failure = 0;
    while let Some(line) = input.line()? {
        if parse::split(&line).words.is_empty() {
            continue;
        }
        crate::output::line(&format!("{PROMPT}{}", shown(&line)));
        // The line after `verify` is its PIN whatever becomes of the command (not connected,
        // a typo in its arguments): never run, never echoed.
        let verify = parse::split(&line)
            .words
            .first()
            .is_some_and(|w| w.text == "verify");
        let result = match verify {
            true => input
                .pin()
                .and_then(|pin| run_line(shell, &line, &mut Given(Some(pin)))),
            false => run_line(shell, &line, &mut input),
        };
        match result {
            Ok(Next::Exit) => break,
            Ok(Next::Continue) => {}
            Err(e) => {
                let code = report(shell, &e);
                if !keep_going {
                    return Ok(code);
                }
                if first_failure == 0 {
                    first_failure = code;
                }
            }
        }
    }
    Ok(first_failure)
}

/// The terminal: rustyline with completion and an in-memory history.
fn interactive(shell: &mut state::State) -> Result<i32> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor: Editor<complete::ShellHelper, MemHistory> =
        Editor::with_history(config, MemHistory::new())?;
    let known = Rc::new(RefCell::new(complete::Known::default()));
    editor.set_helper(Some(complete::ShellHelper {
        known: known.clone(),
    }));
    loop {
        *known.borrow_mut() = complete::Known {
            file: shell.file,
            psam: shell.is_psam(),
        };
        let line = match editor.readline(PROMPT) {
            Ok(line) => line,
            // Ctrl-C drops the line being typed; Ctrl-D leaves.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if !line.trim().is_empty() && !secret(&line) {
            editor.add_history_entry(line.as_str())?;
        }
        match run_line(shell, &line, &mut TerminalPin) {
            Ok(Next::Exit) => break,
            Ok(Next::Continue) => {}
            Err(e) => {
                report(shell, &e);
            }
        }
    }
    Ok(0)
}

/// Whether `text`, a command's hex, is anything but a public command that parses: a secret
/// one's data, or text that could be anything.
fn hex_is_secret(text: &str) -> bool {
    mask::classify_text(text) != mask::TextClass::Public
}

/// Whether a line carries a secret: a raw `apdu` whose command has secret data (or does not
/// start with a command header), or any word that reads as such a command. Never in history.
pub fn secret(line: &str) -> bool {
    let words = parse::split(line).words;
    if looks_like_a_pin(&words) {
        return true;
    }
    match words.split_first() {
        Some((first, rest)) if first.text == "apdu" => hex_is_secret(
            &rest
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => words
            .iter()
            .any(|w| mask::classify_text(&w.text) == mask::TextClass::Secret),
    }
}

/// A line of digits alone: a PIN typed where a command was expected (a `verify` forgotten).
fn looks_like_a_pin(words: &[parse::Word]) -> bool {
    matches!(words, [w] if !w.text.is_empty() && w.text.bytes().all(|b| b.is_ascii_digit()))
}

/// A line as it is echoed: an `apdu` with secret data shows `**` for it (or only its header,
/// when it does not parse); any other word that reads as a secret command, its header alone.
pub fn shown(line: &str) -> String {
    if !secret(line) {
        return line.trim_end().to_string();
    }
    let words = parse::split(line).words;
    if looks_like_a_pin(&words) {
        return "**".into();
    }
    match words.split_first() {
        Some((first, rest)) if first.text == "apdu" => {
            let hex = rest
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let masked = match parse_hex(&hex) {
                Ok(bytes) if sscard_core::apdu::Command::parse(&bytes).is_ok() => {
                    mask::command_hex(&bytes, Secrecy::PUBLIC)
                }
                _ => mask::text_preview(&hex),
            };
            format!("apdu {masked}")
        }
        _ => words
            .iter()
            .map(|w| match mask::classify_text(&w.text) {
                mask::TextClass::Secret => mask::text_preview(&w.text),
                _ => parse::quote(&w.text),
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The lines of a script or a pipe; `verify` takes the next one as the PIN.
struct ScriptInput(Box<dyn BufRead>);

impl ScriptInput {
    fn line(&mut self) -> Result<Option<String>> {
        let Some(bytes) = read_line_bounded(&mut *self.0, "the script", LINE_LIMIT)
            .map_err(|e| BadInput(e.to_string()))?
        else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| BadInput("a line of the script is not UTF-8 text".into()))?;
        Ok(Some(text))
    }
}

impl PinSource for ScriptInput {
    fn pin(&mut self) -> Result<Zeroizing<String>> {
        crate::prompt::read_secret_line(&mut *self.0, "the script")?
            .ok_or_else(|| BadInput("the script ended where verify reads the PIN".into()).into())
    }
}

/// A PIN read before its command ran.
struct Given(Option<Zeroizing<String>>);

impl PinSource for Given {
    fn pin(&mut self) -> Result<Zeroizing<String>> {
        self.0.take().ok_or_else(|| SscError::PinCancelled.into())
    }
}

/// The terminal: the PIN typed with the echo off.
struct TerminalPin;

impl PinSource for TerminalPin {
    fn pin(&mut self) -> Result<Zeroizing<String>> {
        match crate::prompt::secret_line("PIN") {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(SscError::PinCancelled.into())
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Err(BadInput(e.to_string()).into())
            }
            r => Ok(r?),
        }
    }
}

/// `--reader`'s connection asks no PIN.
struct NoPins;

impl PinSource for NoPins {
    fn pin(&mut self) -> Result<Zeroizing<String>> {
        Err(SscError::PinCancelled.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_echo_and_history() {
        assert!(!secret("apdu 00A4040000"));
        assert!(secret("apdu 0020000003123456"));
        assert_eq!(shown("apdu 0020000003123456"), "apdu 0020000003******");
        assert_eq!(shown("apdu 00200000 03 1234 56"), "apdu 0020000003******");
        // Malformed: the header alone.
        assert_eq!(shown("apdu 0020000003 12345"), "apdu 00200000**…");
        // Not a command at all: could be anything.
        assert!(secret("apdu 123456"));
        assert_eq!(shown("apdu 123456"), "apdu **");
        // A mistyped command name does not let the PIN through.
        assert_eq!(shown("apud 0020000003123456"), "apud 00200000**…");
        assert_eq!(shown("read EF06 name  "), "read EF06 name");
        assert!(!secret("verify"));
        // Digits alone: a PIN where a command was expected.
        assert!(secret("123456"));
        assert_eq!(shown(" 123456"), "**");
    }
}
