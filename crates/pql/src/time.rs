//! Calendar arithmetic on UTC epoch milliseconds, and the meaning of relative times.
//!
//! Everything is UTC (the docs define `today` as the start of the execution day; we fix that
//! day in UTC so evaluation is deterministic). Timestamps are parsed by a small RFC 3339
//! reader written for the hot path (no allocation). Weeks start on Monday (ISO 8601).
//! `now` is always a parameter: nothing here reads the clock.

use crate::ast::{Relative, TimeRef, Unit};

/// Milliseconds per day.
pub const DAY_MS: i64 = 86_400_000;

/// Days in `month` of `year` (proleptic Gregorian).
pub fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of a day number.
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // month is 1..=12 and day 1..=31 by construction
    (year, month as u8, day as u8)
}

/// (year, month, day) of an instant.
pub fn date_parts(ms: i64) -> (i64, u8, u8) {
    civil_from_days(ms.div_euclid(DAY_MS))
}

/// Start of the UTC day of a civil date.
pub fn date_ms(year: i64, month: u8, day: u8) -> i64 {
    days_from_civil(year, month, day) * DAY_MS
}

/// Parses `YYYY-MM-DD` or RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]` (a space is accepted
/// for `T`, and a missing offset means UTC) into epoch milliseconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        let mut v = 0i64;
        for d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(d - b'0');
        }
        Some(v)
    };
    let year = num(0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = u8::try_from(num(5, 2)?)
        .ok()
        .filter(|m| (1..=12).contains(m))?;
    let day = u8::try_from(num(8, 2)?).ok()?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = date_ms(year, month, day);
    if b.len() == 10 {
        return Some(ms);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    let (h, mi) = (num(11, 2)?, num(14, 2)?);
    let sec = if b.get(16) == Some(&b':') {
        num(17, 2)?
    } else {
        return None;
    };
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    ms += ((h * 60 + mi) * 60 + sec) * 1000;
    let mut pos = 19;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let mut frac = 0i64;
        let mut scale = 100;
        while let Some(d) = b.get(pos).filter(|d| d.is_ascii_digit()) {
            frac += i64::from(d - b'0') * scale;
            scale /= 10;
            pos += 1;
        }
        ms += frac;
    }
    match b.get(pos) {
        None => Some(ms),
        Some(b'Z' | b'z') if pos + 1 == b.len() => Some(ms),
        Some(sign @ (b'+' | b'-')) if b.len() == pos + 6 && b.get(pos + 3) == Some(&b':') => {
            let offset = (num(pos + 1, 2)? * 60 + num(pos + 4, 2)?) * 60_000;
            Some(if *sign == b'+' {
                ms - offset
            } else {
                ms + offset
            })
        }
        _ => None,
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC with milliseconds.
pub fn format_timestamp(ms: i64) -> String {
    let (y, m, d) = date_parts(ms);
    let in_day = ms.rem_euclid(DAY_MS);
    let (h, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (mi, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

fn add_months(ms: i64, months: i64) -> i64 {
    let (y, m, d) = date_parts(ms);
    let in_day = ms.rem_euclid(DAY_MS);
    let total = y * 12 + i64::from(m) - 1 + months;
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u8);
    // The day is clamped: one month after January 31st is the last day of February.
    let nd = d.min(days_in_month(ny, nm));
    date_ms(ny, nm, nd) + in_day
}

/// `ms` shifted by `amount` units (negative goes back); calendar units follow the calendar.
pub fn shift(ms: i64, unit: Unit, amount: i64) -> i64 {
    let fixed = |per: i64| ms.saturating_add(amount.saturating_mul(per));
    match unit {
        Unit::Millisecond => fixed(1),
        Unit::Second => fixed(1000),
        Unit::Minute => fixed(60_000),
        Unit::Hour => fixed(3_600_000),
        Unit::Day => fixed(DAY_MS),
        Unit::Week => fixed(7 * DAY_MS),
        Unit::Month => add_months(ms, amount),
        Unit::Year => add_months(ms, amount.saturating_mul(12)),
        Unit::Decade => add_months(ms, amount.saturating_mul(120)),
        Unit::Century => add_months(ms, amount.saturating_mul(1200)),
        Unit::Millennium => add_months(ms, amount.saturating_mul(12_000)),
    }
}

/// Start of the calendar period of `unit` containing `ms`.
pub fn period_start(ms: i64, unit: Unit) -> i64 {
    let floor = |per: i64| ms - ms.rem_euclid(per);
    let years = |span: i64| {
        let (y, _, _) = date_parts(ms);
        date_ms(y - y.rem_euclid(span), 1, 1)
    };
    match unit {
        Unit::Millisecond => ms,
        Unit::Second => floor(1000),
        Unit::Minute => floor(60_000),
        Unit::Hour => floor(3_600_000),
        Unit::Day => floor(DAY_MS),
        Unit::Week => {
            // 1970-01-01 was a Thursday: Monday-based weeks are offset by 3 days.
            let days = ms.div_euclid(DAY_MS);
            (days - (days + 3).rem_euclid(7)) * DAY_MS
        }
        Unit::Month => {
            let (y, m, _) = date_parts(ms);
            date_ms(y, m, 1)
        }
        Unit::Year => years(1),
        Unit::Decade => years(10),
        Unit::Century => years(100),
        Unit::Millennium => years(1000),
    }
}

/// A half-open time range `[start, end)`; an instant `t` is `[t, t+1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

impl Span {
    /// The instant `t`.
    pub fn instant(t: i64) -> Self {
        Span {
            start: t,
            end: t.saturating_add(1),
        }
    }
}

/// The span of a time word given `now`; `None` for expression times (the caller evaluates).
pub fn word_span(time: &TimeRef, now: i64) -> Option<Span> {
    let day = |offset: i64| {
        let start = period_start(now, Unit::Day) + offset * DAY_MS;
        Span {
            start,
            end: start + DAY_MS,
        }
    };
    Some(match time {
        TimeRef::Now => Span::instant(now),
        TimeRef::Today => day(0),
        TimeRef::Yesterday => day(-1),
        TimeRef::Tomorrow => day(1),
        TimeRef::Relative { rel, unit } => {
            let this = period_start(now, *unit);
            let start = match rel {
                Relative::This => this,
                Relative::Last => shift(this, *unit, -1),
                Relative::Next => shift(this, *unit, 1),
            };
            Span {
                start,
                end: shift(start, *unit, 1),
            }
        }
        TimeRef::Expr(_) => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        parse_timestamp(s).unwrap()
    }

    #[test]
    fn parses_rfc3339_variants() {
        assert_eq!(ts("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ts("1970-01-01T00:00:01.5Z"), 1500);
        assert_eq!(ts("1970-01-01T01:00:00+01:00"), 0);
        assert_eq!(ts("1970-01-02"), DAY_MS);
        assert_eq!(ts("2024-02-29T12:00:00.123Z"), 1_709_208_000_123);
        assert!(parse_timestamp("2023-02-29").is_none());
        assert!(parse_timestamp("2023-13-01").is_none());
        assert!(parse_timestamp("yesterday").is_none());
        assert_eq!(
            format_timestamp(1_709_208_000_123),
            "2024-02-29T12:00:00.123Z"
        );
    }

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn months_clamp_and_cross_years() {
        assert_eq!(
            shift(ts("2024-01-31T10:00:00Z"), Unit::Month, 1),
            ts("2024-02-29T10:00:00Z")
        );
        assert_eq!(
            shift(ts("2024-12-15T00:00:00Z"), Unit::Month, 1),
            ts("2025-01-15T00:00:00Z")
        );
        assert_eq!(
            shift(ts("2024-01-15T00:00:00Z"), Unit::Month, -1),
            ts("2023-12-15T00:00:00Z")
        );
        assert_eq!(
            shift(ts("2024-02-29T00:00:00Z"), Unit::Year, 1),
            ts("2025-02-28T00:00:00Z")
        );
    }

    #[test]
    fn periods() {
        let now = ts("2025-01-01T08:30:00Z"); // a Wednesday
        assert_eq!(period_start(now, Unit::Week), ts("2024-12-30T00:00:00Z"));
        let last_week = word_span(
            &TimeRef::Relative {
                rel: Relative::Last,
                unit: Unit::Week,
            },
            now,
        )
        .unwrap();
        assert_eq!(last_week.start, ts("2024-12-23T00:00:00Z"));
        assert_eq!(last_week.end, ts("2024-12-30T00:00:00Z"));
        let last_month = word_span(
            &TimeRef::Relative {
                rel: Relative::Last,
                unit: Unit::Month,
            },
            now,
        )
        .unwrap();
        assert_eq!(last_month.start, ts("2024-12-01T00:00:00Z"));
        assert_eq!(last_month.end, ts("2025-01-01T00:00:00Z"));
        let yesterday = word_span(&TimeRef::Yesterday, now).unwrap();
        assert_eq!(yesterday.start, ts("2024-12-31T00:00:00Z"));
        assert_eq!(period_start(now, Unit::Decade), ts("2020-01-01T00:00:00Z"));
    }
}
