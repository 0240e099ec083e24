//! Quartz cron expressions, as AEP's `/config/schedules` takes them: six or seven fields
//! (seconds, minutes, hours, day of month, month, day of week, optional year), evaluated in
//! UTC.
//!
//! Supported per field: `*`, single values, lists (`,`), ranges (`-`), steps (`/` after `*`,
//! a value or a range), month names `JAN`–`DEC` and day names `SUN`–`SAT` (any case), and `?`
//! in exactly one of day of month and day of week (Quartz refuses both or neither). Quartz's
//! `L`, `W` and `#` are refused with a message rather than misread: a schedule that fires at
//! the wrong time is worse than one refused at creation.
//!
//! Written here instead of taken from a crate: the grammar is small, the next-fire search is
//! a day walk, and the schedule rules (at most once a day) need the parsed fields anyway.

use time::{Date, OffsetDateTime, Time};

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not six or seven fields.
    #[error("a cron expression has 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]); found {found}")]
    FieldCount {
        /// Fields found.
        found: usize,
    },
    /// One field is wrong.
    #[error("cron field {field} ({value:?}): {reason}")]
    Field {
        /// Field name, e.g. `hours`.
        field: &'static str,
        /// The field as written.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// `?` must be in exactly one of day of month and day of week.
    #[error("use '?' in exactly one of day-of-month and day-of-week (e.g. \"0 0 1 * * ?\")")]
    DayFields,
}

/// The values one field allows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Values {
    min: u32,
    allowed: Vec<bool>,
}

impl Values {
    fn contains(&self, value: u32) -> bool {
        value
            .checked_sub(self.min)
            .and_then(|i| self.allowed.get(i as usize))
            .copied()
            .unwrap_or(false)
    }

    fn count(&self) -> usize {
        self.allowed.iter().filter(|a| **a).count()
    }
}

/// A day field: `?` (no constraint from this field) or values.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Day {
    Unspecified,
    Values(Values),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    seconds: Values,
    minutes: Values,
    hours: Values,
    day_of_month: Day,
    months: Values,
    day_of_week: Day,
    years: Option<Values>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
/// Quartz's year range.
const FIRST_YEAR: u32 = 1970;
const LAST_YEAR: u32 = 2099;

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names of values from `min` on (months, days).
    names: &'static [&'static str],
}

impl FieldSpec {
    fn error(&self, value: &str, reason: impl Into<String>) -> CronError {
        CronError::Field {
            field: self.name,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    fn number(&self, text: &str, whole: &str) -> Result<u32, CronError> {
        let named = self
            .names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(text))
            .and_then(|i| u32::try_from(i).ok())
            .map(|i| i + self.min);
        let value = match named {
            Some(value) => value,
            None => text.parse::<u32>().map_err(|_| {
                if text.contains(['L', 'W', '#', 'l', 'w']) {
                    self.error(whole, "Quartz's L, W and # are not supported")
                } else {
                    self.error(whole, format!("{text:?} is not a number"))
                }
            })?,
        };
        if value < self.min || value > self.max {
            return Err(self.error(
                whole,
                format!("{value} is outside {}-{}", self.min, self.max),
            ));
        }
        Ok(value)
    }

    fn parse(&self, text: &str) -> Result<Values, CronError> {
        let span = (self.max - self.min + 1) as usize;
        let mut allowed = vec![false; span];
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step
                        .parse()
                        .map_err(|_| self.error(text, format!("step {step:?} is not a number")))?;
                    if step == 0 {
                        return Err(self.error(text, "a step must be at least 1"));
                    }
                    (range, Some(step))
                }
                None => (item, None),
            };
            let (first, last) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.number(a, text)?, self.number(b, text)?);
                if a > b {
                    return Err(self.error(text, format!("range {a}-{b} runs backwards")));
                }
                (a, b)
            } else {
                let first = self.number(range, text)?;
                // `a/s` runs from a to the end of the field; a lone value is itself.
                (first, if step.is_some() { self.max } else { first })
            };
            let step = step.unwrap_or(1) as usize;
            for value in (first..=last).step_by(step) {
                if let Some(slot) = allowed.get_mut((value - self.min) as usize) {
                    *slot = true;
                }
            }
        }
        Ok(Values {
            min: self.min,
            allowed,
        })
    }

    fn parse_day(&self, text: &str) -> Result<Day, CronError> {
        if text == "?" {
            return Ok(Day::Unspecified);
        }
        Ok(Day::Values(self.parse(text)?))
    }
}

const SECONDS: FieldSpec = FieldSpec {
    name: "seconds",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTES: FieldSpec = FieldSpec {
    name: "minutes",
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: FieldSpec = FieldSpec {
    name: "hours",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTHS,
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 1,
    max: 7,
    names: &DAYS,
};
const YEAR: FieldSpec = FieldSpec {
    name: "year",
    min: FIRST_YEAR,
    max: LAST_YEAR,
    names: &[],
};

impl std::str::FromStr for Cron {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, CronError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [seconds, minutes, hours, dom, month, dow, rest @ ..] = fields.as_slice() else {
            return Err(CronError::FieldCount {
                found: fields.len(),
            });
        };
        let years = match rest {
            [] => None,
            [year] => Some(YEAR.parse(year)?),
            _ => {
                return Err(CronError::FieldCount {
                    found: fields.len(),
                })
            }
        };
        let question_only = |spec: &FieldSpec, text: &str| {
            if text.contains('?') && text != "?" {
                Err(spec.error(text, "'?' stands alone"))
            } else {
                Ok(())
            }
        };
        question_only(&DAY_OF_MONTH, dom)?;
        question_only(&DAY_OF_WEEK, dow)?;
        let cron = Cron {
            seconds: SECONDS.parse(seconds)?,
            minutes: MINUTES.parse(minutes)?,
            hours: HOURS.parse(hours)?,
            day_of_month: DAY_OF_MONTH.parse_day(dom)?,
            months: MONTH.parse(month)?,
            day_of_week: DAY_OF_WEEK.parse_day(dow)?,
            years,
        };
        match (&cron.day_of_month, &cron.day_of_week) {
            (Day::Unspecified, Day::Values(_)) | (Day::Values(_), Day::Unspecified) => Ok(cron),
            _ => Err(CronError::DayFields),
        }
    }
}

impl Cron {
    /// How many times a day it fires on a day it fires at all.
    pub fn fires_per_day(&self) -> usize {
        self.seconds.count() * self.minutes.count() * self.hours.count()
    }

    fn day_matches(&self, date: Date) -> bool {
        let year_ok = self
            .years
            .as_ref()
            .is_none_or(|y| date.year() >= 0 && y.contains(date.year().unsigned_abs()));
        let dom_ok = match &self.day_of_month {
            Day::Unspecified => true,
            Day::Values(v) => v.contains(u32::from(date.day())),
        };
        let dow_ok = match &self.day_of_week {
            Day::Unspecified => true,
            Day::Values(v) => v.contains(u32::from(date.weekday().number_from_sunday())),
        };
        year_ok && self.months.contains(u32::from(u8::from(date.month()))) && dom_ok && dow_ok
    }

    /// The first firing second of a day at or after `from`.
    fn first_time_from(&self, from: Time) -> Option<Time> {
        let (h0, m0, s0) = (
            u32::from(from.hour()),
            u32::from(from.minute()),
            u32::from(from.second()),
        );
        for h in (h0..24).filter(|h| self.hours.contains(*h)) {
            let m_start = if h == h0 { m0 } else { 0 };
            for m in (m_start..60).filter(|m| self.minutes.contains(*m)) {
                let s_start = if h == h0 && m == m0 { s0 } else { 0 };
                if let Some(s) = (s_start..60).find(|s| self.seconds.contains(*s)) {
                    // Each value is below 24 / 60 by the loop bounds.
                    return Time::from_hms(h as u8, m as u8, s as u8).ok();
                }
            }
        }
        None
    }

    /// The first firing instant strictly after `after` (UTC), or `None` when it never fires
    /// again before the end of Quartz's year range.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = after.to_offset(time::UtcOffset::UTC);
        // Whole seconds: the first candidate is the next whole second.
        let start = after.replace_nanosecond(0).ok()? + time::Duration::SECOND;
        let mut date = start.date();
        let mut from = start.time();
        while u32::try_from(date.year()).is_ok_and(|y| y <= LAST_YEAR) {
            if self.day_matches(date) {
                if let Some(t) = self.first_time_from(from) {
                    return Some(date.with_time(t).assume_utc());
                }
            }
            date = date.next_day()?;
            from = Time::MIDNIGHT;
        }
        None
    }

    /// The last firing instant at or before `until` that is strictly after `after`.
    pub fn last_between(
        &self,
        after: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let mut last = None;
        let mut cursor = after;
        // Bounded: a daily schedule missed for years is still a few thousand steps.
        for _ in 0..100_000 {
            match self.next_after(cursor) {
                Some(next) if next <= until => {
                    last = Some(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        last
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn cron(text: &str) -> Cron {
        text.parse().unwrap()
    }

    #[test]
    fn daily_at_one_fires_at_one_utc() {
        let c = cron("0 0 1 * * ?");
        assert_eq!(c.fires_per_day(), 1);
        assert_eq!(
            c.next_after(datetime!(2025-03-01 00:30 UTC)),
            Some(datetime!(2025-03-01 01:00 UTC))
        );
        assert_eq!(
            c.next_after(datetime!(2025-03-01 01:00 UTC)),
            Some(datetime!(2025-03-02 01:00 UTC)),
            "strictly after"
        );
        assert_eq!(
            c.next_after(datetime!(2025-12-31 02:00 UTC)),
            Some(datetime!(2026-01-01 01:00 UTC))
        );
    }

    #[test]
    fn lists_ranges_steps_and_names() {
        let c = cron("0 15 6 ? JAN,jul MON-FRI");
        // 2025-01-04 is a Saturday: next is Monday the 6th.
        assert_eq!(
            c.next_after(datetime!(2025-01-04 00:00 UTC)),
            Some(datetime!(2025-01-06 06:15 UTC))
        );
        // February is not listed: July 1st 2025 is a Tuesday.
        assert_eq!(
            c.next_after(datetime!(2025-01-31 07:00 UTC)),
            Some(datetime!(2025-07-01 06:15 UTC))
        );
        let every_15 = cron("0 */15 * * * ?");
        assert_eq!(every_15.fires_per_day(), 96);
        assert_eq!(
            every_15.next_after(datetime!(2025-01-01 10:16 UTC)),
            Some(datetime!(2025-01-01 10:30 UTC))
        );
        let stepped = cron("0 1/7 0 * * ?");
        assert_eq!(
            stepped.minutes.count(),
            9,
            "1, 8, ..., 57 as AEP's appendix says"
        );
        let sunday = cron("30 0 0 ? * 1");
        // 2025-03-02 is a Sunday.
        assert_eq!(
            sunday.next_after(datetime!(2025-02-27 00:00 UTC)),
            Some(datetime!(2025-03-02 00:00:30 UTC))
        );
    }

    #[test]
    fn day_of_month_and_year() {
        let c = cron("0 0 2 2 * ? 2026");
        assert_eq!(
            c.next_after(datetime!(2025-06-01 00:00 UTC)),
            Some(datetime!(2026-01-02 02:00 UTC))
        );
        assert_eq!(c.next_after(datetime!(2026-12-02 03:00 UTC)), None);
        let never = cron("0 0 0 30 2 ?");
        assert_eq!(never.next_after(datetime!(2025-01-01 00:00 UTC)), None);
    }

    #[test]
    fn refused_expressions_say_why() {
        for (text, fragment) in [
            ("0 0 1 * *", "6 or 7 fields"),
            ("0 0 1 * * ? 2030 x", "6 or 7 fields"),
            ("0 0 24 * * ?", "hours"),
            ("0 60 1 * * ?", "minutes"),
            ("0 0 1 * * *", "exactly one"),
            ("0 0 1 ? * ?", "exactly one"),
            ("0 0 1 L * ?", "L, W and #"),
            ("0 0 1 ? * 6#3", "L, W and #"),
            ("0 0 1 ? * MON#3", "L, W and #"),
            ("0 0 5-1 * * ?", "backwards"),
            ("0 0 */0 * * ?", "at least 1"),
            ("0 0 1 * FOO ?", "not a number"),
            ("0 0 1 1? * ?", "stands alone"),
        ] {
            let error = text.parse::<Cron>().unwrap_err().to_string();
            assert!(error.contains(fragment), "{text}: {error}");
        }
    }

    #[test]
    fn last_between_collapses_missed_runs() {
        let c = cron("0 0 1 * * ?");
        assert_eq!(
            c.last_between(
                datetime!(2025-03-01 01:00 UTC),
                datetime!(2025-03-05 12:00 UTC)
            ),
            Some(datetime!(2025-03-05 01:00 UTC))
        );
        assert_eq!(
            c.last_between(
                datetime!(2025-03-01 01:00 UTC),
                datetime!(2025-03-02 00:59:59 UTC)
            ),
            None
        );
    }
}
