//! Validation cost per record: a realistic CRM profile record and a web commerce event,
//! each checked against a schema with the standard field groups (compiled once).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::json;
use tessera_model::Tenant;
use tessera_schema::SchemaRegistry;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = tessera_store::EmbeddedStore::open(dir.path(), Default::default()).unwrap();
    let registry = SchemaRegistry::new(Arc::new(store));
    let tenant = Tenant::parse("BENCH@AdobeOrg", "prod").unwrap();
    let profile = registry
        .create_schema(
            &tenant,
            json!({"title": "CRM", "allOf": [
            {"$ref": "https://ns.adobe.com/xdm/context/profile"},
            {"$ref": "https://ns.adobe.com/xdm/context/identitymap"},
            {"$ref": "https://ns.adobe.com/xdm/context/profile-person-details"},
            {"$ref": "https://ns.adobe.com/xdm/context/profile-personal-details"},
            {"$ref": "https://ns.adobe.com/xdm/mixins/profile/profile-loyalty-details"}]}),
        )
        .unwrap();
    let event = registry
        .create_schema(
            &tenant,
            json!({"title": "Web", "allOf": [
            {"$ref": "https://ns.adobe.com/xdm/context/experienceevent"},
            {"$ref": "https://ns.adobe.com/xdm/context/identitymap"},
            {"$ref": "https://ns.adobe.com/xdm/context/experienceevent-web"},
            {"$ref": "https://ns.adobe.com/xdm/context/experienceevent-commerce"},
            {"$ref": "https://ns.adobe.com/xdm/context/experienceevent-environment-details"}]}),
        )
        .unwrap();
    let profile = registry
        .compiled(&tenant, profile["$id"].as_str().unwrap())
        .unwrap();
    let event = registry
        .compiled(&tenant, event["$id"].as_str().unwrap())
        .unwrap();

    let record = json!({
        "_id": "crm-000123",
        "identityMap": {
            "CRMID": [{"id": "000123", "authenticatedState": "authenticated", "primary": true}],
            "Email": [{"id": "jane.doe@example.com", "authenticatedState": "authenticated", "primary": false}],
            "ECID": [{"id": "83238819066235616291057085344313877718", "authenticatedState": "ambiguous", "primary": false}]
        },
        "person": {"name": {"firstName": "Jane", "lastName": "Doe", "fullName": "Jane Doe"},
                   "birthDate": "1984-02-29", "gender": "female"},
        "personalEmail": {"address": "jane.doe@example.com", "primary": true, "status": "active"},
        "mobilePhone": {"number": "+1-555-0100", "primary": true},
        "homeAddress": {"street1": "1 Main St", "city": "Springfield", "stateProvince": "IL",
                        "postalCode": "62701", "country": "United States", "countryCode": "US"},
        "loyalty": {"loyaltyID": ["L-1"], "program": "Gold Club", "status": "active", "tier": "gold",
                    "points": 1200, "lifetimePoints": 5000, "joinDate": "2019-05-01T10:00:00Z"}
    });
    let hit = json!({
        "_id": "evt-0000001", "timestamp": "2024-03-01T12:00:00.000Z", "eventType": "commerce.purchases",
        "identityMap": {"ECID": [{"id": "83238819066235616291057085344313877718", "authenticatedState": "ambiguous", "primary": true}]},
        "web": {"webPageDetails": {"name": "checkout", "URL": "https://shop.example.com/checkout"}},
        "commerce": {"purchases": {"value": 1}, "order": {"purchaseID": "o-1", "priceTotal": 59.9, "currencyCode": "USD"}},
        "productListItems": [
            {"SKU": "sku-1", "name": "Shoe", "quantity": 1, "priceTotal": 39.9, "currencyCode": "USD"},
            {"SKU": "sku-2", "name": "Sock", "quantity": 2, "priceTotal": 20.0, "currencyCode": "USD"}],
        "environment": {"type": "browser", "ipV4": "192.168.0.1", "browserDetails": {"userAgent": "Mozilla/5.0"}}
    });
    assert!(
        profile.validate(&record).is_ok(),
        "{:?}",
        profile.validate(&record)
    );
    assert!(event.validate(&hit).is_ok(), "{:?}", event.validate(&hit));
    let mut bad = hit.clone();
    bad["timestamp"] = json!("yesterday");
    bad["productListItems"][0]["quantity"] = json!("one");
    bad["extra"] = json!(1);

    c.bench_function("validate/profile_record", |b| {
        b.iter(|| profile.validate(black_box(&record)))
    });
    c.bench_function("validate/web_commerce_event", |b| {
        b.iter(|| event.validate(black_box(&hit)))
    });
    c.bench_function("validate/event_3_violations", |b| {
        b.iter(|| event.validate(black_box(&bad)))
    });
    c.bench_function("compiled/cache_hit", |b| {
        b.iter(|| registry.compiled(&tenant, black_box(event.id())).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
