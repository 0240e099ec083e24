//! Property filters of the experience-event lookup (`property=web.webPageDetails.isHomepage=false`).
//!
//! What lives here: parsing one filter (`path op value`, ops `= != < <= > >=`) and evaluating
//! it against an event's XDM. What does not: query-string handling (server) and the scan that
//! applies filters while it pages (`event_query`).
//!
//! A literal is read once into every interpretation it admits, and the field's JSON type picks
//! the one used, so `20200720` can compare with a number field and with a timestamp string:
//! - number: unquoted text that parses as a finite number; compared with JSON numbers;
//! - boolean: unquoted `true`/`false`; compared with JSON booleans (`=`/`!=` only);
//! - date: `yyyy-mm-dd` or `yyyymmdd`, quoted or not; compared with the calendar date a string
//!   field starts with (`2020-07-20T10:00:00-07:00` is on 2020-07-20, its offset ignored:
//!   the date written in the event is what a reader of the event sees);
//! - string: the text itself (quotes removed); compared byte-wise with string fields.
//!
//! A missing field, `null`, an object, or a value of a type the literal has no interpretation
//! for never satisfies `= < <= > >=`; `!=` holds for any present value that is not equal. Arrays
//! on the path match when any element does.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// At most this many `property` filters per request (AEP's documented limit).
pub const MAX_PROPERTY_FILTERS: usize = 3;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Operator {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Operator::Eq => ordering == Ordering::Equal,
            Operator::Ne => ordering != Ordering::Equal,
            Operator::Lt => ordering == Ordering::Less,
            Operator::Le => ordering != Ordering::Greater,
            Operator::Gt => ordering == Ordering::Greater,
            Operator::Ge => ordering != Ordering::Less,
        }
    }

    fn is_ordering(self) -> bool {
        !matches!(self, Operator::Eq | Operator::Ne)
    }
}

/// A calendar date, ordered as written.
type Date = (u16, u8, u8);

/// The right-hand side of a filter in each interpretation it admits.
#[derive(Debug, Clone, PartialEq)]
struct Literal {
    text: String,
    number: Option<f64>,
    boolean: Option<bool>,
    date: Option<Date>,
}

/// One parsed `property` filter.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyFilter {
    path: Vec<String>,
    operator: Operator,
    literal: Literal,
}

impl PropertyFilter {
    /// Parses `path op value` as sent in one `property` query parameter (already URL-decoded).
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: &'static str| Error::InvalidFilter {
            filter: text.to_owned(),
            reason,
        };
        let Some(at) = text.find(['=', '!', '<', '>']) else {
            return Err(invalid("no operator (one of = != < <= > >=)"));
        };
        let (path_text, rest) = text.split_at(at);
        let (operator, value) = if let Some(value) = rest.strip_prefix("!=") {
            (Operator::Ne, value)
        } else if let Some(value) = rest.strip_prefix("<=") {
            (Operator::Le, value)
        } else if let Some(value) = rest.strip_prefix(">=") {
            (Operator::Ge, value)
        } else if let Some(value) = rest.strip_prefix('<') {
            (Operator::Lt, value)
        } else if let Some(value) = rest.strip_prefix('>') {
            (Operator::Gt, value)
        } else if let Some(value) = rest.strip_prefix('=') {
            (Operator::Eq, value)
        } else {
            return Err(invalid("no operator (one of = != < <= > >=)"));
        };
        let path: Vec<String> = path_text.trim().split('.').map(str::to_owned).collect();
        if path.iter().any(|segment| segment.is_empty()) {
            return Err(invalid(
                "the property path is empty or has an empty segment",
            ));
        }
        let literal = parse_literal(value.trim()).map_err(invalid)?;
        let only_boolean = literal.boolean.is_some();
        if operator.is_ordering() && only_boolean {
            return Err(invalid("true and false only compare with = and !="));
        }
        Ok(Self {
            path,
            operator,
            literal,
        })
    }

    /// Whether `event` satisfies the filter.
    pub fn matches(&self, event: &Map<String, Value>) -> bool {
        let Some((first, rest)) = self.path.split_first() else {
            return false;
        };
        let mut found = Vec::new();
        if let Some(value) = event.get(first) {
            collect(value, rest, &mut found);
        }
        found.into_iter().any(|value| match self.compare(value) {
            Some(ordering) => self.operator.holds(ordering),
            None => self.operator == Operator::Ne && !value.is_null(),
        })
    }

    /// `value` compared with the literal, or `None` when they do not compare.
    fn compare(&self, value: &Value) -> Option<Ordering> {
        match value {
            Value::Number(number) => number.as_f64()?.partial_cmp(&self.literal.number?),
            Value::Bool(flag) => Some(flag.cmp(&self.literal.boolean?)),
            Value::String(text) => match (self.literal.date, date_prefix(text)) {
                (Some(literal), Some(field)) => Some(field.cmp(&literal)),
                _ => Some(text.as_str().cmp(self.literal.text.as_str())),
            },
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }
}

/// Parses the `property` parameters of one request, refusing more than
/// [`MAX_PROPERTY_FILTERS`].
pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<PropertyFilter>> {
    if texts.len() > MAX_PROPERTY_FILTERS {
        return Err(Error::TooManyFilters {
            count: texts.len(),
            max: MAX_PROPERTY_FILTERS,
        });
    }
    texts
        .iter()
        .map(|text| PropertyFilter::parse(text.as_ref()))
        .collect()
}

/// Every value at `path` below `value`, fanning out over arrays.
fn collect<'a>(value: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    if let Value::Array(items) = value {
        for item in items {
            collect(item, path, out);
        }
        return;
    }
    let Some((first, rest)) = path.split_first() else {
        out.push(value);
        return;
    };
    if let Some(next) = value.as_object().and_then(|object| object.get(first)) {
        collect(next, rest, out);
    }
}

fn parse_literal(raw: &str) -> std::result::Result<Literal, &'static str> {
    if raw.is_empty() {
        return Err("the value is empty");
    }
    let quoted = raw
        .strip_prefix('"')
        .map(|inner| inner.strip_suffix('"').ok_or("unterminated quote"))
        .or_else(|| {
            raw.strip_prefix('\'')
                .map(|inner| inner.strip_suffix('\'').ok_or("unterminated quote"))
        })
        .transpose()?;
    let text = quoted.unwrap_or(raw);
    let bare = quoted.is_none();
    let number = if bare && looks_numeric(text) {
        text.parse::<f64>().ok().filter(|n| n.is_finite())
    } else {
        None
    };
    let boolean = match text {
        "true" if bare => Some(true),
        "false" if bare => Some(false),
        _ => None,
    };
    Ok(Literal {
        text: text.to_owned(),
        number,
        boolean,
        date: parse_date(text),
    })
}

/// Keeps `inf`, `NaN` and the like out: only what a JSON number could look like parses.
fn looks_numeric(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
}

/// `yyyy-mm-dd` or `yyyymmdd`, a real calendar date.
fn parse_date(text: &str) -> Option<Date> {
    let digits: String = match text.len() {
        10 if text.as_bytes().get(4) == Some(&b'-') && text.as_bytes().get(7) == Some(&b'-') => {
            text.chars().filter(|c| *c != '-').collect()
        }
        8 => text.to_owned(),
        _ => return None,
    };
    if digits.len() != 8 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let year: u16 = digits.get(0..4)?.parse().ok()?;
    let month: u8 = digits.get(4..6)?.parse().ok()?;
    let day: u8 = digits.get(6..8)?.parse().ok()?;
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days).contains(&day).then_some((year, month, day))
}

/// The date a timestamp string starts with (`2020-07-20`, `2020-07-20T…`, `2020-07-20 …`).
fn date_prefix(text: &str) -> Option<Date> {
    let head = text.get(0..10)?;
    match text.as_bytes().get(10) {
        None | Some(b'T' | b't' | b' ') => parse_date(head).filter(|_| head.contains('-')),
        Some(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event() -> Map<String, Value> {
        match json!({
            "web": {"webPageDetails": {"isHomepage": false, "name": "home", "pageViews": {"value": 3}}},
            "placeContext": {"localTime": "2020-07-20T22:30:00-07:00"},
            "productListItems": [{"SKU": "a-1", "quantity": 2}, {"SKU": "b-2", "quantity": 5}],
            "nothing": null,
        }) {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn holds(filter: &str) -> bool {
        PropertyFilter::parse(filter).unwrap().matches(&event())
    }

    #[test]
    fn every_operator_on_numbers() {
        let path = "web.webPageDetails.pageViews.value";
        for (op, expected) in [
            ("=", false),
            ("!=", true),
            ("<", true),
            ("<=", true),
            (">", false),
            (">=", false),
        ] {
            assert_eq!(holds(&format!("{path}{op}4")), expected, "{op}");
        }
        assert!(holds(&format!("{path}=3")));
        assert!(holds(&format!("{path} >= 3.0")));
    }

    #[test]
    fn booleans_compare_by_equality_only() {
        assert!(holds("web.webPageDetails.isHomepage=false"));
        assert!(!holds("web.webPageDetails.isHomepage=true"));
        assert!(holds("web.webPageDetails.isHomepage!=true"));
        assert!(matches!(
            PropertyFilter::parse("web.webPageDetails.isHomepage<true"),
            Err(Error::InvalidFilter { .. })
        ));
    }

    #[test]
    fn dates_compare_with_the_date_a_timestamp_is_written_on() {
        assert!(holds("placeContext.localTime<=\"2020-07-20\""));
        assert!(holds("placeContext.localTime=20200720"));
        assert!(holds("placeContext.localTime>\"2020-07-19\""));
        assert!(!holds("placeContext.localTime<\"2020-07-20\""));
        assert!(!holds("placeContext.localTime>=2020-07-21"));
    }

    #[test]
    fn strings_quoted_or_bare() {
        assert!(holds("web.webPageDetails.name=home"));
        assert!(holds("web.webPageDetails.name=\"home\""));
        assert!(holds("web.webPageDetails.name>\"ho\""));
        assert!(!holds("web.webPageDetails.name=\"3\""));
    }

    #[test]
    fn arrays_match_when_any_element_does() {
        assert!(holds("productListItems.SKU=b-2"));
        assert!(holds("productListItems.quantity>4"));
        assert!(!holds("productListItems.quantity>5"));
    }

    #[test]
    fn missing_and_null_fields_only_never_match() {
        assert!(!holds("web.absent=1"));
        assert!(!holds("web.absent!=1"));
        assert!(!holds("nothing=1"));
        assert!(!holds("nothing!=1"));
        // A present value of another type is not equal.
        assert!(holds("web.webPageDetails.name!=4"));
        assert!(!holds("web.webPageDetails.name<4"));
    }

    #[test]
    fn malformed_filters_are_refused() {
        for bad in [
            "",
            "web.webPageDetails.name",
            "=home",
            "web..name=x",
            "web.name=",
            "web.name=\"open",
            "web.name=?x",
        ] {
            let parsed = PropertyFilter::parse(bad);
            if bad == "web.name=?x" {
                // `?x` is an ordinary bare string.
                assert!(parsed.is_ok());
                continue;
            }
            assert!(
                matches!(parsed, Err(Error::InvalidFilter { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn at_most_three_filters() {
        assert_eq!(parse_all(&["a=1", "b=2", "c=3"]).unwrap().len(), 3);
        assert!(matches!(
            parse_all(&["a=1", "b=2", "c=3", "d=4"]),
            Err(Error::TooManyFilters { count: 4, max: 3 })
        ));
    }

    #[test]
    fn literal_interpretations() {
        let bare = parse_literal("20200720").unwrap();
        assert_eq!(bare.number, Some(20_200_720.0));
        assert_eq!(bare.date, Some((2020, 7, 20)));
        let quoted = parse_literal("\"20200720\"").unwrap();
        assert_eq!(quoted.number, None);
        assert_eq!(quoted.date, Some((2020, 7, 20)));
        assert_eq!(parse_literal("inf").unwrap().number, None);
        assert_eq!(parse_date("2021-02-29"), None);
        assert_eq!(parse_date("2024-02-29"), Some((2024, 2, 29)));
        assert_eq!(date_prefix("2020-07-20T01:00:00Z"), Some((2020, 7, 20)));
        assert_eq!(date_prefix("20200720T01"), None);
    }
}
