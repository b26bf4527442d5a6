//! Two runs side by side (two readers, two firmware versions, two settings): the run, the
//! reader's identity, every check's verdict and figure matched by id, and the latency
//! percentiles with their change. Text and HTML.

use super::check::{Check, Verdict};
use super::html::{badge, esc, latency_svg, reported, STYLE};
use super::identity::Reported;
use super::latency::Latency;
use super::report::Report;
use std::fmt::Write;
use std::io::Read;

/// A JSON report is some tens of kilobytes; a file larger than this is something else, and is
/// refused before it is read.
pub const MAX_REPORT_BYTES: u64 = 8 * 1024 * 1024;

/// A report file that cannot be compared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompareError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is over {MAX_REPORT_BYTES} bytes: not a reader-test JSON report")]
    TooLarge { path: String },
    /// serde_json's message, cut: it quotes the offending value, which may be megabytes long.
    #[error("{path} is not a reader-test JSON report: {message} at line {line} column {column}")]
    Parse {
        path: String,
        message: String,
        line: usize,
        column: usize,
    },
    #[error("{path} is a report of schema {found:?}; this sscard reads {expected:?}")]
    Schema {
        path: String,
        found: String,
        expected: &'static str,
    },
}

impl sscard_core::classify::Classified for CompareError {
    fn return_code(&self) -> i32 {
        sscard_core::profile::codes::INVALID_DATA
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        sscard_core::classify::ExitClass::BadInput
    }
}

/// The one field read before the rest: another schema's report is named as such, not as a
/// missing or unknown field.
#[derive(serde::Deserialize)]
struct Head {
    schema: String,
}

/// Reads a JSON report written by `reader-test --json-file`.
pub fn load(path: &std::path::Path) -> Result<Report, CompareError> {
    let shown = path.display().to_string();
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_REPORT_BYTES + 1).read_to_string(&mut text))
        .map_err(|source| CompareError::Read {
            path: shown.clone(),
            source,
        })?;
    if text.len() as u64 > MAX_REPORT_BYTES {
        return Err(CompareError::TooLarge { path: shown });
    }
    let parse = |e: serde_json::Error| {
        let full = e.to_string();
        let at = format!(" at line {} column {}", e.line(), e.column());
        CompareError::Parse {
            path: shown.clone(),
            message: super::failure::clip(full.strip_suffix(&at).unwrap_or(&full)),
            line: e.line(),
            column: e.column(),
        }
    };
    let head: Head = serde_json::from_str(&text).map_err(parse)?;
    if head.schema != super::report::SCHEMA {
        return Err(CompareError::Schema {
            path: shown,
            found: super::failure::clip(&head.schema),
            expected: super::report::SCHEMA,
        });
    }
    serde_json::from_str(&text).map_err(parse)
}

/// One line of the comparison: a check of either run, matched by id.
pub struct Row<'a> {
    pub id: &'a str,
    pub a: Option<&'a Check>,
    pub b: Option<&'a Check>,
}

impl Row<'_> {
    /// Whether the verdicts differ.
    pub fn differs(&self) -> bool {
        self.a.map(|c| c.verdict) != self.b.map(|c| c.verdict)
    }
}

/// The checks of both runs, in A's order, then those only B has.
pub fn rows<'a>(a: &'a Report, b: &'a Report) -> Vec<Row<'a>> {
    let mut out: Vec<Row> = a
        .checks
        .iter()
        .map(|c| Row {
            id: &c.id,
            a: Some(c),
            b: b.check(&c.id),
        })
        .collect();
    out.extend(
        b.checks
            .iter()
            .filter(|c| a.check(&c.id).is_none())
            .map(|c| Row {
                id: &c.id,
                a: None,
                b: Some(c),
            }),
    );
    out
}

fn word(c: Option<&Check>) -> &'static str {
    c.map_or("—", |c| c.verdict.word())
}

fn p(l: Option<&Latency>, f: impl Fn(&Latency) -> f64) -> String {
    l.map_or("—".into(), |l| format!("{:.3}", f(l)))
}

/// The identity lines of both readers: label, A, B.
fn identity<'a>(
    a: &'a Report,
    b: &'a Report,
) -> Vec<(&'a str, Option<&'a Reported>, Option<&'a Reported>)> {
    let mut out: Vec<_> = a
        .reader
        .properties
        .iter()
        .map(|p| (p.label.as_str(), Some(&p.value), b.reader.get(&p.key)))
        .collect();
    out.extend(
        b.reader
            .properties
            .iter()
            .filter(|p| a.reader.get(&p.key).is_none())
            .map(|p| (p.label.as_str(), None, Some(&p.value))),
    );
    out
}

fn run_lines(r: &Report) -> [(&'static str, String); 8] {
    [
        ("file", String::new()),
        ("started", r.started.clone()),
        ("sscard", r.sscard_version.clone()),
        ("host", r.host.clone()),
        ("mode", format!("{:?}", r.mode).to_lowercase()),
        (
            "thresholds",
            format!("{} ({})", r.thresholds.thresholds.name, r.thresholds.source),
        ),
        ("reader", r.reader.name.clone()),
        (
            "card ATR",
            format!(
                "{} {}",
                r.card.atr,
                r.card.protocol.as_deref().unwrap_or("")
            ),
        ),
    ]
}

/// `key A` and `key B` lines, or one line when both are the same.
fn pair(t: &mut String, key: &str, a: &str, b: &str) {
    if a == b {
        let _ = writeln!(t, "{key:<12}   {a}");
    } else {
        let _ = writeln!(t, "{key:<12} A {a}\n{:<12} B {b}", "");
    }
}

/// The comparison as text: what both runs share once, what differs as A and B.
pub fn text(a: &Report, b: &Report, names: (&str, &str)) -> String {
    let mut t = String::new();
    let (la, lb) = (run_lines(a), run_lines(b));
    for ((k, va), (_, vb)) in la.iter().zip(&lb) {
        if *k == "file" {
            pair(&mut t, k, names.0, names.1);
        } else {
            pair(&mut t, k, va, vb);
        }
    }
    t += "reader identity\n";
    for (label, va, vb) in identity(a, b) {
        let show = |v: Option<&Reported>| v.map_or("—".into(), Reported::display);
        let (sa, sb) = (show(va), show(vb));
        if sa == sb {
            let _ = writeln!(t, "  {label:<56}   {sa}");
        } else {
            let _ = writeln!(t, "  {label:<56} A {sa}\n  {:<56} B {sb}", "");
        }
    }
    let _ = writeln!(
        t,
        "{:<5} {:<5} {:<32} figure (A | B where they differ)",
        "A", "B", "check"
    );
    for row in rows(a, b) {
        let fig = |c: Option<&Check>| c.map_or("—".to_string(), |c| c.figure.clone());
        let (fa, fb) = (fig(row.a), fig(row.b));
        let _ = writeln!(
            t,
            "{:<5} {:<5} {:<32} {}{}",
            word(row.a),
            word(row.b),
            row.id,
            if fa == fb { fa } else { format!("{fa} | {fb}") },
            if row.differs() {
                "   ← verdicts differ"
            } else {
                ""
            }
        );
    }
    t += "latency (ms)                          p50 A    p50 B    p95 A    p95 B    p99 A    p99 B  Δp95\n";
    for row in rows(a, b) {
        let (la, lb) = (
            row.a.and_then(|c| c.latency.as_ref()),
            row.b.and_then(|c| c.latency.as_ref()),
        );
        if la.is_none() && lb.is_none() {
            continue;
        }
        let delta = match (la, lb) {
            (Some(x), Some(y)) => format!("{:+.3}", y.p95_ms - x.p95_ms),
            _ => "—".into(),
        };
        let _ = writeln!(
            t,
            "{:<34} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {delta}",
            row.id,
            p(la, |l| l.p50_ms),
            p(lb, |l| l.p50_ms),
            p(la, |l| l.p95_ms),
            p(lb, |l| l.p95_ms),
            p(la, |l| l.p99_ms),
            p(lb, |l| l.p99_ms),
        );
    }
    let _ = write!(
        t,
        "verdict      A {} ({} passed, {} failed, {} n/a)\n             B {} ({} passed, {} failed, {} n/a)",
        a.summary.verdict.word(),
        a.summary.passed,
        a.summary.failed,
        a.summary.not_applicable,
        b.summary.verdict.word(),
        b.summary.passed,
        b.summary.failed,
        b.summary.not_applicable
    );
    t
}

/// The comparison as a self-contained page.
pub fn html(a: &Report, b: &Report, names: (&str, &str)) -> String {
    let mut run = String::new();
    for ((k, va), (_, vb)) in run_lines(a).iter().zip(&run_lines(b)) {
        let (va, vb) = if *k == "file" {
            (names.0.to_string(), names.1.to_string())
        } else {
            (va.clone(), vb.clone())
        };
        let _ = writeln!(
            run,
            "<tr><th>{k}</th><td>{}</td><td>{}</td></tr>",
            esc(&va),
            esc(&vb)
        );
    }
    let _ = writeln!(
        run,
        "<tr><th>verdict</th><td>{}</td><td>{}</td></tr>",
        badge(a.summary.verdict),
        badge(b.summary.verdict)
    );
    let mut ident = String::new();
    for (label, va, vb) in identity(a, b) {
        let show = |v: Option<&Reported>| v.map_or("—".into(), reported);
        let _ = writeln!(
            ident,
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            esc(label),
            show(va),
            show(vb)
        );
    }
    let mut checks = String::new();
    for row in rows(a, b) {
        let name = row.a.or(row.b).map_or("", |c| c.name.as_str());
        let cell = |c: Option<&Check>| match c {
            None => "<td>—</td><td></td>".to_string(),
            Some(c) => format!(
                "<td class=\"{}\">{}</td><td>{}</td>",
                match c.verdict {
                    Verdict::Pass => "pass",
                    Verdict::Fail => "fail",
                    Verdict::NotApplicable => "na",
                },
                c.verdict.word(),
                esc(&c.figure)
            ),
        };
        let _ = writeln!(
            checks,
            "<tr{}><td>{}<br><small>{}</small></td>{}{}</tr>",
            if row.differs() {
                " style=\"background:#fff4e0\""
            } else {
                ""
            },
            esc(name),
            esc(row.id),
            cell(row.a),
            cell(row.b)
        );
    }
    let mut lat_rows = Vec::new();
    let labels: Vec<(String, String)> = rows(a, b)
        .iter()
        .map(|r| (format!("A {}", r.id), format!("B {}", r.id)))
        .collect();
    for (row, (la, lb)) in rows(a, b).into_iter().zip(&labels) {
        if let Some(l) = row.a.and_then(|c| c.latency.as_ref()) {
            lat_rows.push((la.as_str(), l, None));
        }
        if let Some(l) = row.b.and_then(|c| c.latency.as_ref()) {
            lat_rows.push((lb.as_str(), l, None));
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sscard reader-test compare</title>\n<style>{STYLE}</style></head>\n<body><h1>Reader qualification: two runs</h1>\n<table><tr><th></th><th>A</th><th>B</th></tr>\n{run}</table>\n<h2>Reader identity</h2>\n<table><tr><th></th><th>A</th><th>B</th></tr>\n{ident}</table>\n<h2>Latency (log scale)</h2>\n{svg}\n<h2>Checks</h2>\n<table><tr><th>check</th><th>A</th><th>figure A</th><th>B</th><th>figure B</th></tr>\n{checks}</table>\n</body></html>\n",
        svg = latency_svg(&lat_rows),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let d = std::env::temp_dir().join(format!("sscard-cmp-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&d).unwrap();
            Self(d)
        }
        fn file(&self, name: &str, content: &[u8]) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, content).unwrap();
            p
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_bad_report_is_refused_with_what_is_wrong() {
        let d = Dir::new("bad");
        let show = |p: &PathBuf| load(p).unwrap_err().to_string();
        let p = d.file(
            "cut.json",
            b"{\"schema\": \"sscard-reader-test/1\", \"started\": ",
        );
        assert_eq!(
            show(&p),
            format!(
                "{} is not a reader-test JSON report: EOF while parsing a value at line 1 column 46",
                p.display()
            )
        );
        // Another version is named as such, whatever its fields.
        let p = d.file(
            "v2.json",
            b"{\"schema\": \"sscard-reader-test/2\", \"new\": 1}",
        );
        assert_eq!(
            show(&p),
            format!(
                "{} is a report of schema \"sscard-reader-test/2\"; this sscard reads \"sscard-reader-test/1\"",
                p.display()
            )
        );
        let p = d.file("other.json", b"{\"checks\": []}");
        assert_eq!(
            show(&p),
            format!(
                "{} is not a reader-test JSON report: missing field `schema` at line 1 column 14",
                p.display()
            )
        );
        // A long value is quoted in part only.
        let long = format!("{{\"schema\": {}}}", "1".repeat(100_000));
        let p = d.file("long.json", long.as_bytes());
        let e = show(&p);
        assert!(
            e.len() < 400 && e.ends_with("at line 1 column 100011"),
            "{e}"
        );
        assert!(matches!(
            load(&d.0.join("none.json")),
            Err(CompareError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound
        ));
    }

    #[test]
    fn a_huge_file_is_refused_without_reading_it_whole() {
        let d = Dir::new("huge");
        let p = d.0.join("huge.json");
        let f = std::fs::File::create(&p).unwrap();
        // Sparse: 1 GiB on the file system's word, nothing on the disk.
        f.set_len(1 << 30).unwrap();
        assert!(matches!(load(&p), Err(CompareError::TooLarge { .. })));
    }
}
