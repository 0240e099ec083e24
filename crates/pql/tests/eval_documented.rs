//! The documented expressions evaluated on constructed profiles: a positive and a negative
//! case (and null cases where the docs define them) for each. `now` is Wednesday
//! 2025-01-15T12:00:00Z throughout.
#![allow(clippy::unwrap_used)]

mod documented;

use documented::doc;
use serde_json::{json, Value};
use tessera_pql::{compile, parse, EvalContext, EventSet};

const NOW: &str = "2025-01-15T12:00:00Z";

fn now_ms() -> i64 {
    tessera_pql::time::parse_timestamp(NOW).unwrap()
}

fn eval_with(src: &str, profile: Value, events: Value, segments: &[&str]) -> Value {
    let expr = parse(src).unwrap_or_else(|e| panic!("{src}\n{e}"));
    let program = compile(&expr).unwrap_or_else(|e| panic!("{src}\n{e}"));
    let events = EventSet::new(events.as_array().cloned().unwrap_or_default());
    let member = |id: &str| segments.contains(&id);
    let ctx = EvalContext {
        now_ms: now_ms(),
        segments: &member,
    };
    program.evaluate(&profile, &events, &ctx)
}

fn eval(src: &str, profile: Value) -> Value {
    eval_with(src, profile, json!([]), &[])
}

fn eval_events(src: &str, profile: Value, events: Value) -> Value {
    eval_with(src, profile, events, &[])
}

/// (expression number, profile, expected result): profile-only expressions.
fn profile_cases() -> Vec<(u32, Value, Value)> {
    vec![
        (
            1,
            json!({"homeAddress": {"stateProvince": "ON"}, "workAddress": {"stateProvince": "ON"}}),
            json!(true),
        ),
        (
            1,
            json!({"homeAddress": {"stateProvince": "ON"}, "workAddress": {"stateProvince": "QC"}}),
            json!(false),
        ),
        (
            1,
            json!({"homeAddress": {"stateProvince": "ON"}}),
            json!(null),
        ),
        (
            2,
            json!({"homeAddress": {"stateProvince": "ON"}}),
            json!(true),
        ),
        (2, json!({}), json!(null)),
        (
            3,
            json!({"homeAddress": {"stateProvince": "ON"}, "workAddress": {"stateProvince": "ON"}}),
            json!(true),
        ),
        (
            3,
            json!({"homeAddress": {"stateProvince": "ON"}, "workAddress": {"stateProvince": "BC"}}),
            json!(false),
        ),
        (4, json!({"homeAddress": {"countryISO": "CA"}}), json!(true)),
        (
            4,
            json!({"homeAddress": {"countryISO": "US"}}),
            json!(false),
        ),
        (5, json!({"homeAddress": {"countryISO": "US"}}), json!(true)),
        (
            5,
            json!({"homeAddress": {"countryISO": "CA"}}),
            json!(false),
        ),
        (6, json!({"person": {"birthMonth": 3}}), json!(true)),
        (6, json!({"person": {"birthMonth": 2}}), json!(false)),
        (
            7,
            json!({"homeAddress": {"countryISO": "CA"}, "person": {"birthYear": 1985}}),
            json!(true),
        ),
        (
            7,
            json!({"homeAddress": {"countryISO": "CA"}, "person": {"birthYear": 1990}}),
            json!(false),
        ),
        (
            7,
            json!({"homeAddress": {"countryISO": "US"}}),
            json!(false),
        ),
        (7, json!({"homeAddress": {"countryISO": "CA"}}), json!(null)),
        (8, json!({"homeAddress": {"countryISO": "US"}}), json!(true)),
        (
            8,
            json!({"homeAddress": {"countryISO": "CA"}}),
            json!(false),
        ),
        (8, json!({}), json!(null)),
        (9, json!({"homeAddress": {"countryISO": "CA"}}), json!(1)),
        (9, json!({"homeAddress": {"countryISO": "FR"}}), json!(2)),
        (10, json!({"city": "Los Angeles"}), json!(true)),
        (10, json!({"city": "Paris"}), json!(false)),
        (11, json!({"person": {"name": "Joe Smith"}}), json!(true)),
        (11, json!({"person": {"name": "joe smith"}}), json!(false)),
        (
            12,
            json!({"person": {"emailAddress": "a@b.com"}}),
            json!(true),
        ),
        (
            12,
            json!({"person": {"emailAddress": "a@b.org"}}),
            json!(false),
        ),
        (
            13,
            json!({"person": {"emailAddress": "joe@gmail.com"}}),
            json!(true),
        ),
        (
            13,
            json!({"person": {"emailAddress": "joe2010@gmail.com"}}),
            json!(false),
        ),
        (14, json!({"person": {"name": "john doe"}}), json!(true)),
        (14, json!({"person": {"name": "Mr John"}}), json!(false)),
        (
            15,
            json!({"emailAddress": "joe@example.com"}),
            json!("example"),
        ),
        (15, json!({"emailAddress": "no-at-sign"}), json!(null)),
        (16, json!({"person": {"birthMonth": 6}}), json!(true)),
        (16, json!({"person": {"birthMonth": 4}}), json!(false)),
        (16, json!({}), json!(false)),
        (17, json!({"person": {"birthMonth": 4}}), json!(true)),
        (17, json!({"person": {"birthMonth": 6}}), json!(false)),
        (17, json!({}), json!(false)),
        (
            18,
            json!({"person": {"favoriteColors": ["black", "red"]}}),
            json!(true),
        ),
        (
            18,
            json!({"person": {"favoriteColors": ["black"]}}),
            json!(false),
        ),
        (
            19,
            json!({"person1": {"favoriteColors": ["red", "black", "blue", "green"]}, "person2": {"favoriteColors": ["green", "white", "blue", "red"]}}),
            json!(true),
        ),
        (
            19,
            json!({"person1": {"favoriteColors": ["red", "blue"]}, "person2": {"favoriteColors": ["green", "blue", "red"]}}),
            json!(false),
        ),
        (
            20,
            json!({"person": {"favoriteCities": ["Paris"], "visitedCities": ["Rome", "Paris"]}}),
            json!(true),
        ),
        (
            20,
            json!({"person": {"favoriteCities": ["Oslo"], "visitedCities": ["Rome", "Paris"]}}),
            json!(false),
        ),
        (
            21,
            json!({"person": {"eatenFoods": ["ramen", "pizza", "sushi"]}}),
            json!(true),
        ),
        (
            21,
            json!({"person": {"eatenFoods": ["sushi"]}}),
            json!(false),
        ),
        (
            22,
            json!({"person": {"orders": [{"storeId": 1}, {"storeId": 1}, {"storeId": 2}]}}),
            json!(true),
        ),
        (
            22,
            json!({"person": {"orders": [{"storeId": 1}, {"storeId": 1}]}}),
            json!(false),
        ),
        (
            23,
            json!({"orders": [{"id": "a", "price": 10}, {"id": "b", "price": 50}, {"id": "c", "price": 30}]}),
            json!({"id": "b", "price": 50}),
        ),
        (23, json!({"orders": []}), json!(null)),
        (
            24,
            json!({"identityMap": {"example@example.com": [{"id": "x"}]}}),
            json!([{"id": "x"}]),
        ),
        (24, json!({"identityMap": {}}), json!(null)),
        (
            25,
            json!({"person": {"homeAddress": {"city": "Oslo"}}}),
            json!(true),
        ),
        (25, json!({"person": {}}), json!(false)),
        (26, json!({"person": {"age": 25}}), json!(true)),
        (26, json!({"person": {"age": 26}}), json!(false)),
        (
            27,
            json!({"orders": [{"order": {"price": 10}}, {"order": {"price": 5.5}}]}),
            json!(15.5),
        ),
        (27, json!({"orders": []}), json!(0)),
        (
            28,
            json!({"person": {"birthdate": "1990-06-15"}}),
            json!(true),
        ),
        (
            28,
            json!({"person": {"birthdate": "1990-07-15"}}),
            json!(false),
        ),
        (
            29,
            json!({"person": {"birthday": "1993-02-01"}}),
            json!(true),
        ),
        (
            29,
            json!({"person": {"birthday": "1990-02-01"}}),
            json!(false),
        ),
        // last week = Mon 2025-01-06 .. Sun 2025-01-12
        (
            30,
            json!({"product": {"saleDate": "2025-01-06T00:00:00Z"}}),
            json!(true),
        ),
        (
            30,
            json!({"product": {"saleDate": "2025-01-12T23:59:59Z"}}),
            json!(true),
        ),
        (
            30,
            json!({"product": {"saleDate": "2025-01-13T00:00:00Z"}}),
            json!(false),
        ),
        (
            30,
            json!({"product": {"saleDate": "2025-01-05T23:59:59Z"}}),
            json!(false),
        ),
        (
            31,
            json!({"product": {"saleDate": "2016-05-01T10:00:00Z"}}),
            json!(true),
        ),
        (
            31,
            json!({"product": {"saleDate": "2017-07-01T23:00:00Z"}}),
            json!(true),
        ),
        (
            31,
            json!({"product": {"saleDate": "2017-07-02T00:00:00Z"}}),
            json!(false),
        ),
        (
            31,
            json!({"product": {"saleDate": "2015-01-07T23:59:59Z"}}),
            json!(false),
        ),
        // exactly 3 hours before now: the hour [09:00, 10:00)
        (
            32,
            json!({"product": {"saleDate": "2025-01-15T09:30:00Z"}}),
            json!(true),
        ),
        (
            32,
            json!({"product": {"saleDate": "2025-01-15T10:00:00Z"}}),
            json!(false),
        ),
        (
            32,
            json!({"product": {"saleDate": "2025-01-15T08:59:59Z"}}),
            json!(false),
        ),
        // 3 days before today: the day 2025-01-12
        (
            33,
            json!({"person": {"birthday": "2025-01-12T23:00:00Z"}}),
            json!(true),
        ),
        (
            33,
            json!({"person": {"birthday": "2025-01-13T00:00:00Z"}}),
            json!(false),
        ),
        (33, json!({}), json!(null)),
        (40, json!({"homeAddress": {"country": "us"}}), json!(true)),
        (40, json!({"homeAddress": {"country": "CA"}}), json!(false)),
        (49, json!({"person": {"gender": "female"}}), json!(60)),
        (49, json!({"person": {"gender": "male"}}), json!(65)),
        (49, json!({}), json!(65)),
        (
            50,
            json!({"homeAddress": {"countryCode": "MX"}}),
            json!("NA"),
        ),
        (
            50,
            json!({"homeAddress": {"countryCode": "FR"}}),
            json!("ROW"),
        ),
        (51, json!({"person": {"birthYear": 2000}}), json!(true)),
        (51, json!({"person": {"birthYear": 1999}}), json!(false)),
        (55, json!({"workAddress": {"country": "US"}}), json!(true)),
        (55, json!({"workAddress": {"country": "CA"}}), json!(false)),
    ]
}

#[test]
fn profile_expressions_evaluate_as_documented() {
    for (n, profile, expected) in profile_cases() {
        let got = eval(doc(n), profile.clone());
        assert_eq!(got, expected, "#{n} on {profile}");
    }
}

fn ev(ts: &str, body: Value) -> Value {
    let mut e = body;
    if let Some(m) = e.as_object_mut() {
        m.insert("timestamp".into(), json!(ts));
    }
    e
}

#[test]
fn event_filters_34_35() {
    let events = json!([
        ev(
            "2025-01-10T00:00:00Z",
            json!({"productListItems": [{"SKU": "PS"}, {"SKU": "X"}]})
        ),
        ev(
            "2025-01-11T00:00:00Z",
            json!({"productListItems": [{"SKU": "X"}]})
        ),
    ]);
    let got = eval_events(doc(34), json!({}), events.clone());
    assert_eq!(got.as_array().map(Vec::len), Some(1));
    assert_eq!(got[0]["timestamp"], "2025-01-10T00:00:00Z");
    // `^^` reaches the profile from inside the item filter
    let female = eval_events(
        doc(35),
        json!({"person": {"gender": "female"}}),
        events.clone(),
    );
    assert_eq!(female.as_array().map(Vec::len), Some(2));
    let male = eval_events(doc(35), json!({"person": {"gender": "male"}}), events);
    assert_eq!(male.as_array().map(Vec::len), Some(1));
}

#[test]
fn quantifiers_36_38() {
    let both = json!([ev(
        "2025-01-10T00:00:00Z",
        json!({"commerce": {"item": {"price": 60}}, "productListItems": [{"SKU": "PS"}]})
    )]);
    let cheap = json!([ev(
        "2025-01-10T00:00:00Z",
        json!({"commerce": {"item": {"price": 40}}, "productListItems": [{"SKU": "PS"}]})
    )]);
    let no_ps = json!([ev(
        "2025-01-10T00:00:00Z",
        json!({"commerce": {"item": {"price": 60}}, "productListItems": [{"SKU": "X"}]})
    )]);
    assert_eq!(eval_events(doc(36), json!({}), both.clone()), json!(true));
    assert_eq!(eval_events(doc(36), json!({}), cheap), json!(false));
    assert_eq!(eval_events(doc(36), json!({}), no_ps), json!(false));
    let forall = "forall E from xEvent where E.commerce.item.price > 50";
    assert_eq!(eval_events(forall, json!({}), both), json!(true));
    assert_eq!(eval_events(forall, json!({}), json!([])), json!(true));

    let home = json!([ev(
        "2025-01-10T00:00:00Z",
        json!({"_experience": {"analytics": {"endUser": {"firstWeb": {"webPageDetails": {"isHomePage": true}}}}}})
    )]);
    assert_eq!(eval_events(doc(38), json!({}), home), json!(true));
    assert_eq!(
        eval_events(
            doc(38),
            json!({}),
            json!([ev("2025-01-10T00:00:00Z", json!({}))])
        ),
        json!(false)
    );
}

#[test]
fn let_and_sum_over_37() {
    let order = |amount: f64, currency: &str| {
        ev(
            "2025-01-10T00:00:00Z",
            json!({"commerce": {"order": {"priceTotal": amount, "currencyCode": currency}}}),
        )
    };
    let within = json!([
        order(50.0, "USD"),
        order(100.0, "USD"),
        order(5000.0, "EUR")
    ]);
    assert_eq!(eval_events(doc(37), json!({}), within), json!(true));
    let above = json!([order(600.0, "USD"), order(500.0, "USD")]);
    assert_eq!(eval_events(doc(37), json!({}), above), json!(false));
    assert_eq!(eval_events(doc(37), json!({}), json!([])), json!(false));
}

#[test]
fn chains_39_44() {
    let checkout = |ts: &str| ev(ts, json!({"eventType": "commerce.checkouts"}));
    let click = |ts: &str| ev(ts, json!({"eventType": "directMarketing.emailClicked"}));
    // today = 2025-01-15 (UTC)
    assert_eq!(
        eval_events(
            doc(39),
            json!({}),
            json!([checkout("2025-01-15T08:00:00Z")])
        ),
        json!(true)
    );
    assert_eq!(
        eval_events(
            doc(39),
            json!({}),
            json!([ev(
                "2025-01-15T08:00:00Z",
                json!({"eventType": "Commerce.Checkouts"})
            )])
        ),
        json!(true)
    );
    assert_eq!(
        eval_events(
            doc(39),
            json!({}),
            json!([checkout("2025-01-14T23:59:59Z")])
        ),
        json!(false)
    );

    let us = json!({"workAddress": {"country": "US"}});
    let in_order = json!([
        click("2025-01-15T09:00:00Z"),
        checkout("2025-01-15T10:00:00Z")
    ]);
    let reversed = json!([
        checkout("2025-01-15T09:00:00Z"),
        click("2025-01-15T10:00:00Z")
    ]);
    assert_eq!(
        eval_events(doc(41), us.clone(), in_order.clone()),
        json!(true)
    );
    assert_eq!(eval_events(doc(41), us.clone(), reversed), json!(false));
    assert_eq!(
        eval_events(doc(41), json!({"workAddress": {"country": "FR"}}), in_order),
        json!(false)
    );
    // same instant is not "then": strict time ordering
    let same = json!([
        click("2025-01-15T09:00:00Z"),
        checkout("2025-01-15T09:00:00Z")
    ]);
    assert_eq!(eval_events(doc(41), us, same), json!(false));

    let seg = "e3be6d7f-1727-401f-a41e-c296b45f607a";
    let recent = json!([checkout("2025-01-14T16:00:00Z")]); // 20 h ago
    let edge = json!([checkout("2025-01-14T12:00:00Z")]); // exactly 24 h ago: `<=` includes it
    let old = json!([checkout("2025-01-14T11:59:59Z")]);
    assert_eq!(
        eval_with(doc(42), json!({}), recent.clone(), &[seg]),
        json!(true)
    );
    assert_eq!(eval_with(doc(42), json!({}), edge, &[seg]), json!(true));
    assert_eq!(eval_with(doc(42), json!({}), old, &[seg]), json!(false));
    assert_eq!(eval_with(doc(42), json!({}), recent, &[]), json!(false));

    let a = "7deb246a-49b4-4687-95f9-6316df049948";
    let b = "9e1646bb-57ff-4309-ba59-17d6c5bab6a1";
    assert_eq!(
        eval_with(doc(43), json!({}), json!([]), &[a, b]),
        json!(true)
    );
    assert_eq!(eval_with(doc(43), json!({}), json!([]), &[a]), json!(false));

    let tx = |ts: &str| ev(ts, json!({"eventType": "transaction"}));
    assert_eq!(
        eval_events(doc(44), json!({}), json!([tx("2025-01-09T12:00:00Z")])),
        json!(true)
    );
    assert_eq!(
        eval_events(doc(44), json!({}), json!([tx("2025-01-08T12:00:00Z")])),
        json!(false)
    );
    assert_eq!(
        eval_events(doc(44), json!({}), json!([tx("2025-01-16T12:00:00Z")])),
        json!(false),
        "future events are not in the past 7 days"
    );
}

fn downloads() -> Value {
    json!([
        ev(
            "2025-01-14T00:00:00Z",
            json!({"eventType": "download", "contentType": "image", "product": "p1", "commerce": {"order": {"priceTotal": 10}}})
        ),
        ev(
            "2025-01-13T00:00:00Z",
            json!({"eventType": "download", "contentType": "image", "product": "p1", "commerce": {"order": {"priceTotal": 20}}})
        ),
        ev(
            "2025-01-12T00:00:00Z",
            json!({"eventType": "download", "contentType": "video", "product": "p2", "commerce": {"order": {"priceTotal": 5}}})
        ),
        ev(
            "2025-01-01T00:00:00Z",
            json!({"eventType": "download", "contentType": "image", "product": "p3"})
        ),
        ev(
            "2025-01-14T00:00:00Z",
            json!({"eventType": "transaction", "category": "sporting goods", "commerce": {"order": {"priceTotal": 30.5}}})
        ),
        ev(
            "2025-01-02T00:00:00Z",
            json!({"eventType": "transaction", "category": "sporting goods", "commerce": {"order": {"priceTotal": 99}}})
        ),
    ])
}

#[test]
fn computed_attribute_expressions_45_48() {
    assert_eq!(eval_events(doc(45), json!({}), downloads()), json!(2));
    assert_eq!(eval_events(doc(45), json!({}), json!([])), json!(0));
    assert_eq!(eval_events(doc(46), json!({}), downloads()), json!(30.5));
    assert_eq!(
        eval_events(doc(47), json!({}), downloads()),
        json!({"p1": 2, "p2": 1})
    );
    assert_eq!(
        eval_events(doc(48), json!({}), downloads()),
        json!({"p1": {"count": 2, "sum": 30}, "p2": {"count": 1, "sum": 5}})
    );
}

#[test]
fn computed_attribute_expressions_52_54() {
    let events = json!([
        ev(
            "2025-01-14T00:00:00Z",
            json!({"commerce": {"checkouts": {"value": 1}, "order": {"priceTotal": 5}}})
        ),
        ev(
            "2025-01-13T00:00:00Z",
            json!({"commerce": {"order": {"priceTotal": 12}}})
        ),
        ev(
            "2025-01-13T00:00:00Z",
            json!({"commerce": {"order": {"priceTotal": 7}}})
        ),
        ev(
            "2025-01-01T00:00:00Z",
            json!({"commerce": {"checkouts": {"value": 1}, "order": {"priceTotal": 1000}}})
        ),
    ]);
    assert_eq!(eval_events(doc(52), json!({}), events), json!(17));

    let ships = json!([
        ev(
            "2025-01-15T01:00:00Z",
            json!({"commerce": {"shipping": {"shipDate": "2025-01-15T00:30:00Z"}}})
        ),
        ev(
            "2025-01-14T13:00:00Z",
            json!({"commerce": {"shipping": {"shipDate": "2025-01-14T20:00:00Z"}}})
        ),
        ev(
            "2025-01-10T00:00:00Z",
            json!({"commerce": {"shipping": {"shipDate": "2025-01-10T00:00:00Z"}}})
        ),
    ]);
    assert_eq!(
        eval_events(doc(53), json!({}), ships),
        json!("2025-01-14T20:00:00Z")
    );

    let abandon = |v: i64| {
        ev(
            "2025-01-10T00:00:00Z",
            json!({"metrics": {"commerce": {"abandons": {"value": v}}}}),
        )
    };
    assert_eq!(
        eval_events(doc(54), json!({}), json!([abandon(0), abandon(2)])),
        json!(true)
    );
    assert_eq!(
        eval_events(doc(54), json!({}), json!([abandon(0)])),
        json!(false)
    );
    assert_eq!(eval_events(doc(54), json!({}), json!([])), json!(false));
}

#[test]
fn null_semantics_and_precedence() {
    let p = json!({"a": 1, "t": true, "f": false});
    let cases: &[(&str, Value)] = &[
        ("missing = 1 or t", json!(true)),
        ("missing = 1 or f", json!(null)),
        ("missing = 1 and f", json!(false)),
        ("missing = 1 and t", json!(null)),
        ("not (missing = 1)", json!(null)),
        ("missing.isNull()", json!(true)),
        ("a.isNull()", json!(false)),
        ("missing in [1, 2]", json!(false)),
        ("missing notIn [1, 2]", json!(false)),
        ("not (missing in [1, 2])", json!(true)),
        ("a + 2 * 3 = 7", json!(true)),
        ("(a + 2) * 3", json!(9)),
        ("7 / 2", json!(3.5)),
        ("8 / 2", json!(4)),
        ("1 / 0", json!(null)),
        ("-a - -1", json!(0)),
        ("a = 1 or a = 2 and a = 3", json!(true)),
        ("(a = 1 or a = 2) and a = 3", json!(false)),
        ("a = \"1\"", json!(false)),
        ("a < \"1\"", json!(null)),
        ("currentYear()", json!(2025)),
        (
            "currentMonth() = 1 and currentDayOfMonth() = 15",
            json!(true),
        ),
        ("if(missing, 1, 2)", json!(2)),
        ("\"abc\".equals(\"ABC\")", json!(false)),
        ("\"abc\".equals(\"ABC\", false)", json!(true)),
        ("\"abc\".notEqualTo(\"ABC\", false)", json!(false)),
        ("\"Hello\".startsWith(\"he\", false)", json!(true)),
        ("[3, 1, 3, 2].distinct()", json!([3, 1, 2])),
        ("[1, 2].intersection([2, 3])", json!([2])),
        ("[1, 2].includes(2)", json!(true)),
        ("[5, 9, 7].topN($1, 2)", json!([9, 7])),
        ("[5, 9, 7].bottomN($1, 2)", json!([5, 7])),
        ("[5, 9, 7].max()", json!(9)),
        ("[5, 9, 7].average()", json!(7.0)),
        ("{\"k\": 1}.keys()", json!(["k"])),
        ("mapEntry(\"k\", 2).values()", json!([2])),
        ("let x = a + 1 in x * 10", json!(20)),
        ("date(2024, 2, 29).getDayOfMonth()", json!(29)),
        ("\"2024-02-29T23:00:00-02:00\".getMonth()", json!(3)),
        ("\"x_y\" like \"x\\_y\"", json!(false)),
        ("\"xzy\" like \"x_y\"", json!(true)),
        ("$1", json!({"a": 1, "t": true, "f": false})),
        ("(P) => P.a + 1", json!(2)),
    ];
    for (src, expected) in cases {
        assert_eq!(&eval(src, p.clone()), expected, "{src}");
    }
}

#[test]
fn occurs_boundaries() {
    // now = 2025-01-15T12:00:00Z
    let at = |ts: &str, spec: &str| eval(&format!("t occurs {spec}"), json!({"t": ts}));
    assert_eq!(
        at("2025-01-08T12:00:01Z", "< 7 days before now"),
        json!(true)
    );
    assert_eq!(
        at("2025-01-08T12:00:00Z", "< 7 days before now"),
        json!(false)
    );
    assert_eq!(
        at("2025-01-08T12:00:00Z", "<= 7 days before now"),
        json!(true)
    );
    assert_eq!(
        at("2025-01-08T11:59:59Z", "> 7 days before now"),
        json!(true)
    );
    assert_eq!(
        at("2025-01-15T12:00:00Z", "< 1 hour before now"),
        json!(true)
    );
    assert_eq!(
        at("2025-01-15T12:00:01Z", "< 1 hour before now"),
        json!(false)
    );
    // calendar units across month and year ends
    assert_eq!(
        at("2024-12-15T12:00:00Z", "= 1 month before now"),
        json!(true)
    );
    assert_eq!(
        at("2024-11-15T12:00:00Z", "< 2 months before now"),
        json!(false)
    );
    assert_eq!(
        at("2024-11-15T12:00:01Z", "< 2 months before now"),
        json!(true)
    );
    assert_eq!(
        at(
            "2024-12-31T23:59:59Z",
            "occurs last year".trim_start_matches("occurs ")
        ),
        json!(true)
    );
    assert_eq!(at("2025-01-01T00:00:00Z", "last year"), json!(false));
    assert_eq!(at("2024-12-31T23:59:59Z", "last month"), json!(true));
    assert_eq!(at("2025-01-01T00:00:00Z", "this month"), json!(true));
    assert_eq!(at("2025-02-01T00:00:00Z", "next month"), json!(true));
    assert_eq!(at("2025-01-14T00:00:00Z", "yesterday"), json!(true));
    assert_eq!(at("2025-01-16T00:00:00Z", "on tomorrow"), json!(true));
    assert_eq!(at("2025-01-14T23:59:59Z", "before today"), json!(true));
    assert_eq!(at("2025-01-15T00:00:00Z", "before today"), json!(false));
    assert_eq!(at("2025-01-16T00:00:00Z", "after today"), json!(true));
    assert_eq!(at("2025-01-15T23:00:00Z", "after today"), json!(false));
    assert_eq!(
        at("2025-01-15T00:00:00+01:00", "today"),
        json!(false),
        "offsets are converted to UTC"
    );
    assert_eq!(
        at("2025-01-17T10:00:00Z", "< 3 days after today"),
        json!(true)
    );
    assert_eq!(
        at("2025-01-18T10:00:00Z", "< 3 days after today"),
        json!(false)
    );
    assert_eq!(
        at("2019-12-31T10:00:00Z", "on date(2019, 12, 31)"),
        json!(true)
    );
    assert_eq!(
        at("2020-01-01T00:00:00Z", "on date(2019, 12, 31)"),
        json!(false)
    );
}
