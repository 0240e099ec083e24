//! Classifier vectors from the streaming and edge segmentation docs (rules of 2025-05-20).

mod documented;

use documented::doc;
use tessera_pql::classify::{classify, classify_with, AudienceKind, Method};
use tessera_pql::parse;

fn method(src: &str) -> Method {
    match parse(src) {
        Ok(expr) => classify(&expr).method,
        Err(e) => panic!("{src}\n{e}"),
    }
}

#[test]
fn documented_vectors() {
    let cases: &[(u32, Method)] = &[
        (4, Method::Edge),       // profile only
        (39, Method::Edge),      // single event today
        (40, Method::Edge),      // profile only
        (41, Method::Edge),      // multiple events within 24 h + profile
        (42, Method::Streaming), // inSegment + 24 h CHAIN: streaming workaround, not edge
        (43, Method::Edge),      // segment of segments
        (44, Method::Batch),     // 7-day window
        (38, Method::Batch),     // no window (eligible under the pre-2025 rules only)
        (45, Method::Batch),     // count over events
        (37, Method::Batch),     // sum over events
        (54, Method::Batch),     // events projected without a window
    ];
    for (n, expected) in cases {
        assert_eq!(method(doc(*n)), *expected, "#{n}");
    }
}

#[test]
fn reasons_are_given() {
    let expr = parse(doc(44)).unwrap_or_else(|e| panic!("{e}"));
    let c = classify(&expr);
    assert_eq!(
        c.to_string(),
        "batch: single event; CHAIN step A has a time window longer than 24 hours or not ending now"
    );
    let expr = parse(doc(41)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        classify(&expr).to_string(),
        "edge: multiple events and profile attributes"
    );
}

#[test]
fn in_segment_with_profile_only_audience_is_edge() {
    let expr = parse(doc(42)).unwrap_or_else(|e| panic!("{e}"));
    let c = classify_with(&expr, &|_| Some(AudienceKind::ProfileOnly));
    assert_eq!(c.method, Method::Edge);
    let c = classify_with(&expr, &|_| Some(AudienceKind::Events));
    assert_eq!(c.method, Method::Streaming);
}

#[test]
fn negated_and_unwindowed_events_are_batch() {
    let chain_today = r#"CHAIN(xEvent, timestamp, [C0: WHAT(eventType = "x") WHEN(today)])"#;
    assert_eq!(method(&format!("not {chain_today}")), Method::Batch);
    assert_eq!(
        method(&format!("not (a = 1) and {chain_today}")),
        Method::Edge
    );
    assert_eq!(
        method(r#"CHAIN(xEvent, timestamp, [C0: WHAT(eventType = "x")])"#),
        Method::Batch
    );
    assert_eq!(
        method(
            r#"CHAIN(xEvent, timestamp, [C0: WHAT(eventType = "x") WHEN(< 25 hours before now)])"#
        ),
        Method::Batch
    );
    assert_eq!(
        method(r#"CHAIN(xEvent, timestamp, [C0: WHAT(eventType = "x") WHEN(yesterday)])"#),
        Method::Batch
    );
    assert_eq!(
        method(
            r#"select e from xEvent where e.timestamp occurs <= 24 hours before now and e.eventType = "x""#
        ),
        Method::Edge
    );
    assert_eq!(
        method(r#"xEvent[timestamp occurs < 3 hours before now and eventType = "x"]"#),
        Method::Edge
    );
    assert_eq!(
        method(r#"inSegment("a") and xEvent[timestamp occurs < 3 hours before now]"#),
        Method::Batch
    );
}

/// The docs print #42 over three lines; newlines are whitespace.
#[test]
fn multi_line_documented_form() {
    let src = "inSegment(\"e3be6d7f-1727-401f-a41e-c296b45f607a\") and \nCHAIN(xEvent, timestamp, [C0: WHAT(eventType.equals(\"commerce.checkouts\", false)) \nWHEN(<= 24 hours before now)])";
    assert_eq!(method(src), Method::Streaming);
    assert_eq!(parse(src).ok(), parse(doc(42)).ok());
}

#[test]
fn dependencies_and_event_use() {
    let deps = |n: u32| {
        parse(doc(n))
            .map(|e| e.segment_dependencies())
            .unwrap_or_default()
    };
    assert_eq!(
        deps(43),
        vec![
            "7deb246a-49b4-4687-95f9-6316df049948".to_owned(),
            "9e1646bb-57ff-4309-ba59-17d6c5bab6a1".to_owned()
        ]
    );
    assert_eq!(
        deps(42),
        vec!["e3be6d7f-1727-401f-a41e-c296b45f607a".to_owned()]
    );
    assert!(deps(4).is_empty());
    let events = |n: u32| parse(doc(n)).map(|e| e.uses_events()).unwrap_or_default();
    assert!(events(39) && events(45) && events(54) && events(38));
    assert!(!events(4) && !events(43) && !events(50));
}
