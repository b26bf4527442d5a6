//! Batch files of holders: CSV with a header, or JSON lines with the same keys. Everything is
//! validated before any card is touched; each error names the line and the field.

use sscard_core::profile::holder::Holder;
use std::collections::HashMap;
use std::path::Path;

/// The CSV header (any column order).
pub const COLUMNS: [&str; 12] = [
    "card_number",
    "ssn",
    "name",
    "gender",
    "nation",
    "birthplace",
    "birth_date",
    "issue_date",
    "expiry_date",
    "pension",
    "medical",
    "medical_account",
];

/// One problem in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.field, self.message)
    }
}

/// A parsed batch: valid holders with their line numbers, and the errors.
#[derive(Debug, Default)]
pub struct Batch {
    pub holders: Vec<(usize, Holder)>,
    pub errors: Vec<BatchError>,
}

fn err(line: usize, field: &str, message: impl Into<String>) -> BatchError {
    BatchError {
        line,
        field: field.into(),
        message: message.into(),
    }
}

fn from_fields(line: usize, get: &dyn Fn(&str) -> Option<String>) -> Result<Holder, BatchError> {
    let f = |name: &str| get(name).ok_or_else(|| err(line, name, "missing"));
    let h = Holder {
        card_number: f("card_number")?,
        ssn: f("ssn")?,
        name: f("name")?,
        gender: f("gender")?,
        nation: f("nation")?,
        birthplace: f("birthplace")?,
        birth_date: f("birth_date")?,
        issue_date: f("issue_date")?,
        expiry_date: f("expiry_date")?,
        pension: f("pension")?,
        medical: f("medical")?,
        medical_account: f("medical_account")?,
    };
    h.validate().map_err(|e| err(line, e.field(), e.detail()))?;
    Ok(h)
}

/// Parses batch text; `jsonl` selects JSON lines instead of CSV.
pub fn parse(text: &str, jsonl: bool) -> Batch {
    let mut batch = Batch::default();
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<String> = if jsonl {
        Vec::new()
    } else {
        match lines.next() {
            Some((_, h)) => h.split(',').map(|c| c.trim().to_string()).collect(),
            None => return batch,
        }
    };
    if !jsonl {
        for c in COLUMNS {
            if !header.iter().any(|h| h == c) {
                batch
                    .errors
                    .push(err(1, c, "column missing from the header"));
            }
        }
        if !batch.errors.is_empty() {
            return batch;
        }
    }
    let mut seen: HashMap<(&'static str, String), usize> = HashMap::new();
    for (n, line) in lines {
        let parsed = if jsonl {
            match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line) {
                Ok(obj) => from_fields(n, &|k| {
                    obj.get(k).and_then(|v| v.as_str().map(str::to_string))
                }),
                Err(e) => Err(err(n, "line", format!("not a JSON object: {e}"))),
            }
        } else {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if cells.len() != header.len() {
                Err(err(
                    n,
                    "line",
                    format!("{} fields, the header has {}", cells.len(), header.len()),
                ))
            } else {
                from_fields(n, &|k| {
                    header
                        .iter()
                        .position(|h| h == k)
                        .map(|i| cells[i].to_string())
                })
            }
        };
        match parsed {
            Err(e) => batch.errors.push(e),
            Ok(h) => {
                let mut dup = None;
                for (field, value) in [("card_number", &h.card_number), ("ssn", &h.ssn)] {
                    if let Some(first) = seen.get(&(field, value.clone())) {
                        dup = Some(err(n, field, format!("{value} already on line {first}")));
                    }
                }
                match dup {
                    Some(e) => batch.errors.push(e),
                    None => {
                        seen.insert(("card_number", h.card_number.clone()), n);
                        seen.insert(("ssn", h.ssn.clone()), n);
                        batch.holders.push((n, h));
                    }
                }
            }
        }
    }
    batch
}

/// Reads a batch file (`.jsonl`/`.json` or a first character `{` means JSON lines).
pub fn load(path: &Path) -> std::io::Result<Batch> {
    let text = std::fs::read_to_string(path)?;
    let jsonl = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "json")
        || text.trim_start().starts_with('{');
    Ok(parse(&text, jsonl))
}

/// `n` valid, distinct holders for test benches: card numbers `<prefix>0000001…` with their
/// check characters, citizen IDs with theirs. Line numbers start at 2 (after a header).
pub fn synthetic(n: usize, prefix: char) -> Vec<(usize, Holder)> {
    use sscard_core::profile::{card_number_check, citizen_id_check};
    let names = ["张三", "李四", "王五", "赵六", "欧阳娜娜", "司马相如"];
    (1..=n)
        .map(|i| {
            let cn = format!("{prefix}{i:07}");
            let card_number = format!("{cn}{}", card_number_check(&cn).unwrap_or('0'));
            let id = format!(
                "1101051985{:02}{:02}{:03}",
                1 + i % 12,
                1 + i % 28,
                i % 1000
            );
            let ssn = format!("{id}{}", citizen_id_check(&id).unwrap_or('0'));
            let h = Holder {
                card_number,
                ssn,
                name: names[i % names.len()].into(),
                gender: if i % 2 == 0 { "2" } else { "1" }.into(),
                nation: "01".into(),
                birthplace: "110105".into(),
                birth_date: format!("1985{:02}{:02}", 1 + i % 12, 1 + i % 28),
                issue_date: "20240101".into(),
                expiry_date: "20340101".into(),
                pension: "01".into(),
                medical: "01".into(),
                medical_account: format!("11010000{i:08}"),
            };
            (i + 1, h)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "card_number,ssn,name,gender,nation,birthplace,birth_date,issue_date,expiry_date,pension,medical,medical_account";

    #[test]
    fn valid_and_invalid_lines_are_told_apart() {
        let text = format!(
            "{HEADER}\nA12345674,11010519491231002X,张三,1,01,110105,19491231,20240101,20340101,01,01,1101000000012345\nA12345674,11010519491231002X,李四,2,01,110105,19491231,20240101,20340101,01,01,1101000000012345\nB1234567X,110105194912310021,王五,1,01,110105,19491231,20240101,20340101,01,01,1101000000012345\n"
        );
        let b = parse(&text, false);
        assert_eq!(b.holders.len(), 1);
        assert_eq!(b.errors.len(), 2);
        assert_eq!(
            b.errors[0].to_string(),
            "line 3: ssn: 11010519491231002X already on line 2"
        );
        assert_eq!(b.errors[1].line, 4);
        assert_eq!(b.errors[1].field, "card_number");
        let b = parse("{\"card_number\":\"A12345674\"}\n", true);
        assert_eq!(b.errors[0].to_string(), "line 1: ssn: missing");
        let b = parse("card_number,ssn\n", false);
        assert_eq!(
            b.errors[0].to_string(),
            "line 1: name: column missing from the header"
        );
    }
}
