//! Found by the token-soup property: `sum over over and` made the parser bind a different
//! variable after `over` than the one its look-ahead had found, and a debug assertion
//! panicked. Malformed input must be a parse error with a position, never a panic.

#[test]
fn sum_over_with_mismatched_variable_is_a_parse_error() {
    for text in ["sum over over and", "sum over over over x from y"] {
        let result = std::panic::catch_unwind(|| tessera_pql::parse(text));
        let parsed = result.unwrap_or_else(|_| panic!("parsing {text:?} panicked"));
        assert!(parsed.is_err(), "{text:?} should not parse");
    }
    // The well-formed shape still parses.
    assert!(tessera_pql::parse("sum X.commerce.order.priceTotal over X from xEvent where X.eventType = \"commerce.purchases\"").is_ok());
}
