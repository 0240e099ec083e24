//! pql/text ⇄ pql/json conversion.
//!
//! The four node types documented by AEP (`fnApply`, `fieldLookup`, `parameterReference`,
//! `literal`) are produced exactly as the conversion endpoint shows them, e.g.
//! `workAddress.country = "US"` ⇒
//! `{"nodeType":"fnApply","fnName":"=","params":[{"nodeType":"fieldLookup","fieldName":"country",
//! "object":{"nodeType":"fieldLookup","fieldName":"workAddress","object":{"nodeType":
//! "parameterReference","position":1}}},{"nodeType":"literal","literalType":"String","value":"US"}]}`.
//!
//! Constructs the docs give no JSON form for use Tessera node types (documented in the crate
//! README): `variableReference`, `lambda`, `let`, `quantifier`, `sumOver`, `filter`, `occurs`,
//! `chain`, `array`, `object`; `parameterReference` gains `"up": n` for `^`; literal types are
//! `String`, `Integer`, `Double`, `Boolean`, `Date` (`"YYYY-MM-DD"`). Conversion is exact both
//! ways: json → AST → json gives back the same value, and invalid JSON ASTs (unknown function,
//! wrong arity, unknown node type) are rejected with the JSON pointer of the bad node.

use serde_json::{json, Map, Value};

use crate::ast::{
    Binding, Chain, ChainStep, CmpOp, Direction, Expr, Literal, OccursSpec, Quantifier, Relative,
    TimeRef, Unit,
};
use crate::error::{Error, Result};
use crate::functions;

/// Converts an expression to its pql/json AST.
pub fn to_json(expr: &Expr) -> Value {
    // A thin dispatcher (recursed through once per tree level): each node kind is built by
    // its own function so this frame stays small.
    match expr {
        Expr::Lit(lit) => literal_json(lit),
        Expr::Array(items) => array_json(items),
        Expr::Object(fields) => object_json(fields),
        Expr::Param { position, up } => param_json(*position, *up),
        Expr::Var(name) => node("variableReference", vec![("name", json!(name))]),
        Expr::Field { object, name } => field_json(object, name),
        Expr::Call { func, args } => call_json(func, args),
        Expr::Filter { array, cond } => node(
            "filter",
            vec![("array", to_json(array)), ("condition", to_json(cond))],
        ),
        Expr::Lambda { params, body } => node(
            "lambda",
            vec![("params", json!(params)), ("body", to_json(body))],
        ),
        Expr::Let { var, value, body } => node(
            "let",
            vec![
                ("name", json!(var)),
                ("value", to_json(value)),
                ("body", to_json(body)),
            ],
        ),
        Expr::Quant { kind, bindings } => quantifier_json(*kind, bindings),
        Expr::SumOver {
            value,
            var,
            source,
            cond,
        } => {
            let mut fields = vec![
                ("value", to_json(value)),
                ("name", json!(var)),
                ("source", to_json(source)),
            ];
            if let Some(c) = cond {
                fields.push(("condition", to_json(c)));
            }
            node("sumOver", fields)
        }
        Expr::Occurs { timestamp, spec } => node(
            "occurs",
            vec![("timestamp", to_json(timestamp)), ("spec", spec_json(spec))],
        ),
        Expr::Chain(chain) => chain_json(chain),
    }
}

/// `{"nodeType": kind, ...fields}`.
fn node(kind: &str, fields: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    m.insert("nodeType".into(), Value::String(kind.to_owned()));
    for (k, v) in fields {
        m.insert(k.to_owned(), v);
    }
    Value::Object(m)
}

fn array_json(items: &[Expr]) -> Value {
    node(
        "array",
        vec![("items", Value::Array(items.iter().map(to_json).collect()))],
    )
}

fn object_json(fields: &[(String, Expr)]) -> Value {
    let fields = fields
        .iter()
        .map(|(k, v)| json!({"name": k, "value": to_json(v)}))
        .collect();
    node("object", vec![("fields", Value::Array(fields))])
}

fn param_json(position: u32, up: u32) -> Value {
    let mut fields = vec![("position", json!(position))];
    if up > 0 {
        fields.push(("up", json!(up)));
    }
    node("parameterReference", fields)
}

fn field_json(object: &Expr, name: &str) -> Value {
    node(
        "fieldLookup",
        vec![("fieldName", json!(name)), ("object", to_json(object))],
    )
}

fn call_json(func: &str, args: &[Expr]) -> Value {
    node(
        "fnApply",
        vec![
            ("fnName", json!(func)),
            ("params", Value::Array(args.iter().map(to_json).collect())),
        ],
    )
}

fn quantifier_json(kind: Quantifier, bindings: &[Binding]) -> Value {
    let bindings = bindings
        .iter()
        .map(|b| {
            let mut m = Map::new();
            m.insert("name".into(), json!(b.var));
            m.insert("source".into(), to_json(&b.source));
            if let Some(c) = &b.cond {
                m.insert("condition".into(), to_json(c));
            }
            Value::Object(m)
        })
        .collect();
    node(
        "quantifier",
        vec![
            ("quantifier", json!(kind.keyword())),
            ("bindings", Value::Array(bindings)),
        ],
    )
}

fn chain_json(chain: &Chain) -> Value {
    let steps = chain
        .steps
        .iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("label".into(), json!(s.label));
            m.insert("what".into(), to_json(&s.what));
            if let Some(w) = &s.when {
                m.insert("when".into(), spec_json(w));
            }
            Value::Object(m)
        })
        .collect();
    node(
        "chain",
        vec![
            ("events", to_json(&chain.events)),
            ("timestampField", json!(chain.timestamp)),
            ("steps", Value::Array(steps)),
        ],
    )
}

fn literal_json(lit: &Literal) -> Value {
    let (ty, value) = match lit {
        Literal::Bool(b) => ("Boolean", json!(b)),
        Literal::Int(i) => ("Integer", json!(i)),
        Literal::Double(d) => ("Double", json!(d)),
        Literal::Str(s) => ("String", json!(s)),
        Literal::Date { year, month, day } => {
            ("Date", json!(format!("{year:04}-{month:02}-{day:02}")))
        }
    };
    json!({"nodeType": "literal", "literalType": ty, "value": value})
}

fn spec_json(spec: &OccursSpec) -> Value {
    match spec {
        OccursSpec::Compare {
            op,
            amount,
            unit,
            direction,
            time,
        } => json!({
            "form": "compare", "op": op.symbol(), "amount": amount, "unit": unit.singular(),
            "direction": direction.keyword(), "time": time_json(time)
        }),
        OccursSpec::Direction { direction, time } => {
            json!({"form": "direction", "direction": direction.keyword(), "time": time_json(time)})
        }
        OccursSpec::On(time) => json!({"form": "on", "time": time_json(time)}),
        OccursSpec::Between(a, b) => {
            json!({"form": "between", "from": time_json(a), "to": time_json(b)})
        }
    }
}

fn time_json(time: &TimeRef) -> Value {
    match time {
        TimeRef::Now => json!({"nodeType": "timeReference", "word": "now"}),
        TimeRef::Today => json!({"nodeType": "timeReference", "word": "today"}),
        TimeRef::Yesterday => json!({"nodeType": "timeReference", "word": "yesterday"}),
        TimeRef::Tomorrow => json!({"nodeType": "timeReference", "word": "tomorrow"}),
        TimeRef::Relative { rel, unit } => {
            json!({"nodeType": "relativeTime", "relative": rel.keyword(), "unit": unit.singular()})
        }
        TimeRef::Expr(e) => to_json(e),
    }
}

/// Serializes a pql/json AST with keys in the documented order (`nodeType` first, then the
/// node's name or type, then its children), which `serde_json::Value` alone does not keep.
pub fn to_json_string(expr: &Expr) -> String {
    let mut out = String::new();
    write_ordered(&to_json(expr), &mut out);
    out
}

const KEY_ORDER: &[&str] = &[
    "nodeType",
    "fnName",
    "fieldName",
    "literalType",
    "position",
    "up",
    "name",
    "quantifier",
    "form",
    "op",
    "amount",
    "unit",
    "direction",
    "relative",
    "word",
    "label",
    "params",
    "object",
    "value",
    "items",
    "fields",
    "array",
    "condition",
    "body",
    "bindings",
    "source",
    "timestamp",
    "spec",
    "events",
    "timestampField",
    "steps",
    "what",
    "when",
    "time",
    "from",
    "to",
];

fn write_ordered(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_ordered(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by_key(|k| KEY_ORDER.iter().position(|o| o == k).unwrap_or(usize::MAX));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(child) = m.get(k) {
                    write_ordered(child, out);
                }
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Reads a pql/json AST.
pub fn from_json(value: &Value) -> Result<Expr> {
    Reader.expr(value, "")
}

fn bad(path: &str, reason: impl Into<String>) -> Error {
    Error::Json {
        path: if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        },
        reason: reason.into(),
    }
}

struct Reader;

impl Reader {
    fn obj<'v>(&self, v: &'v Value, path: &str) -> Result<&'v Map<String, Value>> {
        v.as_object().ok_or_else(|| bad(path, "expected an object"))
    }

    fn member<'v>(&self, m: &'v Map<String, Value>, key: &str, path: &str) -> Result<&'v Value> {
        m.get(key)
            .ok_or_else(|| bad(path, format!("missing `{key}`")))
    }

    fn string<'v>(&self, m: &'v Map<String, Value>, key: &str, path: &str) -> Result<&'v str> {
        self.member(m, key, path)?
            .as_str()
            .ok_or_else(|| bad(&format!("{path}/{key}"), "expected a string"))
    }

    fn array<'v>(
        &self,
        m: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<&'v Vec<Value>> {
        self.member(m, key, path)?
            .as_array()
            .ok_or_else(|| bad(&format!("{path}/{key}"), "expected an array"))
    }

    fn u64(&self, m: &Map<String, Value>, key: &str, path: &str) -> Result<u64> {
        self.member(m, key, path)?
            .as_u64()
            .ok_or_else(|| bad(&format!("{path}/{key}"), "expected a non-negative integer"))
    }

    fn u32(&self, m: &Map<String, Value>, key: &str, path: &str) -> Result<u32> {
        u32::try_from(self.u64(m, key, path)?)
            .map_err(|_| bad(&format!("{path}/{key}"), "integer out of range"))
    }

    fn sub(&self, m: &Map<String, Value>, key: &str, path: &str) -> Result<Expr> {
        self.expr(self.member(m, key, path)?, &format!("{path}/{key}"))
    }

    fn opt_sub(&self, m: &Map<String, Value>, key: &str, path: &str) -> Result<Option<Expr>> {
        m.get(key)
            .map(|v| self.expr(v, &format!("{path}/{key}")))
            .transpose()
    }

    fn list(&self, m: &Map<String, Value>, key: &str, path: &str) -> Result<Vec<Expr>> {
        self.array(m, key, path)?
            .iter()
            .enumerate()
            .map(|(i, v)| self.expr(v, &format!("{path}/{key}/{i}")))
            .collect()
    }

    /// A thin dispatcher (recursed through once per tree level); each node kind is read by
    /// its own function so this frame stays small.
    fn expr(&self, v: &Value, path: &str) -> Result<Expr> {
        let m = self.obj(v, path)?;
        match self.string(m, "nodeType", path)? {
            "literal" => Ok(Expr::Lit(self.literal(m, path)?)),
            "array" => Ok(Expr::Array(self.list(m, "items", path)?)),
            "object" => self.object(m, path),
            "parameterReference" => self.param(m, path),
            "variableReference" => Ok(Expr::Var(self.string(m, "name", path)?.to_owned())),
            "fieldLookup" => self.field(m, path),
            "fnApply" => self.fn_apply(m, path),
            "filter" => self.filter(m, path),
            "lambda" => self.lambda(m, path),
            "let" => self.let_in(m, path),
            "quantifier" => self.quantifier(m, path),
            "sumOver" => self.sum_over(m, path),
            "occurs" => self.occurs(m, path),
            "chain" => self.chain(m, path),
            other => Err(bad(path, format!("unknown nodeType `{other}`"))),
        }
    }

    fn object(&self, m: &Map<String, Value>, path: &str) -> Result<Expr> {
        let mut fields = Vec::new();
        for (i, f) in self.array(m, "fields", path)?.iter().enumerate() {
            let fp = format!("{path}/fields/{i}");
            let fm = self.obj(f, &fp)?;
            fields.push((
                self.string(fm, "name", &fp)?.to_owned(),
                self.sub(fm, "value", &fp)?,
            ));
        }
        Ok(Expr::Object(fields))
    }

    fn param(&self, m: &Map<String, Value>, path: &str) -> Result<Expr> {
        let position = self.u32(m, "position", path)?;
        let up = if m.contains_key("up") {
            self.u32(m, "up", path)?
        } else {
            0
        };
        if position == 0 {
            return Err(bad(path, "parameter positions start at 1"));
        }
        Ok(Expr::Param { position, up })
    }

    fn field(&self, m: &Map<String, Value>, path: &str) -> Result<Expr> {
        Ok(Expr::Field {
            object: Box::new(self.sub(m, "object", path)?),
            name: self.string(m, "fieldName", path)?.to_owned(),
        })
    }

    fn fn_apply(&self, m: &Map<String, Value>, path: &str) -> Result<Expr> {
        let func = self.string(m, "fnName", path)?;
        let args = self.list(m, "params", path)?;
        self.check_call(func, args.len(), path)?;
        Ok(Expr::Call {
            func: func.to_owned(),
            args,
        })
    }

    fn filter(&self, m: &Map<String, Value>, path: &str) -> Result<Expr> {
        Ok(Expr::Filter {
            array: Box::new(self.sub(m, "array", path)?),
            cond: Box::new(self.sub(m, "condition", path)?),
        })
    }

    fn names(&self, m: &Map<String, Value>, key: &str, path: &str) -> Result<Vec<String>> {
        self.array(m, key, path)?
            .iter()
            .map(|p| p.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad(&format!("{path}/{key}"), "expected names"))
    }

    fn lambda(&self, m: &Map<String, Value>, path: &str) -> Result<Expr> {
        Ok(Expr::Lambda {
            params: self.names(m, "params", path)?,
            body: Box::new(self.sub(m, "body", path)?),
        })
    }

    fn let_in(&self, m: &Map<String, Value>, path: &str) -> Result<Expr> {
        Ok(Expr::Let {
            var: self.string(m, "name", path)?.to_owned(),
            value: Box::new(self.sub(m, "value", path)?),
            body: Box::new(self.sub(m, "body", path)?),
        })
    }

    fn quantifier(&self, m: &Map<String, Value>, path: &str) -> Result<Expr> {
        let kind = match self.string(m, "quantifier", path)? {
            "exists" => Quantifier::Exists,
            "forall" => Quantifier::Forall,
            "select" => Quantifier::Select,
            other => return Err(bad(path, format!("unknown quantifier `{other}`"))),
        };
        let mut bindings = Vec::new();
        for (i, b) in self.array(m, "bindings", path)?.iter().enumerate() {
            let bp = format!("{path}/bindings/{i}");
            let bm = self.obj(b, &bp)?;
            bindings.push(Binding {
                var: self.string(bm, "name", &bp)?.to_owned(),
                source: self.sub(bm, "source", &bp)?,
                cond: self.opt_sub(bm, "condition", &bp)?,
            });
        }
        if bindings.is_empty() {
            return Err(bad(path, "a quantifier needs at least one binding"));
        }
        Ok(Expr::Quant { kind, bindings })
    }

    fn sum_over(&self, m: &Map<String, Value>, path: &str) -> Result<Expr> {
        Ok(Expr::SumOver {
            value: Box::new(self.sub(m, "value", path)?),
            var: self.string(m, "name", path)?.to_owned(),
            source: Box::new(self.sub(m, "source", path)?),
            cond: self.opt_sub(m, "condition", path)?.map(Box::new),
        })
    }

    fn occurs(&self, m: &Map<String, Value>, path: &str) -> Result<Expr> {
        Ok(Expr::Occurs {
            timestamp: Box::new(self.sub(m, "timestamp", path)?),
            spec: self.spec(self.member(m, "spec", path)?, &format!("{path}/spec"))?,
        })
    }

    fn chain(&self, m: &Map<String, Value>, path: &str) -> Result<Expr> {
        let timestamp = self.names(m, "timestampField", path)?;
        if timestamp.is_empty() {
            return Err(bad(
                &format!("{path}/timestampField"),
                "expected field names",
            ));
        }
        let mut steps = Vec::new();
        for (i, s) in self.array(m, "steps", path)?.iter().enumerate() {
            let sp = format!("{path}/steps/{i}");
            let sm = self.obj(s, &sp)?;
            let when = sm
                .get("when")
                .map(|w| self.spec(w, &format!("{sp}/when")))
                .transpose()?;
            steps.push(ChainStep {
                label: self.string(sm, "label", &sp)?.to_owned(),
                what: self.sub(sm, "what", &sp)?,
                when,
            });
        }
        if steps.is_empty() {
            return Err(bad(path, "a chain needs at least one step"));
        }
        Ok(Expr::Chain(Chain {
            events: Box::new(self.sub(m, "events", path)?),
            timestamp,
            steps,
        }))
    }

    fn check_call(&self, func: &str, n: usize, path: &str) -> Result<()> {
        let ok = match func {
            "not" => n == 1,
            "-" => n == 1 || n == 2,
            f if functions::is_operator(f) => n == 2,
            f => match functions::lookup(f) {
                Some(spec) => (spec.min..=spec.max).contains(&n),
                None => return Err(bad(path, format!("unknown function `{f}`"))),
            },
        };
        if ok {
            Ok(())
        } else {
            Err(bad(
                path,
                format!("wrong number of params ({n}) for `{func}`"),
            ))
        }
    }

    fn literal(&self, m: &Map<String, Value>, path: &str) -> Result<Literal> {
        let value = self.member(m, "value", path)?;
        let vp = format!("{path}/value");
        Ok(match self.string(m, "literalType", path)? {
            "String" => Literal::Str(
                value
                    .as_str()
                    .ok_or_else(|| bad(&vp, "expected a string"))?
                    .to_owned(),
            ),
            "Integer" => Literal::Int(
                value
                    .as_i64()
                    .ok_or_else(|| bad(&vp, "expected an integer"))?,
            ),
            "Double" => Literal::Double(
                value
                    .as_f64()
                    .ok_or_else(|| bad(&vp, "expected a number"))?,
            ),
            "Boolean" => Literal::Bool(
                value
                    .as_bool()
                    .ok_or_else(|| bad(&vp, "expected a boolean"))?,
            ),
            "Date" => {
                let text = value
                    .as_str()
                    .ok_or_else(|| bad(&vp, "expected YYYY-MM-DD"))?;
                let ms = crate::time::parse_timestamp(text)
                    .filter(|_| text.len() == 10)
                    .ok_or_else(|| bad(&vp, "expected YYYY-MM-DD"))?;
                let (y, month, day) = crate::time::date_parts(ms);
                let year = i32::try_from(y).map_err(|_| bad(&vp, "year out of range"))?;
                Literal::Date { year, month, day }
            }
            other => return Err(bad(path, format!("unknown literalType `{other}`"))),
        })
    }

    fn spec(&self, v: &Value, path: &str) -> Result<OccursSpec> {
        let m = self.obj(v, path)?;
        let time = |key: &str| -> Result<TimeRef> {
            self.time(self.member(m, key, path)?, &format!("{path}/{key}"))
        };
        let direction = || -> Result<Direction> {
            Direction::from_word(self.string(m, "direction", path)?).ok_or_else(|| {
                bad(
                    &format!("{path}/direction"),
                    "expected before, after or from",
                )
            })
        };
        Ok(match self.string(m, "form", path)? {
            "compare" => OccursSpec::Compare {
                op: CmpOp::from_symbol(self.string(m, "op", path)?)
                    .ok_or_else(|| bad(&format!("{path}/op"), "expected a comparison"))?,
                amount: self.u64(m, "amount", path)?,
                unit: self.unit(m, path)?,
                direction: direction()?,
                time: time("time")?,
            },
            "direction" => OccursSpec::Direction {
                direction: direction()?,
                time: time("time")?,
            },
            "on" => OccursSpec::On(time("time")?),
            "between" => OccursSpec::Between(time("from")?, time("to")?),
            other => return Err(bad(path, format!("unknown occurs form `{other}`"))),
        })
    }

    fn unit(&self, m: &Map<String, Value>, path: &str) -> Result<Unit> {
        Unit::from_word(self.string(m, "unit", path)?)
            .ok_or_else(|| bad(&format!("{path}/unit"), "unknown time unit"))
    }

    fn time(&self, v: &Value, path: &str) -> Result<TimeRef> {
        let m = self.obj(v, path)?;
        match self.string(m, "nodeType", path)? {
            "timeReference" => Ok(match self.string(m, "word", path)? {
                "now" => TimeRef::Now,
                "today" => TimeRef::Today,
                "yesterday" => TimeRef::Yesterday,
                "tomorrow" => TimeRef::Tomorrow,
                other => return Err(bad(path, format!("unknown time word `{other}`"))),
            }),
            "relativeTime" => Ok(TimeRef::Relative {
                rel: match self.string(m, "relative", path)? {
                    "this" => Relative::This,
                    "last" => Relative::Last,
                    "next" => Relative::Next,
                    other => return Err(bad(path, format!("unknown relative word `{other}`"))),
                },
                unit: self.unit(m, path)?,
            }),
            _ => Ok(TimeRef::Expr(Box::new(self.expr(v, path)?))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn documented_ast_is_exact() {
        let expr = crate::parse("workAddress.country = \"US\"").unwrap();
        let expected = r#"{"nodeType":"fnApply","fnName":"=","params":[{"nodeType":"fieldLookup","fieldName":"country","object":{"nodeType":"fieldLookup","fieldName":"workAddress","object":{"nodeType":"parameterReference","position":1}}},{"nodeType":"literal","literalType":"String","value":"US"}]}"#;
        let expected: Value = serde_json::from_str(expected).unwrap();
        assert_eq!(to_json(&expr), expected);
        assert_eq!(from_json(&expected).unwrap(), expr);
    }

    #[test]
    fn unknown_function_in_json_is_rejected_with_its_path() {
        let v = json!({"nodeType":"fnApply","fnName":"and","params":[
            {"nodeType":"literal","literalType":"Boolean","value":true},
            {"nodeType":"fnApply","fnName":"frobnicate","params":[]}]});
        let err = from_json(&v).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid pql/json at /params/1: unknown function `frobnicate`"
        );
    }
}
