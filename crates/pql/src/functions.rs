//! The function catalogue: every documented PQL function with its call style and arity.
//!
//! One table is the single source of truth for the parser (unknown names and wrong arity are
//! syntax errors), the printer (method or free style), the compiler and the checker. Operators
//! (`=`, `and`, `in`, ...) are not here: they have their own syntax.

/// How a function is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `receiver.name(args)`; the receiver is argument 0.
    Method,
    /// `name(args)`.
    Free,
}

/// A catalogue entry.
#[derive(Debug, Clone, Copy)]
pub struct FnSpec {
    /// Name as written.
    pub name: &'static str,
    /// Call style.
    pub style: Style,
    /// Minimum argument count, receiver included.
    pub min: usize,
    /// Maximum argument count, receiver included.
    pub max: usize,
    /// Index of an argument evaluated once per element of the receiver (with the element as
    /// implicit input), if any: `xs.sum(price)`, `xs.groupBy(product)`, `xs.map(...)`.
    pub element_arg: Option<usize>,
}

const fn method(name: &'static str, min: usize, max: usize) -> FnSpec {
    FnSpec {
        name,
        style: Style::Method,
        min,
        max,
        element_arg: None,
    }
}

const fn per_element(name: &'static str, min: usize, max: usize) -> FnSpec {
    FnSpec {
        name,
        style: Style::Method,
        min,
        max,
        element_arg: Some(1),
    }
}

const fn free(name: &'static str, min: usize, max: usize) -> FnSpec {
    FnSpec {
        name,
        style: Style::Free,
        min,
        max,
        element_arg: None,
    }
}

/// The catalogue (aep-api.md §6.2).
pub const CATALOGUE: &[FnSpec] = &[
    // strings: receiver, text, optional caseSensitive
    method("startsWith", 2, 3),
    method("doesNotStartWith", 2, 3),
    method("endsWith", 2, 3),
    method("doesNotEndWith", 2, 3),
    method("contains", 2, 3),
    method("doesNotContain", 2, 3),
    method("equals", 2, 3),
    method("notEqualTo", 2, 3),
    method("matches", 2, 2),
    method("regexGroup", 3, 3),
    // arrays and sets
    method("intersects", 2, 2),
    method("intersection", 2, 2),
    method("subsetOf", 2, 2),
    method("supersetOf", 2, 2),
    method("includes", 2, 2),
    method("distinct", 1, 1),
    per_element("groupBy", 2, 2),
    per_element("map", 2, 2),
    per_element("topN", 3, 3),
    per_element("bottomN", 3, 3),
    method("head", 1, 1),
    // aggregation
    method("count", 1, 1),
    per_element("sum", 1, 2),
    per_element("average", 1, 2),
    per_element("min", 1, 2),
    per_element("max", 1, 2),
    // maps
    method("get", 2, 2),
    method("keys", 1, 1),
    method("values", 1, 1),
    free("mapEntry", 2, 2),
    // objects
    method("isNull", 1, 1),
    method("isNotNull", 1, 1),
    // dates
    method("getMonth", 1, 1),
    method("getYear", 1, 1),
    method("getDayOfMonth", 1, 1),
    free("currentMonth", 0, 0),
    free("currentYear", 0, 0),
    free("currentDayOfMonth", 0, 0),
    // control and segments
    free("if", 3, 3),
    free("inSegment", 1, 1),
];

/// Looks a function up by exact name.
pub fn lookup(name: &str) -> Option<&'static FnSpec> {
    CATALOGUE.iter().find(|f| f.name == name)
}

/// Binary and unary operators, as they appear in `Expr::Call::func` and pql/json `fnName`.
pub const OPERATORS: &[&str] = &[
    "=", "!=", "<", "<=", ">", ">=", "and", "or", "not", "+", "-", "*", "/", "%", "in", "notIn",
    "like",
];

/// Whether `name` is an operator.
pub fn is_operator(name: &str) -> bool {
    OPERATORS.contains(&name)
}
