//! Batch text into holders: CSV (RFC 4180 quoting through the `csv` crate) or JSON lines. Each
//! holder line is validated on its own; a refused line becomes a [`BatchError`] naming it.

use super::{Batch, BatchError, COLUMNS, DERIVED_COLUMNS};
use sscard_core::profile::holder::Holder;
use std::collections::HashMap;

fn err(line: usize, field: &str, message: impl Into<String>) -> BatchError {
    BatchError {
        line,
        field: field.into(),
        message: message.into(),
    }
}

/// Spaces, tabs and the ideographic space around a CSV cell are layout, not data.
fn trim_cell(cell: &str) -> &str {
    cell.trim_matches([' ', '\t', '\u{3000}'])
}

/// The gender and birth date a citizen ID number states (its 17th digit, its digits 7 to 14),
/// for a batch that leaves those columns out or empty.
fn from_citizen_id(field: &str, ssn: &str) -> Option<String> {
    match field {
        "birth_date" => ssn.get(6..14).map(str::to_string),
        "gender" => ssn
            .chars()
            .nth(16)
            .and_then(|c| c.to_digit(10))
            .map(|d| if d % 2 == 1 { "1" } else { "2" }.to_string()),
        _ => None,
    }
}

/// One holder from a line's values: `get` gives a field's value, `None` when the line has none
/// (no column, no key, an empty cell). Gender and birth date default to the citizen ID's.
fn holder(
    line: usize,
    get: &dyn Fn(&str) -> Result<Option<String>, BatchError>,
) -> Result<Holder, BatchError> {
    let ssn = get("ssn")?.unwrap_or_default();
    let mut values = Vec::with_capacity(COLUMNS.len());
    for field in COLUMNS {
        let value = match get(field)? {
            Some(v) => v,
            None if DERIVED_COLUMNS.contains(&field) => {
                from_citizen_id(field, &ssn).unwrap_or_default()
            }
            None => return Err(err(line, field, "missing")),
        };
        values.push(value);
    }
    let [card_number, ssn, name, gender, nation, birthplace, birth_date, issue_date, expiry_date, pension, medical, medical_account]: [String; 12] =
        values.try_into().expect("one value per column");
    let h = Holder {
        card_number,
        ssn,
        name,
        gender,
        nation,
        birthplace,
        birth_date,
        issue_date,
        expiry_date,
        pension,
        medical,
        medical_account,
    };
    h.validate().map_err(|e| err(line, e.field(), e.detail()))?;
    Ok(h)
}

/// Keeps the first line of each card number and citizen ID; a later line with either is
/// refused, naming the first.
#[derive(Default)]
struct Unique {
    seen: HashMap<(&'static str, String), usize>,
}

impl Unique {
    fn admit(&mut self, batch: &mut Batch, line: usize, h: Holder) {
        for (field, value) in [("card_number", &h.card_number), ("ssn", &h.ssn)] {
            if let Some(first) = self.seen.get(&(field, value.clone())) {
                batch
                    .errors
                    .push(err(line, field, format!("{value} already on line {first}")));
                return;
            }
        }
        self.seen
            .insert(("card_number", h.card_number.clone()), line);
        self.seen.insert(("ssn", h.ssn.clone()), line);
        batch.holders.push((line, h));
    }
}

/// JSON lines: one object per line with the CSV's column names as keys and strings as values.
pub(super) fn jsonl(text: &str, batch: &mut Batch) {
    let mut unique = Unique::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        batch.lines += 1;
        let parsed = match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line)
        {
            Ok(obj) => holder(n, &|k| match obj.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(err(n, k, "is not a string (write it in quotes)")),
            }),
            Err(e) => Err(err(n, "line", format!("not a JSON object: {e}"))),
        };
        match parsed {
            Ok(h) => unique.admit(batch, n, h),
            Err(e) => batch.errors.push(e),
        }
    }
}

/// Line numbers of byte offsets into a text, counted forward: a line ends at `\r\n`, `\n` or a
/// lone `\r`, as for the CSV reader.
pub(super) struct Lines<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// The line (from 1) of byte `offset`; offsets must not go backwards.
    pub(super) fn of(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        while self.at < offset {
            let b = self.text[self.at];
            if b == b'\n' || (b == b'\r' && self.text.get(self.at + 1) != Some(&b'\n')) {
                self.line += 1;
            }
            self.at += 1;
        }
        self.line
    }
}

/// CSV with a header line naming the columns in any order (case and surrounding spaces do not
/// matter; unknown columns are ignored). Blank lines and rows whose cells are all empty (what
/// spreadsheets leave below the data) are skipped.
pub(super) fn csv(text: &str, batch: &mut Batch) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut lines = Lines::new(text);
    let mut header: Option<(usize, usize)> = None;
    let mut columns: HashMap<&'static str, usize> = HashMap::new();
    let mut unique = Unique::default();
    let mut record = csv::StringRecord::new();
    loop {
        let from = reader.position().byte() as usize;
        let read = reader.read_record(&mut record);
        let to = (reader.position().byte() as usize).min(text.len());
        // The reader skips blank lines before a record: its first byte is after them.
        let first = text.as_bytes()[from.min(to)..to]
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .map_or(to, |i| from + i);
        let start = lines.of(first);
        let body = text
            .get(first..to)
            .unwrap_or_default()
            .trim_end_matches(['\r', '\n']);
        let end = lines.of(first + body.len());
        match read {
            Ok(false) => break,
            Ok(true) => {}
            // Unreachable with a flexible reader over text already decoded; kept so that a
            // new kind of CSV error is a refused line, not a panic or a silent skip.
            Err(e) => {
                if to <= from {
                    batch
                        .errors
                        .push(err(start, "line", format!("not CSV: {e}")));
                    break;
                }
                batch.lines += usize::from(header.is_some());
                batch
                    .errors
                    .push(err(start, "line", format!("not CSV: {e}")));
                continue;
            }
        }
        let cells: Vec<&str> = record.iter().map(trim_cell).collect();
        if cells.iter().all(|c| c.is_empty()) {
            continue;
        }
        let Some((header_line, width)) = header else {
            let names: Vec<String> = cells
                .iter()
                .map(|c| c.trim_start_matches('\u{FEFF}').to_ascii_lowercase())
                .collect();
            let mut problems = Vec::new();
            for column in COLUMNS {
                let at: Vec<usize> = (0..names.len()).filter(|&i| names[i] == column).collect();
                match at[..] {
                    [i] => {
                        columns.insert(column, i);
                    }
                    [] if DERIVED_COLUMNS.contains(&column) => {}
                    [] => problems.push(err(start, column, "column missing from the header")),
                    _ => problems.push(err(start, column, "column named twice in the header")),
                }
            }
            if !problems.is_empty() {
                batch.errors.extend(problems);
                return;
            }
            header = Some((start, names.len()));
            continue;
        };
        batch.lines += 1;
        let parsed = if end > start {
            Err(err(
                start,
                "line",
                format!(
                    "a quoted cell runs on to line {end}: a quote is not closed, or a cell \
                     holds a line break"
                ),
            ))
        } else if cells.len() != width {
            Err(err(
                start,
                "line",
                format!(
                    "{} cells, the header (line {header_line}) has {width}",
                    cells.len()
                ),
            ))
        } else {
            holder(start, &|k| {
                Ok(columns
                    .get(k)
                    .map(|&i| cells[i])
                    .filter(|c| !c.is_empty())
                    .map(str::to_string))
            })
        };
        match parsed {
            Ok(h) => unique.admit(batch, start, h),
            Err(e) => batch.errors.push(e),
        }
    }
}
