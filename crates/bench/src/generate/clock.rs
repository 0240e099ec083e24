//! Time for the generator: epoch-millisecond timestamps, their fast RFC 3339 rendering, and the
//! daily and weekly rhythm that event times are drawn from.
//!
//! Formatting is hand-written (days-to-civil conversion) because it runs once per event and the
//! generator must stay above 200,000 records/s; a unit test checks it against the `time` crate.

use rand::Rng;
use serde::{Serialize, Serializer};

pub const MS_PER_SECOND: i64 = 1_000;
pub const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
pub const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
pub const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// Milliseconds since the Unix epoch, UTC. Serializes as `YYYY-MM-DDTHH:MM:SS.sssZ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Renders as RFC 3339 with millisecond precision and a `Z` offset.
    pub fn to_rfc3339(self) -> String {
        let buf = self.render();
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn render(self) -> [u8; 24] {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let hour = ms_of_day / MS_PER_HOUR;
        let minute = (ms_of_day / MS_PER_MINUTE) % 60;
        let second = (ms_of_day / MS_PER_SECOND) % 60;
        let milli = ms_of_day % MS_PER_SECOND;
        let mut out = *b"0000-00-00T00:00:00.000Z";
        put_digits(&mut out, 0, 4, year.clamp(0, 9999));
        put_digits(&mut out, 5, 2, i64::from(month));
        put_digits(&mut out, 8, 2, i64::from(day));
        put_digits(&mut out, 11, 2, hour);
        put_digits(&mut out, 14, 2, minute);
        put_digits(&mut out, 17, 2, second);
        put_digits(&mut out, 20, 3, milli);
        out
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let buf = self.render();
        // Only ASCII digits and separators are ever written into the buffer.
        let text = std::str::from_utf8(&buf).unwrap_or("1970-01-01T00:00:00.000Z");
        serializer.serialize_str(text)
    }
}

/// A calendar date rendered as `YYYY-MM-DD` (XDM `date` fields such as `person.birthDate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilDate {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl Serialize for CivilDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = *b"0000-00-00";
        put_digits(&mut out, 0, 4, self.year.clamp(0, 9999));
        put_digits(&mut out, 5, 2, i64::from(self.month));
        put_digits(&mut out, 8, 2, i64::from(self.day));
        let text = std::str::from_utf8(&out).unwrap_or("1970-01-01");
        serializer.serialize_str(text)
    }
}

fn put_digits(out: &mut [u8], at: usize, width: usize, mut value: i64) {
    for i in (0..width).rev() {
        if let Some(slot) = out.get_mut(at + i) {
            // value % 10 is in 0..=9 for the non-negative values we render
            *slot = b'0' + u8::try_from(value.rem_euclid(10)).unwrap_or(0);
        }
        value /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if m <= 2 { y + 1 } else { y };
    (
        year,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// (year, month, day) to days since 1970-01-01 (inverse of [`civil_from_days`]).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Day of week of a day number, 0 = Monday .. 6 = Sunday (1970-01-01 was a Thursday).
pub fn weekday(days: i64) -> usize {
    usize::try_from((days + 3).rem_euclid(7)).unwrap_or(0)
}

/// Relative activity by hour of day (local time is taken as UTC for simplicity): quiet nights,
/// a lunchtime bump and an evening peak.
const WEB_HOURS: [f64; 24] = [
    0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.30, 0.55, 0.75, 0.85, 0.90, 0.95, 1.05, 1.00, 0.90, 0.90,
    0.95, 1.05, 1.20, 1.40, 1.50, 1.35, 1.00, 0.55,
];
/// Call centre: open 8:00-20:00, busiest mid-morning.
const CALL_HOURS: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.70, 1.20, 1.40, 1.30, 1.00, 1.10, 1.20, 1.10, 1.00,
    0.90, 0.70, 0.50, 0.0, 0.0, 0.0, 0.0,
];
/// Email sends go out in the morning.
const SEND_HOURS: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 1.5, 1.0, 0.5, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0,
];
/// Monday .. Sunday.
const WEB_DAYS: [f64; 7] = [0.95, 0.90, 0.90, 0.95, 1.05, 1.25, 1.20];
const CALL_DAYS: [f64; 7] = [1.30, 1.10, 1.00, 1.00, 1.00, 0.40, 0.15];
const SEND_DAYS: [f64; 7] = [0.8, 1.3, 1.0, 1.2, 1.0, 0.3, 0.2];

/// Which rhythm an event follows.
#[derive(Debug, Clone, Copy)]
pub enum Channel {
    Web,
    CallCentre,
    EmailSend,
}

/// Draws event times over `[start, start + days)` with a weekly and a daily rhythm per channel.
/// Holds one cumulative weight per day of the period, so its size depends on `days`, not on the
/// number of people.
#[derive(Debug, Clone)]
pub struct Rhythm {
    start_day: i64,
    web_days: Vec<f64>,
    call_days: Vec<f64>,
    send_days: Vec<f64>,
    web_hours: [f64; 24],
    call_hours: [f64; 24],
    send_hours: [f64; 24],
}

impl Rhythm {
    pub fn new(start_day: i64, days: u32) -> Self {
        let cumulate = |weights: &[f64; 7]| -> Vec<f64> {
            let mut total = 0.0;
            (0..i64::from(days))
                .map(|d| {
                    total += weights.get(weekday(start_day + d)).copied().unwrap_or(1.0);
                    total
                })
                .collect()
        };
        Self {
            start_day,
            web_days: cumulate(&WEB_DAYS),
            call_days: cumulate(&CALL_DAYS),
            send_days: cumulate(&SEND_DAYS),
            web_hours: cumulative24(&WEB_HOURS),
            call_hours: cumulative24(&CALL_HOURS),
            send_hours: cumulative24(&SEND_HOURS),
        }
    }

    /// First millisecond of the period.
    pub fn start(&self) -> Timestamp {
        Timestamp(self.start_day * MS_PER_DAY)
    }

    /// First millisecond after the period.
    pub fn end(&self) -> Timestamp {
        let days = i64::try_from(self.web_days.len()).unwrap_or(0);
        Timestamp((self.start_day + days) * MS_PER_DAY)
    }

    /// A random instant of the period following the channel's rhythm.
    pub fn sample<R: Rng>(&self, rng: &mut R, channel: Channel) -> Timestamp {
        let (days, hours) = match channel {
            Channel::Web => (&self.web_days, &self.web_hours),
            Channel::CallCentre => (&self.call_days, &self.call_hours),
            Channel::EmailSend => (&self.send_days, &self.send_hours),
        };
        let day = pick_cumulative(days, rng);
        let hour = pick_cumulative(hours, rng);
        let within_hour = rng.gen_range(0..MS_PER_HOUR);
        Timestamp(
            (self.start_day + i64::try_from(day).unwrap_or(0)) * MS_PER_DAY
                + i64::try_from(hour).unwrap_or(0) * MS_PER_HOUR
                + within_hour,
        )
    }

    /// Keeps a derived time (session tail, email open) inside the period.
    pub fn clamp(&self, t: Timestamp) -> Timestamp {
        Timestamp(t.0.clamp(self.start().0, self.end().0 - 1))
    }
}

fn cumulative24(weights: &[f64; 24]) -> [f64; 24] {
    let mut out = [0.0; 24];
    let mut total = 0.0;
    for (slot, w) in out.iter_mut().zip(weights) {
        total += w;
        *slot = total;
    }
    out
}

/// Index drawn with probability proportional to the weights whose running sums are given.
fn pick_cumulative<R: Rng>(cumulative: &[f64], rng: &mut R) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    if total <= 0.0 {
        return 0;
    }
    let x = rng.gen_range(0.0..total);
    cumulative
        .partition_point(|&c| c <= x)
        .min(cumulative.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn rfc3339_matches_the_time_crate() {
        let format = time::format_description::well_known::Rfc3339;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..10_000 {
            let ms: i64 = rng.gen_range(0..4_102_444_800_000); // up to 2100-01-01
            let ours = Timestamp(ms).to_rfc3339();
            let parsed = time::OffsetDateTime::parse(&ours, &format).unwrap();
            let back = parsed.unix_timestamp_nanos() / 1_000_000;
            assert_eq!(back, i128::from(ms), "{ours}");
        }
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(951_782_400_123).to_rfc3339(),
            "2000-02-29T00:00:00.123Z"
        );
    }

    #[test]
    fn civil_round_trip() {
        for days in -800_000..800_000i64 {
            if days % 997 != 0 {
                continue;
            }
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(weekday(days_from_civil(2025, 1, 6)), 0); // a Monday
    }

    #[test]
    fn samples_stay_in_period_and_follow_the_rhythm() {
        let start = days_from_civil(2025, 1, 6); // Monday
        let rhythm = Rhythm::new(start, 28);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut by_hour = [0u32; 24];
        let mut call_weekend = 0;
        for _ in 0..50_000 {
            let t = rhythm.sample(&mut rng, Channel::Web);
            assert!(t >= rhythm.start() && t < rhythm.end());
            by_hour[usize::try_from((t.0 / MS_PER_HOUR) % 24).unwrap()] += 1;
            let c = rhythm.sample(&mut rng, Channel::CallCentre);
            let hour = (c.0 / MS_PER_HOUR) % 24;
            assert!((8..20).contains(&hour), "call at {hour}h");
            if weekday(c.0.div_euclid(MS_PER_DAY)) >= 5 {
                call_weekend += 1;
            }
        }
        // evening peak is several times busier than the small hours
        assert!(by_hour[20] > 5 * by_hour[3], "{by_hour:?}");
        // weekends are quiet for the call centre (weights 0.55 of 6.95 per week)
        assert!(call_weekend < 50_000 / 8, "{call_weekend}");
    }
}
