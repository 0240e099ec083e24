//! Printer: [`Expr`] back to canonical pql/text.
//!
//! The output re-parses to the same tree (tested by property tests on random trees). Parentheses
//! are added only where precedence needs them, plus around binders (`let`, quantifiers, ...)
//! whenever they are not the whole of their context, because binders extend to the right.

use std::fmt::{self, Write as _};

use crate::ast::{Expr, Literal, OccursSpec, TimeRef};
use crate::functions::{self, Style};
use crate::parser::RESERVED;

/// Words printed as `$1.word` when they are a field of the implicit input, because bare they
/// would read as something else.
const TIME_WORDS: &[&str] = &[
    "now",
    "today",
    "yesterday",
    "tomorrow",
    "this",
    "last",
    "next",
    "on",
    "between",
    "before",
    "after",
];

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut p = Printer {
            out: String::new(),
            vars: Vec::new(),
        };
        p.expr(self, 0);
        f.write_str(&p.out)
    }
}

/// Canonical pql/text of an expression.
pub fn to_text(expr: &Expr) -> String {
    expr.to_string()
}

fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Lambda { .. } | Expr::Let { .. } | Expr::Quant { .. } | Expr::SumOver { .. } => 0,
        Expr::Occurs { .. } => 4,
        Expr::Call { func, args } => call_precedence(func, args.len()),
        _ => 8,
    }
}

fn call_precedence(func: &str, arity: usize) -> u8 {
    match (func, arity) {
        ("or", _) => 1,
        ("and", _) => 2,
        ("not", _) => 3,
        ("=" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "notIn" | "like", _) => 4,
        ("+" | "-", 2) => 5,
        ("*" | "/" | "%", _) => 6,
        ("-", _) => 7,
        _ => 8,
    }
}

fn is_plain_word(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn write_word(out: &mut String, name: &str) {
    if is_plain_word(name) {
        out.push_str(name);
    } else {
        let _ = write!(out, "`{name}`");
    }
}

/// A string literal with `"`, `\` and control characters escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// A decimal that reads back as a decimal (`3.0`, never `3`).
pub fn format_double(v: f64) -> String {
    let s = format!("{v}");
    if s.contains(['.', 'e', 'E', 'i', 'N']) {
        s
    } else {
        format!("{s}.0")
    }
}

struct Printer {
    out: String,
    vars: Vec<String>,
}

impl Printer {
    fn expr(&mut self, e: &Expr, min: u8) {
        if precedence(e) < min {
            self.out.push('(');
            self.expr(e, 0);
            self.out.push(')');
            return;
        }
        match e {
            Expr::Lit(lit) => self.literal(lit),
            Expr::Array(items) => {
                self.out.push('[');
                self.list(items);
                self.out.push(']');
            }
            Expr::Object(fields) => {
                self.out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.out.push_str(&quote(k));
                    self.out.push_str(": ");
                    self.expr(v, 1);
                }
                self.out.push('}');
            }
            Expr::Param { position, up } => self.param(*position, *up),
            Expr::Var(name) => self.out.push_str(name),
            Expr::Field { object, name } => self.field(object, name),
            Expr::Call { func, args } => self.call(func, args),
            Expr::Filter { array, cond } => {
                self.expr(array, 8);
                self.out.push('[');
                self.expr(cond, 0);
                self.out.push(']');
            }
            Expr::Lambda { params, body } => {
                self.out.push('(');
                self.out.push_str(&params.join(", "));
                self.out.push_str(") => ");
                let n = params.len();
                self.vars.extend(params.iter().cloned());
                self.expr(body, 0);
                self.vars.truncate(self.vars.len() - n);
            }
            Expr::Let { var, value, body } => {
                let _ = write!(self.out, "let {var} = ");
                self.expr(value, 5);
                self.out.push_str(" in ");
                self.vars.push(var.clone());
                self.expr(body, 0);
                self.vars.pop();
            }
            Expr::Quant { kind, bindings } => {
                self.out.push_str(kind.keyword());
                let outer = self.vars.len();
                for (i, b) in bindings.iter().enumerate() {
                    self.out.push_str(if i == 0 { " " } else { ", " });
                    let _ = write!(self.out, "{} from ", b.var);
                    self.expr(&b.source, 5);
                    self.vars.push(b.var.clone());
                    if let Some(cond) = &b.cond {
                        self.out.push_str(" where ");
                        self.expr(cond, 1);
                    }
                }
                self.vars.truncate(outer);
            }
            Expr::SumOver {
                value,
                var,
                source,
                cond,
            } => {
                self.out.push_str("sum ");
                self.vars.push(var.clone());
                self.expr(value, 5);
                let _ = write!(self.out, " over {var} from ");
                self.expr(source, 5);
                if let Some(cond) = cond {
                    self.out.push_str(" where ");
                    self.expr(cond, 1);
                }
                self.vars.pop();
            }
            Expr::Occurs { timestamp, spec } => {
                self.expr(timestamp, 5);
                self.out.push_str(" occurs ");
                self.spec(spec);
            }
            Expr::Chain(chain) => {
                self.out.push_str("CHAIN(");
                self.expr(&chain.events, 1);
                self.out.push_str(", ");
                for (i, part) in chain.timestamp.iter().enumerate() {
                    if i > 0 {
                        self.out.push('.');
                    }
                    write_word(&mut self.out, part);
                }
                self.out.push_str(", [");
                for (i, step) in chain.steps.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    let _ = write!(self.out, "{}: WHAT(", step.label);
                    self.expr(&step.what, 0);
                    self.out.push(')');
                    if let Some(when) = &step.when {
                        self.out.push_str(" WHEN(");
                        self.spec(when);
                        self.out.push(')');
                    }
                }
                self.out.push_str("])");
            }
        }
    }

    fn list(&mut self, items: &[Expr]) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            // A quantifier would swallow the following `, X from ...`: only it needs parentheses.
            let min = if matches!(item, Expr::Quant { .. }) {
                1
            } else {
                0
            };
            self.expr(item, min);
        }
    }

    fn literal(&mut self, lit: &Literal) {
        match lit {
            Literal::Bool(b) => {
                let _ = write!(self.out, "{b}");
            }
            Literal::Int(i) => {
                let _ = write!(self.out, "{i}");
            }
            Literal::Double(d) => self.out.push_str(&format_double(*d)),
            Literal::Str(s) => self.out.push_str(&quote(s)),
            Literal::Date { year, month, day } => {
                let _ = write!(self.out, "date({year}, {month}, {day})");
            }
        }
    }

    fn param(&mut self, position: u32, up: u32) {
        if up == 0 {
            let _ = write!(self.out, "${position}");
        } else {
            for _ in 0..up {
                self.out.push('^');
            }
        }
    }

    fn field(&mut self, object: &Expr, name: &str) {
        match object {
            Expr::Param { position: 1, up: 0 } => {
                let special = RESERVED.contains(&name)
                    || TIME_WORDS.contains(&name)
                    || self.vars.iter().any(|v| v == name)
                    || name.eq_ignore_ascii_case("chain")
                    || name == "date"
                    || functions::lookup(name).is_some()
                    || name == "filter";
                if special {
                    self.out.push_str("$1.");
                }
                write_word(&mut self.out, name);
            }
            _ => {
                self.expr(object, 8);
                self.out.push('.');
                write_word(&mut self.out, name);
            }
        }
    }

    fn call(&mut self, func: &str, args: &[Expr]) {
        let prec = call_precedence(func, args.len());
        match (func, args) {
            ("not", [operand]) => {
                self.out.push_str("not ");
                self.expr(operand, 8);
            }
            ("-", [operand]) => {
                // Always parenthesized: `-5` or `-5.count()` would read back with the minus
                // folded into the number literal.
                self.out.push_str("-(");
                self.expr(operand, 0);
                self.out.push(')');
            }
            (_, [left, right]) if functions::is_operator(func) => {
                let (lmin, rmin) = if prec == 4 { (5, 5) } else { (prec, prec + 1) };
                self.expr(left, lmin);
                let _ = write!(self.out, " {func} ");
                self.expr(right, rmin);
            }
            _ => {
                let method = functions::lookup(func).is_some_and(|s| s.style == Style::Method);
                match args.split_first() {
                    Some((receiver, rest)) if method => {
                        self.expr(receiver, 8);
                        let _ = write!(self.out, ".{func}(");
                        self.list(rest);
                    }
                    _ => {
                        let _ = write!(self.out, "{func}(");
                        self.list(args);
                    }
                }
                self.out.push(')');
            }
        }
    }

    fn spec(&mut self, spec: &OccursSpec) {
        match spec {
            OccursSpec::Compare {
                op,
                amount,
                unit,
                direction,
                time,
            } => {
                let unit = if *amount == 1 {
                    unit.singular()
                } else {
                    unit.plural()
                };
                let _ = write!(
                    self.out,
                    "{} {amount} {unit} {} ",
                    op.symbol(),
                    direction.keyword()
                );
                self.time(time);
            }
            OccursSpec::Direction { direction, time } => {
                let _ = write!(self.out, "{} ", direction.keyword());
                self.time(time);
            }
            OccursSpec::On(time) => {
                if matches!(time, TimeRef::Expr(_)) {
                    self.out.push_str("on ");
                }
                self.time(time);
            }
            OccursSpec::Between(a, b) => {
                self.out.push_str("between ");
                self.time(a);
                self.out.push_str(" and ");
                self.time(b);
            }
        }
    }

    fn time(&mut self, time: &TimeRef) {
        match time {
            TimeRef::Now => self.out.push_str("now"),
            TimeRef::Today => self.out.push_str("today"),
            TimeRef::Yesterday => self.out.push_str("yesterday"),
            TimeRef::Tomorrow => self.out.push_str("tomorrow"),
            TimeRef::Relative { rel, unit } => {
                let _ = write!(self.out, "{} {}", rel.keyword(), unit.singular());
            }
            TimeRef::Expr(e) => self.expr(e, 8),
        }
    }
}
