#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Computed attributes follow identity-graph changes end to end, with the server's own
//! workers: a record merging two profiles (its feed entry names the graph it merged away,
//! whose state goes), an unlink through `POST /identity/unlink` (each part then holds its
//! own events only, without another write), an erasure through `DELETE /access/entities`
//! (the person's state goes), and an eviction at the graph limit that splits a graph
//! during ingestion (the part split off gets its own values at once).

mod common;

use std::time::Duration;

use common::ingest::{post, setup, Setup, TENANT};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_model::Tenant;
use tessera_profile::IdentityKey;
use tessera_segment::computed::{store as state_store, upkeep};

const ATTRIBUTES: &str = "/data/core/ca/attributes";

fn tenant() -> Tenant {
    Tenant::parse(common::ingest::ORG, "prod").unwrap()
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn iso(ms_ago: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::milliseconds(ms_ago);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn purchase(id: &str, namespace: &str, who: &str, total: u32) -> Value {
    purchase_with(
        id,
        json!({namespace: [{"id": who, "primary": true}]}),
        total,
    )
}

/// A purchase of `total`, a minute ago, carrying `identity_map`.
fn purchase_with(id: &str, identity_map: Value, total: u32) -> Value {
    json!({
        "_id": id, "timestamp": iso(60_000), "eventType": "commerce.purchases",
        "identityMap": identity_map,
        "commerce": {"order": {"priceTotal": total}}
    })
}

/// A profile record carrying `identities` (the first primary).
fn record(identities: &[(&str, &str)]) -> Value {
    let mut map = serde_json::Map::new();
    for (n, (namespace, id)) in identities.iter().enumerate() {
        let list = map
            .entry((*namespace).to_owned())
            .or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            list.push(json!({"id": id, "primary": n == 0}));
        }
    }
    json!({"identityMap": map, "person": {"name": {"firstName": identities[0].1}}})
}

async fn stream_ok(setup: &Setup, message: Value) {
    let reply = setup.stream(message).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // Graph members are ordered by when they were last seen (evictions): keep writes apart.
    tokio::time::sleep(Duration::from_millis(5)).await;
}

fn graph_of(server: &TestServer, namespace: &str, id: &str) -> Option<u64> {
    tessera_identity::graph_id(
        server.state.store.as_ref(),
        &tenant(),
        &IdentityKey::new(namespace, id),
    )
    .unwrap()
}

/// `(spend, purchases)` of the profile holding `namespace`/`id`, as lookups and segments
/// read them.
fn values(server: &TestServer, namespace: &str, id: &str) -> (Value, Value) {
    let Some(graph) = graph_of(server, namespace, id) else {
        return (Value::Null, Value::Null);
    };
    let values = upkeep::values(server.state.store.as_ref(), &tenant(), graph, now_ms()).unwrap();
    let get = |name: &str| {
        values
            .iter()
            .find(|(_, n, _)| n == name)
            .map_or(Value::Null, |(_, _, v)| v.clone())
    };
    (get("spend"), get("purchases"))
}

/// Waits (the consumer runs on the streaming-segmentation worker) until `namespace`/`id`
/// shows `want`; returns what it last showed.
async fn settle(server: &TestServer, namespace: &str, id: &str, want: (Value, Value)) {
    let mut seen = (Value::Null, Value::Null);
    for _ in 0..200 {
        seen = values(server, namespace, id);
        if seen == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{namespace}/{id} shows {seen:?}, expected {want:?}");
}

fn has_state(server: &TestServer, graph: u64) -> bool {
    state_store::load(server.state.store.as_ref(), &tenant(), graph)
        .unwrap()
        .is_some()
}

async fn define(base: &str, name: &str, pql: &str) {
    let reply = post(
        base,
        ATTRIBUTES,
        json!({
            "name": name,
            "expression": {"type": "PQL", "format": "pql/text", "value": pql},
            "duration": {"count": 7, "unit": "DAYS"},
            "status": "NEW"
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    for _ in 0..400 {
        let reply = common::ingest::get(base, &format!("{ATTRIBUTES}/{id}")).await;
        if reply.json()["status"] == "PROCESSED" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("attribute {name} was not backfilled");
}

/// Puts an identity (`{namespace, id[, reason]}`) on the sandbox's blocklist.
async fn block(base: &str, identity: Value) {
    let blocked = post(base, "/data/core/identity/blocklist", identity).await;
    assert_eq!(blocked.status, StatusCode::CREATED, "{}", blocked.text);
}

/// A server (with `config`), its sandbox set up, the sandbox's base URL, and the two
/// attributes the tests read through `values`.
async fn start_with_spend_and_purchases(config: Option<&str>) -> (TestServer, Setup, String) {
    let server = TestServer::start(config).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    define(
        &base,
        "spend",
        r#"xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal)"#,
    )
    .await;
    define(&base, "purchases", "xEvent.count()").await;
    (server, setup, base)
}

#[tokio::test]
async fn values_follow_merges_unlinks_erasures_and_eviction_splits() {
    let (server, setup, base) =
        start_with_spend_and_purchases(Some("[limits]\nmax_graph_identities = 3\n")).await;
    let (mail, ann) = ("ann@example.com", "ann");

    // Two profiles buy separately.
    stream_ok(&setup, setup.profile_message(record(&[("CRMID", ann)]))).await;
    stream_ok(
        &setup,
        setup.event_message(purchase("a1", "CRMID", ann, 10)),
    )
    .await;
    stream_ok(
        &setup,
        setup.event_message(purchase("a2", "CRMID", ann, 20)),
    )
    .await;
    stream_ok(
        &setup,
        setup.event_message(purchase("m1", "Email", mail, 5)),
    )
    .await;
    settle(&server, "CRMID", ann, (json!(30), json!(2))).await;
    settle(&server, "Email", mail, (json!(5), json!(1))).await;
    let before = [
        graph_of(&server, "CRMID", ann).unwrap(),
        graph_of(&server, "Email", mail).unwrap(),
    ];

    // A record joins them; the graph it merged away keeps no state.
    stream_ok(
        &setup,
        setup.profile_message(record(&[("CRMID", ann), ("Email", mail)])),
    )
    .await;
    settle(&server, "CRMID", ann, (json!(35), json!(3))).await;
    let merged = graph_of(&server, "CRMID", ann).unwrap();
    let absorbed: Vec<u64> = before.into_iter().filter(|g| *g != merged).collect();
    assert_eq!(absorbed.len(), 1);
    assert!(
        !has_state(&server, absorbed[0]),
        "orphan state of {absorbed:?}"
    );
    let feed = setup.feed().await;
    assert!(
        feed.iter().any(|e| e["absorbed"] == json!(absorbed)),
        "the merging record's entry names the absorbed graph"
    );

    // Unlinking them over HTTP: each part counts its own events, with no event afterwards.
    let unlink = post(
        &base,
        "/data/core/identity/unlink",
        json!({"link": [{"namespace": "CRMID", "id": ann}, {"namespace": "Email", "id": mail}]}),
    )
    .await;
    assert_eq!(unlink.status, StatusCode::OK, "{}", unlink.text);
    settle(&server, "CRMID", ann, (json!(30), json!(2))).await;
    settle(&server, "Email", mail, (json!(5), json!(1))).await;
    let mail_graph = graph_of(&server, "Email", mail).unwrap();
    assert_ne!(mail_graph, graph_of(&server, "CRMID", ann).unwrap());
    assert!(has_state(&server, mail_graph));

    // Erasing the e-mail's person removes its state.
    let erased = send(
        Method::DELETE,
        &format!("{base}/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS=Email&entityId={mail}"),
        &TENANT,
        None,
    )
    .await;
    assert_eq!(erased.status, StatusCode::ACCEPTED, "{}", erased.text);
    let mut gone = false;
    for _ in 0..200 {
        gone = !has_state(&server, mail_graph);
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(gone, "the erased person's state is still there");
    settle(&server, "CRMID", ann, (json!(30), json!(2))).await;

    // At the limit of 3 identities, a record evicts `hub`, the least recently seen, which
    // held `right` to the rest: `right` is split off during ingestion and at once shows its
    // own purchase, and `left`'s profile only its own.
    let (hub, left, right, extra) = (
        "hub@example.com",
        "left@example.com",
        "right@example.com",
        "extra@example.com",
    );
    stream_ok(
        &setup,
        setup.profile_message(record(&[("Email", hub), ("Email", left)])),
    )
    .await;
    stream_ok(
        &setup,
        setup.profile_message(record(&[("Email", hub), ("Email", right)])),
    )
    .await;
    stream_ok(
        &setup,
        setup.event_message(purchase("l1", "Email", left, 1)),
    )
    .await;
    stream_ok(
        &setup,
        setup.event_message(purchase("r1", "Email", right, 2)),
    )
    .await;
    settle(&server, "Email", left, (json!(3), json!(2))).await;
    stream_ok(
        &setup,
        setup.profile_message(record(&[("Email", extra), ("Email", left)])),
    )
    .await;
    assert_eq!(graph_of(&server, "Email", hub), None, "hub was evicted");
    assert_ne!(
        graph_of(&server, "Email", right),
        graph_of(&server, "Email", left)
    );
    settle(&server, "Email", right, (json!(2), json!(1))).await;
    settle(&server, "Email", left, (json!(1), json!(1))).await;
    server.stop().await;
}

/// Waits until the computed-attribute consumer has read the whole change feed.
async fn drained(server: &TestServer) {
    let store = server.state.store.as_ref();
    for _ in 0..400 {
        let head = tessera_ingest::change_feed::head(store).unwrap();
        if tessera_ingest::change_feed::checkpoint(store, upkeep::CONSUMER).unwrap() >= head {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the computed-attribute consumer did not catch up");
}

/// Once a sandbox stores events of a dataset outside the identity graph, a record that
/// brings their identity into a graph for the first time brings that past along: the
/// consumer recomputes the profile instead of starting it empty.
#[tokio::test]
async fn events_of_a_dataset_outside_the_graph_count_once_their_identity_joins_one() {
    let (server, setup, base) = start_with_spend_and_purchases(None).await;
    let growth_of = |feed: &[Value], who: &str| {
        feed.iter()
            .rev()
            .find(|e| e["kind"] == "record" && e["id"] == who)
            .map(|e| e["growth"].clone())
    };

    // No unlinked event yet: a record of two new identities says so.
    stream_ok(
        &setup,
        setup.profile_message(record(&[("CRMID", "bob"), ("Email", "bob@example.com")])),
    )
    .await;
    assert_eq!(
        growth_of(&setup.feed().await, "bob"),
        Some(json!({"created": true, "grewByNewIdentities": true, "cleanMerge": false}))
    );

    // A purchase in a profile dataset not enabled for identity: its email has no graph.
    let reply = post(
        &base,
        "/data/foundation/catalog/dataSets",
        json!({
            "name": "Store purchases",
            "schemaRef": {"id": setup.event_schema, "contentType": "application/vnd.adobe.xed-full+json;version=1"},
            "tags": {"unifiedProfile": ["enabled:true"]}
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let outside = reply.json()[0]
        .as_str()
        .unwrap()
        .trim_start_matches("@/dataSets/")
        .to_owned();
    let mut message = setup.event_message(purchase("s1", "Email", "ann@example.com", 7));
    message["header"]["datasetId"] = json!(outside);
    stream_ok(&setup, message).await;
    assert_eq!(graph_of(&server, "Email", "ann@example.com"), None);
    drained(&server).await;

    // Ann's CRM id and that email meet for the first time: her profile holds the purchase.
    stream_ok(
        &setup,
        setup.profile_message(record(&[("CRMID", "ann"), ("Email", "ann@example.com")])),
    )
    .await;
    assert_eq!(
        growth_of(&setup.feed().await, "ann"),
        Some(json!({"created": true, "grewByNewIdentities": false, "cleanMerge": false}))
    );
    settle(&server, "CRMID", "ann", (json!(7), json!(1))).await;

    // A record merges Bob's and Ann's graphs and brings Carl's email, with its purchase in
    // that dataset, along: not a clean merge, so the profile is recomputed, not combined.
    let mut message = setup.event_message(purchase("s2", "Email", "carl@example.com", 11));
    message["header"]["datasetId"] = json!(outside);
    stream_ok(&setup, message).await;
    drained(&server).await;
    stream_ok(
        &setup,
        setup.profile_message(record(&[
            ("CRMID", "bob"),
            ("CRMID", "ann"),
            ("Email", "carl@example.com"),
        ])),
    )
    .await;
    let feed = setup.feed().await;
    let merge = feed
        .iter()
        .rev()
        .find(|e| e["kind"] == "record" && e["id"] == "bob")
        .unwrap();
    assert_eq!(merge["absorbed"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        merge["growth"],
        Value::Null,
        "no flag set: not a clean merge"
    );
    settle(&server, "CRMID", "ann", (json!(18), json!(2))).await;
}

/// A blocked identity never joins a graph. An entry whose record carried one claims no
/// growth, so the consumer does not take the entry's identities for the graph's members,
/// and the blocked identity's events stay out of every profile's attributes.
#[tokio::test]
async fn a_blocked_identity_stays_out_of_the_attributes() {
    let (server, setup, base) = start_with_spend_and_purchases(None).await;
    block(
        &base,
        json!({"namespace": "Email", "id": "shared@example.com", "reason": "shared inbox"}),
    )
    .await;

    // Stored under the blocked email (its primary identity): Erin's profile does not hold it.
    let shared = purchase_with(
        "b1",
        json!({
            "Email": [{"id": "shared@example.com", "primary": true}],
            "CRMID": [{"id": "erin"}]
        }),
        5,
    );
    stream_ok(&setup, setup.event_message(shared)).await;
    let feed = setup.feed().await;
    let entry = feed.iter().rev().find(|e| e["kind"] == "event").unwrap();
    assert_eq!(
        entry["growth"],
        Value::Null,
        "no flag set: the entry is about the primary's profile, which no graph holds"
    );
    assert!(entry.get("graph").is_none(), "{entry}");
    // The graph Erin's identity made is heard of through an entry of its own.
    let changed = feed
        .iter()
        .rev()
        .find(|e| e["kind"] == "graphchanged")
        .unwrap();
    assert_eq!(changed["id"], "erin", "{changed}");
    assert_eq!(
        Some(changed["graph"].as_u64().unwrap()),
        graph_of(&server, "CRMID", "erin")
    );
    stream_ok(
        &setup,
        setup.event_message(purchase("b2", "CRMID", "erin", 7)),
    )
    .await;
    settle(&server, "CRMID", "erin", (json!(7), json!(1))).await;
}

/// A record whose primary identity was blocked after it joined a graph is stored under that
/// identity, so it belongs to that graph's profile: it counts there, not in the graph the
/// record's other identities joined. Before, its feed entry named the other graph, whose
/// profile does not hold it, and the primary's profile never counted it.
#[tokio::test]
async fn a_record_of_a_primary_blocked_later_counts_in_the_profile_holding_it() {
    let (server, setup, base) = start_with_spend_and_purchases(None).await;
    let purchase_of = |id: &str, other: (&str, &str), total: u32| {
        purchase_with(
            id,
            json!({"CRMID": [{"id": "dan", "primary": true}], other.0: [{"id": other.1}]}),
            total,
        )
    };
    stream_ok(
        &setup,
        setup.event_message(purchase_of("d1", ("Email", "dan@example.com"), 3)),
    )
    .await;
    settle(&server, "Email", "dan@example.com", (json!(3), json!(1))).await;
    block(&base, json!({"namespace": "CRMID", "id": "dan"})).await;
    stream_ok(
        &setup,
        setup.event_message(purchase_of("d2", ("Phone", "+15550001111"), 4)),
    )
    .await;
    let phone = graph_of(&server, "Phone", "+15550001111").unwrap();
    assert_ne!(
        Some(phone),
        graph_of(&server, "CRMID", "dan"),
        "dan linked nothing"
    );
    settle(&server, "Email", "dan@example.com", (json!(7), json!(2))).await;
    drained(&server).await;
    assert_eq!(
        values(&server, "Phone", "+15550001111").1,
        json!(0),
        "the phone's profile holds none of dan's purchases"
    );
}

/// Two records of one request, applied in one batch: the first, whose primary is blocked,
/// merges two graphs through its other identities; the second extends the merged graph by
/// an identity never seen. The first record's entry names no graph (its primary is left
/// out), so the merge is told by an entry of its own, which must come before the second record's:
/// extending the survivor's state without what merged into it would lose those events.
#[tokio::test]
async fn a_merge_made_without_its_primary_counts_before_the_next_record_of_the_batch() {
    let (server, setup, base) = start_with_spend_and_purchases(None).await;
    stream_ok(
        &setup,
        setup.event_message(purchase("m1", "CRMID", "amy", 5)),
    )
    .await;
    stream_ok(
        &setup,
        setup.event_message(purchase("m2", "Email", "g@example.com", 2)),
    )
    .await;
    settle(&server, "CRMID", "amy", (json!(5), json!(1))).await;
    settle(&server, "Email", "g@example.com", (json!(2), json!(1))).await;
    block(&base, json!({"namespace": "CRMID", "id": "dan"})).await;
    let reply = setup
        .stream_batch(vec![
            setup.event_message(purchase_with(
                "m3",
                json!({
                    "CRMID": [{"id": "dan", "primary": true}, {"id": "amy"}],
                    "Email": [{"id": "g@example.com"}]
                }),
                1,
            )),
            setup.event_message(purchase_with(
                "m4",
                json!({
                    "Email": [{"id": "g@example.com", "primary": true}],
                    "CRMID": [{"id": "amy"}],
                    "Phone": [{"id": "+15550002222"}]
                }),
                4,
            )),
        ])
        .await;
    assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.text);
    assert!(
        reply.json()["responses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("statusCode").is_none()),
        "{}",
        reply.text
    );
    let merged = graph_of(&server, "CRMID", "amy");
    assert_eq!(merged, graph_of(&server, "Phone", "+15550002222"));
    assert_eq!(merged, graph_of(&server, "Email", "g@example.com"));
    // Amy's and g's purchases and the second record's; the first is dan's, in no graph.
    settle(&server, "Phone", "+15550002222", (json!(11), json!(3))).await;
    drained(&server).await;
    assert_eq!(
        values(&server, "CRMID", "amy"),
        (json!(11), json!(3)),
        "still, once the consumer has caught up"
    );
}
