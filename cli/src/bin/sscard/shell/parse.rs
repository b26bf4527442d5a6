//! A shell line: words split like a POSIX shell's (single quotes literal, double quotes with
//! `\"` and `\\`, a backslash escaping the next character outside quotes, `#` starting a
//! comment at the start of a word), then one [`Cmd`] of the command table.

use crate::exit::BadInput;

/// One word of a line and where it starts (a byte offset into the line, its opening quote
/// included), for completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub start: usize,
}

/// The words of a line, and the quote left open at its end, if any (completion works on an
/// unfinished line; a command needs it closed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub words: Vec<Word>,
    pub open_quote: Option<char>,
    /// Whether the line ends in white space after its last word (a new word begins there).
    pub trailing_space: bool,
}

/// Splits a line into words.
pub fn split(line: &str) -> Split {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut quote: Option<char> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some('\'') if c == '\'' => quote = None,
            Some('"') if c == '"' => quote = None,
            Some('"') if c == '\\' && matches!(chars.peek(), Some((_, '"' | '\\'))) => {
                if let (Some(w), Some((_, n))) = (current.as_mut(), chars.next()) {
                    w.text.push(n);
                }
            }
            Some(_) => {
                if let Some(w) = current.as_mut() {
                    w.text.push(c)
                }
            }
            None if c.is_whitespace() => {
                if let Some(w) = current.take() {
                    words.push(w);
                }
            }
            None if c == '#' && current.is_none() => break,
            None => {
                let w = current.get_or_insert_with(|| Word {
                    text: String::new(),
                    start: i,
                });
                match c {
                    '\'' | '"' => quote = Some(c),
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            w.text.push(n);
                        }
                    }
                    _ => w.text.push(c),
                }
            }
        }
    }
    let trailing_space =
        current.is_none() && quote.is_none() && line.ends_with(char::is_whitespace);
    if let Some(w) = current.take() {
        words.push(w);
    }
    Split {
        words,
        open_quote: quote,
        trailing_space,
    }
}

/// The words of a complete line: an unclosed quote is bad input.
pub fn words(line: &str) -> Result<Vec<String>, BadInput> {
    let s = split(line);
    if let Some(q) = s.open_quote {
        return Err(BadInput(format!("unclosed {q} in the line")));
    }
    Ok(s.words.into_iter().map(|w| w.text).collect())
}

/// A word as it is typed so that [`split`] gives it back: quoted when it holds white space,
/// quotes, a backslash or starts with `#`.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && !word.starts_with('#')
        && !word
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\'));
    if plain {
        return word.to_string();
    }
    let escaped: String = word
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// How `auth` authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthKind {
    /// The card proves it holds IRK.
    Internal,
    /// The terminal proves it holds this key (by name or id); default: the current DF's.
    External(Option<String>),
}

/// One command of the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    Readers,
    Connect(String),
    Disconnect,
    Ls,
    Select(String),
    Read {
        file: Option<String>,
        record: Option<String>,
        raw: bool,
    },
    Auth(AuthKind),
    Verify,
    Write {
        file: String,
        record: String,
        data: String,
    },
    Apdu(String),
    Trace(TraceMode),
    Help(Option<String>),
    Exit,
}

pub use super::trace::TraceMode;

/// The commands: name, arguments, what it does (for `help` and completion).
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("readers", "", "list the PC/SC readers and their cards"),
    (
        "connect",
        "READER",
        "connect to the card in READER (index or name substring; quote names with spaces)",
    ),
    ("disconnect", "", "leave the card (its reader stays free)"),
    (
        "ls",
        "",
        "the profile's files under the current DF: FID, SFI, structure, access rules per algorithm",
    ),
    (
        "select",
        "FILE|FID|DF01|MF|SSSE|aid:HEX",
        "select a file or DF (FILE: EF05, DF01/EF01, …)",
    ),
    (
        "read",
        "[FILE] [RECORD] [--raw]",
        "read the selected or named file, decoded (RECORD: number or field; --raw: TLV hex)",
    ),
    (
        "auth",
        "internal|external [KID]",
        "internal: the card proves it holds IRK; external: the terminal proves KID (default: the DF's)",
    ),
    (
        "verify",
        "",
        "VERIFY the PIN, asked without echo (from a script: its next line, never echoed)",
    ),
    (
        "write",
        "FILE RECORD TLV | DF01/EF02 OFFSET HEX",
        "write a record or bytes with line protection (MAC from the key source)",
    ),
    (
        "apdu",
        "HEX",
        "send one APDU as it is (GET RESPONSE on 61xx; nothing that changes the card is resent)",
    ),
    (
        "trace",
        "on|raw|off",
        "print every APDU exchanged as it happens, decoded (on) or in hex (raw); secrets masked",
    ),
    ("help", "[COMMAND]", "this list, or one command"),
    ("exit", "", "leave the shell (also quit, Ctrl-D)"),
];

/// The usage line of a command.
pub fn usage(name: &str) -> Option<String> {
    COMMANDS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(n, a, _)| format!("{n} {a}").trim_end().to_string())
}

fn wrong_use(name: &str) -> BadInput {
    BadInput(format!(
        "usage: {}",
        usage(name).unwrap_or_else(|| name.to_string())
    ))
}

/// Parses a line; `None` for a line with no command (blank or a comment).
pub fn parse(line: &str) -> Result<Option<Cmd>, BadInput> {
    let words = words(line)?;
    let Some((name, args)) = words.split_first() else {
        return Ok(None);
    };
    let name = name.as_str();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let bad = || wrong_use(name);
    let cmd = match (name, &args[..]) {
        ("readers", []) => Cmd::Readers,
        ("connect", [r]) => Cmd::Connect(r.to_string()),
        ("disconnect", []) => Cmd::Disconnect,
        ("ls", []) => Cmd::Ls,
        ("select", [t]) => Cmd::Select(t.to_string()),
        ("read", rest) => {
            let raw = rest.contains(&"--raw");
            let pos: Vec<&str> = rest.iter().copied().filter(|a| *a != "--raw").collect();
            if pos.len() > 2 || pos.iter().any(|a| a.starts_with("--")) {
                return Err(bad());
            }
            Cmd::Read {
                file: pos.first().map(|s| s.to_string()),
                record: pos.get(1).map(|s| s.to_string()),
                raw,
            }
        }
        ("auth", ["internal"]) => Cmd::Auth(AuthKind::Internal),
        ("auth", ["external"]) => Cmd::Auth(AuthKind::External(None)),
        ("auth", ["external", k]) => Cmd::Auth(AuthKind::External(Some(k.to_string()))),
        ("verify", []) => Cmd::Verify,
        ("write", [f, r, d]) => Cmd::Write {
            file: f.to_string(),
            record: r.to_string(),
            data: d.to_string(),
        },
        // Hex may be typed in groups: `apdu 00A40400 0F 7378…`.
        ("apdu", hex) if !hex.is_empty() => Cmd::Apdu(hex.join(" ")),
        ("trace", ["on"]) => Cmd::Trace(TraceMode::Decoded),
        ("trace", ["raw"]) => Cmd::Trace(TraceMode::Raw),
        ("trace", ["off"]) => Cmd::Trace(TraceMode::Off),
        ("help", []) => Cmd::Help(None),
        ("help", [c]) => Cmd::Help(Some(c.to_string())),
        ("exit" | "quit", []) => Cmd::Exit,
        _ if usage(name).is_some() => return Err(bad()),
        // Digits alone may be a PIN typed where a command was expected: not quoted.
        _ if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(BadInput(
                "unknown command (digits, not shown): `help` lists the commands".into(),
            ))
        }
        _ => {
            return Err(BadInput(format!(
                "unknown command {:?}: `help` lists the commands",
                name
            )))
        }
    };
    Ok(Some(cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        words(line).unwrap()
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            texts("connect \"Virtual PCD 00 00\""),
            ["connect", "Virtual PCD 00 00"]
        );
        assert_eq!(texts("connect 'a \"b\"'"), ["connect", "a \"b\""]);
        assert_eq!(texts("connect Virtual\\ PCD"), ["connect", "Virtual PCD"]);
        assert_eq!(texts("  read  EF06   2 "), ["read", "EF06", "2"]);
        assert_eq!(texts("x \"a\\\"b\\\\c\""), ["x", "a\"b\\c"]);
        assert_eq!(texts("ab\"c d\"e"), ["abc de"]);
        assert_eq!(texts("read EF06 # the holder"), ["read", "EF06"]);
        assert_eq!(texts("# only a comment"), Vec::<String>::new());
        assert_eq!(texts("a#b"), ["a#b"]);
        assert_eq!(texts("'#'"), ["#"]);
        assert_eq!(texts("\"\""), [""]);
        assert_eq!(
            words("connect \"Virtual PCD").unwrap_err().0,
            "unclosed \" in the line"
        );
    }

    #[test]
    fn split_tells_where_words_start_and_what_is_open() {
        let s = split("connect \"Virtual PC");
        assert_eq!(s.open_quote, Some('"'));
        assert_eq!(s.words[1].start, 8);
        assert_eq!(s.words[1].text, "Virtual PC");
        assert!(!s.trailing_space);
        assert!(split("read ").trailing_space);
        assert!(!split("read").trailing_space);
    }

    #[test]
    fn quoting_round_trips() {
        for w in ["EF06", "Virtual PCD 00 00", "a\"b", "back\\slash", "#x", ""] {
            assert_eq!(texts(&quote(w)), [w], "{w}");
        }
        assert_eq!(quote("Virtual PCD 00 00"), "\"Virtual PCD 00 00\"");
        assert_eq!(quote("EF06"), "EF06");
    }

    #[test]
    fn commands_parse_or_say_their_usage() {
        assert_eq!(parse("  ").unwrap(), None);
        assert_eq!(
            parse("read EF06 name --raw").unwrap(),
            Some(Cmd::Read {
                file: Some("EF06".into()),
                record: Some("name".into()),
                raw: true
            })
        );
        assert_eq!(
            parse("apdu 00A40000 02 3F00").unwrap(),
            Some(Cmd::Apdu("00A40000 02 3F00".into()))
        );
        assert_eq!(
            parse("auth external EAK_L").unwrap(),
            Some(Cmd::Auth(AuthKind::External(Some("EAK_L".into()))))
        );
        assert_eq!(parse("quit").unwrap(), Some(Cmd::Exit));
        assert_eq!(
            parse("trace maybe").unwrap_err().0,
            "usage: trace on|raw|off"
        );
        assert_eq!(parse("connect").unwrap_err().0, "usage: connect READER");
        assert_eq!(
            parse("write EF07 3").unwrap_err().0,
            "usage: write FILE RECORD TLV | DF01/EF02 OFFSET HEX"
        );
        assert_eq!(
            parse("reed EF06").unwrap_err().0,
            "unknown command \"reed\": `help` lists the commands"
        );
        assert_eq!(
            parse("123456").unwrap_err().0,
            "unknown command (digits, not shown): `help` lists the commands"
        );
        assert_eq!(
            parse("read a b c").unwrap_err().0,
            "usage: read [FILE] [RECORD] [--raw]"
        );
    }
}
