//! The `.apdu` script language (documented in `apdu-scripts/README.md`). Line oriented; every
//! error names file, line and column.

pub use super::error::ParseError;
use super::error::ScriptProblem;
use super::pattern::{DataPattern, SwPattern};
use sscard_core::crypto::Algorithm;
use sscard_core::fsutil::{read_text_file_bounded, Limit, ReadError};
use sscard_core::hexfmt::{parse_hex, to_hex, HexError};
use sscard_core::profile::commands::describe_bytes;
use sscard_core::profile::Kid;
use sscard_transport::trace::mask::{hex_error, text_preview};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which card a step talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Card,
    Psam,
}

/// Hex with `$variables` spliced in at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Bytes(Vec<u8>),
    Var(String),
}

/// What a step does. Its `Debug` shows no data that may be secret: a variable's value, a
/// macro's data, the data of a command whose header is that of a PIN or key command (or cannot
/// be told).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    Apdu(Vec<Piece>),
    Reset,
    /// GET CHALLENGE 8, cryptogram from the key source, EXTERNAL AUTHENTICATE.
    ExtAuth {
        kid: Kid,
        wrong: bool,
    },
    /// INTERNAL AUTHENTICATE (P2 `p2`, by default the key id) of `data` (by default 8 random
    /// bytes), the answer checked against the key source's encryption of the data under `kid`.
    IntAuth {
        kid: Kid,
        p2: Option<u8>,
        data: Option<Vec<Piece>>,
    },
    /// GET CHALLENGE 4, MAC from the key source under `kid`, the command with its MAC.
    Mac {
        header: [u8; 4],
        data: Vec<Piece>,
        kid: Kid,
        wrong: bool,
    },
    /// WRITE KEY of `kid` under TK (personalisation), value from the key source.
    WriteKey {
        kid: Kid,
        tries: u8,
    },
    Set {
        name: String,
        value: Vec<u8>,
    },
}

/// Stands for data left out of a `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Apdu(pieces) => {
                // The bytes before the first variable hold the header, if any.
                let lead: Vec<u8> = pieces
                    .iter()
                    .map_while(|p| match p {
                        Piece::Bytes(b) => Some(b.as_slice()),
                        Piece::Var(_) => None,
                    })
                    .flatten()
                    .copied()
                    .collect();
                let mut t = f.debug_tuple("Apdu");
                // As for text: without a whole header it could be anything, a PIN included.
                if lead.len() >= 4 && !describe_bytes(&lead).secrecy.command_data {
                    t.field(pieces);
                } else {
                    t.field(&to_hex(&lead[..lead.len().min(4)]))
                        .field(&Redacted);
                }
                t.finish()
            }
            Action::Reset => f.write_str("Reset"),
            Action::ExtAuth { kid, wrong } => f
                .debug_struct("ExtAuth")
                .field("kid", kid)
                .field("wrong", wrong)
                .finish(),
            Action::IntAuth { kid, p2, data } => f
                .debug_struct("IntAuth")
                .field("kid", kid)
                .field("p2", p2)
                .field("data", data)
                .finish(),
            Action::Mac {
                header, kid, wrong, ..
            } => f
                .debug_struct("Mac")
                .field("header", &to_hex(header))
                .field("data", &Redacted)
                .field("kid", kid)
                .field("wrong", wrong)
                .finish(),
            Action::WriteKey { kid, tries } => f
                .debug_struct("WriteKey")
                .field("kid", kid)
                .field("tries", tries)
                .finish(),
            Action::Set { name, .. } => f
                .debug_struct("Set")
                .field("name", name)
                .field("value", &Redacted)
                .finish(),
        }
    }
}

/// `$name` or `$name[a..b]` after `save`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Save {
    pub name: String,
    pub range: Option<(usize, usize)>,
}

/// One step of a test case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub file: Arc<str>,
    pub line: usize,
    pub target: Target,
    pub action: Action,
    pub sw: SwPattern,
    pub data: Option<DataPattern>,
    pub save: Option<Save>,
}

/// A named test case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCase {
    pub name: String,
    pub file: Arc<str>,
    pub line: usize,
    pub only: Option<Algorithm>,
    pub steps: Vec<Step>,
}

/// A parsed script file: an optional prologue (run once) and test cases.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Script {
    pub path: String,
    /// `card blank`: the file needs a blank (unpersonalised) card.
    pub blank_card: bool,
    pub prologue: Vec<Step>,
    pub tests: Vec<TestCase>,
}

const MAX_INCLUDE_DEPTH: usize = 8;

/// The most one script file (or an included one) may hold: 1 MiB. A larger file, or a device
/// that never ends (`include "/dev/zero"`), is refused with [`ScriptProblem::TooLarge`].
pub const MAX_SCRIPT_BYTES: u64 = 1 << 20;

/// The most a script and all its includes may hold together: 8 MiB, so that a file including
/// itself (or another) many times over cannot make the parse grow without end.
pub const MAX_SCRIPT_TOTAL_BYTES: u64 = 8 << 20;

const SCRIPT_LIMIT: Limit = Limit::new("an APDU script", MAX_SCRIPT_BYTES);

struct Parser {
    script: Script,
    target: Target,
    current: Option<TestCase>,
    /// Bytes of script text read so far, includes included.
    read: u64,
}

/// A script file's text, bounded; `ReadError` becomes the script's own problem.
fn read_script(path: &Path) -> Result<String, ScriptProblem> {
    read_text_file_bounded(path, SCRIPT_LIMIT).map_err(|e| match e {
        ReadError::TooLarge { name, limit, .. } => ScriptProblem::TooLarge { path: name, limit },
        e => ScriptProblem::Unreadable {
            reason: e.to_string(),
        },
    })
}

/// How much of hex text with a bad word an error may quote.
#[derive(Clone, Copy)]
enum Quote {
    /// The word itself: public data (INTERNAL AUTHENTICATE's random).
    Word,
    /// A command's text: its header alone ([`text_preview`]), never its data, even after a
    /// public header (a VERIFY and its PIN may follow it on the same line).
    Command,
    /// Nothing: data alone that may be a PIN or a key (a macro's).
    Never,
}

/// The problem of a bad hex `word` in `text`, quoting what `quote` allows.
fn hex_problem(text: &str, word: &str, source: HexError, quote: Quote) -> ScriptProblem {
    match quote {
        Quote::Word => ScriptProblem::BadHex {
            word: word.into(),
            source,
        },
        Quote::Command => ScriptProblem::BadSecretHex {
            preview: text_preview(text),
            reason: hex_error(text, &source),
        },
        Quote::Never => ScriptProblem::BadSecretHex {
            preview: "**".into(),
            reason: hex_error("", &source),
        },
    }
}

fn err(file: &str, line: usize, column: usize, problem: ScriptProblem) -> ParseError {
    ParseError {
        file: file.into(),
        line,
        column,
        problem,
    }
}

/// A problem and the part of the line it is about (for the column).
type Located<'a> = (&'a str, ScriptProblem);

/// Column (1-based) of `part` inside `line`.
fn col(line: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(line.as_ptr() as usize) + 1
}

fn parse_kid(word: &str) -> Result<Kid, ScriptProblem> {
    let by_hex = || match parse_hex(word).ok().as_deref() {
        Some([k]) => Kid::from_id(*k),
        _ => None,
    };
    Kid::from_name(word)
        .or_else(by_hex)
        .ok_or_else(|| ScriptProblem::NotAKeyId { word: word.into() })
}

/// Hex with `$var` pieces.
/// The error names the offending word itself, so its column is exact; what of the text it
/// quotes is `quote`'s (the column still says where the word is).
fn pieces(text: &str, quote: Quote) -> Result<Vec<Piece>, Located<'_>> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        if let Some(name) = word.strip_prefix('$') {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err((word, ScriptProblem::NotAVariable { word: word.into() }));
            }
            out.push(Piece::Var(name.into()));
        } else {
            out.push(Piece::Bytes(parse_hex(word).map_err(|source| {
                (word, hex_problem(text, word, source, quote))
            })?));
        }
    }
    Ok(out)
}

/// The text from the first to the last of `words` (sub-slices of `text`), as a sub-slice of
/// `text`, so errors inside it keep their columns.
fn span<'a>(text: &'a str, words: &[&'a str]) -> &'a str {
    match (words.first(), words.last()) {
        (Some(first), Some(last)) => {
            let start = first.as_ptr() as usize - text.as_ptr() as usize;
            let end = last.as_ptr() as usize - text.as_ptr() as usize + last.len();
            &text[start..end]
        }
        _ => "",
    }
}

/// Refuses words after a macro's last argument: a misspelt `wrong` must not pass for a right
/// cryptogram.
fn no_more<'a>(words: &[&'a str], used: usize) -> Result<(), Located<'a>> {
    match words.get(used) {
        Some(w) => Err((w, ScriptProblem::Unexpected { word: (*w).into() })),
        None => Ok(()),
    }
}

fn parse_save(text: &str) -> Result<Save, ScriptProblem> {
    let t = text.trim();
    let t = t
        .strip_prefix('$')
        .ok_or_else(|| ScriptProblem::SaveSyntax { text: t.into() })?;
    match t.split_once('[') {
        None => Ok(Save {
            name: t.into(),
            range: None,
        }),
        Some((name, rest)) => {
            let range = rest
                .strip_suffix(']')
                .and_then(|r| r.split_once(".."))
                .ok_or_else(|| ScriptProblem::RangeSyntax { text: text.into() })?;
            let a: usize = range
                .0
                .trim()
                .parse()
                .map_err(|_| ScriptProblem::RangeStart { text: text.into() })?;
            let b: usize = range
                .1
                .trim()
                .parse()
                .map_err(|_| ScriptProblem::RangeEnd { text: text.into() })?;
            if a >= b {
                return Err(ScriptProblem::EmptyRange { text: text.into() });
            }
            Ok(Save {
                name: name.into(),
                range: Some((a, b)),
            })
        }
    }
}

impl Parser {
    fn push(&mut self, step: Step) {
        match &mut self.current {
            Some(t) => t.steps.push(step),
            None => self.script.prologue.push(step),
        }
    }

    fn finish_test(&mut self) {
        if let Some(t) = self.current.take() {
            self.script.tests.push(t);
        }
    }

    /// Counts `len` more bytes of script text against [`MAX_SCRIPT_TOTAL_BYTES`].
    fn count(&mut self, len: usize) -> Result<(), ScriptProblem> {
        self.read = self.read.saturating_add(len as u64);
        if self.read > MAX_SCRIPT_TOTAL_BYTES {
            return Err(ScriptProblem::IncludesTooLarge {
                limit: MAX_SCRIPT_TOTAL_BYTES,
            });
        }
        Ok(())
    }

    fn file(&mut self, path: &Path, text: &str, depth: usize) -> Result<(), ParseError> {
        let file: Arc<str> = Arc::from(path.display().to_string());
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = match raw.find('#') {
                Some(i) => &raw[..i],
                None => raw,
            }
            .trim_end();
            let body = line.trim_start();
            if body.is_empty() {
                continue;
            }
            let fail =
                |part: &str, problem: ScriptProblem| err(&file, line_no, col(raw, part), problem);
            let (word, rest) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
            let rest = rest.trim();
            match word {
                "test" => {
                    self.finish_test();
                    let name = rest.trim_matches('"');
                    if name.is_empty() {
                        return Err(fail(body, ScriptProblem::TestNeedsName));
                    }
                    self.current = Some(TestCase {
                        name: name.into(),
                        file: file.clone(),
                        line: line_no,
                        only: None,
                        steps: Vec::new(),
                    });
                    self.target = Target::Card;
                }
                "only" => {
                    let alg = match rest {
                        "3des" => Algorithm::Tdes,
                        "sm4" => Algorithm::Sm4,
                        _ => {
                            return Err(fail(rest, ScriptProblem::OnlyWhich { word: rest.into() }))
                        }
                    };
                    match &mut self.current {
                        Some(t) => t.only = Some(alg),
                        None => return Err(fail(body, ScriptProblem::OnlyOutsideTest)),
                    }
                }
                "card" if rest == "blank" => self.script.blank_card = true,
                "@card" => self.target = Target::Card,
                "@psam" => self.target = Target::Psam,
                "include" => {
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(fail(
                            rest,
                            ScriptProblem::IncludeTooDeep {
                                max: MAX_INCLUDE_DEPTH,
                            },
                        ));
                    }
                    let name = rest.trim_matches('"');
                    let inc: PathBuf = path.parent().unwrap_or(Path::new(".")).join(name);
                    let text = read_script(&inc).map_err(|problem| {
                        fail(
                            rest,
                            match problem {
                                ScriptProblem::Unreadable { reason } => {
                                    ScriptProblem::CannotInclude {
                                        path: inc.display().to_string(),
                                        reason,
                                    }
                                }
                                p => p,
                            },
                        )
                    })?;
                    self.count(text.len()).map_err(|p| fail(rest, p))?;
                    self.file(&inc, &text, depth + 1)?;
                }
                _ => {
                    let step = self
                        .step(&file, line_no, raw, body)
                        .map_err(|(part, m)| fail(part, m))?;
                    self.push(step);
                }
            }
        }
        Ok(())
    }

    /// An action line: `ACTION [-> SW [DATA]] [save $var[a..b]]`.
    fn step<'a>(
        &self,
        file: &Arc<str>,
        line: usize,
        _raw: &str,
        body: &'a str,
    ) -> Result<Step, Located<'a>> {
        let (action_text, save) = match body.split_once(" save ") {
            Some((a, s)) => (a, Some(parse_save(s).map_err(|m| (s, m))?)),
            None => (body, None),
        };
        let (action_text, expect_text) = match action_text.split_once("->") {
            Some((a, e)) => (a.trim(), Some(e.trim())),
            None => (action_text.trim(), None),
        };
        let (sw, data) = match expect_text {
            None => (SwPattern::parse("9000").expect("valid"), None),
            Some(e) => {
                let (sw, data) = e.split_once(char::is_whitespace).unwrap_or((e, ""));
                let sw_p = SwPattern::parse(sw).map_err(|m| (sw, m))?;
                let data_p = if data.trim().is_empty() {
                    None
                } else {
                    Some(DataPattern::parse(data).map_err(|m| (data, m))?)
                };
                (sw_p, data_p)
            }
        };
        let words: Vec<&str> = action_text.split_whitespace().collect();
        let kid_at = |i: usize| -> Result<Kid, Located<'a>> {
            let w = words
                .get(i)
                .copied()
                .ok_or((action_text, ScriptProblem::MissingKeyId))?;
            parse_kid(w).map_err(|m| (w, m))
        };
        let action = match words.first().copied() {
            Some("reset") => {
                no_more(&words, 1)?;
                Action::Reset
            }
            Some("ext-auth") => {
                let wrong = words.get(2) == Some(&"wrong");
                no_more(&words, 2 + usize::from(wrong))?;
                Action::ExtAuth {
                    kid: kid_at(1)?,
                    wrong,
                }
            }
            Some("int-auth") => {
                let kid = kid_at(1)?;
                let mut next = 2;
                let mut p2 = None;
                if words.get(next) == Some(&"p2") {
                    let w = words
                        .get(next + 1)
                        .copied()
                        .ok_or((action_text, ScriptProblem::MissingP2))?;
                    p2 = Some(match parse_hex(w).ok().as_deref() {
                        Some([b]) => *b,
                        _ => return Err((w, ScriptProblem::NotP2 { word: w.into() })),
                    });
                    next += 2;
                }
                // The data is the terminal's random or process data: public.
                let data = match &words[next.min(words.len())..] {
                    [] => None,
                    rest => Some(pieces(span(action_text, rest), Quote::Word)?),
                };
                Action::IntAuth { kid, p2, data }
            }
            Some("write-key") => {
                let tries = match words.get(2) {
                    Some(t) => t
                        .parse()
                        .map_err(|_| (*t, ScriptProblem::NotTries { word: (*t).into() }))?,
                    None => 0,
                };
                no_more(&words, 3)?;
                Action::WriteKey {
                    kid: kid_at(1)?,
                    tries,
                }
            }
            Some("set") => {
                let (name, value) = action_text["set".len()..]
                    .split_once('=')
                    .ok_or((action_text, ScriptProblem::SetSyntax))?;
                let name = name
                    .trim()
                    .strip_prefix('$')
                    .ok_or((name, ScriptProblem::SetSyntax))?;
                // A variable may hold a PIN for a later VERIFY: its value is never quoted.
                Action::Set {
                    name: name.into(),
                    value: parse_hex(value).map_err(|e| {
                        (
                            value,
                            ScriptProblem::BadSecretHex {
                                preview: "**".into(),
                                reason: hex_error("", &e),
                            },
                        )
                    })?,
                }
            }
            Some(m @ ("mac" | "reload-pin" | "unblock-pin")) => {
                let mut rest: Vec<&str> = words[1..].to_vec();
                let wrong = rest.last() == Some(&"wrong");
                if wrong {
                    rest.pop();
                }
                let mut kid = None;
                if let Some(i) = rest.iter().position(|w| *w == "key") {
                    kid = Some(kid_at(i + 2)?);
                    no_more(&rest, i + 2)?;
                    rest.truncate(i);
                }
                let (header, data, default_kid) = match m {
                    "mac" => {
                        let h = rest
                            .first()
                            .ok_or((action_text, ScriptProblem::MacNeedsHeader))?;
                        let header: [u8; 4] = parse_hex(h)
                            .ok()
                            .and_then(|b| b.try_into().ok())
                            .ok_or((*h, ScriptProblem::NotAHeader { word: (*h).into() }))?;
                        (header, span(action_text, &rest[1..]), Kid::UkN)
                    }
                    "reload-pin" => ([0x84, 0x5E, 0x00, 0x00], span(action_text, &rest), Kid::Rpk),
                    _ => {
                        no_more(&rest, 0)?;
                        ([0x84, 0x24, 0x00, 0x01], "", Kid::Upk)
                    }
                };
                // The macro's data may be a PIN or a key block: never quoted.
                Action::Mac {
                    header,
                    data: pieces(data, Quote::Never)?,
                    kid: kid.unwrap_or(default_kid),
                    wrong,
                }
            }
            Some(_) => Action::Apdu(pieces(action_text, Quote::Command)?),
            None => return Err((body, ScriptProblem::EmptyStep)),
        };
        Ok(Step {
            file: file.clone(),
            line,
            target: self.target,
            action,
            sw,
            data,
            save,
        })
    }
}

/// Parses script text; `path` names it in errors and anchors includes.
pub fn parse(path: &Path, text: &str) -> Result<Script, ParseError> {
    let mut p = Parser {
        script: Script {
            path: path.display().to_string(),
            ..Script::default()
        },
        target: Target::Card,
        current: None,
        read: 0,
    };
    p.count(text.len())
        .map_err(|problem| err(&path.display().to_string(), 0, 0, problem))?;
    p.file(path, text, 0)?;
    p.finish_test();
    Ok(p.script)
}

/// Reads (at most [`MAX_SCRIPT_BYTES`]) and parses a script file.
pub fn load(path: &Path) -> Result<Script, ParseError> {
    let text =
        read_script(path).map_err(|problem| err(&path.display().to_string(), 0, 0, problem))?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret_data() {
        let s = parse(
            Path::new("t.apdu"),
            "set $pin = 123456\n0020000003 $pin\n0020000003123456\n00A4040002 DF01\n0123\nmac 04DC0434 0A0131 key UK_N\nreload-pin 654321\n",
        )
        .unwrap();
        let shown: Vec<String> = s
            .prologue
            .iter()
            .map(|s| format!("{:?}", s.action))
            .collect();
        assert_eq!(
            shown,
            [
                "Set { name: \"pin\", value: <redacted> }",
                "Apdu(\"00200000\", <redacted>)",
                "Apdu(\"00200000\", <redacted>)",
                "Apdu([Bytes([0, 164, 4, 0, 2]), Bytes([223, 1])])",
                // No whole header: it could be anything.
                "Apdu(\"0123\", <redacted>)",
                "Mac { header: \"04DC0434\", data: <redacted>, kid: UkN, wrong: false }",
                "Mac { header: \"845E0000\", data: <redacted>, kid: Rpk, wrong: false }",
            ]
        );
        // Nor does a step's or the script's.
        let all = format!("{s:?}");
        for secret in [
            "123456",
            "[18, 52, 86]",
            "654321",
            "[101, 67, 33]",
            "[10, 1, 49]",
        ] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
    }

    #[test]
    fn parses_steps_and_names_errors() {
        let s = parse(
            Path::new("t.apdu"),
            "00A4000002DF01\ntest \"first\"\n  only sm4\n  00840000 08 -> 9000 save $chal[0..4]\n  @psam\n  801A 0801 08 $chal 00000000 -> 9000\n  ext-auth RKSSSE wrong -> 63Cx\n  mac 04DC0434 0A0131 key UK_N -> 9000\n",
        )
        .unwrap();
        assert_eq!(s.prologue.len(), 1);
        assert_eq!(s.tests.len(), 1);
        let t = &s.tests[0];
        assert_eq!(
            (t.name.as_str(), t.only, t.steps.len()),
            ("first", Some(Algorithm::Sm4), 4)
        );
        assert_eq!(
            t.steps[0].save,
            Some(Save {
                name: "chal".into(),
                range: Some((0, 4))
            })
        );
        assert_eq!(t.steps[1].target, Target::Psam);
        assert_eq!(
            t.steps[2].action,
            Action::ExtAuth {
                kid: Kid::Rkssse,
                wrong: true
            }
        );
        // A public header: the header alone, not the bad word (it may be a pasted VERIFY's).
        let e = parse(Path::new("t.apdu"), "test x\n  00A40400 0G -> 9000\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.apdu:2:12: 00A40400…: a character at column 2 is not a hex digit (command data, not shown)"
        );
        let e = parse(
            Path::new("t.apdu"),
            "test x\n  00A40400 00 0020000003 12345O -> 9000\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.apdu:2:26: 00A40400…: a character at column 6 is not a hex digit (command data, not shown)"
        );
        // INTERNAL AUTHENTICATE's random is public: the word is quoted.
        let e = parse(Path::new("t.apdu"), "test x\n  int-auth IRK 010G\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.apdu:2:16: \"010G\": 'G' at column 4 is not a hex digit"
        );
        // Without a whole header the line could be anything, a PIN included: not quoted.
        let e = parse(Path::new("t.apdu"), "test x\n  00A4 0G -> 9000\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.apdu:2:8: **: a character at column 2 is not a hex digit (secret data, not shown)"
        );
        let e = parse(
            Path::new("t.apdu"),
            "test x\n  mac 04DC0434 0A01Z1 key UK_N\n",
        )
        .unwrap_err();
        // A macro's data may be a PIN or a key: not quoted.
        assert_eq!(
            e.to_string(),
            "t.apdu:2:16: **: a character at column 5 is not a hex digit (secret data, not shown)"
        );
        let e = parse(
            Path::new("t.apdu"),
            "test x\n  ext-auth RKSSSE wrnog -> 63Cx\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.apdu:2:19: unexpected \"wrnog\" after the macro's arguments"
        );
        let e = parse(
            Path::new("t.apdu"),
            "test x\n  mac 04DC0434 0A0131 key UK_N TK\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.apdu:2:32: unexpected \"TK\" after the macro's arguments"
        );
        for extra in ["reset now", "write-key IRK 0 x", "unblock-pin 00"] {
            let text = format!("test x\n  {extra}\n");
            let e = parse(Path::new("t.apdu"), &text).unwrap_err();
            assert!(
                e.problem.to_string().starts_with("unexpected "),
                "{extra}: {e}"
            );
        }
        // int-auth's words after the key are P2 and data: a misspelt word is not hex.
        let e = parse(Path::new("t.apdu"), "test x\n  int-auth IRK garbage\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.apdu:2:16: \"garbage\": 'g' at column 1 is not a hex digit"
        );
        let e = parse(Path::new("t.apdu"), "test x\n  int-auth IRK p2 100\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.apdu:2:19: \"100\" is not a P2 byte (two hex digits, such as 00)"
        );
        let s = parse(
            Path::new("t.apdu"),
            "test x\n  int-auth IRK p2 00 0102030405060708 $r -> 9000 $answer * save $a\n  int-auth IRK\n",
        )
        .unwrap();
        assert_eq!(
            s.tests[0].steps[0].action,
            Action::IntAuth {
                kid: Kid::Irk,
                p2: Some(0),
                data: Some(vec![
                    Piece::Bytes(vec![1, 2, 3, 4, 5, 6, 7, 8]),
                    Piece::Var("r".into())
                ]),
            }
        );
        assert_eq!(
            s.tests[0].steps[0].data.as_ref().map(DataPattern::text),
            Some("$answer*")
        );
        assert_eq!(
            s.tests[0].steps[1].action,
            Action::IntAuth {
                kid: Kid::Irk,
                p2: None,
                data: None
            }
        );
        let e = parse(Path::new("t.apdu"), "test x\n  00A4 -> 90\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.apdu:2:11: status word pattern \"90\" needs 4 characters (e.g. 9000, 61xx, 63Cx)"
        );
    }

    #[test]
    fn secret_data_is_never_quoted_in_errors() {
        for (line, message) in [
            (
                "00 20 00 00 03 12345Z",
                "t.apdu:2:18: 00200000**…: a character at column 6 is not a hex digit (secret data, not shown)",
            ),
            (
                "0020000003 123 456",
                "t.apdu:2:14: 00200000**…: odd number of hex digits (3): every byte needs two",
            ),
            (
                "845E0000 0A 1234567 FF",
                "t.apdu:2:15: 845E0000**…: odd number of hex digits (7): every byte needs two",
            ),
            (
                "reload-pin 12345Z",
                "t.apdu:2:14: **: a character at column 6 is not a hex digit (secret data, not shown)",
            ),
            (
                "mac 04DC0434 0A0131Z key UK_N",
                "t.apdu:2:16: **: a character at column 7 is not a hex digit (secret data, not shown)",
            ),
            (
                "set $pin = 12345Z",
                "t.apdu:2:13: **: a character at column 7 is not a hex digit (secret data, not shown)",
            ),
            (
                "$header 03 12345Z",
                "t.apdu:2:14: **: a character at column 6 is not a hex digit (secret data, not shown)",
            ),
        ] {
            let e = parse(Path::new("t.apdu"), &format!("test x\n  {line}\n")).unwrap_err();
            assert_eq!(e.to_string(), message, "{line}");
        }
    }

    #[test]
    fn endless_and_repeated_includes_are_refused() {
        let dir = std::env::temp_dir().join(format!("sscard-script-inc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = parse(&dir.join("t.apdu"), "include \"/dev/zero\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}:1:9: /dev/zero holds more than 1048576 bytes, the most read for an APDU script",
                dir.join("t.apdu").display()
            )
        );
        assert_eq!(
            e.problem,
            ScriptProblem::TooLarge {
                path: "/dev/zero".into(),
                limit: MAX_SCRIPT_BYTES
            }
        );
        // 8 levels of a 100 kB file that includes the next level ten times: ~10^8 × 100 kB.
        let filler = format!("# {}\n", "x".repeat(100_000));
        for level in 0..8 {
            let body = if level == 7 {
                filler.clone()
            } else {
                format!(
                    "{filler}{}",
                    format!("include \"l{}.apdu\"\n", level + 1).repeat(10)
                )
            };
            std::fs::write(dir.join(format!("l{level}.apdu")), body).unwrap();
        }
        let e = load(&dir.join("l0.apdu")).unwrap_err();
        assert_eq!(
            e.problem,
            ScriptProblem::IncludesTooLarge {
                limit: MAX_SCRIPT_TOTAL_BYTES
            }
        );
        assert_eq!(
            e.problem.to_string(),
            "the script and its includes hold more than 8388608 bytes in all (an include repeated too often?)"
        );
        let e = load(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero:0:0: /dev/zero holds more than 1048576 bytes, the most read for an APDU script"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest::proptest! {
        /// Whatever follows the header of a PIN or key command on a script line, a parse
        /// error never quotes it.
        #[test]
        fn parse_errors_never_quote_secret_data(
            header in proptest::sample::select(vec!["00200000", "845E0000", "80 5E 01 00", "0082000A", "84D40008", "84240001"]),
            data in "[0-9]{2,6}[G-Z][0-9]{1,5}",
        ) {
            let text = format!("test x\n  {header} {data}\n");
            let message = parse(Path::new("t.apdu"), &text).unwrap_err().to_string();
            proptest::prop_assert!(!message.contains(&data), "{}", message);
            let bad = data.chars().find(|c| !c.is_ascii_digit()).unwrap();
            proptest::prop_assert!(!message.contains(bad), "{}", message);
        }
    }
}
