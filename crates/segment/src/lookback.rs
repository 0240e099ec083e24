//! How far back in a profile's events an expression can look.
//!
//! Evaluating "purchased in the last hour" must not read a profile's whole history: when
//! every use of `xEvent` is filtered by a window ending now (`timestamp occurs <= N units
//! before now`, CHAIN steps with such `WHEN`s, `today`), only events inside the widest window
//! are read. Anything else (a count over all events, an unfiltered `xEvent`) reads them all.

use tessera_pql::ast::{CmpOp, Direction, Expr, OccursSpec, TimeRef, Unit};

const DAY_MS: i64 = 86_400_000;

fn unit_ms(unit: Unit) -> Option<i64> {
    Some(match unit {
        Unit::Millisecond => 1,
        Unit::Second => 1_000,
        Unit::Minute => 60_000,
        Unit::Hour => 3_600_000,
        Unit::Day => DAY_MS,
        Unit::Week => 7 * DAY_MS,
        // Calendar units vary in length: bound them by their longest form.
        Unit::Month => 31 * DAY_MS,
        Unit::Year => 366 * DAY_MS,
        Unit::Decade | Unit::Century | Unit::Millennium => return None,
    })
}

/// The window a time constraint on an event's own `timestamp` keeps, back from now.
fn spec_bound(spec: &OccursSpec) -> Option<i64> {
    match spec {
        OccursSpec::Compare {
            op: CmpOp::Le | CmpOp::Lt,
            amount,
            unit,
            direction: Direction::Before,
            time: TimeRef::Now,
        } => unit_ms(*unit)?.checked_mul(i64::try_from(*amount).ok()?),
        // A day-granular reference near now: today, yesterday.
        OccursSpec::On(TimeRef::Today) => Some(DAY_MS),
        OccursSpec::On(TimeRef::Yesterday) => Some(2 * DAY_MS),
        _ => None,
    }
}

fn is_timestamp(expr: &Expr) -> bool {
    matches!(expr, Expr::Field { name, .. } if name == "timestamp")
}

fn is_events(expr: &Expr) -> bool {
    matches!(expr, Expr::Field { name, .. } if name == "xEvent")
}

/// The window a filter condition keeps: any conjunct bounding the event's timestamp bounds
/// the whole condition.
fn condition_bound(cond: &Expr) -> Option<i64> {
    match cond {
        Expr::Occurs { timestamp, spec } if is_timestamp(timestamp) => spec_bound(spec),
        Expr::Call { func, args } if func == "and" => args.iter().filter_map(condition_bound).min(),
        _ => None,
    }
}

/// Milliseconds back from now that evaluating `expr` needs: `Some(ms)` when every use of
/// `xEvent` is bounded (the widest bound), `None` when some use needs the whole history.
pub fn lookback(expr: &Expr) -> Option<i64> {
    let mut uses = 0usize;
    let mut bounded = 0usize;
    let mut widest = 0i64;
    let mut unbounded = false;
    expr.walk(&mut |node| match node {
        Expr::Filter { array, cond } if is_events(array) => match condition_bound(cond) {
            Some(ms) => {
                bounded += 1;
                widest = widest.max(ms);
            }
            None => unbounded = true,
        },
        Expr::Chain(chain) if is_events(&chain.events) => {
            let bounds: Option<Vec<i64>> = chain
                .steps
                .iter()
                .map(|step| step.when.as_ref().and_then(spec_bound))
                .collect();
            match bounds {
                Some(bounds) => {
                    bounded += 1;
                    widest = widest.max(bounds.into_iter().max().unwrap_or(0));
                }
                None => unbounded = true,
            }
        }
        _ if is_events(node) => uses += 1,
        _ => {}
    });
    // Every `xEvent` node must be the source of a bounded filter or chain.
    (!unbounded && uses == bounded).then_some(widest)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn of(text: &str) -> Option<i64> {
        lookback(&tessera_pql::parse(text).unwrap())
    }

    #[test]
    fn bounded_windows_and_whole_histories() {
        assert_eq!(
            of(r#"xEvent[timestamp occurs <= 1 hours before now and eventType = "x"].count() > 0"#),
            Some(3_600_000)
        );
        assert_eq!(
            of("xEvent[timestamp occurs <= 2 days before now].count() > 0 or xEvent[timestamp occurs < 3 hours before now].count() > 1"),
            Some(2 * DAY_MS)
        );
        assert_eq!(of(r#"xEvent[eventType = "x"].count() > 0"#), None);
        assert_eq!(
            of("xEvent[timestamp occurs <= 1 hours before now].count() > 0 and xEvent.count() > 3"),
            None
        );
        assert_eq!(
            of(
                r#"CHAIN(xEvent, timestamp, [C0: WHAT(eventType.equals("commerce.checkouts", false)) WHEN(today)])"#
            ),
            Some(DAY_MS)
        );
        assert_eq!(of(r#"homeAddress.city = "Basel""#), Some(0));
    }
}
