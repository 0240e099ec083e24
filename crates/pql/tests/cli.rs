//! The command-line front, driven like the binary drives it.

use std::io::Write as _;

use tessera_pql::cli::cli_run;

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn run(args: &[&str], stdin: &str) -> Run {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = cli_run(&args, &mut stdin.as_bytes(), &mut out, &mut err);
    Run {
        code,
        out: String::from_utf8_lossy(&out).into_owned(),
        err: String::from_utf8_lossy(&err).into_owned(),
    }
}

fn file(dir: &tempfile::TempDir, name: &str, content: &str) -> Result<String, std::io::Error> {
    let path = dir.path().join(name);
    std::fs::File::create(&path)?.write_all(content.as_bytes())?;
    Ok(path.to_string_lossy().into_owned())
}

#[test]
fn parse_prints_the_documented_ast() {
    let r = run(&["parse", "workAddress.country = \"US\""], "");
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        r.out.trim_end(),
        r#"{"nodeType":"fnApply","fnName":"=","params":[{"nodeType":"fieldLookup","fieldName":"country","object":{"nodeType":"fieldLookup","fieldName":"workAddress","object":{"nodeType":"parameterReference","position":1}}},{"nodeType":"literal","literalType":"String","value":"US"}]}"#
    );
    // from stdin, with the leading `pql` word the binary may pass through
    let r = run(&["pql", "parse"], "a = 1\n");
    assert_eq!(r.code, 0);
    assert!(r.out.starts_with(r#"{"nodeType":"fnApply","fnName":"=""#));
}

#[test]
fn parse_error_exits_2_with_a_caret() {
    let r = run(&["parse", "person.age >= and x"], "");
    assert_eq!(r.code, 2);
    assert_eq!(r.out, "");
    assert_eq!(
        r.err,
        "syntax error at 1:15: expected an expression, found `and`\n  person.age >= and x\n                ^\n"
    );
}

#[test]
fn eval_with_files() -> Result<(), std::io::Error> {
    let dir = tempfile::tempdir()?;
    let profile = file(&dir, "p.json", r#"{"homeAddress": {"countryCode": "MX"}}"#)?;
    let events = file(
        &dir,
        "e.jsonl",
        "{\"timestamp\": \"2025-01-15T08:00:00Z\", \"eventType\": \"commerce.checkouts\"}\n\n{\"timestamp\": \"2025-01-01T08:00:00Z\", \"eventType\": \"x\"}\n",
    )?;
    let r = run(
        &[
            "eval",
            "--profile",
            &profile,
            "if(homeAddress.countryCode in [\"US\",\"MX\",\"CA\"], \"NA\", \"ROW\")",
        ],
        "",
    );
    assert_eq!((r.code, r.out.as_str()), (0, "\"NA\"\n"), "{}", r.err);
    let chain = "CHAIN(xEvent, timestamp, [C0: WHAT(eventType.equals(\"commerce.checkouts\", false)) WHEN(today)])";
    let r = run(
        &[
            "eval",
            "--profile",
            &profile,
            "--events",
            &events,
            "--now",
            "2025-01-15T12:00:00Z",
            chain,
        ],
        "",
    );
    assert_eq!((r.code, r.out.as_str()), (0, "true\n"), "{}", r.err);
    let r = run(
        &[
            "eval",
            "--profile",
            &profile,
            "--events",
            &events,
            "--now",
            "2025-01-16T12:00:00Z",
            chain,
        ],
        "",
    );
    assert_eq!(r.out, "false\n");
    let r = run(
        &[
            "eval",
            "--profile",
            &profile,
            "--segments",
            "a,b",
            "inSegment(\"b\")",
        ],
        "",
    );
    assert_eq!(r.out, "true\n");
    let r = run(&["eval", "--profile", &profile, "missing.field"], "");
    assert_eq!(r.out, "null\n");
    Ok(())
}

#[test]
fn check_reports_type_errors_with_exit_1() -> Result<(), std::io::Error> {
    let dir = tempfile::tempdir()?;
    let schema = file(
        &dir,
        "union.json",
        r#"{"type":"object","properties":{"person":{"type":"object","properties":{"birthYear":{"type":"integer"}}}}}"#,
    )?;
    let r = run(
        &["check", "--schema", &schema, "person.birthYear >= 2000"],
        "",
    );
    assert_eq!((r.code, r.out.as_str()), (0, "boolean\n"));
    let r = run(
        &[
            "check",
            "--schema",
            &schema,
            "person.birthYear = \"x\" or person.age > 3",
        ],
        "",
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.out,
        "`person.birthYear = \"x\"`: cannot compare integer with string using `=`\n`person.age`: unknown field `age`\n"
    );
    Ok(())
}

#[test]
fn convert_both_ways_and_classify() {
    let r = run(&["convert", "--to", "json", "person.birthYear >= 2000"], "");
    assert_eq!(r.code, 0);
    let back = run(&["convert", "--to", "text"], &r.out);
    assert_eq!(
        (back.code, back.out.as_str()),
        (0, "person.birthYear >= 2000\n"),
        "{}",
        back.err
    );
    let r = run(
        &["classify", "homeAddress.country.equals(\"US\", false)"],
        "",
    );
    assert_eq!(r.out, "edge: profile only\n");
    let r = run(&["classify", "xEvent[eventType = \"x\"].count() > 2"], "");
    assert!(r.out.starts_with("batch: "), "{}", r.out);
    let r = run(&["frobnicate"], "");
    assert_eq!(r.code, 3);
}
