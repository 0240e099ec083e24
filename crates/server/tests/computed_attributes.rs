#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Computed attributes over HTTP: CRUD with the documented lifecycle and validation, the
//! backfill over existing events, incremental upkeep as events stream in, `withCA=true`
//! lookups, and a segment reading an attribute.

mod common;

use common::ingest::{get, post, setup, Setup, TENANT};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const ATTRIBUTES: &str = "/data/core/ca/attributes";

fn attribute(name: &str, pql: &str, count: u32, unit: &str, status: &str) -> Value {
    json!({
        "name": name,
        "displayName": format!("{name} display"),
        "description": "test attribute",
        "expression": {"type": "PQL", "format": "pql/text", "value": pql},
        "keepCurrent": false,
        "duration": {"count": count, "unit": unit},
        "status": status,
    })
}

async fn patch(base: &str, id: &str, body: Value) -> common::Reply {
    send(
        Method::PATCH,
        &format!("{base}{ATTRIBUTES}/{id}"),
        &TENANT,
        Some(body),
    )
    .await
}

async fn delete(base: &str, id: &str) -> common::Reply {
    send(
        Method::DELETE,
        &format!("{base}{ATTRIBUTES}/{id}"),
        &TENANT,
        None,
    )
    .await
}

async fn wait_status(base: &str, id: &str, status: &str) {
    for _ in 0..400 {
        let reply = get(base, &format!("{ATTRIBUTES}/{id}")).await;
        if reply.json()["status"] == status {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("attribute {id} never reached {status}");
}

#[tokio::test]
async fn crud_lifecycle_and_validation() {
    let server = TestServer::start(None).await;
    let base = server.url("");
    let sum = "xEvent[eventType = \"commerce.purchases\"].sum(commerce.order.priceTotal)";

    // Validation: nothing is saved on a 400.
    for (body, why) in [
        (
            attribute("my_ltv", sum, 7, "DAYS", "DRAFT"),
            "underscore in name",
        ),
        (
            attribute("ltv", "person.age > 3", 7, "DAYS", "DRAFT"),
            "not an aggregate over xEvent",
        ),
        (attribute("ltv", "xEvent[", 7, "DAYS", "DRAFT"), "syntax"),
        (attribute("ltv", sum, 8, "DAYS", "DRAFT"), "days beyond 7"),
        (
            attribute("ltv", sum, 25, "HOURS", "DRAFT"),
            "hours beyond 24",
        ),
        (attribute("ltv", sum, 0, "WEEKS", "DRAFT"), "zero"),
        (attribute("ltv", sum, 1, "YEARS", "DRAFT"), "unknown unit"),
        (
            attribute("ltv", sum, 7, "DAYS", "PROCESSED"),
            "status on create",
        ),
        (
            json!({"name": "ltv", "expression": {"type": "SQL", "format": "pql/text", "value": sum}, "duration": {"count": 1, "unit": "DAYS"}}),
            "type",
        ),
        (
            json!({"name": "ltv", "duration": {"count": 1, "unit": "DAYS"}}),
            "no expression",
        ),
    ] {
        let reply = post(&base, ATTRIBUTES, body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{why}: {}",
            reply.text
        );
    }
    let listed = get(&base, ATTRIBUTES).await.json();
    assert_eq!(listed["_page"]["totalCount"], 0);

    // The extension accepts a longer window.
    let mut long = attribute("yearly", sum, 12, "MONTHS", "DRAFT");
    long["allowLargerWindows"] = json!(true);
    let reply = post(&base, ATTRIBUTES, long).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["allowLargerWindows"], true);

    let created = post(&base, ATTRIBUTES, attribute("ltv", sum, 7, "DAYS", "DRAFT")).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let ca = created.json();
    let id = ca["id"].as_str().unwrap().to_owned();
    assert_eq!(ca["type"], "ComputedAttribute");
    assert_eq!(ca["status"], "DRAFT");
    assert_eq!(ca["mergeFunction"]["value"], "SUM");
    assert_eq!(ca["returnSchema"]["meta:xdmType"], "number");
    assert_eq!(ca["path"], "_ingest/ComputedAttributes");
    assert_eq!(ca["positionPath"], json!(["_ingest", "ComputedAttributes"]));
    assert_eq!(ca["imsOrgId"], common::ingest::ORG);
    assert_eq!(ca["sandbox"]["sandboxName"], "prod");
    assert!(ca["createEpoch"].as_i64().unwrap() > 1_600_000_000_000);

    let duplicate = post(&base, ATTRIBUTES, attribute("ltv", sum, 1, "DAYS", "DRAFT")).await;
    assert_eq!(duplicate.status, StatusCode::BAD_REQUEST);
    assert!(duplicate.text.contains("same name"), "{}", duplicate.text);

    // Reads and lists.
    assert_eq!(
        get(&base, &format!("{ATTRIBUTES}/{id}")).await.json()["name"],
        "ltv"
    );
    assert_eq!(
        get(&base, &format!("{ATTRIBUTES}/nope")).await.status,
        StatusCode::NOT_FOUND
    );
    let page = get(&base, &format!("{ATTRIBUTES}?limit=1&sortBy=name"))
        .await
        .json();
    assert_eq!(page["computedAttributes"][0]["name"], "ltv");
    assert_eq!(page["computedAttributes"][0]["mergeFunction"]["value"], "-");
    assert_eq!(
        page["_page"],
        json!({"offset": 0, "limit": 1, "count": 1, "totalCount": 2})
    );
    assert_eq!(
        page["_links"]["next"]["href"],
        "/attributes?offset=1&limit=1&sortBy=name"
    );
    assert_eq!(
        page["_links"]["last"]["href"],
        "/attributes?offset=1&limit=1&sortBy=name"
    );
    let second = get(
        &base,
        &format!("{ATTRIBUTES}?limit=1&offset=1&sortBy=-name"),
    )
    .await
    .json();
    assert_eq!(second["computedAttributes"][0]["name"], "ltv");
    assert!(second["_links"]["prev"].is_object());
    for bad in ["limit=0", "limit=41", "sortBy=id", "status=weird"] {
        assert_eq!(
            get(&base, &format!("{ATTRIBUTES}?{bad}")).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        get(&base, &format!("{ATTRIBUTES}?status=processed"))
            .await
            .json()["_page"]["totalCount"],
        0
    );

    // Lifecycle: a draft may only become NEW.
    for body in [
        json!({"displayName": "renamed"}),
        json!({"status": "DISABLED"}),
        json!({"status": "PROCESSED"}),
        json!({"expression": {"type": "PQL", "format": "pql/text", "value": "xEvent.count()"}}),
    ] {
        let reply = patch(&base, &id, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
    }
    let reply = patch(&base, &id, json!({"status": "NEW"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // The backfill runs by itself (no profiles: it finishes at once).
    wait_status(&base, &id, "PROCESSED").await;
    let processed = get(&base, &format!("{ATTRIBUTES}/{id}")).await.json();
    assert!(processed["lastEvaluationTs"].is_string());
    // Only DRAFT can be deleted; PROCESSED may only be disabled.
    assert_eq!(delete(&base, &id).await.status, StatusCode::CONFLICT);
    assert_eq!(
        patch(&base, &id, json!({"description": "x"})).await.status,
        StatusCode::BAD_REQUEST
    );
    let disabled = patch(&base, &id, json!({"status": "DISABLED"})).await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert_eq!(disabled.json()["status"], "DISABLED");
    assert_eq!(
        patch(&base, &id, json!({"status": "NEW"})).await.status,
        StatusCode::BAD_REQUEST
    );

    // A draft is deleted: 202 with the object, then gone; its name is free again.
    let yearly = get(&base, &format!("{ATTRIBUTES}?status=draft"))
        .await
        .json();
    let yearly_id = yearly["computedAttributes"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = delete(&base, &yearly_id).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert_eq!(deleted.json()["name"], "yearly");
    assert_eq!(
        get(&base, &format!("{ATTRIBUTES}/{yearly_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(&base, &yearly_id).await.status,
        StatusCode::NOT_FOUND
    );
    let again = post(
        &base,
        ATTRIBUTES,
        attribute("yearly", sum, 1, "DAYS", "DRAFT"),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);

    // Tenancy: another sandbox's header sees none of it.
    let other = send(
        Method::GET,
        &format!("{base}{ATTRIBUTES}/{id}"),
        &[
            ("x-gw-ims-org-id", "OTHER@AdobeOrg"),
            ("x-sandbox-name", "prod"),
        ],
        None,
    )
    .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.text);
    server.stop().await;
}

fn iso(ms_ago: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::milliseconds(ms_ago);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

const DAY: i64 = 86_400_000;

fn purchase(id: &str, crmid: &str, ms_ago: i64, total: f64) -> Value {
    json!({
        "_id": id, "timestamp": iso(ms_ago), "eventType": "commerce.purchases",
        "identityMap": {"CRMID": [{"id": crmid, "primary": true}]},
        "commerce": {"order": {"priceTotal": total}, "purchases": {"value": 1.0}}
    })
}

fn view(id: &str, crmid: &str, ms_ago: i64, page: &str) -> Value {
    json!({
        "_id": id, "timestamp": iso(ms_ago), "eventType": "web.webpagedetails.pageViews",
        "identityMap": {"CRMID": [{"id": crmid, "primary": true}]},
        "web": {"webPageDetails": {"name": page}}
    })
}

async fn computed(base: &str, crmid: &str, with_ca: bool) -> Value {
    let reply = get(base, &format!("/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS=CRMID&entityId={crmid}&withCA={with_ca}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    body.as_object().unwrap().values().next().unwrap()["entity"]["_ingest"]["ComputedAttributes"]
        .clone()
}

async fn stream_ok(setup: &Setup, event: Value) {
    let reply = setup.stream(setup.event_message(event)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn backfill_then_incremental_upkeep_lookup_and_segment() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let record = json!({"identityMap": {"CRMID": [{"id": "c1", "primary": true}]}, "person": {"name": {"firstName": "Ada"}}});
    assert_eq!(
        setup.stream(setup.profile_message(record)).await.status,
        StatusCode::OK
    );
    // History before any attribute exists: two purchases in the week, one older, a view.
    stream_ok(&setup, purchase("p1", "c1", DAY, 30.0)).await;
    stream_ok(&setup, purchase("p2", "c1", 2 * DAY, 50.0)).await;
    stream_ok(&setup, purchase("p0", "c1", 20 * DAY, 1000.0)).await;
    stream_ok(&setup, view("v1", "c1", 3 * DAY, "home")).await;

    let defs = [
        ("ltv", "xEvent[eventType = \"commerce.purchases\" and timestamp occurs <= 7 days before now].sum(commerce.order.priceTotal)"),
        ("purchases", "xEvent[eventType = \"commerce.purchases\"].count()"),
        ("biggest", "xEvent.max(commerce.order.priceTotal)"),
        ("lastpage", "xEvent[eventType = \"web.webpagedetails.pageViews\"].topN(timestamp, 1).head().web.webPageDetails.name"),
    ];
    let mut ids = Vec::new();
    for (name, pql) in defs {
        let reply = post(&base, ATTRIBUTES, attribute(name, pql, 7, "DAYS", "NEW")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        ids.push(reply.json()["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        wait_status(&base, id, "PROCESSED").await;
    }
    assert_eq!(
        get(&base, &format!("{ATTRIBUTES}/{}", ids[3])).await.json()["mergeFunction"]["value"],
        "MOST_RECENT"
    );

    // Backfilled: the 20-day-old purchase is outside the 7-day window.
    let ca = computed(&base, "c1", true).await;
    assert_eq!(ca["ltv"], json!(80), "{ca}");
    assert_eq!(ca["purchases"], json!(2), "{ca}");
    assert_eq!(ca["biggest"], json!(50), "{ca}");
    assert_eq!(ca["lastpage"]["value"], "home", "{ca}");
    assert!(ca["lastpage"]["timestamp"].is_string(), "{ca}");
    // Only with withCA=true.
    assert!(computed(&base, "c1", false).await.is_null());

    // Incremental: new events are folded in as they stream.
    stream_ok(&setup, purchase("p3", "c1", 1_000, 100.0)).await;
    stream_ok(&setup, view("v2", "c1", 500, "checkout")).await;
    let mut ca = Value::Null;
    for _ in 0..200 {
        ca = computed(&base, "c1", true).await;
        if ca["ltv"] == json!(180) && ca["lastpage"]["value"] == "checkout" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(ca["ltv"], json!(180), "{ca}");
    assert_eq!(ca["purchases"], json!(3), "{ca}");
    assert_eq!(ca["biggest"], json!(100), "{ca}");
    assert_eq!(ca["lastpage"]["value"], "checkout", "{ca}");
    // Folded from the events ingestion handed over in memory, not read back (a miss is
    // possible when a pass reads an entry before ingestion hands its event over, so one
    // hit of the two is enough); the consumer kept up, so nobody waited for it.
    assert!(series(&base, r#"tessera_recent_events_taken_total{found="true"}"#).await >= 1.0);
    assert_eq!(waits(&base, "stalled").await, 0.0);
    assert_eq!(series(&base, "tessera_recent_events_held").await, 0.0);

    // A profile seen only after the attributes exist is kept from its first event.
    let record = json!({"identityMap": {"CRMID": [{"id": "c2", "primary": true}]}, "person": {"name": {"firstName": "Bo"}}});
    assert_eq!(
        setup.stream(setup.profile_message(record)).await.status,
        StatusCode::OK
    );
    stream_ok(&setup, purchase("q1", "c2", 1_000, 7.5)).await;
    let mut fresh = Value::Null;
    for _ in 0..200 {
        fresh = get(&base, "/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS=CRMID&entityId=c2&withCA=true").await.json();
        if fresh
            .as_object()
            .and_then(|m| m.values().next())
            .is_some_and(|p| p["entity"]["_ingest"]["ComputedAttributes"]["ltv"] == json!(7.5))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let entity = &fresh.as_object().unwrap().values().next().unwrap()["entity"];
    assert_eq!(
        entity["_ingest"]["ComputedAttributes"]["ltv"],
        json!(7.5),
        "{fresh}"
    );

    // Segments read the attribute like a profile field (type-checked against the union
    // with the computed attributes added).
    let created = post(&base, "/data/core/ups/segment/definitions", json!({
        "name": "Big spenders",
        "schema": {"name": "_xdm.context.profile"},
        "expression": {"type": "PQL", "format": "pql/text", "value": "_ingest.ComputedAttributes.ltv > 150"},
        "evaluationInfo": {"batch": {"enabled": false}, "continuous": {"enabled": true}, "synchronous": {"enabled": false}}
    })).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let segment = created.json()["id"].as_str().unwrap().to_owned();
    let mut status = Value::Null;
    for _ in 0..200 {
        let body = get(&base, "/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS=CRMID&entityId=c1").await.json();
        status = body.as_object().unwrap().values().next().unwrap()["entity"]["segmentMembership"]
            ["ups"][&segment]["status"]
            .clone();
        if status == "realized" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(status, "realized");
    // A typo in the attribute name does not type-check.
    let typo = post(&base, "/data/core/ups/segment/definitions", json!({
        "name": "Typo", "schema": {"name": "_xdm.context.profile"},
        "expression": {"type": "PQL", "format": "pql/text", "value": "_ingest.ComputedAttributes.ltvv > 150"},
    })).await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST, "{}", typo.text);

    // c2 stays out: 7.5 is not above 150, and streaming raises it only with its events.
    stream_ok(&setup, purchase("q2", "c2", 500, 200.0)).await;
    let mut c2 = Value::Null;
    for _ in 0..200 {
        let body = get(&base, "/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS=CRMID&entityId=c2").await.json();
        c2 = body.as_object().unwrap().values().next().unwrap()["entity"]["segmentMembership"]
            ["ups"][&segment]["status"]
            .clone();
        if c2 == "realized" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        c2, "realized",
        "streaming segmentation saw the value folded for the same event"
    );

    // Disabled attributes leave lookups.
    let disabled = patch(&base, &ids[1], json!({"status": "DISABLED"})).await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert!(computed(&base, "c1", true).await["purchases"].is_null());
    server.stop().await;
}

/// The value of one series in a `/metrics` scrape.
async fn series(base: &str, name: &str) -> f64 {
    let metrics = get(base, "/metrics").await.text;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// How many times ingestion waited for the computed-attribute consumer with `outcome`.
async fn waits(base: &str, outcome: &str) -> f64 {
    series(
        base,
        &format!(r#"tessera_ingest_consumer_waits_total{{outcome="{outcome}"}}"#),
    )
    .await
}

#[tokio::test]
async fn acknowledgements_wait_for_a_consumer_more_than_half_the_hand_over_behind() {
    // Four events held in memory: every request of 100 leaves the consumer more than two
    // behind when it is acknowledged, so each waits for it (a wait it passes through quickly,
    // as the consumer keeps up).
    let server = TestServer::start(Some("[limits]\nrecent_events = 4\n")).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let sum = "xEvent[eventType = \"commerce.purchases\"].sum(commerce.order.priceTotal)";
    let reply = post(&base, ATTRIBUTES, attribute("spend", sum, 7, "DAYS", "NEW")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    wait_status(&base, &id, "PROCESSED").await;
    let record = json!({"identityMap": {"CRMID": [{"id": "c99", "primary": true}]}});
    assert_eq!(
        setup.stream(setup.profile_message(record)).await.status,
        StatusCode::OK
    );
    for request in 0..5 {
        let messages = (0..100)
            .map(|n| {
                setup.event_message(purchase(
                    &format!("w{request}-{n}"),
                    &format!("c{n}"),
                    1_000,
                    1.0,
                ))
            })
            .collect();
        let reply = setup.stream_batch(messages).await;
        assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.text);
        let responses = reply.json()["responses"].clone();
        assert!(
            responses
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r.get("status").is_none()),
            "{responses}"
        );
    }
    let caught_up = waits(&base, "caught_up").await;
    let bounded = waits(&base, "bounded").await;
    assert!(caught_up + bounded >= 1.0, "{caught_up} {bounded}");
    assert_eq!(waits(&base, "stalled").await, 0.0);
    assert!(series(&base, "tessera_ingest_consumer_wait_seconds_total").await > 0.0);
    // Nothing lost on the way: each of the 100 people bought five times.
    let mut spend = Value::Null;
    for _ in 0..200 {
        spend = computed(&base, "c99", true).await["spend"].clone();
        if spend == json!(5) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(spend, json!(5));
    server.stop().await;
}
