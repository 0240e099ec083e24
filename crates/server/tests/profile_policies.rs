#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Merge policies over HTTP, their effect on lookups, and the materialized view never
//! serving a stale profile: after writes, merges, unlinks, erasures and policy edits.

mod common;

use common::ingest::{dataset, get, post, setup, TENANT};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const LOOKUP: &str = "/data/core/ups/access/entities?schema.name=_xdm.context.profile";
const POLICIES: &str = "/data/core/ups/config/mergePolicies";

async fn profile(base: &str, ns: &str, id: &str, extra: &str) -> (StatusCode, Value) {
    let reply = get(
        base,
        &format!("{LOOKUP}&entityId={id}&entityIdNS={ns}{extra}"),
    )
    .await;
    let body = if reply.status == StatusCode::OK {
        reply
            .json()
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone()
    } else {
        reply.json()
    };
    (reply.status, body)
}

async fn patch(base: &str, path: &str, body: Value) -> common::Reply {
    send(Method::PATCH, &format!("{base}{path}"), &TENANT, Some(body)).await
}

async fn delete(base: &str, path: &str) -> common::Reply {
    send(Method::DELETE, &format!("{base}{path}"), &TENANT, None).await
}

#[tokio::test]
async fn merge_policy_crud_defaults_paging_and_edge_rules() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();

    // The built-in policy is there from the start, as the default.
    let list = get(&base, POLICIES).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let body = list.json();
    assert_eq!(body["_page"]["totalCount"], 1);
    assert_eq!(body["children"][0]["id"], "timestampOrdered-pdg");
    assert_eq!(body["children"][0]["default"], true);
    assert_eq!(body["children"][0]["imsOrgId"], common::ingest::ORG);
    assert_eq!(body["children"][0]["sandbox"]["sandboxName"], "prod");
    assert_eq!(body["_links"]["next"]["href"], "");

    let created = post(
        &base,
        POLICIES,
        json!({"name": "crm-first", "schema": {"name": "_xdm.context.profile"},
            "identityGraph": {"type": "pdg"},
            "attributeMerge": {"type": "dataSetPrecedence", "order": [setup.profile_dataset]},
            "default": true}),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let created = created.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["version"], 1);
    assert!(created["updateEpoch"].as_i64().unwrap() > 1_600_000_000);

    // The old default was unset; exactly one default remains.
    let defaults = get(&base, &format!("{POLICIES}?default=true")).await.json();
    assert_eq!(defaults["_page"]["totalCount"], 1);
    assert_eq!(defaults["children"][0]["id"], id.as_str());

    // Paging: one per page, following `_links.next.href` (AEP's `@/mergePolicies?...`).
    let first = get(&base, &format!("{POLICIES}?limit=1")).await.json();
    assert_eq!(first["children"].as_array().unwrap().len(), 1);
    let href = first["_links"]["next"]["href"].as_str().unwrap().to_owned();
    assert!(href.starts_with("@/mergePolicies?"), "{href}");
    let second = get(
        &base,
        &format!("/data/core/ups/config{}", href.trim_start_matches('@')),
    )
    .await
    .json();
    assert_eq!(second["children"].as_array().unwrap().len(), 1);
    assert_eq!(second["_links"]["next"]["href"], "");
    assert_ne!(first["children"][0]["id"], second["children"][0]["id"]);

    // JSON-Patch in AEP's own single-object form, string boolean included.
    let patched = patch(
        &base,
        &format!("{POLICIES}/{id}"),
        json!({"op": "add", "path": "/isActiveOnEdge", "value": "true"}),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json()["version"], 2);
    assert_eq!(patched.json()["isActiveOnEdge"], true);
    // Active on edge: cannot be deleted; a second edge policy is refused.
    assert_eq!(
        delete(&base, &format!("{POLICIES}/{id}")).await.status,
        StatusCode::BAD_REQUEST
    );
    let second_edge = post(&base, POLICIES, json!({"name": "edge2", "schema": {"name": "_xdm.context.profile"},
        "identityGraph": {"type": "none"}, "attributeMerge": {"type": "timestampOrdered"}, "isActiveOnEdge": true})).await;
    assert_eq!(
        second_edge.status,
        StatusCode::BAD_REQUEST,
        "{}",
        second_edge.text
    );
    assert_eq!(second_edge.json()["statusCode"], "400");

    // Invalid bodies change nothing.
    for body in [
        json!({"schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"}, "attributeMerge": {"type": "dataSetPrecedence", "order": ["no-such-dataset"]}}),
        json!({"schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"}}),
        json!({"schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "sometimes"}, "attributeMerge": {"type": "timestampOrdered"}}),
    ] {
        let reply = post(&base, POLICIES, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
    }
    assert_eq!(get(&base, POLICIES).await.json()["_page"]["totalCount"], 2);

    // Bulk get: 207 with results keyed by id.
    let bulk = post(
        &base,
        &format!("{POLICIES}/bulk-get"),
        json!({"ids": [{"id": id}, {"id": "timestampOrdered-pdg"}]}),
    )
    .await;
    assert_eq!(bulk.status, StatusCode::MULTI_STATUS);
    assert_eq!(bulk.json()["results"][&id]["name"], "crm-first");
    assert_eq!(
        bulk.json()["results"]["timestampOrdered-pdg"]["default"],
        false
    );

    // PUT replaces; turning edge off allows the delete; a later GET is 404.
    let replaced = send(
        Method::PUT,
        &format!("{base}{POLICIES}/{id}"),
        &TENANT,
        Some(
            json!({"name": "renamed", "schema": {"name": "_xdm.context.profile"},
            "identityGraph": {"type": "none"}, "attributeMerge": {"type": "timestampOrdered"},
            "isActiveOnEdge": false, "default": true, "version": 2, "imsOrgId": "ignored"}),
        ),
    )
    .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(replaced.json()["version"], 3);
    let deleted = delete(&base, &format!("{POLICIES}/{id}")).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(deleted.text.is_empty());
    assert_eq!(
        get(&base, &format!("{POLICIES}/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    // The built-in is the default again and cannot be deleted.
    let builtin = get(&base, &format!("{POLICIES}/timestampOrdered-pdg"))
        .await
        .json();
    assert_eq!(builtin["default"], true);
    assert_eq!(
        delete(&base, &format!("{POLICIES}/timestampOrdered-pdg"))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    server.stop().await;
}

/// Jane: CRM record (crm dataset) + loyalty record (later, other dataset) + web login.
async fn jane(setup: &common::ingest::Setup) -> String {
    let crm = json!({"identityMap": {"CRMID": [{"id": "jane-1", "primary": true}], "Email": [{"id": "jane@example.com"}]},
        "person": {"name": {"firstName": "Jane", "lastName": "Doe"}}});
    assert_eq!(
        setup.stream(setup.profile_message(crm)).await.status,
        StatusCode::OK
    );
    let loyalty = dataset(&setup.base, "Loyalty", &setup.profile_schema, false).await;
    let mut message = setup.profile_message(
        json!({"identityMap": {"Email": [{"id": "jane@example.com", "primary": true}]},
        "person": {"name": {"lastName": "Smith"}}}),
    );
    message["header"]["datasetId"] = json!(loyalty);
    assert_eq!(setup.stream(message).await.status, StatusCode::OK);
    loyalty
}

#[tokio::test]
async fn policies_choose_fragments_and_the_view_follows_every_change() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let loyalty = jane(&setup).await;

    // Default policy: newest wins across the graph.
    let (status, body) = profile(&base, "CRMID", "jane-1", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["entity"]["person"]["name"]["lastName"], "Smith");
    // Served again (now from the view): same answer.
    let (_, again) = profile(&base, "CRMID", "jane-1", "").await;
    assert_eq!(again, body);

    // 1. A write after the view was filled is seen at once.
    let crm = json!({"identityMap": {"CRMID": [{"id": "jane-1", "primary": true}], "Email": [{"id": "jane@example.com"}]},
        "person": {"name": {"firstName": "Janet", "lastName": "Doe"}}});
    assert_eq!(
        setup.stream(setup.profile_message(crm)).await.status,
        StatusCode::OK
    );
    let (_, body) = profile(&base, "Email", "jane@example.com", "").await;
    assert_eq!(body["entity"]["person"]["name"]["firstName"], "Janet");
    assert_eq!(
        body["entity"]["person"]["name"]["lastName"], "Doe",
        "crm is now the newest"
    );

    // 2. A merge: a record joins Jane's graph with John's; both lookups show the union.
    let john = json!({"identityMap": {"CRMID": [{"id": "john-1", "primary": true}]}, "homeAddress": {"city": "Basel"}});
    assert_eq!(
        setup.stream(setup.profile_message(john)).await.status,
        StatusCode::OK
    );
    let (_, before) = profile(&base, "CRMID", "jane-1", "").await;
    assert!(before["entity"].get("homeAddress").is_none());
    let ecid = "77777777777777777777777777777777777777";
    // The same device seen with each of them: the ECID joins both graphs into one.
    for (event_id, crm) in [("l1", "jane-1"), ("l2", "john-1")] {
        let link = json!({"_id": event_id, "timestamp": "2025-01-01T00:00:00Z",
            "identityMap": {"ECID": [{"id": ecid, "primary": true}], "CRMID": [{"id": crm}]}});
        assert_eq!(
            setup.stream(setup.event_message(link)).await.status,
            StatusCode::OK
        );
    }
    let (_, merged) = profile(&base, "CRMID", "jane-1", "").await;
    assert_eq!(merged["entity"]["homeAddress"]["city"], "Basel");
    assert_eq!(merged["identityGraph"].as_array().unwrap().len(), 4);

    // 3. An unlink splits John off again.
    let unlink = post(
        &base,
        "/data/core/identity/unlink",
        json!({"identity": {"namespace": "ECID", "id": ecid}}),
    )
    .await;
    assert_eq!(unlink.status, StatusCode::OK, "{}", unlink.text);
    let (_, split) = profile(&base, "CRMID", "jane-1", "").await;
    assert!(split["entity"].get("homeAddress").is_none(), "{split}");
    assert_eq!(split["identityGraph"].as_array().unwrap().len(), 2);

    // 4. A policy edit: make dataset precedence (crm first) the default; then flip the
    // order by PATCH. Each change is seen by the very next lookup.
    let created = post(&base, POLICIES, json!({"name": "loyalty-first", "schema": {"name": "_xdm.context.profile"},
        "identityGraph": {"type": "pdg"},
        "attributeMerge": {"type": "dataSetPrecedence", "order": [loyalty, setup.profile_dataset]}, "default": true})).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let (_, body) = profile(&base, "CRMID", "jane-1", "").await;
    assert_eq!(
        body["entity"]["person"]["name"]["lastName"], "Smith",
        "loyalty outranks newer crm"
    );
    assert_eq!(body["mergePolicy"]["id"], id.as_str());
    let flipped = patch(&base, &format!("{POLICIES}/{id}"),
        json!([{"op": "replace", "path": "/attributeMerge/order", "value": [setup.profile_dataset, loyalty]}])).await;
    assert_eq!(flipped.status, StatusCode::OK, "{}", flipped.text);
    let (_, body) = profile(&base, "CRMID", "jane-1", "").await;
    assert_eq!(body["entity"]["person"]["name"]["lastName"], "Doe");
    // Precedence leaves unlisted datasets out entirely.
    let only_loyalty = patch(
        &base,
        &format!("{POLICIES}/{id}"),
        json!([{"op": "replace", "path": "/attributeMerge/order", "value": [loyalty]}]),
    )
    .await;
    assert_eq!(only_loyalty.status, StatusCode::OK);
    let (_, body) = profile(&base, "CRMID", "jane-1", "").await;
    assert!(
        body["entity"]["person"]["name"].get("firstName").is_none(),
        "{body}"
    );
    assert_eq!(body["sources"], json!([loyalty]));

    // 5. identityGraph none: only the looked-up identity's own fragment.
    let none = post(
        &base,
        POLICIES,
        json!({"name": "no-stitching", "schema": {"name": "_xdm.context.profile"},
        "identityGraph": {"type": "none"}, "attributeMerge": {"type": "timestampOrdered"}}),
    )
    .await;
    let none_id = none.json()["id"].as_str().unwrap().to_owned();
    let (_, by_email) = profile(
        &base,
        "Email",
        "jane@example.com",
        &format!("&mergePolicyId={none_id}"),
    )
    .await;
    assert_eq!(
        by_email["entity"]["person"]["name"],
        json!({"lastName": "Smith"})
    );
    assert_eq!(by_email["identityGraph"].as_array().unwrap().len(), 1);
    let (_, by_crm) = profile(
        &base,
        "CRMID",
        "jane-1",
        &format!("&mergePolicyId={none_id}"),
    )
    .await;
    assert_eq!(by_crm["entity"]["person"]["name"]["firstName"], "Janet");
    let (status, _) = profile(&base, "CRMID", "jane-1", "&mergePolicyId=nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // 6. Erasure under the stitching default: every identity of the graph is gone, with
    // its events.
    let purchase = json!({"_id": "jane-buys", "timestamp": "2025-02-01T00:00:00Z",
        "identityMap": {"CRMID": [{"id": "jane-1", "primary": true}]}});
    assert_eq!(
        setup.stream(setup.event_message(purchase)).await.status,
        StatusCode::OK
    );
    let events = "/data/core/ups/access/entities?schema.name=_xdm.context.experienceevent&relatedEntityIdNS=Email&relatedEntityId=jane@example.com";
    assert_eq!(get(&base, events).await.json()["_page"]["count"], 1);
    let erased = send(
        Method::DELETE,
        &format!("{base}{LOOKUP}&entityId=jane@example.com&entityIdNS=email"),
        &TENANT,
        None,
    )
    .await;
    assert_eq!(erased.status, StatusCode::ACCEPTED, "{}", erased.text);
    assert_eq!(erased.json(), json!({}));
    for (ns, id) in [("CRMID", "jane-1"), ("Email", "jane@example.com")] {
        let (status, body) = profile(&base, ns, id, "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{ns}: {body}");
        let (status, _) = profile(&base, ns, id, &format!("&mergePolicyId={none_id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{ns} under none");
    }
    assert_eq!(
        get(&base, events).await.json()["_page"]["count"],
        0,
        "events survived"
    );
    let crm_events = "/data/core/ups/access/entities?schema.name=_xdm.context.experienceevent&relatedEntityIdNS=CRMID&relatedEntityId=jane-1";
    assert_eq!(get(&base, crm_events).await.json()["children"], json!([]));
    let members = get(
        &base,
        "/data/core/identity/cluster/members?namespace=CRMID&id=jane-1",
    )
    .await;
    assert_eq!(members.status, StatusCode::OK);
    assert_eq!(
        members.json()["clusters"][0]["members"],
        json!([]),
        "identity survived: {}",
        members.text
    );
    // Isolated to the subject: John is untouched.
    let (status, john) = profile(
        &base,
        "CRMID",
        "john-1",
        &format!("&mergePolicyId={none_id}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(john["entity"]["homeAddress"]["city"], "Basel");
    // The erasure is in the change feed (audit) and a second one finds nothing.
    let feed = setup.feed().await;
    assert!(feed.iter().any(|e| e["kind"] == "erased"), "{feed:?}");
    let again = send(
        Method::DELETE,
        &format!("{base}{LOOKUP}&entityId=jane-1&entityIdNS=CRMID"),
        &TENANT,
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn bulk_lookup_answers_each_identity() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    jane(&setup).await;

    let ok = post(
        &base,
        "/data/core/ups/access/entities",
        json!({
        "schema": {"name": "_xdm.context.profile"},
        "fields": ["person.name.lastName"],
        "identities": [
            {"entityId": "jane-1", "entityIdNS": {"code": "CRMID"}},
            {"entityId": "nobody", "entityIdNS": {"code": "CRMID"}}
        ]}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let body = ok.json();
    let map = body.as_object().unwrap();
    assert_eq!(map.len(), 2);
    let found: Vec<&Value> = map
        .values()
        .filter(|p| p["sources"] != json!([""]))
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0]["entity"],
        json!({"person": {"name": {"lastName": "Smith"}}})
    );
    let missing: Vec<&Value> = map
        .values()
        .filter(|p| p["sources"] == json!([""]))
        .collect();
    assert_eq!(missing[0]["lastModifiedAt"], "1970-01-01T00:00:00Z");

    // One bad identity: 207, the others still answered.
    let partial = post(
        &base,
        "/data/core/ups/access/entities",
        json!({
        "schema": {"name": "_xdm.context.profile"},
        "identities": [
            {"entityId": "jane-1", "entityIdNS": {"code": "CRMID"}},
            {"entityId": "x", "entityIdNS": {"code": "NoSuchNamespace"}}
        ]}),
    )
    .await;
    assert_eq!(partial.status, StatusCode::MULTI_STATUS, "{}", partial.text);
    let items = partial.json();
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["error"]["statusCode"], "400");
    assert_eq!(
        items[0]["entity"]["entity"]["person"]["name"]["lastName"],
        "Smith"
    );

    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"entityId": format!("c{i}"), "entityIdNS": {"code": "CRMID"}}))
        .collect();
    let refused = post(
        &base,
        "/data/core/ups/access/entities",
        json!({"schema": {"name": "_xdm.context.profile"}, "identities": too_many}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}
