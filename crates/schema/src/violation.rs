//! What validation reports: one [`Violation`] per problem, with the JSON pointer of the
//! offending value, a stable machine code and a human message.

use std::fmt;

/// Stable machine-readable kinds of violation. Clients match on [`ViolationCode::as_str`];
/// never rename a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationCode {
    /// A required field is absent (or null).
    MissingRequired,
    /// The value has the wrong JSON type.
    WrongType,
    /// A string does not match its `format` (email, uri, date, date-time).
    BadFormat,
    /// A number is outside `minimum`/`maximum` (or the range of its XDM integer type).
    OutOfRange,
    /// A string is shorter than `minLength`.
    TooShort,
    /// A string is longer than `maxLength`.
    TooLong,
    /// A string is not one of the `enum` values.
    NotInEnum,
    /// A string does not match its `pattern`.
    PatternMismatch,
    /// A field the schema does not define (AEP rejects extraneous keys).
    UnknownField,
    /// An array has fewer than `minItems` items.
    TooFewItems,
    /// An array has more than `maxItems` items.
    TooManyItems,
}

impl ViolationCode {
    /// The code as sent to clients.
    pub const fn as_str(self) -> &'static str {
        match self {
            ViolationCode::MissingRequired => "missing_required",
            ViolationCode::WrongType => "wrong_type",
            ViolationCode::BadFormat => "bad_format",
            ViolationCode::OutOfRange => "out_of_range",
            ViolationCode::TooShort => "too_short",
            ViolationCode::TooLong => "too_long",
            ViolationCode::NotInEnum => "not_in_enum",
            ViolationCode::PatternMismatch => "pattern_mismatch",
            ViolationCode::UnknownField => "unknown_field",
            ViolationCode::TooFewItems => "too_few_items",
            ViolationCode::TooManyItems => "too_many_items",
        }
    }

    /// The JSON Schema keyword that failed, as AEP's streaming validation reports it
    /// (`keyword` in `_streamingValidation[].causingExceptions[]`).
    pub const fn keyword(self) -> &'static str {
        match self {
            ViolationCode::MissingRequired => "required",
            ViolationCode::WrongType => "type",
            ViolationCode::BadFormat => "format",
            ViolationCode::OutOfRange => "range",
            ViolationCode::TooShort => "minLength",
            ViolationCode::TooLong => "maxLength",
            ViolationCode::NotInEnum => "enum",
            ViolationCode::PatternMismatch => "pattern",
            ViolationCode::UnknownField => "additionalProperties",
            ViolationCode::TooFewItems => "minItems",
            ViolationCode::TooManyItems => "maxItems",
        }
    }
}

impl fmt::Display for ViolationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer (RFC 6901) of the offending value in the record (`""` is the record).
    pub path: String,
    /// What kind of problem.
    pub code: ViolationCode,
    /// Human-readable explanation (lowercase, no trailing period).
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {} ({})", self.message, self.code)
    }
}

/// One step of a path being walked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Renders a walked path as a JSON pointer, escaping `~` and `/` in keys.
pub(crate) fn pointer(path: &[Segment<'_>]) -> String {
    let mut out = String::new();
    for segment in path {
        out.push('/');
        match segment {
            Segment::Key(key) => {
                for c in key.chars() {
                    match c {
                        '~' => out.push_str("~0"),
                        '/' => out.push_str("~1"),
                        other => out.push(other),
                    }
                }
            }
            Segment::Index(index) => out.push_str(&index.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_per_rfc_6901() {
        let path = [Segment::Key("a/b"), Segment::Index(3), Segment::Key("c~d")];
        assert_eq!(pointer(&path), "/a~1b/3/c~0d");
        assert_eq!(pointer(&[]), "");
    }

    #[test]
    fn codes_are_unique() {
        let all = [
            ViolationCode::MissingRequired,
            ViolationCode::WrongType,
            ViolationCode::BadFormat,
            ViolationCode::OutOfRange,
            ViolationCode::TooShort,
            ViolationCode::TooLong,
            ViolationCode::NotInEnum,
            ViolationCode::PatternMismatch,
            ViolationCode::UnknownField,
            ViolationCode::TooFewItems,
            ViolationCode::TooManyItems,
        ];
        let mut names: Vec<_> = all.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }
}
