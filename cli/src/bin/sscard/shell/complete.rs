//! Tab completion: command names, then each command's arguments from the profile — file names,
//! the records (numbers and fields) of the file named or selected, key ids, reader names
//! (quoted when they hold spaces) — as rustyline's [`Helper`].

use super::exec::external_kids;
use super::parse::{quote, split, COMMANDS};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::Helper;
use sscard_core::profile::files::{self, FileDef};
use std::cell::RefCell;
use std::rc::Rc;

/// What completion needs to know of the shell's state.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// The EF `read` and `write` use when none is named.
    pub file: Option<&'static FileDef>,
    /// The connected card is a PSAM: its files are EF15 and EF16.
    pub psam: bool,
}

/// The candidates for the word under the cursor: where it starts (its opening quote
/// included) and what may replace it, each with a space after it.
pub fn complete(
    line: &str,
    pos: usize,
    known: &Known,
    readers: &dyn Fn() -> Vec<String>,
) -> (usize, Vec<String>) {
    let head = &line[..pos.min(line.len())];
    let s = split(head);
    let (index, start, typed) = match s.words.last() {
        Some(w) if !s.trailing_space => (s.words.len() - 1, w.start, w.text.clone()),
        _ => (s.words.len(), pos, String::new()),
    };
    let word = |i: usize| s.words.get(i).map(|w| w.text.as_str());
    let file_names = || match known.psam {
        true => vec!["EF15".to_string(), "EF16".to_string()],
        false => files::FILES.iter().map(|f| f.name.to_string()).collect(),
    };
    let records = |name: Option<&str>| -> Vec<String> {
        let file = match (name, known.psam) {
            (_, true) => None,
            (Some(n), _) => files::by_name(n),
            (None, _) => known.file,
        };
        file.map(|f| {
            f.records()
                .iter()
                .map(|r| r.number.to_string())
                .chain(f.records().iter().map(|r| r.key.to_string()))
                .collect()
        })
        .unwrap_or_default()
    };
    let words: Vec<String> = match (index, word(0)) {
        (0, _) => {
            let mut names: Vec<String> = COMMANDS.iter().map(|(n, _, _)| n.to_string()).collect();
            names.sort();
            names
        }
        (1, Some("connect")) => {
            let names = readers();
            (0..names.len())
                .map(|i| i.to_string())
                .chain(names)
                .collect()
        }
        (1, Some("select")) => file_names()
            .into_iter()
            .chain(["DF01", "MF", "SSSE"].map(String::from))
            .collect(),
        // `read` alone reads the selected file: its records come after the file names.
        (1, Some("read")) => file_names()
            .into_iter()
            .chain(records(None))
            .chain(["--raw".into()])
            .collect(),
        (1, Some("write")) => file_names(),
        (2, Some("read" | "write")) => records(word(1)),
        (1, Some("auth")) => vec!["internal".into(), "external".into()],
        (2, Some("auth")) if word(1) == Some("external") => {
            external_kids().map(|k| k.name().to_string()).collect()
        }
        (1, Some("trace")) => vec!["on".into(), "raw".into(), "off".into()],
        (1, Some("help")) => COMMANDS.iter().map(|(n, _, _)| n.to_string()).collect(),
        _ => Vec::new(),
    };
    let low = typed.to_lowercase();
    let mut out: Vec<String> = words
        .into_iter()
        .filter(|w| w.to_lowercase().starts_with(&low))
        .map(|w| format!("{} ", quote(&w)))
        .collect();
    out.dedup();
    (start, out)
}

/// The line editor's helper: completion from [`complete`], live reader names.
pub struct ShellHelper {
    pub known: Rc<RefCell<Known>>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let readers = || {
            sscard_transport::pcsc::establish()
                .and_then(|c| sscard_transport::pcsc::list_readers(&c))
                .unwrap_or_default()
        };
        let (start, words) = complete(line, pos, &self.known.borrow(), &readers);
        Ok((
            start,
            words
                .into_iter()
                .map(|w| Pair {
                    display: w.trim_end().to_string(),
                    replacement: w,
                })
                .collect(),
        ))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers() -> Vec<String> {
        vec!["Virtual PCD 00 00".into(), "Virtual PCD 00 01".into()]
    }

    fn at_end(line: &str, known: &Known) -> (usize, Vec<String>) {
        complete(line, line.len(), known, &readers)
    }

    #[test]
    fn commands_complete_with_a_space() {
        assert_eq!(
            at_end("re", &Known::default()),
            (0, vec!["read ".into(), "readers ".into()])
        );
        assert_eq!(
            at_end("ver", &Known::default()),
            (0, vec!["verify ".into()])
        );
        assert_eq!(at_end("", &Known::default()).1.len(), COMMANDS.len());
    }

    #[test]
    fn files_records_and_keys_come_from_the_profile() {
        assert_eq!(
            at_end("read EF0", &Known::default()),
            (5, vec!["EF05 ".into(), "EF06 ".into(), "EF07 ".into()])
        );
        assert_eq!(
            at_end("read df01/", &Known::default()).1,
            ["DF01/EF01 ", "DF01/EF02 "]
        );
        assert_eq!(
            at_end("read EF07 ", &Known::default()).1,
            ["1 ", "2 ", "3 ", "pension ", "medical ", "medical_account "]
        );
        assert_eq!(
            at_end("write EF06 na", &Known::default()).1,
            ["name ", "name_extension ", "nation "]
        );
        // No file named: the selected one's records.
        let known = Known {
            file: files::by_name("EF07"),
            psam: false,
        };
        assert_eq!(
            at_end("read p", &known).1,
            ["pension "],
            "the selected file's records"
        );
        assert_eq!(at_end("read ", &Known::default()).1.len(), 6);
        assert_eq!(
            at_end("auth external ", &known).1,
            ["RKSSSE ", "EAK_L ", "TK "]
        );
        assert_eq!(at_end("auth e", &known), (5, vec!["external ".into()]));
        assert_eq!(
            at_end("select D", &known).1,
            ["DF01/EF01 ", "DF01/EF02 ", "DF01 "]
        );
        assert_eq!(at_end("trace o", &known).1, ["on ", "off "]);
        assert_eq!(at_end("ls ", &known).1.len(), 0);
        let psam = Known {
            file: None,
            psam: true,
        };
        assert_eq!(at_end("read E", &psam).1, ["EF15 ", "EF16 "]);
        assert_eq!(
            at_end("select ", &psam).1,
            ["EF15 ", "EF16 ", "DF01 ", "MF ", "SSSE "]
        );
    }

    #[test]
    fn reader_names_are_quoted() {
        assert_eq!(
            at_end("connect Vir", &Known::default()),
            (
                8,
                vec![
                    "\"Virtual PCD 00 00\" ".into(),
                    "\"Virtual PCD 00 01\" ".into()
                ]
            )
        );
        // An open quote is part of the word it replaces.
        assert_eq!(
            at_end("connect \"virtual pcd 00 01", &Known::default()),
            (8, vec!["\"Virtual PCD 00 01\" ".into()])
        );
        assert_eq!(at_end("connect 1", &Known::default()).1, ["1 "]);
    }
}
