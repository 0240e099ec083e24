//! The deepest trees the parser accepts go through every phase (print, re-parse, compile,
//! evaluate, classify, check, pql/json both ways) without exhausting a 2 MiB test-thread
//! stack in a debug build; deeper ones are rejected by the parser, not overflowed.

use tessera_pql::checker::{check, Schema};
use tessera_pql::json::{from_json, to_json, to_json_string};
use tessera_pql::{compile, parse, EvalContext, EventSet};

fn every_phase(src: &str) -> Result<(), String> {
    let expr = parse(src).map_err(|e| e.to_string())?;
    let text = expr.to_string();
    let again = parse(&text).map_err(|e| e.to_string())?;
    assert!(again == expr, "re-parse differs");
    let program = compile(&expr).map_err(|e| e.to_string())?;
    let profile = serde_json::json!({"x": 1, "b": true});
    let _ = program.evaluate(&profile, &EventSet::default(), &EvalContext::new(0));
    let _ = tessera_pql::classify::classify(&expr);
    let schema = Schema {
        profile: serde_json::json!({}),
        event: None,
    };
    let _ = check(&expr, &schema);
    let json = to_json(&expr);
    assert_eq!(from_json(&json).map_err(|e| e.to_string())?, expr);
    let _ = to_json_string(&expr);
    Ok(())
}

#[test]
fn deepest_accepted_shapes_run_everywhere() -> Result<(), String> {
    let n = 250;
    let shapes = [
        "x = 2 or ".repeat(n) + "x = 1",
        "x = 1 and ".repeat(n) + "x = 1",
        "x + ".repeat(n) + "1",
        "x * ".repeat(n) + "1",
        "x".to_owned() + &".distinct()".repeat(n),
        "x".to_owned() + &".b".repeat(n),
        "x".to_owned() + &"[b]".repeat(n),
    ];
    for src in &shapes {
        every_phase(src)?;
    }
    Ok(())
}

#[test]
fn deeper_trees_are_rejected() {
    let nested = "(".repeat(30) + "a" + &").b.b.b.b.b.b.b.b.b.b".repeat(30);
    assert!(parse(&nested).is_err());
    assert!(parse(&("x + ".repeat(300) + "1")).is_err());
}

/// The worst tree the parser can build before its depth check (nested parentheses, each
/// followed by the longest allowed chain) is rejected and dropped without overflow.
#[test]
fn worst_case_rejected_tree_is_dropped_safely() {
    let levels = 60;
    let chain = ".b".repeat(250);
    let src = "(".repeat(levels) + "a" + &format!("){chain}").repeat(levels);
    let err = parse(&src).err().map(|e| e.expected);
    assert_eq!(
        err.as_deref(),
        Some("an expression at most 256 levels deep")
    );
}
