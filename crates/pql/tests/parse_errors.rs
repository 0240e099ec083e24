//! Syntax errors name the line and column, show the offending text with a caret and say
//! what was expected.

use tessera_pql::parse;

/// (source, line, column, expected, found)
const CASES: &[(&str, usize, usize, &str, &str)] = &[
    ("person.age >=", 1, 14, "an expression", "end of input"),
    ("person.age >= and", 1, 15, "an expression", "`and`"),
    ("(a = 1", 1, 7, "`)`", "end of input"),
    ("a = 1)", 1, 6, "an operator or end of input", "`)`"),
    ("a = 1 b", 1, 7, "an operator or end of input", "`b`"),
    (
        "person.name.startWith(\"Joe\")",
        1,
        13,
        "a known function",
        "unknown function `startWith`",
    ),
    (
        "frobnicate(1)",
        1,
        1,
        "a known function",
        "unknown function `frobnicate`",
    ),
    (
        "xs.count(1)",
        1,
        4,
        "0 argument(s) for `count`",
        "1 argument(s)",
    ),
    (
        "s.startsWith()",
        1,
        3,
        "1 to 2 arguments for `startsWith`",
        "0 argument(s)",
    ),
    ("if(a, b)", 1, 1, "3 argument(s) for `if`", "2 argument(s)"),
    (
        "a.inSegment(\"x\")",
        1,
        3,
        "`inSegment(...)` called as a function, not a method",
        "`.inSegment`",
    ),
    (
        "t occurs < 7 dayz before now",
        1,
        14,
        "a time unit (`days`, `hours`, `week`, ...)",
        "`dayz`",
    ),
    (
        "t occurs < 7 days since now",
        1,
        19,
        "`before`, `after` or `from`",
        "`since`",
    ),
    (
        "t occurs < seven days before now",
        1,
        12,
        "a non-negative integer",
        "`seven`",
    ),
    ("t occurs between today now", 1, 24, "`and`", "`now`"),
    (
        "date(2023, 2, 29) = x",
        1,
        17,
        "a valid calendar date",
        "date(2023, 2, 29)",
    ),
    (
        "CHAIN(xEvent, timestamp, [C0: WHEN(today)])",
        1,
        31,
        "`WHAT(...)`",
        "`WHEN`",
    ),
    (
        "CHAIN(xEvent, timestamp, [C0 WHAT(a)])",
        1,
        30,
        "`:` after the step label",
        "`WHAT`",
    ),
    (
        "xEvent[a = 1",
        1,
        13,
        "`]` closing the filter",
        "end of input",
    ),
    (
        "a = \"open",
        1,
        5,
        "a closing `\"` for this string",
        "`\"open`",
    ),
    ("a = 1 # b", 1, 7, "a token", "`#`"),
    ("let x = 1 x", 1, 11, "`in`", "`x`"),
    ("exists E in xEvent where E.a = 1", 1, 10, "`from`", "`in`"),
    (
        "a = 99999999999999999999",
        1,
        5,
        "an integer between -2^63 and 2^63-1",
        "`99999999999999999999`",
    ),
];

#[test]
fn errors_name_position_expected_and_found() {
    for (src, line, column, expected, found) in CASES {
        match parse(src) {
            Ok(e) => panic!("{src} parsed as {e}"),
            Err(err) => {
                assert_eq!(
                    (
                        err.line,
                        err.column,
                        err.expected.as_str(),
                        err.found.as_str()
                    ),
                    (*line, *column, *expected, *found),
                    "{src}"
                );
            }
        }
    }
}

#[test]
fn multi_line_error_shows_the_line_with_a_caret() {
    let src = "homeAddress.country = \"US\"\n  and person.age > \n  or x = 1";
    let err = parse(src).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("syntax error at 3:3: expected an expression, found `or`\n    or x = 1\n    ^")
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let err = parse("name = \"é\" and ?").err();
    assert_eq!(err.map(|e| (e.line, e.column)), Some((1, 16)));
}
