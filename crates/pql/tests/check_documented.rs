//! The documented expressions type-check against a union schema holding the fields they use,
//! with the result types the docs give; mistakes are reported, all of them.

mod documented;

use documented::doc;
use serde_json::{json, Value};
use tessera_pql::checker::{check, Schema, Type};
use tessera_pql::parse;

fn s(ty: &str) -> Value {
    json!({"type": ty})
}

fn obj(props: Value) -> Value {
    json!({"type": "object", "properties": props})
}

fn arr(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn schema() -> Schema {
    let address = obj(
        json!({"stateProvince": s("string"), "countryISO": s("string"), "country": s("string"), "countryCode": s("string")}),
    );
    let colors = obj(json!({"favoriteColors": arr(s("string"))}));
    let profile = obj(json!({
        "homeAddress": address.clone(),
        "workAddress": address,
        "city": s("string"),
        "emailAddress": s("string"),
        "person": obj(json!({
            "birthMonth": s("integer"), "birthYear": s("integer"), "age": s("integer"),
            "name": s("string"), "emailAddress": s("string"), "gender": s("string"),
            "favoriteColors": arr(s("string")), "favoriteCities": arr(s("string")),
            "visitedCities": arr(s("string")), "eatenFoods": arr(s("string")),
            "orders": arr(obj(json!({"storeId": s("string")}))),
            "homeAddress": obj(json!({"city": s("string")})),
            "birthdate": json!({"type": "string", "format": "date"}),
            "birthday": json!({"type": "string", "format": "date"}),
        })),
        "person1": colors.clone(),
        "person2": colors,
        "orders": arr(obj(json!({"price": s("number"), "order": obj(json!({"price": s("number")}))}))),
        "identityMap": {"type": "object", "additionalProperties": arr(obj(json!({"id": s("string")})))},
        "product": obj(json!({"saleDate": time()})),
    }));
    let event = obj(json!({
        "timestamp": time(),
        "eventType": s("string"),
        "contentType": s("string"),
        "category": s("string"),
        "product": s("string"),
        "productListItems": arr(obj(json!({"SKU": s("string")}))),
        "commerce": obj(json!({
            "item": obj(json!({"price": s("number")})),
            "order": obj(json!({"priceTotal": s("number"), "currencyCode": s("string")})),
            "checkouts": obj(json!({"value": s("number")})),
            "purchases": obj(json!({"value": s("number")})),
            "shipping": obj(json!({"shipDate": time()})),
        })),
        "metrics": obj(json!({"commerce": obj(json!({"abandons": obj(json!({"value": s("number")}))}))})),
        "_experience": obj(json!({"analytics": obj(json!({"endUser": obj(json!({"firstWeb": obj(json!({"webPageDetails": obj(json!({"isHomePage": s("boolean")}))}))}))}))})),
    }));
    Schema {
        profile,
        event: Some(event),
    }
}

#[test]
fn documented_expressions_check_with_their_result_types() {
    let b = Type::Bool;
    let expected: Vec<(u32, Type)> = vec![
        (1, b.clone()),
        (2, b.clone()),
        (3, b.clone()),
        (4, b.clone()),
        (5, b.clone()),
        (6, b.clone()),
        (7, b.clone()),
        (8, b.clone()),
        (9, Type::Int),
        (10, b.clone()),
        (11, b.clone()),
        (12, b.clone()),
        (13, b.clone()),
        (14, b.clone()),
        (15, Type::Str),
        (16, b.clone()),
        (17, b.clone()),
        (18, b.clone()),
        (19, b.clone()),
        (20, b.clone()),
        (21, b.clone()),
        (22, b.clone()),
        (25, b.clone()),
        (26, b.clone()),
        (27, Type::Num),
        (28, b.clone()),
        (29, b.clone()),
        (30, b.clone()),
        (31, b.clone()),
        (32, b.clone()),
        (33, b.clone()),
        (36, b.clone()),
        (37, b.clone()),
        (38, b.clone()),
        (39, b.clone()),
        (40, b.clone()),
        (41, b.clone()),
        (42, b.clone()),
        (43, b.clone()),
        (44, b.clone()),
        (45, Type::Int),
        (46, Type::Num),
        (49, Type::Int),
        (50, Type::Str),
        (51, b.clone()),
        (52, Type::Num),
        (53, Type::Time),
        (54, b.clone()),
        (55, b),
    ];
    let schema = schema();
    for (n, ty) in expected {
        let expr = parse(doc(n)).unwrap_or_else(|e| panic!("#{n}: {e}"));
        assert_eq!(check(&expr, &schema), Ok(ty), "#{n}");
    }
    // The remaining ones have structured results.
    for n in [23, 24, 34, 35, 47, 48] {
        let expr = parse(doc(n)).unwrap_or_else(|e| panic!("#{n}: {e}"));
        assert!(
            check(&expr, &schema).is_ok(),
            "#{n}: {:?}",
            check(&expr, &schema)
        );
    }
}

#[test]
fn mistakes_are_all_reported() {
    let schema = schema();
    let src = r#"person.birthYear = "1985" and homeAddress.countryIso = "CA" and xEvent[eventType > 3].count() > "2" and person.name.startsWith(5)"#;
    let expr = parse(src).unwrap_or_else(|e| panic!("{e}"));
    let issues: Vec<String> = match check(&expr, &schema) {
        Ok(t) => panic!("checked as {t}"),
        Err(issues) => issues.iter().map(ToString::to_string).collect(),
    };
    assert_eq!(
        issues,
        vec![
            "`person.birthYear = \"1985\"`: cannot compare integer with string using `=`",
            "`homeAddress.countryIso`: unknown field `countryIso`",
            "`eventType > 3`: cannot compare string with integer using `>`",
            "`xEvent[eventType > 3].count() > \"2\"`: cannot compare integer with string using `>`",
            "`person.name.startsWith(5)`: argument 1 of `startsWith` must be string, not integer",
        ]
    );
}
