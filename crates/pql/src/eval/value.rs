//! Runtime values: borrowed views into the profile, its events and the program's constants,
//! so that evaluation does not copy the profile.
//!
//! `Null` is the third truth value: comparisons and boolean operators propagate it as the docs
//! require (`and`/`or` are Kleene), and a segment qualifies only on a definite `true`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::rc::Rc;

use serde_json::Value;

use super::Event;
use crate::time;

/// A value during evaluation.
#[derive(Debug, Clone)]
pub enum Val<'a> {
    /// Missing or null; also "unknown" in three-valued logic.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A double.
    Num(f64),
    /// A string, borrowed when it comes from the profile or a constant.
    Str(Cow<'a, str>),
    /// Epoch milliseconds, UTC.
    Time(i64),
    /// A borrowed JSON object or array (scalars are always converted).
    Json(&'a Value),
    /// The profile itself (its fields plus `xEvent`).
    Root,
    /// One experience event.
    Event(&'a Event),
    /// The profile's events, sorted by time.
    Events(&'a [Event]),
    /// A computed array.
    List(Rc<Vec<Val<'a>>>),
    /// A computed map (`groupBy`, `mapEntry`), keys in insertion order.
    Map(Rc<Vec<(String, Val<'a>)>>),
}

impl<'a> Val<'a> {
    /// Views a JSON value.
    pub fn from_json(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Val::Int(i),
                None => n.as_f64().map_or(Val::Null, Val::Num),
            },
            Value::String(s) => Val::Str(Cow::Borrowed(s)),
            Value::Array(_) | Value::Object(_) => Val::Json(v),
        }
    }

    /// A computed list.
    pub fn list(items: Vec<Val<'a>>) -> Val<'a> {
        Val::List(Rc::new(items))
    }

    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// The elements, if this is an array.
    pub fn items(&self) -> Option<Items<'a>> {
        match self {
            Val::Json(Value::Array(a)) => Some(Items::Json(a.iter())),
            Val::Events(e) => Some(Items::Events(e.iter())),
            Val::List(l) => Some(Items::List(Rc::clone(l), 0)),
            _ => None,
        }
    }

    /// Whether this is an array.
    pub fn is_array(&self) -> bool {
        matches!(
            self,
            Val::Json(Value::Array(_)) | Val::Events(_) | Val::List(_)
        )
    }

    /// As a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Num(f) => Some(*f),
            _ => None,
        }
    }

    /// As a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// As an instant: a time, or a string holding an RFC 3339 timestamp or a date.
    pub fn as_time(&self) -> Option<i64> {
        match self {
            Val::Time(t) => Some(*t),
            Val::Str(s) => time::parse_timestamp(s),
            _ => None,
        }
    }

    /// The truth value: `Some(b)` for booleans, `None` (unknown) for anything else.
    pub fn truth(&self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A map key for this value (`groupBy`, `mapEntry`).
    pub fn key_string(&self) -> Option<String> {
        match self {
            Val::Null => None,
            Val::Str(s) => Some(s.to_string()),
            Val::Time(t) => Some(time::format_timestamp(*t)),
            other => Some(other.to_json().to_string()),
        }
    }

    /// Converts to JSON (the result of an evaluation). Times become RFC 3339 strings.
    pub fn to_json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(*b),
            Val::Int(i) => Value::from(*i),
            Val::Num(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Val::Str(s) => Value::String(s.to_string()),
            Val::Time(t) => Value::String(time::format_timestamp(*t)),
            Val::Json(v) => (*v).clone(),
            Val::Root => Value::String("<profile>".to_owned()),
            Val::Event(e) => e.doc.clone(),
            Val::Events(es) => Value::Array(es.iter().map(|e| e.doc.clone()).collect()),
            Val::List(items) => Value::Array(items.iter().map(Val::to_json).collect()),
            Val::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Iterator over the elements of an array value.
pub enum Items<'a> {
    /// Elements of a JSON array.
    Json(std::slice::Iter<'a, Value>),
    /// The profile's events.
    Events(std::slice::Iter<'a, Event>),
    /// A computed list and the next index.
    List(Rc<Vec<Val<'a>>>, usize),
}

impl<'a> Iterator for Items<'a> {
    type Item = Val<'a>;

    fn next(&mut self) -> Option<Val<'a>> {
        match self {
            Items::Json(it) => it.next().map(Val::from_json),
            Items::Events(it) => it.next().map(Val::Event),
            Items::List(list, i) => {
                let v = list.get(*i)?.clone();
                *i += 1;
                Some(v)
            }
        }
    }
}

/// Ordering of two scalars of comparable kinds; `None` when either is null or the kinds differ.
pub fn compare(a: &Val<'_>, b: &Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        (Val::Int(_) | Val::Num(_), Val::Int(_) | Val::Num(_)) => {
            a.as_f64()?.partial_cmp(&b.as_f64()?)
        }
        (Val::Str(x), Val::Str(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Time(x), Val::Time(y)) => Some(x.cmp(y)),
        (Val::Time(_), Val::Str(_)) | (Val::Str(_), Val::Time(_)) => {
            Some(a.as_time()?.cmp(&b.as_time()?))
        }
        _ => None,
    }
}

/// Equality; `None` when either side is null. Arrays compare as sets (the docs compare an
/// `intersection` with a literal list); other mismatched kinds are unequal.
pub fn equals(a: &Val<'_>, b: &Val<'_>) -> Option<bool> {
    if a.is_null() || b.is_null() {
        return None;
    }
    if let (Some(xs), Some(ys)) = (a.items(), b.items()) {
        let xs: Vec<Val<'_>> = xs.collect();
        let ys: Vec<Val<'_>> = ys.collect();
        let within = |from: &[Val<'_>], to: &[Val<'_>]| {
            from.iter()
                .all(|x| to.iter().any(|y| equals(x, y) == Some(true)))
        };
        return Some(within(&xs, &ys) && within(&ys, &xs));
    }
    if let Some(ord) = compare(a, b) {
        return Some(ord == Ordering::Equal);
    }
    Some(a.to_json() == b.to_json() && !matches!(a, Val::Int(_) | Val::Num(_) | Val::Str(_)))
}

/// Total order used for sorting (`topN`, `min`, `max`): nulls last, mismatched kinds by kind.
pub fn sort_order(a: &Val<'_>, b: &Val<'_>) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => compare(a, b).unwrap_or_else(|| kind_rank(a).cmp(&kind_rank(b))),
    }
}

fn kind_rank(v: &Val<'_>) -> u8 {
    match v {
        Val::Null => 0,
        Val::Bool(_) => 1,
        Val::Int(_) | Val::Num(_) => 2,
        Val::Time(_) => 3,
        Val::Str(_) => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_across_int_and_double() {
        assert_eq!(compare(&Val::Int(3), &Val::Num(3.0)), Some(Ordering::Equal));
        assert_eq!(equals(&Val::Int(3), &Val::Num(3.5)), Some(false));
        assert_eq!(equals(&Val::Null, &Val::Int(1)), None);
        assert_eq!(equals(&Val::Str("1".into()), &Val::Int(1)), Some(false));
    }

    #[test]
    fn arrays_compare_as_sets() {
        let a = Val::list(vec![Val::Str("red".into()), Val::Str("blue".into())]);
        let b = Val::list(vec![Val::Str("blue".into()), Val::Str("red".into())]);
        assert_eq!(equals(&a, &b), Some(true));
    }
}
