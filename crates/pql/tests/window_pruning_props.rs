//! The profile's events are sorted, so filters and CHAIN steps with a time window visit only
//! the events inside it. Property: the result equals the unpruned evaluation of the same
//! expression over the same events given as a plain JSON array (`evs`, not sorted).

use proptest::prelude::*;
use serde_json::{json, Value};
use tessera_pql::{compile, parse, EvalContext, EventSet};

const NOW: i64 = 1_736_942_400_000; // 2025-01-15T12:00:00Z

const SPECS: &[&str] = &[
    "< 7 days before now",
    "<= 24 hours before now",
    "> 3 days before now",
    ">= 2 days before today",
    "= 3 days before today",
    "!= 1 day before today",
    "< 2 weeks after yesterday",
    "today",
    "yesterday",
    "last week",
    "this month",
    "last month",
    "before today",
    "after yesterday",
    "from yesterday",
    "between date(2025, 1, 1) and date(2025, 1, 10)",
    "on date(2025, 1, 14)",
];

fn events() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(
        (
            0i64..40 * 86_400_000,
            prop::sample::select(vec!["a", "b"]),
            prop::bool::weighted(0.05),
        ),
        0..40,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .map(|(ago, kind, no_ts)| {
                if no_ts {
                    json!({"eventType": kind})
                } else {
                    // events up to 5 days in the future too
                    let ts = tessera_pql::time::format_timestamp(NOW + 5 * 86_400_000 - ago);
                    json!({"timestamp": ts, "eventType": kind})
                }
            })
            .collect()
    })
}

fn eval(src: &str, profile: &Value, events: &EventSet) -> Value {
    let program =
        compile(&parse(src).unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    program.evaluate(profile, events, &EvalContext::new(NOW))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn pruned_equals_unpruned(docs in events(), s1 in prop::sample::select(SPECS), s2 in prop::sample::select(SPECS)) {
        let profile = json!({"evs": docs.clone()});
        let set = EventSet::new(docs);
        let filter = |root: &str| format!("{root}[timestamp occurs {s1} and eventType = \"a\"].count()");
        prop_assert_eq!(eval(&filter("xEvent"), &profile, &set), eval(&filter("evs"), &profile, &set));
        let chain = |root: &str| format!(
            "CHAIN({root}, timestamp, [A: WHAT(eventType = \"a\") WHEN({s1}), B: WHAT(eventType = \"b\") WHEN({s2})])"
        );
        prop_assert_eq!(eval(&chain("xEvent"), &profile, &set), eval(&chain("evs"), &profile, &set));
    }
}
