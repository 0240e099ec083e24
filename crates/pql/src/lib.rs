//! Profile Query Language (PQL): lexer, parser, printer, pql/json conversion, checker,
//! compiler/evaluator and streaming/edge classifier.
//!
//! Pure: no I/O, no wall clock (`now` is always passed in), no global state. The command-line
//! front ([`cli::cli_main`]) works on the streams and files it is given by the binary.
//!
//! ```
//! use tessera_pql::{parse, compile, EvalContext, EventSet};
//! let expr = parse(r#"homeAddress.countryISO = "CA" and person.birthYear = 1985"#).unwrap();
//! let program = compile(&expr).unwrap();
//! let profile = serde_json::json!({"homeAddress": {"countryISO": "CA"}, "person": {"birthYear": 1985}});
//! let events = EventSet::new(Vec::new());
//! let ctx = EvalContext::new(0);
//! assert!(program.matches(&profile, &events, &ctx));
//! ```
//!
//! Layout: `lexer` → `parser` → [`ast`] ← `print` (canonical text), [`json`] (pql/json),
//! [`checker`] (types against a union schema), `compile` + `eval` (compiled form evaluated
//! many times), [`classify`] (batch / streaming / edge), [`time`] (calendar arithmetic).
//! See README.md for the language decisions where the docs are silent or inconsistent.

#![deny(missing_docs)]

pub mod ast;
pub mod checker;
pub mod classify;
pub mod cli;
pub mod error;
pub mod eval;
pub mod functions;
pub mod json;
pub mod lexer;
pub mod parser;
pub mod print;
pub mod time;

pub use ast::Expr;
pub use cli::cli_main;
pub use error::{Error, ParseError, Result};
pub use eval::{compile, EvalContext, Event, EventSet, Program, SegmentMembership};
pub use parser::parse;
pub use print::to_text;
