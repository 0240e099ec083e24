//! The `tessera pql ...` command line, as a library function the binary calls.
//!
//! This module is the crate's only edge: it reads the files named on the command line and,
//! when `--now` is not given, the clock. Everything it calls stays pure.
//!
//! ```text
//! parse    [EXPR]                                   pql/json AST
//! check    --schema FILE [--event-schema FILE] [EXPR]   result type, or type errors (exit 1)
//! eval     --profile FILE [--events FILE] [--now RFC3339] [--segments ID,ID] [EXPR]
//! convert  --to json|text [EXPR]                    text → pql/json, or pql/json → text
//! classify [EXPR]                                   batch | streaming | edge, and why
//! ```
//! EXPR is read from stdin when absent or `-`. Exit codes: 0 success, 1 type errors, 2 syntax
//! error (caret message on stderr), 3 usage or input error.

use std::io::{Read, Write};

use serde_json::Value;

use crate::checker::{check, Schema};
use crate::classify::classify;
use crate::eval::{compile, EvalContext, EventSet};
use crate::json::{from_json, to_json_string};
use crate::{parse, Error};

const USAGE: &str = "usage: pql <parse|check|eval|convert|classify> [options] [EXPR]\n\
  parse    [EXPR]\n\
  check    --schema FILE [--event-schema FILE] [EXPR]\n\
  eval     --profile FILE [--events FILE] [--now RFC3339] [--segments ID,ID] [EXPR]\n\
  convert  --to json|text [EXPR]\n\
  classify [EXPR]";

/// Runs a `pql` subcommand; errors go to the process's stderr. Returns the exit code.
pub fn cli_main(args: &[String], input: &mut dyn Read, out: &mut dyn Write) -> i32 {
    cli_run(args, input, out, &mut std::io::stderr())
}

/// Runs a `pql` subcommand with an explicit error stream. Returns the exit code.
pub fn cli_run(
    args: &[String],
    input: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match run(args, input, out) {
        Ok(code) => code,
        Err(Failure { code, message }) => {
            let _ = writeln!(err, "{message}");
            code
        }
    }
}

struct Failure {
    code: i32,
    message: String,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 3,
        message: format!("{}\n{USAGE}", message.into()),
    }
}

fn input_error(message: impl Into<String>) -> Failure {
    Failure {
        code: 3,
        message: message.into(),
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match e {
            Error::Parse(_) => 2,
            Error::Check(_) => 1,
            _ => 3,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

struct Options {
    flags: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Options {
    fn get(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_options(args: &[String], allowed: &[&str]) -> Result<Options, Failure> {
    let mut flags = Vec::new();
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if let Some(name) = arg.strip_prefix("--") {
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => {
                    let v = it
                        .next()
                        .ok_or_else(|| usage(format!("--{name} needs a value")))?;
                    (name.to_owned(), v.clone())
                }
            };
            if !allowed.contains(&name.as_str()) {
                return Err(usage(format!("unknown option --{name}")));
            }
            flags.push((name, value));
        } else {
            positional.push(arg.clone());
        }
    }
    if positional.len() > 1 {
        return Err(usage("give the expression as one argument (quote it)"));
    }
    Ok(Options { flags, positional })
}

fn expression(opts: &Options, input: &mut dyn Read) -> Result<String, Failure> {
    match opts.positional.first().map(String::as_str) {
        Some(e) if e != "-" => Ok(e.to_owned()),
        _ => {
            let mut s = String::new();
            input
                .read_to_string(&mut s)
                .map_err(|e| input_error(format!("cannot read the expression from stdin: {e}")))?;
            Ok(s.trim().to_owned())
        }
    }
}

fn read_file(path: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| input_error(format!("cannot read {path}: {e}")))
}

fn read_json(path: &str) -> Result<Value, Failure> {
    serde_json::from_str(&read_file(path)?)
        .map_err(|e| input_error(format!("{path} is not valid JSON: {e}")))
}

/// Events as a JSON array, or JSON Lines (one event per line).
fn read_events(path: &str) -> Result<Vec<Value>, Failure> {
    let text = read_file(path)?;
    if text.trim_start().starts_with('[') {
        return match serde_json::from_str(&text) {
            Ok(Value::Array(items)) => Ok(items),
            _ => Err(input_error(format!("{path} is not a JSON array of events"))),
        };
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| input_error(format!("{path}:{}: not a JSON event: {e}", i + 1)))
        })
        .collect()
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn emit(out: &mut dyn Write, text: &str) -> Result<i32, Failure> {
    writeln!(out, "{text}").map_err(|e| input_error(format!("cannot write the output: {e}")))?;
    Ok(0)
}

fn run(args: &[String], input: &mut dyn Read, out: &mut dyn Write) -> Result<i32, Failure> {
    let args = match args.first().map(String::as_str) {
        Some("pql") => args.get(1..).unwrap_or_default(),
        _ => args,
    };
    let Some((command, rest)) = args.split_first() else {
        return Err(usage("missing subcommand"));
    };
    match command.as_str() {
        "parse" => {
            let opts = parse_options(rest, &[])?;
            let expr = parse(&expression(&opts, input)?).map_err(Error::from)?;
            emit(out, &to_json_string(&expr))
        }
        "check" => {
            let opts = parse_options(rest, &["schema", "event-schema"])?;
            let schema_path = opts
                .get("schema")
                .ok_or_else(|| usage("check needs --schema FILE"))?;
            let schema = Schema {
                profile: read_json(schema_path)?,
                event: opts.get("event-schema").map(read_json).transpose()?,
            };
            let expr = parse(&expression(&opts, input)?).map_err(Error::from)?;
            match check(&expr, &schema) {
                Ok(ty) => emit(out, &ty.to_string()),
                Err(issues) => {
                    for issue in &issues {
                        emit(out, &issue.to_string())?;
                    }
                    Ok(1)
                }
            }
        }
        "eval" => {
            let opts = parse_options(rest, &["profile", "events", "now", "segments"])?;
            let profile = read_json(
                opts.get("profile")
                    .ok_or_else(|| usage("eval needs --profile FILE"))?,
            )?;
            let events = match opts.get("events") {
                Some(path) => read_events(path)?,
                None => Vec::new(),
            };
            let now_ms = match opts.get("now") {
                Some(text) => crate::time::parse_timestamp(text)
                    .ok_or_else(|| usage(format!("--now {text} is not an RFC 3339 timestamp")))?,
                None => wall_clock_ms(),
            };
            let segments: Vec<String> = opts
                .get("segments")
                .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect())
                .unwrap_or_default();
            let expr = parse(&expression(&opts, input)?).map_err(Error::from)?;
            let program = compile(&expr)?;
            let member = |id: &str| segments.iter().any(|s| s == id);
            let ctx = EvalContext {
                now_ms,
                segments: &member,
            };
            let result = program.evaluate(&profile, &EventSet::new(events), &ctx);
            emit(out, &result.to_string())
        }
        "convert" => {
            let opts = parse_options(rest, &["to"])?;
            let source = expression(&opts, input)?;
            match opts.get("to") {
                Some("json") => {
                    let expr = parse(&source).map_err(Error::from)?;
                    emit(out, &to_json_string(&expr))
                }
                Some("text") => {
                    let value: Value = serde_json::from_str(&source)
                        .map_err(|e| input_error(format!("the input is not JSON: {e}")))?;
                    emit(out, &from_json(&value)?.to_string())
                }
                _ => Err(usage("convert needs --to json or --to text")),
            }
        }
        "classify" => {
            let opts = parse_options(rest, &[])?;
            let expr = parse(&expression(&opts, input)?).map_err(Error::from)?;
            emit(out, &classify(&expr).to_string())
        }
        other => Err(usage(format!("unknown subcommand `{other}`"))),
    }
}
