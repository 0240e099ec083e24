//! Profile-store retention of experience events: the `ttlValue` of a dataset's
//! `extensions.adobe_unifiedProfile.rowExpiration`, an ISO-8601 period such as `P30D`,
//! `P3M`, `P1Y` or `PT12H`.
//!
//! What lives here: the strict period parser and the cutoff arithmetic ("now − TTL").
//! What does not: where the value is stored (`dataset`), how reads hide expired events
//! (`tessera_profile::event_query`) and how they are purged (`tessera_profile::purge`).
//!
//! Accepted form: `P[nY][nM][nW][nD][T[nH][nM][nS]]`, uppercase designators, whole numbers
//! only, at least one component, components in that order. Fractions, signs, lowercase and
//! the combined `PYYYY-MM-DD` form are refused: a retention setting that deletes data must
//! not be guessed at.
//!
//! Arithmetic: years and months are calendar-aware in UTC (`P1M` on 31 March is
//! 28/29 February: the day is clamped to the month's end), applied first; weeks, days, hours,
//! minutes and seconds are then exact durations (a UTC day is always 24 hours). The shortest
//! accepted TTL is [`MIN_TTL_SECONDS`] (one hour); the longest is 100 years, so the cutoff of
//! any clock reading stays inside the calendar the `time` crate supports.

use std::fmt;

use time::{Date, Month, OffsetDateTime};

/// Shortest accepted TTL: retention below an hour would make events disappear while a
/// client is still paging through them, and the sweeper runs every few minutes anyway.
pub const MIN_TTL_SECONDS: i64 = 3_600;
/// Longest accepted TTL, in months (100 years). Fixed components are capped at the same
/// span counted as 36,525 days.
const MAX_MONTHS: i64 = 1_200;
const MAX_SECONDS: i64 = 36_525 * 86_400;

/// A parsed, valid retention period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ttl {
    /// Calendar months (years × 12 + months).
    months: i64,
    /// Exact seconds (weeks, days, hours, minutes, seconds).
    seconds: i64,
    /// The text it was parsed from, returned to clients unchanged.
    text: String,
}

/// Why a period was refused; the message is shown to the client after the field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TtlError(String);

impl Ttl {
    /// Parses an ISO-8601 period strictly (see the module documentation).
    pub fn parse(text: &str) -> Result<Self, TtlError> {
        let refuse = |why: &str| {
            Err(TtlError(format!(
                "{text:?} is not a retention period: {why}; use an ISO-8601 period such as P30D, P3M, P1Y or PT12H"
            )))
        };
        let Some(body) = text.strip_prefix('P') else {
            return refuse("it must start with 'P'");
        };
        // Designators allowed in the date part, then in the time part, in order.
        const DATE: [char; 4] = ['Y', 'M', 'W', 'D'];
        const TIME: [char; 3] = ['H', 'M', 'S'];
        let (date_part, time_part) = match body.split_once('T') {
            Some((date, time)) => {
                if time.is_empty() {
                    return refuse("'T' must be followed by hours, minutes or seconds");
                }
                (date, Some(time))
            }
            None => (body, None),
        };
        let date = match components(date_part, &DATE) {
            Ok(values) => values,
            Err(why) => return refuse(&why),
        };
        let time = match time_part.map(|t| components(t, &TIME)).transpose() {
            Ok(values) => values.unwrap_or_default(),
            Err(why) => return refuse(&why),
        };
        if date.is_empty() && time.is_empty() {
            return refuse("it has no component");
        }
        let mut months: i64 = 0;
        let mut seconds: i64 = 0;
        for (designator, value) in date {
            match designator {
                'Y' => months = months.saturating_add(value.saturating_mul(12)),
                'M' => months = months.saturating_add(value),
                'W' => seconds = seconds.saturating_add(value.saturating_mul(7 * 86_400)),
                _ => seconds = seconds.saturating_add(value.saturating_mul(86_400)),
            }
        }
        for (designator, value) in time {
            let unit = match designator {
                'H' => 3_600,
                'M' => 60,
                _ => 1,
            };
            seconds = seconds.saturating_add(value.saturating_mul(unit));
        }
        if months > MAX_MONTHS || seconds > MAX_SECONDS {
            return refuse("it is longer than 100 years");
        }
        if months == 0 && seconds < MIN_TTL_SECONDS {
            return refuse("the shortest retention is one hour (PT1H)");
        }
        Ok(Self {
            months,
            seconds,
            text: text.to_owned(),
        })
    }

    /// The period as the client wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The oldest event time (ms) still retained at `now_ms`: events whose `timestamp` is
    /// before it are expired. Calendar months first, then exact seconds (module docs).
    pub fn cutoff_ms(&self, now_ms: i64) -> i64 {
        let now = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let shifted = minus_months(now, self.months);
        let shifted_ms =
            i64::try_from(shifted.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MIN);
        shifted_ms.saturating_sub(self.seconds.saturating_mul(1_000))
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Reads `<digits><designator>` pairs whose designators appear in `allowed` order, each once.
fn components(text: &str, allowed: &[char]) -> Result<Vec<(char, i64)>, String> {
    let mut found = Vec::new();
    let mut next_allowed = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let Some(position) = allowed.iter().position(|a| *a == c) else {
            return Err(format!("unexpected character {c:?}"));
        };
        if position < next_allowed {
            return Err(format!("{c:?} is repeated or out of order"));
        }
        if digits.is_empty() {
            return Err(format!("{c:?} needs a number before it"));
        }
        let value = digits
            .parse::<i64>()
            .map_err(|_| format!("the number before {c:?} is too large"))?;
        found.push((c, value));
        digits.clear();
        next_allowed = position + 1;
    }
    if !digits.is_empty() {
        return Err(format!("the number {digits} has no designator"));
    }
    Ok(found)
}

/// `at` moved back by `months` calendar months, the day clamped to the target month's end.
fn minus_months(at: OffsetDateTime, months: i64) -> OffsetDateTime {
    if months == 0 {
        return at;
    }
    let index = i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1 - months;
    let (Ok(year), Ok(month)) = (
        i32::try_from(index.div_euclid(12)),
        u8::try_from(index.rem_euclid(12) + 1),
    ) else {
        return OffsetDateTime::UNIX_EPOCH;
    };
    let Ok(month) = Month::try_from(month) else {
        return OffsetDateTime::UNIX_EPOCH;
    };
    let day = at.day().min(month.length(year));
    match Date::from_calendar_date(year, month, day) {
        Ok(date) => at.replace_date(date),
        // Only before the supported calendar's start, which the 100-year cap rules out for
        // real clocks; the epoch keeps every event rather than deleting on a bogus cutoff.
        Err(_) => OffsetDateTime::UNIX_EPOCH,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// 2025-05-15T12:00:00Z.
    const MAY_15: i64 = 1_747_310_400_000;
    const DAY: i64 = 86_400_000;

    #[test]
    fn accepts_aep_examples() {
        for (text, cutoff) in [
            ("P30D", MAY_15 - 30 * DAY),
            ("PT12H", MAY_15 - DAY / 2),
            ("P1W", MAY_15 - 7 * DAY),
            ("P1DT1H", MAY_15 - DAY - 3_600_000),
            // 15 February 2025 (89 days back).
            ("P3M", MAY_15 - 89 * DAY),
            ("P12M", MAY_15 - 365 * DAY),
            ("P1Y", MAY_15 - 365 * DAY),
            ("PT60M", MAY_15 - 3_600_000),
            ("PT3600S", MAY_15 - 3_600_000),
        ] {
            let ttl = Ttl::parse(text).unwrap();
            assert_eq!(ttl.as_str(), text);
            assert_eq!(ttl.cutoff_ms(MAY_15), cutoff, "{text}");
        }
    }

    #[test]
    fn months_clamp_to_the_end_of_the_month() {
        // 2024-03-31T00:00:00Z − P1M = 2024-02-29 (leap year).
        let march_31 = 1_711_843_200_000;
        let feb_29 = 1_709_164_800_000;
        assert_eq!(Ttl::parse("P1M").unwrap().cutoff_ms(march_31), feb_29);
        // Months before days: 31 March − P1M1D = 28 February.
        assert_eq!(
            Ttl::parse("P1M1D").unwrap().cutoff_ms(march_31),
            feb_29 - DAY
        );
    }

    #[test]
    fn refuses_nonsense() {
        for text in [
            "",
            "30D",
            "P",
            "PT",
            "p30d",
            "P30",
            "P1.5D",
            "P-1D",
            "P+1D",
            "PD",
            "P1D1Y",
            "P1M1M",
            "P1H",
            "PT1D",
            "P1DT",
            "PT59M",
            "PT3599S",
            "P0D",
            "P101Y",
            "P1201M",
            "P2025-01-01",
            "P 1D",
            "P99999999999999999999D",
            "P١D",
        ] {
            assert!(Ttl::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn zero_components_count_with_others() {
        assert!(Ttl::parse("P0DT1H").is_ok());
        assert!(Ttl::parse("P0Y1M").is_ok());
    }
}
