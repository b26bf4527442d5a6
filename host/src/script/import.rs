//! Import of pcsc-tools `scriptor` scripts: APDU lines (hex, spaces allowed) become steps that
//! accept any status word (scriptor checks nothing), `#` comments are kept, `reset` stays.

/// Converts scriptor text to the `.apdu` language.
pub fn from_scriptor(text: &str, name: &str) -> String {
    let mut out = format!("# imported from scriptor file {name}\ntest \"{name}\"\n");
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            out.push('\n');
        } else if let Some(c) = trimmed.strip_prefix('#') {
            out.push_str(&format!("  #{c}\n"));
        } else if trimmed.eq_ignore_ascii_case("reset") {
            out.push_str("  reset\n");
        } else if trimmed.eq_ignore_ascii_case("exit") {
            break;
        } else {
            out.push_str(&format!("  {trimmed} -> any\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_comments_and_apdus() {
        let s = super::from_scriptor("# select\n00 A4 04 00 00\nreset\n", "x");
        assert_eq!(s, "# imported from scriptor file x\ntest \"x\"\n  # select\n  00 A4 04 00 00 -> any\n  reset\n");
        assert!(super::super::parse(std::path::Path::new("x.apdu"), &s).is_ok());
    }
}
