//! Errors of the Dockerfile frontend. Each carries the [`Span`] it is about
//! and can render itself as `file:line:col` with the offending line and a
//! caret, the way compilers show errors.

use std::fmt;

/// A position in a Dockerfile: 1-based line and column (in characters) of
/// the start, and how many characters to underline on that line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Span {
    /// 1-based physical line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
    /// Characters to underline, at least one when shown.
    pub len: usize,
}

impl Span {
    /// A span at `line:col` covering `len` characters.
    pub fn new(line: usize, col: usize, len: usize) -> Self {
        Self { line, col, len }
    }
}

/// A Dockerfile error with its location and the source line it points at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}:{}: {message}", span.line, span.col)]
pub struct ParseError {
    /// The file name as the user gave it.
    pub file: String,
    /// Where the error is.
    pub span: Span,
    /// What is wrong and what was expected, lowercase, no final period.
    pub message: String,
    /// The physical source line, for the caret display.
    pub source_line: String,
}

impl ParseError {
    /// Renders the error with the offending line and a caret under the span:
    ///
    /// ```text
    /// Dockerfile:3:1: unknown instruction "RNU" (did you mean "RUN"?)
    ///    |
    ///  3 | RNU echo hi
    ///    | ^^^
    /// ```
    pub fn render(&self) -> String {
        let mut out = format!("{self}\n");
        if self.source_line.is_empty() && self.span.line == 0 {
            return out;
        }
        let num = self.span.line.to_string();
        let pad = " ".repeat(num.len());
        let shown: String = self.source_line.replace('\t', " ");
        let col = self.span.col.max(1);
        let len = self.span.len.max(1);
        out.push_str(&format!("{pad} |\n{num} | {shown}\n{pad} | "));
        out.push_str(&" ".repeat(col - 1));
        out.push_str(&"^".repeat(len));
        out.push('\n');
        out
    }
}

/// Shows a [`ParseError`] with its caret display; use `{:#}` for one line.
pub struct Rendered<'a>(pub &'a ParseError);

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{}", self.0)
        } else {
            f.write_str(self.0.render().trim_end())
        }
    }
}
