//! Configuration diagnostics: what is wrong, where, and what would be valid.
//!
//! Contract: a [`Diagnostic`] always names the file, a 1-based line and
//! column (computed from the byte span of the offending value), a short
//! stable rule id (`ctag-unique`, `mtu`, …), the dotted field path
//! (`circuit[0].peering[1].tag`) and a message that says both what is wrong
//! and what would be valid. [`Diagnostics`] collects every problem found in
//! one file so a single `check` run reports them all.

use serde::{Serialize, Serializer};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file the problem is in.
    #[serde(serialize_with = "serialize_path")]
    pub file: PathBuf,
    /// 1-based line of the offending value.
    pub line: usize,
    /// 1-based column (in characters) of the offending value.
    pub column: usize,
    /// Short stable rule id, e.g. `ctag-unique` or `syntax`.
    pub rule: &'static str,
    /// Dotted path of the offending field, e.g. `circuit[0].peering[1].tag`
    /// (empty when the problem is not tied to one field).
    pub field: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

fn serialize_path<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&path.display())
}

impl Diagnostic {
    /// A diagnostic located at byte offset `span.start` of `text`.
    pub fn at_span(
        file: &Path,
        text: &str,
        span: Range<usize>,
        rule: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = line_column(text, span.start);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            rule,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error[{}]: ",
            self.file.display(),
            self.line,
            self.column,
            self.rule
        )?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one configuration file, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty list.
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    /// Add one diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The diagnostics as a slice.
    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.items
    }

    /// Iterate over the diagnostics.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// True if some diagnostic has this rule id.
    pub fn has_rule(&self, rule: &str) -> bool {
        self.items.iter().any(|d| d.rule == rule)
    }

    /// Sort by line, then column (stable: reports on one spot keep their order).
    pub fn sort(&mut self) {
        self.items.sort_by_key(|d| (d.line, d.column));
    }

    /// The list as a JSON array of objects with the fields of [`Diagnostic`]
    /// (`file`, `line`, `column`, `rule`, `field`, `message`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.items
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "file": d.file.display().to_string(),
                        "line": d.line,
                        "column": d.column,
                        "rule": d.rule,
                        "field": d.field,
                        "message": d.message,
                    })
                })
                .collect(),
        )
    }
}

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(items: Vec<Diagnostic>) -> Self {
        Diagnostics { items }
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.items {
            writeln!(f, "{d}")?;
        }
        write!(f, "{} error(s)", self.items.len())
    }
}

impl std::error::Error for Diagnostics {}

/// 1-based (line, column) of byte `offset` in `text`. The column counts
/// characters, not bytes. Offsets past the end are clamped to the end, and
/// offsets inside a multi-byte character count as that character.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let t = "ab\ncd\n\nxyz";
        assert_eq!(line_column(t, 0), (1, 1));
        assert_eq!(line_column(t, 1), (1, 2));
        assert_eq!(line_column(t, 2), (1, 3));
        assert_eq!(line_column(t, 3), (2, 1));
        assert_eq!(line_column(t, 7), (4, 1));
        assert_eq!(line_column(t, 9), (4, 3));
        assert_eq!(line_column(t, 1000), (4, 4));
        assert_eq!(line_column("", 5), (1, 1));
    }

    #[test]
    fn line_column_counts_characters() {
        let t = "é = \"ü\"\nx";
        // 'é' is two bytes; offset 3 is the ' ' after "é ".
        assert_eq!(line_column(t, 3), (1, 3));
        // Offset 1 is inside 'é': it counts as that character.
        assert_eq!(line_column(t, 1), (1, 1));
        assert_eq!(line_column(t, t.len() - 1), (2, 1));
    }

    #[test]
    fn display_and_json() {
        let text = "a = 1\nb = 2\n";
        let d = Diagnostic::at_span(
            Path::new("x/y.toml"),
            text,
            10..11,
            "mtu",
            "circuit[0].peering[0].mtu",
            "too big",
        );
        assert_eq!(
            d.to_string(),
            "x/y.toml:2:5: error[mtu]: circuit[0].peering[0].mtu: too big"
        );
        let ds = Diagnostics::from(vec![d.clone(), d]);
        let shown = ds.to_string();
        assert!(shown.ends_with("\n2 error(s)"), "{shown}");
        let json = ds.to_json();
        assert_eq!(json[1]["rule"], "mtu");
        assert_eq!(json[0]["line"], 2);
        let via_serde = serde_json::to_value(&ds).unwrap_or_default();
        assert_eq!(via_serde, json);
    }
}
