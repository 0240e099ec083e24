//! Found by `print_then_parse_is_identity`: `-(0.sum(false))` printed as `-0.sum(false)`,
//! which reads back as `(-0).sum(false)`. Unary minus now always prints its parentheses.

use tessera_pql::ast::{Expr, Literal};
use tessera_pql::parse;

#[test]
fn negated_method_call_on_a_number_round_trips() -> Result<(), tessera_pql::ParseError> {
    let e = Expr::call(
        "-",
        vec![Expr::call(
            "sum",
            vec![Expr::Lit(Literal::Int(0)), Expr::Lit(Literal::Bool(false))],
        )],
    );
    assert_eq!(e.to_string(), "-(0.sum(false))");
    assert_eq!(parse(&e.to_string())?, e);
    Ok(())
}

/// Found by the same property: a negative number as an `occurs` time (`from -5`) did not
/// parse because times were read at postfix level, below the literal's minus.
#[test]
fn negative_literal_as_occurs_time_round_trips() -> Result<(), tessera_pql::ParseError> {
    let e = parse("t occurs from -5")?;
    assert_eq!(e.to_string(), "t occurs from -5");
    assert_eq!(parse(&e.to_string())?, e);
    Ok(())
}

/// Binary `+` and `-` printed every operand in parentheses (their precedence was looked up
/// without their operands). The text read back right, so only this pinned form caught it.
#[test]
fn additive_operators_print_without_needless_parentheses() -> Result<(), tessera_pql::ParseError> {
    for (src, canonical) in [
        ("a + b - c + 1", "a + b - c + 1"),
        ("a - (b - c)", "a - (b - c)"),
        ("(a + b) * c", "(a + b) * c"),
        ("a * b + c % 2", "a * b + c % 2"),
    ] {
        assert_eq!(parse(src)?.to_string(), canonical);
    }
    Ok(())
}
