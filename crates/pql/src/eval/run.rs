//! The evaluator: runs a compiled [`Node`] tree on one profile.
//!
//! Evaluation is total: a type mismatch or a missing field yields `Null` (unknown), never a
//! panic or an error, because profiles are schemaless at this point and one odd profile must
//! not fail a batch job. Syntax and catalogue errors were caught when parsing.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::rc::Rc;

use serde_json::Value;

use super::compile::{Arith, Builtin, CSpec, CTime, ElemArg, Node, PerElement};
use super::like_regex;
use super::value::{compare, equals, sort_order, Val};
use super::{Event, SegmentMembership};
use crate::ast::{CmpOp, Direction};
use crate::time::{self, Span};

/// Evaluation state for one profile.
pub struct Env<'a> {
    pub profile: &'a Value,
    pub events: &'a [Event],
    pub now: i64,
    pub segments: &'a dyn SegmentMembership,
    /// Implicit-input stack: the profile at the bottom, filter elements above.
    pub scopes: Vec<Val<'a>>,
    /// Variable slots.
    pub vars: Vec<Val<'a>>,
}

/// Truth of a condition: a boolean, or an array meaning "is not empty" (the docs use
/// `xEvent[productListItems[SKU = "PS"]]` for "events with at least one such item").
pub fn condition(v: &Val<'_>) -> Option<bool> {
    match v {
        Val::Bool(b) => Some(*b),
        Val::Events(e) => Some(!e.is_empty()),
        Val::Json(Value::Array(a)) => Some(!a.is_empty()),
        Val::List(l) => Some(!l.is_empty()),
        _ => None,
    }
}

/// The instants an `occurs` accepts.
#[derive(Debug, Clone, Copy)]
pub enum Window {
    /// `[lo, hi)`.
    Range(i64, i64),
    /// Everything but `[lo, hi)` (`occurs != ...`).
    Outside(i64, i64),
    /// A reference time was null.
    Unknown,
}

impl Window {
    fn contains(self, ts: i64) -> Option<bool> {
        match self {
            Window::Range(lo, hi) => Some(lo <= ts && ts < hi),
            Window::Outside(lo, hi) => Some(!(lo <= ts && ts < hi)),
            Window::Unknown => None,
        }
    }

    /// Index range of `events` (sorted by timestamp) that can lie in this window.
    fn slice(self, events: &[Event]) -> (usize, usize) {
        match self {
            Window::Range(lo, hi) => {
                let key = |e: &Event| e.timestamp.unwrap_or(i64::MIN);
                (
                    events.partition_point(|e| key(e) < lo),
                    events.partition_point(|e| key(e) < hi),
                )
            }
            _ => (0, events.len()),
        }
    }
}

fn boolean<'a>(b: Option<bool>) -> Val<'a> {
    b.map_or(Val::Null, Val::Bool)
}

impl<'a> Env<'a> {
    fn field(&self, object: &Val<'a>, name: &str) -> Val<'a> {
        match object {
            Val::Root => {
                if name == "xEvent" {
                    Val::Events(self.events)
                } else {
                    self.profile.get(name).map_or(Val::Null, Val::from_json)
                }
            }
            Val::Json(Value::Object(m)) => m.get(name).map_or(Val::Null, Val::from_json),
            Val::Event(e) => match e.timestamp {
                Some(ts) if name == "timestamp" => Val::Time(ts),
                _ => e.doc.get(name).map_or(Val::Null, Val::from_json),
            },
            Val::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == name)
                .map_or(Val::Null, |(_, v)| v.clone()),
            other => match other.items() {
                // Looking a field up on an array projects it over the elements (documented:
                // `person.orders.storeId`); nested arrays are flattened one level.
                Some(items) => {
                    let mut out = Vec::new();
                    for item in items {
                        let v = self.field(&item, name);
                        match v.items() {
                            Some(inner) => out.extend(inner.filter(|x| !x.is_null())),
                            None if v.is_null() => {}
                            None => out.push(v),
                        }
                    }
                    Val::list(out)
                }
                None => Val::Null,
            },
        }
    }

    fn scoped(&mut self, element: Val<'a>, node: &'a Node) -> Val<'a> {
        self.scopes.push(element);
        let v = self.eval(node);
        self.scopes.pop();
        v
    }

    /// Evaluates a node. The hot, small cases are handled here; everything else is in
    /// [`Self::eval_rest`], kept out of line so this frame stays small (deeply recursive,
    /// called once per node per element).
    pub fn eval(&mut self, node: &'a Node) -> Val<'a> {
        match node {
            Node::Const(v) => Val::from_json(v),
            Node::Scope(0) => self.scopes.last().cloned().unwrap_or(Val::Null),
            Node::Var(slot) => self.vars.get(*slot).cloned().unwrap_or(Val::Null),
            Node::ScopeField(name) => match self.scopes.last() {
                Some(Val::Event(e)) => match e.timestamp {
                    Some(ts) if name == "timestamp" => Val::Time(ts),
                    _ => e.doc.get(name).map_or(Val::Null, Val::from_json),
                },
                Some(Val::Json(Value::Object(m))) => m.get(name).map_or(Val::Null, Val::from_json),
                Some(other) => {
                    let o = other.clone();
                    self.field(&o, name)
                }
                None => Val::Null,
            },
            Node::Field(object, name) => {
                let o = self.eval(object);
                self.field(&o, name)
            }
            Node::Cmp(op, a, b) => {
                let left = self.eval(a);
                // Comparing with a string constant (`eventType = "..."`) skips building a value.
                if let (Val::Str(x), Node::Const(Value::String(y))) = (&left, &**b) {
                    let ord = x.as_ref().cmp(y.as_str());
                    return Val::Bool(ordering_holds(*op, ord));
                }
                let right = self.eval(b);
                cmp_op(*op, &left, &right)
            }
            Node::And(a, b) => match self.eval(a).truth() {
                Some(false) => Val::Bool(false),
                left => match (left, self.eval(b).truth()) {
                    (_, Some(false)) => Val::Bool(false),
                    (Some(true), Some(true)) => Val::Bool(true),
                    _ => Val::Null,
                },
            },
            Node::Or(a, b) => match self.eval(a).truth() {
                Some(true) => Val::Bool(true),
                left => match (left, self.eval(b).truth()) {
                    (_, Some(true)) => Val::Bool(true),
                    (Some(false), Some(false)) => Val::Bool(false),
                    _ => Val::Null,
                },
            },
            Node::Occurs(ts, spec) => match self.eval(ts) {
                Val::Time(t) => boolean(self.occurs(t, spec)),
                other => self.occurs_value(&other, spec),
            },
            _ => self.eval_rest(node),
        }
    }

    fn occurs_value(&mut self, v: &Val<'a>, spec: &'a CSpec) -> Val<'a> {
        match v.items() {
            Some(items) => {
                let mut any = false;
                for item in items {
                    if let Some(t) = item.as_time() {
                        any |= self.occurs(t, spec) == Some(true);
                    }
                }
                Val::Bool(any)
            }
            None => match v.as_time() {
                Some(t) => boolean(self.occurs(t, spec)),
                None => Val::Null,
            },
        }
    }

    /// The other node kinds: a dispatcher too, the larger cases in their own functions.
    #[inline(never)]
    fn eval_rest(&mut self, node: &'a Node) -> Val<'a> {
        match node {
            Node::Const(_)
            | Node::ScopeField(_)
            | Node::Var(_)
            | Node::Field(..)
            | Node::Cmp(..)
            | Node::And(..)
            | Node::Or(..) => self.eval(node),
            Node::Time(ms) => Val::Time(*ms),
            Node::Array(items) => self.array(items),
            Node::Object(fields) => self.object(fields),
            Node::Scope(up) => self
                .scopes
                .len()
                .checked_sub(1 + up)
                .and_then(|i| self.scopes.get(i))
                .cloned()
                .unwrap_or(Val::Null),
            Node::Arith(op, a, b) => {
                let (a, b) = (self.eval(a), self.eval(b));
                arith(*op, &a, &b)
            }
            Node::Neg(a) => match self.eval(a) {
                Val::Int(i) => i.checked_neg().map_or(Val::Null, Val::Int),
                Val::Num(f) => Val::Num(-f),
                _ => Val::Null,
            },
            Node::Not(a) => boolean(self.eval(a).truth().map(|b| !b)),
            Node::In {
                value,
                list,
                negated,
            } => self.membership(value, list, *negated),
            Node::Regex(text, re) => match self.eval(text) {
                Val::Str(s) => Val::Bool(re.is_match(&s)),
                _ => Val::Null,
            },
            Node::LikeDyn(text, pattern) => self.dynamic_regex(text, pattern, true),
            Node::MatchesDyn(text, pattern) => self.dynamic_regex(text, pattern, false),
            Node::RegexGroup {
                text,
                regex,
                pattern,
                group,
            } => self.regex_group(text, regex.as_ref(), pattern, group),
            Node::Call(b, args) => self.builtin(*b, args),
            Node::PerElement {
                func,
                receiver,
                arg,
                extra,
            } => self.per_element(*func, receiver, arg, extra.as_deref()),
            Node::If(c, a, b) => {
                if self.eval(c).truth() == Some(true) {
                    self.eval(a)
                } else {
                    self.eval(b)
                }
            }
            Node::InSegment(id) => match self.eval(id) {
                Val::Str(s) => Val::Bool(self.segments.is_member(&s)),
                _ => Val::Null,
            },
            Node::Filter { .. } => self.filter(node),
            Node::CountFilter(filter) => self.count_filter(filter),
            Node::Let { slot, value, body } => {
                let v = self.eval(value);
                self.set(*slot, v);
                self.eval(body)
            }
            Node::Quant { forall, bindings } => Val::Bool(self.quantify(*forall, bindings)),
            Node::SumOver {
                slot,
                value,
                source,
                cond,
            } => self.sum_over(*slot, value, source, cond.as_deref()),
            Node::Occurs(ts, spec) => {
                let v = self.eval(ts);
                self.occurs_value(&v, spec)
            }
            Node::Chain {
                events,
                timestamp,
                steps,
            } => self.chain(events, timestamp, steps),
        }
    }

    fn array(&mut self, items: &'a [Node]) -> Val<'a> {
        Val::list(items.iter().map(|n| self.eval(n)).collect())
    }

    fn object(&mut self, fields: &'a [(String, Node)]) -> Val<'a> {
        Val::Map(Rc::new(
            fields
                .iter()
                .map(|(k, n)| (k.clone(), self.eval(n)))
                .collect(),
        ))
    }

    fn membership(&mut self, value: &'a Node, list: &'a Node, negated: bool) -> Val<'a> {
        let (v, l) = (self.eval(value), self.eval(list));
        // Both `in` and `notIn` are false when either side is null (documented: notIn is not
        // the exact negation of in).
        let Some(mut items) = l.items().filter(|_| !v.is_null()) else {
            return Val::Bool(false);
        };
        let found = items.any(|item| equals(&v, &item) == Some(true));
        Val::Bool(found != negated)
    }

    fn dynamic_regex(&mut self, text: &'a Node, pattern: &'a Node, like: bool) -> Val<'a> {
        let (t, p) = (self.eval(text), self.eval(pattern));
        let re = p.as_str().and_then(|p| {
            if like {
                like_regex(p).ok()
            } else {
                regex::Regex::new(p).ok()
            }
        });
        match (t.as_str(), re) {
            (Some(t), Some(re)) => Val::Bool(re.is_match(t)),
            _ => Val::Null,
        }
    }

    fn regex_group(
        &mut self,
        text: &'a Node,
        regex: Option<&'a regex::Regex>,
        pattern: &'a Node,
        group: &'a Node,
    ) -> Val<'a> {
        let t = self.eval(text);
        let g = self.eval(group);
        let dynamic;
        let re = match regex {
            Some(re) => re,
            None => match self.eval(pattern).as_str().map(regex::Regex::new) {
                Some(Ok(re)) => {
                    dynamic = re;
                    &dynamic
                }
                _ => return Val::Null,
            },
        };
        match (t.as_str(), g) {
            (Some(t), Val::Int(g)) => usize::try_from(g)
                .ok()
                .and_then(|g| re.captures(t)?.get(g))
                .map_or(Val::Null, |m| Val::Str(Cow::Owned(m.as_str().to_owned()))),
            _ => Val::Null,
        }
    }

    fn filter(&mut self, node: &'a Node) -> Val<'a> {
        let Node::Filter {
            array,
            cond,
            window,
            rest,
        } = node
        else {
            return Val::Null;
        };
        let mut out = Vec::new();
        let done = self.filter_each(array, cond, window.as_deref(), rest.as_deref(), &mut |v| {
            out.push(v)
        });
        if done {
            Val::list(out)
        } else {
            Val::Null
        }
    }

    fn count_filter(&mut self, filter: &'a Node) -> Val<'a> {
        let Node::Filter {
            array,
            cond,
            window,
            rest,
        } = filter
        else {
            return Val::Null;
        };
        let mut n = 0i64;
        self.filter_each(array, cond, window.as_deref(), rest.as_deref(), &mut |_| {
            n += 1
        });
        Val::Int(n)
    }

    fn sum_over(
        &mut self,
        slot: usize,
        value: &'a Node,
        source: &'a Node,
        cond: Option<&'a Node>,
    ) -> Val<'a> {
        let src = self.eval(source);
        let Some(items) = src.items() else {
            return Val::Int(0);
        };
        let mut acc = Sum::default();
        for item in items {
            self.set(slot, item);
            if let Some(c) = cond {
                if self.eval(c).truth() != Some(true) {
                    continue;
                }
            }
            let v = self.eval(value);
            acc.add(&v);
        }
        acc.total()
    }

    fn chain(
        &mut self,
        events: &'a Node,
        timestamp: &'a [String],
        steps: &'a [super::compile::CStep],
    ) -> Val<'a> {
        let evs = self.eval(events);
        if let (Val::Events(sorted), [field]) = (&evs, timestamp) {
            if field == "timestamp" {
                return Val::Bool(self.chain_sorted(sorted, steps));
            }
        }
        let Some(items) = evs.items() else {
            return Val::Bool(false);
        };
        let mut timed: Vec<(i64, Val<'a>)> = items
            .filter_map(|item| {
                let t = self.timestamp_of(&item, timestamp)?;
                Some((t, item))
            })
            .collect();
        timed.sort_by_key(|(t, _)| *t);
        // Greedy earliest match is complete: steps constrain single events only, so taking
        // the earliest candidate for each step never blocks a later step.
        let mut last: Option<i64> = None;
        let mut pos = 0;
        for step in steps {
            let mut matched = false;
            while let Some((t, item)) = timed.get(pos) {
                pos += 1;
                if last.is_some_and(|l| *t <= l) {
                    continue;
                }
                if let Some(when) = &step.when {
                    if self.occurs(*t, when) != Some(true) {
                        continue;
                    }
                }
                if condition(&self.scoped(item.clone(), &step.what)) == Some(true) {
                    last = Some(*t);
                    matched = true;
                    break;
                }
            }
            if !matched {
                return Val::Bool(false);
            }
        }
        Val::Bool(true)
    }

    /// CHAIN over the profile's sorted events: each step searches only the events inside its
    /// WHEN window and after the previous step's match.
    fn chain_sorted(&mut self, events: &'a [Event], steps: &'a [super::compile::CStep]) -> bool {
        let mut last: Option<i64> = None;
        let mut pos = 0;
        for step in steps {
            let (lo, hi) = match &step.when {
                Some(when) => match self.window(when) {
                    Window::Unknown => return false,
                    w => w.slice(events),
                },
                None => (0, events.len()),
            };
            let mut matched = false;
            let mut i = pos.max(lo);
            while let Some(e) = events.get(i).filter(|_| i < hi) {
                i += 1;
                let Some(t) = e.timestamp else { continue };
                if last.is_some_and(|l| t <= l) {
                    continue;
                }
                if let Some(when) = &step.when {
                    if self.occurs(t, when) != Some(true) {
                        continue;
                    }
                }
                if condition(&self.scoped(Val::Event(e), &step.what)) == Some(true) {
                    last = Some(t);
                    pos = i;
                    matched = true;
                    break;
                }
            }
            if !matched {
                return false;
            }
        }
        true
    }

    /// Calls `keep` with each element of `array` satisfying `cond`; false if `array` is not
    /// an array. On the sorted profile events with a fixed time window, only the events in
    /// the window are visited and only the other conjuncts (`rest`) are evaluated.
    fn filter_each(
        &mut self,
        array: &'a Node,
        cond: &'a Node,
        window: Option<&'a CSpec>,
        rest: Option<&'a Node>,
        keep: &mut dyn FnMut(Val<'a>),
    ) -> bool {
        let arr = self.eval(array);
        if let (Val::Events(events), Some(spec)) = (&arr, window) {
            if let w @ Window::Range(..) = self.window(spec) {
                let (from, to) = w.slice(events);
                let Some(rest) = rest else {
                    // Events without a timestamp sort first and never satisfy the window.
                    for e in events.get(from..to).unwrap_or_default() {
                        if e.timestamp.is_some() {
                            keep(Val::Event(e));
                        }
                    }
                    return true;
                };
                // One scope slot, overwritten per event, instead of a push and pop each.
                self.scopes.push(Val::Null);
                for e in events.get(from..to).unwrap_or_default() {
                    if e.timestamp.is_none() {
                        continue;
                    }
                    if let Some(top) = self.scopes.last_mut() {
                        *top = Val::Event(e);
                    }
                    if condition(&self.eval(rest)) == Some(true) {
                        keep(Val::Event(e));
                    }
                }
                self.scopes.pop();
                return true;
            }
        }
        let Some(items) = arr.items() else {
            return false;
        };
        for item in items {
            if condition(&self.scoped(item.clone(), cond)) == Some(true) {
                keep(item);
            }
        }
        true
    }

    fn set(&mut self, slot: usize, v: Val<'a>) {
        if let Some(s) = self.vars.get_mut(slot) {
            *s = v;
        }
    }

    fn timestamp_of(&self, item: &Val<'a>, path: &[String]) -> Option<i64> {
        if let (Val::Event(e), [only]) = (item, path) {
            if only == "timestamp" && e.timestamp.is_some() {
                return e.timestamp;
            }
        }
        let mut v = item.clone();
        for name in path {
            v = self.field(&v, name);
        }
        v.as_time()
    }

    fn quantify(&mut self, forall: bool, bindings: &'a [super::compile::CBinding]) -> bool {
        let Some((first, rest)) = bindings.split_first() else {
            return true;
        };
        let src = self.eval(&first.source);
        let Some(items) = src.items() else {
            return forall;
        };
        for item in items {
            self.set(first.slot, item);
            let cond = match &first.cond {
                Some(c) => condition(&self.eval(c)) == Some(true),
                None => true,
            };
            let holds = cond && self.quantify(forall, rest);
            if forall && !holds {
                return false;
            }
            if !forall && holds {
                return true;
            }
        }
        forall
    }

    fn span(&mut self, t: &'a CTime) -> Option<Span> {
        match t {
            CTime::Word(w) => time::word_span(w, self.now),
            CTime::Day(ms) => Some(Span {
                start: *ms,
                end: ms + time::DAY_MS,
            }),
            CTime::Instant(node) => match self.eval(node) {
                // A date-only attribute ("1990-06-15", XDM format `date`) is the whole day.
                Val::Str(s) if s.len() == 10 => time::parse_timestamp(&s).map(|start| Span {
                    start,
                    end: start + time::DAY_MS,
                }),
                other => other.as_time().map(Span::instant),
            },
        }
    }

    /// The set of instants satisfying `spec`, as a half-open range (README: "occurs").
    pub fn window(&mut self, spec: &'a CSpec) -> Window {
        let range = |lo: i64, hi: i64| Window::Range(lo, hi);
        match spec {
            CSpec::Compare {
                op,
                amount,
                unit,
                direction,
                time: t,
            } => {
                let Some(span) = self.span(t) else {
                    return Window::Unknown;
                };
                let instant = span.end - span.start == 1;
                let reference = match direction {
                    Direction::Before => time::shift(span.start, *unit, -amount),
                    Direction::After | Direction::From => time::shift(span.start, *unit, *amount),
                };
                let exactly = (reference, time::shift(reference, *unit, 1));
                let after_reference = reference.saturating_add(1);
                match (direction, op) {
                    (_, CmpOp::Eq) => range(exactly.0, exactly.1),
                    (_, CmpOp::Ne) => Window::Outside(exactly.0, exactly.1),
                    (Direction::Before, _) => {
                        // Up to the reference time itself, included only when it is an instant.
                        let upper = if instant { span.end } else { span.start };
                        match op {
                            CmpOp::Lt => range(after_reference, upper),
                            CmpOp::Le => range(reference, upper),
                            CmpOp::Gt => range(i64::MIN, reference),
                            _ => range(i64::MIN, after_reference),
                        }
                    }
                    _ => {
                        let lower = if instant { span.start } else { span.end };
                        match op {
                            CmpOp::Lt => range(lower, reference),
                            CmpOp::Le => range(lower, after_reference),
                            CmpOp::Gt => range(after_reference, i64::MAX),
                            _ => range(reference, i64::MAX),
                        }
                    }
                }
            }
            CSpec::Direction { direction, time: t } => match (self.span(t), direction) {
                (None, _) => Window::Unknown,
                (Some(s), Direction::Before) => range(i64::MIN, s.start),
                (Some(s), Direction::After) => range(s.end, i64::MAX),
                (Some(s), Direction::From) => range(s.start, i64::MAX),
            },
            CSpec::On(t) => match self.span(t) {
                Some(s) => range(s.start, s.end),
                None => Window::Unknown,
            },
            CSpec::Between(a, b) => match (self.span(a), self.span(b)) {
                (Some(a), Some(b)) => range(a.start, b.end),
                _ => Window::Unknown,
            },
        }
    }

    /// Whether instant `ts` satisfies `spec`; `None` when a reference time is null.
    pub fn occurs(&mut self, ts: i64, spec: &'a CSpec) -> Option<bool> {
        self.window(spec).contains(ts)
    }

    fn builtin(&mut self, b: Builtin, args: &'a [Node]) -> Val<'a> {
        let vals: Vec<Val<'a>> = args.iter().map(|a| self.eval(a)).collect();
        let arg = |i: usize| vals.get(i).cloned().unwrap_or(Val::Null);
        use Builtin as B;
        match b {
            B::StartsWith
            | B::DoesNotStartWith
            | B::EndsWith
            | B::DoesNotEndWith
            | B::Contains
            | B::DoesNotContain => {
                let case_sensitive = arg(2).truth().unwrap_or(true);
                let (Some(s), Some(t)) = (
                    arg(0).as_str().map(str::to_owned),
                    arg(1).as_str().map(str::to_owned),
                ) else {
                    return Val::Null;
                };
                let (s, t) = if case_sensitive {
                    (s, t)
                } else {
                    (s.to_lowercase(), t.to_lowercase())
                };
                Val::Bool(match b {
                    B::StartsWith => s.starts_with(&t),
                    B::DoesNotStartWith => !s.starts_with(&t),
                    B::EndsWith => s.ends_with(&t),
                    B::DoesNotEndWith => !s.ends_with(&t),
                    B::Contains => s.contains(&t),
                    _ => !s.contains(&t),
                })
            }
            B::Equals | B::NotEqualTo => {
                let case_sensitive = arg(2).truth().unwrap_or(true);
                let (a, c) = (arg(0), arg(1));
                let eq = match (a.as_str(), c.as_str()) {
                    (Some(x), Some(y)) if !case_sensitive => {
                        Some(x.to_lowercase() == y.to_lowercase())
                    }
                    _ => equals(&a, &c),
                };
                boolean(eq.map(|e| e == (b == B::Equals)))
            }
            B::Intersects | B::Intersection | B::SubsetOf | B::SupersetOf => {
                let (Some(xs), Some(ys)) = (arg(0).items(), arg(1).items()) else {
                    return Val::Null;
                };
                let xs: Vec<Val<'a>> = xs.collect();
                let ys: Vec<Val<'a>> = ys.collect();
                let member =
                    |x: &Val<'a>, set: &[Val<'a>]| set.iter().any(|y| equals(x, y) == Some(true));
                match b {
                    B::Intersects => Val::Bool(xs.iter().any(|x| member(x, &ys))),
                    B::Intersection => {
                        Val::list(dedup(xs.into_iter().filter(|x| member(x, &ys)).collect()))
                    }
                    B::SubsetOf => Val::Bool(xs.iter().all(|x| member(x, &ys))),
                    _ => Val::Bool(ys.iter().all(|y| member(y, &xs))),
                }
            }
            B::Includes => match arg(0).items() {
                Some(mut items) => {
                    let x = arg(1);
                    Val::Bool(items.any(|i| equals(&i, &x) == Some(true)))
                }
                None => Val::Null,
            },
            B::Distinct => match arg(0).items() {
                Some(items) => Val::list(dedup(items.collect())),
                None => Val::Null,
            },
            B::Head => arg(0)
                .items()
                .and_then(|mut i| i.next())
                .unwrap_or(Val::Null),
            B::Count => match arg(0) {
                Val::Events(e) => Val::Int(e.len() as i64),
                Val::Null => Val::Int(0),
                other => match other.items() {
                    Some(items) => Val::Int(items.count() as i64),
                    None => Val::Int(1),
                },
            },
            B::Get => {
                let key = arg(1);
                match key.as_str() {
                    Some(k) => {
                        let k = k.to_owned();
                        self.field(&arg(0), &k)
                    }
                    None => Val::Null,
                }
            }
            B::Keys | B::Values => {
                let keys = b == B::Keys;
                match arg(0) {
                    Val::Json(Value::Object(m)) => Val::list(
                        m.iter()
                            .map(|(k, v)| {
                                if keys {
                                    Val::Str(Cow::Borrowed(k.as_str()))
                                } else {
                                    Val::from_json(v)
                                }
                            })
                            .collect(),
                    ),
                    Val::Map(entries) => Val::list(
                        entries
                            .iter()
                            .map(|(k, v)| {
                                if keys {
                                    Val::Str(Cow::Owned(k.clone()))
                                } else {
                                    v.clone()
                                }
                            })
                            .collect(),
                    ),
                    _ => Val::Null,
                }
            }
            B::MapEntry => match arg(0).key_string() {
                Some(k) => Val::Map(Rc::new(vec![(k, arg(1))])),
                None => Val::Null,
            },
            B::IsNull => Val::Bool(arg(0).is_null()),
            B::IsNotNull => Val::Bool(!arg(0).is_null()),
            B::GetMonth | B::GetYear | B::GetDayOfMonth => match arg(0).as_time() {
                Some(t) => Val::Int(date_part(b, t)),
                None => Val::Null,
            },
            B::CurrentMonth => Val::Int(date_part(B::GetMonth, self.now)),
            B::CurrentYear => Val::Int(date_part(B::GetYear, self.now)),
            B::CurrentDayOfMonth => Val::Int(date_part(B::GetDayOfMonth, self.now)),
        }
    }

    fn elem(&mut self, arg: &'a ElemArg, item: &Val<'a>) -> Val<'a> {
        match arg {
            ElemArg::Identity => item.clone(),
            ElemArg::Scoped(node) => self.scoped(item.clone(), node),
            ElemArg::Lambda(slots, body) => {
                if let Some(slot) = slots.first() {
                    self.set(*slot, item.clone());
                }
                self.eval(body)
            }
        }
    }

    fn per_element(
        &mut self,
        func: PerElement,
        receiver: &'a Node,
        arg: &'a ElemArg,
        extra: Option<&'a Node>,
    ) -> Val<'a> {
        let recv = self.eval(receiver);
        if let (PerElement::Map, Val::Map(entries), ElemArg::Lambda(slots, body)) =
            (func, &recv, arg)
        {
            // `(K, G) => mapEntry(K, ...)` over a map: the entries produced make a new map.
            let mut out: Vec<(String, Val<'a>)> = Vec::new();
            for (k, g) in entries.iter() {
                if let Some(s) = slots.first() {
                    self.set(*s, Val::Str(Cow::Owned(k.clone())));
                }
                if let Some(s) = slots.get(1) {
                    self.set(*s, g.clone());
                }
                match self.eval(body) {
                    Val::Map(produced) => out.extend(produced.iter().cloned()),
                    _ => return Val::Null,
                }
            }
            return Val::Map(Rc::new(out));
        }
        let Some(items) = recv.items() else {
            return match func {
                PerElement::Sum => Val::Int(0),
                _ => Val::Null,
            };
        };
        match func {
            PerElement::Sum | PerElement::Average => {
                let mut acc = Sum::default();
                for item in items {
                    let v = self.elem(arg, &item);
                    acc.add(&v);
                }
                if func == PerElement::Sum {
                    acc.total()
                } else if acc.count == 0 {
                    Val::Null
                } else {
                    Val::Num(acc.float / acc.count as f64)
                }
            }
            PerElement::Min | PerElement::Max => {
                let mut best: Option<Val<'a>> = None;
                for item in items {
                    let v = self.elem(arg, &item);
                    if v.is_null() {
                        continue;
                    }
                    let better = match &best {
                        None => true,
                        Some(b) => {
                            let ord = sort_order(&v, b);
                            if func == PerElement::Min {
                                ord == Ordering::Less
                            } else {
                                ord == Ordering::Greater
                            }
                        }
                    };
                    if better {
                        best = Some(v);
                    }
                }
                best.unwrap_or(Val::Null)
            }
            PerElement::TopN | PerElement::BottomN => {
                let n = match extra.map(|e| self.eval(e)) {
                    Some(Val::Int(n)) => usize::try_from(n).unwrap_or(0),
                    _ => return Val::Null,
                };
                let mut keyed: Vec<(Val<'a>, Val<'a>)> =
                    items.map(|item| (self.elem(arg, &item), item)).collect();
                keyed.sort_by(|(a, _), (b, _)| {
                    if func == PerElement::TopN {
                        // Descending, nulls still last.
                        match (a.is_null(), b.is_null()) {
                            (false, false) => sort_order(b, a),
                            _ => sort_order(a, b),
                        }
                    } else {
                        sort_order(a, b)
                    }
                });
                Val::list(keyed.into_iter().take(n).map(|(_, item)| item).collect())
            }
            PerElement::GroupBy => {
                let mut groups: Vec<(String, Vec<Val<'a>>)> = Vec::new();
                for item in items {
                    let Some(key) = self.elem(arg, &item).key_string() else {
                        continue;
                    };
                    match groups.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, g)) => g.push(item),
                        None => groups.push((key, vec![item])),
                    }
                }
                Val::Map(Rc::new(
                    groups.into_iter().map(|(k, g)| (k, Val::list(g))).collect(),
                ))
            }
            PerElement::Map => Val::list(items.map(|item| self.elem(arg, &item)).collect()),
        }
    }
}

fn date_part(b: Builtin, t: i64) -> i64 {
    let (y, m, d) = time::date_parts(t);
    match b {
        Builtin::GetMonth => i64::from(m),
        Builtin::GetYear => y,
        _ => i64::from(d),
    }
}

fn dedup<'a>(items: Vec<Val<'a>>) -> Vec<Val<'a>> {
    let mut out: Vec<Val<'a>> = Vec::with_capacity(items.len());
    for item in items {
        if !out.iter().any(|o| equals(o, &item) == Some(true)) {
            out.push(item);
        }
    }
    out
}

/// A running sum that stays an integer while every term is one.
#[derive(Default)]
struct Sum {
    int: i64,
    float: f64,
    count: usize,
    is_float: bool,
    overflow: bool,
}

impl Sum {
    fn add(&mut self, v: &Val<'_>) {
        match v {
            Val::Int(i) => {
                match self.int.checked_add(*i) {
                    Some(s) => self.int = s,
                    None => self.overflow = true,
                }
                self.float += *i as f64;
            }
            Val::Num(f) => {
                self.is_float = true;
                self.float += f;
            }
            _ => return,
        }
        self.count += 1;
    }

    fn total<'a>(&self) -> Val<'a> {
        if self.is_float || self.overflow {
            Val::Num(self.float)
        } else {
            Val::Int(self.int)
        }
    }
}

fn ordering_holds(op: CmpOp, ord: Ordering) -> bool {
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

/// A comparison operator on two values. An array on either side means "some element".
pub fn cmp_op<'a>(op: CmpOp, a: &Val<'a>, b: &Val<'a>) -> Val<'a> {
    // Fast path for the common string-to-string and integer comparisons.
    let ord = match (a, b) {
        (Val::Str(x), Val::Str(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        _ => None,
    };
    if let Some(ord) = ord {
        return Val::Bool(ordering_holds(op, ord));
    }
    let both_arrays = a.is_array() && b.is_array();
    if !both_arrays {
        if let Some(items) = a.items() {
            return any_element(items.map(|x| cmp_op(op, &x, b)));
        }
        if let Some(items) = b.items() {
            return any_element(items.map(|y| cmp_op(op, a, &y)));
        }
    }
    let result = match op {
        CmpOp::Eq => equals(a, b),
        CmpOp::Ne => equals(a, b).map(|e| !e),
        _ => {
            if a.is_null() || b.is_null() {
                None
            } else {
                compare(a, b).map(|ord| match op {
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                    CmpOp::Gt => ord == Ordering::Greater,
                    _ => ord != Ordering::Less,
                })
            }
        }
    };
    boolean(result)
}

fn any_element<'a>(results: impl Iterator<Item = Val<'a>>) -> Val<'a> {
    let mut unknown = false;
    for r in results {
        match r.truth() {
            Some(true) => return Val::Bool(true),
            None => unknown = true,
            Some(false) => {}
        }
    }
    if unknown {
        Val::Null
    } else {
        Val::Bool(false)
    }
}

fn arith<'a>(op: Arith, a: &Val<'a>, b: &Val<'a>) -> Val<'a> {
    if let (Val::Int(x), Val::Int(y)) = (a, b) {
        let (x, y) = (*x, *y);
        let r = match op {
            Arith::Add => x.checked_add(y),
            Arith::Sub => x.checked_sub(y),
            Arith::Mul => x.checked_mul(y),
            Arith::Rem => x.checked_rem(y),
            Arith::Div => {
                // Integer division stays integral only when exact: 7 / 2 is 3.5.
                if y != 0 && x.checked_rem(y) == Some(0) {
                    x.checked_div(y)
                } else if y == 0 {
                    return Val::Null;
                } else {
                    return Val::Num(x as f64 / y as f64);
                }
            }
        };
        return r.map_or(Val::Null, Val::Int);
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Val::Null;
    };
    let r = match op {
        Arith::Add => x + y,
        Arith::Sub => x - y,
        Arith::Mul => x * y,
        Arith::Div if y == 0.0 => return Val::Null,
        Arith::Div => x / y,
        Arith::Rem if y == 0.0 => return Val::Null,
        Arith::Rem => x % y,
    };
    if r.is_finite() {
        Val::Num(r)
    } else {
        Val::Null
    }
}
