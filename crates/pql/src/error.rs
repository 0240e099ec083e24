//! The crate's error type.
//!
//! Parse errors carry the position (line:column, 1-based, columns counted in characters), the
//! offending text and what the parser expected, so that a caller can render the caret message
//! without the source at hand. Checker problems are collected, never stopped at the first.

use std::fmt;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// pql/text does not follow the grammar (or names an unknown function / wrong arity).
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// pql/json is not a valid AST.
    #[error("invalid pql/json at {path}: {reason}")]
    Json {
        /// JSON pointer of the offending node.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The expression cannot be compiled for evaluation (e.g. an unbound `$2`).
    #[error("cannot compile: {reason}")]
    Compile {
        /// What cannot be compiled.
        reason: String,
    },
    /// The expression does not type-check against the schema: every problem found.
    #[error("{} type error(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Check(Vec<crate::checker::CheckIssue>),
}

/// A syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte offset in the source.
    pub offset: usize,
    /// What was found at that position (`end of input` at the end).
    pub found: String,
    /// What the parser expected there.
    pub expected: String,
    /// The source line containing the error.
    pub source_line: String,
}

impl ParseError {
    /// Builds an error at byte `offset`; the found text is read from the source.
    pub fn at(src: &str, offset: usize, expected: impl Into<String>) -> Self {
        let found = src
            .get(offset..)
            .and_then(|rest| {
                let word: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .take(20)
                    .collect();
                (!word.is_empty()).then(|| format!("`{word}`"))
            })
            .unwrap_or_else(|| "end of input".to_owned());
        Self::with_found(src, offset, expected, found)
    }

    /// Builds an error at byte `offset` with an explicit description of what was found.
    pub fn with_found(
        src: &str,
        offset: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        let offset = offset.min(src.len());
        let before = src.get(..offset).unwrap_or("");
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = src.get(line_start..offset).map_or(0, |s| s.chars().count()) + 1;
        let line_end = src
            .get(offset..)
            .and_then(|rest| rest.find('\n'))
            .map_or(src.len(), |i| offset + i);
        let source_line = src.get(line_start..line_end).unwrap_or("").to_owned();
        Self {
            line,
            column,
            offset,
            found: found.into(),
            expected: expected.into(),
            source_line,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "syntax error at {}:{}: expected {}, found {}",
            self.line, self.column, self.expected, self.found
        )?;
        writeln!(f, "  {}", self.source_line)?;
        write!(f, "  {}^", " ".repeat(self.column.saturating_sub(1)))
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn position_on_second_line() {
        let src = "a = 1\n  and b ? 2";
        let err = ParseError::at(src, src.find('?').unwrap(), "an operator");
        assert_eq!((err.line, err.column), (2, 9));
        assert_eq!(err.found, "`?`");
        assert_eq!(
            err.to_string(),
            "syntax error at 2:9: expected an operator, found `?`\n    and b ? 2\n          ^"
        );
    }
}
