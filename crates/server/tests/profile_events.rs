#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Experience events of a profile through Profile Access
//! (`schema.name=_xdm.context.experienceevent`): pages followed through `_links.next.href`
//! in both orders, events of every identity in the graph, time window, property filters,
//! field projection, XID lookups and parameter validation.

mod common;

use common::ingest::{get, setup, Setup};
use common::TestServer;
use hyper::StatusCode;
use serde_json::{json, Value};

const EVENTS: &str = "/data/core/ups/access/entities?schema.name=_xdm.context.experienceevent&relatedSchema.name=_xdm.context.profile";
/// 2025-03-01T10:00:00Z.
const BASE_MS: i64 = 1_740_823_200_000;

fn at(minute: i64) -> i64 {
    BASE_MS + minute * 60_000
}

fn page_view(id: &str, minute: i64, ns: &str, identity: &str, name: &str, views: u32) -> Value {
    json!({
        "_id": id,
        "timestamp": format!("2025-03-01T10:{minute:02}:00Z"),
        "identityMap": { ns: [{"id": identity, "primary": true}] },
        "web": {"webPageDetails": {"name": name, "isHomePage": name == "home", "pageViews": {"value": views}}}
    })
}

async fn stream_all(setup: &Setup, events: Vec<Value>) {
    for event in events {
        let reply = setup.stream(setup.event_message(event)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
}

/// Percent-encodes what a URL cannot carry raw in a `property` value.
fn enc(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "%3C".to_owned(),
            '>' => "%3E".to_owned(),
            '"' => "%22".to_owned(),
            '=' => "%3D".to_owned(),
            '!' => "%21".to_owned(),
            ' ' => "%20".to_owned(),
            other => other.to_string(),
        })
        .collect()
}

fn ids(body: &Value) -> Vec<String> {
    body["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["entityId"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page from `first`, following `_links.next.href` literally.
async fn all_pages(base: &str, first: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut path = first.to_owned();
    loop {
        let reply = get(base, &path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        let body = reply.json();
        let href = body["_links"]["next"]["href"].as_str().unwrap().to_owned();
        let next = body["_page"]["next"].as_str().unwrap().to_owned();
        assert_eq!(href.is_empty(), next.is_empty(), "{body}");
        pages.push(body);
        if href.is_empty() {
            return pages;
        }
        assert!(href.starts_with("/entities?start="), "{href}");
        path = format!("/data/core/ups/access{href}");
        assert!(pages.len() < 20, "paging does not end");
    }
}

async fn xid(base: &str, ns: &str, id: &str) -> String {
    let reply = get(
        base,
        &format!("/data/core/identity/identity?namespace={ns}&id={id}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["xid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn pages_of_a_stitched_profile_follow_next_links_in_both_orders() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let ecid = "11111111111111111111111111111111111111";
    let email = "jane@example.com";
    stream_all(
        &setup,
        vec![
            page_view("a0", 0, "ECID", ecid, "home", 1),
            page_view("b1", 1, "Email", email, "cart", 1),
            page_view("a2", 2, "ECID", ecid, "cart", 1),
            page_view("a3", 3, "ECID", ecid, "cart", 1),
            page_view("b3", 3, "Email", email, "checkout", 1),
            page_view("b4", 4, "Email", email, "home", 1),
            page_view("a5", 5, "ECID", ecid, "home", 1),
        ],
    )
    .await;
    // Before the two identities are linked, each sees only its own events.
    let alone = get(
        &base,
        &format!("{EVENTS}&relatedEntityId={ecid}&relatedEntityIdNS=ECID"),
    )
    .await;
    assert_eq!(ids(&alone.json()), ["a0", "a2", "a3", "a5"]);
    // A record carrying both identities stitches them into one graph.
    let link = setup.profile_message(json!({"identityMap": {
        "Email": [{"id": email, "primary": true}], "ECID": [{"id": ecid}]}}));
    assert_eq!(setup.stream(link).await.status, StatusCode::OK);

    let related = xid(&base, "ECID", ecid).await;
    let oldest_first = ["a0", "b1", "a2", "a3", "b3", "b4", "a5"];
    for (orderby, expected_order, label) in [
        ("", "timestamp", "default"),
        ("&orderby=%2Btimestamp", "timestamp", "+timestamp"),
        ("&orderBy=timestamp", "timestamp", "orderBy"),
        ("&orderby=-timestamp", "-timestamp", "-timestamp"),
    ] {
        let first =
            format!("{EVENTS}&relatedEntityId={ecid}&relatedEntityIdNS=ECID&limit=2{orderby}");
        let pages = all_pages(&base, &first).await;
        assert_eq!(
            pages
                .iter()
                .map(|p| p["_page"]["count"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            [2, 2, 2, 1],
            "{label}"
        );
        let seen: Vec<String> = pages.iter().flat_map(ids).collect();
        let mut expected: Vec<&str> = oldest_first.to_vec();
        if expected_order == "-timestamp" {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{label}");
        for page in &pages {
            assert_eq!(page["_page"]["orderby"], expected_order, "{label}");
            assert_eq!(page["_page"]["start"], page["children"][0]["entityId"]);
            for child in page["children"].as_array().unwrap() {
                assert_eq!(child["relatedEntityId"], related.as_str());
                let id = child["entityId"].as_str().unwrap();
                let minute: i64 = id[1..].parse().unwrap();
                assert_eq!(child["timestamp"], at(minute), "{id}");
                assert_eq!(child["entity"]["_id"], id);
                let modified = child["lastModifiedAt"].as_str().unwrap();
                assert!(
                    modified.ends_with('Z') && modified.len() == 20,
                    "{modified}"
                );
            }
        }
        let last = pages.last().unwrap();
        assert_eq!(last["_page"]["next"], "");
        assert_eq!(last["_links"]["next"]["href"], "");
    }
    // The same profile looked up by its other identity has the same events.
    let by_email = get(
        &base,
        &format!("{EVENTS}&relatedEntityId={email}&relatedEntityIdNS=email"),
    )
    .await;
    assert_eq!(ids(&by_email.json()), oldest_first);
    server.stop().await;
}

#[tokio::test]
async fn time_window_property_filters_and_fields() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let ecid = "22222222222222222222222222222222222222";
    stream_all(
        &setup,
        vec![
            page_view("f0", 0, "ECID", ecid, "home", 1),
            page_view("f1", 1, "ECID", ecid, "cart", 2),
            page_view("f2", 2, "ECID", ecid, "checkout", 3),
            page_view("f3", 3, "ECID", ecid, "home", 4),
        ],
    )
    .await;
    let lookup = format!("{EVENTS}&relatedEntityId={ecid}&relatedEntityIdNS=ECID");
    let query = |extra: String| {
        let base = base.clone();
        let path = format!("{lookup}{extra}");
        async move {
            let reply = get(&base, &path).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
            ids(&reply.json())
        }
    };

    // startTime inclusive, endTime exclusive.
    assert_eq!(
        query(format!("&startTime={}&endTime={}", at(1), at(3))).await,
        ["f1", "f2"]
    );
    assert_eq!(
        query(format!("&startTime={}", at(1))).await,
        ["f1", "f2", "f3"]
    );
    assert_eq!(query(format!("&endTime={}", at(1))).await, ["f0"]);
    assert_eq!(
        query(format!(
            "&startTime={}&endTime={}&orderby=-timestamp",
            at(1),
            at(3)
        ))
        .await,
        ["f2", "f1"]
    );

    // Each operator, and several filters together.
    let cases: [(&str, &[&str]); 9] = [
        ("web.webPageDetails.isHomePage=false", &["f1", "f2"]),
        ("web.webPageDetails.name!=home", &["f1", "f2"]),
        ("web.webPageDetails.pageViews.value<3", &["f0", "f1"]),
        ("web.webPageDetails.pageViews.value<=3", &["f0", "f1", "f2"]),
        ("web.webPageDetails.pageViews.value>3", &["f3"]),
        ("web.webPageDetails.pageViews.value>=2", &["f1", "f2", "f3"]),
        ("web.webPageDetails.name=\"checkout\"", &["f2"]),
        ("timestamp<=\"2025-03-01\"", &["f0", "f1", "f2", "f3"]),
        ("timestamp>20250301", &[]),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            query(format!("&property={}", enc(filter))).await,
            expected,
            "{filter}"
        );
    }
    assert_eq!(
        query(format!(
            "&property={}&property={}",
            enc("web.webPageDetails.isHomePage=true"),
            enc("web.webPageDetails.pageViews.value>1")
        ))
        .await,
        ["f3"]
    );

    // A filter survives paging: the next link repeats it.
    let filtered = format!(
        "{lookup}&limit=1&property={}",
        enc("web.webPageDetails.isHomePage=false")
    );
    let pages = all_pages(&base, &filtered).await;
    assert_eq!(pages.iter().flat_map(ids).collect::<Vec<_>>(), ["f1", "f2"]);
    assert_eq!(pages.len(), 2);

    // Field projection of each event's entity.
    let projected = get(
        &base,
        &format!("{lookup}&fields=web.webPageDetails.name,_id&limit=1"),
    )
    .await;
    assert_eq!(projected.status, StatusCode::OK, "{}", projected.text);
    assert_eq!(
        projected.json()["children"][0]["entity"],
        json!({"_id": "f0", "web": {"webPageDetails": {"name": "home"}}})
    );

    // Bad filters.
    for extra in [
        format!("&property={}", enc("web.webPageDetails.name")),
        format!("&property={}", enc("web..name=x")),
        format!("&property={}", enc("web.webPageDetails.isHomePage<true")),
        format!("&property={}", enc("web.webPageDetails.name=\"open")),
        "&property=a%3D1&property=b%3D2&property=c%3D3&property=d%3D4".to_owned(),
    ] {
        let reply = get(&base, &format!("{lookup}{extra}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{extra}: {}",
            reply.text
        );
        assert_eq!(reply.json()["statusCode"], "400");
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_identity_xid_form_and_validation() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let ecid = "33333333333333333333333333333333333333";
    stream_all(
        &setup,
        vec![
            page_view("x0", 0, "ECID", ecid, "home", 1),
            page_view("x1", 1, "ECID", ecid, "cart", 1),
        ],
    )
    .await;

    // An identity with no events: an empty last page, not an error.
    let unknown = get(&base, &format!("{EVENTS}&relatedEntityId=99999999999999999999999999999999999999&relatedEntityIdNS=ECID")).await;
    assert_eq!(unknown.status, StatusCode::OK, "{}", unknown.text);
    assert_eq!(
        unknown.json(),
        json!({"_page": {"orderby": "timestamp", "start": "", "count": 0, "next": ""},
            "children": [], "_links": {"next": {"href": ""}}})
    );

    // XID instead of value + namespace.
    let related = xid(&base, "ECID", ecid).await;
    let by_xid = get(&base, &format!("{EVENTS}&relatedEntityId={related}")).await;
    assert_eq!(by_xid.status, StatusCode::OK, "{}", by_xid.text);
    let body = by_xid.json();
    assert_eq!(ids(&body), ["x0", "x1"]);
    assert_eq!(body["children"][0]["relatedEntityId"], related.as_str());
    // Paging from the XID form keeps the XID form.
    let pages = all_pages(
        &base,
        &format!("{EVENTS}&relatedEntityId={related}&limit=1"),
    )
    .await;
    assert_eq!(pages.iter().flat_map(ids).collect::<Vec<_>>(), ["x0", "x1"]);

    let lookup = format!("{EVENTS}&relatedEntityId={ecid}&relatedEntityIdNS=ECID");
    for extra in [
        "&limit=0",
        "&limit=-5",
        "&limit=ten",
        "&limit=1000000",
        "&orderby=name",
        "&startTime=soon",
        "&startTime=10&endTime=5",
        "&start=not-a-cursor",
    ] {
        let reply = get(&base, &format!("{lookup}{extra}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{extra}: {}",
            reply.text
        );
        assert_eq!(reply.json()["statusCode"], "400");
    }
    assert_eq!(
        get(&base, &format!("{lookup}&limit=10000")).await.status,
        StatusCode::OK
    );
    let missing = get(&base, EVENTS).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.text);
    let bad_xid = get(&base, &format!("{EVENTS}&relatedEntityId=%21%21")).await;
    assert_eq!(bad_xid.status, StatusCode::BAD_REQUEST, "{}", bad_xid.text);
    server.stop().await;
}

#[tokio::test]
async fn post_pages_events_of_several_profiles_through_payload_links() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let ecid = "11111111111111111111111111111111111111";
    stream_all(
        &setup,
        (0..5)
            .map(|m| page_view(&format!("a{m}"), m, "ECID", ecid, "home", 1))
            .chain(std::iter::once(page_view(
                "b0",
                7,
                "Email",
                "bob@example.com",
                "cart",
                2,
            )))
            .collect(),
    )
    .await;
    let body = json!({
        "schema": {"name": "_xdm.context.experienceevent"},
        "relatedSchema": {"name": "_xdm.context.profile"},
        "identities": [
            {"relatedEntityId": ecid, "relatedEntityIdNS": {"code": "ECID"}},
            {"relatedEntityId": "bob@example.com", "relatedEntityIdNS": {"code": "Email"}}
        ],
        "fields": ["web.webPageDetails.name"],
        "timeFilter": {"startTime": at(1)},
        "limit": 2,
        "orderby": "-timestamp"
    });
    let reply = common::ingest::post(&base, "/data/core/ups/access/entities", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let pages = reply.json();
    let ecid_page = &pages[ecid];
    assert_eq!(ids(ecid_page), ["a4", "a3"]);
    assert_eq!(
        ecid_page["children"][0]["entity"],
        json!({"web": {"webPageDetails": {"name": "home"}}})
    );
    assert_eq!(ids(&pages["bob@example.com"]), ["b0"]);
    assert_eq!(pages["bob@example.com"]["_links"]["next"]["href"], "");
    // Follow the payload: POST it again for the next page of that profile only.
    let mut seen = ids(ecid_page);
    let mut link = ecid_page["_links"]["next"].clone();
    while link["href"] != "" {
        assert_eq!(link["href"], "/entities");
        let reply = common::ingest::post(
            &base,
            "/data/core/ups/access/entities",
            link["payload"].clone(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let next = reply.json()[ecid].clone();
        seen.extend(ids(&next));
        link = next["_links"]["next"].clone();
        assert!(seen.len() < 10);
    }
    assert_eq!(
        seen,
        ["a4", "a3", "a2", "a1"],
        "startTime is inclusive, a0 is before it"
    );

    // A bad identity among good ones: 207 with per-identity outcomes.
    let partial = common::ingest::post(&base, "/data/core/ups/access/entities", json!({
        "schema": {"name": "_xdm.context.experienceevent"},
        "identities": [{"relatedEntityId": ecid, "relatedEntityIdNS": {"code": "ECID"}}, {"relatedEntityId": "x", "relatedEntityIdNS": {"code": "Nope"}}]
    })).await;
    assert_eq!(partial.status, StatusCode::MULTI_STATUS, "{}", partial.text);
    assert_eq!(partial.json()[1]["error"]["statusCode"], "400");
    assert_eq!(partial.json()[0]["entity"]["_page"]["count"], 5);
    server.stop().await;
}
