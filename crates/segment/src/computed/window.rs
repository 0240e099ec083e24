//! The incremental state of one computed attribute for one profile: time buckets, and the
//! arithmetic of lookback windows over them. Pure: no store, no clock.
//!
//! Window semantics (the same for the incremental state and for a from-scratch fold, which
//! is what the property test pins): an event counts at `now` when its bucket lies between the
//! bucket of `now - duration` and the bucket of `now`, both included. Buckets are one hour
//! wide for `HOURS` durations, one UTC day for `DAYS` and `WEEKS`, and one week (Sunday to
//! Saturday, UTC) for `MONTHS`, so a window is "at least the duration, at most one bucket
//! more", like AEP's hourly, daily and weekly refreshes. Because whole
//! buckets enter and leave the window, per-bucket MIN/MAX/MOST_RECENT are exact for these
//! semantics: no multiset is needed. Adding an event is O(log b) (b ≤ 30 buckets within
//! AEP's limits) and expiry drops whole buckets.

use serde::{Deserialize, Serialize};
use serde_json::{json, Number, Value};
use tessera_pql::ast::Unit as PqlUnit;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;

/// The aggregate a computed attribute maintains (`mergeFunction.value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Function {
    /// Sum of a numeric field.
    Sum,
    /// Number of matching events.
    Count,
    /// Smallest value (number or timestamp).
    Min,
    /// Largest value (number or timestamp).
    Max,
    /// Value of the newest matching event, with its timestamp.
    MostRecent,
}

impl Function {
    /// The name AEP shows in `mergeFunction.value`.
    pub fn as_str(self) -> &'static str {
        match self {
            Function::Sum => "SUM",
            Function::Count => "COUNT",
            Function::Min => "MIN",
            Function::Max => "MAX",
            Function::MostRecent => "MOST_RECENT",
        }
    }
}

/// Unit of a lookback `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Unit {
    /// Hours (AEP: 1–24).
    Hours,
    /// Days (AEP: 1–7).
    Days,
    /// Weeks (AEP: 1–4).
    Weeks,
    /// Calendar months (AEP: 1–6).
    Months,
}

/// A lookback `duration {count, unit}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duration {
    /// How many units.
    pub count: u32,
    /// Which unit.
    pub unit: Unit,
}

impl Duration {
    /// Largest `count` AEP accepts for the unit.
    pub fn aep_max(unit: Unit) -> u32 {
        match unit {
            Unit::Hours => 24,
            Unit::Days => 7,
            Unit::Weeks => 4,
            Unit::Months => 6,
        }
    }

    /// Largest `count` Tessera accepts with `allowLargerWindows` (about ten years; bucket
    /// counts stay bounded: hours keep hourly buckets up to 31 days).
    pub fn extended_max(unit: Unit) -> u32 {
        match unit {
            Unit::Hours => 24 * 31,
            Unit::Days => 3_660,
            Unit::Weeks => 522,
            Unit::Months => 120,
        }
    }

    /// Width of one bucket (ms).
    pub fn bucket_ms(&self) -> i64 {
        match self.unit {
            Unit::Hours => HOUR_MS,
            Unit::Days | Unit::Weeks => DAY_MS,
            Unit::Months => WEEK_MS,
        }
    }

    /// Start of the bucket holding `ms`. Week buckets start on Sundays (AEP's calendar
    /// weeks run Sunday to Saturday); 1970-01-04 was one.
    pub fn bucket_of(&self, ms: i64) -> i64 {
        let width = self.bucket_ms();
        let origin = if width == WEEK_MS { 3 * DAY_MS } else { 0 };
        ms.saturating_sub(origin)
            .div_euclid(width)
            .saturating_mul(width)
            .saturating_add(origin)
    }

    /// `now - duration` (calendar months for `MONTHS`).
    pub fn lower(&self, now: i64) -> i64 {
        let count = i64::from(self.count);
        match self.unit {
            Unit::Hours => now.saturating_sub(count.saturating_mul(HOUR_MS)),
            Unit::Days => now.saturating_sub(count.saturating_mul(DAY_MS)),
            Unit::Weeks => now.saturating_sub(count.saturating_mul(7 * DAY_MS)),
            Unit::Months => tessera_pql::time::shift(now, PqlUnit::Month, -count),
        }
    }

    /// First bucket inside the window at `now`.
    pub fn first_bucket(&self, now: i64) -> i64 {
        self.bucket_of(self.lower(now))
    }

    /// Whether an event at `ts` counts at `now`.
    pub fn contains(&self, ts: i64, now: i64) -> bool {
        let bucket = self.bucket_of(ts);
        bucket >= self.first_bucket(now) && bucket <= self.bucket_of(now)
    }
}

/// A value MIN/MAX compare: a number, or a timestamp (ms) shown back as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scalar {
    /// The number, or the timestamp in ms.
    pub n: f64,
    /// Whether `n` is a timestamp.
    pub time: bool,
}

impl Scalar {
    /// A number, or an RFC 3339 string read as a timestamp; anything else is not comparable.
    pub fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => n.as_f64().map(|n| Scalar { n, time: false }),
            Value::String(s) => tessera_pql::time::parse_timestamp(s).map(|ms| Scalar {
                n: ms as f64,
                time: true,
            }),
            _ => None,
        }
    }

    fn to_json(self) -> Value {
        if self.time {
            return Value::String(tessera_pql::time::format_timestamp(self.n as i64));
        }
        number(self.n)
    }
}

/// An integral float as an integer (sums of integers stay integers), otherwise a float.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// The aggregate of one bucket (or of several, folded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Acc {
    /// COUNT.
    Count(u64),
    /// SUM.
    Sum(f64),
    /// MIN.
    Min(Scalar),
    /// MAX.
    Max(Scalar),
    /// MOST_RECENT: event time and the value as JSON text (bincode cannot hold a `Value`).
    Recent(i64, String),
}

impl Acc {
    /// What one event adds, or `None` when it adds nothing (the field is missing or of a
    /// type the function cannot use).
    pub fn of_event(function: Function, ts: i64, value: Option<&Value>) -> Option<Acc> {
        match function {
            Function::Count => Some(Acc::Count(1)),
            Function::Sum => value.and_then(Value::as_f64).map(Acc::Sum),
            Function::Min => value.and_then(Scalar::from_json).map(Acc::Min),
            Function::Max => value.and_then(Scalar::from_json).map(Acc::Max),
            Function::MostRecent => match value {
                None | Some(Value::Null) => None,
                Some(v) => Some(Acc::Recent(ts, v.to_string())),
            },
        }
    }

    /// An event's aggregate ([`Acc::of_event`]) as a value of a digest
    /// (`tessera_ingest::recent::Digester`); [`Acc::from_digest`] reads it back.
    pub fn to_digest(acc: Option<&Acc>) -> Value {
        match acc {
            None => Value::Null,
            Some(Acc::Count(n)) => Value::from(*n),
            // Of one event's number, so finite: `from_f64` refuses only NaN and infinities.
            Some(Acc::Sum(n)) => Number::from_f64(*n).map_or(Value::Null, Value::Number),
            Some(Acc::Min(s) | Acc::Max(s)) => {
                let n = Number::from_f64(s.n).map_or(Value::Null, Value::Number);
                // A timestamp is wrapped, so it reads back as one.
                if s.time {
                    Value::Array(vec![n])
                } else {
                    n
                }
            }
            // Its time is the event's, which the reader knows.
            Some(Acc::Recent(_, text)) => Value::String(text.clone()),
        }
    }

    /// What [`Acc::to_digest`] wrote for an event of `function` at `ts`; `None` when `item`
    /// is not such a value (the reader then reads the event itself).
    pub fn from_digest(function: Function, ts: i64, item: Value) -> Option<Option<Acc>> {
        if item.is_null() {
            return Some(None);
        }
        let scalar = |item: Value| match item {
            Value::Number(n) => n.as_f64().map(|n| Scalar { n, time: false }),
            Value::Array(wrapped) => match wrapped.as_slice() {
                [Value::Number(n)] => n.as_f64().map(|n| Scalar { n, time: true }),
                _ => None,
            },
            _ => None,
        };
        let acc = match function {
            Function::Count => Acc::Count(item.as_u64()?),
            Function::Sum => Acc::Sum(item.as_f64()?),
            Function::Min => Acc::Min(scalar(item)?),
            Function::Max => Acc::Max(scalar(item)?),
            Function::MostRecent => match item {
                Value::String(text) => Acc::Recent(ts, text),
                _ => return None,
            },
        };
        Some(Some(acc))
    }

    /// Combines two aggregates of the same function; `self` wins on a mismatch (which a
    /// state built for one function never holds).
    pub fn merge(&mut self, other: &Acc) {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a = a.saturating_add(*b),
            (Acc::Sum(a), Acc::Sum(b)) => *a += b,
            (Acc::Min(a), Acc::Min(b)) if b.n < a.n => *a = *b,
            (Acc::Max(a), Acc::Max(b)) if b.n > a.n => *a = *b,
            // Ties on time break on the value's text, so the answer never depends on
            // arrival order.
            (Acc::Recent(ta, va), Acc::Recent(tb, vb))
                if (*tb, vb.as_str()) > (*ta, va.as_str()) =>
            {
                *ta = *tb;
                va.clone_from(vb);
            }
            _ => {}
        }
    }

    /// The attribute's value as the profile shows it.
    pub fn to_json(&self) -> Value {
        match self {
            Acc::Count(n) => json!(n),
            Acc::Sum(s) => number(*s),
            Acc::Min(s) | Acc::Max(s) => s.to_json(),
            Acc::Recent(ts, text) => json!({
                "value": serde_json::from_str::<Value>(text).unwrap_or(Value::Null),
                "timestamp": tessera_pql::time::format_timestamp(*ts),
            }),
        }
    }
}

/// The value of an attribute with nothing in its window: SUM and COUNT are 0, the others
/// have no value.
pub fn empty_value(function: Function) -> Option<Value> {
    match function {
        Function::Count | Function::Sum => Some(json!(0)),
        Function::Min | Function::Max | Function::MostRecent => None,
    }
}

/// Buckets of one attribute for one profile, sorted by bucket start. A sorted vector, not a
/// map: at most a few dozen buckets, events arrive mostly in time order (an append), and
/// decoding a vector from the store allocates once where a map allocates per node — the
/// state is decoded on every event, so that is the cost that matters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// (bucket start ms, aggregate), ascending by start, starts unique.
    pub buckets: Vec<(i64, Acc)>,
}

impl Window {
    /// Folds one event into its bucket, unless the bucket already left the window at `now`
    /// (clocks only move forward, so it would never count again); then drops expired buckets.
    pub fn add(
        &mut self,
        function: Function,
        duration: &Duration,
        ts: i64,
        value: Option<&Value>,
        now: i64,
    ) {
        match Acc::of_event(function, ts, value) {
            Some(acc) => self.add_acc(duration, ts, &acc, now),
            None => self.expire_before(duration.first_bucket(now)),
        }
    }

    /// [`Window::add`] of what [`Acc::of_event`] made of an event at `ts`.
    pub fn add_acc(&mut self, duration: &Duration, ts: i64, acc: &Acc, now: i64) {
        let bucket = duration.bucket_of(ts);
        // Once per event, for the fold and the expiry: for MONTHS it is calendar arithmetic.
        let first = duration.first_bucket(now);
        if bucket >= first {
            self.insert(bucket, acc);
        }
        self.expire_before(first);
    }

    fn insert(&mut self, bucket: i64, acc: &Acc) {
        // Newest bucket first: in-order arrivals hit the last element.
        match self.buckets.last_mut() {
            Some((last, existing)) if *last == bucket => existing.merge(acc),
            Some((last, _)) if *last < bucket => self.buckets.push((bucket, acc.clone())),
            None => self.buckets.push((bucket, acc.clone())),
            Some(_) => match self.buckets.binary_search_by_key(&bucket, |(b, _)| *b) {
                Ok(at) => {
                    if let Some((_, existing)) = self.buckets.get_mut(at) {
                        existing.merge(acc);
                    }
                }
                Err(at) => self.buckets.insert(at, (bucket, acc.clone())),
            },
        }
    }

    /// Drops the buckets that left the window at `now`.
    pub fn expire(&mut self, duration: &Duration, now: i64) {
        self.expire_before(duration.first_bucket(now));
    }

    fn expire_before(&mut self, first: i64) {
        let keep_from = self.buckets.partition_point(|(b, _)| *b < first);
        if keep_from > 0 {
            self.buckets.drain(..keep_from);
        }
    }

    /// Merges another state of the same attribute (e.g. a recompute's parts).
    pub fn merge(&mut self, other: &Window) {
        for (bucket, acc) in &other.buckets {
            self.insert(*bucket, acc);
        }
    }

    /// The value at `now`: the fold of the buckets inside the window.
    pub fn value(&self, function: Function, duration: &Duration, now: i64) -> Option<Value> {
        let (first, last) = (duration.first_bucket(now), duration.bucket_of(now));
        let mut folded: Option<Acc> = None;
        for (_, acc) in self
            .buckets
            .iter()
            .skip_while(|(b, _)| *b < first)
            .take_while(|(b, _)| *b <= last)
        {
            match &mut folded {
                Some(f) => f.merge(acc),
                None => folded = Some(acc.clone()),
            }
        }
        match folded {
            Some(acc) => Some(acc.to_json()),
            None => empty_value(function),
        }
    }
}

/// The value at `now` folded from scratch over `(timestamp, value)` events: the reference
/// the incremental state must equal.
pub fn fold_from_scratch(
    function: Function,
    duration: &Duration,
    events: &[(i64, Option<Value>)],
    now: i64,
) -> Option<Value> {
    let mut folded: Option<Acc> = None;
    for (ts, value) in events.iter().filter(|(ts, _)| duration.contains(*ts, now)) {
        if let Some(acc) = Acc::of_event(function, *ts, value.as_ref()) {
            match &mut folded {
                Some(f) => f.merge(&acc),
                None => folded = Some(acc),
            }
        }
    }
    match folded {
        Some(acc) => Some(acc.to_json()),
        None => empty_value(function),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS; // a UTC midnight

    fn days(n: u32) -> Duration {
        Duration {
            count: n,
            unit: Unit::Days,
        }
    }

    #[test]
    fn window_edges_are_bucket_aligned() {
        let d = days(1);
        let now = T0 + 10 * HOUR_MS;
        // Yesterday's bucket is in (lower = yesterday 10:00, floored to yesterday 00:00).
        assert!(d.contains(T0 - DAY_MS, now));
        assert!(!d.contains(T0 - DAY_MS - 1, now));
        // Later today (same bucket as now) counts; tomorrow does not.
        assert!(d.contains(T0 + 20 * HOUR_MS, now));
        assert!(!d.contains(T0 + DAY_MS, now));
        let h = Duration {
            count: 3,
            unit: Unit::Hours,
        };
        assert!(h.contains(now - 3 * HOUR_MS, now));
        assert!(!h.contains(now - 3 * HOUR_MS - 1, now));
    }

    #[test]
    fn months_follow_the_calendar_in_week_buckets() {
        let d = Duration {
            count: 1,
            unit: Unit::Months,
        };
        // 2024-03-31 minus one month is 2024-02-29 (clamped); its week began Sunday the 25th.
        let now = tessera_pql::time::parse_timestamp("2024-03-31T12:00:00Z").unwrap();
        let feb29 = tessera_pql::time::parse_timestamp("2024-02-29T12:00:00Z").unwrap();
        let sunday = tessera_pql::time::parse_timestamp("2024-02-25T00:00:00Z").unwrap();
        assert_eq!(d.lower(now), feb29);
        assert_eq!(d.first_bucket(now), sunday);
        assert!(d.contains(sunday, now));
        assert!(!d.contains(sunday - 1, now));
    }

    #[test]
    fn sum_and_count_expire_whole_buckets() {
        let d = days(2);
        let mut sum = Window::default();
        let mut count = Window::default();
        let now = T0 + HOUR_MS;
        for (i, ts) in [T0 - 2 * DAY_MS, T0 - DAY_MS, T0].iter().enumerate() {
            let v = json!(10 * (i + 1));
            sum.add(Function::Sum, &d, *ts, Some(&v), now);
            count.add(Function::Count, &d, *ts, None, now);
        }
        assert_eq!(sum.value(Function::Sum, &d, now), Some(json!(60)));
        assert_eq!(count.value(Function::Count, &d, now), Some(json!(3)));
        // A day later the first bucket is out, even before expiry runs.
        let later = now + DAY_MS;
        assert_eq!(sum.value(Function::Sum, &d, later), Some(json!(50)));
        sum.expire(&d, later);
        assert_eq!(sum.buckets.len(), 2);
        // Far later: nothing left, SUM and COUNT read 0.
        let far = now + 10 * DAY_MS;
        sum.expire(&d, far);
        assert!(sum.buckets.is_empty());
        assert_eq!(sum.value(Function::Sum, &d, far), Some(json!(0)));
        assert_eq!(count.value(Function::Count, &d, far), Some(json!(0)));
    }

    #[test]
    fn an_event_already_out_of_the_window_is_not_stored() {
        let d = days(1);
        let mut w = Window::default();
        w.add(Function::Count, &d, T0 - 5 * DAY_MS, None, T0);
        assert!(w.buckets.is_empty());
    }

    #[test]
    fn min_max_take_numbers_and_timestamps() {
        let d = days(7);
        let now = T0;
        let mut min = Window::default();
        let mut max = Window::default();
        for v in [json!(5), json!(2.5), json!("x"), json!(9)] {
            min.add(Function::Min, &d, T0 - DAY_MS, Some(&v), now);
            max.add(Function::Max, &d, T0, Some(&v), now);
        }
        assert_eq!(min.value(Function::Min, &d, now), Some(json!(2.5)));
        assert_eq!(max.value(Function::Max, &d, now), Some(json!(9)));
        let mut dates = Window::default();
        for v in ["2023-11-10T00:00:00Z", "2023-11-12T08:00:00Z"] {
            dates.add(Function::Max, &d, T0, Some(&json!(v)), now);
        }
        assert_eq!(
            dates.value(Function::Max, &d, now),
            Some(json!("2023-11-12T08:00:00.000Z"))
        );
        assert_eq!(Window::default().value(Function::Min, &d, now), None);
    }

    #[test]
    fn most_recent_keeps_value_and_time_and_survives_future_events() {
        let d = days(1);
        let now = T0 + HOUR_MS;
        let mut w = Window::default();
        w.add(Function::MostRecent, &d, T0 + 10, Some(&json!("b")), now);
        w.add(Function::MostRecent, &d, T0 + 5, Some(&json!("a")), now);
        // An event two days ahead: not in today's window, but the older one still is.
        w.add(
            Function::MostRecent,
            &d,
            T0 + 2 * DAY_MS,
            Some(&json!("z")),
            now,
        );
        let v = w.value(Function::MostRecent, &d, now).unwrap();
        assert_eq!(v["value"], json!("b"));
        assert_eq!(
            v["timestamp"],
            json!(tessera_pql::time::format_timestamp(T0 + 10))
        );
        assert_eq!(
            w.value(Function::MostRecent, &d, T0 + 2 * DAY_MS).unwrap()["value"],
            json!("z")
        );
    }

    fn function() -> impl Strategy<Value = Function> {
        prop_oneof![
            Just(Function::Sum),
            Just(Function::Count),
            Just(Function::Min),
            Just(Function::Max),
            Just(Function::MostRecent),
        ]
    }

    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (1u32..=24).prop_map(|count| Duration {
                count,
                unit: Unit::Hours
            }),
            (1u32..=7).prop_map(|count| Duration {
                count,
                unit: Unit::Days
            }),
            (1u32..=4).prop_map(|count| Duration {
                count,
                unit: Unit::Weeks
            }),
            (1u32..=6).prop_map(|count| Duration {
                count,
                unit: Unit::Months
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Events arrive in random order, each folded at an arrival clock that only moves
        /// forward; at any later `now` the incremental value equals the from-scratch fold.
        #[test]
        fn incremental_equals_from_scratch(
            function in function(),
            duration in duration(),
            events in proptest::collection::vec(
                (0i64..(200 * DAY_MS), proptest::option::of(-1000i64..1000)),
                0..60,
            ),
            arrival_lag in proptest::collection::vec(0i64..(3 * DAY_MS), 60),
            reads in proptest::collection::vec(0i64..(30 * DAY_MS), 1..5),
        ) {
            let events: Vec<(i64, Option<Value>)> = events
                .into_iter()
                .map(|(ts, v)| (T0 + ts, v.map(|v| json!(v))))
                .collect();
            let mut window = Window::default();
            let mut clock = T0;
            let mut folded = Vec::new();
            for (i, (ts, value)) in events.iter().enumerate() {
                // Arrival: at or after the event, never before the previous arrival.
                clock = clock.max(ts + arrival_lag.get(i).copied().unwrap_or(0));
                window.add(function, &duration, *ts, value.as_ref(), clock);
                folded.push((*ts, value.clone()));
                let expected = fold_from_scratch(function, &duration, &folded, clock);
                prop_assert_eq!(window.value(function, &duration, clock), expected);
            }
            let mut now = clock;
            for step in reads {
                now += step;
                let expected = fold_from_scratch(function, &duration, &events, now);
                prop_assert_eq!(window.value(function, &duration, now), expected.clone());
                window.expire(&duration, now);
                prop_assert_eq!(window.value(function, &duration, now), expected);
            }
        }
    }
}
