//! Rule sources in, diagnostics out: the text the caller read and the problems found in it.

use std::fmt;

use crate::node::Pos;

/// A problem inside one file, before the file's name is attached.
pub(crate) type Problem = (Pos, String);

/// One rule file's text, read by the caller: this crate does no I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as the user wrote it, so diagnostics name the file the way the user knows it.
    pub origin: String,
    /// The whole YAML text of the file.
    pub text: String,
}

/// One problem in a rule file, at the place an editor can jump to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as in [`SourceFile::origin`].
    pub origin: String,
    /// 1-based line of the offending node.
    pub line: usize,
    /// 1-based column of the offending node.
    pub column: usize,
    /// What is wrong: lower-case, no trailing period.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(origin: &str, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            origin: origin.to_owned(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.origin, self.line, self.column, self.message
        )
    }
}

/// Every problem found while compiling a set of rule files, in file order then position order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_print_one_per_line_in_editor_format() {
        let d = Diagnostics(vec![
            Diagnostic::new("a.yaml", Pos { line: 3, column: 7 }, "first"),
            Diagnostic::new("b.yaml", Pos::START, "second"),
        ]);
        assert_eq!(d.to_string(), "a.yaml:3:7: first\nb.yaml:1:1: second");
    }
}
