//! Compilation: [`Expr`] to the [`Node`] tree the evaluator runs.
//!
//! Done once per expression: function names become [`Builtin`] variants, variables become slot
//! numbers, constant regexes and `like` patterns are compiled, literal arrays become constants
//! and dates become epoch milliseconds. Evaluation never looks at names or text again.

use regex::Regex;
use serde_json::Value;

use crate::ast::{CmpOp, Direction, Expr, Literal, OccursSpec, Quantifier, TimeRef};
use crate::error::{Error, Result};
use crate::time;

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// Resolved catalogue functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    StartsWith,
    DoesNotStartWith,
    EndsWith,
    DoesNotEndWith,
    Contains,
    DoesNotContain,
    Equals,
    NotEqualTo,
    Intersects,
    Intersection,
    SubsetOf,
    SupersetOf,
    Includes,
    Distinct,
    Head,
    Count,
    Get,
    Keys,
    Values,
    MapEntry,
    IsNull,
    IsNotNull,
    GetMonth,
    GetYear,
    GetDayOfMonth,
    CurrentMonth,
    CurrentYear,
    CurrentDayOfMonth,
}

/// Functions evaluated once per element of their receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerElement {
    Sum,
    Average,
    Min,
    Max,
    TopN,
    BottomN,
    GroupBy,
    Map,
}

/// The per-element argument of a [`PerElement`] function.
#[derive(Debug)]
pub enum ElemArg {
    /// No argument: the elements themselves (`xs.sum()`).
    Identity,
    /// An expression evaluated with the element as implicit input.
    Scoped(Node),
    /// A lambda: its parameters' slots and body (`(K, G) => ...` over a map's entries).
    Lambda(Vec<usize>, Node),
}

/// A compiled time reference.
#[derive(Debug)]
pub enum CTime {
    /// A time word (`now`, `today`, `last week`...): resolved against `now` at evaluation.
    Word(TimeRef),
    /// A `date(y,m,d)` literal: the whole UTC day.
    Day(i64),
    /// A timestamp-valued expression: an instant.
    Instant(Node),
}

/// A compiled `occurs` constraint.
#[derive(Debug)]
pub enum CSpec {
    Compare {
        op: CmpOp,
        amount: i64,
        unit: crate::ast::Unit,
        direction: Direction,
        time: CTime,
    },
    Direction {
        direction: Direction,
        time: CTime,
    },
    On(CTime),
    Between(CTime, CTime),
}

/// One compiled CHAIN step.
#[derive(Debug)]
pub struct CStep {
    pub what: Node,
    pub when: Option<CSpec>,
}

/// A compiled quantifier binding.
#[derive(Debug)]
pub struct CBinding {
    pub slot: usize,
    pub source: Node,
    pub cond: Option<Node>,
}

/// The compiled expression tree.
#[derive(Debug)]
pub enum Node {
    /// A constant (scalar or array of scalars), borrowed at evaluation.
    Const(Value),
    /// A date literal (start of the UTC day).
    Time(i64),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
    /// The implicit input `up` scopes out.
    Scope(usize),
    /// A bound variable.
    Var(usize),
    Field(Box<Node>, String),
    /// `name` on the current implicit input (the element inside a filter): the most common
    /// lookup, without evaluating and cloning the scope first.
    ScopeField(String),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Arith(Arith, Box<Node>, Box<Node>),
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    In {
        value: Box<Node>,
        list: Box<Node>,
        negated: bool,
    },
    /// `like` or `matches` with a constant pattern.
    Regex(Box<Node>, Regex),
    /// `like` with a computed pattern.
    LikeDyn(Box<Node>, Box<Node>),
    /// `matches` with a computed pattern.
    MatchesDyn(Box<Node>, Box<Node>),
    RegexGroup {
        text: Box<Node>,
        regex: Option<Regex>,
        pattern: Box<Node>,
        group: Box<Node>,
    },
    Call(Builtin, Vec<Node>),
    PerElement {
        func: PerElement,
        receiver: Box<Node>,
        arg: Box<ElemArg>,
        extra: Option<Box<Node>>,
    },
    If(Box<Node>, Box<Node>, Box<Node>),
    InSegment(Box<Node>),
    Filter {
        array: Box<Node>,
        cond: Box<Node>,
        /// A conjunct `timestamp occurs ...` of `cond` with a fixed window: on the sorted
        /// profile events only the events inside it are visited (binary search), and only
        /// `rest` (the other conjuncts; `None` when there are none) is evaluated on them.
        window: Option<Box<CSpec>>,
        rest: Option<Box<Node>>,
    },
    /// `filter.count()`, counted without building the filtered array.
    CountFilter(Box<Node>),
    Let {
        slot: usize,
        value: Box<Node>,
        body: Box<Node>,
    },
    Quant {
        forall: bool,
        bindings: Vec<CBinding>,
    },
    SumOver {
        slot: usize,
        value: Box<Node>,
        source: Box<Node>,
        cond: Option<Box<Node>>,
    },
    Occurs(Box<Node>, Box<CSpec>),
    Chain {
        events: Box<Node>,
        timestamp: Vec<String>,
        steps: Vec<CStep>,
    },
}

/// Compiler state: variables in scope and the next free slot.
pub struct Compiler {
    vars: Vec<(String, usize)>,
    pub slots: usize,
}

fn compile_err(reason: impl Into<String>) -> Error {
    Error::Compile {
        reason: reason.into(),
    }
}

/// A `like` pattern as an anchored regex: `%` is any run, `_` one character.
pub fn like_regex(pattern: &str) -> std::result::Result<Regex, regex::Error> {
    let mut re = String::from("(?s)^");
    for c in pattern.chars() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re)
}

impl Compiler {
    pub fn new() -> Self {
        Compiler {
            vars: Vec::new(),
            slots: 0,
        }
    }

    pub fn bind(&mut self, name: &str) -> usize {
        let slot = self.slots;
        self.slots += 1;
        self.vars.push((name.to_owned(), slot));
        slot
    }

    fn unbind(&mut self, n: usize) {
        self.vars.truncate(self.vars.len().saturating_sub(n));
    }

    fn boxed(&mut self, e: &Expr) -> Result<Box<Node>> {
        Ok(Box::new(self.compile(e)?))
    }

    /// Compiles one node. A thin dispatcher: each construct has its own function so that
    /// this frame, recursed through once per tree level, stays small (also in debug builds).
    pub fn compile(&mut self, e: &Expr) -> Result<Node> {
        match e {
            Expr::Lit(lit) => literal(lit),
            Expr::Array(items) => self.array(items),
            Expr::Object(fields) => self.object(fields),
            Expr::Param { position, up } => param(*position, *up),
            Expr::Var(name) => self.var(name),
            Expr::Field { object, name } => self.field(object, name),
            Expr::Call { func, args } => self.call(func, args),
            Expr::Filter { array, cond } => self.filter(array, cond),
            Expr::Lambda { .. } => Err(compile_err(
                "a lambda is only allowed as the whole expression or as the argument of map",
            )),
            Expr::Let { var, value, body } => self.let_in(var, value, body),
            Expr::Quant { kind, bindings } => self.quantifier(*kind, bindings),
            Expr::SumOver {
                value,
                var,
                source,
                cond,
            } => self.sum_over(value, var, source, cond.as_deref()),
            Expr::Occurs { timestamp, spec } => self.occurs(timestamp, spec),
            Expr::Chain(chain) => self.chain(chain),
        }
    }

    fn array(&mut self, items: &[Expr]) -> Result<Node> {
        let nodes = items
            .iter()
            .map(|i| self.compile(i))
            .collect::<Result<Vec<_>>>()?;
        if !nodes.iter().all(|n| matches!(n, Node::Const(_))) {
            return Ok(Node::Array(nodes));
        }
        Ok(Node::Const(Value::Array(
            nodes
                .into_iter()
                .filter_map(|n| match n {
                    Node::Const(v) => Some(v),
                    _ => None,
                })
                .collect(),
        )))
    }

    fn object(&mut self, fields: &[(String, Expr)]) -> Result<Node> {
        Ok(Node::Object(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.compile(v)?)))
                .collect::<Result<Vec<_>>>()?,
        ))
    }

    fn var(&self, name: &str) -> Result<Node> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, s)| Node::Var(*s))
            .ok_or_else(|| compile_err(format!("unbound variable `{name}`")))
    }

    fn field(&mut self, object: &Expr, name: &str) -> Result<Node> {
        Ok(match object {
            Expr::Param { position: 1, up: 0 } => Node::ScopeField(name.to_owned()),
            _ => Node::Field(self.boxed(object)?, name.to_owned()),
        })
    }

    fn filter(&mut self, array: &Expr, cond: &Expr) -> Result<Node> {
        let (window, rest) = match split_window(cond) {
            Some((spec, rest)) => (
                Some(Box::new(self.spec(spec)?)),
                rest.map(|r| self.boxed(&r)).transpose()?,
            ),
            None => (None, None),
        };
        Ok(Node::Filter {
            array: self.boxed(array)?,
            cond: self.boxed(cond)?,
            window,
            rest,
        })
    }

    fn let_in(&mut self, var: &str, value: &Expr, body: &Expr) -> Result<Node> {
        let value = self.boxed(value)?;
        let slot = self.bind(var);
        let body = self.boxed(body);
        self.unbind(1);
        Ok(Node::Let {
            slot,
            value,
            body: body?,
        })
    }

    fn quantifier(&mut self, kind: Quantifier, bindings: &[crate::ast::Binding]) -> Result<Node> {
        let mut out = Vec::new();
        let mut bound = 0;
        let result: Result<()> = (|| {
            for b in bindings {
                let source = self.compile(&b.source)?;
                let slot = self.bind(&b.var);
                bound += 1;
                let cond = b.cond.as_ref().map(|c| self.compile(c)).transpose()?;
                out.push(CBinding { slot, source, cond });
            }
            Ok(())
        })();
        self.unbind(bound);
        result?;
        Ok(Node::Quant {
            forall: kind == Quantifier::Forall,
            bindings: out,
        })
    }

    fn sum_over(
        &mut self,
        value: &Expr,
        var: &str,
        source: &Expr,
        cond: Option<&Expr>,
    ) -> Result<Node> {
        let source = self.boxed(source)?;
        let slot = self.bind(var);
        let value = self.boxed(value);
        let cond = cond.map(|c| self.boxed(c)).transpose();
        self.unbind(1);
        Ok(Node::SumOver {
            slot,
            value: value?,
            source,
            cond: cond?,
        })
    }

    fn occurs(&mut self, timestamp: &Expr, spec: &OccursSpec) -> Result<Node> {
        Ok(Node::Occurs(
            self.boxed(timestamp)?,
            Box::new(self.spec(spec)?),
        ))
    }

    fn chain(&mut self, chain: &crate::ast::Chain) -> Result<Node> {
        Ok(Node::Chain {
            events: self.boxed(&chain.events)?,
            timestamp: chain.timestamp.clone(),
            steps: chain
                .steps
                .iter()
                .map(|s| {
                    Ok(CStep {
                        what: self.compile(&s.what)?,
                        when: s.when.as_ref().map(|w| self.spec(w)).transpose()?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        })
    }

    fn time(&mut self, t: &TimeRef) -> Result<CTime> {
        Ok(match t {
            TimeRef::Expr(e) => match self.compile(e)? {
                Node::Time(ms) => CTime::Day(ms),
                node => CTime::Instant(node),
            },
            word => CTime::Word(word.clone()),
        })
    }

    fn spec(&mut self, spec: &OccursSpec) -> Result<CSpec> {
        Ok(match spec {
            OccursSpec::Compare {
                op,
                amount,
                unit,
                direction,
                time,
            } => CSpec::Compare {
                op: *op,
                amount: i64::try_from(*amount).map_err(|_| compile_err("amount too large"))?,
                unit: *unit,
                direction: *direction,
                time: self.time(time)?,
            },
            OccursSpec::Direction { direction, time } => CSpec::Direction {
                direction: *direction,
                time: self.time(time)?,
            },
            OccursSpec::On(t) => CSpec::On(self.time(t)?),
            OccursSpec::Between(a, b) => CSpec::Between(self.time(a)?, self.time(b)?),
        })
    }

    fn args(&mut self, args: &[Expr]) -> Result<Vec<Node>> {
        args.iter().map(|a| self.compile(a)).collect()
    }

    fn call(&mut self, func: &str, args: &[Expr]) -> Result<Node> {
        if let [a, b] = args {
            if let Some(node) = self.binary(func, a, b)? {
                return Ok(node);
            }
        }
        self.function(func, args)
    }

    /// Binary operators; `None` for anything else.
    fn binary(&mut self, func: &str, a: &Expr, b: &Expr) -> Result<Option<Node>> {
        let arith = match func {
            "+" => Some(Arith::Add),
            "-" => Some(Arith::Sub),
            "*" => Some(Arith::Mul),
            "/" => Some(Arith::Div),
            "%" => Some(Arith::Rem),
            _ => None,
        };
        let cmp = CmpOp::from_symbol(func);
        if arith.is_none() && cmp.is_none() && !matches!(func, "and" | "or" | "in" | "notIn") {
            return Ok(None);
        }
        let (a, b) = (self.boxed(a)?, self.boxed(b)?);
        Ok(Some(match (cmp, arith, func) {
            (Some(op), _, _) => Node::Cmp(op, a, b),
            (_, Some(op), _) => Node::Arith(op, a, b),
            (_, _, "and") => Node::And(a, b),
            (_, _, "or") => Node::Or(a, b),
            (_, _, f) => Node::In {
                value: a,
                list: b,
                negated: f == "notIn",
            },
        }))
    }

    fn function(&mut self, func: &str, args: &[Expr]) -> Result<Node> {
        if let ("count", [filter @ Expr::Filter { .. }]) = (func, args) {
            return Ok(Node::CountFilter(self.boxed(filter)?));
        }
        if let Some(node) = self.per_element(func, args)? {
            return Ok(node);
        }
        let nodes = self.args(args)?;
        // Built after the arguments: the larger frame is not on the recursion path.
        assemble(func, nodes)
    }

    /// Per-element functions (`sum`, `groupBy`, `map`, ...): their argument is compiled for
    /// the element scope or as a lambda. `None` for every other function.
    fn per_element(&mut self, func: &str, args: &[Expr]) -> Result<Option<Node>> {
        let per = match func {
            "sum" => PerElement::Sum,
            "average" => PerElement::Average,
            "min" => PerElement::Min,
            "max" => PerElement::Max,
            "topN" => PerElement::TopN,
            "bottomN" => PerElement::BottomN,
            "groupBy" => PerElement::GroupBy,
            "map" => PerElement::Map,
            _ => return Ok(None),
        };
        let (receiver, rest) = args
            .split_first()
            .ok_or_else(|| compile_err(format!("`{func}` needs a receiver")))?;
        let receiver = self.boxed(receiver)?;
        let arg = match rest.first() {
            None => ElemArg::Identity,
            Some(Expr::Lambda { params, body }) => {
                let slots: Vec<usize> = params.iter().map(|p| self.bind(p)).collect();
                let body = self.compile(body);
                self.unbind(slots.len());
                ElemArg::Lambda(slots, body?)
            }
            Some(e) => ElemArg::Scoped(self.compile(e)?),
        };
        let extra = rest.get(1).map(|e| self.boxed(e)).transpose()?;
        Ok(Some(Node::PerElement {
            func: per,
            receiver,
            arg: Box::new(arg),
            extra,
        }))
    }
}

fn conjuncts<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Call { func, args } if func == "and" => args.iter().for_each(|a| conjuncts(a, out)),
        other => out.push(other),
    }
}

/// Splits a filter condition into a `timestamp occurs SPEC` conjunct whose times do not depend
/// on the element (words and dates only) and the conjunction of the others (`None` if none).
fn split_window(cond: &Expr) -> Option<(&OccursSpec, Option<Expr>)> {
    let mut all = Vec::new();
    conjuncts(cond, &mut all);
    let (index, spec) = all
        .iter()
        .enumerate()
        .find_map(|(i, c)| window_spec(c).map(|s| (i, s)))?;
    let rest = all
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
        .map(|(_, c)| (*c).clone())
        .reduce(|acc, c| Expr::call("and", vec![acc, c]));
    Some((spec, rest))
}

fn window_spec(cond: &Expr) -> Option<&OccursSpec> {
    match cond {
        Expr::Occurs { timestamp, spec } => {
            let on_element = matches!(&**timestamp, Expr::Field { object, name }
                if name == "timestamp" && matches!(**object, Expr::Param { position: 1, up: 0 }));
            let fixed = spec.times().iter().all(|t| match t {
                TimeRef::Expr(e) => matches!(**e, Expr::Lit(Literal::Date { .. })),
                _ => true,
            });
            (on_element && fixed).then_some(spec)
        }
        _ => None,
    }
}

/// The node of a non-per-element function or operator from its compiled arguments.
#[inline(never)]
fn assemble(func: &str, nodes: Vec<Node>) -> Result<Node> {
    let mut it = nodes.into_iter();
    let mut next = || it.next().map(Box::new);
    let arity = || compile_err(format!("wrong number of arguments for `{func}`"));
    let node = match func {
        "not" => Node::Not(next().ok_or_else(arity)?),
        "-" => Node::Neg(next().ok_or_else(arity)?),
        "if" => {
            let (c, a, b) = (next(), next(), next());
            match (c, a, b) {
                (Some(c), Some(a), Some(b)) => Node::If(c, a, b),
                _ => return Err(arity()),
            }
        }
        "inSegment" => Node::InSegment(next().ok_or_else(arity)?),
        "like" | "matches" => {
            let (Some(text), Some(pattern)) = (next(), next()) else {
                return Err(arity());
            };
            match (*pattern, func) {
                (Node::Const(Value::String(p)), "like") => Node::Regex(
                    text,
                    like_regex(&p).map_err(|e| compile_err(format!("like pattern: {e}")))?,
                ),
                (Node::Const(Value::String(p)), _) => Node::Regex(
                    text,
                    Regex::new(&p).map_err(|e| compile_err(format!("regex: {e}")))?,
                ),
                (other, "like") => Node::LikeDyn(text, Box::new(other)),
                (other, _) => Node::MatchesDyn(text, Box::new(other)),
            }
        }
        "regexGroup" => {
            let (Some(text), Some(pattern), Some(group)) = (next(), next(), next()) else {
                return Err(arity());
            };
            let regex = match &*pattern {
                Node::Const(Value::String(p)) => {
                    Some(Regex::new(p).map_err(|e| compile_err(format!("regex: {e}")))?)
                }
                _ => None,
            };
            Node::RegexGroup {
                text,
                regex,
                pattern,
                group,
            }
        }
        _ => {
            let builtin =
                builtin(func).ok_or_else(|| compile_err(format!("unknown function `{func}`")))?;
            let mut rest = Vec::new();
            while let Some(n) = next() {
                rest.push(*n);
            }
            Node::Call(builtin, rest)
        }
    };
    Ok(node)
}

fn literal(lit: &Literal) -> Result<Node> {
    Ok(match lit {
        Literal::Bool(b) => Node::Const(Value::Bool(*b)),
        Literal::Int(i) => Node::Const(Value::from(*i)),
        Literal::Double(d) => Node::Const(
            serde_json::Number::from_f64(*d)
                .map(Value::Number)
                .ok_or_else(|| compile_err("non-finite number"))?,
        ),
        Literal::Str(s) => Node::Const(Value::String(s.clone())),
        Literal::Date { year, month, day } => {
            Node::Time(time::date_ms(i64::from(*year), *month, *day))
        }
    })
}

fn param(position: u32, up: u32) -> Result<Node> {
    if position != 1 {
        return Err(compile_err(format!(
            "`${position}` is not bound: a profile expression has one input"
        )));
    }
    Ok(Node::Scope(up as usize))
}

fn builtin(name: &str) -> Option<Builtin> {
    Some(match name {
        "startsWith" => Builtin::StartsWith,
        "doesNotStartWith" => Builtin::DoesNotStartWith,
        "endsWith" => Builtin::EndsWith,
        "doesNotEndWith" => Builtin::DoesNotEndWith,
        "contains" => Builtin::Contains,
        "doesNotContain" => Builtin::DoesNotContain,
        "equals" => Builtin::Equals,
        "notEqualTo" => Builtin::NotEqualTo,
        "intersects" => Builtin::Intersects,
        "intersection" => Builtin::Intersection,
        "subsetOf" => Builtin::SubsetOf,
        "supersetOf" => Builtin::SupersetOf,
        "includes" => Builtin::Includes,
        "distinct" => Builtin::Distinct,
        "head" => Builtin::Head,
        "count" => Builtin::Count,
        "get" => Builtin::Get,
        "keys" => Builtin::Keys,
        "values" => Builtin::Values,
        "mapEntry" => Builtin::MapEntry,
        "isNull" => Builtin::IsNull,
        "isNotNull" => Builtin::IsNotNull,
        "getMonth" => Builtin::GetMonth,
        "getYear" => Builtin::GetYear,
        "getDayOfMonth" => Builtin::GetDayOfMonth,
        "currentMonth" => Builtin::CurrentMonth,
        "currentYear" => Builtin::CurrentYear,
        "currentDayOfMonth" => Builtin::CurrentDayOfMonth,
        _ => return None,
    })
}
