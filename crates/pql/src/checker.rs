//! Checker: types an expression against a union schema and reports every problem found.
//!
//! The schema is JSON-schema-like, as the union-schema API returns it: nested `properties`,
//! `type` (`object`, `array`, `string`, `integer`, `number`, `boolean`), `format`
//! (`date-time`/`date` make a string a timestamp), `items`, and `additionalProperties` for maps.
//! Events are typed by the event schema, or by an `xEvent` property of the profile schema.
//! Every field may be absent at runtime, so nullability is never an error; unknown fields,
//! operators applied to the wrong types and mismatched comparisons (a string against a number)
//! are. Checking does not stop at the first problem.

use std::fmt;

use serde_json::Value;

use crate::ast::{Expr, Literal, OccursSpec, TimeRef};
use crate::functions;

/// One type problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIssue {
    /// The offending sub-expression, as canonical pql/text.
    pub expr: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CheckIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.expr, self.message)
    }
}

/// A static type.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// boolean
    Bool,
    /// integer
    Int,
    /// number (double)
    Num,
    /// string
    Str,
    /// A timestamp or date.
    Time,
    /// An array of the element type.
    Array(Box<Type>),
    /// An object described by a schema node (or free-form when `None`).
    Object(Option<Value>),
    /// A map from string keys to the value type.
    Map(Box<Type>),
    /// Unknown: anything goes (free-form schema parts, after an error).
    Any,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("boolean"),
            Type::Int => f.write_str("integer"),
            Type::Num => f.write_str("number"),
            Type::Str => f.write_str("string"),
            Type::Time => f.write_str("date-time"),
            Type::Array(t) => write!(f, "array of {t}"),
            Type::Object(_) => f.write_str("object"),
            Type::Map(t) => write!(f, "map of {t}"),
            Type::Any => f.write_str("any"),
        }
    }
}

impl Type {
    fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Num | Type::Any)
    }

    fn element(&self) -> Option<Type> {
        match self {
            Type::Array(t) => Some((**t).clone()),
            Type::Any => Some(Type::Any),
            _ => None,
        }
    }
}

/// The union schemas an expression is checked against.
#[derive(Debug, Clone)]
pub struct Schema {
    /// The profile union schema.
    pub profile: Value,
    /// The experience-event union schema, if separate from the profile's `xEvent` property.
    pub event: Option<Value>,
}

fn from_schema(node: &Value) -> Type {
    let ty = node.get("type").and_then(Value::as_str);
    let format = node.get("format").and_then(Value::as_str);
    match ty {
        Some("string") if matches!(format, Some("date-time" | "date")) => Type::Time,
        Some("string") => Type::Str,
        Some("integer") => Type::Int,
        Some("number") => Type::Num,
        Some("boolean") => Type::Bool,
        Some("array") => Type::Array(Box::new(node.get("items").map_or(Type::Any, from_schema))),
        Some("object") | None if node.get("properties").is_some() => {
            Type::Object(Some(node.clone()))
        }
        Some("object") => match node.get("additionalProperties") {
            Some(inner @ Value::Object(_)) => Type::Map(Box::new(from_schema(inner))),
            _ => Type::Object(None),
        },
        _ => Type::Any,
    }
}

/// Types `expr`; `Ok(type)` when no problem was found, else every problem.
pub fn check(expr: &Expr, schema: &Schema) -> Result<Type, Vec<CheckIssue>> {
    let mut c = Checker {
        schema,
        scopes: vec![Type::Object(Some(schema.profile.clone()))],
        vars: Vec::new(),
        issues: Vec::new(),
        root: true,
    };
    let ty = match expr {
        Expr::Lambda { params, body } => {
            c.vars.extend(
                params
                    .iter()
                    .map(|p| (p.clone(), Type::Object(Some(schema.profile.clone())))),
            );
            c.ty(body)
        }
        other => c.ty(other),
    };
    if c.issues.is_empty() {
        Ok(ty)
    } else {
        Err(c.issues)
    }
}

/// [`check`] with the problems as the crate's [`crate::Error::Check`].
pub fn check_expr(expr: &Expr, schema: &Schema) -> crate::Result<Type> {
    check(expr, schema).map_err(crate::Error::Check)
}

struct Checker<'s> {
    schema: &'s Schema,
    scopes: Vec<Type>,
    vars: Vec<(String, Type)>,
    issues: Vec<CheckIssue>,
    /// Whether scope 0 is the profile (for `xEvent`).
    root: bool,
}

impl Checker<'_> {
    fn issue(&mut self, e: &Expr, message: impl Into<String>) {
        self.issues.push(CheckIssue {
            expr: e.to_string(),
            message: message.into(),
        });
    }

    fn events_type(&self) -> Type {
        let event = self.schema.event.clone().or_else(|| {
            self.schema
                .profile
                .pointer("/properties/xEvent/items")
                .cloned()
        });
        Type::Array(Box::new(event.map_or(Type::Any, |e| from_schema(&e))))
    }

    fn field(&mut self, e: &Expr, object: &Type, name: &str, on_profile: bool) -> Type {
        let is_profile = on_profile
            || matches!(object, Type::Object(Some(node)) if *node == self.schema.profile);
        if is_profile && name == "xEvent" {
            return self.events_type();
        }
        match object {
            Type::Object(Some(node)) => match node.get("properties").and_then(|p| p.get(name)) {
                Some(prop) => from_schema(prop),
                None if node.get("properties").is_some() => {
                    self.issue(e, format!("unknown field `{name}`"));
                    Type::Any
                }
                None => Type::Any,
            },
            Type::Object(None) | Type::Any => Type::Any,
            Type::Map(t) => (**t).clone(),
            Type::Array(t) => {
                let inner = self.field(e, t, name, false);
                match inner {
                    Type::Array(_) => inner,
                    other => Type::Array(Box::new(other)),
                }
            }
            other => {
                self.issue(e, format!("field `{name}` looked up on {other}"));
                Type::Any
            }
        }
    }

    fn scoped(&mut self, element: Type, e: &Expr) -> Type {
        self.scopes.push(element);
        let t = self.ty(e);
        self.scopes.pop();
        t
    }

    fn bound(&mut self, name: &str, t: Type, e: &Expr) -> Type {
        self.vars.push((name.to_owned(), t));
        let r = self.ty(e);
        self.vars.pop();
        r
    }

    fn condition(&mut self, e: &Expr, t: &Type, what: &str) {
        if !matches!(t, Type::Bool | Type::Any | Type::Array(_)) {
            self.issue(e, format!("{what} must be boolean, not {t}"));
        }
    }

    fn comparable(&mut self, e: &Expr, op: &str, a: &Type, b: &Type, ordered: bool) {
        let (a, b) = match (a, b) {
            (Type::Array(x), Type::Array(y)) if !ordered => ((**x).clone(), (**y).clone()),
            (Type::Array(x), other) | (other, Type::Array(x)) => ((**x).clone(), other.clone()),
            (x, y) => (x.clone(), y.clone()),
        };
        let ok = match (&a, &b) {
            (Type::Any, _) | (_, Type::Any) => true,
            (x, y) if x.is_numeric() && y.is_numeric() => true,
            (Type::Str, Type::Str) | (Type::Time, Type::Time) => true,
            (Type::Time, Type::Str) | (Type::Str, Type::Time) => true,
            (Type::Bool, Type::Bool) => !ordered,
            (Type::Object(_) | Type::Map(_), Type::Object(_) | Type::Map(_)) => !ordered,
            _ => false,
        };
        if !ok {
            self.issue(e, format!("cannot compare {a} with {b} using `{op}`"));
        }
    }

    fn time_arg(&mut self, e: &Expr, t: &Type) {
        let t = t
            .element()
            .filter(|_| matches!(t, Type::Array(_)))
            .unwrap_or_else(|| t.clone());
        if !matches!(t, Type::Time | Type::Str | Type::Any) {
            self.issue(e, format!("expected a timestamp, found {t}"));
        }
    }

    fn spec(&mut self, spec: &OccursSpec) {
        for t in spec.times() {
            if let TimeRef::Expr(x) = t {
                let ty = self.ty(x);
                self.time_arg(x, &ty);
            }
        }
    }

    fn ty(&mut self, e: &Expr) -> Type {
        match e {
            Expr::Lit(l) => match l {
                Literal::Bool(_) => Type::Bool,
                Literal::Int(_) => Type::Int,
                Literal::Double(_) => Type::Num,
                Literal::Str(_) => Type::Str,
                Literal::Date { .. } => Type::Time,
            },
            Expr::Array(items) => {
                let types: Vec<Type> = items.iter().map(|i| self.ty(i)).collect();
                let first = types.first().cloned().unwrap_or(Type::Any);
                Type::Array(Box::new(
                    types.into_iter().fold(first, |acc, t| unify(&acc, &t)),
                ))
            }
            Expr::Object(fields) => {
                for (_, v) in fields {
                    self.ty(v);
                }
                Type::Object(None)
            }
            Expr::Param { up, .. } => {
                let idx = self.scopes.len().checked_sub(1 + *up as usize);
                match idx.and_then(|i| self.scopes.get(i)) {
                    Some(t) => t.clone(),
                    None => {
                        self.issue(e, "`^` goes above the outermost input");
                        Type::Any
                    }
                }
            }
            Expr::Var(name) => self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(Type::Any, |(_, t)| t.clone()),
            Expr::Field { object, name } => {
                let on_profile = self.root
                    && matches!(&**object, Expr::Param { up, .. } if *up as usize + 1 == self.scopes.len());
                let ot = self.ty(object);
                self.field(e, &ot, name, on_profile)
            }
            Expr::Call { func, args } => self.call(e, func, args),
            Expr::Filter { array, cond } => {
                let at = self.ty(array);
                let Some(elem) = at.element() else {
                    self.issue(e, format!("filter on {at}, not an array"));
                    return Type::Any;
                };
                let ct = self.scoped(elem, cond);
                self.condition(cond, &ct, "a filter condition");
                at
            }
            Expr::Lambda { body, .. } => {
                self.issue(
                    e,
                    "a lambda is only allowed as the whole expression or in map",
                );
                self.ty(body)
            }
            Expr::Let { var, value, body } => {
                let vt = self.ty(value);
                self.bound(var, vt, body)
            }
            Expr::Quant { bindings, .. } => {
                let depth = self.vars.len();
                for b in bindings {
                    let st = self.ty(&b.source);
                    let elem = st.element().unwrap_or_else(|| {
                        self.issue(&b.source, format!("quantifier over {st}, not an array"));
                        Type::Any
                    });
                    self.vars.push((b.var.clone(), elem));
                    if let Some(c) = &b.cond {
                        let ct = self.ty(c);
                        self.condition(c, &ct, "a quantifier condition");
                    }
                }
                self.vars.truncate(depth);
                Type::Bool
            }
            Expr::SumOver {
                value,
                var,
                source,
                cond,
            } => {
                let st = self.ty(source);
                let elem = st.element().unwrap_or(Type::Any);
                self.vars.push((var.clone(), elem));
                let vt = self.ty(value);
                if !vt.is_numeric() {
                    self.issue(value, format!("sum of {vt}, not a number"));
                }
                if let Some(c) = cond {
                    let ct = self.ty(c);
                    self.condition(c, &ct, "a sum condition");
                }
                self.vars.pop();
                if vt == Type::Int {
                    Type::Int
                } else {
                    Type::Num
                }
            }
            Expr::Occurs { timestamp, spec } => {
                let t = self.ty(timestamp);
                self.time_arg(timestamp, &t);
                self.spec(spec);
                Type::Bool
            }
            Expr::Chain(chain) => {
                let et = self.ty(&chain.events);
                let elem = et.element().unwrap_or_else(|| {
                    self.issue(
                        &chain.events,
                        format!("CHAIN over {et}, not an array of events"),
                    );
                    Type::Any
                });
                for step in &chain.steps {
                    let wt = self.scoped(elem.clone(), &step.what);
                    self.condition(&step.what, &wt, "a WHAT predicate");
                    if let Some(spec) = &step.when {
                        self.spec(spec);
                    }
                }
                Type::Bool
            }
        }
    }

    fn per_element(&mut self, receiver: &Type, arg: Option<&Expr>) -> (Type, Type) {
        let elem = receiver.element().unwrap_or(Type::Any);
        let value = match arg {
            Some(a) => self.scoped(elem.clone(), a),
            None => elem.clone(),
        };
        (elem, value)
    }

    fn call(&mut self, e: &Expr, func: &str, args: &[Expr]) -> Type {
        // Lambdas are typed by their context (map over a groupBy), not as values.
        let lambda_arg = func == "map" && matches!(args.get(1), Some(Expr::Lambda { .. }));
        let types: Vec<Type> = if lambda_arg || is_per_element(func) {
            args.first().map(|a| vec![self.ty(a)]).unwrap_or_default()
        } else {
            args.iter().map(|a| self.ty(a)).collect()
        };
        self.apply(e, func, args, &types)
    }

    /// Types a call from its arguments' types; out of the recursion path of [`Self::ty`].
    #[inline(never)]
    fn apply(&mut self, e: &Expr, func: &str, args: &[Expr], types: &[Type]) -> Type {
        let t = |i: usize| types.get(i).cloned().unwrap_or(Type::Any);
        match func {
            "and" | "or" | "not" => {
                for (a, ty) in args.iter().zip(types) {
                    if !matches!(ty, Type::Bool | Type::Any) {
                        self.issue(a, format!("operand of `{func}` must be boolean, not {ty}"));
                    }
                }
                Type::Bool
            }
            "=" | "!=" | "<" | "<=" | ">" | ">=" => {
                let ordered = !matches!(func, "=" | "!=");
                self.comparable(e, func, &t(0), &t(1), ordered);
                Type::Bool
            }
            "in" | "notIn" => {
                match t(1).element() {
                    Some(elem) => self.comparable(e, func, &t(0), &elem, false),
                    None => self.issue(
                        e,
                        format!("right side of `{func}` must be an array, not {}", t(1)),
                    ),
                }
                Type::Bool
            }
            "like" => {
                self.expect(e, types, &[Type::Str, Type::Str], func);
                Type::Bool
            }
            "+" | "-" | "*" | "/" | "%" => {
                for (a, ty) in args.iter().zip(types) {
                    if !ty.is_numeric() {
                        self.issue(a, format!("operand of `{func}` must be a number, not {ty}"));
                    }
                }
                if func != "/" && types.iter().all(|t| *t == Type::Int) {
                    Type::Int
                } else {
                    Type::Num
                }
            }
            "startsWith" | "doesNotStartWith" | "endsWith" | "doesNotEndWith" | "contains"
            | "doesNotContain" | "matches" => {
                self.expect(e, types, &[Type::Str, Type::Str, Type::Bool], func);
                Type::Bool
            }
            "equals" | "notEqualTo" => {
                self.comparable(e, func, &t(0), &t(1), false);
                Type::Bool
            }
            "regexGroup" => {
                self.expect(e, types, &[Type::Str, Type::Str, Type::Int], func);
                Type::Str
            }
            "intersects" | "subsetOf" | "supersetOf" | "intersection" => {
                for (a, ty) in args.iter().zip(types) {
                    if ty.element().is_none() {
                        self.issue(a, format!("`{func}` needs arrays, not {ty}"));
                    }
                }
                if func == "intersection" {
                    t(0)
                } else {
                    Type::Bool
                }
            }
            "includes" => {
                if t(0).element().is_none() {
                    self.issue(e, format!("`includes` needs an array, not {}", t(0)));
                }
                Type::Bool
            }
            "distinct" => t(0),
            "head" => t(0).element().unwrap_or(Type::Any),
            "count" => Type::Int,
            "sum" | "average" => {
                let (_, v) = self.per_element(&t(0), args.get(1));
                if !v.is_numeric() {
                    self.issue(e, format!("`{func}` of {v}, not a number"));
                }
                if func == "sum" && v == Type::Int {
                    Type::Int
                } else {
                    Type::Num
                }
            }
            "min" | "max" => self.per_element(&t(0), args.get(1)).1,
            "topN" | "bottomN" => {
                self.per_element(&t(0), args.get(1));
                if let Some(n) = args.get(2) {
                    let nt = self.ty(n);
                    if !matches!(nt, Type::Int | Type::Any) {
                        self.issue(n, format!("`{func}` count must be an integer, not {nt}"));
                    }
                }
                t(0)
            }
            "groupBy" => {
                let (elem, _) = self.per_element(&t(0), args.get(1));
                Type::Map(Box::new(Type::Array(Box::new(elem))))
            }
            "map" => match (t(0), args.get(1)) {
                (Type::Map(group), Some(Expr::Lambda { params, body })) => {
                    let depth = self.vars.len();
                    let mut names = params.iter();
                    if let Some(k) = names.next() {
                        self.vars.push((k.clone(), Type::Str));
                    }
                    if let Some(g) = names.next() {
                        self.vars.push((g.clone(), (*group).clone()));
                    }
                    let out = self.ty(body);
                    self.vars.truncate(depth);
                    match out {
                        Type::Map(_) => out,
                        _ => Type::Map(Box::new(Type::Any)),
                    }
                }
                (recv, Some(Expr::Lambda { params, body })) => {
                    let elem = recv.element().unwrap_or(Type::Any);
                    let depth = self.vars.len();
                    if let Some(p) = params.first() {
                        self.vars.push((p.clone(), elem));
                    }
                    let out = self.ty(body);
                    self.vars.truncate(depth);
                    Type::Array(Box::new(out))
                }
                (recv, arg) => Type::Array(Box::new(self.per_element(&recv, arg).1)),
            },
            "get" => match t(0) {
                Type::Map(v) => *v,
                _ => Type::Any,
            },
            "keys" => Type::Array(Box::new(Type::Str)),
            "values" => match t(0) {
                Type::Map(v) => Type::Array(v),
                _ => Type::Array(Box::new(Type::Any)),
            },
            "mapEntry" => Type::Map(Box::new(t(1))),
            "isNull" | "isNotNull" => Type::Bool,
            "getMonth" | "getYear" | "getDayOfMonth" => {
                let recv = t(0);
                self.time_arg(e, &recv);
                Type::Int
            }
            "currentMonth" | "currentYear" | "currentDayOfMonth" => Type::Int,
            "if" => {
                if let Some(c) = args.first() {
                    self.condition(c, &t(0), "the condition of `if`");
                }
                unify(&t(1), &t(2))
            }
            "inSegment" => {
                if !matches!(args.first(), Some(Expr::Lit(Literal::Str(_)))) {
                    self.issue(e, "inSegment takes a segment id string literal");
                }
                Type::Bool
            }
            other => {
                if functions::lookup(other).is_none() {
                    self.issue(e, format!("unknown function `{other}`"));
                }
                Type::Any
            }
        }
    }

    fn expect(&mut self, e: &Expr, types: &[Type], wanted: &[Type], func: &str) {
        for (i, (got, want)) in types.iter().zip(wanted).enumerate() {
            let ok = got == want || *got == Type::Any || (*want == Type::Str && *got == Type::Time);
            if !ok {
                let which = if i == 0 {
                    "receiver".to_owned()
                } else {
                    format!("argument {i}")
                };
                self.issue(e, format!("{which} of `{func}` must be {want}, not {got}"));
            }
        }
    }
}

fn is_per_element(func: &str) -> bool {
    functions::lookup(func).is_some_and(|s| s.element_arg.is_some())
}

fn unify(a: &Type, b: &Type) -> Type {
    match (a, b) {
        _ if a == b => a.clone(),
        (Type::Int | Type::Num, Type::Int | Type::Num) => Type::Num,
        _ => Type::Any,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema {
            profile: json!({"type": "object", "properties": {
                "person": {"type": "object", "properties": {
                    "birthYear": {"type": "integer"},
                    "name": {"type": "string"},
                    "birthDate": {"type": "string", "format": "date"},
                    "favoriteColors": {"type": "array", "items": {"type": "string"}}
                }},
                "homeAddress": {"type": "object", "properties": {"countryISO": {"type": "string"}}},
                "identityMap": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "object"}}}
            }}),
            event: Some(json!({"type": "object", "properties": {
                "timestamp": {"type": "string", "format": "date-time"},
                "eventType": {"type": "string"},
                "commerce": {"type": "object", "properties": {"order": {"type": "object", "properties": {"priceTotal": {"type": "number"}}}}}
            }})),
        }
    }

    fn run(src: &str) -> Result<Type, Vec<CheckIssue>> {
        check(&crate::parse(src).unwrap(), &schema())
    }

    #[test]
    fn well_typed_expressions() {
        assert_eq!(
            run("person.birthYear >= 2000 and homeAddress.countryISO = \"CA\""),
            Ok(Type::Bool)
        );
        assert_eq!(run("if(person.birthYear > 1990, 1, 2.5)"), Ok(Type::Num));
        assert_eq!(run("xEvent[timestamp occurs < 7 days before now and eventType = \"x\"].sum(commerce.order.priceTotal)"), Ok(Type::Num));
        assert_eq!(run("xEvent.count()"), Ok(Type::Int));
        assert_eq!(run("person.birthDate.getMonth() = 6"), Ok(Type::Bool));
        assert_eq!(
            run("person.favoriteColors.intersects([\"red\"])"),
            Ok(Type::Bool)
        );
        assert_eq!(run("identityMap.get(\"ECID\").count()"), Ok(Type::Int));
        assert_eq!(
            run("CHAIN(xEvent, timestamp, [C0: WHAT(eventType = \"x\") WHEN(today)])"),
            Ok(Type::Bool)
        );
    }

    #[test]
    fn reports_every_problem() {
        let issues =
            run("person.birthYear = \"1985\" and person.nmae = \"x\" and person.name + 1 > 2")
                .unwrap_err();
        let messages: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            vec![
                "`person.birthYear = \"1985\"`: cannot compare integer with string using `=`",
                "`person.nmae`: unknown field `nmae`",
                "`person.name`: operand of `+` must be a number, not string",
            ]
        );
    }

    #[test]
    fn event_fields_are_checked_against_the_event_schema() {
        let issues = run("xEvent[eventTyp = \"x\"].count() > 0").unwrap_err();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].message, "unknown field `eventTyp`");
    }
}
