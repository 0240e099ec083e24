#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Namespaces and identity-graph lookups over HTTP, in AEP's shapes, on graphs built by
//! streaming ingestion.

mod common;

use common::ingest::{get, post, setup, TENANT};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const ECID: &str = "11111111111111111111111111111111111111";

#[tokio::test]
async fn namespaces_standard_and_custom() {
    let server = TestServer::start(None).await;
    let base = server.url("");
    let list = get(&base, "/data/core/idnamespace/identities").await;
    assert_eq!(list.status, StatusCode::OK);
    let all = list.json();
    let ecid = all
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["code"] == "ECID")
        .unwrap();
    assert_eq!(
        (
            ecid["id"].as_i64(),
            ecid["idType"].as_str(),
            ecid["custom"].as_bool()
        ),
        (Some(4), Some("COOKIE"), Some(false))
    );

    let body = json!({"name": "Loyalty Member", "code": "Loyalty", "description": "Loyalty Program Member ID", "idType": "Cross_device"});
    let created = post(&base, "/data/core/idnamespace/identities", body.clone()).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let ns = created.json();
    assert_eq!(
        (
            ns["code"].as_str(),
            ns["idType"].as_str(),
            ns["custom"].as_bool()
        ),
        (Some("Loyalty"), Some("CROSS_DEVICE"), Some(true))
    );
    let id = ns["id"].as_i64().unwrap();

    let duplicate = post(
        &base,
        "/data/core/idnamespace/identities",
        json!({"name": "Other", "code": "loyalty", "idType": "COOKIE"}),
    )
    .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(
        duplicate.json()["type"],
        "http://ns.adobe.com/adobecloud/problem/namespacevalidation"
    );
    assert_eq!(duplicate.json()["error"], "NAMESPACE_CODE_CONFLICT");
    // AEP's documented 409 body.
    assert_eq!(
        (
            &duplicate.json()["status"],
            &duplicate.json()["title"],
            &duplicate.json()["description"],
            &duplicate.json()["report"]["code"]
        ),
        (
            &json!(409),
            &json!("NAMESPACE_CODE_CONFLICT"),
            &json!("Namespace code already exists. Please use a different code"),
            &json!("INTEGRATION_CODE_EXISTS")
        )
    );
    let bad_type = post(
        &base,
        "/data/core/idnamespace/identities",
        json!({"name": "X", "code": "X1", "idType": "Person"}),
    )
    .await;
    assert_eq!(bad_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_type.json()["report"]["code"], "INVALID_REQUEST_PARAMS");
    let bad_code = post(
        &base,
        "/data/core/idnamespace/identities",
        json!({"name": "Y", "code": "has space", "idType": "COOKIE"}),
    )
    .await;
    assert_eq!(bad_code.status, StatusCode::BAD_REQUEST);

    let path = format!("/data/core/idnamespace/identities/{id}");
    assert_eq!(get(&base, &path).await.json()["name"], "Loyalty Member");
    let renamed = send(Method::PUT, &format!("{base}{path}"), &TENANT,
        Some(json!({"name": "Loyalty Members", "code": "Loyalty", "idType": "CROSS_DEVICE", "description": "d"}))).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.json()["name"], "Loyalty Members");
    // Codes match case-insensitively everywhere, so restating one in another case is not
    // an edit of it.
    let restated = send(
        Method::PUT,
        &format!("{base}{path}"),
        &TENANT,
        Some(json!({"name": "Loyalty Members", "code": "LOYALTY", "idType": "CROSS_DEVICE"})),
    )
    .await;
    assert_eq!(restated.status, StatusCode::OK, "{}", restated.text);
    assert_eq!(restated.json()["code"], "Loyalty");
    let recoded = send(
        Method::PUT,
        &format!("{base}{path}"),
        &TENANT,
        Some(json!({"name": "Loyalty Members", "code": "Loyal", "idType": "CROSS_DEVICE"})),
    )
    .await;
    assert_eq!(recoded.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        recoded.json()["description"],
        "code and idType are non editable fields"
    );
    assert_eq!(
        get(&base, "/data/core/idnamespace/identities/999")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let standard = send(
        Method::PUT,
        &format!("{base}/data/core/idnamespace/identities/4"),
        &TENANT,
        Some(json!({"name": "x", "code": "ECID", "idType": "COOKIE"})),
    )
    .await;
    assert_eq!(standard.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test]
async fn graphs_built_by_ingestion_answer_lookups_by_any_member() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();

    // An unregistered namespace is refused until it exists.
    let loyalty = json!({"identityMap": {"Email": [{"id": "Jane@Example.com", "primary": true}], "Loyalty": [{"id": "L-1"}]}});
    let refused = setup.stream(setup.profile_message(loyalty.clone())).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["code"], "invalid_identity");
    post(
        &base,
        "/data/core/idnamespace/identities",
        json!({"name": "Loyalty", "code": "Loyalty", "idType": "CROSS_DEVICE"}),
    )
    .await;
    assert_eq!(
        setup.stream(setup.profile_message(loyalty)).await.status,
        StatusCode::OK
    );

    // The web visitor logs in: ECID and CRMID link, then the CRM record links CRMID and email.
    let login = json!({"_id": "e1", "timestamp": "2025-01-01T00:00:00Z",
        "identityMap": {"ECID": [{"id": ECID, "primary": true}], "CRMID": [{"id": "crm-7"}]}});
    assert_eq!(
        setup.stream(setup.event_message(login)).await.status,
        StatusCode::OK
    );
    let crm = json!({"identityMap": {"CRMID": [{"id": "crm-7", "primary": true}], "Email": [{"id": "jane@example.com"}]}});
    assert_eq!(
        setup.stream(setup.profile_message(crm)).await.status,
        StatusCode::OK
    );

    let xid = get(
        &base,
        "/data/core/identity/identity?namespace=email&id=JANE@example.com",
    )
    .await;
    assert_eq!(xid.status, StatusCode::OK, "{}", xid.text);
    let xid = xid.json()["xid"].as_str().unwrap().to_owned();
    let unknown = get(
        &base,
        "/data/core/identity/identity?namespace=Email&id=nobody@example.com",
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.json()["title"], "InvalidInput");

    let by_xid = get(
        &base,
        &format!("/data/core/identity/cluster/members?xid={xid}"),
    )
    .await
    .json();
    assert_eq!(by_xid["version"], "1.1.0");
    assert_eq!(by_xid["clusters"][0]["xid"], xid.as_str());
    assert_eq!(
        by_xid["clusters"][0]["members"].as_array().unwrap().len(),
        4,
        "Email, Loyalty, ECID, CRMID"
    );

    let by_code = get(
        &base,
        &format!("/data/core/identity/cluster/members?namespace=ECID&id={ECID}"),
    )
    .await
    .json();
    let mut members: Vec<String> = by_code["clusters"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m["namespace"].as_str().unwrap(),
                m["id"].as_str().unwrap()
            )
        })
        .collect();
    members.sort();
    assert_eq!(
        members,
        [
            "CRMID:crm-7",
            format!("ECID:{ECID}").as_str(),
            "Email:jane@example.com",
            "Loyalty:L-1"
        ]
    );

    let by_nsid = get(
        &base,
        "/data/core/identity/cluster/members?nsid=6&id=jane@example.com",
    )
    .await
    .json();
    assert!(by_nsid["clusters"][0]["members"]
        .as_array()
        .unwrap()
        .contains(&json!({"nsid": 4, "id": ECID})));

    let batch = post(&base, "/data/core/identity/clusters/members",
        json!({"compositeXidsWithNamespace": [{"namespace": "CRMID", "id": "crm-7"}, {"namespace": "CRMID", "id": "nobody"}]})).await.json();
    let clusters = batch["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 2, "one entry per requested identity");
    assert_eq!(clusters[0]["members"].as_array().unwrap().len(), 4);
    assert_eq!(clusters[1]["members"], json!([]));
    let too_many: Vec<Value> = (0..1001).map(|i| json!(format!("x{i}"))).collect();
    let over = post(
        &base,
        "/data/core/identity/clusters/members",
        json!({"xids": too_many}),
    )
    .await;
    assert_eq!(over.status, StatusCode::BAD_REQUEST);
    let missing = get(&base, "/data/core/identity/cluster/members").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);

    // Another tenant sees none of it.
    let other = send(
        Method::GET,
        &format!("{base}/data/core/identity/cluster/members?xid={xid}"),
        &[
            ("x-gw-ims-org-id", "OTHER@AdobeOrg"),
            ("x-sandbox-name", "prod"),
        ],
        None,
    )
    .await
    .json();
    assert_eq!(other["clusters"][0]["members"], json!([]));

    // The change feed carries the graph id of each applied record.
    let feed = setup.feed().await;
    let graphs: std::collections::BTreeSet<u64> =
        feed.iter().filter_map(|e| e["graph"].as_u64()).collect();
    assert_eq!(
        graphs.len(),
        2,
        "the first two records started two graphs, merged by the third"
    );
    server.stop().await;
}

#[tokio::test]
async fn unlink_blocklist_and_history_over_http() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let device = "22222222222222222222222222222222222222";
    let visit = |id: &str, crm: &str| {
        json!({"_id": id, "timestamp": "2025-01-01T00:00:00Z",
            "identityMap": {"ECID": [{"id": device, "primary": true}], "CRMID": [{"id": crm}]}})
    };
    assert_eq!(
        setup
            .stream(setup.event_message(visit("v1", "alice")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        setup
            .stream(setup.event_message(visit("v2", "bob")))
            .await
            .status,
        StatusCode::OK
    );
    let members = |reply: Value| reply["clusters"][0]["members"].as_array().unwrap().len();
    assert_eq!(
        members(
            get(
                &base,
                "/data/core/identity/cluster/members?namespace=CRMID&id=bob"
            )
            .await
            .json()
        ),
        3
    );

    let unlinked = send(
        Method::DELETE,
        &format!("{base}/data/core/identity/identity?namespace=ECID&id={device}"),
        &TENANT,
        None,
    )
    .await;
    assert_eq!(unlinked.status, StatusCode::OK, "{}", unlinked.text);
    assert_eq!(
        unlinked.json()["graphs"].as_array().unwrap().len(),
        2,
        "alice and bob apart"
    );
    assert_eq!(
        members(
            get(
                &base,
                "/data/core/identity/cluster/members?namespace=CRMID&id=bob"
            )
            .await
            .json()
        ),
        1
    );
    let history = get(
        &base,
        "/data/core/identity/graph/history?namespace=CRMID&id=alice",
    )
    .await
    .json();
    let events: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"unlinked-identity") && events.contains(&"split"),
        "{history}"
    );
    let again = post(
        &base,
        "/data/core/identity/unlink",
        json!({"identity": {"namespace": "ECID", "id": device}}),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    // Block the device: new visits no longer link people through it.
    let blocked = post(
        &base,
        "/data/core/identity/blocklist",
        json!({"namespace": "ECID", "id": device, "reason": "kiosk"}),
    )
    .await;
    assert_eq!(blocked.status, StatusCode::CREATED, "{}", blocked.text);
    assert_eq!(
        setup
            .stream(setup.event_message(visit("v3", "carol")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        setup
            .stream(setup.event_message(visit("v4", "alice")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        members(
            get(
                &base,
                "/data/core/identity/cluster/members?namespace=CRMID&id=carol"
            )
            .await
            .json()
        ),
        1
    );
    assert_eq!(
        members(
            get(
                &base,
                "/data/core/identity/cluster/members?namespace=CRMID&id=alice"
            )
            .await
            .json()
        ),
        1
    );
    assert_eq!(
        get(&base, "/data/core/identity/blocklist").await.json()["blocked"][0]["reason"],
        "kiosk"
    );

    // Unblocked, the next visit links again.
    let unblocked = send(
        Method::DELETE,
        &format!("{base}/data/core/identity/blocklist?namespace=ECID&id={device}"),
        &TENANT,
        None,
    )
    .await;
    assert_eq!(unblocked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        setup
            .stream(setup.event_message(visit("v5", "dave")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        members(
            get(
                &base,
                "/data/core/identity/cluster/members?namespace=CRMID&id=dave"
            )
            .await
            .json()
        ),
        2
    );

    // Removing one link.
    let link = send(
        Method::DELETE,
        &format!("{base}/data/core/identity/link?namespace=ECID&id={device}&linkedNamespace=CRMID&linkedId=dave"),
        &TENANT,
        None,
    )
    .await;
    assert_eq!(link.status, StatusCode::OK, "{}", link.text);
    let gone = post(&base, "/data/core/identity/unlink", json!({"link": [{"namespace": "ECID", "id": device}, {"namespace": "CRMID", "id": "dave"}]})).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.text);
    assert_eq!(
        members(
            get(
                &base,
                "/data/core/identity/cluster/members?namespace=CRMID&id=dave"
            )
            .await
            .json()
        ),
        1
    );
    let bad = post(
        &base,
        "/data/core/identity/unlink",
        json!({"link": [{"namespace": "CRMID", "id": "dave"}]}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test]
async fn non_people_and_blocked_identities_link_nobody() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let created = post(
        &base,
        "/data/core/idnamespace/identities",
        json!({"name": "Store", "code": "StoreId", "idType": "NON_PEOPLE"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    // Two shoppers of one store: the store's id is on both records.
    for (event, crm) in [("s1", "alice"), ("s2", "bob")] {
        let visit = json!({"_id": event, "timestamp": "2025-01-01T00:00:00Z",
            "identityMap": {"CRMID": [{"id": crm, "primary": true}],
                "Email": [{"id": format!("{crm}@example.com")}],
                "StoreId": [{"id": "store-7"}]}});
        let sent = setup.stream(setup.event_message(visit)).await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    }
    let members = |reply: Value| -> Vec<String> {
        let mut ids: Vec<String> = reply["clusters"][0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        ids.sort();
        ids
    };
    for crm in ["alice", "bob"] {
        let reply = get(
            &base,
            &format!("/data/core/identity/cluster/members?namespace=CRMID&id={crm}"),
        )
        .await;
        assert_eq!(
            members(reply.json()),
            vec![crm.to_owned(), format!("{crm}@example.com")],
            "the store id joins no graph, so it joins no two people"
        );
    }
    let store = get(
        &base,
        "/data/core/identity/cluster/members?namespace=StoreId&id=store-7",
    )
    .await;
    assert!(members(store.json()).is_empty(), "{}", store.text);

    // A primary left out of linking keeps its fragment in the profile of the graph it
    // already belongs to, and that profile is refreshed, although the record's other
    // identity went to another graph.
    let record = |name: &str, other: Value| {
        let mut map = json!({"CRMID": [{"id": "dan", "primary": true}]});
        map.as_object_mut()
            .unwrap()
            .extend(other.as_object().unwrap().clone());
        json!({"identityMap": map, "person": {"name": {"firstName": name}}})
    };
    let lookup =
        "/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS=Email&entityId=dan@example.com";
    let first_name = |reply: Value| {
        reply.as_object().unwrap().values().next().unwrap()["entity"]["person"]["name"]["firstName"]
            .clone()
    };
    let sent = setup
        .stream(setup.profile_message(record(
            "First",
            json!({"Email": [{"id": "dan@example.com"}]}),
        )))
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert_eq!(first_name(get(&base, lookup).await.json()), json!("First"));
    let blocked = post(
        &base,
        "/data/core/identity/blocklist",
        json!({"namespace": "CRMID", "id": "dan"}),
    )
    .await;
    assert_eq!(blocked.status, StatusCode::CREATED, "{}", blocked.text);
    let sent = setup
        .stream(setup.profile_message(record("Second", json!({"Phone": [{"id": "+15550001111"}]}))))
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert_eq!(
        members(
            get(
                &base,
                "/data/core/identity/cluster/members?namespace=Phone&id=%2B15550001111"
            )
            .await
            .json()
        ),
        vec!["+15550001111".to_owned()],
        "the blocked primary linked nothing"
    );
    assert_eq!(first_name(get(&base, lookup).await.json()), json!("Second"));
    server.stop().await;
}

#[tokio::test]
async fn identity_settings_keep_strangers_apart_and_pick_event_primaries() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let put = |body: Value| {
        let base = base.clone();
        async move {
            send(
                Method::PUT,
                &format!("{base}/data/core/identity/settings"),
                &TENANT,
                Some(body),
            )
            .await
        }
    };
    // AEP's constraints: no device/cookie namespace unique or above a person namespace.
    assert_eq!(
        put(json!({"uniqueNamespaces": ["ECID"]})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put(json!({"namespacePriority": ["ECID", "CRMID"]}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put(json!({"uniqueNamespaces": ["Nope"]})).await.status,
        StatusCode::BAD_REQUEST
    );
    let saved = put(
        json!({"uniqueNamespaces": ["crmid"], "namespacePriority": ["CRMID", "Email", "ECID"]}),
    )
    .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    assert_eq!(
        saved.json()["uniqueNamespaces"],
        json!(["CRMID"]),
        "codes come back in their registered spelling"
    );
    assert_eq!(
        get(&base, "/data/core/identity/settings").await.json()["namespacePriority"],
        json!(["CRMID", "Email", "ECID"])
    );

    // A shared laptop: the last person to log in keeps the cookie.
    let laptop = "33333333333333333333333333333333333333";
    let login = |id: &str, crm: &str| {
        json!({"_id": id, "timestamp": "2025-01-01T00:00:00Z",
            "identityMap": {"ECID": [{"id": laptop, "primary": true}], "CRMID": [{"id": crm}]}})
    };
    assert_eq!(
        setup
            .stream(setup.event_message(login("l1", "kevin")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        setup
            .stream(setup.event_message(login("l2", "nora")))
            .await
            .status,
        StatusCode::OK
    );
    let members = |reply: Value| -> Vec<String> {
        let mut m: Vec<String> = reply["clusters"][0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        m.sort();
        m
    };
    assert_eq!(
        members(
            get(
                &base,
                "/data/core/identity/cluster/members?namespace=CRMID&id=nora"
            )
            .await
            .json()
        ),
        [laptop, "nora"]
    );
    assert_eq!(
        members(
            get(
                &base,
                "/data/core/identity/cluster/members?namespace=CRMID&id=kevin"
            )
            .await
            .json()
        ),
        ["kevin"]
    );

    // With a priority, an authenticated event is filed under the CRM id, not the flagged ECID.
    let feed = setup.feed().await;
    assert_eq!(
        (feed[1]["namespace"].as_str(), feed[1]["id"].as_str()),
        (Some("CRMID"), Some("nora"))
    );
    // An event with two identities of its highest-priority namespace is refused.
    let ambiguous = json!({"_id": "x", "timestamp": "2025-01-01T00:00:00Z",
        "identityMap": {"ECID": [{"id": laptop}], "CRMID": [{"id": "kevin"}, {"id": "nora"}]}});
    let refused = setup.stream(setup.event_message(ambiguous)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["code"], "invalid_identity");
    server.stop().await;
}

#[tokio::test]
async fn v2_graph_api_set_and_graph_projections() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let record = json!({"identityMap": {"CRMID": [{"id": "tom", "primary": true}], "Email": [{"id": "tom@acme.com"}], "Phone": [{"id": "+1 555 000 9999"}]}});
    assert_eq!(
        setup.stream(setup.profile_message(record)).await.status,
        StatusCode::OK
    );

    let set = post(&base, "/data/core/identity/v2/graph", json!({"composite_xids": [{"ns": "Email", "id": "tom@acme.com"}, {"ns": "Email", "id": "nobody@acme.com"}], "projection_type": "set"})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    let set = set.json();
    assert_eq!(set["version"], "2.0");
    assert_eq!(
        set["graphs"][0]["composite_xid"],
        json!({"ns": "Email", "id": "tom@acme.com"})
    );
    assert_eq!(set["graphs"][0]["members"].as_array().unwrap().len(), 3);
    assert!(set["graphs"][0]["members"]
        .as_array()
        .unwrap()
        .contains(&json!({"ns": "Phone", "id": "+15550009999"})));
    assert_eq!(
        set["unprocessed_composite_xids"],
        json!([{"ns": "Email", "id": "nobody@acme.com"}])
    );

    let graph = post(&base, "/data/core/identity/v2/graph", json!({"composite_xids": [{"nsid": 6, "id": "tom@acme.com"}], "projection_type": "graph", "require_edge_meta_data": true})).await.json();
    let g = &graph["graphs"][0];
    assert_eq!(g["vertices"].as_array().unwrap().len(), 3);
    assert!(g["vertices"][0]["last_updated_ts"].as_i64().unwrap() > 0);
    let edges = g["edges"].as_array().unwrap();
    assert_eq!(
        edges.len(),
        3,
        "a record links every pair of its identities"
    );
    assert!(edges
        .iter()
        .all(|e| e["dataset_ids"] == json!([setup.profile_dataset])));
    assert!(edges.iter().any(|e| e["composite_xid_pair"]
        .as_array()
        .unwrap()
        .contains(&json!({"nsid": 7, "id": "+15550009999"}))));

    let xid = get(&base, "/data/core/identity/identity?namespace=CRMID&id=tom")
        .await
        .json()["xid"]
        .as_str()
        .unwrap()
        .to_owned();
    // AEP's example XID is not one of Tessera's: that identity is unprocessed, and the
    // rest of the list is still answered.
    let by_xid = post(
        &base,
        "/data/core/identity/v2/graph",
        json!({"xids": [xid, "HHDAHDKYYD"], "projection_type": "graph"}),
    )
    .await;
    assert_eq!(by_xid.status, StatusCode::OK, "{}", by_xid.text);
    assert_eq!(
        by_xid.headers[hyper::header::CONTENT_TYPE],
        "application/json;version=2.2.1;charset=utf-8"
    );
    let by_xid = by_xid.json();
    assert_eq!(by_xid["unprocessed_xids"], json!(["HHDAHDKYYD"]));
    assert_eq!(by_xid["graphs"][0]["xid"], xid.as_str());
    assert!(by_xid["graphs"][0]["edges"][0]["xid_pair"].is_array());
    assert!(
        by_xid["graphs"][0]["edges"][0].get("dataset_ids").is_none(),
        "metadata only when asked"
    );

    let bad = post(
        &base,
        "/data/core/identity/v2/graph",
        json!({"xids": [xid], "projection_type": "tree"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test]
async fn cluster_history_lists_the_graphs_an_identity_moved_through() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let link = |id: &str, ids: Value| json!({"_id": id, "timestamp": "2025-01-01T00:00:00Z", "identityMap": ids});
    // ECID starts alone, then is merged into the (older) CRM graph.
    let crm = json!({"identityMap": {"CRMID": [{"id": "zoe", "primary": true}], "Email": [{"id": "zoe@x.com"}]}});
    assert_eq!(
        setup.stream(setup.profile_message(crm)).await.status,
        StatusCode::OK
    );
    let ecid = "44444444444444444444444444444444444444";
    let anonymous = link("a1", json!({"ECID": [{"id": ecid, "primary": true}]}));
    assert_eq!(
        setup.stream(setup.event_message(anonymous)).await.status,
        StatusCode::OK
    );
    let login = link(
        "a2",
        json!({"ECID": [{"id": ecid, "primary": true}], "CRMID": [{"id": "zoe"}]}),
    );
    assert_eq!(
        setup.stream(setup.event_message(login)).await.status,
        StatusCode::OK
    );

    let history = get(
        &base,
        &format!("/data/core/identity/cluster/history?namespace=ECID&id={ecid}"),
    )
    .await
    .json();
    assert_eq!(history["version"], 1);
    let moves = history["xidsClusterHistory"][0]["clusterHistory"]
        .as_array()
        .unwrap();
    assert_eq!(
        moves.len(),
        2,
        "its own graph, then the CRM graph: {history}"
    );
    let crm_graph = get(
        &base,
        "/data/core/identity/graph/history?namespace=CRMID&id=zoe",
    )
    .await
    .json()["graph"]
        .as_u64()
        .unwrap();
    assert_eq!(
        moves[0]["clusterId"],
        crm_graph.to_string().as_str(),
        "newest first"
    );
    assert!(
        moves[0]["cRecordedTS"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    assert_eq!(
        history["xidsClusterHistory"][0]["compositeXid"],
        json!({"namespace": "ECID", "id": ecid})
    );

    let batch = post(&base, "/data/core/identity/clusters/history",
        json!({"compositeXidsWithNamespace": [{"namespace": "CRMID", "id": "zoe"}, {"namespace": "CRMID", "id": "nobody"}]})).await.json();
    let by_xids = post(
        &base,
        "/data/core/identity/clusters/history",
        json!({"xids": ["HHDAHDKYYD"]}),
    )
    .await;
    assert_eq!(by_xids.status, StatusCode::OK, "{}", by_xids.text);
    assert_eq!(by_xids.json()["unprocessedXids"], json!(["HHDAHDKYYD"]));
    let single = get(&base, "/data/core/identity/cluster/history?xid=HHDAHDKYYD").await;
    assert_eq!(single.status, StatusCode::BAD_REQUEST, "{}", single.text);
    assert_eq!(batch["xidsClusterHistory"].as_array().unwrap().len(), 1);
    assert_eq!(
        batch["xidsClusterHistory"][0]["clusterHistory"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "zoe never moved"
    );
    assert_eq!(
        batch["unprocessedNids"],
        json!([{"namespace": "CRMID", "id": "nobody"}])
    );
    server.stop().await;
}

#[tokio::test]
async fn the_graph_limit_is_configurable() {
    let server = TestServer::start(Some("[limits]\nmax_graph_identities = 3\n")).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let event = |id: &str, ecid: &str| {
        json!({"_id": id, "timestamp": "2025-01-01T00:00:00Z",
            "identityMap": {"CRMID": [{"id": "max", "primary": true}], "ECID": [{"id": ecid}]}})
    };
    for (n, ecid) in [
        "55555555555555555555555555555555555551",
        "55555555555555555555555555555555555552",
        "55555555555555555555555555555555555553",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            setup
                .stream(setup.event_message(event(&format!("m{n}"), ecid)))
                .await
                .status,
            StatusCode::OK
        );
    }
    let members = get(
        &base,
        "/data/core/identity/cluster/members?namespace=CRMID&id=max",
    )
    .await
    .json();
    let ids: Vec<&str> = members["clusters"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(
        !ids.contains(&"55555555555555555555555555555555555551"),
        "the oldest cookie went first: {ids:?}"
    );
    let history = get(
        &base,
        "/data/core/identity/graph/history?namespace=CRMID&id=max",
    )
    .await
    .json();
    assert!(
        history["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["event"] == "evicted"),
        "{history}"
    );
    server.stop().await;
}
