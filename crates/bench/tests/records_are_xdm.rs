//! Every record is well-formed XDM for its dataset: identityMap `{NS: [{id, authenticatedState,
//! primary}]}` with exactly one primary identity in the dataset's primary namespace, `_id` and
//! `timestamp` on every event, and the fields of the field groups the manifest names.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use serde_json::Value;
use tessera_bench::generate::{CLASS_EXPERIENCE_EVENT, CLASS_PROFILE};

const EVENT_TYPES: &[&str] = &[
    "web.webpagedetails.pageViews",
    "commerce.productViews",
    "commerce.productListAdds",
    "commerce.checkouts",
    "commerce.purchases",
    "directMarketing.emailSent",
    "directMarketing.emailOpened",
    "directMarketing.emailClicked",
    "callCenter.inboundCall",
];

fn check_identity_map(record: &Value, primary_ns: &str, namespaces: &BTreeSet<String>) {
    let map = record["identityMap"]
        .as_object()
        .unwrap_or_else(|| panic!("identityMap missing: {record}"));
    assert!(!map.is_empty());
    let mut primaries = Vec::new();
    for (ns, items) in map {
        assert!(namespaces.contains(ns), "unknown namespace {ns}");
        let items = items.as_array().expect("identityMap values are arrays");
        assert!(!items.is_empty());
        for item in items {
            let obj = item.as_object().expect("identity items are objects");
            let id = obj["id"].as_str().expect("id is a string");
            assert!(!id.is_empty() && id.len() <= 1024);
            if ns == "ECID" {
                assert!(
                    id.len() == 38 && id.bytes().all(|b| b.is_ascii_digit()),
                    "{id}"
                );
            }
            let state = obj["authenticatedState"].as_str().expect("state");
            assert!(["ambiguous", "authenticated", "loggedOut"].contains(&state));
            if obj["primary"].as_bool().expect("primary is a bool") {
                primaries.push(ns.clone());
            }
        }
    }
    assert_eq!(primaries, vec![primary_ns.to_owned()], "{record}");
}

#[test]
fn records_are_well_formed_xdm() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = common::generate_small(dir.path(), 5)?;
    let namespaces: BTreeSet<String> = manifest.namespaces.iter().map(|n| n.code.clone()).collect();
    let format = time::format_description::well_known::Rfc3339;
    let start = time::OffsetDateTime::parse(&manifest.period.start, &format)?;
    let end = time::OffsetDateTime::parse(&manifest.period.end, &format)?;
    let mut event_ids = BTreeSet::new();
    let mut total = 0u64;
    let mut purchases = 0u64;
    for d in &manifest.datasets {
        let records: Vec<Value> = common::read_lines(&dir.path().join(&d.file))?;
        assert_eq!(records.len() as u64, d.records, "{}", d.name);
        assert!(!records.is_empty(), "{} is empty", d.name);
        total += d.records;
        for r in &records {
            check_identity_map(r, &d.primary_identity_namespace, &namespaces);
            assert!(r["_id"].as_str().is_some_and(|s| !s.is_empty()));
            if d.schema_class == CLASS_EXPERIENCE_EVENT {
                let id = r["_id"].as_str().unwrap_or_default().to_owned();
                assert!(event_ids.insert(id), "duplicate event _id");
                let ts = r["timestamp"].as_str().expect("events carry a timestamp");
                let ts = time::OffsetDateTime::parse(ts, &format)?;
                assert!(ts >= start && ts < end, "{ts} outside the period");
                let et = r["eventType"].as_str().expect("eventType");
                assert!(EVENT_TYPES.contains(&et), "{et}");
            } else {
                assert_eq!(d.schema_class, CLASS_PROFILE);
                assert!(r.get("timestamp").is_none());
            }
            match d.name.as_str() {
                "crm-profiles" => {
                    assert!(r["person"]["name"]["firstName"].is_string());
                    assert!(r["person"]["name"]["lastName"].is_string());
                    let birth = r["person"]["birthDate"].as_str().expect("birthDate");
                    time::Date::parse(
                        birth,
                        &time::macros::format_description!("[year]-[month]-[day]"),
                    )?;
                    assert!(["male", "female", "not_specified"]
                        .contains(&r["person"]["gender"].as_str().unwrap_or_default()));
                    assert!(r["personalEmail"]["address"]
                        .as_str()
                        .is_some_and(|a| a.contains('@')));
                    for f in ["street1", "city", "postalCode", "country", "countryCode"] {
                        assert!(r["homeAddress"][f].is_string(), "homeAddress.{f}");
                    }
                    if let Some(l) = r.get("loyalty") {
                        assert!(l["loyaltyID"].as_array().is_some_and(|a| a.len() == 1));
                        assert!(l["tier"].is_string() && l["points"].is_u64());
                    }
                }
                "loyalty-profiles" => {
                    assert!(r["loyalty"]["loyaltyID"][0].is_string());
                    assert!(r["loyalty"]["points"].is_u64());
                    assert!(r["personalEmail"]["address"].is_string());
                }
                "web-events" => {
                    assert!(r["web"]["webPageDetails"]["name"].is_string());
                    assert!(r["web"]["webPageDetails"]["URL"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("https://")));
                    let et = r["eventType"].as_str().unwrap_or_default();
                    if et != "web.webpagedetails.pageViews" {
                        let items = r["productListItems"].as_array().expect("productListItems");
                        assert!(!items.is_empty());
                        for i in items {
                            assert!(i["SKU"].is_string() && i["name"].is_string());
                            assert!(i["quantity"].as_u64().is_some_and(|q| q >= 1));
                            assert!(i["priceTotal"].as_f64().is_some_and(|p| p > 0.0));
                        }
                    }
                    if et == "commerce.purchases" {
                        purchases += 1;
                        let order = &r["commerce"]["order"];
                        assert_eq!(order["currencyCode"], "USD");
                        assert!(order["purchaseID"].is_string());
                        let total = order["priceTotal"].as_f64().expect("priceTotal");
                        let items: f64 = r["productListItems"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|i| i["priceTotal"].as_f64()).sum())
                            .unwrap_or_default();
                        assert!((total - items).abs() < 0.005, "{total} vs {items}");
                        assert_eq!(r["commerce"]["purchases"]["value"], 1.0);
                    }
                }
                "email-events" => {
                    assert!(r["directMarketing"]["messageID"].is_string());
                    assert!(r["marketing"]["campaignName"].is_string());
                }
                "callcenter-events" => {
                    assert!(r["_tessera"]["callCenter"]["reason"].is_string());
                }
                other => panic!("unexpected dataset {other}"),
            }
        }
    }
    assert_eq!(total, manifest.counts.records);
    assert_eq!(
        manifest
            .counts
            .event_types
            .get("commerce.purchases")
            .copied(),
        Some(purchases)
    );
    assert_eq!(
        manifest.counts.event_types.values().sum::<u64>(),
        manifest.counts.events
    );
    Ok(())
}

#[test]
fn anonymous_devices_log_in_later() -> anyhow::Result<()> {
    // Some ECIDs are seen anonymously first and with a CRMID afterwards: the case stitching must
    // handle; and every ECID is authenticated at least once, so every device is attributable.
    let dir = tempfile::tempdir()?;
    let manifest = common::generate_small(dir.path(), 9)?;
    let web = manifest.dataset("web-events").expect("web dataset");
    let records: Vec<Value> = common::read_lines(&dir.path().join(&web.file))?;
    let mut anonymous_first = BTreeSet::new();
    let mut authenticated = BTreeSet::new();
    for r in &records {
        let ecid = r["identityMap"]["ECID"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if r["identityMap"].get("CRMID").is_some() {
            authenticated.insert(ecid);
        } else if !authenticated.contains(&ecid) {
            anonymous_first.insert(ecid);
        }
    }
    let all: BTreeSet<_> = records
        .iter()
        .filter_map(|r| {
            r["identityMap"]["ECID"][0]["id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(authenticated, all, "every device logs in at some point");
    assert!(anonymous_first.iter().any(|e| authenticated.contains(e)));
    Ok(())
}
