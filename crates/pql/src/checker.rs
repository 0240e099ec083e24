//! Checker (in progress).

/// One type problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIssue {
    /// The offending sub-expression as pql/text.
    pub expr: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for CheckIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.expr, self.message)
    }
}
