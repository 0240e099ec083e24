//! Every kind of violation, each with its JSON pointer and code, and all of them reported
//! from a single record.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod common;

use common::{fixture, id_of, schema_body, EVENT};
use serde_json::{json, Value};
use tessera_schema::ViolationCode as Code;

fn event_schema(f: &common::Fixture) -> std::sync::Arc<tessera_schema::CompiledSchema> {
    let mut body = schema_body(
        "Web and commerce",
        EVENT,
        &[
            "https://ns.adobe.com/xdm/context/identitymap",
            "https://ns.adobe.com/xdm/context/experienceevent-web",
            "https://ns.adobe.com/xdm/context/experienceevent-commerce",
            "https://ns.adobe.com/xdm/context/experienceevent-environment-details",
            "https://ns.adobe.com/xdm/context/profile-personal-details",
        ],
    );
    body["allOf"].as_array_mut().unwrap().push(
        json!({"properties": {"_acme": {"type": "object", "properties": {
        "code": {"type": "string", "minLength": 2, "maxLength": 4},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "flag": {"type": "boolean"}}}}}),
    );
    let doc = f.registry.create_schema(&f.tenant, body).unwrap();
    f.registry.compiled(&f.tenant, &id_of(&doc)).unwrap()
}

fn valid_event() -> Value {
    json!({
        "_id": "e-1", "timestamp": "2024-03-01T12:00:00Z", "eventType": "commerce.purchases",
        "identityMap": {"ECID": [{"id": "123", "authenticatedState": "ambiguous", "primary": true}]},
        "web": {"webPageDetails": {"URL": "https://shop.example.com/", "name": "home", "isHomePage": true}},
        "commerce": {"purchases": {"value": 1}, "order": {"priceTotal": 10.5, "currencyCode": "EUR"}},
        "productListItems": [{"SKU": "s1", "quantity": 2}],
        "environment": {"type": "browser", "ipV4": "10.0.0.1", "browserDetails": {"viewportWidth": 1280}},
        "device": {"screenOrientation": "landscape"},
        "personalEmail": {"address": "a@example.com"},
        "_acme": {"code": "abc", "score": 0.5, "tags": ["x"], "flag": false}
    })
}

fn one(compiled: &tessera_schema::CompiledSchema, pointer: &str, value: Value) -> (String, Code) {
    let mut record = valid_event();
    *record.pointer_mut(pointer).unwrap() = value;
    let violations = compiled.validate(&record).unwrap_err();
    assert_eq!(violations.len(), 1, "{pointer}: {violations:?}");
    assert!(!violations[0].message.is_empty());
    (violations[0].path.clone(), violations[0].code)
}

#[test]
fn each_violation_kind_has_its_path_and_code() {
    let f = fixture();
    let schema = event_schema(&f);
    schema.validate(&valid_event()).unwrap();

    let cases: Vec<(&str, Value, Code)> = vec![
        ("/_id", json!(42), Code::WrongType),
        ("/timestamp", json!("2024-03-01 12:00"), Code::BadFormat),
        (
            "/personalEmail/address",
            json!("not-an-email"),
            Code::BadFormat,
        ),
        (
            "/web/webPageDetails/URL",
            json!("shop.example.com"),
            Code::BadFormat,
        ),
        (
            "/web/webPageDetails/isHomePage",
            json!("yes"),
            Code::WrongType,
        ),
        ("/commerce/order/priceTotal", json!("10.5"), Code::WrongType),
        (
            "/commerce/order/currencyCode",
            json!("eur"),
            Code::PatternMismatch,
        ),
        ("/environment/type", json!("car"), Code::NotInEnum),
        (
            "/environment/ipV4",
            json!("300.1.1.1"),
            Code::PatternMismatch,
        ),
        (
            "/environment/browserDetails/viewportWidth",
            json!(-1),
            Code::OutOfRange,
        ),
        (
            "/environment/browserDetails/viewportWidth",
            json!(2147483648_i64),
            Code::OutOfRange,
        ),
        (
            "/environment/browserDetails/viewportWidth",
            json!(12.5),
            Code::WrongType,
        ),
        ("/productListItems/0/quantity", json!("2"), Code::WrongType),
        (
            "/identityMap/ECID/0/authenticatedState",
            json!("maybe"),
            Code::NotInEnum,
        ),
        ("/identityMap/ECID/0/primary", json!(1), Code::WrongType),
        ("/_acme/code", json!("a"), Code::TooShort),
        ("/_acme/code", json!("abcde"), Code::TooLong),
        ("/_acme/score", json!(1.01), Code::OutOfRange),
        ("/_acme/tags", json!([]), Code::TooFewItems),
        ("/_acme/tags", json!(["a", "b", "c"]), Code::TooManyItems),
        ("/_acme/tags", json!("a"), Code::WrongType),
        (
            "/_acme",
            json!({"code": "ab", "unknown": 1}),
            Code::UnknownField,
        ),
        ("/device", json!([]), Code::WrongType),
    ];
    for (pointer, value, code) in cases {
        let (path, found) = one(&schema, pointer, value.clone());
        let expected_path = if code == Code::UnknownField {
            "/_acme/unknown"
        } else {
            pointer
        };
        assert_eq!(
            (path.as_str(), found),
            (expected_path, code),
            "{pointer} = {value}"
        );
    }

    // Missing required fields: class (`timestamp`) and field group (`SKU` of an item).
    let mut record = valid_event();
    record.as_object_mut().unwrap().remove("timestamp");
    record["productListItems"][0]
        .as_object_mut()
        .unwrap()
        .remove("SKU");
    let mut found: Vec<(String, Code)> = schema
        .validate(&record)
        .unwrap_err()
        .into_iter()
        .map(|v| (v.path, v.code))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        vec![
            ("/productListItems/0/SKU".to_owned(), Code::MissingRequired),
            ("/timestamp".to_owned(), Code::MissingRequired)
        ]
    );
}

#[test]
fn every_violation_of_one_record_is_reported() {
    let f = fixture();
    let schema = event_schema(&f);
    let record = json!({
        "_id": 7,
        "timestamp": "yesterday",
        "workEmail": {"address": "x@y.z"},
        "person": {},
        "web": {"webPageDetails": {"URL": "nope", "pageViews": {"value": "1"}}},
        "productListItems": [{"SKU": "a"}, {"quantity": 1.5}],
        "_acme": {"code": "x", "score": -1, "flag": "no"}
    });
    let violations = schema.validate(&record).unwrap_err();
    // Sorted: the walk follows the record's key order, which serde_json may preserve.
    let mut found: Vec<(&str, &str)> = violations
        .iter()
        .map(|v| (v.path.as_str(), v.code.as_str()))
        .collect();
    found.sort_unstable();
    assert_eq!(
        found,
        vec![
            ("/_acme/code", "too_short"),
            ("/_acme/flag", "wrong_type"),
            ("/_acme/score", "out_of_range"),
            ("/_id", "wrong_type"),
            ("/person", "unknown_field"),
            ("/productListItems/1/SKU", "missing_required"),
            ("/productListItems/1/quantity", "wrong_type"),
            ("/timestamp", "bad_format"),
            ("/web/webPageDetails/URL", "bad_format"),
            ("/web/webPageDetails/pageViews/value", "wrong_type"),
            ("/workEmail", "unknown_field"),
        ]
    );
    let by_path = |path: &str| violations.iter().find(|v| v.path == path).unwrap();
    assert_eq!(by_path("/_acme/code").code.keyword(), "minLength");
    assert_eq!(
        by_path("/person").message,
        "field \"person\" is not defined by the schema"
    );
    assert_eq!(
        by_path("/timestamp").message,
        "\"yesterday\" is not a valid date-time"
    );
    // A record that is not an object at all.
    let not_object = schema.validate(&json!([1])).unwrap_err();
    assert_eq!(
        (not_object[0].path.as_str(), not_object[0].code),
        ("", Code::WrongType)
    );
}
